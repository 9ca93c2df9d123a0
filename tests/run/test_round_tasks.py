"""engine.tasks_of gathers a plan's tasks a column at a time: the same JudgeTasks as building
them row by row, on every kind of pool (gold or none, multi-turn or not, ids of any type)."""

import numpy as np
import pytest

from aeuf.run.round.engine import tasks_of
from aeuf.run.round.types import Plan
from aeuf.types import JudgeTask, ResponsePool, turns_of

P, R = 7, 4


def row_by_row(pool: ResponsePool, plan: Plan) -> list[JudgeTask]:
    out = []
    for p, s in zip(plan.prompts, plan.slots):
        gold = None if pool.gold is None else tuple(float(g) for g in pool.gold[p, s])
        turns = None if pool.messages is None else turns_of(pool.messages[p])
        out.append(JudgeTask(str(pool.prompt_ids[p]), str(pool.prompts[p]),
                             tuple(str(x) for x in pool.response_ids[p, s]),
                             tuple(str(x) for x in pool.responses[p, s]), gold, turns))
    return out


def make_pool(gold: bool, turns: bool) -> ResponsePool:
    rng = np.random.default_rng(3)
    ids = np.array([f"p{p}" if p % 2 else p for p in range(P)], dtype=object)  # str and int ids
    responses = np.array([[("" if (p + r) % 5 == 0 else f"answer {p}.{r} ü") for r in range(R)]
                          for p in range(P)], dtype=object)
    rids = np.array([[f"p{p}:{r}" if r else (p, r) for r in range(R)] for p in range(P)],
                    dtype=object)
    g = rng.normal(size=(P, R))
    g[1, 2] = np.nan
    messages = None
    if turns:
        messages = np.empty(P, object)
        for p in range(P):
            messages[p] = [{"role": "user", "content": f"hi {p}"},
                           {"role": "assistant", "content": None},
                           {"role": "user", "content": f"question {p}"}][: 1 + 2 * (p % 2)]
    return ResponsePool(ids, np.array([f"question {p}" for p in range(P)], dtype=object),
                        responses, np.full((P, R), None, object), rids,
                        g if gold else None, "score" if gold else None, messages=messages)


@pytest.mark.parametrize("gold", [True, False])
@pytest.mark.parametrize("turns", [True, False])
@pytest.mark.parametrize("b", [0, 1, 5])
def test_tasks_of_matches_row_by_row(gold, turns, b):
    pool = make_pool(gold, turns)
    prompts = np.array([6, 1, 3, 0, 4][:b], np.int64)
    slots = np.array([[3, 0], [2, 1], [0, 3], [1, 2], [2, 0]][:b], np.int64).reshape(b, 2)
    plan = Plan(1, "dts", prompts, slots, np.zeros(b), np.zeros(b))
    got, want = tasks_of(pool, plan), row_by_row(pool, plan)
    assert repr(got) == repr(want) and len(got) == b  # repr: a NaN gold is not == itself
    for g, w in zip(got, want):
        assert [type(x) for x in g.response_ids + g.responses] == [str] * 4
        assert g.gold is None or all(type(x) is float for x in g.gold)
        assert (g.gold is None) == (not gold) and (g.turns is None) == (w.turns is None)
