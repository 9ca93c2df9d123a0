"""Bounded memory for large pools: memory-mapped precomputed features stay mapped, float16
features give the float32 answers, and blocked scoring equals scoring in one piece."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from aeuf import embed
from aeuf.config import FeatureConfig, HeadConfig
from aeuf.head import ensemble as ens
from aeuf.head import make_head
from aeuf.io import align_features, read_precomputed_features
from aeuf.run.featurize import feature_dtype
from aeuf.types import Comparisons

CFG = HeadConfig(name="ensemble", members=4, hidden=(16,), epochs=3, min_steps=20, batch_size=64)


def problem(num_p=300, num_r=4, dim=12, m=500, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(num_p, num_r, dim)).astype(np.float32)
    r = x @ rng.normal(size=dim).astype(np.float32)  # a linear reward labels the pairs
    a, pr = rng.integers(0, num_r, m), rng.integers(0, num_p, m)
    b = (a + rng.integers(1, num_r, m)) % num_r
    p = (r[pr, a] > r[pr, b]).astype(np.float32)
    return x, Comparisons(pr.astype(np.int32), a.astype(np.int32), b.astype(np.int32), p)


def test_precomputed_features_in_pool_order_stay_a_memory_map(tmp_path):
    values = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    np.save(tmp_path / "f.npy", values)
    ids = [f"p{i // 4}:{i % 4}" for i in range(40)]
    (tmp_path / "f.ids.txt").write_text("\n".join(ids) + "\n")
    got_ids, got = read_precomputed_features(str(tmp_path / "f.npy"))
    assert isinstance(got, np.memmap) and got_ids == ids
    assert align_features(got_ids, got, ids) is got  # same order: no copy
    shuffled = ids[::-1]
    out = align_features(got_ids, got, shuffled)
    assert not isinstance(out, np.memmap)
    np.testing.assert_array_equal(out, values[::-1])


def test_compose_in_chunks_equals_the_whole_array_formula(monkeypatch):
    monkeypatch.setattr(embed, "ROWS_PER_CHUNK", 7)  # many ragged chunks
    rng = np.random.default_rng(1)
    a = rng.normal(3.0, 2.0, size=(50, 5)).astype(np.float32)
    b = np.concatenate([rng.normal(size=(50, 2)), np.ones((50, 1))], 1).astype(np.float32)
    rows = np.arange(0, 50, 3)
    got = embed.compose([a, b], rows)
    want = [(x - x[rows].mean(0)) / np.where(x[rows].std(0) > 1e-6, x[rows].std(0), 1.0)
            for x in (a, b)]
    np.testing.assert_allclose(got, np.concatenate(want, 1), atol=1e-5)
    half = embed.compose([a, b], rows, dtype=np.float16)
    assert half.dtype == np.float16
    np.testing.assert_allclose(half, got, atol=2e-2)


def test_auto_dtype_is_float16_only_for_a_large_pool():
    assert feature_dtype("auto", 10**6 * 8 * 384) is np.float16
    assert feature_dtype("auto", 10**5 * 8 * 384) is np.float32
    assert feature_dtype("float16", 10) is np.float16
    assert FeatureConfig().dtype == "auto"


@pytest.mark.parametrize("name", ["ensemble", "bll"])
def test_float16_features_give_the_head_of_their_float32_values(name):
    x, comps = problem()
    half = x.astype(np.float16)
    head = make_head(HeadConfig(name=name, members=4, hidden=(16,), epochs=3, min_steps=20,
                                batch_size=64))
    s0 = head.init(x.shape[2], key=jax.random.key(0))
    fit_half = head.fit(s0, half, comps, key=jax.random.key(1))
    fit_f32 = head.fit(s0, half.astype(np.float32), comps, key=jax.random.key(1))
    b_half = head.belief(fit_half, half, key=jax.random.key(2), num_samples=4)
    b_f32 = head.belief(fit_f32, half.astype(np.float32), key=jax.random.key(2), num_samples=4)
    np.testing.assert_allclose(b_half.mean, b_f32.mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(b_half.pair_var, b_f32.pair_var, rtol=1e-3, atol=1e-4)
    if name == "ensemble":  # float16 rows widened in the step: the very same fit
        for h, f in zip(jax.tree_util.tree_leaves(fit_half), jax.tree_util.tree_leaves(fit_f32)):
            np.testing.assert_array_equal(np.asarray(h), np.asarray(f))


def test_ensemble_scores_in_blocks_what_it_scores_in_one_piece(monkeypatch):
    x, comps = problem(num_p=1000)
    head = make_head(CFG)
    state = head.fit(head.init(x.shape[2], key=jax.random.key(0)), x, comps, key=jax.random.key(1))
    whole = head.belief(state, x, key=None)
    monkeypatch.setattr(ens, "SCORE_BLOCK", 512)  # 8 device calls of 512 rows (+ a ragged end)
    monkeypatch.setattr(ens, "MOMENT_PROMPTS", 33)
    blocked = make_head(CFG).belief(state, x, key=None)
    for w, b in zip(whole, blocked):
        np.testing.assert_allclose(b, w, rtol=1e-5, atol=1e-6)
    assert make_head(CFG).belief(state, x, key=None, embed=False).embed is None


def test_bll_belief_in_blocks_equals_one_block(monkeypatch):
    from aeuf.head import bll

    x, comps = problem(num_p=700)
    head = make_head(HeadConfig(name="bll"))
    state = head.fit(head.init(x.shape[2], key=jax.random.key(0)), x, comps, key=None)
    whole = head.belief(state, x, key=jax.random.key(3), num_samples=5)
    monkeypatch.setattr(bll, "BELIEF_BLOCK", 64)
    blocked = make_head(HeadConfig(name="bll")).belief(state, x, key=jax.random.key(3),
                                                       num_samples=5)
    for w, b in zip(whole, blocked):
        np.testing.assert_allclose(b, w, rtol=1e-5, atol=1e-5)


def test_the_ensemble_fit_reads_only_the_compared_rows():
    """The fit moves only the compared rows (re-indexed): rows no comparison touches are
    never read (NaN there changes nothing), and the re-indexed fit is the same fit."""
    x, comps = problem()
    head = make_head(HeadConfig(name="ensemble", members=4, hidden=(16,), epochs=20, min_steps=300,
                                batch_size=64, learning_rate=1e-2))
    s0 = head.init(x.shape[2], key=jax.random.key(0))
    want = head.fit(s0, x, comps, key=jax.random.key(1))
    used = np.zeros(x.shape[:2], bool)
    used[comps.prompt, comps.a] = used[comps.prompt, comps.b] = True
    used[0, 0] = True  # padding slots point at row 0 (masked)
    poisoned = x.copy()
    poisoned[~used] = np.nan
    got = head.fit(s0, poisoned, comps, key=jax.random.key(1))
    for w, g in zip(jax.tree_util.tree_leaves(want), jax.tree_util.tree_leaves(got)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6, atol=1e-7)
    mean = head.belief(want, x, key=None).mean
    right = (mean[comps.prompt, comps.a] > mean[comps.prompt, comps.b]) == (comps.p > 0.5)
    assert right.mean() > 0.8  # the re-indexed rows are the compared ones


def test_a_float16_pool_reaches_the_fit_in_float16_padded_once(monkeypatch):
    """The compared rows go to the trainer in the pool's float16 (half the memory of
    float32), already padded to their power-of-two bucket (no second padded copy)."""
    x, comps = problem()
    seen = []

    def spy(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return seen[-1]

    real = ens.compact
    monkeypatch.setattr(ens, "compact", spy)
    head = make_head(HeadConfig(name="ensemble", members=4, hidden=(16,), epochs=2, min_steps=4, batch_size=64))
    s0 = head.init(x.shape[2], key=jax.random.key(0))
    head.fit(s0, x.astype(np.float16), comps, key=jax.random.key(1))
    head.fit(s0, x, comps, key=jax.random.key(1))
    (half, pairs), (full, _) = seen
    used = int(max(pairs.a.max(), pairs.b.max())) + 1  # the rows compact gathered
    assert half.dtype == np.float16 and full.dtype == np.float32
    n = half.shape[0]
    assert used <= n < 2 * used and (n & (n - 1) == 0 or n == x.shape[0] * x.shape[1])
    assert not half[used:].any()  # the padding rows are zeros
    np.testing.assert_array_equal(half[:used].astype(np.float32), full[:used].astype(np.float16))


def test_a_float16_pool_is_scored_in_float16_blocks_with_the_float32_result(monkeypatch):
    """The belief's blocks go to the device in the pool's float16 (half the host copy) and
    are widened there: the same rewards as the float32 values of those features."""
    x, comps = problem()
    half = x.astype(np.float16)
    seen = []
    real = ens.score
    monkeypatch.setattr(ens, "score", lambda params, xs, embed=True: seen.append(xs.dtype)
                        or real(params, xs, embed))
    head = make_head(HeadConfig(name="ensemble", members=4, hidden=(16,), epochs=2, min_steps=4, batch_size=64))
    state = head.fit(head.init(x.shape[2], key=jax.random.key(0)), half, comps,
                     key=jax.random.key(1))
    b_half = head.belief(state, half, key=None)
    b_f32 = head.belief(state, half.astype(np.float32), key=None)
    assert seen == [np.float16, np.float32]  # one trace per dtype
    for h, f in zip(b_half[:3], b_f32[:3]):
        np.testing.assert_array_equal(h, f)


def test_a_belief_without_the_embedding_has_the_rewards_of_one_with_it():
    """score(embed=False) skips the members' mean hidden layer (half the time) and nothing
    else: the same samples, moments and pair variances, bit for bit."""
    x, comps = problem()
    head = make_head(CFG)
    state = head.fit(head.init(x.shape[2], key=jax.random.key(0)), x, comps, key=jax.random.key(1))
    with_e, without = head.belief(state, x, embed=True), head.belief(state, x, embed=False)
    assert with_e.embed is not None and with_e.embed.shape[:2] == x.shape[:2]
    assert without.embed is None
    for name in ("mean", "std", "samples", "pair_var"):
        np.testing.assert_array_equal(getattr(with_e, name), getattr(without, name))
