"""Where each feature part's columns sit in the composed features, from --features alone.

The `ensemble+linear` head needs the columns of the cheap parts (stats, model). Parts are
composed in --features order; the widths of `stats` (embed.STAT_NAMES) and of the default
MiniLM encoder are known, and one part of unknown width (model: the number of generating
models; file, llm, rm, another encoder) gets what is left of D. With two or more unknown
widths the layout is not resolved and the head's linear part reads no column (it is then
the ensemble).
"""

from __future__ import annotations

from dataclasses import replace

from aeuf import embed
from aeuf.config import FeatureConfig, HeadConfig

CHEAP_PARTS = ("stats", "model")
ENCODER_WIDTHS = {"all-MiniLM-L6-v2": 384, "sentence-transformers/all-MiniLM-L6-v2": 384}


def part_widths(cfg: FeatureConfig, dim: int) -> dict[str, int] | None:
    """Part name -> width (in --features order), or None when D = dim does not resolve."""
    known = {"stats": len(embed.STAT_NAMES)}
    if cfg.encoder in ENCODER_WIDTHS:
        known["minilm"] = ENCODER_WIDTHS[cfg.encoder]
    parts = embed.parse_parts(_unautoed(cfg.features, known, dim))
    unknown = [p for p in parts if p not in known]
    rest = dim - sum(known[p] for p in parts if p in known)
    if len(unknown) > 1 or rest < 0 or (not unknown and rest):
        return None
    return {p: known.get(p, rest) for p in parts}


def _unautoed(spec: str, known: dict[str, int], dim: int) -> str:
    """A --features auto that reached the engine unresolved (the run layer resolves it from
    the pool; a library caller may not): of its two resolutions, the one without the model
    part when D is exactly its width."""
    if spec.strip() != embed.AUTO:
        return spec
    bare = embed.AUTO_WITHOUT_MODEL
    fits = all(p in known for p in bare.split("+")) and sum(known[p] for p in bare.split("+")) == dim
    return bare if fits else embed.AUTO_WITH_MODEL


def cheap_columns(cfg: FeatureConfig, dim: int,
                  widths: dict[str, int] | None = None) -> tuple[int, ...]:
    """The columns of the stats and model parts of D = dim composed features (() if the
    layout does not resolve). widths: part name -> width in composition order, as built
    (used when they add up to D)."""
    if widths is None or sum(widths.values()) != dim:
        widths = part_widths(cfg, dim)
    if widths is None:
        return ()
    cols, lo = [], 0
    for name, width in widths.items():
        if name in CHEAP_PARTS:
            cols.extend(range(lo, lo + width))
        lo += width
    return tuple(cols)


def head_config(head: HeadConfig, features: FeatureConfig, dim: int,
                widths: dict[str, int] | None = None) -> HeadConfig:
    """`head` with linear_columns filled from the layout (or the built `widths`) when the
    head has a linear part and none were given."""
    if head.name != "ensemble+linear" or head.linear_columns:
        return head
    return replace(head, linear_columns=cheap_columns(features, dim, widths))
