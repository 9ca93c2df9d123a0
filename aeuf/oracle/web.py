"""`--oracle web`: people pick the better of two responses on a page in their browser.

The factory starts the page's server (aeuf.backends.web_server) and prints one link per
annotator, each with its own token. A round's pairs are one send() (chunk: everything), so
all of them are on the page at once; each is `--votes_per_pair k` vote slots (the pair's key
plus ":v<i>"), handed out by aeuf.oracle.web_board. How an answer reaches the ledger: the
POST puts (answer, receipt) on a queue; send() yields the answer; the ledger logs and
fsyncs it, then asks send() for the next one, which first marks the receipt saved; only
then does the POST reply. Between rounds the page shows "next round in a moment".
resolve() keeps each pair's majority (a split is a tie) and names the annotators whose votes
made it. The run layer (aeuf.run.annotators) passes the tokens it keeps in the run folder
(the same links after a rerun) and the ledger's earlier answers (no second vote on a pair
after a restart). A multi-turn prompt goes to the page as its turns.
"""

from __future__ import annotations

import hashlib
import json
import queue
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TextIO

import numpy as np

from aeuf.config import OracleConfig
from aeuf.errors import ConfigError
from aeuf.oracle.base import Capabilities, Oracle, register, request_key
from aeuf.oracle.human import pair_order
from aeuf.oracle.resolve import value_of
from aeuf.oracle.web_board import Board, annotator_of, left_first, majority
from aeuf.oracle.web_render import render
from aeuf.types import JudgeAnswer, Judgement, JudgeRequest, JudgeTask

PAGE = Path(__file__).parent / "web_page"


class Receipt:
    """Told once the answer is on disk (saved) or the run stopped first."""

    def __init__(self) -> None:
        self._event, self.saved = threading.Event(), False

    def done(self, saved: bool) -> None:
        """The first outcome told is final."""
        if not self._event.is_set():
            self.saved = saved
            self._event.set()

    def wait(self) -> bool:
        self._event.wait()
        return self.saved


def web_key(task: JudgeTask, slots: tuple[int, ...]) -> str:
    """Names the pair and, by a digest, the texts the annotators saw (a multi-turn prompt:
    every turn, role and text)."""
    said = task.prompt if not task.turns else json.dumps([list(t) for t in task.turns])
    shown = [said, *(task.responses[s] for s in slots)]
    digest = hashlib.sha256("\x00".join(shown).encode()).hexdigest()[:16]
    return request_key("web", task.prompt_id, [task.response_ids[s] for s in slots], digest)


class _Desk:
    """The state the server's threads and send() share (one lock around the Board)."""

    def __init__(self, names: tuple[str, ...], tally: Callable | None,
                 tokens: Mapping[str, str] | None = None):
        self.board, self.lock, self.inbox = Board(names), threading.Lock(), queue.Queue()
        tokens = tokens or {}
        self.tokens = {tokens.get(n) or secrets.token_urlsafe(18): n for n in names}
        self.stamps: dict[str, list[float]] = {}
        self.tally, self.closed = tally, False

    def who(self, token: str) -> str | None:
        hits = [n for t, n in self.tokens.items() if secrets.compare_digest(t, token)]
        return hits[0] if hits else None

    def state(self, who: str) -> dict:
        with self.lock:
            b = self.board
            request = b.current(who) if b.requests and not self.closed else None
            mine = self.stamps.get(who, [])[-11:]
            pace = (mine[-1] - mine[0]) / (len(mine) - 1) if len(mine) > 1 else None
            run = self.tally() if self.tally else None
            return {"round": b.round, "answered": b.count.get(who, 0), "left": b.left(),
                    "annotator": who, "pace": pace, "ended": self.closed,
                    "waiting": not b.requests, "undo": bool(b.history.get(who)),
                    "run": list(run) if run else None, "pair": _shown(request)}

    def _post(self, answer: JudgeAnswer | None, who: str) -> Receipt | None:
        if answer is None or self.closed:
            return None
        receipt = Receipt()
        self.inbox.put((answer, receipt))
        self.stamps.setdefault(who, []).append(time.monotonic())
        return receipt

    def answer(self, who: str, body: dict) -> Receipt | None:
        with self.lock:
            key, choice = body.get("key"), body.get("choice")
            ok = isinstance(key, str) and isinstance(choice, str)
            return self._post(self.board.answer(who, key, choice) if ok else None, who)

    def undo(self, who: str) -> Receipt | None:
        with self.lock:
            return self._post(self.board.undo(who), who)

    def drain(self) -> None:
        """Tell every waiting POST that its answer was not saved (the run stopped)."""
        while not self.inbox.empty():
            self.inbox.get_nowait()[1].done(False)


def _shown(request: JudgeRequest | None) -> dict | None:
    if request is None:
        return None
    a, b = (request.task.responses[s] for s in request.slots)
    left, right = (a, b) if left_first(request) else (b, a)
    turns = request.task.turns
    return {"key": request.key, "prompt": render(request.task.prompt),
            "turns": [{"role": r, "html": render(t)} for r, t in turns] if turns else None,
            "left": render(left), "right": render(right)}


def links(url: str, desk: _Desk) -> list[str]:
    return [f"{name}: {url}/?token={token}" for token, name in desk.tokens.items()]


WEB = Capabilities(per_pair=True, votes=True, links=True)


def annotator_names(n: int) -> tuple[str, ...]:
    """The names of --annotators n: annotator1 .. annotator<n> (the ledger's "web:<name>")."""
    return tuple(f"annotator{i + 1}" for i in range(n))


@register("web", WEB)
def web_oracle(cfg: OracleConfig, *, stdout: TextIO | None = None,
               tally: Callable[[], tuple[int, int] | None] | None = None,
               tokens: Mapping[str, str] | None = None,
               earlier: Callable[[], Iterable[JudgeAnswer]] | None = None, **_) -> Oracle:
    """Pairwise labels from people at a page; prints one link per annotator. tokens: {name:
    token} kept by the run (a rerun prints the same links; default: new random ones);
    earlier() -> the answers already in the ledger (who voted on what before a restart)."""
    from aeuf.backends import web_server

    web = cfg.web
    if web.annotators < 1 or not 1 <= web.votes_per_pair <= web.annotators:
        raise ConfigError(f"--votes_per_pair {web.votes_per_pair} needs 1 <= k <= --annotators "
                          f"({web.annotators}): two votes on one pair never go to one person")
    desk = _Desk(annotator_names(web.annotators), tally, tokens)
    try:
        server = web_server.start(desk, PAGE, web.host, web.port)
    except OSError as err:
        raise ConfigError(f"--oracle web cannot listen on {web.host}:{web.port} ({err}); "
                          "pick another --web_port (0: a free one)") from err
    out = stdout or sys.stdout
    out.write("Annotate in your browser (one link per annotator; keep them private):\n"
              + "".join(f"  {line}\n" for line in links(server.url, desk)))
    out.flush()

    def plan(task: JudgeTask) -> list[JudgeRequest]:
        k = len(task.responses)
        orders = [pair_order(task, i, j) for i in range(k) for j in range(i + 1, k)]
        return [JudgeRequest(f"{web_key(task, o)}:v{v}", task, o)
                for o in orders for v in range(web.votes_per_pair)]

    def send(requests: Sequence[JudgeRequest]) -> Iterator[JudgeAnswer]:
        before = list(earlier()) if earlier else ()
        with desk.lock:
            desk.board.open(requests, before)
        receipt = None
        try:
            while True:
                if receipt is not None:  # the ledger asked for more: the last one is on disk
                    receipt.done(True)
                    receipt = None
                with desk.lock:
                    if desk.board.complete and desk.inbox.empty():
                        return
                try:
                    answer, receipt = desk.inbox.get(timeout=0.25)
                except queue.Empty:
                    continue
                yield answer
        finally:
            if receipt is not None:
                receipt.done(False)
            with desk.lock:
                desk.board.open(())

    def resolve(task: JudgeTask, answers: Mapping[str, JudgeAnswer]) -> Judgement:
        pairs, people = [], set()
        for head in plan(task)[::web.votes_per_pair]:
            base = head.key.rsplit(":v", 1)[0]
            slots = [f"{base}:v{v}" for v in range(web.votes_per_pair)]
            votes = [(value_of(answers, s), answers.get(s)) for s in slots]
            p = majority([v for v, _ in votes if v is not None])
            if p is not None:
                i, j = head.slots
                pairs.append((i, j, p) if i < j else (j, i, 1.0 - p))
                people |= {annotator_of(a) for v, a in votes if v is not None}
        return Judgement(task, np.full(len(task.responses), np.nan), pairs,
                         annotators=tuple(sorted(people)))

    def close() -> None:
        with desk.lock:
            desk.closed = True
            desk.drain()
        server.stop()

    return Oracle("web", plan, send, resolve, close, chunk=10**9, caps=WEB)
