"""The run directory: one object that owns every file of a run and reads back what it writes.

    runs/<name>/
      .lock               advisory lock: one process writes a run at a time
      config.json         the run's identity: resolved configuration + the input's digest
      responses.parquet   the pool as first read (a resume reads this, never the input again)
      judgements.jsonl    every oracle answer, appended and fsync'd (aeuf.io.runlog)
      rounds/<t>.json     what round t chose and why, written before it is judged
      head/state.npz      the head after the latest fit, with the round and the digest of the
                          comparisons it was fit on (restored on resume, never refit)
      annotations.jsonl   the chosen responses, when the run has no oracle
      web_tokens.json     the web oracle's annotator tokens (0600; aeuf.io.tokens)
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from aeuf.config import stored
from aeuf.errors import InputError
from aeuf.io.atomic import atomic_write, atomic_write_json, atomic_write_text, strict_json
from aeuf.io.runlog import JudgementLog, load_pool, write_pool
from aeuf.types import ResponsePool

# config keys that may change between runs in one directory: they change neither what is
# selected nor what is judged (paths, rate limits, spending caps, export layout). The input
# is identified by its content digest, so its path may change too; a judge's address,
# key variable and limits may change (a server moved to another port).
HARMLESS_KEYS = frozenset({
    "input.path", "output_dir", "push_to_hub", "west_of_n", "all_pairs", "format", "keep_ties",
    "max_cost", "max_requests", "retry_unparsable", "retry_unanswered", "price_in", "price_out",
    "send_key_to_local", "features.batch_size", "features.cache",
    "batch_shard_size", "batch_poll_seconds", "oracle.name",
    # the web oracle's page may move, and people may join or leave (votes_per_pair may not)
    "oracle.web.host", "oracle.web.port", "oracle.web.annotators",
    "cluster",  # where the rounds run: a deterministic rule chooses the same on Ray
    *(f"oracle.judge.{k}" for k in ("base_url", "api_key_env", "concurrency",
                                    "requests_per_minute", "tokens_per_minute", "timeout",
                                    "retries")),
    # the cheap judge's endpoint, transport and prices may change as the judge's may (its
    # model and margin may not: they decide which labels the run keeps)
    *(f"oracle.cheap_judge.{k}" for k in ("base_url", "api_key_env", "concurrency",
                                          "requests_per_minute", "tokens_per_minute",
                                          "timeout", "retries")),
})
# the judge that labels a run ("oracle_used": the resolved oracle) may be chosen after a run
# without one (`aeuf judge` on its annotations.jsonl, then the same command with the judge);
# once a run has an oracle, another judge, model or template is a different run
JUDGE_KEYS = frozenset({
    "oracle_used", "oracle.judge.model", "oracle.template", "oracle.temperature",
    "oracle.max_tokens", "oracle.logprobs", "oracle.context_tokens", "oracle.answer_format",
    "oracle.local_model", "oracle.web.votes_per_pair",
})
_MISSING = "<not set>"


class RunDir:
    """One run directory. Use as a context manager: entering takes the lock."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock: int | None = None

    # --- lock ------------------------------------------------------------------------------

    def __enter__(self) -> RunDir:
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise InputError(f"{self.path}: another aeuf process (pid {holder}) is writing this "
                             "run; wait for it to finish or choose another --output_dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock = fd
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            os.close(self._lock)
            self._lock = None

    # --- files -----------------------------------------------------------------------------

    @property
    def features(self) -> Path:
        return self.path / "features"

    @property
    def judgements(self) -> JudgementLog:
        return JudgementLog(self.path / "judgements.jsonl")

    def exists(self) -> bool:
        return (self.path / "config.json").is_file()

    # --- identity --------------------------------------------------------------------------

    def check_config(self, config: dict) -> None:
        """Write config.json, unless the folder holds a different run (InputError naming the
        first key that differs; HARMLESS_KEYS may differ, and JUDGE_KEYS while the stored run
        had no oracle)."""
        path = self.path / "config.json"
        if path.is_file():
            old = stored(_read_json(path))  # an older release's config.json, read as today's
            free = free_keys(old)
            # both sides in today's layout, settings absent from either at their defaults
            new = stored(json.loads(strict_json(config)))
            key = first_difference(old, new, harmless=free)
            if key is not None:
                raise InputError(
                    f"{path}: this folder holds a different run ({key}: {_get(old, key)!r} "
                    f"there, {_get(config, key)!r} now); rerun with the settings it was "
                    f"started with (its config.json; a default may have changed since), choose "
                    f"another --output_dir, or delete {self.path}")
        atomic_write_json(path, config)

    def stored_config(self) -> dict | None:
        """The config.json of the run this folder holds, or None before the first run."""
        path = self.path / "config.json"
        return _read_json(path) if path.is_file() else None

    # --- pool ------------------------------------------------------------------------------

    def stored_pool(self) -> ResponsePool | None:
        """The pool this run started from, or None before the first run."""
        path = self.path / "responses.parquet"
        return load_pool(path) if path.is_file() else None

    def check_input(self, pool: ResponsePool, source: str) -> ResponsePool:
        """The pool to run on: the stored one, after checking that `pool` (just read from
        `source`) is the same; InputError naming what changed otherwise."""
        stored = self.stored_pool()
        if stored is None:
            return pool
        if pool_digest(stored) != pool_digest(pool):
            raise InputError(f"{source}: the input changed since this run started in "
                             f"{self.path} ({describe_change(stored, pool)}); restore it, or "
                             "start a new run with another --output_dir")
        return stored

    def store_pool(self, pool: ResponsePool) -> None:
        if not (self.path / "responses.parquet").is_file():
            write_pool(self.path / "responses.parquet", pool)

    # --- rounds ----------------------------------------------------------------------------

    def round_record(self, t: int) -> dict | None:
        path = self.path / "rounds" / f"{t}.json"
        return _read_json(path) if path.is_file() else None

    def save_round(self, t: int, record: dict) -> None:
        """rounds/<t>.json, compact: Python's indenting encoder took 1.9 s for a record of
        33k prompts, compact JSON 0.6 s (json reads both)."""
        atomic_write_text(self.path / "rounds" / f"{t}.json", strict_json(record) + "\n")

    # --- head ------------------------------------------------------------------------------

    def save_head(self, leaves: list, meta: dict) -> None:
        """The head's state leaves and what they were fit on, in one atomic file."""
        arrays = {f"leaf_{i}": np.asarray(x) for i, x in enumerate(leaves)}
        arrays["meta"] = np.asarray(strict_json(meta))
        atomic_write(self.path / "head" / "state.npz", lambda tmp: _savez(tmp, arrays))

    def load_head(self) -> tuple[list, dict] | None:
        """(leaves, meta) of the saved head, or None: also when the file is damaged
        (truncated, not an npz, no meta), with a note on stderr; the loop then refits."""
        path = self.path / "head" / "state.npz"
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                leaves = [z[f"leaf_{i}"] for i in range(len(z.files) - 1)]
            if not isinstance(meta, dict) or not {"round", "comparisons"} <= set(meta):
                raise ValueError("no round or comparisons in its meta")
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as e:
            print(f"aeuf: {path} is damaged ({type(e).__name__}); the head is refit",
                  file=sys.stderr)
            return None
        return leaves, meta

    # --- no oracle -------------------------------------------------------------------------

    def write_annotations(self, records: list[dict]) -> Path:
        path = self.path / "annotations.jsonl"
        atomic_write_text(path, "".join(strict_json(r) + "\n" for r in records))
        return path


def _savez(tmp: Path, arrays: dict) -> None:
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(f"{path}: not valid JSON; delete it or choose another "
                         "--output_dir") from None


def free_keys(old: dict) -> frozenset:
    """The keys a rerun of the run whose config.json is `old` may change: HARMLESS_KEYS, and
    JUDGE_KEYS while that run had no oracle."""
    return HARMLESS_KEYS | JUDGE_KEYS if old.get("oracle_used", "none") == "none" else HARMLESS_KEYS


def fixed_settings(old: dict, layout: dict, prefix: str = "", *,
                   free: frozenset | None = None) -> dict:
    """The settings of a stored run (its config.json in today's layout, `old`) that a rerun may
    not change: the keys today's config has (`layout`: RunConfig as a dict), free keys left
    out. A rerun takes them where the user gives no value, so that a default changed since
    never refuses an old run (nested dict, like `old`)."""
    free = free_keys(old) if free is None else free
    out: dict = {}
    for key, value in old.items():
        path = f"{prefix}{key}"
        if key not in layout or path in free or str(key) in free:
            continue
        if isinstance(layout[key], dict):
            sub = fixed_settings(value, layout[key], f"{path}.", free=free) \
                if isinstance(value, dict) else {}
            if sub:
                out[key] = sub
        else:
            out[key] = value
    return out


def first_difference(old: dict, new: dict, prefix: str = "", *,
                     harmless: frozenset = HARMLESS_KEYS) -> str | None:
    """The first dotted key (sorted order) whose value differs, harmless keys skipped (by
    dotted path or by bare name)."""
    for key in sorted(set(old) | set(new)):
        path = f"{prefix}{key}"
        if path in harmless or str(key) in harmless:
            continue
        a, b = old.get(key, _MISSING), new.get(key, _MISSING)
        if isinstance(a, dict) and isinstance(b, dict):
            sub = first_difference(a, b, f"{path}.", harmless=harmless)
            if sub is not None:
                return sub
        elif a != b:
            return path
    return None


def _get(d: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        d = d.get(part, _MISSING) if isinstance(d, dict) else _MISSING
    return d


DIGEST_CHUNK = 65_536  # values per update of the pool digest


def pool_digest(pool: ResponsePool) -> str:
    """sha256 over everything of a pool that selection and judging depend on."""
    h = hashlib.sha256()
    for name in ("prompt_ids", "prompts", "responses", "models", "response_ids"):
        values = np.asarray(getattr(pool, name), dtype=object).reshape(-1).tolist()
        for lo in range(0, len(values), DIGEST_CHUNK):  # the same bytes, fed in chunks
            h.update("".join(f"{v!s}\x1f" for v in values[lo:lo + DIGEST_CHUNK]).encode())
        h.update(b"\x1e")
    if pool.gold is not None:
        h.update(np.ascontiguousarray(pool.gold, np.float64).tobytes())
    if pool.messages is not None:
        h.update(json.dumps(list(pool.messages), sort_keys=True).encode())
    return h.hexdigest()


def describe_change(old: ResponsePool, new: ResponsePool) -> str:
    """One phrase naming what differs between two pools (for the refusal message)."""
    if old.shape != new.shape:
        return f"{old.shape[0]} prompts x {old.shape[1]} responses then, {new.shape[0]} x {new.shape[1]} now"
    for name, what in (("prompt_ids", "prompt id"), ("prompts", "prompt text"),
                       ("responses", "response text"), ("models", "model"),
                       ("response_ids", "response id")):
        a, b = np.asarray(getattr(old, name), object), np.asarray(getattr(new, name), object)
        diff = np.argwhere(a != b)
        if diff.size:
            p = int(diff[0][0])
            where = f"prompt {old.prompt_ids[p]}" + (f" response {int(diff[0][1])}" if diff.shape[1] > 1 else "")
            return f"{what} of {where} differs" + (f", and {len(diff) - 1} more" if len(diff) > 1 else "")
    return "gold scores differ"
