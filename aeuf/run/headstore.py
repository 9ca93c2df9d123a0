"""The head across a run: after each round's fit it is saved (head/state.npz with the
round and a digest of the comparisons it was fit on); a rerun restores it instead of
refitting when it was fit on exactly these comparisons, and refits a damaged or foreign one.

With a Saver the file is written by a thread that waits for the fit's arrays, so the caller
goes on while JAX computes: after the last round (whose belief nobody reads) the export runs
beside the last fit. A run killed before the file is written refits that round on a rerun,
with the same result.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import jax
import numpy as np

from aeuf import io
from aeuf.run import records
from aeuf.run.ledger import Ledger
from aeuf.run.round import engine
from aeuf.run.round.types import Context, State


class Saver:
    """Writes head/state.npz in a thread once the fit's arrays are computed; one save at a
    time, in order. wait() returns when the last one is on disk and raises what it raised;
    use it as a context manager, so no save outlives the run."""

    def __init__(self, rd: io.RunDir) -> None:
        self.rd, self._thread, self._error = rd, None, None

    def save(self, head_state, meta: dict) -> None:
        """Start writing `head_state` with `meta` (after the save before it is done)."""
        self.wait()

        def write() -> None:
            try:
                self.rd.save_head(_leaves(head_state), meta)
            except BaseException as err:  # noqa: BLE001  (handed to wait(), in the caller)
                self._error = err

        self._thread = threading.Thread(target=write, name="aeuf-save-head")
        self._thread.start()

    def __enter__(self) -> Saver:
        return self

    def __exit__(self, kind, *_) -> None:
        """Waits for the last save; raises its error when nothing else is raised, else
        notes it on stderr (the run's own error is the one raised)."""
        try:
            self.wait()
        except Exception as err:
            if kind is None:
                raise
            print(f"aeuf: the head was not saved ({type(err).__name__}: {err}); a rerun "
                  "refits it", file=sys.stderr)

    def wait(self) -> None:
        """Return once the last save is on disk; raise what it raised."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            err, self._error = self._error, None
            raise err


def fit(ctx: Context, rd: io.RunDir, state: State, t: int, ledger: Ledger,
        saved: tuple[list, dict] | None, saver: Saver | None = None) -> State:
    """The head after round t: none while replaying rounds before the saved head's round,
    the saved head when it was fit on exactly these comparisons (and built the precision
    when this run's rules read it: HeadConfig.precision), else a refit, saved (by `saver`
    when given: the caller must wait() for it; else before returning)."""
    if state.comps.size == 0:
        return state
    digest = records.comps_digest(state.comps)
    if saved is not None and t < saved[1]["round"]:
        return state  # a replayed round; the saved head of a later round is restored
    if saved is not None and t == saved[1]["round"] and saved[1]["comparisons"] == digest \
            and (saved[1].get("precision", True) or not ctx.cfg.head.precision):
        return engine.restore(ctx, state, _unflatten(ctx, saved[0]), t)
    if ledger.exhausted:  # a partial round: its head would be refit on a rerun anyway
        return state
    state = engine.refit(ctx, state, t)
    meta = {"round": t, "comparisons": digest, "M": state.comps.size,
            "precision": ctx.cfg.head.precision}
    if saver is None:
        rd.save_head(_leaves(state.head_state), meta)
    else:
        saver.save(state.head_state, meta)
    return state


def usable(ctx: Context, saved: tuple[list, dict] | None, out: Path):
    """The saved head when its leaves have this head's shapes and dtypes, else None (with a
    note): a damaged or foreign head/state.npz is refit, with the same result."""
    if saved is None:
        return None
    template = jax.tree_util.tree_leaves(ctx.head.init(ctx.features.shape[-1],
                                                       key=ctx.keys.init()))
    same = len(template) == len(saved[0]) and all(
        np.shape(a) == np.shape(b) and np.asarray(a).dtype == np.asarray(b).dtype
        for a, b in zip(template, saved[0]))
    if not same:
        print(f"aeuf: {out / 'head' / 'state.npz'} does not fit this head (wrong shapes); "
              "the head is refit", file=sys.stderr)
    return saved if same else None


def _leaves(head_state) -> list[np.ndarray]:
    """The head state's arrays on the host (waits for JAX to compute them)."""
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(head_state)]


def _unflatten(ctx: Context, leaves: list):
    template = ctx.head.init(ctx.features.shape[-1], key=ctx.keys.init())
    treedef = jax.tree_util.tree_structure(template)
    return jax.tree_util.tree_unflatten(treedef, [jax.numpy.asarray(x) for x in leaves])


