"""The generic Ray fan-out and scoring of sharded feature files, on a local Ray with 2 workers.

Ray is a test dependency: without it these tests fail (they do not skip)."""

import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import ray

from aeuf.backends import ray_runner
from aeuf.errors import InputError
from aeuf.head import mlp

# the workers receive this module's classes and functions by value (tests/ is not on their path)
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


class Times:
    """A per-batch worker: {i} -> {i, y = k * i, pid}."""

    def __init__(self, k: int) -> None:
        self.k, self.pid = k, os.getpid()

    def __call__(self, batch: dict) -> dict:
        i = batch["i"]
        return {"i": i, "y": self.k * i, "pid": np.full(len(i), self.pid)}


class Handshake:
    """Yields two rows, then waits (up to a minute) for the driver to create `flag`, which it
    does on receiving the first row; the third row says whether the flag came in time."""

    def __init__(self, flag: str) -> None:
        self.flag = flag

    def __call__(self, batch: dict):
        for i in (0, 1):
            yield {"i": np.array([i]), "seen": np.array([False])}
        deadline = time.monotonic() + 60
        while not os.path.exists(self.flag) and time.monotonic() < deadline:
            time.sleep(0.05)
        yield {"i": np.array([2]), "seen": np.array([os.path.exists(self.flag)])}


def member_rewards(params, x):
    """The ensemble head's per-member rewards: x f32[n, D] -> f32[n, K]."""
    return np.asarray(jax.vmap(mlp.rewards, in_axes=(0, None))(params, jnp.asarray(x))).T


def _members(dim: int, k: int):
    keys = jax.random.split(jax.random.PRNGKey(0), k)
    return jax.tree_util.tree_map(np.asarray, jax.vmap(lambda key: mlp.init_mlp(key, dim, (32,)))(keys))


def test_fan_out_maps_a_worker_over_every_row_once_on_two_replicas(local_ray):
    rows = [{"i": i} for i in range(40)]
    out = list(ray_runner.fan_out(Times, rows, init={"k": 3}, batch_size=4, num_replicas=2, gpus=0.0))
    i = np.concatenate([b["i"] for b in out])
    y = np.concatenate([b["y"] for b in out])
    assert sorted(i.tolist()) == list(range(40)) and (y == 3 * i).all()
    assert len({int(p) for b in out for p in b["pid"]}) == 2
    assert list(ray_runner.fan_out(Times, [], init={"k": 3})) == []


def test_stream_delivers_each_output_while_the_worker_is_still_running(local_ray, tmp_path):
    flag = tmp_path / "first-row-received"
    got = []
    for b in ray_runner.fan_out(Handshake, [{"i": 0}], init={"flag": str(flag)}, batch_size=1,
                                num_replicas=1, gpus=0.0, stream=True):
        got += list(zip(b["i"].tolist(), b["seen"].tolist()))
        flag.touch()
    assert got == [(0, False), (1, False), (2, True)]


def test_score_shards_matches_in_process_scoring_in_order(local_ray, tmp_path):
    dim, k = 16, 4
    params = _members(dim, k)
    rng = np.random.default_rng(0)
    shards = [rng.standard_normal((n, dim)).astype(np.float32) for n in (37, 64, 5)]
    paths = []
    for s, x in enumerate(shards):
        paths.append(tmp_path / f"features-{s}.npy")
        np.save(paths[-1], x)
    got = ray_runner.score_shards(paths, member_rewards, params, workers=2, chunk_rows=16)
    want = member_rewards(params, np.concatenate(shards))
    assert got.shape == (106, k) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert np.abs(np.diff(got[:, 0])).min() > 0  # rows are distinct: an order mix-up would show


def test_score_shards_names_a_shard_that_does_not_fit(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((3, 4), np.float32))
    np.save(tmp_path / "b.npy", np.zeros((3, 5), np.float32))
    with pytest.raises(InputError, match=r"b\.npy: shape \(3, 5\), expected \[n, 4\]"):
        ray_runner.score_shards([tmp_path / "a.npy", tmp_path / "b.npy"], member_rewards, None)
    (tmp_path / "c.npy").write_text("not numpy")
    with pytest.raises(InputError, match=r"c\.npy: not a readable \.npy"):
        ray_runner.score_shards([tmp_path / "c.npy"], member_rewards, None)


def test_shard_tasks_cover_every_row_once():
    tasks = ray_runner.shard_tasks([5, 0, 3], 2)
    rows = [r for t in tasks for r in range(t["offset"], t["offset"] + t["stop"] - t["start"])]
    assert rows == list(range(8))
    assert [(t["shard"], t["start"], t["stop"]) for t in tasks] == [(0, 0, 2), (0, 2, 4), (0, 4, 5), (2, 0, 2), (2, 2, 3)]


def test_acquisition_on_shards_chooses_what_one_process_chooses(local_ray, tmp_path):
    from aeuf.acquire import make_rule
    from aeuf.config import AcquireConfig
    from aeuf.head.ensemble import belief_from_samples
    from aeuf.run.jobs.sharded import choose_on_shards

    dim, k, num_r = 16, 4, 4
    params = _members(dim, k)
    rng = np.random.default_rng(1)
    shards = [rng.standard_normal((n * num_r, dim)).astype(np.float32) for n in (5, 8, 3)]
    paths = []
    for s, x in enumerate(shards):
        paths.append(tmp_path / f"part-{s}.npy")
        np.save(paths[-1], x)
    acfg = AcquireConfig(rule="deltaucb")
    got = choose_on_shards(paths, params, acfg, num_responses=num_r, workers=2, chunk_prompts=3)
    x = np.concatenate(shards)
    belief = belief_from_samples(member_rewards(params, x).T.reshape(k, -1, num_r))
    want = make_rule(acfg).select(belief, x.reshape(-1, num_r, dim), key=0, k=2)
    np.testing.assert_array_equal(got.idx, want.idx)
    np.testing.assert_allclose(got.score, want.score, rtol=1e-5, atol=1e-6)
    assert len({tuple(r) for r in got.idx.tolist()}) > 3  # prompts differ: a mix-up would show


def test_acquisition_on_shards_refuses_a_shard_cut_inside_a_prompt(tmp_path):
    from aeuf.config import AcquireConfig
    from aeuf.errors import InputError
    from aeuf.run.jobs.sharded import choose_on_shards

    np.save(tmp_path / "part-0.npy", np.zeros((10, 4), np.float32))
    with pytest.raises(InputError, match="part-0.npy: 10 rows is not a whole number of prompts"):
        choose_on_shards([tmp_path / "part-0.npy"], None, AcquireConfig(), num_responses=4)
