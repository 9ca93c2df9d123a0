"""Generation planning: which model answers which prompt, with which sampling parameters.

Pure: no disk, no network, no model. The plan is a list of `GenRequest`s that a back-end in
`aeuf.backends.generation` turns into `Generation`s; `aeuf.run.jobs.gen_run` stores them and resumes.

Sampling is keyed per prompt (seed, prompt_id), so a prompt's models and seeds do not change
when prompts are added or removed: a rerun over a larger file reuses every stored response.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from aeuf.config import GenerateConfig
from aeuf.errors import ConfigError
from aeuf.types import GenRequest

_SPEC_KEYS = ("name", "path", "temperature", "top_p", "max_tokens")


class ModelSpec(NamedTuple):
    """One member of the pool.

    name: the label recorded with each response (and matched by include/exclude filters)
    path: what the back-end loads or sends (hub id, local folder, .gguf file, server model)
    temperature, top_p, max_tokens: per-model overrides of the config's defaults (None = use it)
    """

    name: str
    path: str
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None


def parse_models(entries: Sequence[str | Mapping]) -> list[ModelSpec]:
    """Model specs from --models entries: a name/path string or a dict with `_SPEC_KEYS`.

    A string is both name and path; a dict needs `name` or `path` (the other defaults to it).
    Names must be unique: a name identifies a (model, sampling) combination in the output.
    """
    specs = [_one_spec(e, i) for i, e in enumerate(entries)]
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"--models: duplicate model name(s) {', '.join(dupes)}")
    return specs


def _one_spec(entry: str | Mapping, index: int) -> ModelSpec:
    if isinstance(entry, str):
        return ModelSpec(entry, entry)
    unknown = sorted(set(entry) - set(_SPEC_KEYS))
    if unknown or not (entry.get("name") or entry.get("path")):
        raise ConfigError(
            f"--models entry {index}: needs 'name' or 'path', allowed keys {', '.join(_SPEC_KEYS)}"
            + (f"; unknown {', '.join(unknown)}" if unknown else "")
        )
    name = str(entry.get("name") or entry["path"])
    return ModelSpec(name, str(entry.get("path") or name), *(entry.get(k) for k in _SPEC_KEYS[2:]))


def filter_pool(specs: Sequence[ModelSpec], include=(), exclude=()) -> list[ModelSpec]:
    """Specs whose name matches any `include` glob (all if none given) and no `exclude` glob."""

    def hit(name: str, patterns) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in patterns)

    kept = [s for s in specs if (not include or hit(s.name, include)) and not hit(s.name, exclude)]
    if not kept:
        raise ConfigError("no model left in the pool after --include_model / --exclude_model")
    return kept


def draw_models(n: int, pool: int, rng: np.random.Generator) -> np.ndarray:
    """[n] int indices into a pool of size `pool`: distinct when n <= pool, otherwise whole
    shuffled rounds of the pool followed by a distinct remainder (each model used evenly)."""
    rounds = [rng.permutation(pool) for _ in range(n // pool)]
    rest = rng.choice(pool, size=n % pool, replace=False)
    return np.concatenate([*rounds, rest]).astype(np.int64)


def plan(
    prompt_ids: Sequence[str], prompts: Sequence[str], specs: Sequence[ModelSpec],
    cfg: GenerateConfig,
) -> list[GenRequest]:
    """The generation plan: P prompts -> P * R requests, R = cfg.num_responses.

    Pool = `specs` after cfg.include_model / cfg.exclude_model. With cfg.one_side_model, slot 0
    of every prompt is that model and slots 1.. come from the rest of the pool (the whole pool
    if it is the only model). Output is ordered by prompt, then slot.
    """
    if cfg.num_responses < 1:
        raise ConfigError("--num_responses must be at least 1")
    pool = filter_pool(specs, cfg.include_model, cfg.exclude_model)
    fixed, others = _split_on_policy(pool, cfg.one_side_model)
    out = []
    for pid, prompt in zip(prompt_ids, prompts, strict=True):
        rng = np.random.default_rng(_seed_of(cfg.seed, "pool", pid))
        idx = draw_models(cfg.num_responses - len(fixed), len(others), rng)
        chosen = fixed + [others[i] for i in idx]
        out += [_request(pid, prompt, slot, s, cfg) for slot, s in enumerate(chosen)]
    return out


def _split_on_policy(pool: list[ModelSpec], name: str | None):
    """([on-policy spec] or [], the specs the other slots are drawn from)."""
    if name is None:
        return [], pool
    match = [s for s in pool if s.name == name]
    if not match:
        raise ConfigError(
            f"--one_side_model '{name}' is not in the pool ({', '.join(s.name for s in pool)})"
        )
    rest = [s for s in pool if s.name != name]
    return match, rest or match


def _request(pid: str, prompt: str, slot: int, spec: ModelSpec, cfg: GenerateConfig):
    params = {
        "temperature": float(_pick(spec.temperature, cfg.temperature)),
        "top_p": float(_pick(spec.top_p, cfg.top_p)),
        "max_tokens": int(_pick(spec.max_tokens, cfg.max_tokens)),
        "seed": _seed_of(cfg.seed, "sample", pid, slot, spec.name),
    }
    key = _hash([pid, _hash([prompt]), slot, spec.name, spec.path, params])
    return GenRequest(key, pid, prompt, slot, spec.name, spec.path, **params)


def _pick(value, default):
    return default if value is None else value


def _hash(obj) -> str:
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def _seed_of(*parts) -> int:
    """A 31-bit seed from any JSON-able parts (stable across runs and machines)."""
    return int(_hash(list(parts))[:8], 16) & 0x7FFFFFFF


def by_model(requests: Sequence[GenRequest]) -> dict[str, list[GenRequest]]:
    """Requests grouped by `path` (one model loaded at a time), in first-seen order."""
    groups: dict[str, list[GenRequest]] = {}
    for r in requests:
        groups.setdefault(r.path, []).append(r)
    return groups
