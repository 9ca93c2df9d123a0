"""Work started ahead of the round that needs it (run layer: owns the thread).

    soon(fn, *args) -> Future    fn(*args) in a daemon thread; .result() waits for it and
                                 raises what it raised

Used for the prompts' kNN graph (aeuf.run.round.choosing.graph_of): round 0 of a belief rule
picks its prompts uniformly, so the graph BAL-PM reads from round 1 on is built while round
0 is judged (single-threaded Python) and fit. The thread is a daemon: a run that stops early
(an error, Ctrl-C) does not wait for it, though it computes on (beside the export) until the
process exits; an error nobody reads is dropped with the Future.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


def soon(fn: Callable[..., Any], *args: Any) -> Future:
    """fn(*args), computed in a daemon thread."""
    future: Future = Future()

    def work() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(*args))
        except BaseException as err:  # noqa: BLE001  (raised by .result(), in the caller)
            future.set_exception(err)

    threading.Thread(target=work, name=f"aeuf-{getattr(fn, '__name__', 'ahead')}",
                     daemon=True).start()
    return future
