"""A model-free round whose prompts are drawn uniformly (the first round, or --rule random)
plays its rule on those prompts only: the other prompts' features are never read, and the
choice is the rule's on the drawn prompts."""

import numpy as np
import pytest

from aeuf.bench.simulate import BenchConfig, run_config
from aeuf.config import AcquireConfig, HeadConfig, LoopConfig
from aeuf.run.round import engine
from aeuf.run.round.types import Purpose

P, R, D = 40, 4, 6


class Reads(np.ndarray):
    """An array that records every index it is read at (the rows a rule touched)."""

    def __getitem__(self, key):
        self.seen.append(key)
        return np.asarray(self)[key]


def context(rule, batch):
    bench = BenchConfig(regime="once", head=HeadConfig(name="ensemble", members=2, hidden=(4,)),
                        loop=LoopConfig(batch_size=batch, initial_rule="aepo"),
                        acquire=AcquireConfig())
    x = np.random.default_rng(3).normal(size=(P, R, D)).astype(np.float32)
    x[:, 1] = x[:, 0]  # ties for aepo's greedy: its draws come into play
    feats = x.view(Reads)
    feats.seen = []
    return engine.make_context(run_config(bench, rule, "ensemble", 0, "deterministic"),
                               feats, x.mean(1)), x


@pytest.mark.parametrize("rule", ["aepo", "random", "dts"])  # dts: aepo plays round 0
def test_a_model_free_round_reads_only_the_prompts_it_drew(rule):
    ctx, x = context(rule, 10)
    plan = engine.choose(ctx, engine.initial_state(P), 0, 10)
    assert len(plan.prompts) == 10
    read = [k for k in ctx.features.seen if not isinstance(k, tuple) or k]
    assert read and all(isinstance(k, np.ndarray) and set(k.tolist()) <= set(plan.prompts.tolist())
                        for k in read), read
    first = ctx.rules[ctx.cfg.loop.initial_rule if rule == "dts" else rule]
    want = first.select(None, x[plan.prompts], key=ctx.keys.round(0, Purpose.CHOOSE),
                        k=2, valid=None)
    np.testing.assert_array_equal(plan.slots, want.idx)
    np.testing.assert_allclose(plan.score, want.score, rtol=1e-6)
