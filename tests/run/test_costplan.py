"""--dry_run (issue 12): the cost plan counts requests, tokens, cost and batch shards from the
texts alone; it sends nothing (a proxy counts zero requests) and writes nothing; its prompt-
token estimate is within a factor 1.5 of the usage the llama.cpp server reports."""

import dataclasses
import json
import math
import urllib.request

import numpy as np
import pytest
from paths import REPO

from aeuf.cli import main
from aeuf.config import (
    EndpointConfig,
    InputConfig,
    LoopConfig,
    OracleConfig,
    RunConfig,
    WebConfig,
)
from aeuf.io import read_pool
from aeuf.oracle.cheap import price_per_token
from aeuf.run.jobs import costplan
from aeuf.run.round.engine import tasks_of
from aeuf.run.round.types import Plan
from aeuf.types import JudgeTask, ResponsePool

pytest_plugins = ["servers"]
ROOT = REPO
FACTOR = 1.5


def tiny_pool(P=10, R=4) -> ResponsePool:
    grid = lambda f: np.array([[f(p, i) for i in range(R)] for p in range(P)], dtype=object)  # noqa: E731
    return ResponsePool(np.array([f"q{p}" for p in range(P)], dtype=object),
                        np.array([f"Question {p}?" for p in range(P)], dtype=object),
                        grid(lambda p, i: "word " * (10 * i + p)), grid(lambda p, i: f"m{i}"),
                        grid(lambda p, i: f"q{p}:{i}"))


def run_cfg(**oracle) -> RunConfig:
    judge = EndpointConfig(model="judge-model")
    return RunConfig(loop=LoopConfig(budget=8, batch_size=3),
                     oracle=OracleConfig(**{"name": "judge", "judge": judge, **oracle}))


def test_estimate_tokens_by_hand():
    msgs = [{"role": "system", "content": "a" * 40}, {"role": "user", "content": "b" * 8}]
    assert costplan.estimate_tokens(msgs) == (10 + 4) + (2 + 4) + 3


def test_requests_shards_and_cost_counted_by_hand():
    pool = tiny_pool()
    line = costplan.plan(run_cfg(), pool).lines[0]
    assert costplan.plan(run_cfg(), pool).rounds == [3, 3, 2]
    assert line.requests == 8 * 2  # overall: one request per shown response
    assert costplan.plan(run_cfg(template="ultrafeedback"), pool).lines[0].requests == 8 * 2 * 4
    assert costplan.plan(run_cfg(template="pairwise"), pool).lines[0].requests == 8 * 2
    batch = costplan.plan(run_cfg(name="batch", batch_shard_size=5), pool).lines[0]
    assert batch.shards == 2 + 2 + 1  # per round: ceil(6/5), ceil(6/5), ceil(4/5)
    wide = dataclasses.replace(run_cfg(), acquire=dataclasses.replace(RunConfig().acquire,
                                                                      rule="west_of_n"))
    assert costplan.plan(wide, pool).lines[0].requests == 3 * 2 + 5 * 4  # aepo shows 2 first
    judge = EndpointConfig(model="judge-model", price_in=3.0, price_out=3.0)
    priced = run_cfg(judge=judge)
    pin, pout = price_per_token(priced.oracle)
    got = costplan.plan(priced, pool).lines[0]
    assert got.cost[0] == pytest.approx(got.prompt_tokens * pin + 16 * 40 * pout)
    assert got.cost[1] == pytest.approx(2 * got.prompt_tokens * pin + 2 * 16 * 256 * pout)


def test_mean_tokens_per_request_from_the_rendered_messages():
    from aeuf.oracle.judge import make_spec, plan_requests

    pool = tiny_pool(P=2)
    spec = make_spec(run_cfg().oracle)
    per = []
    for p in range(2):
        task = JudgeTask(f"q{p}", str(pool.prompts[p]), tuple(pool.response_ids[p]),
                         tuple(pool.responses[p]))
        per.append(np.mean([costplan.estimate_tokens(costplan.request_body(spec, r)["messages"])
                            for r in plan_requests(spec, task)]))
    line = costplan.plan(dataclasses.replace(run_cfg(), loop=LoopConfig(budget=2)), pool).lines[0]
    assert line.prompt_tokens == pytest.approx(np.mean(per) * line.requests)


def test_other_oracles_and_the_cascade():
    pool = tiny_pool()
    replay = costplan.plan(run_cfg(name="replay"), pool)
    assert (replay.lines[0].requests, replay.lines[0].cost) == (16, (0.0, 0.0))
    assert "tokens" not in costplan.render(replay)  # no estimate to explain: no token line
    assert costplan.plan(run_cfg(name="human"), pool).lines[0].requests == 8
    web = costplan.plan(run_cfg(name="web", web=WebConfig(annotators=3, votes_per_pair=3)), pool)
    assert web.lines[0].requests == 8 * 3  # votes: pairs x votes_per_pair
    assert any("8 pairs x 3" in n for n in web.notes)
    cheap = EndpointConfig(model="small-model")
    cp = costplan.plan(run_cfg(cheap_judge=cheap), pool)
    assert [ln.role for ln in cp.lines] == ["judge", "cheap judge"]
    assert cp.lines[1].model == "small-model" and cp.lines[1].requests == 16
    assert any("cheap judge first" in n for n in cp.notes)
    text = costplan.render(cp)
    assert "nothing was sent" in text and "16 requests" in text and "characters/4" in text


@pytest.mark.server
def test_dry_run_sends_nothing_and_writes_nothing(llama_server, fault_proxy, tmp_path, capsys,
                                                   monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # planning needs no key
    proxy = fault_proxy(llama_server.base_url)
    out = tmp_path / "run"
    cases = {"judge (judge, smollm2)": [], "batch shards": ["--oracle", "batch"],
             "cheap judge (judge, small)": ["--cheap_judge_base_url", proxy.base_url,
                                            "--cheap_judge_model", "small"]}
    for needle, extra in cases.items():
        code = main([str(ROOT / "dataset" / "prompts.csv"), "--num_responses", "8",
                     "--oracle", "judge", "--judge_base_url", proxy.base_url, "--judge_model",
                     "smollm2", "--output_dir", str(out), "--dry_run", "--no_progress", *extra])
        cap = capsys.readouterr()
        printed = cap.out
        assert code == 0 and needle in printed and "prompt tokens ~" in printed, printed
        assert "labelled" not in cap.err  # no run summary after a plan
    assert proxy.n == 0 and not out.exists()


def usage(base_url: str, body: dict) -> int:
    req = urllib.request.Request(f"{base_url}/chat/completions", method="POST",
                                 data=json.dumps(body | {"max_tokens": 1}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())["usage"]["prompt_tokens"]


@pytest.mark.server
@pytest.mark.slow
def test_token_estimate_within_a_factor_of_the_servers_usage(llama_server):
    from aeuf.oracle.judge import make_spec, plan_requests

    # one prompt's 8 requests (each about 600 tokens, 4-6 s on the test server)
    pool = read_pool(InputConfig(path=str(ROOT / "dataset" / "prompts.csv"), num_instructions=1))
    cfg = RunConfig(acquire=dataclasses.replace(RunConfig().acquire, num_annotations=8),
                    oracle=OracleConfig(name="judge", max_tokens=1,
                                        judge=EndpointConfig(model="smollm2")))
    spec = make_spec(cfg.oracle)
    line = costplan.plan(cfg, pool).lines[0]
    plan = Plan(0, "x", np.arange(1), np.arange(8)[None], np.zeros(1), np.zeros(1))
    real, est = [], []
    for task in tasks_of(pool, plan):
        for rq in plan_requests(spec, task):
            body = costplan.request_body(spec, rq)
            real.append(usage(llama_server.base_url, body))
            est.append(costplan.estimate_tokens(body["messages"]))
    ratio = np.array(est) / np.array(real)
    assert line.requests == len(real) == 8
    assert 1 / FACTOR <= ratio.min() and ratio.max() <= FACTOR, ratio
    assert 1 / FACTOR <= line.prompt_tokens / sum(real) <= FACTOR
    assert line.completion_tokens[1] >= len(real) and math.isfinite(line.cost[1])
