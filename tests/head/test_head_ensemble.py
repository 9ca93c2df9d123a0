"""The deep-ensemble head on small synthetic problems where the right answer is known."""

import dataclasses

import jax
import jax.monitoring
import numpy as np
import pytest

from aeuf.config import HeadConfig
from aeuf.errors import ConfigError, InputError
from aeuf.head import HEADS, make_head
from aeuf.head.ensemble import make_ensemble
from aeuf.head.padding import exact_steps, pow2_steps
from aeuf.head.train import batch_rows, schedule, slot_order
from aeuf.types import Comparisons

D = 8
CFG = HeadConfig(name="ensemble",
    members=8, hidden=(32, 32), epochs=40, batch_size=64, learning_rate=3e-3, center=0.1
)


def sigmoid(t):
    return 1.0 / (1.0 + np.exp(-t))


W_TRUE = np.random.default_rng(99).normal(size=D)


def linear_problem(seed, num_p=120, num_r=4, m=600, soft=True):
    """Features [P, R, D], true linear rewards [P, R] (one fixed w), and M labels from them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(num_p, num_r, D)).astype(np.float32)
    r = x @ W_TRUE
    return x, r, comparisons_for(r, rng, m, soft)


def comparisons_for(r, rng, m, soft=True):
    num_p, num_r = r.shape
    pr = rng.integers(0, num_p, m)
    a = rng.integers(0, num_r, m)
    b = (a + rng.integers(1, num_r, m)) % num_r
    gap = r[pr, a] - r[pr, b]
    p = sigmoid(gap) if soft else (gap > 0).astype(float)
    return Comparisons(
        pr.astype(np.int32), a.astype(np.int32), b.astype(np.int32), p.astype(np.float32)
    )


def subset(c, m):
    return Comparisons(*(np.asarray(f)[:m] for f in c))


def leaves(state):
    return [np.asarray(v) for v in jax.tree_util.tree_leaves(state)]


def same(s, t):
    return all(np.array_equal(u, v) for u, v in zip(leaves(s), leaves(t), strict=True))


def max_diff(s, t):
    return max(float(np.abs(u - v).max()) for u, v in zip(leaves(s), leaves(t), strict=True))


def mlp_numpy(layers, x):
    """Independent numpy forward pass of one member: x [N, D] -> [N]."""
    h = x.astype(np.float64)
    for layer in layers[:-1]:
        h = np.maximum(h @ np.asarray(layer["w"]) + np.asarray(layer["b"]), 0.0)
    return (h @ np.asarray(layers[-1]["w"]) + np.asarray(layers[-1]["b"]))[:, 0]


def member(params, k):
    return [{name: np.asarray(v)[k] for name, v in layer.items()} for layer in params]


@pytest.fixture(scope="module")
def head():
    return make_head(CFG)


@pytest.fixture(scope="module")
def trained(head):
    x, r, comps = linear_problem(0)
    s0 = head.init(D, key=jax.random.key(0))
    return x, r, comps, s0, head.fit(s0, x, comps, key=jax.random.key(1))


def test_registry_lists_both_heads_and_rejects_unknown_names():
    assert {"ensemble", "bll"} <= set(HEADS.names())
    with pytest.raises(ConfigError, match="bll.*ensemble"):
        make_head(HeadConfig(name="gp"))
    with pytest.raises(ConfigError):
        make_head(HeadConfig(name="ensemble", hidden=()))


def test_fit_recovers_the_order_of_a_linear_reward(head, trained):
    _, _, _, _, state = trained
    x_test, r_test, _ = linear_problem(7, num_p=200, m=1)
    mean = head.belief(state, x_test, key=jax.random.key(0)).mean
    i, j = np.triu_indices(4, 1)
    agree = np.sign(mean[:, i] - mean[:, j]) == np.sign(r_test[:, i] - r_test[:, j])
    assert agree.mean() > 0.9  # a flipped BT sign gives < 0.1, an untrained head about 0.5
    untrained = head.belief(trained[3], x_test, key=jax.random.key(0)).mean
    assert (
        np.sign(untrained[:, i] - untrained[:, j]) == np.sign(r_test[:, i] - r_test[:, j])
    ).mean() < 0.8


def test_uncertainty_shrinks_on_labelled_region_and_stays_high_off_it(head):
    rng = np.random.default_rng(3)
    num_p, half = 120, D // 2
    x = np.zeros((2 * num_p, 4, D), np.float32)
    x[:num_p, :, :half] = rng.normal(size=(num_p, 4, half))  # region A: labelled
    x[num_p:, :, half:] = rng.normal(size=(num_p, 4, half))  # region B: never labelled
    r = x @ rng.normal(size=D)
    comps = comparisons_for(r[:num_p], rng, 600)
    s0 = head.init(D, key=jax.random.key(0))
    before = head.belief(s0, x, key=None).pair_var
    after = head.belief(head.fit(s0, x, comps, key=jax.random.key(1)), x, key=None).pair_var
    on, off = after[:num_p].mean(), after[num_p:].mean()
    assert on < 0.3 * before[:num_p].mean()
    assert off > 0.7 * before[num_p:].mean()
    assert off > 4 * on


def test_half_labels_pull_the_two_rewards_together_and_hard_labels_push_them_apart():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(64, 2, D)).astype(np.float32)
    cfg = HeadConfig(name="ensemble",
        members=4, hidden=(16,), epochs=100, batch_size=64, anchor=0.01, learning_rate=2e-2
    )
    head = make_head(cfg)
    s0 = head.init(D, key=jax.random.key(2))

    def gap(state):  # r_a - r_b per member and prompt: [K, 64]
        samples = head.belief(state, x, key=None).samples
        return samples[..., 0] - samples[..., 1]

    def labels(p):  # response 0 vs response 1 of every prompt, P(0 beats 1) = p
        zero = np.zeros(64, np.int32)
        return Comparisons(
            np.arange(64, dtype=np.int32), zero, zero + 1, np.full(64, p, np.float32)
        )

    tied = gap(head.fit(s0, x, labels(0.5), key=jax.random.key(3)))
    won = gap(head.fit(s0, x, labels(1.0), key=jax.random.key(3)))
    assert np.abs(tied).mean() < 0.2 * np.abs(gap(s0)).mean()
    assert won.mean() > 1.0 and (won > 0).mean() > 0.9  # a beats b in (almost) every member


def test_warm_start_continues_from_the_given_state(trained):
    x, _, comps, s0, s1 = trained
    assert max_diff(s1.params, s0.params) > 0.1
    assert same(s1.anchor, s0.anchor)  # w0 is kept, never trained
    tiny = dict(members=8, hidden=(32, 32), epochs=2, batch_size=64, learning_rate=1e-7)
    warm = make_head(HeadConfig(name="ensemble", **tiny)).fit(s1, x, comps, key=jax.random.key(5))
    cold = make_head(HeadConfig(name="ensemble", **tiny, warm_start=False)).fit(s1, x, comps, key=jax.random.key(5))
    assert max_diff(warm.params, s1.params) < 1e-4
    assert max_diff(cold.params, s0.params) < 1e-4
    assert same(warm.anchor, s0.anchor) and same(cold.anchor, s0.anchor)


def test_padding_to_a_bucket_gives_the_result_of_no_padding(head):
    x, _, comps = linear_problem(5, m=300)
    assert pow2_steps(300, 64) == (64, 8) and exact_steps(300, 64) == (64, 5)
    s0 = head.init(D, key=jax.random.key(0))
    bucketed = head.fit(s0, x, comps, key=jax.random.key(9))
    exact = make_ensemble(CFG, steps_rule=exact_steps).fit(s0, x, comps, key=jax.random.key(9))
    assert max_diff(bucketed.params, exact.params) < 1e-6
    np.testing.assert_allclose(bucketed.precision, exact.precision, rtol=1e-5,
                               atol=1e-5 * np.abs(exact.precision).max())  # float32 sums
    assert max_diff(bucketed, s0) > 1e-2


def test_no_recompile_while_the_label_count_grows_within_its_bucket(head):
    x, _, comps = linear_problem(6, m=1100)
    s0 = head.init(D, key=jax.random.key(0))
    events = []

    def listen(name, _secs, **_):
        if name.endswith(("backend_compile_duration", "jaxpr_trace_duration")):
            events.append(name)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        s1 = head.fit(s0, x, subset(comps, 300), key=jax.random.key(1))  # 5 steps -> bucket 8
        events.clear()
        s2 = head.fit(s1, x, subset(comps, 400), key=jax.random.key(2))  # 7 steps -> bucket 8
        assert events == []
        head.fit(s2, x, comps, key=jax.random.key(3))  # 18 steps -> bucket 32: compiles
        assert events
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


def test_same_key_and_data_give_identical_states(head, trained):
    x, _, comps, s0, s1 = trained
    assert same(head.init(D, key=jax.random.key(0)), s0)
    assert not same(head.init(D, key=jax.random.key(1)), s0)
    assert same(head.fit(s0, x, comps, key=jax.random.key(1)), s1)
    assert not same(head.fit(s0, x, comps, key=jax.random.key(2)), s1)
    assert same(
        head.fit(s0, jax.numpy.asarray(x), comps, key=jax.random.key(1)), s1
    )  # device array


def test_belief_samples_are_the_members_and_pair_var_comes_from_them(head, trained):
    _, _, _, _, state = trained
    x = np.random.default_rng(8).normal(size=(1100, 4, D)).astype(np.float32)  # 2 score chunks
    bel = head.belief(state, x, key=None)
    assert bel.samples.shape == (8, 1100, 4) and bel.pair_var.shape == (1100, 4, 4)
    assert all(a.dtype == np.float32 for a in bel)
    for k in (0, 5):
        expect = mlp_numpy(member(state.params, k), x.reshape(-1, D)).reshape(1100, 4)
        np.testing.assert_allclose(bel.samples[k], expect, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(bel.mean, bel.samples.mean(0), atol=1e-5)
    np.testing.assert_allclose(bel.std, bel.samples.std(0), rtol=1e-4, atol=1e-5)
    diff = bel.samples[:, :, :, None] - bel.samples[:, :, None, :]
    np.testing.assert_allclose(bel.pair_var, diff.var(0), rtol=1e-3, atol=1e-5)
    assert np.all(bel.pair_var[:, np.arange(4), np.arange(4)] == 0)


def test_state_survives_a_savez_round_trip_and_resumes_identically(head, trained, tmp_path):
    x, _, comps, s0, s1 = trained
    np.savez(tmp_path / "head.npz", *leaves(s1))
    with np.load(tmp_path / "head.npz") as f:
        loaded = [f[f"arr_{i}"] for i in range(len(f.files))]
    treedef = jax.tree_util.tree_structure(head.init(D, key=jax.random.key(0)))
    restored = jax.tree_util.tree_unflatten(treedef, loaded)
    assert same(
        head.fit(restored, x, comps, key=jax.random.key(4)),
        head.fit(s1, x, comps, key=jax.random.key(4)),
    )


def test_bad_comparisons_and_features_are_input_errors(head, trained):
    x, _, comps, s0, _ = trained
    # (Comparisons._replace is unusable: its __len__ returns M, which breaks NamedTuple._make)
    with pytest.raises(InputError, match="a == b"):
        head.fit(s0, x, Comparisons(comps.prompt, comps.a, comps.a, comps.p), key=jax.random.key(0))
    with pytest.raises(InputError, match="outside"):
        head.fit(
            s0,
            x,
            Comparisons(comps.prompt + 1000, comps.a, comps.b, comps.p),
            key=jax.random.key(0),
        )
    with pytest.raises(InputError, match="D = 9"):
        head.belief(s0, np.zeros((3, 4, 9), np.float32), key=None)


def hidden_numpy(layers, x):
    """Independent numpy last hidden layer of one member: x [N, D] -> [N, H]."""
    h = x.astype(np.float64)
    for layer in layers[:-1]:
        h = np.maximum(h @ np.asarray(layer["w"]) + np.asarray(layer["b"]), 0.0)
    return h


def test_belief_embed_is_the_mean_last_hidden_layer_and_precision_its_design(head, trained):
    x, _, comps, s0, state = trained
    bel = head.belief(state, x, key=None)
    num_p, num_r = x.shape[:2]
    hs = [hidden_numpy(member(state.params, k), x.reshape(-1, D)) for k in range(CFG.members)]
    embed = np.mean(hs, axis=0).reshape(num_p, num_r, -1)
    assert bel.embed.shape == (num_p, num_r, CFG.hidden[-1]) and bel.embed.dtype == np.float32
    np.testing.assert_allclose(bel.embed, embed, rtol=1e-4, atol=1e-4)
    z = embed[comps.prompt, comps.a] - embed[comps.prompt, comps.b]
    # the last layer's anchor prior: 2 * anchor * (fan_in / gain = H / 1) * I
    prior = 2.0 * CFG.anchor * CFG.hidden[-1] * np.eye(z.shape[1])
    np.testing.assert_allclose(head.belief(s0, x, key=None).precision, prior)  # no labels yet
    np.testing.assert_allclose(bel.precision, prior + z.T @ z, rtol=1e-4, atol=1e-3)


def test_every_fit_runs_at_least_min_steps_and_few_labels_train_full_batch():
    cfg = HeadConfig(name="ensemble", epochs=3, min_steps=300, max_steps=None, batch_size=256)
    for m in (1, 7, 50, 255, 256, 257, 300, 511, 513, 1000, 5000, 20000):
        batch, padded, steps, total = schedule(m, cfg, pow2_steps)
        assert total == max(300, 3 * steps) and padded >= steps
        assert steps == 1 if m <= 256 else batch == 256


def test_max_steps_caps_the_steps_of_a_large_fit_even_inside_its_first_epoch():
    cfg = HeadConfig(name="ensemble", epochs=20, min_steps=300, max_steps=4096, batch_size=256)
    for m in (1, 1000, 50_000, 60_000, 250_000, 1_000_000, 3_000_000):
        _, _, steps, total = schedule(m, cfg, pow2_steps)
        uncapped = schedule(m, dataclasses.replace(cfg, max_steps=None), pow2_steps)[3]
        assert total == min(uncapped, 4096) and total >= 300
    assert schedule(3_000_000, cfg, pow2_steps)[2] > 4096  # one epoch would pass the cap


def test_a_default_fit_is_min_steps_at_any_label_count():
    cfg = HeadConfig(name="ensemble")  # epochs 20, min_steps = max_steps = 300, minibatch 256
    for m in (1, 300, 3840, 3841, 6500, 26_000, 100_000, 1_000_000):
        assert schedule(m, cfg, pow2_steps)[3] == 300
    capped = dataclasses.replace(cfg, max_steps=100)  # below min_steps: min_steps wins
    assert schedule(26_000, capped, pow2_steps)[3] == 300
    assert schedule(26_000, dataclasses.replace(cfg, max_steps=None), pow2_steps)[3] == 20 * 102


@pytest.mark.parametrize("total", [0, 1, 3, 5, 7])
def test_the_trainer_runs_exactly_total_steps_and_cuts_the_last_epoch(total):
    """An optimiser that adds 1 to every weight per step: the weights move by the number of
    steps run, whole epochs of 3 steps or not."""
    import optax

    from aeuf.head.padding import flat_pairs
    from aeuf.head.train import train

    x, _, comps = linear_problem(3, m=9)
    pairs = jax.tree_util.tree_map(jax.numpy.asarray, flat_pairs(comps, x.shape[1], 9))
    plus_one = optax.GradientTransformation(
        lambda p: optax.EmptyState(),
        lambda g, s, p=None: (jax.tree_util.tree_map(jax.numpy.ones_like, g), s))
    params = make_head(CFG).init(D, key=jax.random.key(0)).params
    loss = lambda w, w0, x2, p, mask, m: jax.numpy.sum(w[0]["w"])  # noqa: E731
    out = train(params, params, jax.numpy.asarray(x.reshape(-1, D)), pairs, 9.0,
                jax.random.key(1), jax.numpy.int32(total), jax.numpy.int32(3), batch=3,
                opt=plus_one, loss=loss, group=8)
    moved = jax.tree_util.tree_map(lambda a, b: np.asarray(a - b), out, params)
    for leaf in jax.tree_util.tree_leaves(moved):
        np.testing.assert_allclose(leaf, total, atol=1e-4)


def test_minibatches_share_the_labels_evenly():
    m, batch = 300, 256  # two steps per epoch: 150 + 150 real labels, not 256 + 44
    mask = np.zeros(batch * 2, np.float32)
    mask[:m] = 1.0
    order = slot_order(jax.random.key(0), jax.numpy.asarray(mask))
    rows = [np.asarray(batch_rows(order, s, 2, batch)) for s in range(2)]
    assert [int(mask[r].sum()) for r in rows] == [150, 150]
    assert sorted(np.concatenate(rows)[mask[np.concatenate(rows)] > 0]) == list(range(m))


def test_fits_just_below_and_above_one_minibatch_agree():
    """The old schedule (a fixed number of epochs) trained M = B + 1 labels twice as many
    steps as M = B, so every learning curve jumped at B; now both reach the same optimum."""
    x, _, comps = linear_problem(11, m=65)
    moves = {}
    for min_steps in (400, 0):
        cfg = HeadConfig(name="ensemble", members=4, hidden=(16,), epochs=4, batch_size=64, min_steps=min_steps,
                         learning_rate=1e-2)
        head = make_head(cfg)
        s0 = head.init(D, key=jax.random.key(0))
        means = [head.belief(head.fit(s0, x, subset(comps, m), key=jax.random.key(1)), x,
                             key=None).mean for m in (64, 65)]
        start = head.belief(s0, x, key=None).mean
        moves[min_steps] = np.abs(means[1] - means[0]).max() / np.abs(means[0] - start).max()
    assert moves[400] < 0.25
    assert moves[0] > 0.4  # the epoch-only schedule jumps (shows this test can fail)


def test_training_members_in_groups_gives_the_result_of_all_at_once(trained):
    x, _, comps, s0, _ = trained
    short = dataclasses.replace(CFG, epochs=2, min_steps=0)  # 20 steps: Adam's sign-sensitive
    head = make_ensemble(short, group=8)  # updates make longer runs drift apart (float32)
    together = head.fit(s0, x, comps, key=jax.random.key(1))
    samples = lambda s: head.belief(s, x, key=None).samples  # noqa: E731  [K, P, R]
    moved = np.abs(samples(together) - samples(s0)).max()
    assert moved > 0.1
    for group in (1, 4):
        alone = make_ensemble(short, group=group).fit(s0, x, comps, key=jax.random.key(1))
        assert np.abs(samples(alone) - samples(together)).max() < 1e-3 * moved
        np.testing.assert_allclose(alone.precision, together.precision, rtol=1e-3, atol=1e-2)
    with pytest.raises(ConfigError, match="divide"):
        make_ensemble(CFG, group=3)


def test_without_precision_a_fit_skips_the_design_pass_and_trains_the_same(trained):
    """HeadConfig.precision False (a run whose rules read no precision): the same members, and
    the prior stands for the precision (no pass over the labels)."""
    x, _, comps, s0, state = trained
    lean = make_head(dataclasses.replace(CFG, precision=False))
    got = lean.fit(s0, x, comps, key=jax.random.key(1))
    for a, b in zip(leaves(got.params), leaves(state.params)):
        np.testing.assert_array_equal(a, b)
    prior = 2.0 * CFG.anchor * CFG.hidden[-1] * np.eye(CFG.hidden[-1])
    np.testing.assert_allclose(got.precision, prior)
    assert not np.allclose(state.precision, prior)  # the full fit did add the labels


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_a_non_finite_compared_response_is_refused_naming_the_first(dtype):
    """The fit checks the rows it moves to the device: the first bad compared response in
    label order (every a, then every b) is named; a bad row nobody compares is not read."""
    x = np.random.default_rng(0).normal(size=(6, 3, 5)).astype(dtype)
    comps = Comparisons(np.array([0, 4, 2]), np.array([0, 1, 2]), np.array([1, 2, 0]),
                        np.array([1.0, 0.0, 1.0], np.float32))
    h = make_ensemble(HeadConfig(members=2, hidden=(4,), min_steps=2, max_steps=2))
    state = h.init(5, key=jax.random.PRNGKey(0))
    x[5, 0, 1] = np.nan  # no label reads it
    h.fit(state, x, comps, key=jax.random.PRNGKey(1))
    x[2, 0, 3], x[4, 1, 0] = np.inf, np.nan  # b of the third label, a of the second
    with pytest.raises(InputError, match=r"prompt 5, response 2 "):
        h.fit(state, x, comps, key=jax.random.PRNGKey(1))
    x[4, 1, 0] = 0.0
    with pytest.raises(InputError, match=r"prompt 3, response 1 "):
        h.fit(state, x, comps, key=jax.random.PRNGKey(1))
