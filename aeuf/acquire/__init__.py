"""Acquisition: which responses of each prompt the oracle sees, and which prompts to label.

    make_rule(cfg, name=cfg.rule) -> Rule(select: SelectFn, needs_belief, pairing, num_shown: NumShownFn,
                           needs_embed)
    rule.select(belief | None, features f32[P,R,D] | None, *, key, k, valid=None) -> Choice
        (idx int32 [P, k'] distinct per row, score f32 [P]; valid: bool [P,R,R] pairs a
        belief rule may choose first, None = all)
    select_prompts(score f32[P], prompt_features f32[P,D], acquired bool[P], batch, cfg,
                   *, graph=None) -> int32 [min(batch, prompts not acquired)]
        (BAL-PM: score + beta * kNN entropy, greedy within the batch; pass
        graph=knn_graph(prompt_features, cfg.knn_k, exact_max=cfg.knn_exact_max,
        index=cfg.knn_index), built once per pool, to skip the neighbour search every round:
        exact, O(P^2 D) in memory-bounded chunks, up to knn_exact_max prompts; above, by
        default the cells of aeuf.acquire.cells (cost P), or a faiss kNN index)
    pick_pair(ratings f64[k'], pairing, *, key) -> (chosen_slot, rejected_slot)
    doptimal_batch(embed f32[P,R,H], ainv f64[H,H], batch, *, key) -> DesignBatch
        (the greedy within-batch D-optimal choice, for an engine that knows its batch size)

Rules (RULES registry, formulas in docs/algorithms.md and each rule's docstring):
    model-free: random, ultrafeedback, west_of_n, aepo
    joint Thompson draws: dts, drts, infogain (Thompson first arm, max Var[r_i - r_j] second)
    mean / std / pair variance: deltaucb, deltaquantile (the highest-UCB first arm in a rank
        window [q - eps, q + eps] of the gaps UCB_i - LCB_j), maxminlcb, infomax, infomax_bald
    design on last-layer features z = e_i - e_j: doptimal (max z^T z / lambda), doptimal_past
        (max z^T A^-1 z, A = the head's precision, updated greedily within the batch)
    for a DPO dataset: dpo_value (the pair maximising P(it holds the best) + its expected
        share of the reward range, over the joint draws; goals.py)
    for a reward model (--goal rm): rm_mix (a random pair on a cfg.mix_random share of the
        prompts, the BALD pair on the rest; goals.py)
    tie-aware choice (cfg.tie_margin): a wrapper around any belief rule that drops pairs the
        head predicts to get the same rating on a scale of step cfg.rating_step (ties.py)
Randomness comes only from `key` (a JAX PRNG key or an int): the same key gives the same choice.
"""

from __future__ import annotations

from aeuf.acquire import aepo, design, goals, simple, thompson, ties, uncertainty  # noqa: F401
from aeuf.acquire.base import RULES, NumShownFn, Rule, RuleFactory, SelectFn
from aeuf.acquire.design import DesignBatch, doptimal_batch
from aeuf.acquire.pairing import PAIRINGS, pick_pair
from aeuf.acquire.prompts import KnnGraph, knn_graph, select_prompts
from aeuf.acquire.ties import calibrated_step, tie_aware, tie_probability
from aeuf.config import AcquireConfig

__all__ = [
    "PAIRINGS",
    "RULES",
    "DesignBatch",
    "KnnGraph",
    "NumShownFn",
    "Rule",
    "RuleFactory",
    "SelectFn",
    "doptimal_batch",
    "knn_graph",
    "make_rule",
    "pick_pair",
    "select_prompts",
    "calibrated_step",
    "tie_aware",
    "tie_probability",
]


def make_rule(cfg: AcquireConfig, name: str | None = None) -> Rule:
    """The rule `name` (default cfg.rule; ConfigError listing the valid names if unknown)
    with the hyperparameters of `cfg`, tie-aware when cfg.tie_margin is set and the rule
    uses a belief (with cfg.rating_step None, the step calibrated on the labels, the round
    engine wraps it each round instead)."""
    rule = RULES.get(name or cfg.rule)(cfg)
    if cfg.tie_margin is not None:
        ties.check(cfg)
    aware = cfg.tie_margin is not None and cfg.rating_step is not None and rule.needs_belief
    return tie_aware(rule, cfg) if aware else rule
