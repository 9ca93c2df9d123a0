"""Shared pieces of the acquisition rules: the `Rule` record, the registry, key handling and
small vectorised helpers. Rules are numpy, vectorised across prompts: for these small
per-prompt reductions a vmapped + jitted JAX version is no faster (0.6-1.4x, slower for BALD)
and costs 0.3-2 s of compile per shape (scripts/bench_acquire.py, BENCHMARKS.md).

Shape letters: P prompts, R responses per prompt, K joint samples, D feature dim,
k responses shown to the oracle per prompt.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import numpy as np
from jaxtyping import Bool, Float, Int

from aeuf.config import AcquireConfig
from aeuf.errors import ConfigError
from aeuf.registry import Registry
from aeuf.types import Belief, Choice


class SelectFn(Protocol):
    """How a rule chooses: select(belief | None, features | None, *, key, k, valid=None).

    belief: the head's Belief over the pool (None before the first fit; rules with
        needs_belief raise ConfigError without one); features: f32 [P, R, D] response
        features (aepo, and doptimal when the belief has no `embed`); key: a JAX PRNG key or
        an int, the only source of randomness; k: responses to show per prompt (2 <= k <= R);
    valid: bool [P, R, R] or None, the pairs a belief rule may choose as its first pair
        (treated as unordered: (i, j) is allowed when valid[p, i, j] and valid[p, j, i]; a row
        with no allowed pair is unconstrained; model-free rules ignore it). The tie-aware
        wrapper passes it.
    Returns a Choice: idx int32 [P, k'] distinct within each row, score f32 [P].
    """

    def __call__(
        self,
        belief: Belief | None,
        features: Float[np.ndarray, "P R D"] | None,
        *,
        key: Any,
        k: int,
        valid: Bool[np.ndarray, "P R R"] | None = None,
    ) -> Choice: ...


class NumShownFn(Protocol):
    """num_shown(k, R) -> k': how many responses a row of the rule's Choice.idx holds."""

    def __call__(self, k: int, R: int) -> int: ...


class Rule(NamedTuple):
    """An acquisition rule: how to choose which responses of each prompt the oracle sees.

    select: SelectFn (above)
    needs_belief: False for rules usable before any label (random, aepo, ultrafeedback,
        west_of_n)
    pairing: how the oracle's ratings of the k' shown responses become the exported pair
        ("extremes": best vs worst; "best_vs_random": best vs a random other)
    num_shown: NumShownFn
    needs_embed: True for rules that read Belief.embed (the design rules); the engine asks
        the head for it only then (it is the belief's largest array)
    """

    select: SelectFn
    needs_belief: bool
    pairing: str
    num_shown: NumShownFn
    needs_embed: bool = False


class RuleFactory(Protocol):
    """A RULES entry: the rule for a config."""

    def __call__(self, cfg: AcquireConfig) -> Rule: ...


RULES: Registry[RuleFactory] = Registry("acquisition rule")

BIG = 1e30  # finite stand-in for "very bad" so argmax never lands on an excluded entry


def shown_k(k: int, R: int) -> int:
    """num_shown of most rules: k itself."""
    return k


def check_k(k: int, R: int) -> None:
    """Raise ConfigError unless 2 <= k <= R."""
    if not 2 <= k <= R:
        raise ConfigError(
            f"--num_annotations {k}: must be between 2 and the {R} responses per prompt"
        )


def numpy_rng(key: Any) -> np.random.Generator:
    """A numpy Generator determined by a JAX PRNG key (raw uint32[2] or typed) or an int."""
    if isinstance(key, (int, np.integer)):
        return np.random.default_rng(int(key))
    if "key<" in str(getattr(key, "dtype", "")):  # typed JAX key: jax.random.key(...)
        import jax

        key = jax.random.key_data(key)
    data = np.asarray(key)
    if data.size == 0 or not np.issubdtype(data.dtype, np.integer):
        raise ConfigError(f"acquisition key must be a JAX PRNG key or an int, got {key!r}")
    return np.random.default_rng(data.astype(np.uint64).ravel())


def require_belief(belief: Belief | None, name: str) -> Belief:
    """The belief as numpy arrays (pair_var [P,R,R] filled in from the joint samples if a head
    left it None), or ConfigError if the rule needs one and none is given."""
    if belief is None:
        raise ConfigError(
            f"acquisition rule '{name}' needs a fitted head; use aepo or random before the "
            "first labels"
        )
    b = Belief(*(None if a is None else np.asarray(a) for a in belief))
    if b.pair_var is None and b.samples is not None:  # a head that gave samples only
        d = b.samples[:, :, :, None] - b.samples[:, :, None, :]
        b = b._replace(pair_var=d.var(axis=0))
    return b


def argmax_random(
    x: Float[np.ndarray, "*batch n"],
    rng: np.random.Generator,
    valid: Bool[np.ndarray, "*#batch n"] | None = None,
) -> Int[np.ndarray, "*batch"]:
    """Per-row argmax over the last axis with ties broken uniformly at random.

    x: [..., n] (NaN counts as the lowest value); valid: bool [..., n] or None (all valid).
    Returns int64 [...]: an index where `valid` holds whenever a row has any valid entry.
    Rows with a unique finite maximum take a fast path; only the others draw random numbers.
    """
    if valid is not None:
        x = np.where(valid, x, -np.inf)
    out, count, top = _first_max(x)
    slow = (count != 1) | ~np.isfinite(top)  # ties, or NaN / infinite maxima
    if slow.any():
        v = None if valid is None else np.broadcast_to(valid, x.shape)[slow]
        out[slow] = _argmax_random_slow(x[slow], rng, v)
    return out


def _first_max(x: np.ndarray):
    """(first argmax int64 [...], how many entries equal the max [...], max [...]) over the
    last axis of x [..., n]. numpy reduces a short last axis row by row (~100 ns a row), so
    for n <= 16 the axis is moved first and reduced elementwise (about 5x faster at n = 8)."""
    n = x.shape[-1]
    if n > 16:
        top = x.max(axis=-1)
        tie = x == top[..., None]
        return tie.argmax(axis=-1), tie.sum(axis=-1), top
    xt = np.ascontiguousarray(np.moveaxis(x, -1, 0))  # [n, ...]
    top = xt.max(axis=0)
    tie = xt == top
    rank = np.arange(n, 0, -1, dtype=np.uint8).reshape((n,) + (1,) * (x.ndim - 1))
    first = n - (tie * rank).max(axis=0).astype(np.int64)
    return first, tie.sum(axis=0), top


def _argmax_random_slow(x: np.ndarray, rng: np.random.Generator, valid: np.ndarray | None):
    """argmax_random for rows [m, n] with ties, NaN or infinities."""
    clean = np.where(np.isnan(x), -BIG, np.clip(x, -BIG, BIG))
    if valid is not None:
        clean = np.where(valid, clean, -np.inf)
    tie = clean >= clean.max(-1, keepdims=True)
    return np.argmax(np.where(tie, rng.random(x.shape), -1.0), axis=-1)


def pair_mask(
    valid: Bool[np.ndarray, "P R R"] | None, P: int, R: int
) -> Bool[np.ndarray, "P R R"] | None:
    """The allowed unordered pairs of each row: valid[p,i,j] and valid[p,j,i] and i != j; a
    row with no allowed pair allows every i != j (a rule must still choose). None stays None."""
    if valid is None:
        return None
    off = ~np.eye(R, dtype=bool)
    v = np.asarray(valid, bool)
    v = np.broadcast_to(v & v.transpose(*range(v.ndim - 2), -1, -2) & off, (P, R, R)).copy()
    v[~v.any(axis=(1, 2))] = off
    return v


def best_pair(
    S: Float[np.ndarray, "P R R"],
    rng: np.random.Generator,
    symmetric: bool = False,
    valid: Bool[np.ndarray, "P R R"] | None = None,
) -> Int[np.ndarray, "P 2"]:
    """The ordered pair (i, j), i != j, maximising S[p, i, j] in each row; random ties.

    S: [P, R, R] (the diagonal is ignored); symmetric: S[p, i, j] == S[p, j, i], so only
    i < j is searched (otherwise every maximum would be a two-way tie); valid: pair_mask(...)
    output or None (every pair allowed). Returns int64 [P, 2].
    """
    P, R, _ = S.shape
    i, j = np.indices((R, R))
    allowed = (i < j) if symmetric else (i != j)
    allowed = allowed.reshape(R * R) if valid is None else (valid & allowed).reshape(P, R * R)
    flat = argmax_random(S.reshape(P, R * R), rng, allowed)
    return np.stack([flat // R, flat % R], axis=1)


def greedy_extend(
    G, first: Int[np.ndarray, "P m"], k: int, rng: np.random.Generator
) -> Int[np.ndarray, "P k"]:
    """Grow each row's chosen set to k by adding the response with the largest summed gain.

    G: [P, R, R] symmetric gain of showing i together with j (e.g. sigma_ij), or a callable
    returning it (only called when k > m); first: [P, m] chosen so far (m >= 1).
    Returns int64 [P, k]: `first` followed by the greedy additions.
    """
    if first.shape[1] >= k:
        return first
    G = G() if callable(G) else G
    P, R, _ = G.shape
    rows = np.arange(P)
    out = [first[:, s] for s in range(first.shape[1])]
    taken = np.zeros((P, R), bool)
    gain = np.zeros((P, R))
    for i in out:
        taken[rows, i] = True
        gain = gain + G[rows, i]
    for _ in range(k - len(out)):
        nxt = argmax_random(gain, rng, ~taken)
        out.append(nxt)
        taken[rows, nxt] = True
        gain = gain + G[rows, nxt]
    return np.stack(out, axis=1)


def best_set(
    V: Float[np.ndarray, "P R R"], rng: np.random.Generator, k: int,
    valid: Bool[np.ndarray, "P R R"] | None = None,
) -> Int[np.ndarray, "P k"]:
    """The allowed pair with the largest symmetric value V[p, i, j] in each row, grown to k
    responses greedily by the same value (best_pair, then greedy_extend). Returns int64 [P, k]."""
    P, R, _ = V.shape
    return greedy_extend(V, best_pair(V, rng, True, pair_mask(valid, P, R)), k, rng)


def pair_std_score(
    pair_var: Float[np.ndarray, "P R R"], idx: Int[np.ndarray, "P k"]
) -> Float[np.ndarray, " P"]:
    """Epistemic score of a choice: mean over its unordered pairs of sqrt(Var[r_i - r_j]).

    pair_var: [P, R, R]; idx: [P, k]. Returns float32 [P].
    """
    rows = np.arange(idx.shape[0])[:, None]
    iu, ju = np.triu_indices(idx.shape[1], 1)
    var = pair_var[rows, idx[:, iu], idx[:, ju]]  # [P, k(k-1)/2]
    return np.sqrt(np.maximum(var, 0.0)).mean(axis=1).astype(np.float32)


def make_choice(idx: Int[np.ndarray, "P k"], score: Float[np.ndarray, " P"]) -> Choice:
    """Choice with the contract's dtypes: idx int32 [P, k'], score float32 [P]."""
    return Choice(np.ascontiguousarray(idx, dtype=np.int32), np.asarray(score, np.float32))
