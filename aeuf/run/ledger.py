"""Asking the oracle without ever paying twice (loop level: owns judgements.jsonl).

Every request has a key; an answer is appended (fsync'd) to the run's judgement log the moment
it arrives, before anything else is sent. A rerun reads the log and sends only keys that have
no final answer. Budgets (--max_requests, --max_cost) stop sending cleanly between chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from aeuf import io
from aeuf.oracle import Oracle, is_final
from aeuf.types import JudgeAnswer, Judgement, JudgeRequest, JudgeTask


@dataclass
class Ledger:
    """The judgement log plus what this process has spent.

    answers: every answer in the log, by key (later lines win)
    sent:    requests sent by this process;  cost: their cost
    """

    log: io.JudgementLog
    max_requests: int | None = None
    max_cost: float | None = None
    answers: dict[str, JudgeAnswer] = field(default_factory=dict)
    sent: int = 0
    cost: float = 0.0
    exhausted: bool = False

    @classmethod
    def open(cls, log: io.JudgementLog, *, max_requests=None, max_cost=None) -> Ledger:
        led = cls(log, max_requests, max_cost)
        led.answers = log.load()
        return led

    @property
    def paid_requests(self) -> int:
        """Requests in the whole log with a final answer (this run and earlier ones)."""
        return sum(1 for a in self.answers.values() if is_final(a))

    @property
    def total_cost(self) -> float:
        return sum(a.cost for a in self.answers.values())

    def pending(self, requests: Sequence[JudgeRequest]) -> list[JudgeRequest]:
        """Requests without a final answer in the log, each key once, in order."""
        seen: set[str] = set()
        out = []
        for r in requests:
            done = r.key in self.answers and is_final(self.answers[r.key])
            if not done and r.key not in seen:
                seen.add(r.key)
                out.append(r)
        return out

    def _room(self) -> int | None:
        """How many more requests the budget allows (None = unlimited)."""
        room = None
        if self.max_requests is not None:
            room = max(self.max_requests - self.paid_requests, 0)
        if self.max_cost is not None and self.total_cost >= self.max_cost:
            room = 0
        return room

    def ask(self, oracle: Oracle, requests: Sequence[JudgeRequest], *, chunk: int,
            progress: bool = True) -> None:
        """Send what is pending, chunk by chunk, logging every answer as it arrives."""
        todo = self.pending(requests)
        bar = tqdm(total=len(todo), desc=f"judge ({oracle.name})", unit="req",
                   disable=not progress or not todo)
        while todo:
            room = self._room()
            if room == 0:
                self.exhausted = True
                break
            step = chunk if room is None else min(chunk, room)
            batch, todo = todo[:step], todo[step:]
            for answer in oracle.send(batch):
                self.log.append(answer)
                self.answers[answer.key] = answer
                self.sent += 1
                self.cost += answer.cost
                bar.update(1)
        bar.close()

    def judge(self, oracle: Oracle, tasks: Sequence[JudgeTask], *, chunk: int,
              progress: bool = True) -> list[Judgement]:
        """Plan, send what is missing, and resolve every task from the log."""
        requests = [r for t in tasks for r in oracle.plan(t)]
        self.ask(oracle, requests, chunk=chunk, progress=progress)
        return [oracle.resolve(t, self.answers) for t in tasks]

    def failed(self, keys: Sequence[str]) -> int:
        """How many of these keys have an answer without a value."""
        return sum(1 for k in keys if k in self.answers and self.answers[k].value is None)
