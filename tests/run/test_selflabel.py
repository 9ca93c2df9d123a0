"""Self-labelling with a guarantee (issue 12): the threshold comes from a finite-sample bound,
nothing above it is sent except the check slice, self-labelled rows say so, a resumed run
sends nothing it self-labelled, and --stop_when_agreement ends a run."""

import argparse
import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
from pools import synthetic_pool

from aeuf import dataset
from aeuf.bench.simulate import BenchConfig, replay_judge, run_config
from aeuf.cli import main
from aeuf.config import ExportConfig, HeadConfig, LoopConfig, RunConfig
from aeuf.errors import ConfigError
from aeuf.run.round import engine, selflabel
from aeuf.run.round.selflabel import Calibration, lower_bound, min_pairs, threshold
from aeuf.types import Belief


def cp_by_hand(k: int, n: int, delta: float) -> float:
    """The p at which P(X >= k | n, p) = delta, by bisection on the binomial tail."""
    def tail(p):
        return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))

    lo, hi = 0.0, 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if tail(mid) < delta else (lo, mid)
    return lo


def test_clopper_pearson_lower_bound_hand_cases():
    assert lower_bound(59, 59, 0.05) == pytest.approx(0.05 ** (1 / 59)) == pytest.approx(0.95050, abs=1e-5)
    assert lower_bound(58, 58, 0.05) == pytest.approx(0.94966, abs=1e-5)  # < 0.95
    assert lower_bound(1, 1, 0.05) == pytest.approx(0.05)
    assert lower_bound(0, 10, 0.05) == 0.0
    for k, n in ((99, 100), (96, 100), (147, 150), (36, 40), (156, 200)):
        assert lower_bound(k, n, 0.05) == pytest.approx(cp_by_hand(k, n, 0.05), abs=1e-6)
    assert lower_bound(96, 100, 0.05) == pytest.approx(0.9105, abs=1e-3)
    assert (min_pairs(0.95, 0.05), min_pairs(0.90, 0.05), min_pairs(0.99, 0.05)) == (59, 29, 299)


def calib(*groups) -> Calibration:
    """groups of (confidence, pairs, correct)."""
    conf = np.concatenate([np.full(n, c) for c, n, _ in groups])
    right = np.concatenate([np.arange(n) < k for _, n, k in groups])
    return Calibration(conf, right)


def test_start_pairs_is_where_that_many_errors_still_certify():
    for target, delta in ((0.95, 0.05 / 3), (0.9, 0.05 / 3), (0.95, 0.05)):
        assert selflabel.start_pairs(target, delta, 0) == min_pairs(target, delta)
        for e in (2, 5):
            n = selflabel.start_pairs(target, delta, e)
            assert lower_bound(n - e, n, delta) >= target > lower_bound(n - 1 - e, n - 1, delta)
    assert [selflabel.start_pairs(0.95, 0.05 / 3, e) for e in selflabel.TOLERANCES] == [80, 153, 243]


def test_threshold_is_the_lowest_accepted_by_any_walk():
    # walk 0 (delta/3, from 80 pairs): 80/80 -> LB 0.9503 passes; 116/120 fails;
    # walks 1 and 2 start at 153 and 243 pairs: 176/220 fails, 220 < 243 is never tested
    cal = calib((0.97, 80, 80), (0.80, 40, 36), (0.60, 100, 60))
    assert 0.80 < threshold(cal, 0.95, 0.05) <= 0.97
    # 0.90: walk 0 starts at 39 pairs: 80/80 and 116/120 pass (LB 0.92), 176/220 fails
    assert 0.60 < threshold(cal, 0.90, 0.05) <= 0.80
    assert threshold(calib((0.97, 79, 79), (0.6, 100, 50)), 0.95, 0.05) is None  # 79 too few
    assert threshold(Calibration.empty(), 0.9, 0.05) is None


def test_a_few_errors_among_the_most_confident_no_longer_end_every_walk():
    # 2 wrong among the 60 most confident: a single walk from 59 pairs fails there
    # (58/60, LB 0.90) and self-labels nothing; walk 1 first tests 153+ pairs: 198/200
    cal = calib((0.99, 60, 58), (0.97, 140, 140))
    assert threshold(cal, 0.95, 0.05) <= 0.97  # every pair is at 0.97 or above
    # and a walk still stops at its first failure: 5 more errors at 0.97 sink every walk
    assert threshold(calib((0.99, 60, 58), (0.97, 140, 135)), 0.95, 0.05) is None


def test_the_guarantee_holds_for_a_head_just_below_the_target():
    # a head right on 0.945 of its pairs at every confidence: any accepted threshold is a
    # false claim of 0.95, which the bound may make with probability at most delta = 0.1
    # (the three walks each at delta, without the Bonferroni split, make it on 0.11)
    rng = np.random.default_rng(0)
    false = 0
    for _ in range(300):
        conf = rng.choice(np.linspace(0.55, 0.999, 12), size=400)
        false += threshold(Calibration(conf, rng.random(400) < 0.945), 0.95, 0.1) is not None
    assert false / 300 <= 0.1


def test_decide_keeps_the_check_slice_and_pair_prob_reads_the_samples():
    head_p = np.array([0.99, 0.01, 0.7, 0.99])
    check = np.array([False, False, False, True])
    assert selflabel.decide(head_p, check, 0.9).tolist() == [True, True, False, False]
    assert selflabel.decide(head_p, check, None).tolist() == [False] * 4
    samples = np.array([[[0.0, 2.0, 5.0]], [[1.0, 1.0, 5.0]]])  # K=2, P=1, R=3
    belief = Belief(samples.mean(0), samples.std(0), samples, None)
    p = selflabel.pair_prob(belief, np.array([0]), np.array([[2, 0]]))
    want = np.mean([1 / (1 + math.exp(-5.0)), 1 / (1 + math.exp(-4.0))])
    assert p == pytest.approx([want])


# --- the engine ---------------------------------------------------------------------------

P, R, D = 240, 4, 6


def linear_pool():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(P, R, D)).astype(np.float32)
    gold = (x @ np.array([3.0, -2.0, 1.5, 0.0, 1.0, 0.5])).astype(np.float64)
    return synthetic_pool(gold), x


def engine_cfg(target=0.9, check=0.2) -> RunConfig:
    bench = BenchConfig(regime="once", head=HeadConfig(),
                        loop=LoopConfig(batch_size=24, initial_rule="random"))
    cfg = run_config(bench, "dts", "bll", 0, "deterministic")
    return dataclasses.replace(cfg, loop=dataclasses.replace(
        cfg.loop, self_label_accuracy=target, check_fraction=check))


def play_all(cfg: RunConfig):
    pool, x = linear_pool()
    ctx = engine.make_context(cfg, x, x.mean(1))
    replay, sent = replay_judge(cfg.oracle), []

    def judge(plan, tasks):
        sent.append((plan.t, [t.prompt_id for t in tasks]))
        return replay(plan, tasks)

    state, plans, labelled = engine.initial_state(P), [], []
    for t, size in enumerate(engine.sizes_of(ctx)):
        state, plan, outcome = engine.play(ctx, pool, state, t, size, judge, "replay")
        state = engine.refit(ctx, state, t)
        plans.append(plan)
        labelled += outcome.labelled
    return pool, plans, labelled, sent, state


@pytest.fixture(scope="module")
def played():
    return play_all(engine_cfg())


def test_nothing_above_the_threshold_is_sent_except_the_check_slice(played):
    pool, plans, _, sent, _ = played
    asked = dict(sent)
    above_sent = 0
    for plan in plans:
        ids = [str(pool.prompt_ids[p]) for p in plan.prompts]
        got = set(asked.get(plan.t, []))
        for i, pid in enumerate(ids):
            sure = plan.routing.threshold is not None and selflabel.confidence(plan.routing.head_p[i]) >= plan.routing.threshold
            assert (pid in got) == (not sure or bool(plan.routing.check[i])), (plan.t, pid)
            above_sent += bool(sure and plan.routing.check[i])
        assert len(got) == len(ids) - int(np.sum(plan.routing.self_labelled))
    assert sum(int(np.sum(p.routing.self_labelled)) for p in plans) >= 20  # the head did label
    assert above_sent >= 1  # and the check slice above the threshold was still sent
    assert all(p.routing.threshold is None for p in plans[:2])  # nothing to calibrate on before


def test_self_labelled_rows_are_marked_and_the_head_does_not_train_on_them(played):
    pool, plans, labelled, sent, state = played
    mine = [x for x in labelled if x.judge == selflabel.HEAD]
    cut = {p.t: p.routing.threshold for p in plans}
    assert mine and all(x.confidence >= cut[x.round] for x in mine)
    for x in mine:  # the exported order is the head's favourite, with its confidence
        plan = plans[x.round]
        row = int(np.flatnonzero(plan.prompts == x.prompt)[0])
        p = plan.routing.head_p[row]
        assert x.confidence == pytest.approx(max(p, 1 - p))
        assert x.slots[x.chosen] == plan.slots[row, 0 if p >= 0.5 else 1]
    assert all(math.isnan(x.confidence) for x in labelled if x.judge == "replay")
    judged = sum(len(ids) for _, ids in sent)
    assert state.comps.size == judged  # one comparison per judged pair, none from the head
    right = [pool.gold[x.prompt, x.slots[x.chosen]] > pool.gold[x.prompt, x.slots[x.rejected]]
             for x in mine]
    assert np.mean(right) >= 0.9


def test_self_labelling_is_off_by_default_and_checked():
    _, plans, labelled, _, _ = play_all(engine_cfg(target=None))
    assert all(p.routing.threshold is None and not p.routing.self_labelled.any() for p in plans)
    assert not any(x.judge == selflabel.HEAD for x in labelled)
    for bad in (1.0, 0.4):
        with pytest.raises(ConfigError, match="self_label_accuracy"):
            engine.validate(engine_cfg(target=bad), R)
    wide = engine_cfg()
    wide = dataclasses.replace(wide, acquire=dataclasses.replace(wide.acquire, rule="west_of_n"))
    with pytest.raises(ConfigError, match="work on pairs"):
        engine.validate(wide, R)


# --- the main command ---------------------------------------------------------------------

N = 160


def write_pool(path):
    rng = np.random.default_rng(0)
    rows = []
    for p in range(N):
        row = {"prompt_id": f"q{p}", "instruction": f"Question {p}: explain topic {p}."}
        for r in range(4):
            n = int(rng.integers(1, 60))
            row[f"response_{r}"] = " ".join(f"w{p}x{r}y{i}" for i in range(n)) + "."
            row[f"response_{r}_score"] = float(n)  # the length decides: stats features learn it
        rows.append(row)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


FAST = ["--features", "stats", "--head", "bll", "--batch_size", "16", "--initial_rule", "random",
        "--num_responses", "4", "--no_progress"]


def test_main_command_marks_self_labels_never_asks_them_and_resumes(tmp_path, capsys):
    pool, out = write_pool(tmp_path / "pool.csv"), tmp_path / "run"
    args = [str(pool), "--output_dir", str(out), "--self_label_accuracy", "0.9", *FAST]
    assert main(args) == 0
    rows = [json.loads(x) for x in (out / "preferences.jsonl").read_text().splitlines()]
    heads = [r for r in rows if r["judge"] == "head"]
    assert heads and len(rows) > len(heads)
    asked = {json.loads(x)["response_ids"][0] for x in (out / "judgements.jsonl").read_text().splitlines()}
    for t in range(N // 16):
        rec = json.loads((out / "rounds" / f"{t}.json").read_text())
        for rids, own in zip(rec["response_ids"], rec["self_labelled"]):
            assert own == (not set(rids) & asked)  # a self-labelled pair was never asked
    for r in heads:  # the head's order is the true one here (length decides)
        assert len(r["chosen"]) > len(r["rejected"])
    said = capsys.readouterr().err  # the summary and the report show the self-label share
    assert "labelled by the head itself" in said
    table = [x for x in (out / "report.md").read_text().splitlines() if x.startswith("| round")
             or x.startswith("| ") and x.split("|")[2].strip() in ("random", "dts")]
    assert "self-labelled (share)" in table[0] and any(" (0.00) |" not in x for x in table[1:])
    first = (out / "preferences.jsonl").read_text()
    assert main(args) == 0  # a rerun replays the recorded decisions: nothing is sent
    assert "(0 sent now)" in capsys.readouterr().err
    assert (out / "preferences.jsonl").read_text() == first


def test_stop_when_agreement_ends_the_run(tmp_path):
    from aeuf.commands.run import add_arguments, config_from_args
    from aeuf.run.loop import run

    pool = write_pool(tmp_path / "pool.csv")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    cfg = config_from_args(parser.parse_args([str(pool), "--output_dir", str(tmp_path / "run"),
                                              "--stop_when_agreement", "0.8", *FAST]))
    s = run(cfg, progress=False)
    agree = [r["agreement"] for r in s.progress]
    stop = next(i for i, a in enumerate(agree) if a is not None and a >= 0.8)
    assert len(s.progress) == stop + 1 < N // 16
    assert s.labelled < N and all("self_label_share" in r for r in s.progress)


def test_every_round_checks_a_fixed_share_of_the_pairs_the_head_would_label(played):
    """Issue 24.28: not a coin flip per pair (rounds with every confident pair self-labelled
    and none checked), but ceil(check_fraction x the confident pairs), every round."""
    _, plans, _, _, _ = played
    fraction, rounds = engine_cfg().loop.check_fraction, 0
    for plan in plans:
        route = plan.routing
        if route.threshold is None:
            continue
        sure = selflabel.confidence(route.head_p) >= route.threshold
        if sure.any():
            rounds += 1
            assert int(np.sum(route.check)) == math.ceil(fraction * sure.sum() - 1e-9), plan.t
            assert not np.any(route.check & ~sure)  # the check is on the pairs it is for
    assert rounds >= 3


def test_self_labelled_rows_carry_no_oracle_score_and_no_margin(played):
    """Issue 24.7: the head's P is not on the oracle's scale: a self-labelled row has null
    scores and margin 0 (its P is its confidence); judge rows keep score differences."""
    pool, _, labelled, _, _ = played
    rows = dataset.build_rows(pool, labelled, ExportConfig())
    mine = rows[rows["judge"] == selflabel.HEAD]
    theirs = rows[rows["judge"] != selflabel.HEAD]
    assert len(mine) and mine["chosen_score"].isna().all() and mine["rejected_score"].isna().all()
    assert (mine["margin"] == 0.0).all() and (mine["confidence"] > 0.5).all()
    assert np.allclose(theirs["margin"], theirs["chosen_score"] - theirs["rejected_score"])
