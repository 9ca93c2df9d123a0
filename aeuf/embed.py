"""The embed stage: features for every response, composed from named parts.

`--features minilm+stats+model` names the parts. Each part maps the pool to f32[N, d_part]
(N = P*R, row-major over [P, R]); `compose` standardises every part and concatenates them to
f32[N, D]. Encoder parts (sentence embeddings, LLM hidden states) are computed through the
run's content-hash feature cache by the loop; pure parts are cheap and recomputed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import NamedTuple, TypeVar

import numpy as np

from aeuf.config import FeatureConfig
from aeuf.errors import ConfigError
from aeuf.registry import Registry
from aeuf.types import ResponsePool


class FeaturePart(NamedTuple):
    """One named block of features.

    encoder_id: cfg -> the id its cached vectors are stored under (None for pure parts)
    encode:     (texts: list[str] of N, cfg) -> f32[N, d]; for encoder parts
    compute:    (pool, cfg) -> f32[N, d]; for pure parts
    texts:      pool -> the N texts an encoder part encodes (and the cache keys); default
                `pool_texts` (prompt, blank line, response)
    """

    encoder_id: Callable[[FeatureConfig], str] | None = None
    encode: Callable[[list[str], FeatureConfig], np.ndarray] | None = None
    compute: Callable[[ResponsePool, FeatureConfig], np.ndarray] | None = None
    texts: Callable[[ResponsePool], list[str]] | None = None


PARTS: Registry[FeaturePart] = Registry("feature part")


def parse_parts(spec: str) -> list[str]:
    """'minilm+stats' -> ['minilm', 'stats'], each checked against the registry."""
    names = [s.strip() for s in spec.split("+") if s.strip()]
    if not names:
        raise ConfigError("--features is empty: name parts joined by '+', e.g. minilm+stats")
    if names == [AUTO]:
        raise ConfigError("--features auto is resolved once the pool is read (a bug: it "
                          "reached the embed stage unresolved)")
    for name in names:
        PARTS.get(name)
    return names


AUTO = "auto"  # --features default: resolved from the pool by `resolve_features`
AUTO_WITH_MODEL, AUTO_WITHOUT_MODEL = "minilm+stats+model", "minilm+stats"


def known_models(pool: ResponsePool) -> list[str]:
    """The distinct generating models the pool names (sorted; [] when none is known)."""
    names = np.asarray(pool.models, dtype=object).reshape(-1)
    return sorted({m for m in names if isinstance(m, str) and m})


def recurring_models(pool: ResponsePool) -> list[str]:
    """The generating models that answer at least two prompts (sorted): only these let labels
    on one prompt say something about another."""
    names = np.asarray(pool.models, dtype=object).reshape(pool.shape)
    seen: dict[str, int] = {}
    for row in names:
        for m in {m for m in row if isinstance(m, str) and m}:
            seen[m] = seen.get(m, 0) + 1
    return sorted(m for m, prompts in seen.items() if prompts >= 2)


def resolve_features(spec: str, pool: ResponsePool) -> str:
    """--features as used: 'auto' -> minilm+stats+model when at least two generating models
    each answer two or more prompts (the one-hot then carries what labels teach about a model
    to other prompts; a name unique to one response would add a column of noise), else
    minilm+stats; any other spec is returned unchanged."""
    if spec.strip() != AUTO:
        return spec
    return AUTO_WITH_MODEL if len(recurring_models(pool)) >= 2 else AUTO_WITHOUT_MODEL


def possible_parts(spec: str) -> list[str]:
    """The parts `spec` may use before the pool is read: 'auto' -> the parts of either of its
    resolutions (AUTO_WITH_MODEL holds both), any other spec -> parse_parts(spec)."""
    return parse_parts(AUTO_WITH_MODEL if spec.strip() == AUTO else spec)


def resolve_config(cfg: FeatureConfig, pool: ResponsePool) -> FeatureConfig:
    """`cfg` with its features resolved for `pool` (see resolve_features)."""
    spec = resolve_features(cfg.features, pool)
    return cfg if spec == cfg.features else replace(cfg, features=spec)


def pair_text(prompt: str, response: str) -> str:
    """The text an encoder sees for one response: the prompt, a blank line, the response."""
    return f"{prompt}\n\n{response}"


def pool_texts(pool: ResponsePool) -> list[str]:
    """N = P*R encoder inputs, row-major over [P, R]."""
    P, R = pool.shape
    return [pair_text(pool.prompts[p], pool.responses[p, r]) for p in range(P) for r in range(R)]


_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+", re.MULTILINE)
_HEADER = re.compile(r"^\s*#{1,6}\s", re.MULTILINE)
_REFUSAL = re.compile(r"\b(?:I'?m sorry|I cannot|I can'?t|as an AI|I am unable)\b", re.IGNORECASE)
STAT_NAMES = (
    "log_chars", "log_words", "log_lines", "list_items", "code_blocks", "headers",
    "ends_cleanly", "refusal", "questions", "unique_word_ratio", "log_len_ratio",
)


def text_stats(prompt: str, response: str) -> np.ndarray:
    """Cheap statistics of one response: f32[len(STAT_NAMES)]; finite for an empty one."""
    words = response.split()
    end = response.rstrip()[-1:]  # "" for an empty response, which does not end cleanly
    return np.array([
        np.log1p(len(response)),
        np.log1p(len(words)),
        np.log1p(response.count("\n") + 1),
        np.log1p(len(_LIST_ITEM.findall(response))),
        response.count("```") // 2,
        len(_HEADER.findall(response)),
        float(bool(end) and end in ".!?)\"'`*:"),
        float(bool(_REFUSAL.search(response))),
        response.count("?"),
        len({w.lower() for w in words}) / max(len(words), 1),
        np.log1p(len(response)) - np.log1p(len(prompt)),
    ], dtype=np.float32)


def response_stats(pool: ResponsePool, cfg: FeatureConfig | None = None) -> np.ndarray:
    """Statistics of every response: pool [P, R] -> f32[N, len(STAT_NAMES)]."""
    P, R = pool.shape
    rows = [text_stats(pool.prompts[p], pool.responses[p, r]) for p in range(P) for r in range(R)]
    return np.stack(rows)


def model_onehot(pool: ResponsePool, cfg: FeatureConfig | None = None) -> np.ndarray:
    """One-hot of the generating model: pool -> f32[N, number of distinct models].

    Responses of unknown origin get an all-zero row. Raises ConfigError if no model is known.
    """
    names = np.asarray(pool.models, dtype=object).reshape(-1)
    known = known_models(pool)
    if not known:
        raise ConfigError("feature part 'model' needs the generating model of each response "
                          "(a `<column>_model` column or `completions[].model`); drop 'model' from --features")
    index = {m: i for i, m in enumerate(known)}
    out = np.zeros((names.shape[0], len(known)), np.float32)
    for n, m in enumerate(names):
        if m in index:
            out[n, index[m]] = 1.0
    return out


ROWS_PER_CHUNK = 4096  # rows standardised at a time (cache-sized: 10x faster than 64k here)
THREADS = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
              else os.cpu_count() or 1)  # chunks read and standardised at once
T = TypeVar("T")


def column_stats(x: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (float64 [d], float64 accumulation) of the columns of [N, d] over `rows`
    (all if None), read in chunks so that a memory map or float16 matrix is never copied."""
    idx = np.arange(x.shape[0]) if rows is None else np.asarray(rows)
    total, square = np.zeros(x.shape[1]), np.zeros(x.shape[1])

    def sums(start: int) -> tuple[np.ndarray, np.ndarray]:
        part = np.asarray(x[idx[start:start + ROWS_PER_CHUNK]], np.float64)
        total = part.sum(axis=0)
        return total, np.square(part, out=part).sum(axis=0)  # in place: one copy per thread

    for part_total, part_square in in_threads(sums, range(0, idx.size, ROWS_PER_CHUNK)):
        total += part_total  # added in chunk order: the same sums as one thread adds
        square += part_square
    mean = total / max(idx.size, 1)
    return mean, np.sqrt(np.maximum(square / max(idx.size, 1) - mean**2, 0.0))


def standardise(x: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Z-score each column of f32[N, d] with the mean and std of `rows` (all rows if None);
    constant columns become 0."""
    return compose([x], rows)


def equal_groups(dims: list[int]) -> list[float]:
    """Per-block weights giving each block the same total variance, D / (number of blocks):
    the 11 stats columns weigh as much as the 384 MiniLM ones together."""
    total = float(sum(dims))
    return [float(np.sqrt(total / (len(dims) * d))) for d in dims]


# --group_scale: name -> weights per block from the blocks' widths
GROUP_SCALES = {"none": lambda dims: [1.0] * len(dims), "equal": equal_groups}


def compose(blocks: list[np.ndarray], rows: np.ndarray | None = None, *,
            dtype=np.float32, weights: list[float] | None = None,
            out: np.ndarray | None = None) -> np.ndarray:
    """Standardise each [N, d_i] block (statistics of `rows`, default all), times its weight
    (default 1; GROUP_SCALES), and concatenate: -> [N, sum d_i] of `dtype` (float16 halves a
    large pool's memory). Written chunk by chunk into one array: the only full-size
    allocation is the result, or `out` ([N, sum d_i] of `dtype`) when the caller gives one
    (a memory-mapped array, say)."""
    n = {b.shape[0] for b in blocks}
    if len(n) != 1:
        raise ValueError(f"feature blocks disagree on the number of rows: {sorted(n)}")
    stats = [column_stats(b, rows) for b in blocks]
    dims = np.cumsum([0] + [b.shape[1] for b in blocks])
    weights = [1.0] * len(blocks) if weights is None else weights
    shape = (n.pop(), int(dims[-1]))
    if out is None:
        out = np.empty(shape, dtype)
    elif out.shape != shape or out.dtype != np.dtype(dtype):
        raise ValueError(f"compose: out is {out.dtype}{out.shape}, needs {np.dtype(dtype)}{shape}")
    for b, (mean, std), lo, hi, w in zip(blocks, stats, dims[:-1], dims[1:], weights):
        shift = mean.astype(np.float32)
        scale = (np.where(std > 1e-6, std, 1.0) / w).astype(np.float32)

        def write(start: int, b=b, shift=shift, scale=scale, lo=lo, hi=hi) -> None:
            part = np.asarray(b[start:start + ROWS_PER_CHUNK], np.float32)
            out[start:start + ROWS_PER_CHUNK, lo:hi] = (part - shift) / scale

        for _ in in_threads(write, range(0, b.shape[0], ROWS_PER_CHUNK)):
            pass
    return out


def in_threads(fn: Callable[[int], T], starts: range) -> Iterator[T]:
    """fn(start) for each start, in order, computed by up to THREADS threads (numpy lets go
    of the GIL while it reads, casts and sums a chunk)."""
    if THREADS < 2 or len(starts) < 2:
        yield from map(fn, starts)
        return
    pool = ThreadPoolExecutor(THREADS, thread_name_prefix="aeuf-features")
    try:
        yield from pool.map(fn, starts)
    finally:  # an error (or a caller that stops early) cancels the chunks not started
        pool.shutdown(wait=True, cancel_futures=True)


def _minilm_encode(texts: list[str], cfg: FeatureConfig) -> np.ndarray:
    from aeuf.backends import sentence

    return sentence.encode(texts, cfg.encoder, batch_size=cfg.batch_size, max_length=cfg.max_length)


def _minilm_id(cfg: FeatureConfig) -> str:
    from aeuf.backends import sentence

    return f"st:{sentence.encoder_id(cfg.encoder)}:{cfg.max_length}"


def _llm_encode(texts: list[str], cfg: FeatureConfig) -> np.ndarray:
    from aeuf.backends import hidden_states

    if not cfg.llm_encoder:
        raise ConfigError("feature part 'llm' needs --llm_encoder (a causal LM name or path)")
    return hidden_states.encode(texts, cfg.llm_encoder, batch_size=cfg.batch_size, max_length=cfg.max_length)


def _llm_id(cfg: FeatureConfig) -> str:
    return f"llm:{cfg.llm_encoder}:{cfg.max_length}"


def _rm_model(cfg: FeatureConfig) -> str:
    if not cfg.rm_encoder:
        raise ConfigError("feature part 'rm' needs a reward model: --reward_model or --rm_encoder")
    return cfg.rm_encoder


def pool_pairs(pool: ResponsePool) -> list[str]:
    """N = P*R texts, each the JSON list [prompt, response]: a reward model reads the two
    apart (its chat template or text pair), and JSON keeps them apart whatever they hold."""
    P, R = pool.shape
    return [json.dumps([pool.prompts[p], pool.responses[p, r]]) for p in range(P)
            for r in range(R)]


def _rm_encode(texts: list[str], cfg: FeatureConfig) -> np.ndarray:
    """f32[N, H]: the reward model's last hidden state where its reward head reads it."""
    from aeuf.backends import reward_model

    pairs = [json.loads(t) for t in texts]
    return reward_model.run([p for p, _ in pairs], [r for _, r in pairs], _rm_model(cfg),
                            batch_size=cfg.batch_size, max_length=cfg.max_length, hidden=True)


def _rm_id(cfg: FeatureConfig) -> str:
    from aeuf.backends import reward_model

    return f"rm:{_rm_model(cfg)}:{reward_model.revision(_rm_model(cfg))}:{cfg.max_length}"


PARTS.register("minilm")(FeaturePart(encoder_id=_minilm_id, encode=_minilm_encode))
PARTS.register("rm")(FeaturePart(encoder_id=_rm_id, encode=_rm_encode, texts=pool_pairs))
PARTS.register("llm")(FeaturePart(encoder_id=_llm_id, encode=_llm_encode))
PARTS.register("stats")(FeaturePart(compute=response_stats))
PARTS.register("model")(FeaturePart(compute=model_onehot))
# "file" (precomputed vectors aligned by response id) is read by the loop: it needs disk.
PARTS.register("file")(FeaturePart())
