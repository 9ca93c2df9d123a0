"""Who annotates what in the web oracle's current round: a pure state machine (no I/O).

A round is the requests of one send(); each request is one vote slot (a pair's key plus
":v<i>"). A slot goes to one annotator only, and never two slots of one pair to the same
person. An annotator keeps the slot they were given until they answer it (a reload shows
it again); undo takes back their last answer of this round, which gives them that slot
again. Every answer names its annotator (judge "web:<name>") and records which response
was on the left (raw JSON), so position bias can be measured.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from aeuf.oracle.base import RETRACTED, is_final
from aeuf.types import JudgeAnswer, JudgeRequest

# key pressed -> P(left beats right); None: skipped
CHOICES = {"1": 1.0, "2": 0.0, "t": 0.5, "s": None}


def majority(values: Sequence[float]) -> float | None:
    """The value most votes gave; a split (no single most) is a tie (0.5); None if none."""
    if not values:
        return None
    counts = {v: list(values).count(v) for v in set(values)}
    top = max(counts.values())
    best = [v for v, c in counts.items() if c == top]
    return best[0] if len(best) == 1 else 0.5


def annotator_of(answer: JudgeAnswer) -> str:
    """The annotator an answer names (its judge is "web:<name>")."""
    return answer.judge.split(":", 1)[1] if ":" in answer.judge else answer.judge


def pair_of(slot_key: str) -> str:
    """The pair a vote slot belongs to (its key without ':v<i>')."""
    return slot_key.rsplit(":v", 1)[0]


def left_first(request: JudgeRequest) -> bool:
    """True when the request's first slot is shown on the left: a coin fixed by the key,
    independent of the order the oracle planned (so position bias can be measured)."""
    return hashlib.sha256(f"side|{request.key}".encode()).digest()[0] % 2 == 0


@dataclass
class Board:
    """The current round: slots, who holds which, and each annotator's answers.

    held: annotator -> slot key they are shown; done: slot keys answered in this round;
    history: annotator -> slot keys they answered this round (for undo); seen: annotator ->
    pairs they were given this round; count: annotator -> answers in the whole run."""

    annotators: tuple[str, ...]
    requests: dict[str, JudgeRequest] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    history: dict[str, list[str]] = field(default_factory=dict)
    seen: dict[str, set[str]] = field(default_factory=dict)
    count: dict[str, int] = field(default_factory=dict)
    round: int = 0

    def open(self, requests: Sequence[JudgeRequest],
             earlier: Iterable[JudgeAnswer] = ()) -> None:
        """Start a round with these slots (an empty sequence closes it). earlier: the answers
        already in the ledger (a rerun after a kill): whoever voted on a pair is not given
        another slot of it, and each annotator's count starts from their saved answers."""
        self.requests = {r.key: r for r in requests}
        self.held, self.done, self.history, self.seen = {}, set(), {}, {}
        earlier = list(earlier)
        for a in earlier:
            who = annotator_of(a)
            if a.judge.startswith("web:") and who in self.annotators and is_final(a):
                self.seen.setdefault(who, set()).add(pair_of(a.key))
        if requests:
            self.count = {w: len(p) for w, p in self.seen.items()} if earlier else self.count
            self.round += 1

    @property
    def complete(self) -> bool:
        return len(self.done) == len(self.requests)

    def left(self) -> int:
        """Slots of the round not yet answered."""
        return len(self.requests) - len(self.done)

    def current(self, who: str) -> JudgeRequest | None:
        """The slot `who` is shown: the one they hold, else the first free slot of a pair
        they were not given this round; None when there is none for them."""
        if who in self.held:
            return self.requests[self.held[who]]
        taken = set(self.held.values()) | self.done
        mine = self.seen.setdefault(who, set())
        for key, request in self.requests.items():
            if key not in taken and pair_of(key) not in mine:
                self.held[who] = key
                mine.add(pair_of(key))
                return request
        return None

    def answer(self, who: str, key: str, choice: str) -> JudgeAnswer | None:
        """Record `who`'s answer to the slot they hold; None when `key` is not that slot
        (a stale page) or the choice is not one of CHOICES."""
        if self.held.get(who) != key or choice not in CHOICES:
            return None
        request = self.requests[key]
        side = CHOICES[choice]
        first = left_first(request)
        value = side if side is None or first else 1.0 - side
        del self.held[who]
        self.done.add(key)
        self.history.setdefault(who, []).append(key)
        self.count[who] = self.count.get(who, 0) + 1
        raw = json.dumps({"key": choice, "left": "a" if first else "b", "annotator": who})
        return JudgeAnswer(key, request.task.prompt_id, _rids(request), value, raw, f"web:{who}",
                           error="skipped by the annotator" if value is None else None)

    def undo(self, who: str) -> JudgeAnswer | None:
        """Take back `who`'s last answer of this round (a retraction: asked again, and given
        back to them at once); None when they have none this round."""
        mine = self.history.get(who, [])
        if not mine:
            return None
        key = mine.pop()
        self.done.discard(key)
        if who in self.held:  # the slot they were shown goes back to the pool
            held = self.held.pop(who)
            self.seen[who].discard(pair_of(held))
        self.held[who] = key
        self.count[who] -= 1
        raw = json.dumps({"key": "u", "annotator": who})
        return JudgeAnswer(key, self.requests[key].task.prompt_id, _rids(self.requests[key]),
                           None, raw, f"web:{who}", error=f"{RETRACTED} undone by {who}")


def _rids(request: JudgeRequest) -> tuple[str, ...]:
    return tuple(request.task.response_ids[s] for s in request.slots)
