"""How good an exported dataset is, judged on gold (the `once` regime of the benchmark).

Pure: the Labelled records a run exports (aeuf.types.Labelled: prompt index, shown slots,
chosen/rejected positions, tie) and the gold utilities f64[P, R] of the pool they index.
"A gold-best response" is one whose gold equals the prompt's maximum (gold ties count);
likewise a gold-worst one. `lc_gold` is the length-controlled gold every quality number is
also computed against (AlpacaEval's length-controlled win rate, Dubois et al. 2024).
"""

from __future__ import annotations

import numpy as np

from aeuf.types import Comparisons, Labelled


def dataset_quality(labelled: list[Labelled], gold: np.ndarray, *, shown: int,
                    tokens: float) -> dict:
    """The quality of one run's exported pairs: a flat dict of floats (None where undefined).

    P = gold.shape[0] prompts the run labels; exported = decided (non-tie) records.
    best_of_n: share of ALL P prompts whose chosen is a gold-best response (a prompt that
        exported nothing counts as a miss); worst_of_n: share of exported pairs whose
        rejected is a gold-worst response; correct / wrong: share of exported pairs whose
        chosen has strictly higher / strictly lower gold than rejected (the rest tie on gold);
    gold_gap: mean gold(chosen) - gold(rejected) over exported pairs; gold_gap_per_prompt:
        their sum over P (a dropped prompt adds 0);
    exported / ties / unanswered: shares of P with an exported pair / whose judged responses
        all tied / with no usable answer (or never labelled);
    calls_per_prompt: responses shown to the oracle per prompt; tokens_per_prompt: estimated
        judge input tokens per prompt; wasted_calls: share of the calls spent on prompts
        that exported nothing (0 when no call was made).
    """
    gold = np.asarray(gold, np.float64)
    P = gold.shape[0]
    decided = [x for x in labelled if not x.tie]
    out = {"exported": len(decided) / P, "ties": sum(x.tie for x in labelled) / P,
           "unanswered": 1.0 - len({x.prompt for x in labelled}) / P,
           "calls_per_prompt": shown / P, "tokens_per_prompt": tokens / P,
           "wasted_calls": (shown - sum(len(x.slots) for x in decided)) / shown if shown else 0.0}
    if not decided:
        return {**out, "best_of_n": 0.0, "worst_of_n": None, "correct": None, "wrong": None,
                "gold_gap": None, "gold_gap_per_prompt": 0.0}
    c, r, rows = pair_gold(decided, gold)
    best = np.nanmax(gold[rows], axis=1)
    worst = np.nanmin(gold[rows], axis=1)
    firsts = {}
    for x, hit in zip(decided, c >= best):  # a prompt counts once (its first exported pair)
        firsts.setdefault(x.prompt, bool(hit))
    return {**out, "best_of_n": sum(firsts.values()) / P, "worst_of_n": float(np.mean(r <= worst)),
            "correct": float(np.mean(c > r)), "wrong": float(np.mean(c < r)),
            "gold_gap": float(np.mean(c - r)), "gold_gap_per_prompt": float(np.sum(c - r) / P)}


def lc_gold(gold: np.ndarray, lengths: np.ndarray, models: np.ndarray | None = None
            ) -> np.ndarray:
    """The length-controlled gold f64[P, R]: gold minus the effect of the standardised
    log-length, as AlpacaEval's length-controlled win rate removes it.

    z = log(1 + characters), standardised over every response. Pairs only compare
    responses of one prompt, so the regression is on within-prompt differences: least
    squares of the prompt-centred gold on the prompt-centred z (and, when `models` names
    more than one model, the prompt-centred model one-hot, so a strong model that also
    writes long is not read as length), which is the least-squares fit of every pair's gold
    difference on its z difference. The length coefficient beta is then removed,
    lc = gold - beta * z, and the model effect kept (AlpacaEval keeps the model term and
    zeroes the length term). A pool whose gold is pure length gets an lc gold constant
    within each prompt (every pair a tie); a signal unrelated to length is kept.
    lc is rounded to 9 decimals so that equal values tie exactly.
    """
    gold = np.asarray(gold, np.float64)
    z = np.log1p(np.asarray(lengths, np.float64))
    sd = z.std()
    z = (z - z.mean()) / (sd if sd > 0 else 1.0)
    cols = [z]
    if models is not None:
        names = np.asarray(models).astype(str)
        kinds = np.unique(names)
        if kinds.size > 1:
            cols += [(names == k).astype(np.float64) for k in kinds[1:]]
    centre = lambda a: (a - a.mean(axis=1, keepdims=True)).ravel()  # noqa: E731
    x = np.stack([centre(c) for c in cols], axis=1)
    coef = np.linalg.lstsq(x, centre(gold), rcond=None)[0]
    return np.round(gold - coef[0] * z, 9)


def pair_gold(decided: list[Labelled], gold: np.ndarray):
    """(gold of chosen [n], gold of rejected [n], prompt index [n]) of the exported pairs."""
    c = np.array([gold[x.prompt, x.slots[x.chosen]] for x in decided], np.float64)
    r = np.array([gold[x.prompt, x.slots[x.rejected]] for x in decided], np.float64)
    return c, r, np.array([x.prompt for x in decided], np.int64)


def exported_comparisons(labelled: list[Labelled]) -> Comparisons:
    """The exported pairs as the comparisons a reward model trains on: chosen beats rejected
    (p = 1) for every decided record, in order."""
    decided = [x for x in labelled if not x.tie]
    if not decided:
        return Comparisons.empty()
    prompt = np.array([x.prompt for x in decided], np.int32)
    a = np.array([x.slots[x.chosen] for x in decided], np.int32)
    b = np.array([x.slots[x.rejected] for x in decided], np.int32)
    return Comparisons(prompt, a, b, np.ones(len(decided), np.float32))
