"""Features for a pool through the content-hash cache every run shares (touches disk: loop
level; aeuf.io.store.feature_cache_dir: --features_cache, else the user's cache folder).

Encoder parts are looked up by sha256(encoder id + text); only texts never seen before (by
any run) are embedded, in length-sorted chunks that are written to the cache as they
finish, so a killed run keeps what it embedded.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm.auto import tqdm

from aeuf import embed, io
from aeuf.backends import silence_progress_bars
from aeuf.config import FeatureConfig
from aeuf.errors import ConfigError
from aeuf.head.padding import non_finite
from aeuf.types import ResponsePool

CHUNK = 256
HALF_FROM = 2**30  # feature values from which 'auto' holds them in float16 (4 GB in float32)
SPILL_FROM = 2**30  # bytes from which the composed features live in a mapped scratch file


class FeatureInfo(NamedTuple):
    """What building the features did: dims per part and texts embedded (0 when cached)."""

    dims: dict[str, int]
    encoded: dict[str, int]


def cached_encode(
    texts: list[str], part: embed.FeaturePart, cfg: FeatureConfig, root: Path, *,
    desc: str = "embed", progress: bool = True,
) -> tuple[np.ndarray, int]:
    """Encode N texts through the cache under `root`: -> (f32[N, d], number newly encoded)."""
    eid = part.encoder_id(cfg)
    store = io.FeatureStore(root, eid)
    keys = [io.FeatureStore.content_key(eid, t) for t in texts]
    found, values = store.lookup(keys)
    todo = _unique_missing(keys, found)
    if not todo:
        return np.asarray(values, np.float32), 0
    todo.sort(key=lambda n: len(texts[n]))
    new: dict[str, np.ndarray] = {}
    bar = tqdm(total=len(todo), desc=desc, unit="text", disable=not progress)
    for start in range(0, len(todo), CHUNK):
        rows = todo[start:start + CHUNK]
        vecs = np.asarray(part.encode([texts[n] for n in rows], cfg), np.float32)
        store.add([keys[n] for n in rows], vecs)
        new.update({keys[n]: v for n, v in zip(rows, vecs)})
        bar.update(len(rows))
    bar.close()
    return _fill(keys, found, values, new), len(todo)


def _unique_missing(keys: list[str], found: np.ndarray) -> list[int]:
    """Row numbers of the first occurrence of each key not in the cache."""
    seen: set[str] = set()
    out = []
    for n, (k, f) in enumerate(zip(keys, found)):
        if not f and k not in seen:
            seen.add(k)
            out.append(n)
    return out


def _fill(keys: list[str], found: np.ndarray, values: np.ndarray, new: dict) -> np.ndarray:
    dim = next(iter(new.values())).shape[0]
    out = np.zeros((len(keys), dim), np.float32)
    if found.any():
        out[found] = values[found]
    for n, k in enumerate(keys):
        if not found[n]:
            out[n] = new[k]
    return out


def precomputed_block(pool: ResponsePool, cfg: FeatureConfig) -> np.ndarray:
    """The 'file' part: vectors from cfg.precomputed aligned to the pool's response ids."""
    if not cfg.precomputed:
        raise ConfigError("feature part 'file' needs --precomputed PATH (a .npy with ids, or parquet)")
    ids, values = io.read_precomputed_features(cfg.precomputed)
    wanted = [str(i) for i in np.asarray(pool.response_ids).reshape(-1)]
    return io.align_features(ids, values, wanted, source=cfg.precomputed)


def cache_root(cfg: FeatureConfig, cache: Path | None = None) -> Path:
    """The cache folder: `cache` when given, else cfg.cache, else the user's cache folder."""
    return Path(cache) if cache is not None else io.feature_cache_dir(cfg.cache)


def check_precomputed(pool: ResponsePool, cfg: FeatureConfig) -> np.ndarray | None:
    """InputError when the 'file' part's features lack an id of the pool: called before a
    run writes anything, so a refused run leaves no config.json or responses.parquet.

    Returns the checked block when it is the file's own memory map (its ids in the pool's
    order), for build_features(file_block=) to use without reading and checking the file
    again; else None (a gathered block would be held in memory until then)."""
    if "file" not in embed.parse_parts(cfg.features):
        return None
    block = precomputed_block(pool, cfg)
    return block if isinstance(block, np.memmap) else None


def build_features(
    pool: ResponsePool, cfg: FeatureConfig, cache: Path | None = None, *,
    progress: bool = True, fit_prompts: np.ndarray | None = None, spill: Path | None = None,
    file_block: np.ndarray | None = None,
) -> tuple[np.ndarray, FeatureInfo]:
    """Composed, standardised features: pool [P, R] -> ([P, R, D], FeatureInfo), float32 or
    float16 (FeatureConfig.dtype). cache: the feature cache folder (default: cache_root).

    fit_prompts: prompt indices whose responses set the standardisation (default: all), so
    held-out prompts are scaled like the pool a run would see. spill: a folder (the run's)
    where features of SPILL_FROM bytes or more are held in a mapped scratch file
    (io.scratch_array: page cache, not memory the process owns) instead of in RAM.
    file_block: the 'file' part as check_precomputed returned it for this pool (None: read)."""
    if not progress:
        silence_progress_bars()  # "Loading weights" bars of the encoders too
    P, R = pool.shape
    blocks, dims, encoded = [], {}, {}
    texts = None
    for name in embed.parse_parts(cfg.features):
        part = embed.PARTS.get(name)
        if name == "file":
            block = precomputed_block(pool, cfg) if file_block is None else file_block
        elif part.encode is not None:
            if part.texts is None and texts is None:
                texts = embed.pool_texts(pool)
            block, encoded[name] = cached_encode(
                part.texts(pool) if part.texts else texts, part, cfg, cache_root(cfg, cache),
                desc=f"embed {name}", progress=progress)
        else:
            block = part.compute(pool, cfg)
        if name != "file":  # io refuses a non-finite precomputed file as it reads it
            check_finite(block, R, name)
        blocks.append(block)
        dims[name] = int(block.shape[1])
    rows = None if fit_prompts is None else (
        np.asarray(fit_prompts)[:, None] * R + np.arange(R)).reshape(-1)
    dtype = feature_dtype(cfg.dtype, P * R * sum(dims.values()))
    weights = embed.GROUP_SCALES[cfg.group_scale]([b.shape[1] for b in blocks])
    out = scratch_or_none(spill, (P * R, sum(dims.values())), dtype)
    return (embed.compose(blocks, rows, dtype=dtype, weights=weights, out=out).reshape(P, R, -1),
            FeatureInfo(dims, encoded))


def scratch_or_none(spill: Path | None, shape: tuple[int, ...], dtype) -> np.ndarray | None:
    """A mapped scratch array in `spill` for an array of SPILL_FROM bytes or more, else None
    (the caller allocates in RAM)."""
    size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    return None if spill is None or size < SPILL_FROM else io.scratch_array(spill, shape, dtype)


def check_finite(block: np.ndarray, R: int, part: str, chunk: int = 65536) -> None:
    """InputError naming the first response whose `part` features [P*R, d] hold NaN or an
    infinity (read in chunks): composed in, it would make every head's scores NaN, silently."""
    for start in range(0, block.shape[0], chunk):
        ok = np.isfinite(np.asarray(block[start:start + chunk], np.float32)).all(axis=1)
        if not ok.all():
            n = start + int(np.flatnonzero(~ok)[0])
            raise non_finite(n // R, n % R, f"the '{part}' features")


def feature_dtype(name: str, values: int) -> type:
    """The dtype the composed features are held in: float16 under 'auto' from 2^30 values."""
    if name == "auto":
        return np.float16 if values >= HALF_FROM else np.float32
    return {"float32": np.float32, "float16": np.float16}[name]


def prompt_features(
    pool: ResponsePool, features: np.ndarray, cfg: FeatureConfig, cache: Path | None = None, *,
    progress: bool = True, spill: Path | None = None
) -> np.ndarray:
    """Features of the prompts alone for diversity across prompts: -> f32[P, d].

    The sentence encoder on the prompt text when 'minilm' is a part, else the mean of the
    prompt's response features (in a mapped scratch file in `spill` from SPILL_FROM bytes,
    as build_features).
    """
    if "minilm" not in embed.parse_parts(cfg.features):
        P, _, D = features.shape
        out = scratch_or_none(spill, (P, D), np.float32)
        if out is None:
            return features.mean(axis=1, dtype=np.float32)
        for lo in range(0, P, embed.ROWS_PER_CHUNK):
            out[lo:lo + embed.ROWS_PER_CHUNK] = features[lo:lo + embed.ROWS_PER_CHUNK].mean(
                axis=1, dtype=np.float32)
        return out
    part = embed.PARTS.get("minilm")
    vecs, _ = cached_encode(list(pool.prompts), part, cfg, cache_root(cfg, cache),
                            desc="embed prompts", progress=progress)
    return embed.standardise(vecs)
