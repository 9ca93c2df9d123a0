"""The judge cascade (issue 12): every pair goes to the cheap judge; the strong judge sees only
the pairs the cheap judge is unsure of, disagrees with the head on, or the check slice; the
head learns cheap labels softened by a flip rate measured on checked pairs; and with real
judges on a llama.cpp server, a killed run resumed pays for no key twice."""

import dataclasses
import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from killing import kill_after_lines, log_lines
from paths import REPO
from pools import synthetic_pool

from aeuf.bench.simulate import BenchConfig, replay_judge, run_config
from aeuf.config import HeadConfig, LoopConfig, OracleConfig
from aeuf.oracle.cheap import simulated_judge
from aeuf.run import cascade
from aeuf.run.round import engine
from aeuf.run.round.routes import flip_rate

pytest_plugins = ["servers"]
P, R, D = 160, 4, 6
MARGIN = 1.0


def linear_pool():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(P, R, D)).astype(np.float32)
    gold = np.round(x @ np.array([3.0, -2.0, 1.5, 0.0, 1.0, 0.5])).astype(np.float64)  # some ties
    return synthetic_pool(gold), x


def pure(oracle):
    def judge(plan, tasks):
        return [oracle.resolve(t, {a.key: a for a in oracle.send(oracle.plan(t))}) for t in tasks]
    return judge


@pytest.fixture(scope="module")
def played():
    bench = BenchConfig(regime="once", head=HeadConfig(),
                        loop=LoopConfig(batch_size=20, initial_rule="random", check_fraction=0.25))
    cfg = run_config(bench, "dts", "bll", 0, "deterministic")
    pool, x = linear_pool()
    ctx = engine.make_context(cfg, x, x.mean(1))
    seen = {"cheap": [], "strong": []}
    cheap_pure, strong_pure = pure(simulated_judge(2.0, 0)), replay_judge(cfg.oracle)

    def record(name, inner):
        def judge(plan, tasks):
            got = inner(plan, tasks)
            seen[name].append((plan.t, [t.prompt_id for t in tasks], got))
            return got
        return judge

    judge = cascade.cascade_judge(record("cheap", cheap_pure), record("strong", strong_pure),
                                  MARGIN, ("cheap", "strong"))
    state, rounds = engine.initial_state(P), []
    for t, size in enumerate(engine.sizes_of(ctx)):
        before = state.comps.size
        state, plan, outcome = engine.play(ctx, pool, state, t, size, judge, "strong")
        rounds.append((plan, outcome, state.checks.noise, state.comps, before))
        state = engine.refit(ctx, state, t)
    return pool, rounds, seen


def test_the_strong_judge_sees_only_unsure_disagreeing_or_checked_pairs(played):
    pool, rounds, seen = played
    cheap = {t: dict(zip(ids, js)) for t, ids, js in seen["cheap"]}
    strong = {t: set(ids) for t, ids, _ in seen["strong"]}
    routed = Counter()
    for plan, outcome, *_ in rounds:
        ids = [str(pool.prompt_ids[p]) for p in plan.prompts]
        assert set(cheap[plan.t]) == set(ids)  # every pair goes to the cheap judge first
        for i, pid in enumerate(ids):
            r = cheap[plan.t][pid].ratings
            unsure = not np.all(np.isfinite(r)) or abs(r[0] - r[1]) < MARGIN
            disagree = plan.routing.head_p is not None and (plan.routing.head_p[i] >= 0.5) != (r[0] > r[1])
            why = "unsure" if unsure else "disagree" if disagree else "check" if plan.routing.check[i] else None
            assert (pid in strong.get(plan.t, set())) == (why is not None), (plan.t, pid)
            routed[why] += 1
        judges = Counter(x.judge for x in outcome.labelled)
        assert judges["cheap"] == outcome.routes.cheap
    assert all(routed[k] > 0 for k in ("unsure", "disagree", "check", None)), routed


def test_cheap_labels_are_softened_by_the_flip_rate_of_checked_pairs(played):
    pool, rounds, seen = played
    cheap = {(t, pid): j for t, ids, js in seen["cheap"] for pid, j in zip(ids, js)}
    noise = (0, 0)
    for plan, outcome, state_noise, comps, before in rounds:
        for i, p in enumerate(plan.prompts):  # checked pairs the cheap judge decided alone
            r = cheap[plan.t, str(pool.prompt_ids[p])].ratings
            g = pool.gold[p, plan.slots[i]]
            alone = np.all(np.isfinite(r)) and abs(r[0] - r[1]) >= MARGIN and (
                plan.routing.head_p is None or (plan.routing.head_p[i] >= 0.5) == (r[0] > r[1]))
            if alone and plan.routing.check[i] and g[0] != g[1]:  # a strong tie says nothing
                noise = (noise[0] + 1, noise[1] + int((r[0] > r[1]) != (g[0] > g[1])))
        assert state_noise == noise
        eps = flip_rate(noise)
        mine = [x for x in outcome.labelled if x.judge == "cheap"]
        assert all(x.confidence == pytest.approx(1 - eps) for x in mine)
        new = comps.p[before:]
        rows = dict(zip(zip(comps.prompt[before:].tolist(), comps.a[before:].tolist()), new))
        for x in mine:
            q = rows[(x.prompt, x.slots[0])]
            assert min(q, 1 - q) == pytest.approx(eps)  # a cheap label, softened
    assert noise[0] >= 3


def test_the_exported_labels_beat_the_cheap_judge_alone(played):
    pool, rounds, seen = played
    rows = [x for _, o, *_ in rounds for x in o.labelled if not x.tie]
    right = [pool.gold[x.prompt, x.slots[x.chosen]] > pool.gold[x.prompt, x.slots[x.rejected]]
             for x in rows]
    cheap_right = [np.sign(j.ratings[0] - j.ratings[1]) == np.sign(j.task.gold[0] - j.task.gold[1])
                   for _, _, js in seen["cheap"] for j in js]
    assert np.mean(right) > np.mean(cheap_right) + 0.05


def test_judge_costs_group_the_log_by_model():
    from aeuf.types import JudgeAnswer

    log = [JudgeAnswer("k1", "q", ("a",), 4.0, "", "big/overall@1234", 0.5, 100),
           JudgeAnswer("k2", "q", ("b",), 3.0, "", "big/overall@1234", 0.25, 50),
           JudgeAnswer("k3", "q", ("a",), 3.0, "", "small/overall@1234", 0.01, 80)]
    assert cascade.judge_costs(log) == [("big", 2, 150, 0.75), ("small", 1, 80, 0.01)]


# --- real judges: a kill and a rerun never pay twice -------------------------------------------

ROOT = REPO
QUESTIONS = ["What is the capital of France?", "Name a primary colour.", "What is 2 + 2?",
             "Say hello in Spanish."]


def small_pool(path: Path) -> Path:
    rows = []
    for n, q in enumerate(QUESTIONS):
        row = {"prompt_id": f"q{n}", "instruction": q}
        for j in range(4):
            row[f"response_{j}"] = ["Paris.", "I do not know.", f"Answer {n}: {'yes ' * j}",
                                    "Blue, red and yellow are primary colours; 4; hola."][j]
        rows.append(row)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def command(pool: Path, strong: str, cheap: str, out: Path) -> list[str]:
    return [sys.executable, "-m", "aeuf", str(pool), "--num_responses", "4", "--oracle", "judge",
            "--judge_base_url", strong, "--judge_model", "smollm2",
            "--cheap_judge_base_url", cheap, "--cheap_judge_model", "smollm2-cheap",
            "--judge_max_tokens", "12", "--judge_concurrency", "2",
            "--cheap_judge_concurrency", "2", "--cheap_judge_margin", "0.0",
            "--check_fraction", "0.5", "--judge_price_in", "2", "--judge_price_out", "2",
            "--cheap_judge_price_in", "1", "--cheap_judge_price_out", "1",
            "--features", "stats", "--head", "bll", "--batch_size", "2",
            "--initial_rule", "random", "--output_dir", str(out), "--no_progress"]


def check_routes(out: Path, log: list[dict], lost_strong: set = frozenset()) -> Counter:
    """Every pair the strong judge was asked is one the cheap judge left to it (a tie or no
    answer, margin 0), disagreed with the head on, or drawn for the check slice.
    lost_strong: prompts whose strong requests were in flight at a kill (no answer logged)."""
    cheap = {x["response_ids"][0]: x["value"] for x in log if x["judge"].startswith("smollm2-cheap/")}
    strong = {x["response_ids"][0] for x in log if x["judge"].startswith("smollm2/")}
    routed = Counter()
    for f in sorted((out / "rounds").glob("*.json")):
        rec = json.loads(f.read_text())
        for i, rids in enumerate(rec["response_ids"]):
            r = [cheap.get(x) for x in rids]
            unsure = None in r or r[0] == r[1]
            p = rec["head_p"][i] if "head_p" in rec else None
            disagree = not unsure and p is not None and (p >= 0.5) != (r[0] > r[1])
            asked = bool(set(rids) & strong) or rec["prompt_ids"][i] in lost_strong
            assert asked == (unsure or disagree or rec["check"][i]), (f.name, rids, r, p)
            routed["strong" if asked else "cheap"] += 1
    return routed


@pytest.mark.server
@pytest.mark.slow
def test_killed_cascade_rerun_pays_for_no_key_twice(llama_server, fault_proxy, tmp_path):
    strong, cheap = fault_proxy(llama_server.base_url), fault_proxy(llama_server.base_url)
    out, pool = tmp_path / "run", small_pool(tmp_path / "pool.csv")
    env = os.environ | {"OPENAI_API_KEY": "sk-cascade-test", "HF_HUB_OFFLINE": "1"}
    cmd = command(pool, strong.base_url, cheap.base_url, out)
    kill_after_lines(cmd, out / "judgements.jsonl", env=env)
    before = {x["key"] for x in log_lines(out / "judgements.jsonl")}
    sent_before = strong.n + cheap.n
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    log = log_lines(out / "judgements.jsonl")
    keys = Counter(x["key"] for x in log)
    assert set(keys) >= before and max(keys.values()) == 1  # no key answered twice
    # requests in flight at the kill (an intent, no answer): possibly paid, not sent again
    intents = [json.loads(x) for x in (out / "intents.jsonl").read_text().splitlines()]
    lost = [x for x in intents if x["key"] not in keys]
    by_judge = Counter(x["judge"].split("/")[0] for x in log)
    lost_cheap = sum(x["purpose"] == "cheap_judge" for x in lost)
    assert by_judge["smollm2-cheap"] + lost_cheap == 2 * len(QUESTIONS)  # every pair to the cheap judge
    new = len(log) - len(before)
    retried = sum("--- retry ---" in x["raw"] or (x["error"] or "").startswith("unparsable")
                  for x in log if x["key"] not in before)
    assert strong.n + cheap.n - sent_before <= new + retried + 4  # + the requests in flight
    routed = check_routes(out, log, {x["prompt_id"] for x in lost if x["purpose"] == "judge"})
    assert routed["strong"] >= 1 and routed["cheap"] + routed["strong"] == len(QUESTIONS)
    rows = [json.loads(x) for x in (out / "preferences.jsonl").read_text().splitlines()]
    assert {r["judge"] for r in rows} <= {"judge", "cheap_judge"}
    costs = {c.judge: c for c in cascade.judge_costs(SimpleNamespace(**x) for x in log)}
    unit = 1e-6  # USD per token at a price of 1 per million
    assert costs["smollm2-cheap"].cost == pytest.approx(costs["smollm2-cheap"].tokens * unit)
    if "smollm2" in costs:
        assert costs["smollm2"].cost == pytest.approx(costs["smollm2"].tokens * 2 * unit)
    assert "Traceback" not in done.stderr and math.isfinite(sum(c.cost for c in costs.values()))


def test_cheap_judge_must_be_another_model():
    from aeuf.config import EndpointConfig, RunConfig
    from aeuf.errors import ConfigError

    cfg = RunConfig(oracle=OracleConfig(judge=EndpointConfig(model="m"),
                                        cheap_judge=EndpointConfig(model="m")))
    with pytest.raises(ConfigError, match="cheap_judge_model"):
        engine.validate(dataclasses.replace(cfg), 4)
