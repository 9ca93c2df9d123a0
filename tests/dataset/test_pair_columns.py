"""The pair layouts are built a column at a time (aeuf.dataset.pairs.pair_columns); the frame must be
the one a row dict per pair gave (the construction before, kept here as the reference):
the same columns in the same order, values and dtypes, for ties kept or not, all_pairs, k-way
rankings, self-labelled rows, people's labels, cut responses, missing models and
conversations."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from aeuf import dataset
from aeuf.config import ExportConfig
from aeuf.dataset import pairs, rows
from aeuf.types import SELF_LABEL, Labelled, ResponsePool


def _row(pool, lab, win, lose):
    """One row as the row-by-row construction made it."""
    p, (c, r) = lab.prompt, (lab.slots[win], lab.slots[lose])
    cs, rs = rows.oracle_score(lab, win), rows.oracle_score(lab, lose)
    honest = not lab.tie and np.isfinite(cs) and np.isfinite(rs)
    model = lambda m: m if isinstance(m, str) and m else None  # noqa: E731
    return {"prompt": str(pool.prompts[p]), "chosen": str(pool.responses[p, c]),
            "rejected": str(pool.responses[p, r]), "margin": cs - rs if honest else 0.0,
            "tie": bool(lab.tie), "prompt_id": str(pool.prompt_ids[p]),
            "chosen_id": str(pool.response_ids[p, c]), "rejected_id": str(pool.response_ids[p, r]),
            "chosen_model": model(pool.models[p, c]), "rejected_model": model(pool.models[p, r]),
            "chosen_score": cs, "rejected_score": rs, "rule": lab.rule, "round": int(lab.round),
            "uncertainty": float(lab.uncertainty), "acquisition_score": float(lab.acquisition_score),
            "judge": lab.judge, "confidence": float(lab.confidence),
            "cut": rows.cut_label(lab, win, lose), **rows.annotator_column(lab)}


def _rows(pool, lab, cfg):
    if lab.tie:
        return [_row(pool, lab, *pairs.tie_pair(lab))]
    if not cfg.all_pairs:
        row = _row(pool, lab, lab.chosen, lab.rejected)
        if len(lab.slots) > 2:
            row.update(pairs.pref_columns(pool, lab))
        return [row]
    order = rows.ranking(lab.scores)
    return [_row(pool, lab, w, lo) for i, w in enumerate(order) for lo in order[i + 1:]
            if lab.scores[w] > lab.scores[lo]]


def _conversational(pool, lab, cfg):
    return [{k: pairs.assistant(v) if pairs._is_response(k) else v for k, v in row.items()}
            | {"prompt": pairs.prompt_messages(pool, lab.prompt)} for row in _rows(pool, lab, cfg)]


def _reference(pool, labelled, cfg):
    rows_of = _conversational if cfg.format == "conversational" else _rows
    ordered = sorted(labelled, key=lambda x: (x.round, x.prompt))
    frame = pd.DataFrame([row for lab in ordered if cfg.keep_ties or not lab.tie
                          for row in rows_of(pool, lab, cfg)])
    if "annotator" in frame:
        who = frame["annotator"].astype(object)
        frame["annotator"] = who.where(who.notna(), None)
    return frame


def _pool(rng, P, R, conversations):
    models = rng.choice(np.array(["m1", "m2", "", None], dtype=object), (P, R))
    messages = None
    if conversations:
        messages = np.empty(P, dtype=object)
        for p in range(P):
            messages[p] = [] if p % 3 == 0 else [{"role": "user", "content": f"turn {p}"}]
    return ResponsePool(np.array([f"id{p}" for p in range(P)], dtype=object),
                        np.array([f"q{p} \u00e9" for p in range(P)], dtype=object),
                        np.array([[f"r{p}.{r}" if r else "" for r in range(R)] for p in range(P)],
                                 dtype=object), models,
                        np.array([[f"id{p}:{r}" for r in range(R)] for p in range(P)], dtype=object),
                        messages=messages)


def _labelled(rng, P, R, people):
    out = []
    for p in rng.permutation(P)[: P - 3]:
        k = int(rng.choice([2, 2, 3, 4]))
        slots = tuple(int(s) for s in rng.permutation(R)[:k])
        scores = rng.integers(0, 3, k).astype(float)
        scores[rng.random(k) < 0.15] = np.nan
        tie = bool(rng.random() < 0.2)
        order = np.argsort(-np.nan_to_num(scores, nan=-1))
        judge = SELF_LABEL if rng.random() < 0.15 else "replay"
        who = ("a1", "a2")[: int(rng.integers(1, 3))] if people and rng.random() < 0.4 else ()
        cut = tuple(int(i) for i in np.flatnonzero(rng.random(k) < 0.2))
        out.append(Labelled(int(p), slots, scores, int(order[0]), int(order[-1]), "dts",
                            int(rng.integers(0, 3)), float(rng.random()), float(rng.normal()),
                            judge, tie=tie, confidence=float(rng.random()), cut=cut,
                            annotators=who))
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fmt", ["standard", "conversational"])
def test_columns_give_the_frame_of_row_dicts(seed, fmt):
    rng = np.random.default_rng(seed)
    pool = _pool(rng, 30, 5, conversations=seed % 2 == 0)
    labs = _labelled(rng, 30, 5, people=seed % 3 != 0)
    for keep_ties in (False, True):
        for all_pairs in (False, True):
            cfg = dataclasses.replace(ExportConfig(), format=fmt, keep_ties=keep_ties,
                                      all_pairs=all_pairs)
            got, want = dataset.build_rows(pool, labs, cfg), _reference(pool, labs, cfg)
            pd.testing.assert_frame_equal(got, want)
            assert got.attrs["rows"] == len(want)


def test_no_rows_is_an_empty_frame_as_before():
    rng = np.random.default_rng(0)
    pool = _pool(rng, 4, 3, conversations=True)
    tied = [Labelled(0, (0, 1), np.array([1.0, 1.0]), 0, 1, "dts", 0, 0.0, 0.0, "replay", tie=True)]
    for fmt in ("standard", "conversational"):
        cfg = dataclasses.replace(ExportConfig(), format=fmt)
        for labs in ([], tied):
            got, want = dataset.build_rows(pool, labs, cfg), _reference(pool, labs, cfg)
            pd.testing.assert_frame_equal(got, want)
            assert got.attrs["ties"] == len(labs)


def test_a_pool_of_lists_exports_as_one_of_arrays():
    """pair_columns indexes the pool's columns with arrays; a pool built from Python lists
    (a library user's) gives the same frame as the same pool in object arrays."""
    rng = np.random.default_rng(3)
    pool = _pool(rng, 8, 5, conversations=False)
    listed = dataclasses.replace(pool, **{f: getattr(pool, f).tolist() for f in (
        "prompt_ids", "prompts", "responses", "models", "response_ids")})
    labs = _labelled(rng, 8, 5, people=True)
    for fmt in ("standard", "conversational", "kto"):
        cfg = dataclasses.replace(ExportConfig(), format=fmt)
        pd.testing.assert_frame_equal(dataset.build_rows(listed, labs, cfg),
                                      dataset.build_rows(pool, labs, cfg))
