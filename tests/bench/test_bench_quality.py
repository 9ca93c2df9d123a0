"""The once regime's dataset-quality metrics, no-call baselines and response selection,
against hand-computed values."""

import numpy as np
import pytest

from aeuf.bench.data import select_responses
from aeuf.bench.heuristics import baseline_pairs, delta_pairs, length_pairs, model_size
from aeuf.bench.quality import dataset_quality, exported_comparisons, lc_gold
from aeuf.errors import ConfigError
from aeuf.types import Labelled, ResponsePool

GOLD = np.array([[3.0, 1.0, 0.0, 0.0],   # best: slot 0; worst: slots 2 and 3
                 [2.0, 2.0, 1.0, 5.0],   # best: slot 3; worst: slot 2
                 [1.0, 1.0, 1.0, 1.0],   # every response ties
                 [0.0, 4.0, 2.0, 1.0]])  # best: slot 1; worst: slot 0


def lab(p, slots, chosen, rejected, tie=False):
    scores = GOLD[p, list(slots)]
    return Labelled(p, slots, scores, chosen, rejected, "r", 0, 0.0, 0.0, "replay", tie)


LABELLED = [
    lab(0, (0, 2), 0, 1),             # chosen best, rejected worst, gap 3
    lab(1, (1, 3), 1, 0),             # chosen best (5), rejected 2 (not worst), gap 3
    lab(2, (0, 1), 0, 1, tie=True),   # judged responses tie: dropped, 2 calls wasted
    lab(3, (2, 3), 1, 0),             # a wrong label: chosen 1 < rejected 2, gap -1
]


def test_dataset_quality_by_hand():
    q = dataset_quality(LABELLED, GOLD, shown=8, tokens=40.0)
    want = {"exported": 3 / 4, "ties": 1 / 4, "unanswered": 0.0, "best_of_n": 2 / 4,
            "worst_of_n": 1 / 3, "correct": 2 / 3, "wrong": 1 / 3, "gold_gap": 5 / 3,
            "gold_gap_per_prompt": 5 / 4, "calls_per_prompt": 2.0, "tokens_per_prompt": 10.0,
            "wasted_calls": 2 / 8}
    assert set(q) == set(want)
    for k, v in want.items():
        assert q[k] == pytest.approx(v), k


def test_dataset_quality_counts_unlabelled_prompts_and_gold_ties():
    # only prompt 0 labelled, its pair ties on gold (slots 2 and 3 both 0): not correct, not wrong
    q = dataset_quality([lab(0, (2, 3), 0, 1)], GOLD, shown=0, tokens=0.0)
    assert q["unanswered"] == pytest.approx(3 / 4) and q["exported"] == pytest.approx(1 / 4)
    assert q["correct"] == 0.0 and q["wrong"] == 0.0 and q["gold_gap"] == 0.0
    assert q["worst_of_n"] == 1.0 and q["best_of_n"] == 0.0 and q["wasted_calls"] == 0.0
    none = dataset_quality([lab(2, (0, 1), 0, 1, tie=True)], GOLD, shown=2, tokens=1.0)
    assert none["best_of_n"] == 0.0 and none["gold_gap"] is None and none["wasted_calls"] == 1.0


def test_exported_comparisons_are_chosen_over_rejected():
    c = exported_comparisons(LABELLED)
    assert c.prompt.tolist() == [0, 1, 3] and c.a.tolist() == [0, 3, 3]
    assert c.b.tolist() == [2, 1, 2] and c.p.tolist() == [1.0, 1.0, 1.0]
    assert exported_comparisons([LABELLED[2]]).size == 0


@pytest.mark.parametrize("name, size", [
    ("Qwen-14B-Chat", 14.0), ("Mixtral-8x7B-Instruct-v0.1_concise", 56.0),
    ("FuseChat-Llama-3.2-3B-Instruct", 3.0), ("chatglm2-6b", 6.0), ("vicuna-7b-v1.5", 7.0),
    ("FuseChat-Gemma-2-9B-Instruct", 9.0), ("SmolLM2-135M", 0.135), ("gpt-3.5-turbo-1106", None),
    ("claude-2.1", None), ("oasst-sft-pythia-12b", 12.0), ("gemma-2b-it", 2.0),
    ("toy-4x135M", 0.54),
])
def test_model_size_from_the_name(name, size):
    assert model_size(name) == (None if size is None else pytest.approx(size))


def pool(responses, models, gold=None):
    P, R = np.shape(responses)
    ids = np.array([f"q{p}" for p in range(P)], dtype=object)
    rid = np.array([[f"q{p}:{r}" for r in range(R)] for p in range(P)], dtype=object)
    return ResponsePool(ids, ids.copy(), np.array(responses, dtype=object),
                        np.array(models, dtype=object), rid,
                        None if gold is None else np.asarray(gold, np.float64), "score", "t")


def test_length_pairs_longest_vs_shortest():
    pl = pool([["aaa", "a", "aa"], ["bb", "bb", "bb"]], [["x", "y", "z"]] * 2)
    first, second = length_pairs(pl)
    assert first.slots == (0, 1) and (first.chosen, first.rejected) == (0, 1) and not first.tie
    assert second.tie  # every response equally long: nothing to prefer


def test_delta_pairs_by_size_and_by_ranking():
    models = [["big-70b", "gpt-x", "small-1b", "mid-7b"], ["small-1b", "mid-7b", "gpt-x", "big-70b"],
              ["gpt-x", "mid-7b", "gpt-x", "gpt-x"]]
    pl = pool([["r"] * 4] * 3, models)
    out = delta_pairs(pl)
    assert [x.prompt for x in out] == [0, 1]  # prompt 2 has one sized model: no pair
    assert out[0].slots == (0, 2) and out[1].slots == (3, 0)
    ranked = baseline_pairs("delta", pl, seed=0, ranking=("gpt-x", "small-1b", "mid-7b", "big-70b"))
    assert ranked[0].slots == (1, 0) and ranked[2].slots[1] == 1
    with pytest.raises(ConfigError, match="nope"):
        delta_pairs(pl, ranking=("nope",))


def test_select_responses_by_model_and_count():
    models = [["a", "b", "c"], ["a", "b", "c"], ["a", "x", "c"]]
    gold = np.arange(9.0).reshape(3, 3)
    pl = pool([[f"{p}{r}" for r in range(3)] for p in range(3)], models, gold)
    two = select_responses(pl, ("a", "b"))
    assert two.shape == (2, 2) and two.skipped == ("q2",)
    assert two.responses.tolist() == [["00", "01"], ["10", "11"]] and two.gold[1].tolist() == [3.0, 4.0]
    ac = select_responses(pl, ("c", "a"))
    assert ac.shape == (3, 2) and ac.models[2].tolist() == ["a", "c"]
    assert select_responses(pl, (), 2).responses[2].tolist() == ["20", "21"]
    with pytest.raises(ConfigError, match="no model zz"):
        select_responses(pl, ("zz",))
    with pytest.raises(ConfigError, match="num_responses 3"):
        select_responses(pl, ("a", "b"), 3)


def _lc_pool(seed=0, P=300, R=8):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(50, 3000, size=(P, R))
    z = np.log1p(lengths)
    return rng, lengths, (z - z.mean()) / z.std()


def _within(a):
    return (a - a.mean(axis=1, keepdims=True)).ravel()


def test_lc_gold_removes_a_pure_length_gold():
    _, lengths, z = _lc_pool()
    lc = lc_gold(3.0 * z + 0.5, lengths)
    assert np.ptp(lc, axis=1).max() < 1e-6  # nothing left to rank within a prompt


def test_lc_gold_keeps_a_real_signal_and_drops_length():
    rng, lengths, z = _lc_pool(1)
    u = rng.normal(size=z.shape)
    lc = lc_gold(u + 2.0 * z, lengths)
    assert abs(np.corrcoef(_within(lc), _within(z))[0, 1]) < 1e-6
    assert np.corrcoef(_within(lc), _within(u))[0, 1] > 0.99
    # the ranking of a pair is decided by the signal, not the length
    assert np.mean(np.sign(lc[:, 0] - lc[:, 1]) == np.sign(u[:, 0] - u[:, 1])) > 0.97


def test_lc_gold_with_model_identity_keeps_a_strong_model_that_writes_long():
    rng, _, _ = _lc_pool(2)
    P, R = 300, 8
    models = np.tile(np.array([f"m{r}" for r in range(R)], object), (P, 1))
    quality = np.arange(R, dtype=np.float64)  # m7 best ...
    lengths = np.exp(5.0 + 0.3 * quality + rng.normal(scale=0.5, size=(P, R))).astype(np.int64)
    gold = quality[None, :] + 0.0 * lengths  # length itself has no effect
    lc_m = lc_gold(gold, lengths, models)
    lc_no = lc_gold(gold, lengths)
    # with the model identity, length gets no credit and the models' order is kept
    assert np.allclose(lc_m, gold, atol=1e-6)
    # without it, the model's quality is read as length and partly removed
    assert np.abs(lc_no - gold).max() > 0.1
