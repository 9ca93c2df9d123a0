"""Who labels each pair of a round: the oracle, the head (self-labelling) or a cheap judge.

The engine's choose() records, per prompt of a plan, the head's P(slot 0 beats slot 1), a
random check draw and whether the head labels it (aeuf.run.round.selflabel); play() sends only
the other prompts to the judge and merges the answers back (`judge_rows`). A judge returns
one Judgement per task, or `Verdicts` when several labellers took part (the cascade,
aeuf.run.cascade). All of it is pure; a resumed run reads the decisions back from the
round's record (`extras` / `extras_from`), so it never sends what it self-labelled.

Shape letters: b prompts in a round.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from aeuf import dataset
from aeuf.acquire.base import numpy_rng
from aeuf.config import RunConfig
from aeuf.errors import ConfigError
from aeuf.run.round import selflabel
from aeuf.run.round.selflabel import HEAD
from aeuf.run.round.types import Calibration, Outcome, Plan, Routes, Routing, State, Verdicts
from aeuf.types import JudgeTask, Labelled


def validate(cfg: RunConfig, rules: dict, R: int) -> None:
    """ConfigError (one line) for a bad self-labelling, check, stop or cascade setting."""
    loop, oracle = cfg.loop, cfg.oracle
    target = loop.self_label_accuracy
    if target is not None and not 0.5 < target < 1.0:
        raise ConfigError(f"--self_label_accuracy {target}: must be between 0.5 and 1 "
                          "(e.g. 0.95)")
    for name, value in (("self_label_delta", loop.self_label_delta),
                        ("stop_when_agreement", loop.stop_when_agreement)):
        if value is not None and not 0.0 < value <= 1.0:
            raise ConfigError(f"--{name} {value}: must be in (0, 1]")
    if not 0.0 <= loop.check_fraction <= 1.0:
        raise ConfigError(f"--check_fraction {loop.check_fraction}: must be in [0, 1]")
    cheap = oracle.cheap_judge.model
    if cheap and cheap == oracle.judge.model:
        raise ConfigError(f"--cheap_judge_model {cheap} is the judge's own model: name "
                          "another (request keys name the model, so they must differ)")
    if oracle.cheap_judge_margin < 0:
        raise ConfigError(f"--cheap_judge_margin {oracle.cheap_judge_margin}: must be >= 0")
    if target is not None or cheap:
        shown = rules[cfg.acquire.rule].num_shown(cfg.acquire.num_annotations, R)
        if shown != 2:
            raise ConfigError(f"--self_label_accuracy and --cheap_judge_model work on pairs: "
                              f"--rule {cfg.acquire.rule} shows {shown} responses per prompt; "
                              "use --num_annotations 2 and a pair rule")


def route(cfg: RunConfig, plan: Plan, state: State, key) -> Plan:
    """The plan with its Routing: head_p, the check draw, the round's threshold and the
    self-labelled rows (none unless --self_label_accuracy)."""
    loop = cfg.loop
    head_p = selflabel.pair_prob(state.belief, plan.prompts, plan.slots)
    cut = None
    if loop.self_label_accuracy is not None and head_p is not None:
        cut = selflabel.threshold(state.checks.calib, loop.self_label_accuracy, loop.self_label_delta)
    check = selflabel.check_slice(numpy_rng(key), len(plan.prompts), head_p, cut,
                                  loop.check_fraction)
    return plan._replace(routing=Routing(head_p, check, selflabel.decide(head_p, check, cut),
                                         cut))


def take(plan: Plan, idx) -> Plan:
    """The plan restricted to rows idx (in that order): every per-row field, the routing's
    included."""
    idx = np.asarray(idx, np.int64)
    pick = lambda a: a if a is None or np.ndim(a) == 0 else np.asarray(a)[idx]  # noqa: E731
    return plan._replace(prompts=plan.prompts[idx], slots=plan.slots[idx],
                         score=plan.score[idx], uncertainty=plan.uncertainty[idx],
                         mean=pick(plan.mean), routing=Routing(*map(pick, plan.routing)))


def as_verdicts(judgements, judge: str) -> Verdicts:
    """A judge's answers as Verdicts (a plain list: one labeller, `judge`)."""
    if isinstance(judgements, Verdicts):
        return judgements
    n = len(judgements)
    return Verdicts(list(judgements), [judge] * n, [False] * n, [None] * n)


def self_labelled(plan: Plan) -> np.ndarray:
    """bool [b]: rows the head labels."""
    if plan.routing.self_labelled is None:
        return np.zeros(len(plan.prompts), bool)
    return np.asarray(plan.routing.self_labelled, bool)


def judge_rows(plan: Plan, tasks: list[JudgeTask], judge: Callable, name: str) -> Verdicts:
    """Send the rows the head does not label to `judge(plan, tasks)`; the head's verdict
    on the others. -> Verdicts for every row."""
    mine = self_labelled(plan)
    sent = np.flatnonzero(~mine)
    sub = plan if sent.size == len(tasks) else take(plan, sent)
    got = as_verdicts(judge(sub, [tasks[i] for i in sent]) if sent.size else [], name)
    out = Verdicts([], [], [], [])
    it = iter(zip(*got))
    head_p = plan.routing.head_p
    for i, task in enumerate(tasks):
        row = (selflabel.head_judgement(task, head_p[i]), HEAD, False, None) if mine[i] \
            else next(it)
        for column, value in zip(out, row):
            column.append(value)
    return out


def flip_rate(noise: tuple[int, int]) -> float:
    """The cheap judge's flip rate from (checked, flipped), Laplace-smoothed:
    (flipped + 1) / (checked + 2)."""
    checked, flipped = noise
    return (flipped + 1.0) / (checked + 2.0)


def update_noise(noise: tuple[int, int], v: Verdicts) -> tuple[int, int]:
    """(checked, flipped) after this round's checks of the cheap judge."""
    seen = [c for c in v.checked if c is not None]
    return noise[0] + len(seen), noise[1] + sum(not c for c in seen)


def row_comparisons(v: Verdicts, i: int, prompt: int, slots, eps: float) -> list:
    """Row i's comparisons for the head: none for a self-label; a cheap judge's labels
    softened to eps + (1 - 2 eps) p."""
    if v.judges[i] == HEAD:
        return []
    rows = dataset.judgement_comparisons(v.judgements[i], prompt, slots)
    if not v.noisy[i]:
        return rows
    return [(p, a, b, eps + (1.0 - 2.0 * eps) * q) for p, a, b, q in rows]


def row_confidence(lab: Labelled, plan: Plan, i: int, v: Verdicts, eps: float) -> Labelled:
    """The head's confidence on a self-label; 1 - flip rate on a cheap judge's label."""
    if v.judges[i] == HEAD:
        return lab._replace(confidence=float(selflabel.confidence(plan.routing.head_p[i])))
    if v.noisy[i]:
        return lab._replace(confidence=1.0 - eps)
    return lab


def calibrate(state_calib: Calibration, plan: Plan, rows: list[tuple[int, Labelled]],
              v: Verdicts) -> Calibration:
    """The calibration set plus this round's rows labelled by a judge (not the head)."""
    if plan.routing.head_p is None:
        return state_calib
    judged = [(i, lab) for i, lab in rows if v.judges[i] != HEAD]
    return state_calib.add(*selflabel.calibration_points(plan.routing.head_p, judged))


def routes_of(plan: Plan, v: Verdicts) -> Routes:
    head = sum(j == HEAD for j in v.judges)
    cheap = sum(v.noisy)
    check = plan.routing.check
    checked = 0 if check is None else int(np.sum(check))
    return Routes(len(v.judges), head, cheap, len(v.judges) - head - cheap, checked)


# --- the round record ------------------------------------------------------------------------

RECORD_NAMES = {"threshold": "self_label_threshold"}  # Routing field -> round record key
RECORD_TYPES = {"head_p": np.float64, "check": bool, "self_labelled": bool}  # per-row fields


def extras(plan: Plan) -> dict:
    """The routing fields of a plan for rounds/<t>.json (absent fields left out)."""
    out = {}
    for name, value in plan.routing._asdict().items():
        if value is None:
            continue
        kind = RECORD_TYPES.get(name)
        out[RECORD_NAMES.get(name, name)] = float(value) if kind is None else \
            np.asarray(value, kind).tolist()
    return out


def extras_from(rec: dict) -> Routing:
    """The Routing `extras` wrote (None where absent)."""
    def field(name):
        value, kind = rec.get(RECORD_NAMES.get(name, name)), RECORD_TYPES.get(name)
        if value is None or kind is None:
            return None if value is None else float(value)
        return np.asarray([math.nan if x is None else x for x in value], kind)

    return Routing(*map(field, Routing._fields))


def progress_fields(outcome: Outcome) -> dict:
    """Who labelled a round's rows, for the progress rows of the summary."""
    r = outcome.routes
    return {"self_labelled": r.head, "self_label_share": r.head / r.asked if r.asked else 0.0,
            "cheap_only": r.cheap, "strong": r.strong, "checked": r.checked,
            "self_label_threshold": outcome.threshold}
