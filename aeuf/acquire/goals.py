"""`rm_mix`: pairs that teach a reward model, the rule of `--goal rm`.

A reward model learns most from pairs across the whole ranking, near its decision boundary,
and random pairs are hard to beat there; a DPO dataset wants clean, large-gap pairs instead
(the rule of `--goal dpo`, aeuf.config.GOAL_RULES). rm_mix gives each prompt, with
probability cfg.mix_random, a uniformly random pair (coverage of the ranking), else the
pair the head is least sure how to order: the largest BALD mutual information of its
Bradley-Terry outcome (the head's disagreement; infomax_bald). Both halves honour the
`valid` pair mask, so the tie-aware wrapper (ties.py) keeps random pairs off predicted ties,
which random pairs otherwise waste a third of their calls on. k > 2 grows either pair
greedily by BALD. Score: the BALD value of the pair shown (random rows too, so BAL-PM
ranks prompts as for infomax_bald).
"""

from __future__ import annotations

import numpy as np

from aeuf.acquire.base import (
    RULES,
    Rule,
    best_pair,
    check_k,
    greedy_extend,
    make_choice,
    numpy_rng,
    pair_mask,
    require_belief,
    shown_k,
)
from aeuf.acquire.uncertainty import bald_matrix
from aeuf.config import AcquireConfig
from aeuf.errors import ConfigError
from aeuf.types import Choice


def random_pair(rng: np.random.Generator, P: int, R: int, valid) -> np.ndarray:
    """A uniformly random unordered pair per row among the allowed ones (pair_mask output or
    None for all): int64 [P, 2]."""
    return best_pair(rng.random((P, R, R)), rng, True, valid)


@RULES.register("rm_mix")
def make_rm_mix(cfg: AcquireConfig) -> Rule:
    """Per prompt: a random pair with probability cfg.mix_random, else the BALD pair."""
    share = cfg.mix_random
    if not 0.0 <= share <= 1.0:
        raise ConfigError(f"--mix_random {share}: must be between 0 and 1")

    def select(belief, features, *, key, k, valid=None) -> Choice:
        b = require_belief(belief, "rm_mix")
        P, R = b.mean.shape
        check_k(k, R)
        rng = numpy_rng(key)
        mask = pair_mask(valid, P, R)
        B = bald_matrix(b.samples)
        first = np.where((rng.random(P) < share)[:, None], random_pair(rng, P, R, mask),
                         best_pair(B, rng, True, mask))
        idx = greedy_extend(B, first, k, rng)
        iu, ju = np.triu_indices(k, 1)
        return make_choice(idx, B[np.arange(P)[:, None], idx[:, iu], idx[:, ju]].mean(axis=1))

    return Rule(select, True, "extremes", shown_k)
