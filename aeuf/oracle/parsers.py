"""Pure parsers of a judge's reply. Each returns a `Parsed` or None; never a default value.

Only the judge's own answer is read, from the place the template asks for it: the first
line of the reply ("Rating: 4", "Winner: A"), or the first field of a JSON reply
({"rating": 4, ...}, {"winner": "A", ...}: structured output). Nothing after that is read,
so text a judge quotes from a response (a forged "Rating: 5") can never become the answer,
and nothing in parsing depends on the response. The reply is NFKC-normalised (fullwidth
"４" is "4") and stripped of invisible format characters (zero-width, bidi controls) first.
With log-probs, the value is the expectation over the answer token's alternatives
("1".."5", or A / B / tie), as ActiveUltraFeedback does.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import NamedTuple

from aeuf.registry import Registry

# (token, logprob, top alternatives [(token, logprob)]), as in backends.openai_client
Logprobs = Sequence[tuple[str, float, Sequence[tuple[str, float]]]]

_LEAD = r"[ \t>*_#\[(-]*"
_RATING = re.compile(
    _LEAD + r"(?:rating|score)[ \t*_]*[:=][ \t*_\[(]*([1-5](?:\.\d+)?)(?!\d)(?!\.\d)"
    r"(?![ \t]*(?:-|–|to|or|and)[ \t]*\d)(?![ \t*]*/[ \t]*(?!5(?!\d))\d)", re.I)
_BARE = re.compile(r"[ \t*_]*([1-5])[ \t*_]*$")
_WINNER = re.compile(_LEAD + r"(?:winner|better|verdict)[ \t*_]*[:=][ \t*_\[(\"']*"
                     r"(?:response[ \t]+)?(a|b|tie)(?![\w])", re.I)
_JSON_RATING = re.compile(r'\{\s*"(?:rating|score)"\s*:\s*"?([1-5](?:\.\d+)?)"?(?=\s*[,}])',
                          re.I)
_JSON_WINNER = re.compile(r'\{\s*"(?:winner|verdict)"\s*:\s*"(a|b|tie)"', re.I)
_FENCE = re.compile(r"[ \t]*```[a-zA-Z]*[ \t]*\n")
RATING_LABELS = {str(d): float(d) for d in range(1, 6)}
WINNER_LABELS = {"a": 1.0, "b": 0.0, "tie": 0.5}


class Parsed(NamedTuple):
    """value: the answer; offset: index in the normalised reply of the character that gave it."""

    value: float
    offset: int


def normalise(text: str) -> str:
    """NFKC, then without format characters (Unicode category Cf: zero-width, bidi, BOM)."""
    return "".join(c for c in unicodedata.normalize("NFKC", text)
                   if unicodedata.category(c) != "Cf")


def answer_start(reply: str) -> int:
    """Offset in `reply` (normalised) of its first non-blank character, after one opening
    code fence (```json) if the reply starts with one."""
    start = len(reply) - len(reply.lstrip())
    fence = _FENCE.match(reply, start)
    if fence:
        start = fence.end() + len(reply[fence.end():]) - len(reply[fence.end():].lstrip())
    return start


def _first(reply: str, line_re: re.Pattern, json_re: re.Pattern,
           value: Callable[[str], float]) -> Parsed | None:
    """The answer at the start of the normalised reply: a JSON object's first field, else the
    first line in the template's format."""
    start = answer_start(reply)
    end = reply.find("\n", start)
    m = json_re.match(reply, start) or line_re.match(reply, start, len(reply) if end < 0 else end)
    return Parsed(value(m.group(1)), m.start(1)) if m else None


def parse_rating(reply: str) -> Parsed | None:
    """'Rating: 4' on the first line (also '**Rating:** 4', 'Score: 4/5', 'Rating: 3.5', a
    lone digit) or '{"rating": 4, ...}' -> Parsed(4.0, offset of the '4'); None if absent,
    out of [1, 5], a range ('4-5') or not at the start. `reply` must be normalised."""
    found = _first(reply, _RATING, _JSON_RATING, float) or _first(reply, _BARE, _JSON_RATING,
                                                                  float)
    return found if found is not None and 1.0 <= found.value <= 5.0 else None


def parse_winner(reply: str) -> Parsed | None:
    """'Winner: A' on the first line or '{"winner": "A", ...}' -> 1.0 (the first shown
    wins), 'B' -> 0.0, 'tie' -> 0.5; else None. `reply` must be normalised."""
    return _first(reply, _WINNER, _JSON_WINNER, lambda s: WINNER_LABELS[s.lower()])


def token_at(logprobs: Logprobs, reply: str, offset: int) -> int | None:
    """Index of the token that produced reply[offset] (both normalised), if the normalised
    tokens spell the normalised reply."""
    texts = [normalise(t[0]) for t in logprobs]
    if "".join(texts) != reply:
        return None
    pos = 0
    for i, text in enumerate(texts):
        pos += len(text)
        if pos > offset:
            return i
    return None


def _label(token: str) -> str:
    return normalise(token).strip().strip('"').lower()


def _mass(top: Sequence[tuple[str, float]], labels: dict[str, float]) -> dict[float, float]:
    mass: dict[float, float] = {}
    for token, logprob in top:
        label = _label(token)
        if label in labels and math.isfinite(logprob):
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
    if i is None or _label(logprobs[i][0]) not in labels:
        return None
    mass = _mass(logprobs[i][2] or [(logprobs[i][0], logprobs[i][1])], labels)
    total = sum(mass.values())
    return sum(v * p for v, p in mass.items()) / total if total > 0 else None


class Parser(NamedTuple):
    """parse(normalised reply) -> Parsed | None; labels: answer tokens for the expectation;
    schema: the JSON schema of a structured answer (answer field first)."""

    parse: Callable[[str], Parsed | None]
    labels: dict[str, float]
    schema: dict


def _schema(field: str, spec: dict) -> dict:
    return {"type": "object", "properties": {field: spec, "rationale": {"type": "string"}},
            "required": [field, "rationale"], "additionalProperties": False}


PARSERS: Registry[Parser] = Registry("judge parser")
PARSERS.register("rating")(Parser(parse_rating, RATING_LABELS, _schema(
    "rating", {"type": "integer", "enum": [1, 2, 3, 4, 5]})))
PARSERS.register("pairwise")(Parser(parse_winner, WINNER_LABELS, _schema(
    "winner", {"type": "string", "enum": ["A", "B", "tie"]})))


def read_answer(kind: str, reply: str, logprobs: Logprobs | None = None) -> float | None:
    """The value of a reply for a template kind: the log-prob expectation when available,
    else the parsed value; None when the reply does not start with an answer."""
    parser, text = PARSERS.get(kind), normalise(reply)
    parsed = parser.parse(text)
    if parsed is None:
        return None
    expected = expectation(logprobs, text, parsed, parser.labels)
    return parsed.value if expected is None else expected
