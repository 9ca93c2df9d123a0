"""Conversations in a table: OpenAI turns [{role, content}], ShareGPT turns [{from, value}]
(from: human/gpt/system) and Anthropic HH-RLHF transcripts ("\\n\\nHuman: ...\\n\\nAssistant: ..."),
normalised to OpenAI roles (user, assistant, system).

A conversation splits into its context (every turn before the final assistant answer) and
that answer (None when it ends with a user turn). The prompt the encoder and the judge see is
the context's last user turn; the context itself is kept whole for multi-turn export.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from aeuf.errors import InputError
from aeuf.io import cells

ROLES = {"user": "user", "human": "user", "prompter": "user", "system": "system",
         "assistant": "assistant", "gpt": "assistant", "model": "assistant", "bot": "assistant",
         "chatgpt": "assistant", "bard": "assistant", "bing": "assistant"}
_HH_TURN = re.compile(r"\n\n(Human|Assistant): ?")

Turns = list[dict[str, str]]


class Split(NamedTuple):
    """context: the turns before the final assistant answer;  answer: its text, or None."""

    context: Turns
    answer: str | None


class Prompts(NamedTuple):
    """The prompt side of every row of a table.

    texts:    [rows] str, the prompt (the last user turn of a conversation)
    contexts: [rows] Turns or None (plain-text prompt without a conversation column)
    answers:  [rows] str or None, a conversation's final assistant turn
    column:   the column the prompts came from
    """

    texts: list[str]
    contexts: list[Turns | None]
    answers: list[str | None]
    column: str


def is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def conversation(value: Any, source: str, row: int, column: str) -> Turns:
    """A cell holding turns (a list, or JSON text in CSV) -> normalised turns [{role, content}]."""
    if cells.is_missing(value):
        raise InputError(f"{cells.where(source, row, column)}: empty conversation; fill it in "
                         "or remove the row")
    items = cells.as_list(value, source, row, column)
    if not items:
        raise InputError(f"{cells.where(source, row, column)}: empty conversation (no turns); "
                         "fill it in or remove the row")
    return [_turn(item, source, row, f"{column}[{n}]") for n, item in enumerate(items)]


def _turn(item: Any, source: str, row: int, column: str) -> dict[str, str]:
    if not isinstance(item, dict):
        raise InputError(f"{cells.where(source, row, column)}: expected a turn {{role, content}} "
                         f"(or ShareGPT {{from, value}}), got {cells.describe(item)}")
    role = item.get("role") if item.get("role") is not None else item.get("from")
    content = item.get("content") if item.get("content") is not None else item.get("value")
    name = ROLES.get(role.strip().lower()) if isinstance(role, str) else None
    if name is None:
        raise InputError(f"{cells.where(source, row, column)}: unknown role "
                         f"{cells.describe(role)}; use user, assistant or system (ShareGPT: "
                         "human, gpt, system)")
    if not isinstance(content, str):
        raise InputError(f"{cells.where(source, row, column)}: the turn's content is "
                         f"{cells.describe(content)}, not text; put text in it")
    return {"role": name, "content": content}


def split(turns: Turns) -> Split:
    """Turns -> (context before the final assistant answer, that answer or None)."""
    if turns and turns[-1]["role"] == "assistant":
        return Split(turns[:-1], turns[-1]["content"])
    return Split(turns, None)


def last_user(context: Turns, source: str, row: int, column: str) -> str:
    """The context's last user turn: the prompt. Raises if there is none or it is empty."""
    users = [t["content"] for t in context if t["role"] == "user"]
    if not users or not users[-1].strip():
        what = "an empty last user turn" if users else "no user turn before the answer"
        raise InputError(f"{cells.where(source, row, column)}: the conversation has {what}; "
                         "every conversation needs a user turn to answer")
    return users[-1]


def hh_turns(text: str) -> Turns | None:
    """An HH-RLHF transcript ("\\n\\nHuman: ...\\n\\nAssistant: ...") as turns; None if `text`
    does not start like one. The markers inside the text decide the turns (the format's own
    rule): a response that writes "\\n\\nHuman: " splits there."""
    if not text.startswith("\n\nHuman:"):
        return None
    parts = _HH_TURN.split(text)
    return [{"role": "user" if who == "Human" else "assistant", "content": body}
            for who, body in zip(parts[1::2], parts[2::2])]


def key(prompt: str, context: Turns | None) -> str:
    """What a prompt's id hashes and duplicate rows compare: the prompt text for a plain or
    single-user-turn prompt (so both spell the same id), else the whole context as JSON."""
    if context is None or context == [{"role": "user", "content": prompt}]:
        return prompt
    return json.dumps(context, ensure_ascii=False, sort_keys=True)


def with_user_turns(texts: list[str], contexts: list[Turns | None]) -> list[Turns] | None:
    """None when no row has a context, else every row's context (a plain prompt becomes
    one user turn)."""
    if all(c is None for c in contexts):
        return None
    return [c if c is not None else [{"role": "user", "content": t}]
            for t, c in zip(texts, contexts)]


def prompts_of(df: pd.DataFrame, source: str, column: str) -> Prompts:
    """The prompt of every row from `column`: plain text, or a conversation (a conversation
    column, or any list-valued cell). A text prompt takes its context from a conversation
    column when the table has one."""
    side = next((c for c in cells.CONVERSATION_COLUMNS if c in df.columns and c != column), None)
    talk = column in cells.CONVERSATION_COLUMNS
    texts, contexts, answers = [], [], []
    for n, value in enumerate(df[column].tolist(), 1):
        if talk or is_list(value):
            parts = split(conversation(value, source, n, column))
            text = last_user(parts.context, source, n, column)
        else:
            if not cells.is_text(value):
                raise cells.text_error(source, n, column, value, "prompt")
            text, parts = value, _side_context(df, side, source, n)
        texts.append(text)
        contexts.append(parts.context if parts else None)
        answers.append(parts.answer if parts else None)
    return Prompts(texts, contexts, answers, column)


def _side_context(df: pd.DataFrame, column: str | None, source: str, row: int) -> Split | None:
    if column is None or cells.is_missing(value := df[column].iat[row - 1]):
        return None
    return split(conversation(value, source, row, column))
