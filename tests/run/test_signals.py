"""The head's agreement against the cheap signals the labels reveal (aeuf.run.round.signals), in
a run's report.md and in the benchmark's per-round record."""


import numpy as np
import pytest
from gold_pool import write_gold_pool

from aeuf.cli import main
from aeuf.run.round import signals
from aeuf.types import Comparisons, Labelled, ResponsePool

P, R = 24, 4
FAST = ["--features", "stats", "--members", "4", "--hidden", "16,16", "--epochs", "3",
        "--batch_size", "6", "--no_progress"]


def pool_of(lengths: np.ndarray, models: np.ndarray) -> ResponsePool:
    n, r = lengths.shape
    ids = np.array([f"q{p}" for p in range(n)], dtype=object)
    resp = np.array([["x" * int(v) for v in row] for row in lengths], dtype=object)
    rid = np.array([[f"q{p}:{i}" for i in range(r)] for p in range(n)], dtype=object)
    return ResponsePool(ids, ids.copy(), resp, models.astype(object), rid,
                        lengths.astype(np.float64), "score", "synthetic")


def lab(p: int, chosen: int, rejected: int, tie: bool = False) -> Labelled:
    return Labelled(p, (chosen, rejected), np.array([1.0, 0.0]), 0, 1, "dts", 1, 0.0, 0.0,
                    "replay", tie)


def comps(rows) -> Comparisons:
    p, a, b, q = (np.asarray(c) for c in zip(*rows))
    return Comparisons(p.astype(np.int32), a.astype(np.int32), b.astype(np.int32),
                       q.astype(np.float32))


def test_length_direction_and_model_rates_come_from_earlier_labels():
    lengths = np.array([[10, 20, 30], [5, 50, 7], [40, 3, 9]])
    models = np.array([["a", "b", "c"]] * 3)
    sig = signals.of_pool(pool_of(lengths, models))
    rows = [lab(0, 0, 2), lab(1, 0, 1), lab(2, 1, 0)]  # shorter wins in every row
    keep = lambda x: True  # noqa: E731
    # no earlier label: longer wins by default, every model 0.5 (a half per row)
    none = signals.agreements(sig, Comparisons.empty(), rows, keep=keep)
    assert none == {"length": 0.0, "model": 0.5}
    # earlier labels where shorter won flip the length direction; model a beat c
    seen = comps([(0, 0, 1, 1.0), (1, 2, 1, 1.0), (2, 0, 2, 0.0)])
    got = signals.agreements(sig, seen, rows, keep=keep)
    assert got["length"] == 1.0
    rates = signals.model_rates(sig.model, seen)  # (wins + 1) / (games + 2): a 1/2, b 0/2, c 2/2
    np.testing.assert_allclose(rates, [0.5, 0.25, 0.75])
    assert got["model"] == pytest.approx(1 / 3)  # only row 2 (a over b) follows the rates
    assert signals.best(got) == ("length", 1.0)
    # ties and rows `keep` rejects are left out
    assert signals.agreements(sig, seen, [lab(0, 0, 2, tie=True)], keep=keep) is None
    assert signals.agreements(sig, seen, rows, keep=lambda x: x.prompt != 2)["length"] == 1.0


def test_model_signal_ranks_by_win_rate_and_unknown_models_count_half():
    lengths = np.full((2, 3), 10)
    models = np.array([["good", "bad", None], ["bad", "good", None]], dtype=object)
    sig = signals.of_pool(pool_of(lengths, models))
    assert sig.model[0, 2] == -1
    seen = comps([(0, 0, 1, 1.0), (1, 1, 0, 1.0)])  # good beat bad twice
    got = signals.agreements(sig, seen, [lab(1, 1, 0), lab(0, 2, 1)], keep=lambda x: True)
    # row 1: good chosen over bad -> 1; row 2: unknown vs bad (0.5 vs 1/4) -> 1
    assert got["model"] == 1.0 and got["length"] == 0.5


def test_centrality_needs_features():
    lengths = np.array([[1, 2, 3]])
    sig = signals.of_pool(pool_of(lengths, np.array([["a", "b", "c"]])),
                          np.array([[[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]]], np.float32))
    assert sig.centrality.shape == (1, 3)
    assert sig.centrality[0, 1] > sig.centrality[0, 2]  # response 1 is near both others


def test_report_shows_head_agreement_beside_the_best_single_feature(tmp_path):
    pool = write_gold_pool(tmp_path / "pool.csv")  # gold = length plus noise: the signal to beat
    out = tmp_path / "run"
    assert main([str(pool), "--num_responses", str(R), "--num_annotations", "2",
                 "--output_dir", str(out), *FAST]) == 0
    report = (out / "report.md").read_text()
    assert "best single feature, same pairs" in report
    table = [x for x in report.splitlines() if x.startswith("| 1 | dts |")]
    assert len(table) == 1
    cells = [c.strip() for c in table[0].split("|")]
    base = cells[8]  # "0.83 (length)" style
    value, name = base.split(" ", 1)
    assert name in ("(length)", "(model)", "(centrality)") and 0.0 <= float(value) <= 1.0
    first = [x for x in report.splitlines() if x.startswith("| 0 | aepo |")][0]
    assert first.split("|")[8].strip() == "—"  # no head yet, nothing to compare


@pytest.fixture(scope="module")
def task():
    from aeuf.bench.metrics import held_out_pairs
    from aeuf.bench.simulate import Task, split_prompts

    rng = np.random.default_rng(0)
    n, r = 40, 5
    lengths = rng.integers(1, 200, size=(n, r))
    x = np.concatenate([np.log(lengths)[..., None], rng.normal(size=(n, r, 3))], -1)
    x = ((x - x.mean((0, 1))) / x.std((0, 1))).astype(np.float32)
    gold = np.log(lengths).astype(np.float64)
    pool, test = split_prompts(n, 0.25, 0)
    models = np.array([[f"m{i}" for i in range(r)]] * n)
    return Task(pool_of(lengths, models).take(pool), x[pool], x[pool].mean(1), x[test],
                gold[test], held_out_pairs(gold[test]))


def test_bench_records_per_round_head_and_signal_agreement(task):
    from aeuf.bench.agreement import rounds
    from aeuf.bench.simulate import BenchConfig, run_config, simulate
    from aeuf.config import HeadConfig, LoopConfig

    bench = BenchConfig(seeds=1, head=HeadConfig(), regime="once",
                        loop=LoopConfig(batch_size=10, initial_rule="random"))
    c = simulate(task, run_config(bench, "deltaucb", "bll", 0, "deterministic"), curve=False)
    assert len(c.agreement) == 3 and c.agreement[0]["head"] is None
    later = c.agreement[1:]
    # gold is log-length: the length signal (longer wins, as the labels show) is always right
    assert all(x["baselines"]["length"] == 1.0 for x in later)
    assert all(0.0 <= x["head"] <= 1.0 for x in later)
    table = rounds([list(c.agreement)])
    assert table[0]["head"] is None and table[1]["best_signal"] == "length"
    assert table[1]["best_signal_agreement"] == 1.0


def test_head_agreement_counts_an_equal_score_half_and_no_opinion_as_none():
    from aeuf.run.round.absorbing import agreement
    from aeuf.run.round.types import Plan

    rows = [lab(0, 0, 1), lab(1, 1, 0), lab(2, 0, 1)]

    def plan(mean):
        m = None if mean is None else np.asarray(mean, np.float32)
        return Plan(1, "dts", np.arange(3), np.array([[0, 1]] * 3), np.zeros(3), np.zeros(3), m)

    assert agreement(plan([[1, 0], [1, 0], [0, 0]]), rows) == pytest.approx(0.5)  # 1, 0, half
    assert agreement(plan([[0, 0]] * 3), rows) is None  # a head with no opinion: "—", not 0.00
    assert agreement(plan(None), rows) is None
