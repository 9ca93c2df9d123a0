"""Untrusted text (prompts, responses) made safe to show a judge. Pure functions.

- `new_nonce()`: 128 random bits per request for the fence markers ([[BEGIN RESPONSE
  <nonce>]]): no response can close its fence, because no response can know the nonce.
- `neutralise(text)`: chat-template control tokens get a visible space after their first
  character ("< |im_start|>"), so a tokenizer never reads them as real turns; nothing else
  changes. They are found by their shape, not from a list, so the tokens of model families
  not named here are caught too: anything in <| |> or <｜ ｜>; a bare tag (no spaces, no
  attributes) whose name is not an HTML element (<end_of_utterance>, <BOS_TOKEN>, <sop>,
  <eot>, <start_of_turn>; <s> too, Llama's BOS, although HTML has it); a bracketed word with
  two capitals in a row ([INST], [/INST], [gMASK], [SYSTEM_PROMPT]); <<SYS>>. The price: a
  type in code such as Vec<String> reads "Vec< String>".
- `cut_middle(text, tokens, tag)`: a text over its token budget keeps its head and tail and
  says how much was cut in between, with the request's nonce in the marker (a response cannot
  forge a cut: it cannot know the nonce), so the rubric after it always fits the context.
- `is_cut(text, tokens)`: whether cut_middle would cut it.
- `budgets(costs, total)`: splits a token budget over several texts (water-filling: short
  texts keep everything, long ones share what is left equally).

Token counts are estimates that err long: an ASCII character costs 1/3 of a token (English
averages about 4 characters a token), any other character one token per UTF-8 byte (the
most a byte-level BPE can spend).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence

NONCE_BYTES = 16  # 128 bits
CHARS_PER_TOKEN = 3
# HTML's element names: a bare tag with one of these names is markup, not a control token
# (except "s", which is also Llama's BOS token).
HTML = frozenset("""a abbr address area article aside audio b base bdi bdo blockquote body br
button canvas caption cite code col colgroup data datalist dd del details dfn dialog div dl dt
em embed fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 head header hgroup hr html
i iframe img input ins kbd label legend li link main map mark menu meta meter nav noscript
object ol optgroup option output p param picture pre progress q rp rt ruby samp script
search section select slot small source span strong style sub summary sup table tbody td
template textarea tfoot th thead time title tr track u ul var video wbr center font big tt
strike nobr marquee math svg""".split())
_CONTROL = re.compile(
    r"<</?SYS>>"  # Llama-2 system block
    r"|<[|｜]"  # <|im_start|>, <|eot_id|>, <|START_OF_TURN_TOKEN|>, DeepSeek's <｜...｜>
    r"|</?(?P<tag>[A-Za-z0-9][\w.:|▁-]*)>"  # a bare tag: kept when its name is HTML's
    r"|\[/?[A-Za-z_]*[A-Z]{2}[A-Za-z_]*\]")  # [INST], [/INST], [gMASK], [TOOL_CALLS]
MARKER = "\n[... aeuf cut {n} characters here {tag} ...]\n"
# the same for a reader that is not instructed, so has no use for the nonce (a reward model)
PLAIN_MARKER = "\n[... aeuf cut {n} characters here to fit the judge's context ...]\n"


def _break(m: re.Match) -> str:
    """A control token with a space after its opening bracket(s); an HTML tag unchanged."""
    token, name = m.group(0), m.group("tag")
    if name is not None and name.lower() in HTML and name.lower() != "s":
        return token
    cut = 2 if token.startswith("<<") else 1
    return token[:cut] + " " + token[cut:]


def new_nonce() -> str:
    """A fresh fence nonce: 32 hex digits from the OS's cryptographic random source."""
    return secrets.token_hex(NONCE_BYTES)


def neutralise(text: str) -> str:
    """`text` with every chat-template control token broken by a space after its first
    character ("<|im_end|>" -> "< |im_end|>", "[INST]" -> "[ INST]")."""
    return _CONTROL.sub(_break, text)


def cost(text: str) -> float:
    """Estimated tokens of a text."""
    ascii_chars = len(text.encode("ascii", "ignore"))
    return ascii_chars / CHARS_PER_TOKEN + len(text.encode("utf-8", "replace")) - ascii_chars


def _fit(text: str, tokens: float) -> int:
    """How many leading characters of `text` fit in `tokens` (binary search)."""
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if cost(text[:mid]) <= tokens else (lo, mid - 1)
    return lo


def is_cut(text: str, tokens: float) -> bool:
    """Whether `text` is over `tokens` (cut_middle would cut it)."""
    return cost(text) > tokens


def cut_middle(text: str, tokens: float, tag: str = "") -> str:
    """`text` if it fits in `tokens`, else its head and tail (half the budget each, less the
    marker) with a marker saying how many characters were cut between them; `tag`: the
    request's nonce, so that no text can forge the marker."""
    if not is_cut(text, tokens):
        return text
    room = max(0.0, tokens - cost(MARKER.format(n=len(text), tag=tag))) / 2
    head = _fit(text, room)
    tail = _fit(text[head:][::-1], room)
    cut = len(text) - head - tail
    return text[:head] + MARKER.format(n=cut, tag=tag) + text[len(text) - tail:]


def budgets(costs: Sequence[float], total: float) -> list[float]:
    """Token budgets for texts of estimated `costs` summing to at most `total`: a text that
    costs less than an equal share keeps all of it, the rest split what remains."""
    out, left, todo = [0.0] * len(costs), float(total), sorted(range(len(costs)),
                                                              key=lambda i: costs[i])
    for n, i in enumerate(todo):
        share = left / (len(todo) - n)
        out[i] = min(float(costs[i]), share)
        left -= out[i]
    return out
