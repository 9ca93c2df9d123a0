"""Acquisition: which responses of each prompt the oracle sees, and which prompts to label.

    make_rule(cfg) -> Rule(select, needs_belief, pairing, num_shown)
    rule.select(belief | None, features f32[P,R,D] | None, *, key, k) -> Choice
        (idx int32 [P, k'] distinct per row, score f32 [P])
    select_prompts(score f32[P], prompt_features f32[P,D], acquired bool[P], batch, cfg,
                   *, graph=None) -> int32 [batch]
        (BAL-PM: score + beta * kNN entropy, greedy within the batch; pass
        graph=knn_graph(prompt_features, cfg.knn_k), built once per pool, to skip the
        O(P^2 D) neighbour search every round)
    pick_pair(ratings f64[k'], pairing, *, key) -> (chosen_slot, rejected_slot)

Rules (RULES registry, formulas in ALGORITHMS.md): random, ultrafeedback, west_of_n, aepo
(model-free); dts, drts (joint Thompson draws); deltaucb, maxminlcb, infomax, infomax_bald.
Randomness comes only from `key` (a JAX PRNG key or an int): the same key gives the same choice.
"""

from __future__ import annotations

from aeuf.acquire import aepo, simple, thompson, uncertainty  # noqa: F401  (register rules)
from aeuf.acquire.base import RULES, Rule
from aeuf.acquire.pairing import PAIRINGS, pick_pair
from aeuf.acquire.prompts import KnnGraph, knn_graph, select_prompts
from aeuf.config import AcquireConfig

__all__ = [
    "PAIRINGS",
    "RULES",
    "KnnGraph",
    "Rule",
    "knn_graph",
    "make_rule",
    "pick_pair",
    "select_prompts",
]


def make_rule(cfg: AcquireConfig) -> Rule:
    """The rule named cfg.rule (ConfigError listing the valid names if unknown)."""
    return RULES.get(cfg.rule)(cfg)
