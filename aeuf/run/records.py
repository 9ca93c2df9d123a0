"""What the loop writes about its rounds, as plain JSON-ready dicts (and back).

rounds/<t>.json holds a Plan (aeuf.run.round.types) with the prompt and response ids it names,
the acquisition score, the pair uncertainty and the head's mean/std of each shown prompt's
responses when it chose; `plan_from` reads it back exactly.
"""

from __future__ import annotations

import hashlib

import numpy as np

from aeuf.io import json_floats
from aeuf.run.round import routes
from aeuf.run.round.types import Outcome, Plan
from aeuf.types import Comparisons, ResponsePool, turns_of


def plan_record(plan: Plan, pool: ResponsePool) -> dict:
    """The JSON record of round t's plan (NaN written as null, here: the writer need not walk
    the record for them)."""
    prompts = np.asarray(plan.prompts, np.int64)
    slots = rows_of(plan.slots, len(prompts))
    rec = {
        "round": plan.t, "rule": plan.rule,
        "prompts": prompts.tolist(),
        "prompt_ids": [str(x) for x in np.asarray(pool.prompt_ids, object)[prompts].tolist()],
        "slots": slots.tolist(),
        "response_ids": [[str(x) for x in row] for row in
                         np.asarray(pool.response_ids, object)[prompts[:, None], slots].tolist()],
        "acquisition_score": json_floats(plan.score),
        "uncertainty": json_floats(plan.uncertainty),
    }
    if plan.mean is not None:
        rec["mean"] = json_floats(plan.mean)
    if plan.std is not None:
        rec["std"] = json_floats(plan.std)
    return rec | routes.extras(plan)


def rows_of(slots, n: int) -> np.ndarray:
    """Shown slots as int64 [n, k] (an empty plan, n = 0, as [0, 0])."""
    slots = np.asarray(slots, np.int64)
    return slots.reshape(n, -1) if n else np.zeros((0, 0), np.int64)


def plan_from(rec: dict) -> Plan:
    """The Plan a record holds (null uncertainty back to NaN)."""
    def floats(values) -> np.ndarray:
        return np.asarray([np.nan if v is None else v for v in values], np.float32)

    mean, std = rec.get("mean"), rec.get("std")
    return Plan(int(rec["round"]), str(rec["rule"]), np.asarray(rec["prompts"], np.int64),
                rows_of(rec["slots"], len(rec["prompts"])),
                floats(rec["acquisition_score"]), floats(rec["uncertainty"]),
                None if mean is None else np.asarray(mean, np.float32), routes.extras_from(rec),
                None if std is None else np.asarray(std, np.float32))


def progress_row(plan: Plan, outcome: Outcome) -> dict:
    """One round in the summary and the progress plot."""
    return {"round": plan.t, "rule": plan.rule, "asked": int(len(plan.prompts)),
            "labelled": sum(not x.tie for x in outcome.labelled),
            "ties": sum(x.tie for x in outcome.labelled), "unanswered": outcome.unanswered,
            "agreement": outcome.agreement, "uncertainty": outcome.uncertainty,
            "baselines": outcome.baselines,
            **routes.progress_fields(outcome)}


def comps_digest(comps: Comparisons) -> str:
    """sha256 of the comparisons (what a saved head was fit on)."""
    h = hashlib.sha256()
    for a in comps:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def annotation_records(pool: ResponsePool, plan: Plan) -> list[dict]:
    """annotations.jsonl lines: one prompt and the responses to judge."""
    return [{"prompt_id": str(pool.prompt_ids[p]), "prompt": str(pool.prompts[p]),
             "response_ids": [str(x) for x in pool.response_ids[p, s]],
             "responses": [str(x) for x in pool.responses[p, s]],
             "round": plan.t, "rule": plan.rule, **_turns(pool, p)}
            for p, s in zip(plan.prompts, plan.slots)]


def _turns(pool: ResponsePool, p: int) -> dict:
    """{"turns": [[role, text], ...]} for a multi-turn prompt (what `aeuf annotate` shows)."""
    turns = None if pool.messages is None else turns_of(pool.messages[p])
    return {"turns": [list(t) for t in turns]} if turns else {}
