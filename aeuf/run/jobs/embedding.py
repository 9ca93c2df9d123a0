"""`aeuf embed POOL`: the composed features of a pool, computed through the feature cache and
written as <out>/features.npy (f32[N, D], row-major over [P, R]) and features.ids.txt (one
response id per line), which `--precomputed` reads back.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from aeuf import embed, io
from aeuf.config import RunConfig
from aeuf.run import featurize


class EmbedSummary(NamedTuple):
    responses: int
    dims: int
    parts: dict
    encoded: int
    path: Path


def embed_pool(cfg: RunConfig, out: Path, *, progress: bool = True) -> EmbedSummary:
    """Read cfg.input, build its features (through the shared feature cache) and write them
    to `out`."""
    pool = io.read_pool(cfg.input)
    feat = embed.resolve_config(cfg.features, pool)  # --features auto, as `aeuf run` resolves it
    features, info = featurize.build_features(pool, feat, progress=progress)
    flat = features.reshape(-1, features.shape[-1])
    path = io.write_precomputed_features(out, flat, [str(i) for i in pool.response_ids.reshape(-1)])
    return EmbedSummary(flat.shape[0], flat.shape[1], info.dims, info.encoded, path)
