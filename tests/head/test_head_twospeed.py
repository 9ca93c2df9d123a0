"""The two-speed head (`ensemble+linear`): the cheap columns are learnt first.

Pool: real text statistics (aeuf.embed.text_stats of responses of many lengths) beside
64 columns of noise standing in for the sentence embedding; the gold is pure log-length.
"""

import jax
import numpy as np
import pytest

from aeuf import embed
from aeuf.config import FeatureConfig, HeadConfig
from aeuf.head import make_head
from aeuf.run.round import layout
from aeuf.types import Comparisons

P, R, E = 120, 6, 64
SMALL = dict(members=4, hidden=(16, 16), min_steps=150)


def length_pool(seed=0):
    """features [P, R, E + 11] (noise, then the stats part) and the gold log-length [P, R]."""
    rng = np.random.default_rng(seed)
    words = rng.integers(3, 300, size=(P, R))
    vocab = np.array(["alpha", "beta", "gamma", "delta", "eps"])
    texts = np.array([[" ".join(rng.choice(vocab, n)) + "." for n in row] for row in words],
                     dtype=object)
    stats = np.stack([embed.text_stats(f"q{p}", texts[p, r]) for p in range(P) for r in range(R)])
    noise = rng.normal(size=(P * R, E)).astype(np.float32)
    x = embed.compose([noise, stats]).reshape(P, R, -1)
    gold = np.log1p(np.vectorize(len)(texts)).astype(np.float32)
    return x, gold


def one_round(gold, m=40, seed=1):
    """m labelled pairs on m distinct prompts (one small round), labels from the gold."""
    rng = np.random.default_rng(seed)
    pr = rng.choice(P, m, replace=False)
    a = rng.integers(0, R, m)
    b = (a + rng.integers(1, R, m)) % R
    return Comparisons(pr.astype(np.int32), a.astype(np.int32), b.astype(np.int32),
                       (gold[pr, a] > gold[pr, b]).astype(np.float32))


def agreement(mean, gold):
    i, j = np.triu_indices(R, 1)
    return float(np.mean(np.sign(mean[:, i] - mean[:, j]) == np.sign(gold[:, i] - gold[:, j])))


def fitted_mean(cfg, x, comps):
    head = make_head(cfg)
    state = head.init(x.shape[-1], key=jax.random.PRNGKey(0))
    state = head.fit(state, x, comps, key=jax.random.PRNGKey(1))
    return head.belief(state, x, key=jax.random.PRNGKey(2))


@pytest.fixture(scope="module")
def pool():
    return length_pool()


@pytest.mark.slow
def test_recovers_length_after_one_small_round(pool):
    x, gold = pool
    comps = one_round(gold)
    cols = layout.cheap_columns(FeatureConfig(features="file+stats"), x.shape[-1])
    assert cols == tuple(range(E, E + len(embed.STAT_NAMES)))
    two = fitted_mean(HeadConfig(name="ensemble+linear", linear_columns=cols, **SMALL), x, comps)
    ens = fitted_mean(HeadConfig(name="ensemble", **SMALL), x, comps)
    # ranks (nearly) as well as length itself, on all pairs of the pool, after 40 labels
    assert agreement(two.mean, gold) >= 0.95
    assert agreement(two.mean, gold) > agreement(ens.mean, gold) + 0.1
    # a proper belief: K joint samples, pair variances from both parts, the ensemble's design
    assert two.samples.shape == (SMALL["members"], P, R)
    assert np.all(two.pair_var >= 0) and np.all(np.isfinite(two.std))
    assert two.embed.shape == (P, R, SMALL["hidden"][-1])


@pytest.mark.slow
def test_no_cheap_columns_is_the_ensemble(pool):
    x, gold = pool
    comps = one_round(gold)
    two = fitted_mean(HeadConfig(name="ensemble+linear", **SMALL), x, comps)
    ens = fitted_mean(HeadConfig(name="ensemble", **SMALL), x, comps)
    np.testing.assert_allclose(two.mean, ens.mean, rtol=1e-5, atol=1e-5)


def test_layout_from_the_features_spec():
    stats = len(embed.STAT_NAMES)
    default = FeatureConfig(features="minilm+stats")
    assert layout.cheap_columns(default, 384 + stats) == tuple(range(384, 384 + stats))
    assert layout.cheap_columns(FeatureConfig(features="stats+model"), stats + 8) == tuple(
        range(stats + 8))
    both = FeatureConfig(features="minilm+stats+model")
    assert layout.cheap_columns(both, 384 + stats + 5) == tuple(range(384, 384 + stats + 5))
    # two parts of unknown width: not resolved, the linear part reads nothing
    assert layout.cheap_columns(FeatureConfig(features="llm+stats+model"), 600) == ()
    assert layout.cheap_columns(default, 10) == ()
    cfg = layout.head_config(HeadConfig(name="ensemble+linear"), default, 384 + stats)
    assert cfg.linear_columns == tuple(range(384, 384 + stats))
    assert layout.head_config(HeadConfig(name="ensemble"), default, 395).linear_columns == ()
    # --features auto not resolved by a run (a library caller): D tells its two resolutions apart
    auto = FeatureConfig()
    assert layout.cheap_columns(auto, 384 + stats) == tuple(range(384, 384 + stats))
    assert layout.cheap_columns(auto, 384 + stats + 5) == tuple(range(384, 384 + stats + 5))


def test_the_round_engine_gives_the_head_its_cheap_columns():
    from aeuf.config import RunConfig
    from aeuf.run.round import engine

    stats = len(embed.STAT_NAMES)
    cfg = RunConfig(head=HeadConfig(name="ensemble+linear", **SMALL))  # --features auto
    x = np.zeros((4, 3, 384 + stats), np.float32)
    ctx = engine.make_context(cfg, x, np.zeros((4, 8), np.float32))
    assert ctx.cfg.head.linear_columns == tuple(range(384, 384 + stats))
    plain = engine.make_context(RunConfig(head=HeadConfig(name="ensemble")), x,
                                np.zeros((4, 8), np.float32))
    assert plain.cfg.head.linear_columns == ()


@pytest.mark.slow
def test_the_ensemble_fits_only_the_residual_of_its_offset():
    """Labels fully explained by the offset leave the members near their init; without the
    offset the same labels are learnt by the members themselves."""
    from aeuf.head.ensemble import make_ensemble

    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 4, 6)).astype(np.float32)
    r = 3.0 * x[..., 0]
    comps = one_round_of(r, rng, m=200)
    ens = make_ensemble(HeadConfig(**SMALL))
    s0 = ens.init(6, key=jax.random.PRNGKey(0))
    init_mean = ens.belief(s0, x, embed=False).mean
    learnt = {}
    for name, offset in (("offset", 4.0 * r), ("none", None)):
        s = ens.fit(s0, x, comps, key=jax.random.PRNGKey(1), offset=offset)
        learnt[name] = agreement_of(ens.belief(s, x, embed=False).mean - init_mean, r)
    assert learnt["none"] > 0.9 and learnt["offset"] < 0.75


def one_round_of(r, rng, m):
    num_p, num_r = r.shape
    pr = rng.integers(0, num_p, m)
    a = rng.integers(0, num_r, m)
    b = (a + rng.integers(1, num_r, m)) % num_r
    return Comparisons(pr.astype(np.int32), a.astype(np.int32), b.astype(np.int32),
                       (r[pr, a] > r[pr, b]).astype(np.float32))


def agreement_of(mean, r):
    i, j = np.triu_indices(r.shape[1], 1)
    return float(np.mean(np.sign(mean[:, i] - mean[:, j]) == np.sign(r[:, i] - r[:, j])))


def test_the_run_gives_the_head_the_cheap_columns_of_the_parts_it_built():
    """Two parts of unknown width (model and file, or another encoder) leave D ambiguous;
    the widths the run built resolve it, so the linear part still reads stats and model."""
    from aeuf.config import RunConfig
    from aeuf.run.round import engine

    stats = len(embed.STAT_NAMES)
    spec = FeatureConfig(features="stats+model+file")
    widths = {"stats": stats, "model": 3, "file": 16}
    x = np.zeros((4, 3, stats + 3 + 16), np.float32)
    assert layout.cheap_columns(spec, x.shape[-1]) == ()  # D alone cannot tell
    cfg = RunConfig(features=spec, head=HeadConfig(name="ensemble+linear", **SMALL))
    ctx = engine.make_context(cfg, x, np.zeros((4, 8), np.float32), widths=widths)
    assert ctx.cfg.head.linear_columns == tuple(range(stats + 3))
    other = FeatureConfig(features="minilm+stats+model", encoder="/some/mpnet")
    cfg = RunConfig(features=other, head=HeadConfig(name="ensemble+linear", **SMALL))
    x = np.zeros((4, 3, 768 + stats + 2), np.float32)
    ctx = engine.make_context(cfg, x, np.zeros((4, 8), np.float32),
                              widths={"minilm": 768, "stats": stats, "model": 2})
    assert ctx.cfg.head.linear_columns == tuple(range(768, 768 + stats + 2))


def degenerate_fit(x, comps):
    """ensemble+linear (cheap columns: the last four) fit on `comps`, then its belief."""
    cfg = HeadConfig(name="ensemble+linear", members=4, hidden=(8, 8), min_steps=20,
                     max_steps=20, linear_columns=tuple(range(x.shape[-1] - 4, x.shape[-1])))
    head = make_head(cfg)
    state = head.init(x.shape[-1], key=jax.random.PRNGKey(0))
    state = head.fit(state, x, comps, key=jax.random.PRNGKey(1))
    return head.belief(state, x, key=jax.random.PRNGKey(2))


def first_pairs(num_p, p=1.0, m=None):
    """Response 0 vs 1 on the first m prompts (default all), label p."""
    m = num_p if m is None else m
    idx = np.arange(m, dtype=np.int32)
    return Comparisons(idx, np.zeros(m, np.int32), np.ones(m, np.int32),
                       np.full(m, p, np.float32))


def test_degenerate_but_finite_inputs_give_finite_beliefs():
    """All-constant features, all ties, one label, no label, cheap columns constant within
    each prompt: a belief with finite mean, std, samples and pair variances."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4, 12)).astype(np.float32)
    within = x.copy()
    within[..., 8:] = rng.normal(size=(8, 1, 4))
    cases = [(np.zeros_like(x), first_pairs(8)), (x, first_pairs(8, 0.5)),
             (x, first_pairs(8, m=1)), (x, first_pairs(8, m=0)), (within, first_pairs(8))]
    for features, comps in cases:
        b = degenerate_fit(features, comps)
        for a in (b.mean, b.std, b.samples, b.pair_var):
            assert np.isfinite(a).all()


@pytest.mark.parametrize("bad, column", [(np.nan, 2), (np.inf, 10)])  # ensemble's, linear part
def test_non_finite_features_are_refused_not_scored_nan(bad, column):
    from aeuf.errors import InputError

    x = np.random.default_rng(0).normal(size=(8, 4, 12)).astype(np.float32)
    x[3, 1, column] = bad
    with pytest.raises(InputError, match=r"prompt 4, response 2"):
        degenerate_fit(x, first_pairs(8))  # a compared response
    with pytest.raises(InputError, match=r"prompt 4, response 2"):
        degenerate_fit(x, first_pairs(8, m=2))  # scored only
