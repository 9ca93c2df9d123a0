"""Untrusted text (prompts, responses) made safe to show a judge. Pure functions.

- `new_nonce()`: 128 random bits per request for the fence markers ([[BEGIN RESPONSE
  <nonce>]]): no response can close its fence, because no response can know the nonce.
- `neutralise(text)`: chat-template control tokens (<|im_start|>, <|eot_id|>, [INST], <s>,
  <start_of_turn>, ...) get a visible space after their first character ("< |im_start|>"),
  so a tokenizer never reads them as real turns; nothing else changes.
- `cut_middle(text, tokens)`: a text over its token budget keeps its head and tail and says
  how much was cut in between, so the rubric after it always fits the judge's context.
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
_CONTROL = re.compile(
    r"<[|｜]"  # <|im_start|>, <|eot_id|>, <|endoftext|>, <|user|>, DeepSeek's <｜...｜>
    r"|</?(?:s|bos|eos|pad|unk|mask|sep|cls|start_of_turn|end_of_turn|start_of_image|"
    r"end_of_image|think|tool_call|tool_response|tools)>"  # Llama-2, Gemma, Qwen
    r"|\[/?[A-Z][A-Z_]{2,}\]"  # Mistral: [INST], [/INST], [SYSTEM_PROMPT], [TOOL_CALLS]
    r"|<</?SYS>>")  # Llama-2 system block
MARKER = "\n[... aeuf cut {n} characters here to fit the judge's context ...]\n"


def new_nonce() -> str:
    """A fresh fence nonce: 32 hex digits from the OS's cryptographic random source."""
    return secrets.token_hex(NONCE_BYTES)


def neutralise(text: str) -> str:
    """`text` with every chat-template control token broken by a space after its first
    character ("<|im_end|>" -> "< |im_end|>", "[INST]" -> "[ INST]")."""
    return _CONTROL.sub(lambda m: m.group(0)[0] + " " + m.group(0)[1:], text)


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


def cut_middle(text: str, tokens: float) -> str:
    """`text` if it fits in `tokens`, else its head and tail (half the budget each, less the
    marker) with a marker saying how many characters were cut between them."""
    if cost(text) <= tokens:
        return text
    room = max(0.0, tokens - cost(MARKER.format(n=len(text)))) / 2
    head = _fit(text, room)
    tail = _fit(text[head:][::-1], room)
    cut = len(text) - head - tail
    return text[:head] + MARKER.format(n=cut) + text[len(text) - tail:]


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
