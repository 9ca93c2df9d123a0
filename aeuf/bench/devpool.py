"""The dev pool of BENCHMARKS.md, rebuilt from AlpacaEval's public results, and where the
benchmark scripts find it.

AlpacaEval (github.com/tatsu-lab/alpaca_eval, code Apache-2.0, data CC BY-NC 4.0) publishes,
per model, `results/<model>/model_outputs.json` (a list of {dataset, instruction, output,
generator}, one per AlpacaEval instruction) and
`results/<model>/weighted_alpaca_eval_gpt4_turbo/annotations.json` (a list of {instruction,
output_1, generator_1 = the reference gpt4_1106_preview, output_2, generator_2 = the model,
preference, ...}; preference = 1 + P(output_2 beats output_1) from the judge's log-probs).
The dev pool is one row per (instruction, model): prompt_id, instruction, dataset, model,
response, score = preference - 1 = P(the response beats the reference). Every response was
judged against the same reference, so logit(score) is a utility on one scale
(aeuf.io.pool.score_to_utility).

`build_rows` is pure (lists of dicts in, a DataFrame out); scripts/fetch_dev_pool.py
downloads the files (or reads a local copy with the same layout) and writes the parquet.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import pandas as pd

from aeuf.errors import InputError

ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
REFERENCE = "gpt4_1106_preview"
COLUMNS = ("prompt_id", "instruction", "dataset", "model", "response", "score")
ENV = "AEUF_DEV_POOL"
DEFAULT_PATH = Path("bench_out") / "alpacaeval_dev.parquet"

# The 16 models of the dev pool (scripts/bench_models.sh deals them into halves A and B).
DEV_MODELS = (
    "oasst-sft-pythia-12b", "chatglm2-6b", "minichat-3b", "vicuna-7b-v1.5", "wizardlm-13b",
    "gpt-3.5-turbo-1106", "Mixtral-8x7B-Instruct-v0.1_concise", "FuseChat-Gemma-2-9B-Instruct",
    "falcon-7b-instruct", "alpaca-7b", "gemma-2b-it", "baize-v2-13b", "gemma-7b-it",
    "Qwen-14B-Chat", "claude-2.1", "FuseChat-Llama-3.2-3B-Instruct",
)


def outputs_file(model: str) -> str:
    """A model's outputs, relative to the root of the alpaca_eval repository."""
    return f"results/{model}/model_outputs.json"


def annotations_file(model: str) -> str:
    """A model's weighted GPT-4-turbo annotations, relative to the repository root."""
    return f"results/{model}/{ANNOTATOR}/annotations.json"


def dev_pool_path(path: str | os.PathLike | None = None) -> Path:
    """The pool a script reads: `path` when given, else $AEUF_DEV_POOL, else
    bench_out/alpacaeval_dev.parquet (where scripts/fetch_dev_pool.py writes)."""
    return Path(path or os.environ.get(ENV) or DEFAULT_PATH)


def load_pool(path: str | os.PathLike | None = None, models: tuple[str, ...] = (),
              num_responses: int | None = None):
    """The one way a script loads a pool with gold: dev_pool_path(path) read by the
    benchmark's reader, restricted to `models` (all when empty) and to `num_responses` per
    prompt. Raises InputError naming the path when it is missing (with how to make it)."""
    from aeuf.bench.data import read_bench_pool, select_responses

    where = dev_pool_path(path)
    if not Path(where).exists():
        raise InputError(f"{where}: no such pool; build the dev pool with `python "
                         f"scripts/fetch_dev_pool.py`, or set {ENV} / pass the path")
    return select_responses(read_bench_pool(str(where)), tuple(models), num_responses)


def _win_probability(value) -> float:
    """preference (1..2, a number or its text) -> P(output_2 wins) in [0, 1]; NaN when
    missing or not a number."""
    try:
        p = float(value) - 1.0
    except (TypeError, ValueError):
        return math.nan
    return min(max(p, 0.0), 1.0) if math.isfinite(p) else math.nan


def scores_of(model: str, annotations: list[dict]) -> dict[str, float]:
    """instruction -> score of `model`'s response, from annotations against the reference
    (the first answer per instruction; rows of another generator are ignored)."""
    out: dict[str, float] = {}
    for a in annotations:
        if isinstance(a, dict) and a.get("generator_2") == model and "instruction" in a:
            out.setdefault(str(a["instruction"]), _win_probability(a.get("preference")))
    return out


def prompt_id(instruction: str) -> str:
    """A stable id of an instruction: the first 12 hex digits of its SHA-1 (the dev pool's
    ids, so a rebuilt pool matches the one the numbers in BENCHMARKS.md were measured on)."""
    return hashlib.sha1(instruction.encode("utf-8")).hexdigest()[:12]


def model_rows(model: str, outputs: list[dict], annotations: list[dict]) -> list[dict]:
    """The rows of one model: one per instruction it answered with a text and that has a
    score (the rest are left out: the benchmark needs a gold score per response)."""
    scores = scores_of(model, annotations)
    rows, seen = [], set()
    for o in outputs:
        ins = str(o.get("instruction")) if isinstance(o, dict) else None
        text, score = (o.get("output") if ins else None), scores.get(ins, math.nan)
        if ins is None or ins in seen or not isinstance(text, str) or math.isnan(score):
            continue
        seen.add(ins)
        rows.append({"prompt_id": prompt_id(ins), "instruction": ins,
                     "dataset": str(o.get("dataset") or ""), "model": model,
                     "response": text, "score": score})
    return rows


def build_rows(sources: dict[str, tuple[list, list]]) -> pd.DataFrame:
    """{model: (model_outputs list, annotations list)} -> the dev pool: one row per
    (instruction, model) with columns COLUMNS: the models sorted by name, each model's rows in
    AlpacaEval's order (the layout of the original dev pool). Raises InputError when nothing
    usable is left."""
    if not sources:
        raise InputError("no models given: name at least one (e.g. --models gpt-3.5-turbo-1106)")
    for model, (outs, notes) in sources.items():
        for name, data in (("model_outputs.json", outs), ("annotations.json", notes)):
            if not isinstance(data, list):
                raise InputError(f"{model}: {name} is not a JSON list of records (got "
                                 f"{type(data).__name__}); is it the alpaca_eval results file?")
    rows = [r for m in sorted(sources) for r in model_rows(m, *sources[m])]
    if not rows:
        raise InputError("no response with a score: the annotations name none of the models' "
                         f"instructions (annotator {ANNOTATOR})")
    return pd.DataFrame(rows, columns=list(COLUMNS))
