"""Asking the oracle without ever paying twice (loop level: owns judgements.jsonl).

Every request has a key; an answer is appended (fsync'd) to the run's judgement log the moment
it arrives, before anything else is sent. A rerun reads the log and sends only keys that have
no final answer. Budgets stop sending cleanly: --max_requests counts paid requests, and
--max_cost reserves each request's estimated upper cost before it is sent.
Ctrl-C while a paid oracle is asked: nothing new is sent, the answers of the requests in flight
(paid) are logged as they arrive, then the run stops (exit 130); a second Ctrl-C stops at once.
Kills, crashes and full disks: before a paid request is sent, its intent (key, purpose, time)
is appended (fsync'd) to intents.jsonl beside the log; its answer closes it. A rerun treats a
key with an intent and no answer after it as possibly paid: it is not sent again (never pay
twice) unless --retry_unanswered; its prompt stays unlabelled and the summary says so.
An intent that cannot be written (a full disk) stops the run before its request is sent.
An oracle that cannot be reached (a run of transport failures with no answer between them)
stops the run with one line naming where it was asked and the last error.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from aeuf import io
from aeuf.backends.openai_client import STOPPING
from aeuf.errors import NotSent, OracleUnreachable
from aeuf.oracle import Oracle, is_final
from aeuf.oracle.base import TRANSPORT
from aeuf.oracle.overlong import OVERLONG
from aeuf.types import Intent, JudgeAnswer, Judgement, JudgeRequest, JudgeTask


@dataclass
class Ledger:
    """The judgement log plus what this process has spent.

    answers: every answer in the log, by key (later lines win)
    sent:    requests sent by this process;  cost: their cost
    retry_unparsable: paid answers without a parsable verdict are asked again
    unanswered: the intents of earlier processes that no answer closed, by key: possibly
             paid, so not sent again unless retry_unanswered
    left_out: those of them this process was asked for and did not send
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
    unanswered: dict[str, Intent] = field(default_factory=dict)
    retry_unanswered: bool = False
    left_out: dict[str, Intent] = field(default_factory=dict)
    where: str = "the oracle"
    unreachable_after: int = 8
    _failures: int = 0

    @classmethod
    def open(cls, log: io.JudgementLog, **options) -> Ledger:
        led = cls(log, **options)
        led.answers, at = log.load_at()
        led.unanswered = open_intents(log.intents.load(), at)
        return led

    def skipped(self, requests: Sequence[JudgeRequest]) -> list[Intent]:
        """The intents without an answer among `requests` that pending() leaves out (none
        with retry_unanswered), each key once."""
        if self.retry_unanswered:
            return []
        keys = dict.fromkeys(r.key for r in requests if r.key in self.unanswered)
        return [self.unanswered[k] for k in keys]

    def final(self, answer: JudgeAnswer) -> bool:
        """Never asked again: is_final, unless it is unparsable and retry_unparsable is on."""
        unparsable = (answer.error or "").startswith("unparsable")
        return is_final(answer) and not (self.retry_unparsable and unparsable)

    @property
    def paid_requests(self) -> int:
        """Requests in the whole log with a final answer (this run and earlier ones), and
        those possibly paid (an intent without an answer); the answers of requests
        --judge_overlong kept from the judge were not requests."""
        paid = {k for k, a in self.answers.items() if is_final(a) and not held(a)}
        return len(paid | self.unanswered.keys())

    @property
    def answered_cost(self) -> float:
        """What the log's answers cost (this run and earlier ones)."""
        return sum(a.cost for a in self.answers.values())

    @property
    def total_cost(self) -> float:
        """What the log's answers cost, plus the cost reserved for each request possibly paid."""
        return sum(a.cost for a in self.answers.values()) + \
            sum(i.estimate for i in self.unanswered.values())

    def pending(self, requests: Sequence[JudgeRequest]) -> list[JudgeRequest]:
        """Requests without a final answer in the log, each key once, in order."""
        seen: set[str] = set()
        out = []
        for r in requests:
            done = r.key in self.answers and self.final(self.answers[r.key])
            done = done or (r.key in self.unanswered and not self.retry_unanswered)
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
        self.left_out.update((i.key, i) for i in self.skipped(requests))
        todo = self.pending(requests)
        bar = tqdm(total=len(todo), desc=f"judge ({oracle.name})", unit="req",
                   disable=not progress or not todo)
        drain = oracle.estimate is not None and oracle.chunk is None  # paid, answered at once
        with finish_in_flight(drain and bool(todo)):
            self._ask(oracle, todo, chunk, bar)

    def _ask(self, oracle: Oracle, todo: list[JudgeRequest], chunk: int, bar) -> None:
        send = oracle.send
        if oracle.caps.paid:  # each request's intent on disk before it is sent
            send = partial(oracle.send, before=partial(self._intend, oracle))
        try:
            while todo and not STOPPING.is_set():
                batch = self.affordable(oracle, todo[:chunk])
                if not batch:
                    self.exhausted = True
                    break
                todo = todo[len(batch):]
                if not oracle.durable:  # free answers: the whole chunk with one fsync
                    self._record_many(list(send(batch)))
                    bar.update(len(batch))
                    continue
                for answer in send(batch):
                    self._record(answer)
                    bar.update(1)
        finally:
            bar.close()

    def _intend(self, oracle: Oracle, request: JudgeRequest) -> None:
        """Log (fsync'd) that `request` is about to be sent; a full disk raises NotSent."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        estimate = oracle.estimate(request) if oracle.estimate is not None else 0.0
        try:
            self.log.intents.append(Intent(request.key, request.task.prompt_id, oracle.name,
                                           stamp, self.log.end(), float(estimate)))
        except OSError as err:
            raise NotSent(f"{self.log.intents.path}: {err.strerror or err}: the next request to "
                          f"{self.where} was not sent (nothing is paid for it); free some space "
                          "and rerun the same command (it resumes)") from err

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
        self.unanswered.pop(answer.key, None)
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
              progress: bool = True, planned: list[str] | None = None) -> list[Judgement]:
        """Plan, send what is missing, and resolve every task from the log. planned: a list
        the requests' keys are appended to (what the round asked for)."""
        requests = [r for t in tasks for r in oracle.plan(t)]
        if planned is not None:
            planned.extend(r.key for r in requests)
        self.ask(oracle, requests, chunk=chunk, progress=progress)
        return [oracle.resolve(t, self.answers) for t in tasks]


def earlier_unanswered(folder: Path) -> dict[str, Intent]:
    """The open intents of the run or judge folder `folder` (read only: for --dry_run)."""
    return Ledger.open(io.JudgementLog(folder / "judgements.jsonl")).unanswered


def unanswered_note(left_out: Sequence[Intent], labelled: Iterable[str] = ()) -> str:
    """One sentence on the requests an earlier run sent whose answers were never logged
    (and that were not sent again), or "" when there are none."""
    if not left_out:
        return ""
    prompts = sorted({i.prompt_id for i in left_out} - set(labelled))
    cap = sum(i.estimate for i in left_out)
    shown = ", ".join(prompts[:10]) + (f", ... ({len(prompts)} in all)" if len(prompts) > 10
                                       else "")
    return (f"{len(left_out)} requests sent by an earlier run have no logged answer (it was "
            f"killed or crashed while they were in flight; possibly paid"
            f"{f', at most ${cap:.4f}' if cap else ''}) and were not sent again, so "
            f"{len(prompts)} prompts lack that label{': ' + shown if shown else ''}; rerun "
            "with --retry_unanswered to ask them again (paying again if they were paid)")


def open_intents(intents: dict[str, Intent], at: dict[str, int]) -> dict[str, Intent]:
    """The intents that no answer closed: no answer line for the key starts at or after the
    intent's `after` (at: key -> offset of its last answer line in judgements.jsonl)."""
    return {k: i for k, i in intents.items() if at.get(k, -1) < i.after}


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
