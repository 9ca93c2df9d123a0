"""The body of the active loop, one round at a time (loop level: reads and writes the run dir).

Round t: choose (rule on the current belief, BAL-PM prompt selection among unlabelled
prompts) -> write rounds/<t>.json -> judge through the ledger -> append comparisons -> refit.
A round whose record exists is replayed from disk, never chosen again.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np
from tqdm.auto import tqdm

from aeuf import acquire, dataset, io
from aeuf.config import RunConfig
from aeuf.errors import ConfigError
from aeuf.head import make_head
from aeuf.run.ledger import Ledger
from aeuf.run.plots import plot_progress
from aeuf.types import Comparisons, JudgeTask, Labelled, ResponsePool


def schedule(num_prompts: int, budget: int | None, batch: int | None, initial: int | None) -> list[int]:
    """Prompts to label in each round: [initial, batch, batch, ..., rest] summing to the budget."""
    total = min(budget or num_prompts, num_prompts)
    batch = batch or max(1, -(-total // 4))
    first = min(initial or batch, total)
    sizes = [first]
    while sum(sizes) < total:
        sizes.append(min(batch, total - sum(sizes)))
    return sizes


class Keys:
    """Every random key of a run, derived from its seed with fold_in."""

    def __init__(self, seed: int):
        self.base = jax.random.key(seed)

    def round(self, t: int, purpose: int):
        return jax.random.fold_in(jax.random.fold_in(self.base, t), purpose)

    def init(self):
        return jax.random.fold_in(self.base, 1_000_003)


class _Round(NamedTuple):
    t: int
    rule: str
    prompts: np.ndarray  # [b] prompt indices
    slots: np.ndarray  # [b, k]
    score: np.ndarray  # [b]
    uncertainty: np.ndarray  # [b]


def _uncertainty(belief, prompts: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Mean pair std sqrt(Var[r_i - r_j]) over the shown responses of each chosen prompt."""
    if belief is None:
        return np.full(len(prompts), np.nan, np.float32)
    pv = np.asarray(belief.pair_var)
    out = []
    for p, s in zip(prompts, slots):
        sub = pv[p][np.ix_(s, s)]
        out.append(np.sqrt(np.maximum(sub[np.triu_indices(len(s), 1)], 0)).mean())
    return np.asarray(out, np.float32)


def _select(t, size, rule_name, rule, belief, features, graph, acquired, k, cfg, keys: Keys) -> _Round:
    choice = rule.select(belief, features, key=keys.round(t, 0), k=k)
    prompts = np.asarray(acquire.select_prompts(
        np.asarray(choice.score, np.float32), graph.features, acquired, size, cfg.acquire,
        graph=graph.knn), np.int64)
    slots = np.asarray(choice.idx)[prompts]
    return _Round(t, rule_name, prompts, slots, np.asarray(choice.score)[prompts],
                  _uncertainty(belief, prompts, slots))


def _save_round(out: Path, rnd: _Round, pool: ResponsePool, belief) -> None:
    rec = {
        "round": rnd.t, "rule": rnd.rule,
        "prompts": rnd.prompts.tolist(),
        "prompt_ids": [str(pool.prompt_ids[p]) for p in rnd.prompts],
        "slots": rnd.slots.tolist(),
        "acquisition_score": [float(x) for x in rnd.score],
        "uncertainty": [float(x) for x in rnd.uncertainty],
    }
    if belief is not None:
        rec["mean"] = np.asarray(belief.mean)[rnd.prompts].round(4).tolist()
        rec["std"] = np.asarray(belief.std)[rnd.prompts].round(4).tolist()
    io.atomic_write_json(out / "rounds" / f"{rnd.t}.json", rec)


def _load_round(path: Path) -> _Round:
    rec = json.loads(path.read_text())
    return _Round(rec["round"], rec["rule"], np.asarray(rec["prompts"], np.int64),
                  np.asarray(rec["slots"], np.int64), np.asarray(rec["acquisition_score"], np.float32),
                  np.asarray(rec["uncertainty"], np.float32))


def _tasks(pool: ResponsePool, rnd: _Round) -> list[JudgeTask]:
    out = []
    for p, s in zip(rnd.prompts, rnd.slots):
        gold = None if pool.gold is None else tuple(float(g) for g in pool.gold[p, s])
        out.append(JudgeTask(str(pool.prompt_ids[p]), str(pool.prompts[p]),
                             tuple(str(x) for x in pool.response_ids[p, s]),
                             tuple(str(x) for x in pool.responses[p, s]), gold))
    return out


def _append(comps: Comparisons, rows: list[tuple[int, int, int, float]]) -> Comparisons:
    if not rows:
        return comps
    p, a, b, q = (np.asarray(c) for c in zip(*rows))
    return Comparisons(np.concatenate([comps.prompt, p.astype(np.int32)]),
                       np.concatenate([comps.a, a.astype(np.int32)]),
                       np.concatenate([comps.b, b.astype(np.int32)]),
                       np.concatenate([comps.p, q.astype(np.float32)]))




def _save_state(out: Path, state) -> None:
    leaves = jax.tree_util.tree_leaves(state)
    path = out / "head" / "state.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, *[np.asarray(x) for x in leaves])
    tmp.replace(path)


def _write_annotations(out: Path, tasks: list[JudgeTask], rnd: _Round) -> Path:
    lines = [json.dumps({"prompt_id": t.prompt_id, "prompt": t.prompt, "response_ids": list(t.response_ids),
                         "responses": list(t.responses), "round": rnd.t, "rule": rnd.rule})
             for t in tasks]
    path = out / "annotations.jsonl"
    io.atomic_write_text(path, "\n".join(lines) + "\n")
    return path


class _Graph(NamedTuple):
    features: np.ndarray  # f32[P, d] prompt features
    knn: object  # acquire.KnnGraph over them


class _State(NamedTuple):
    comps: Comparisons
    head_state: object
    belief: object


def _label(t, rnd, judgements, pairing, keys: Keys, judge: str):
    """Judged prompts -> (Labelled records, comparison rows); ties and missing are dropped."""
    labelled, rows = [], []
    for i, (p, s, j) in enumerate(zip(rnd.prompts, rnd.slots, judgements)):
        slots = tuple(int(x) for x in s)
        rows += dataset.judgement_comparisons(j, int(p), slots)
        scores = dataset.judgement_scores(j)
        finite = scores[np.isfinite(scores)]
        if finite.size < 2 or finite.max() == finite.min():
            continue
        win, lose = acquire.pick_pair(scores, pairing, key=keys.round(t, 10 + i))
        labelled.append(Labelled(int(p), slots, scores, int(win), int(lose), rnd.rule, t,
                                         float(rnd.uncertainty[i]), float(rnd.score[i]), judge))
    return labelled, rows


def _refit(head, st: _State, features, cfg: RunConfig, keys: Keys, t: int, out: Path) -> _State:
    if st.comps.size == 0:
        return st
    warm = st.head_state is not None and cfg.head.warm_start
    start = st.head_state if warm else head.init(features.shape[-1], key=keys.init())
    state = head.fit(start, features, st.comps, key=keys.round(t, 1))
    _save_state(out, state)
    belief = head.belief(state, features, key=keys.round(t, 2), num_samples=cfg.head.members)
    return _State(st.comps, state, belief)


def active_loop(cfg: RunConfig, out: Path, pool: ResponsePool, features: np.ndarray,
                pfeat: np.ndarray, oracle, *, progress: bool = True):
    """Run every round (replaying recorded ones) and export: -> loop.RunSummary."""
    from aeuf.run.loop import RunSummary

    P, R, D = features.shape
    keys, head = Keys(cfg.loop.seed), make_head(cfg.head)
    rules = {name: acquire.make_rule(dataclasses.replace(cfg.acquire, rule=name))
             for name in {cfg.acquire.rule, cfg.loop.initial_rule}}
    if rules[cfg.loop.initial_rule].needs_belief:
        raise ConfigError(f"--initial_rule {cfg.loop.initial_rule} needs a fitted head; "
                          f"choose a model-free rule (aepo, random, ultrafeedback, west_of_n)")
    no_oracle = oracle.name == "none"
    sizes = schedule(P, cfg.loop.budget, cfg.loop.batch_size, cfg.loop.initial_batch)
    sizes = [sum(sizes)] if no_oracle else sizes
    ledger = Ledger.open(io.JudgementLog(out / "judgements.jsonl"),
                         max_requests=cfg.oracle.max_requests, max_cost=cfg.oracle.max_cost)
    st, acquired, labelled, failed = _State(Comparisons.empty(), None, None), np.zeros(P, bool), [], 0
    progress_rows: list[dict] = []
    graph = None  # the prompts' kNN graph, built once when a round is first chosen
    chunk = max(4 * cfg.oracle.judge.concurrency, 16)
    for t, size in enumerate(tqdm(sizes, desc="rounds", unit="round", disable=not progress)):
        path = out / "rounds" / f"{t}.json"
        if path.exists():
            rnd = _load_round(path)
        elif ledger.exhausted:
            break
        else:
            name = cfg.loop.initial_rule if st.belief is None else cfg.acquire.rule
            graph = graph or _Graph(pfeat, acquire.knn_graph(pfeat, cfg.acquire.knn_k))
            rnd = _select(t, size, name, rules[name], st.belief, features, graph, acquired,
                          cfg.acquire.num_annotations, cfg, keys)
            _save_round(out, rnd, pool, st.belief)
        acquired[rnd.prompts] = True
        tasks = _tasks(pool, rnd)
        if no_oracle:
            return _summary(RunSummary, out, pool, ledger, st, [], {}, _write_annotations(out, tasks, rnd), 0, oracle)
        judgements = ledger.judge(oracle, tasks, chunk=chunk, progress=progress)
        pairing = "extremes" if cfg.export.west_of_n else rules[rnd.rule].pairing
        new, rows = _label(t, rnd, judgements, pairing, keys, oracle.name)
        labelled += new
        progress_rows.append(_progress_row(t, new, st.belief, rnd))
        failed += len(tasks) - len(new)
        st = _State(_append(st.comps, rows), st.head_state, st.belief)
        if t + 1 < len(sizes) and not ledger.exhausted:
            st = _refit(head, st, features, cfg, keys, t, out)
    frame = dataset.build_rows(pool, labelled, all_pairs=cfg.export.all_pairs)
    files = io.write_preferences(frame, out, push_to_hub=cfg.export.push_to_hub) if len(frame) else {}
    if progress_rows:
        files["plot"] = plot_progress(progress_rows, out / "progress.png")
    return _summary(RunSummary, out, pool, ledger, st, labelled, files, None, failed, oracle, rows=len(frame),
                    progress=progress_rows)


def _progress_row(t: int, new: list, belief, rnd: _Round) -> dict:
    """How often the head, before seeing them, ranked the oracle's pairs of round t right."""
    agree = None
    if belief is not None and new:
        mean = np.asarray(belief.mean)
        agree = float(np.mean([mean[x.prompt, x.slots[x.chosen]] > mean[x.prompt, x.slots[x.rejected]]
                               for x in new]))
    unc = rnd.uncertainty[np.isfinite(rnd.uncertainty)]
    return {"round": t, "labelled": len(new), "agreement": agree,
            "uncertainty": float(unc.mean()) if unc.size else None}


def _summary(cls, out, pool, ledger, st, labelled, files, annotation, failed, oracle, rows=0, progress=()):
    return cls(output_dir=out, prompts=pool.shape[0], labelled=len(labelled), rows=rows,
               comparisons=st.comps.size, requests_sent=ledger.sent,
               requests_logged=ledger.paid_requests, failed=failed, cost=ledger.total_cost,
               files=files, annotation_file=annotation, stopped_by_budget=ledger.exhausted,
               oracle=oracle.name, progress=list(progress))
