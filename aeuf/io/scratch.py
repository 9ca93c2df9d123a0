"""Large working arrays backed by a file that nobody can see (touches disk: io).

A run's composed features are its largest array (10^6 prompts x 8 x 384 in float16 is
6.1 GB). Held in anonymous memory they must fit in RAM beside everything else; mapped from a
file they are page cache, which the kernel writes back and reads again when RAM runs short.
`scratch_array` makes such an array: a temporary file in the run folder, its whole size
reserved at once (a full disk is one clear error here, never a SIGBUS on a later write),
mapped, and unlinked before it is returned, so the file lives exactly as long as the array
and nothing is left on disk when the process ends, however it ends.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from aeuf.errors import InputError


def scratch_array(folder: Path, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A writable zero array of `shape` and `dtype` mapped from an unlinked file in `folder`.

    InputError (one line) when `folder` cannot hold it."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".scratch-", suffix=".bin", dir=folder)
    try:
        os.unlink(name)  # nothing on disk outlives the mapping, even after a kill
        try:
            _reserve(fd, size)
        except OSError as e:
            raise InputError(f"{folder}: no room for a {size / 1e9:.1f} GB working array "
                             f"({e.strerror}); free disk space there or choose another "
                             "--output_dir") from None
        with open(fd, "r+b", closefd=False) as f:
            return np.memmap(f, dtype=dtype, mode="r+", shape=tuple(shape)) if size else \
                np.zeros(shape, dtype)
    finally:
        os.close(fd)


def _reserve(fd: int, size: int) -> None:
    """Allocates `size` bytes of the file now (so a write into the mapping cannot fail)."""
    if size == 0:
        return
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, 0, size)
    else:  # no fallocate (macOS): a sparse file; a full disk shows up on the writes
        os.ftruncate(fd, size)
