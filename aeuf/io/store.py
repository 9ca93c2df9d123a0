"""The feature cache every run shares (feature_cache_dir(): --features_cache, else
$XDG_CACHE_HOME/aeuf/features or ~/.cache/aeuf/features): root/<encoder-hash>/ holds
values.npy + ids.parquet (the compacted base) and chunk-*.npz files (one per `add`, each
written atomically). Keys are content hashes, so a text is embedded once per encoder, by
whichever run meets it first.

Crash safety: a chunk appears whole or not at all (temp file + rename); compaction writes
the new base as "old base rows first, then chunk rows" and deletes chunks only afterwards,
so if it dies between replacing values.npy and ids.parquet the shorter of the two is still
a correct prefix of the other. Temp files and unreadable chunks are ignored (temp) or
removed (chunks; those texts are simply embedded again). Concurrent runs: any number may
add chunks at once (unique names, atomic renames); one compacts at a time (.compact.lock,
never waited for); a reader racing a compaction sees the old or the new base, each a
prefix of the other, and at worst misses chunks just merged (re-embedding, never a wrong
vector).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import time
import uuid
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from aeuf.config.paths import cache_home
from aeuf.errors import InputError
from aeuf.io.atomic import atomic_write, atomic_write_json, atomic_write_parquet, is_temp_name


def feature_cache_dir(folder: str | os.PathLike | None = None) -> Path:
    """The feature cache every run shares: `folder` (--features_cache), else
    $XDG_CACHE_HOME/aeuf/features, else ~/.cache/aeuf/features."""
    if folder:
        return Path(folder).expanduser()
    return cache_home("features")


MAX_CHUNKS = 256  # compact when there are more chunks than this ...
MIN_CHUNKS = 8  # ... or at least this many holding as many rows as the base


class FeatureStore:
    """Vectors f32[D] keyed by content hash, for one encoder.

    root: the feature cache (feature_cache_dir(), shared by every run); encoder_id: names the encoder
    (a new id gets a new sub-folder); dim: expected D, checked against stored vectors.
    """

    def __init__(self, root: Path, encoder_id: str, dim: int | None = None) -> None:
        self.encoder_id = encoder_id
        self.dir = Path(root) / hashlib.sha256(encoder_id.encode("utf-8")).hexdigest()[:16]
        self.dim = dim
        self._loaded = False

    @staticmethod
    def content_key(encoder_id: str, text: str) -> str:
        """sha256 hex of the encoder id and the text: the cache key of one vector."""
        return hashlib.sha256(f"{encoder_id}\x00{text}".encode()).hexdigest()

    def lookup(self, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """keys [N] -> (found bool[N], f32[N, D] with zero rows where not found).

        D is 0 while both the store and `dim` are unknown (nothing stored yet).
        """
        self._load()
        rows = np.array([self._index.get(k, -1) for k in keys], dtype=np.int64)
        return rows >= 0, self._gather(rows)

    def add(self, keys: Sequence[str], values: np.ndarray) -> None:
        """Store f32[n, D] under `keys` [n] in one atomic chunk (keys already stored skipped)."""
        values = np.asarray(values, dtype=np.float32)
        if values.ndim != 2 or values.shape[0] != len(keys):
            raise ValueError(f"add: {len(keys)} keys but values of shape {values.shape}")
        self._load()
        self._check_dim(values.shape[1], "the new vectors")
        keep = self._new_rows(keys)
        if not keep:
            return
        keys = [keys[n] for n in keep]
        values = np.ascontiguousarray(values[keep])
        if not self._blocks:
            atomic_write_json(self.dir / "encoder.json",
                              {"encoder_id": self.encoder_id, "dim": values.shape[1]})
        name = f"chunk-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.npz"
        atomic_write(self.dir / name, lambda tmp: _save_chunk(tmp, keys, values))
        self._append_block(keys, values, self.dir / name)
        if self._should_compact():
            self.compact()

    def compact(self) -> None:
        """Merge the base and all chunks into a new values.npy + ids.parquet (base rows
        first). One process compacts a folder at a time: it holds .compact.lock and reads
        the folder afresh under it; a process that finds the lock taken leaves its chunks
        for a later compaction (two compactions at once could pair one's values.npy with
        the other's ids.parquet)."""
        with _exclusive(self.dir / ".compact.lock") as held:
            if not held:
                return
            self._loaded = False
            self._load()
            keys = sorted(self._index, key=self._index.__getitem__)
            values = self._gather(np.array([self._index[k] for k in keys], dtype=np.int64))
            atomic_write(self.dir / "values.npy", lambda tmp: _save_npy(tmp, values))
            atomic_write_parquet(self.dir / "ids.parquet", pd.DataFrame({"key": keys}))
            for chunk in self._chunks:
                chunk.unlink(missing_ok=True)
            self._loaded = False

    def __len__(self) -> int:
        self._load()
        return len(self._index)

    # --- internals ---------------------------------------------------------------------

    def _load(self) -> None:
        if self._loaded:
            return
        self._index: dict[str, int] = {}
        self._blocks: list[np.ndarray] = []
        self._chunks: list[Path] = []
        self._base_rows = 0
        base = _read_base(self.dir)
        if base is not None:
            self._append_block(*base, None)
            self._base_rows = len(base[0])
        for path in sorted(self.dir.glob("chunk-*.npz")):
            if not is_temp_name(path.name) and (chunk := _read_chunk(path)) is not None:
                self._append_block(*chunk, path)
        self._loaded = True

    def _append_block(self, keys: Sequence[str], values: np.ndarray, path: Path | None) -> None:
        self._check_dim(values.shape[1], str(path or self.dir / "values.npy"))
        start = sum(len(b) for b in self._blocks)
        self._blocks.append(values)
        if path is not None:
            self._chunks.append(path)
        for n, k in enumerate(keys):
            self._index.setdefault(str(k), start + n)

    def _check_dim(self, d: int, what: str) -> None:
        if self.dim is None:
            self.dim = d
        elif d != self.dim:
            raise InputError(f"{self.dir}: {what} have dimension {d}, the cache {self.dim} "
                             f"(encoder '{self.encoder_id}'); delete that folder to rebuild it")

    def _new_rows(self, keys: Sequence[str]) -> list[int]:
        seen: set[str] = set()
        keep = []
        for n, k in enumerate(keys):
            if k not in self._index and k not in seen:
                seen.add(k)
                keep.append(n)
        return keep

    def _gather(self, rows: np.ndarray) -> np.ndarray:
        """Global rows [N] (-1 = missing) -> f32[N, D], zeros for missing rows."""
        out = np.zeros((len(rows), self.dim or 0), dtype=np.float32)
        idx = np.flatnonzero(rows >= 0)
        if idx.size == 0:
            return out
        ends = np.cumsum([len(b) for b in self._blocks])
        blk = np.searchsorted(ends, rows[idx], side="right")
        order = np.argsort(blk, kind="stable")
        idx, blk = idx[order], blk[order]
        for part in np.split(np.arange(idx.size), np.flatnonzero(np.diff(blk)) + 1):
            b, sel = int(blk[part[0]]), idx[part]
            out[sel] = self._blocks[b][rows[sel] - (ends[b] - len(self._blocks[b]))]
        return out

    def _should_compact(self) -> bool:
        chunk_rows = sum(len(b) for b in self._blocks) - self._base_rows
        n = len(self._chunks)
        return n > MAX_CHUNKS or (n >= MIN_CHUNKS and chunk_rows >= self._base_rows)


@contextlib.contextmanager
def _exclusive(path: Path):
    """Yields True while holding an exclusive lock on `path`, False when another process
    holds it (never waits)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _save_chunk(tmp: Path, keys: list[str], values: np.ndarray) -> None:
    with open(tmp, "wb") as f:
        np.savez(f, keys=np.asarray(keys, dtype=str), values=values)


def _save_npy(tmp: Path, values: np.ndarray) -> None:
    with open(tmp, "wb") as f:
        np.save(f, values)


def _read_chunk(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(keys [n], f32[n, D]) of a chunk. An unreadable chunk (chunks are renamed into place
    whole, so only disk damage makes one) is deleted with a warning and None returned."""
    try:
        with np.load(path, allow_pickle=False) as z:
            keys, values = z["keys"], np.asarray(z["values"], dtype=np.float32)
        if values.ndim != 2 or len(keys) != len(values):
            raise ValueError(f"{len(keys)} keys for values of shape {values.shape}")
    except FileNotFoundError:  # merged into the base by another process's compaction
        return None
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError) as e:
        warnings.warn(f"{path}: unreadable feature chunk removed ({type(e).__name__}); its "
                      "texts will be embedded again", stacklevel=3)
        path.unlink(missing_ok=True)
        return None
    return keys, values


def _read_base(folder: Path) -> tuple[list[str], np.ndarray] | None:
    """The compacted base (keys, memmapped values); a length mismatch keeps the common prefix."""
    vpath, ipath = folder / "values.npy", folder / "ids.parquet"
    if not (vpath.is_file() and ipath.is_file()):
        return None
    try:  # each file opened once: a compaction may replace it while it is read
        values = _map_npy(vpath)
        keys = _read_keys(ipath.read_bytes())
    except FileNotFoundError:
        return None
    n = min(len(keys), len(values))
    return keys[:n], values[:n]


def _read_keys(data: bytes) -> list[str]:
    """ids.parquet's keys, read on this thread: Arrow's thread pools can abort a process at
    exit (`terminate called without an active exception`, apache/arrow#34314), which a
    concurrent writer in CI hit once."""
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data), use_threads=False).column("key").to_pylist()


def _map_npy(path: Path) -> np.ndarray:
    """A read-only memory map of a .npy whose header and data come from one open file
    (np.load with mmap_mode opens the path twice, and a rename in between mixes files)."""
    with open(path, "rb") as f:
        fmt = np.lib.format
        read = fmt.read_array_header_1_0 if fmt.read_magic(f) == (1, 0) \
            else fmt.read_array_header_2_0
        shape, fortran, dtype = read(f)
        offset = f.tell()
        if int(np.prod(shape)) == 0:
            return np.zeros(shape, dtype)
        return np.memmap(f, dtype=dtype, mode="r", offset=offset, shape=shape,
                         order="F" if fortran else "C")

