"""Head states are NamedTuples whose tree structure depends only on the config and D, so the
run layer can save them with tree_flatten + np.savez and restore them against init's treedef."""

import jax
import numpy as np
import pytest

from aeuf.config import HeadConfig
from aeuf.head import make_head
from aeuf.head.bll import BLLState
from aeuf.head.ensemble import EnsembleState
from aeuf.head.twospeed import TwoSpeedState
from aeuf.types import Comparisons

CONFIGS = {
    "ensemble": (HeadConfig(name="ensemble", members=4, hidden=(16, 8), epochs=2, min_steps=20, batch_size=32), 6),
    "bll": (HeadConfig(name="bll"), 6),
    "bll_projected": (HeadConfig(name="bll", max_dim=4), 6),
    "ensemble+linear": (HeadConfig(name="ensemble+linear", linear_columns=(4, 5), members=4,
                                   hidden=(16, 8), epochs=2, min_steps=20, batch_size=32), 6),
}
STATES = {"ensemble": EnsembleState, "bll": BLLState, "ensemble+linear": TwoSpeedState}


def problem(dim, seed=0, num_p=40, num_r=4, m=90):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(num_p, num_r, dim)).astype(np.float32)
    r = x @ rng.normal(size=dim)
    pr, a = rng.integers(0, num_p, m), rng.integers(0, num_r, m)
    b = (a + rng.integers(1, num_r, m)) % num_r
    p = (r[pr, a] > r[pr, b]).astype(np.float32)
    return x, Comparisons(pr.astype(np.int32), a.astype(np.int32), b.astype(np.int32), p)


def save_and_restore(state, treedef, path):
    """What the run layer does: flatten + savez, then load + unflatten against a treedef."""
    leaves, _ = jax.tree_util.tree_flatten(state)
    np.savez(path, *[np.asarray(v) for v in leaves])
    with np.load(path) as f:
        loaded = [f[f"arr_{i}"] for i in range(len(f.files))]
    return jax.tree_util.tree_unflatten(treedef, loaded)


def identical(s, t):
    ls, lt = jax.tree_util.tree_leaves(s), jax.tree_util.tree_leaves(t)
    return len(ls) == len(lt) and all(np.array_equal(u, v) for u, v in zip(ls, lt))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_state_round_trips_through_savez_and_resumes_identically(name, tmp_path):
    cfg, dim = CONFIGS[name]
    head = make_head(cfg)
    x, comps = problem(dim)
    s0 = head.init(dim, key=jax.random.key(0))
    s1 = head.fit(s0, x, comps, key=jax.random.key(1))
    assert isinstance(s1, STATES[cfg.name])
    # the structure depends only on config and dim: not on the key, not on fitting
    treedef = jax.tree_util.tree_structure(head.init(dim, key=jax.random.key(7)))
    assert jax.tree_util.tree_structure(s0) == treedef == jax.tree_util.tree_structure(s1)
    restored = save_and_restore(s1, treedef, tmp_path / "head.npz")
    assert type(restored) is type(s1) and identical(restored, s1)
    more = Comparisons(*(np.concatenate([f, f[:10]]) for f in comps))
    assert identical(head.fit(restored, x, more, key=jax.random.key(2)),
                     head.fit(s1, x, more, key=jax.random.key(2)))
    b1 = head.belief(restored, x, key=jax.random.key(3), num_samples=4)
    b2 = head.belief(s1, x, key=jax.random.key(3), num_samples=4)
    assert all(np.array_equal(u, v) for u, v in zip(b1, b2))
    assert not identical(s1, s0)  # the fit changed something, so the round trip is not vacuous


def test_a_different_dim_gives_a_different_structure_or_shapes():
    head = make_head(HeadConfig(name="bll", max_dim=4))
    small, large = head.init(4, key=jax.random.key(0)), head.init(6, key=jax.random.key(0))
    assert small.proj is None and large.proj.shape == (6, 4)
    assert jax.tree_util.tree_structure(small) != jax.tree_util.tree_structure(large)
