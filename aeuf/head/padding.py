"""Shared by the heads: comparison checks, flat row indices, and label-count buckets.

Jitted trainers see padded label arrays (0/1 mask) whose length comes from a bucket, so a
label set that grows from round to round reuses one compiled function per bucket.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from aeuf.errors import InputError
from aeuf.types import Comparisons


class Pairs(NamedTuple):
    """Comparisons as flat response rows, padded to a bucket.

    a, b: [S] int32  rows of the flattened [P*R, D] features (0 in padding slots)
    p:    [S] float32 P(a beats b) (0 in padding slots)
    mask: [S] float32 1 for a real comparison, 0 for padding
    """

    a: np.ndarray
    b: np.ndarray
    p: np.ndarray
    mask: np.ndarray


def next_pow2(n: int) -> int:
    """Smallest power of two >= n (1 for n <= 1)."""
    return 1 << max(0, int(n) - 1).bit_length()


def pow2_steps(m: int, batch: int) -> tuple[int, int]:
    """(minibatch size, steps per epoch) for m labels: steps rounded up to a power of two.

    Below one full batch the minibatch is the next power of two >= m (at least 8), capped at
    `batch`, so small label sets also share compiles.
    """
    b = min(int(batch), next_pow2(max(m, 8)))
    return b, next_pow2(math.ceil(m / b))


def exact_steps(m: int, batch: int) -> tuple[int, int]:
    """(minibatch size, steps per epoch) with no padding beyond the last partial batch."""
    b = min(int(batch), max(m, 1))
    return b, math.ceil(m / b)


def quarter_octave(m: int) -> int:
    """Slots for m labels: 4 buckets per octave (at most 25% padding), at least 64."""
    if m <= 64:
        return 64
    unit = 1 << (int(m).bit_length() - 3)
    return math.ceil(m / unit) * unit


def check_comparisons(comps: Comparisons, num_prompts: int, num_responses: int) -> None:
    """Raise InputError unless every comparison indexes the [P, R] pool, a != b, 0 <= p <= 1."""
    prompt, a, b, p = (np.asarray(x) for x in comps)
    if not (len(prompt) == len(a) == len(b) == len(p)):
        raise InputError("comparisons: prompt, a, b and p must have the same length")
    if len(prompt) == 0:
        return
    if prompt.min() < 0 or prompt.max() >= num_prompts:
        raise InputError(f"comparisons: prompt index outside [0, {num_prompts})")
    for name, idx in (("a", a), ("b", b)):
        if idx.min() < 0 or idx.max() >= num_responses:
            raise InputError(f"comparisons: response index {name} outside [0, {num_responses})")
    if np.any(a == b):
        raise InputError(f"comparisons: a == b at row {int(np.argmax(a == b))}")
    if not np.all((p >= 0) & (p <= 1)):
        raise InputError("comparisons: p must lie in [0, 1] (and not be NaN)")


def flat_pairs(comps: Comparisons, num_responses: int, slots: int) -> Pairs:
    """Comparisons -> flat rows prompt * R + response, padded with masked slots to `slots`."""
    m = comps.size
    prompt = np.asarray(comps.prompt, np.int64)
    out = Pairs(*(np.zeros(slots, t) for t in (np.int32, np.int32, np.float32, np.float32)))
    out.a[:m] = prompt * num_responses + np.asarray(comps.a)
    out.b[:m] = prompt * num_responses + np.asarray(comps.b)
    out.p[:m] = np.asarray(comps.p, np.float32)
    out.mask[:m] = 1.0
    return out


def check_features(features, dim: int | None = None):
    """features [P, R, D]; InputError on another rank or a D other than `dim`.

    A jax.Array stays a jax.Array (no host round trip: pass the same device array every round
    to skip the host -> device copy of the pool); float16/float32 numpy arrays (a memory map
    too) are kept as they are and read in chunks (gather_rows); other dtypes become float32.
    """
    x = features if isinstance(features, (jax.Array, np.ndarray)) else np.asarray(features)
    if x.ndim != 3:
        raise InputError(f"features must be [P, R, D], got shape {x.shape}")
    if dim is not None and x.shape[2] != dim:
        raise InputError(f"features have D = {x.shape[2]} but the head was built for D = {dim}")
    return x if x.dtype in (np.float32, np.float16) else np.asarray(x, np.float32)


def gather_rows(x, rows: np.ndarray, *, chunk: int = 8192, size: int | None = None,
                dtype=np.float32):
    """Rows `rows` of x [N, D] (numpy of any float dtype, or a jax.Array) -> [size, D] of
    `dtype` (size >= len(rows), zero rows after them; default len(rows), float32), read
    `chunk` rows at a time: a float16 or memory-mapped pool is never copied whole."""
    if isinstance(x, jax.Array) and size is None:
        return x[rows].astype(dtype)
    out = np.empty((len(rows) if size is None else size, x.shape[1]), dtype)
    out[len(rows):] = 0
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        out[start:start + len(part)] = np.asarray(x[part])
    return out


def compact(x, pairs: Pairs, *, size=None, dtype=np.float32):
    """Only the feature rows the pairs read: x [N, D] -> ([U', D], pairs re-indexed into
    them). A fit then moves M labels' rows to the device, not the whole pool.

    size(U) -> U' >= U pads the rows with zeros (a bucket, so the jitted fit reuses its
    compile); dtype: the rows' dtype (float32; None keeps x's, so a float16 pool is moved in
    float16, half the memory, and each minibatch is widened to float32 on the device)."""
    rows, inv = np.unique(np.concatenate([pairs.a, pairs.b]), return_inverse=True)
    s = len(pairs.a)
    inv = inv.astype(np.int32)
    out = gather_rows(x, rows, size=None if size is None else size(len(rows)),
                      dtype=x.dtype if dtype is None else dtype)
    return out, pairs._replace(a=inv[:s], b=inv[s:])


def row_blocks(n: int, block: int):
    """(start, stop) of consecutive blocks of at most `block` rows covering range(n)."""
    return [(start, min(start + block, n)) for start in range(0, n, block)]


def non_finite(p: int, r: int, what: str = "features") -> InputError:
    """The error for NaN or an infinity in `what` of prompt p, response r (0-based here,
    1-based in the message, as the messages name rows)."""
    return InputError(f"{what} of prompt {p + 1}, response {r + 1} hold NaN or infinite values "
                      "(or overflow float32); recompute them, or drop that response")


@jax.jit
def _finite_rows(x: jax.Array) -> jax.Array:
    return jnp.isfinite(x).all(axis=1)


def refuse_non_finite_pairs(flat, pairs: Pairs, rows: Pairs, m: int, num_responses: int) -> None:
    """non_finite(...) for the first compared response, in the order a_1..a_M, b_1..b_M, whose
    row of flat [U, D] (compact's rows, on the device: one fused pass) holds NaN or an
    infinity; pairs index flat, rows (flat_pairs') the pool's prompt * R + response."""
    ok = np.asarray(_finite_rows(flat))
    if ok.all():
        return
    at = np.flatnonzero(~ok[np.concatenate([pairs.a[:m], pairs.b[:m]])])[0]
    row = int(np.concatenate([rows.a[:m], rows.b[:m]])[at])
    raise non_finite(row // num_responses, row % num_responses)


def refuse_non_finite(values, what: str = "features") -> None:
    """non_finite(...) for the first (prompt, response) of values [P, R, ...] that holds NaN
    or an infinity: a head fit on or scoring such a value would give NaN scores silently."""
    finite = np.isfinite(np.asarray(values, np.float32))
    ok = finite.reshape(finite.shape[0], finite.shape[1], -1).all(axis=-1)
    if not ok.all():
        raise non_finite(*(int(i) for i in np.argwhere(~ok)[0]), what)
