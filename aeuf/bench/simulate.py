"""Simulated active learning through the product's own round engine (pure: no disk).

One run = one (rule, head, seed, label mode): the RunConfig the main command would build
from the same settings (`run_config`), played round by round by aeuf.run.round.engine with the
replay oracle's pure path (plan -> send -> resolve, no ledger). In the `budget` regime the
head is scored on held-out prompts after each round; in the `once` regime a fresh head is
trained on the pairs the run exports and scored on them (`reward_model`). Same seed -> same
first round (a model-free rule), same head init and same replay labels for every rule:
differences between rules at a seed are paired.

Shape letters: P pool prompts, T test prompts, R responses per prompt, D feature dim,
d prompt-feature dim, n rounds.
"""

from __future__ import annotations

import dataclasses
import time
from typing import NamedTuple

import jax
import numpy as np

from aeuf.bench.agreement import round_record
from aeuf.bench.metrics import Evaluation, HeldOutPairs, evaluate
from aeuf.bench.settings import BenchConfig
from aeuf.config import (
    InputConfig,
    OracleConfig,
    RunConfig,
)
from aeuf.errors import ConfigError
from aeuf.oracle import make_oracle
from aeuf.run.round import engine, layout, signals
from aeuf.run.round.types import Context, Keys, Plan, Purpose, State
from aeuf.types import Comparisons, ResponsePool


def run_config(bench: BenchConfig, rule: str, head: str, seed: int, mode: str,
               path: str = "") -> RunConfig:
    """The RunConfig `aeuf PATH` gets for these settings (the replay oracle, `mode` labels)."""
    loop = bench.loop if bench.regime == "budget" else dataclasses.replace(bench.loop, budget=None)
    return RunConfig(input=InputConfig(path=path), features=bench.features,
                     head=dataclasses.replace(bench.head, name=head),
                     acquire=dataclasses.replace(bench.acquire, rule=rule),
                     loop=dataclasses.replace(loop, seed=seed),
                     oracle=OracleConfig(name="replay", label_mode=mode))


class Task(NamedTuple):
    """What a run needs: the pool (with gold) and its arrays, and held-out data.

    features: f32[P, R, D]; prompt_features: f32[P, d]; test_features: f32[T, R, D];
    test_gold: f64[T, R]; pairs: the held-out pairs (T = 0 in the `once` regime);
    graph: kNN graph of prompt_features, shared by every run (or None: built on first use);
    widths: part name -> width of the features as built (None: read off --features and D).
    """

    pool: ResponsePool
    features: np.ndarray
    prompt_features: np.ndarray
    test_features: np.ndarray
    test_gold: np.ndarray
    pairs: HeldOutPairs | None
    graph: object = None
    widths: dict | None = None


class Curve(NamedTuple):
    """One run, one entry per round.

    labels: int [n] comparisons so far; accuracy, log_likelihood, regret: float [n] on the
    held-out prompts (empty in the `once` regime); fit_s, select_s: wall seconds;
    shown: responses the oracle looked at; comparisons: every label, in order; plans: what
    each round chose; labelled: the Labelled records (what the main command exports);
    tokens: judge input tokens, estimated as (prompt + response characters) / 4 per shown
    response; passes: passes over the pool completed; rm: the Evaluation of a fresh head
    trained on the exported pairs (`once` regime with held-out prompts, else None);
    agreement: per round, the head's agreement with the oracle and the cheap signals'
    (aeuf.bench.agreement.round_record).
    """

    labels: np.ndarray
    accuracy: np.ndarray
    log_likelihood: np.ndarray
    regret: np.ndarray
    fit_s: float
    select_s: float
    shown: int
    comparisons: Comparisons
    plans: list
    labelled: list
    tokens: float = 0.0
    passes: int = 0
    rm: Evaluation | None = None
    agreement: tuple = ()


def split_prompts(num_prompts: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of prompt indices: -> (pool int64 [P - T], test int64 [T]), both sorted.
    test_fraction 0 keeps every prompt in the pool."""
    if test_fraction == 0.0:
        return np.arange(num_prompts), np.zeros(0, np.int64)
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"--test_fraction {test_fraction}: must be between 0 and 1")
    perm = np.random.default_rng(seed).permutation(num_prompts)
    t = max(1, int(round(test_fraction * num_prompts)))
    if t >= num_prompts:
        raise ConfigError(f"{num_prompts} prompts are too few to split off a test set")
    return np.sort(perm[t:]), np.sort(perm[:t])


def replay_judge(cfg: OracleConfig):
    """The replay oracle's pure path as an engine judge: plan -> send -> resolve, no ledger."""
    return oracle_judge(make_oracle(cfg, has_gold=True))


def oracle_judge(oracle):
    """Any oracle's pure path as an engine judge (no ledger): plan -> send -> resolve."""

    def judge(plan: Plan, tasks: list) -> list:
        out = []
        for task in tasks:
            answers = {a.key: a for a in oracle.send(oracle.plan(task))}
            out.append(oracle.resolve(task, answers))
        return out

    return judge


def simulate(task: Task, cfg: RunConfig, *, curve: bool = True) -> Curve:
    """One simulated run of the main command's rounds: -> Curve (one point per round).

    curve: score the head on the held-out prompts after each round (the `budget` regime).
    Without it, a run whose rules are all model-free skips the refits: they change no choice
    (only the uncertainty the main command records beside each plan)."""
    ctx = engine.make_context(cfg, task.features, task.prompt_features, graph=task.graph,
                              usable=np.isfinite(task.pool.gold),
                              signals=signals.of_pool(task.pool, task.features),
                              widths=task.widths)
    judge = replay_judge(cfg.oracle)
    state = engine.initial_state(task.features.shape[0])
    fit = curve or any(r.needs_belief for r in ctx.rules.values())
    points, plans, labelled, fit_s, select_s, agree = [], [], [], 0.0, 0.0, []
    for t, size in enumerate(engine.sizes_of(ctx)):
        t0 = time.perf_counter()
        state, plan, outcome = engine.play(ctx, task.pool, state, t, size, judge, "replay")
        t1 = time.perf_counter()
        state = jax.block_until_ready(engine.refit(ctx, state, t)) if fit else state
        select_s, fit_s = select_s + (t1 - t0), fit_s + (time.perf_counter() - t1)
        plans.append(plan)
        labelled += outcome.labelled
        agree.append(round_record(outcome))
        if curve and task.pairs is not None:
            points.append((state.comps.size, *evaluate_state(ctx, state, task, t)))
    cols = [np.asarray(c) for c in zip(*points)] if points else [np.zeros(0)] * 4
    return Curve(*cols, fit_s, select_s, int(sum(p.slots.size for p in plans)), state.comps,
                 plans, labelled, judge_tokens(task.pool, plans), state.passes,
                 agreement=tuple(agree))


def judge_tokens(pool: ResponsePool, plans: list[Plan]) -> float:
    """Estimated judge input tokens of the plans: (prompt + response characters) / 4 per
    shown response (an absolute judge sees the prompt with each response)."""
    chars = 0
    for plan in plans:
        for p, slots in zip(plan.prompts, plan.slots):
            chars += len(str(pool.prompts[p])) * len(slots)
            chars += sum(len(str(pool.responses[p, s])) for s in slots)
    return chars / 4.0


def evaluate_state(ctx: Context, state: State, task: Task, t: int) -> Evaluation:
    """Held-out metrics of the head after round t."""
    b = ctx.head.belief(state.head_state, task.test_features, key=ctx.keys.round(t, Purpose.TEST_BELIEF),
                        num_samples=ctx.cfg.head.members)
    labels = task.pairs.y if ctx.cfg.oracle.label_mode == "deterministic" else task.pairs.q
    return evaluate(b.mean, b.samples, task.pairs, task.test_gold, labels)


def all_pairs(gold, max_pairs: int | None = None, *, seed: int = 0) -> Comparisons:
    """Every pair of every prompt with different gold, labelled 1[g_a > g_b] (a seeded sample
    of `max_pairs` of them if given): gold f64[P, R] -> Comparisons."""
    from aeuf.bench.metrics import held_out_pairs

    hp = held_out_pairs(gold, max_pairs, seed=seed)
    return Comparisons(hp.prompt.astype(np.int32), hp.a.astype(np.int32), hp.b.astype(np.int32),
                       hp.y.astype(np.float32))


def ceiling(task: Task, cfg: RunConfig, *, max_pairs: int | None, seed: int = 0) -> Evaluation:
    """The head trained on all (or `max_pairs` sampled) pool pairs with deterministic gold
    labels, evaluated like a run: what the features allow at best."""
    comps = all_pairs(task.pool.gold, max_pairs, seed=seed)
    return fit_and_score(task, cfg, comps, seed, task.pairs.y)


def reward_model(task: Task, cfg: RunConfig, comps: Comparisons, seed: int) -> Evaluation:
    """A fresh head of cfg.head trained on `comps` (the pairs a run exported) and scored on the
    held-out prompts like a run's head (Bernoulli/soft label modes: log-likelihood against
    the Bradley-Terry probabilities)."""
    labels = task.pairs.y if cfg.oracle.label_mode == "deterministic" else task.pairs.q
    return fit_and_score(task, cfg, comps, seed, labels)


def fit_and_score(task: Task, cfg: RunConfig, comps: Comparisons, seed: int, labels) -> Evaluation:
    """cfg.head initialised and fit once on comps (pool indices) with the seed's keys, then
    evaluated on the held-out prompts against `labels` [M]."""
    from aeuf.head import make_head

    head = make_head(layout.head_config(cfg.head, cfg.features, task.features.shape[-1],
                                        task.widths))
    keys = Keys.of(seed)
    state = head.init(task.features.shape[-1], key=keys.init())
    state = head.fit(state, task.features, comps, key=keys.round(0, Purpose.FIT))
    b = head.belief(state, task.test_features, key=keys.round(0, Purpose.TEST_BELIEF), num_samples=cfg.head.members)
    return evaluate(b.mean, b.samples, task.pairs, task.test_gold, labels)
