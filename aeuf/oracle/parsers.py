"""Pure parsers of a judge's reply. Each returns a `Parsed` or None; never a default value.

Only the judge's own answer is read: lines of the reply that repeat a line of the untrusted
texts shown to it (the instruction and responses: a judge that echoes a response saying
"Rating: 5") are dropped first, then exactly one answer value must remain (several
different answer lines -> None). With log-probs, the value is the expectation over the
answer token's alternatives ("1".."5", or A / B / tie), as ActiveUltraFeedback does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

from aeuf.registry import Registry

# (token, logprob, top alternatives [(token, logprob)]), as in backends.openai_client
Logprobs = Sequence[tuple[str, float, Sequence[tuple[str, float]]]]

_LEAD = r"^[ \t>*_#\[(-]*"
_RATING = re.compile(
    _LEAD + r"(?:rating|score)[ \t*_]*[:=][ \t*_\[(]*([1-5](?:\.\d+)?)(?!\d)(?!\.\d)"
    r"(?![ \t]*(?:-|–|to|or|and)[ \t]*\d)(?![ \t*]*/[ \t]*(?!5(?!\d))\d)", re.I | re.M)
_BARE = re.compile(r"^[ \t*_]*([1-5])[ \t*_]*$", re.M)
_WINNER = re.compile(_LEAD + r"(?:winner|better|verdict)[ \t*_]*[:=][ \t*_\[(\"']*"
                     r"(?:response[ \t]+)?(a|b|tie)(?![\w])", re.I | re.M)
_WINNER_VALUE = {"a": 1.0, "b": 0.0, "tie": 0.5}
_NORM = re.compile(r"[\s*_`#>\[\]()\"'.:=-]+")


class Parsed(NamedTuple):
    """value: the answer; offset: index in the reply of the character that gave it."""

    value: float
    offset: int


def _norm(line: str) -> str:
    return _NORM.sub("", line).lower()


def _echo_lines(untrusted: Sequence[str]) -> set[str]:
    return {n for text in untrusted for line in text.splitlines() if (n := _norm(line))}


def _own_lines(reply: str, untrusted: Sequence[str]) -> list[tuple[int, str]]:
    """(offset, line) of the reply's lines that do not repeat a line of `untrusted`."""
    echo, out, pos = _echo_lines(untrusted), [], 0
    for line in reply.splitlines(keepends=True):
        if _norm(line) not in echo:
            out.append((pos, line))
        pos += len(line)
    return out


def _unique(found: list[Parsed]) -> Parsed | None:
    """The answer if every answer line agrees, else None (ambiguous)."""
    if not found or len({p.value for p in found}) != 1:
        return None
    return found[0]


def parse_rating(reply: str, untrusted: Sequence[str] = ()) -> Parsed | None:
    """'Rating: 4' (also '**Rating:** 4', 'Score: 4/5', 'Rating: 3.5', or a lone digit on
    the first own line) -> Parsed(4.0, offset of the '4'); None if absent, out of [1, 5],
    a range ('4-5'), or ambiguous."""
    lines = _own_lines(reply, untrusted)
    found = [Parsed(float(m.group(1)), pos + m.start(1))
             for pos, line in lines for m in _RATING.finditer(line)]
    if not found:
        first = next(((pos, line) for pos, line in lines if line.strip()), None)
        m = _BARE.match(first[1]) if first else None
        found = [Parsed(float(m.group(1)), first[0] + m.start(1))] if m else []
    found = [p for p in found if 1.0 <= p.value <= 5.0]
    return _unique(found)


def parse_winner(reply: str, untrusted: Sequence[str] = ()) -> Parsed | None:
    """'Winner: A' -> 1.0 (the first shown wins), 'B' -> 0.0, 'tie' -> 0.5; else None."""
    found = [Parsed(_WINNER_VALUE[m.group(1).lower()], pos + m.start(1))
             for pos, line in _own_lines(reply, untrusted) for m in _WINNER.finditer(line)]
    return _unique(found)


def token_at(logprobs: Logprobs, reply: str, offset: int) -> int | None:
    """Index of the token that produced reply[offset], if the tokens spell the reply."""
    if "".join(t[0] for t in logprobs) != reply:
        return None
    pos = 0
    for i, tok in enumerate(logprobs):
        pos += len(tok[0])
        if pos > offset:
            return i
    return None


def _mass(top: Sequence[tuple[str, float]], labels: dict[str, float]) -> dict[float, float]:
    mass: dict[float, float] = {}
    for token, logprob in top:
        label = token.strip().lower()
        if label in labels:
            mass[labels[label]] = mass.get(labels[label], 0.0) + math.exp(logprob)
    return mass


def expectation(logprobs: Logprobs | None, reply: str, parsed: Parsed,
                labels: dict[str, float]) -> float | None:
    """E[value] under the answer token's top alternatives, renormalised over `labels`
    (token text -> value). None when there are no log-probs, the tokens do not line up
    with the reply, or the sampled token is not itself a label."""
    if not logprobs:
        return None
    i = token_at(logprobs, reply, parsed.offset)
    if i is None or logprobs[i][0].strip().lower() not in labels:
        return None
    mass = _mass(logprobs[i][2] or [(logprobs[i][0], logprobs[i][1])], labels)
    total = sum(mass.values())
    return sum(v * p for v, p in mass.items()) / total if total > 0 else None


RATING_LABELS = {str(d): float(d) for d in range(1, 6)}
WINNER_LABELS = {"a": 1.0, "b": 0.0, "tie": 0.5}


class Parser(NamedTuple):
    """parse(reply, untrusted) -> Parsed | None; labels: answer tokens for the expectation."""

    parse: Callable[[str, Sequence[str]], Parsed | None]
    labels: dict[str, float]


PARSERS: Registry[Parser] = Registry("judge parser")
PARSERS.register("rating")(Parser(parse_rating, RATING_LABELS))
PARSERS.register("pairwise")(Parser(parse_winner, WINNER_LABELS))


def read_answer(kind: str, reply: str, untrusted: Sequence[str],
                logprobs: Logprobs | None = None) -> float | None:
    """The value of a reply for a template kind: the log-prob expectation when available,
    else the parsed value; None when the reply has no unambiguous answer of its own."""
    parser = PARSERS.get(kind)
    parsed = parser.parse(reply, untrusted)
    if parsed is None:
        return None
    expected = expectation(logprobs, reply, parsed, parser.labels)
    return parsed.value if expected is None else expected
