"""Asking the oracle without ever paying twice (loop level: owns judgements.jsonl).

Every request has a key; an answer is appended (fsync'd) to the run's judgement log the moment
it arrives, before anything else is sent. A rerun reads the log and sends only keys that have
no final answer. Budgets stop sending cleanly: --max_requests counts paid requests, and
--max_cost reserves each request's estimated upper cost before it is sent.
Ctrl-C while a paid oracle is asked: nothing new is sent, the answers of the requests in flight
(paid) are logged as they arrive, then the run stops (exit 130); a second Ctrl-C stops at once.
An oracle that cannot be reached (a run of transport failures with no answer between them)
stops the run with one line naming where it was asked and the last error.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from aeuf import io
from aeuf.backends.openai_client import STOPPING
from aeuf.errors import OracleUnreachable
from aeuf.oracle import Oracle, is_final
from aeuf.oracle.base import TRANSPORT
from aeuf.oracle.overlong import OVERLONG
from aeuf.types import JudgeAnswer, Judgement, JudgeRequest, JudgeTask


@dataclass
class Ledger:
    """The judgement log plus what this process has spent.

    answers: every answer in the log, by key (later lines win)
    sent:    requests sent by this process;  cost: their cost
    retry_unparsable: paid answers without a parsable verdict are asked again
    where:   the oracle's endpoint, for the "cannot be reached" message
    unreachable_after: that many transport failures in a row stop the run
    """

    log: io.JudgementLog
    max_requests: int | None = None
    max_cost: float | None = None
    answers: dict[str, JudgeAnswer] = field(default_factory=dict)
    sent: int = 0
    cost: float = 0.0
    exhausted: bool = False
    retry_unparsable: bool = False
    where: str = "the oracle"
    unreachable_after: int = 8
    _failures: int = 0

    @classmethod
    def open(cls, log: io.JudgementLog, **options) -> Ledger:
        led = cls(log, **options)
        led.answers = log.load()
        return led

    def final(self, answer: JudgeAnswer) -> bool:
        """Never asked again: is_final, unless it is unparsable and retry_unparsable is on."""
        unparsable = (answer.error or "").startswith("unparsable")
        return is_final(answer) and not (self.retry_unparsable and unparsable)

    @property
    def paid_requests(self) -> int:
        """Requests in the whole log with a final answer (this run and earlier ones); the
        answers of requests --judge_overlong kept from the judge were not requests."""
        return sum(1 for a in self.answers.values() if is_final(a) and not held(a))

    @property
    def total_cost(self) -> float:
        return sum(a.cost for a in self.answers.values())

    def pending(self, requests: Sequence[JudgeRequest]) -> list[JudgeRequest]:
        """Requests without a final answer in the log, each key once, in order."""
        seen: set[str] = set()
        out = []
        for r in requests:
            done = r.key in self.answers and self.final(self.answers[r.key])
            if not done and r.key not in seen:
                seen.add(r.key)
                out.append(r)
        return out

    def affordable(self, oracle: Oracle, candidates: Sequence[JudgeRequest]) -> list[JudgeRequest]:
        """The longest prefix of `candidates` the budgets allow: --max_requests counts paid
        requests; --max_cost reserves each request's estimated upper cost (oracle.estimate)
        before it is sent, so the cap holds however many requests are in flight."""
        n = len(candidates)
        if self.max_requests is not None:
            n = min(n, max(self.max_requests - self.paid_requests, 0))
        if self.max_cost is not None:
            room = self.max_cost - self.total_cost
            if oracle.estimate is None:
                n = n if room > 0 else 0
            else:
                spend = np.cumsum([oracle.estimate(r) for r in candidates[:n]])
                n = int(np.searchsorted(spend, room, side="right"))
        return list(candidates[:n])

    def ask(self, oracle: Oracle, requests: Sequence[JudgeRequest], *, chunk: int,
            progress: bool = True) -> None:
        """Send what is pending, chunk by chunk, logging every answer as it arrives."""
        todo = self.pending(requests)
        bar = tqdm(total=len(todo), desc=f"judge ({oracle.name})", unit="req",
                   disable=not progress or not todo)
        drain = oracle.estimate is not None and oracle.chunk is None  # paid, answered at once
        with finish_in_flight(drain and bool(todo)):
            self._ask(oracle, todo, chunk, bar)

    def _ask(self, oracle: Oracle, todo: list[JudgeRequest], chunk: int, bar) -> None:
        try:
            while todo and not STOPPING.is_set():
                batch = self.affordable(oracle, todo[:chunk])
                if not batch:
                    self.exhausted = True
                    break
                todo = todo[len(batch):]
                if not oracle.durable:  # free answers: the whole chunk with one fsync
                    self._record_many(list(oracle.send(batch)))
                    bar.update(len(batch))
                    continue
                for answer in oracle.send(batch):
                    self._record(answer)
                    bar.update(1)
        finally:
            bar.close()

    def _record_many(self, answers: list[JudgeAnswer]) -> None:
        """Log a chunk of answers that cost nothing with one fsync, then count them."""
        self.log.extend(answers)
        for answer in answers:
            self._count(answer)

    def _record(self, answer: JudgeAnswer) -> None:
        """Log one answer (fsync'd) before anything else, then count it."""
        self.log.append(answer)
        self._count(answer)

    def _count(self, answer: JudgeAnswer) -> None:
        """Take a logged answer into account; stop on a run of transport faults."""
        self.answers[answer.key] = answer
        if held(answer):  # recorded, never sent
            return
        self.sent += 1
        self.cost += answer.cost
        transport = (answer.error or "").startswith(TRANSPORT)
        self._failures = self._failures + 1 if transport else 0
        if self._failures >= self.unreachable_after:
            raise OracleUnreachable(
                f"{self.where} cannot be reached: {self._failures} requests in a row failed "
                f"({answer.error}); check the URL and that the server is up, then rerun the "
                "same command (nothing answered is asked again)")

    def judge(self, oracle: Oracle, tasks: Sequence[JudgeTask], *, chunk: int,
              progress: bool = True) -> list[Judgement]:
        """Plan, send what is missing, and resolve every task from the log."""
        requests = [r for t in tasks for r in oracle.plan(t)]
        self.ask(oracle, requests, chunk=chunk, progress=progress)
        return [oracle.resolve(t, self.answers) for t in tasks]


def held(answer: JudgeAnswer) -> bool:
    """True for the answer of a request that was never sent (--judge_overlong loss/skip)."""
    return (answer.error or "").startswith(OVERLONG)


@contextmanager
def finish_in_flight(enabled: bool) -> Iterator[None]:
    """While the body runs, the first Ctrl-C (SIGINT) sets STOPPING instead of raising: the
    body sends nothing new and logs what is in flight; KeyboardInterrupt comes after it. A
    second Ctrl-C raises at once. Only in the main thread (signals are delivered there)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def stop(signum, frame) -> None:
        if STOPPING.is_set():
            raise KeyboardInterrupt
        STOPPING.set()
        print("\naeuf: stopping; logging the answers in flight (Ctrl-C again to quit now)",
              file=sys.stderr)

    signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        stopped = STOPPING.is_set()
        STOPPING.clear()
    if stopped:
        raise KeyboardInterrupt
