"""`--dry_run`: what a run would ask and cost, from the texts alone, before any call.

For the chosen template(s), judge(s) and budget: requests, estimated prompt and completion
tokens, cost at the given prices and, for the batch oracle, the shards. Nothing is sent,
nothing is written and no model is loaded: the plan reads the pool and renders the judge's
real chat messages (aeuf.oracle.judge's own request bodies).

Estimates: prompt tokens = characters / 4 + 4 per chat message + 3 (English text through a
BPE tokenizer; tests/run/test_costplan.py holds it within a factor 1.5 of the usage the llama.cpp
server reports); the prompts labelled are not known before the head chooses them, so each
round counts the mean over every prompt's requests (the pairwise template: over the pairs
of each prompt). Completion tokens: EXPECTED_REPLY per reply (a rating line and a short
rationale), and at most --judge_max_tokens per reply with every request asked twice (one
retry after an unparsable reply). Self-labelling and the cascade only lower what the strong
judge is asked: the plan shows its most.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from aeuf.config import OracleConfig, RunConfig, SpendConfig
from aeuf.oracle import OracleKind, auto_name, kind_of
from aeuf.oracle.cheap import cheap_config, price_per_token
from aeuf.oracle.judge import JUDGE
from aeuf.run.round import engine
from aeuf.types import JudgeTask, ResponsePool

EXPECTED_REPLY = 40  # tokens of a typical reply: "Rating: 4" and a one-sentence rationale
MAX_PROMPTS = 2000  # prompts rendered for the token estimate (a seeded sample above this)


class JudgeLine(NamedTuple):
    """One judge's share of the plan (tokens and cost as (expected, at most))."""

    role: str
    oracle: str
    model: str
    requests: int
    prompt_tokens: float
    completion_tokens: tuple[float, float]
    cost: tuple[float, float]
    shards: int | None


class CostPlan(NamedTuple):
    prompts: int
    rounds: list[int]
    shown: list[int]
    lines: list[JudgeLine]
    notes: list[str]


def estimate_tokens(messages: list[dict]) -> float:
    """Prompt tokens of chat messages: characters / 4 + 4 per message + 3."""
    return sum(len(str(m.get("content") or "")) / 4.0 + 4.0 for m in messages) + 3.0


def request_body(spec, request) -> dict:
    """The chat body the judge sends for a request (built at plan time, or when sent)."""
    from aeuf.oracle import judge

    body = request.payload.get("body")
    return body if body is not None else judge.chat_body(spec, request)


def per_request_tokens(spec, pool: ResponsePool, prompts) -> float:
    """Mean prompt tokens of one request of each template, summed over the templates:
    the mean over `prompts` of the mean over each prompt's requests."""
    from aeuf.oracle import judge

    R = pool.shape[1]
    pairs = [(r,) for r in range(R)] if spec.kind == "rating" else \
        [(r, (r + 1) % R) for r in range(R)]  # cyclic pairs: every response twice
    means = []
    for p in prompts:
        texts = [(str(pool.responses[p, a]), str(pool.response_ids[p, a])) for a in range(R)]
        tokens = [estimate_tokens(request_body(spec, rq)["messages"])
                  for group in pairs
                  for rq in judge.plan_requests(spec, _task(pool, p, group, texts))]
        means.append(np.mean(tokens) * len(spec.templates))
    return float(np.mean(means))


def _task(pool: ResponsePool, p: int, group, texts) -> JudgeTask:
    return JudgeTask(str(pool.prompt_ids[p]), str(pool.prompts[p]),
                     tuple(texts[a][1] for a in group), tuple(texts[a][0] for a in group))


def requests_per_prompt(kind: str, templates: int, shown: int) -> int:
    """Rating: a request per response and template; pairwise: both orders of every pair."""
    return templates * (shown if kind == "rating" else shown * (shown - 1))


def judge_line(role: str, name: str, kind: OracleKind, ocfg: OracleConfig, pool: ResponsePool,
               sizes, shown, sample) -> JudgeLine:
    """The plan of one LLM judge (`name`, of `kind`) over the rounds."""
    from aeuf.oracle.judge import make_spec

    caps = kind.caps
    spec = make_spec(ocfg, kind.model(ocfg) if kind.model is not None else None)
    per = [requests_per_prompt(spec.kind, len(spec.templates), k) for k in shown]
    req = [n * s for n, s in zip(sizes, per)]
    tokens = per_request_tokens(spec, pool, sample) / len(spec.templates) * sum(req)
    out_exp = sum(req) * min(EXPECTED_REPLY, ocfg.max_tokens)
    out_max = 2 * sum(req) * ocfg.max_tokens
    pin, pout = price_per_token(ocfg) if caps.paid else (0.0, 0.0)
    cost = (tokens * pin + out_exp * pout, 2 * tokens * pin + out_max * pout)
    shards = sum(math.ceil(r / ocfg.batch_shard_size) for r in req) if caps.batchable else None
    return JudgeLine(role, name, spec.model, sum(req), tokens, (out_exp, out_max), cost, shards)


def plan(cfg: RunConfig, pool: ResponsePool, *, unanswered: int = 0) -> CostPlan:
    """The cost plan of a run (pure: reads nothing but the pool, sends nothing). unanswered:
    requests an earlier run in the folder sent without a logged answer (possibly paid)."""
    rules = engine.validate(cfg, pool.shape[1])
    P, R = pool.shape
    sizes = engine.schedule(P, cfg.loop.budget, cfg.loop.batch_size, cfg.loop.initial_batch)
    k = cfg.acquire.num_annotations
    shown = [rules[cfg.loop.initial_rule].num_shown(k, R)] + \
        [rules[cfg.acquire.rule].num_shown(k, R)] * (len(sizes) - 1)
    name = auto_name(cfg.oracle, has_gold=pool.gold is not None)
    kind = kind_of(cfg.oracle, has_gold=pool.gold is not None)
    sample = np.arange(P) if P <= MAX_PROMPTS else np.sort(
        np.random.default_rng(0).choice(P, MAX_PROMPTS, replace=False))
    lines, notes = [], []
    if kind.caps.llm_judge:
        lines.append(judge_line("judge", name, kind, cfg.oracle, pool, sizes, shown, sample))
    else:
        votes = cfg.oracle.web.votes_per_pair if kind.caps.votes else 1
        lines.append(JudgeLine("judge", name, name, _other_requests(kind, sizes, shown) * votes,
                               0.0, (0.0, 0.0), (0.0, 0.0), None))
        if votes > 1:
            notes.append(f"each pair is {votes} votes (--votes_per_pair {votes}): the {name} "
                         f"line counts votes, {_other_requests(kind, sizes, shown):,} pairs "
                         f"x {votes}")
    if cfg.oracle.cheap_judge.model:
        lines.append(judge_line("cheap judge", "judge", OracleKind(JUDGE, None),
                                cheap_config(cfg.oracle), pool, sizes, shown, sample))
        notes.append("the cascade sends every pair to the cheap judge first: the judge above "
                     "gets at most its line")
    if cfg.loop.self_label_accuracy is not None:
        notes.append("self-labelling: pairs the head is sure of are never sent; the judge "
                     "lines are the most it would be asked")
    notes += _budget_notes(cfg.spend)
    if unanswered:
        notes.append(f"{unanswered} requests an earlier run sent have no logged answer "
                     "(possibly paid): " + ("asked again (--retry_unanswered)"
                                            if cfg.spend.retry_unanswered else
                                            "not sent again; --retry_unanswered asks them"))
    if P > MAX_PROMPTS:
        notes.append(f"tokens estimated from a sample of {MAX_PROMPTS} prompts")
    return CostPlan(P, sizes, shown, lines, notes)


def _other_requests(kind: OracleKind, sizes, shown) -> int:
    """Requests of an oracle that is no LLM judge: none without labels, one per pair (a
    person; the caller multiplies by the votes per pair), else one per response shown
    (replay)."""
    if not kind.caps.labels:
        return 0
    if kind.caps.per_pair:
        return sum(n * k * (k - 1) // 2 for n, k in zip(sizes, shown))
    return sum(n * k for n, k in zip(sizes, shown))


def _budget_notes(spend: SpendConfig) -> list[str]:
    notes = []
    if spend.max_requests is not None:
        notes.append(f"--max_requests {spend.max_requests} stops the run there")
    if spend.max_cost is not None:
        notes.append(f"--max_cost {spend.max_cost} stops the run there")
    return notes


def render(cp: CostPlan) -> str:
    """The plan as the lines `aeuf --dry_run` prints."""
    rounds = ", ".join(map(str, cp.rounds))
    out = ["aeuf dry run: nothing was sent and nothing was written.",
           f"  {sum(cp.rounds)} of {cp.prompts} prompts in {len(cp.rounds)} rounds ({rounds}); "
           f"responses shown per prompt: {', '.join(map(str, dict.fromkeys(cp.shown)))}"]
    for ln in cp.lines:
        out.append(f"  {ln.role} ({ln.oracle}, {ln.model}): {ln.requests:,} requests")
        if ln.prompt_tokens:
            out.append(f"    prompt tokens ~{ln.prompt_tokens:,.0f}; completion tokens "
                       f"~{ln.completion_tokens[0]:,.0f} (at most {ln.completion_tokens[1]:,.0f})"
                       f"; cost ~${ln.cost[0]:,.4f} (at most ${ln.cost[1]:,.4f})")
        if ln.shards is not None:
            out.append(f"    batch shards: {ln.shards}")
    out += [f"  note: {n}" for n in cp.notes]
    if any(ln.prompt_tokens for ln in cp.lines):  # only an LLM judge has tokens to estimate
        out.append("  tokens: characters/4 + 4 per message; completion ~"
                   f"{EXPECTED_REPLY} per reply, at most --judge_max_tokens per reply with one "
                   "retry per request")
    return "\n".join(out)
