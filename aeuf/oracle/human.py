"""`--oracle human`: a person at the terminal picks the better of two responses.

Each pair (i, j) of a task is one request; the two responses are shown in an order fixed
by the request key (so neither slot is always first). Answers: a, b, tie (t), skip (s),
undo (u) or quit (q). Every answer is yielded the moment it is typed, so the loop logs it.
undo takes back the last answer of this round: a retraction (error "retracted: ...", not
final) is yielded, so the log stays append-only and a rerun asks that pair again, and the
pair is shown again at once. quit or the end of input stops the whole run
(aeuf.errors.Stopped: exit 1), each with its own words, Ctrl-C too (exit 130), and a rerun
asks only the pairs not yet answered. A skip is final (recorded as missing, never asked
again). A round's pairs come in one go, so the header counts through the round, and, when
the caller passes `tally() -> (answered, planned)`, through the whole run.
"""

from __future__ import annotations

import hashlib
import re
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TextIO

import numpy as np

from aeuf.config import OracleConfig
from aeuf.errors import Stopped
from aeuf.oracle.base import RETRACTED, Capabilities, Oracle, nothing, register, request_key
from aeuf.oracle.resolve import value_of
from aeuf.types import JudgeAnswer, Judgement, JudgeRequest, JudgeTask

CHOICES = {"a": 1.0, "b": 0.0, "tie": 0.5, "t": 0.5, "skip": None, "s": None}
QUIT = {"q", "quit", "exit"}
UNDO = {"u", "undo"}
EOF_ = "end of input"  # what ask() returns when the input ends


def pair_order(task: JudgeTask, i: int, j: int) -> tuple[int, int]:
    """(i, j) or (j, i), fixed by a hash of the prompt and response ids."""
    seed = f"{task.prompt_id}|{task.response_ids[i]}|{task.response_ids[j]}"
    return (i, j) if hashlib.sha256(seed.encode()).digest()[0] % 2 == 0 else (j, i)


def human_key(task: JudgeTask, slots: tuple[int, ...]) -> str:
    """Names the pair and, by a digest, the texts the person saw."""
    shown = [task.prompt, *(task.responses[s] for s in slots)]
    digest = hashlib.sha256("\x00".join(shown).encode()).hexdigest()[:16]
    return request_key("human", task.prompt_id, [task.response_ids[s] for s in slots], digest)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# invisible format characters that can reorder or hide text on screen: bidi embeddings,
# overrides and isolates, zero-width spaces and joiners, word joiner, BOM, soft hyphen, ...
_INVISIBLE = re.compile("[\u00ad\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f"
                        "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0"
                        "\ufff9-\ufffb\U000e0000-\U000e007f\ud800-\udfff]")


def printable(text: str) -> str:
    """Untrusted text as the person should see it: control characters (terminal escape
    sequences) replaced, invisible format characters (bidi overrides, zero-width
    characters, lone surrogates) shown as <U+XXXX>, so no text is hidden or reordered."""
    text = _CONTROL.sub("\N{REPLACEMENT CHARACTER}", text)
    return _INVISIBLE.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)


def show(task: JudgeTask, slots: tuple[int, ...], n: int, total: int,
         overall: tuple[int, int] | None = None) -> str:
    """The text shown for one pair (control characters of the texts replaced); overall:
    (pairs answered, pairs the run plans at most) for the whole run."""
    block = lambda s: textwrap.indent(printable(s.strip()), "  |  ")  # noqa: E731
    a, b = (task.responses[s] for s in slots)
    run = f"; {overall[0]} of at most {overall[1]} answered in the whole run" if overall else ""
    return (f"\n=== pair {n} of {total} in this round{run}; prompt "
            f"{printable(task.prompt_id)} ===\n{block(task.prompt)}\n"
            f"--- Response A ---\n{block(a)}\n--- Response B ---\n{block(b)}\n")


def ask(stdin: TextIO, stdout: TextIO) -> str:
    """One valid choice from the stream (re-asks on anything else): a key of CHOICES,
    "undo", "quit", or EOF_ when the input ended."""
    while True:
        stdout.write("Better? [a / b / tie / skip / undo / quit]: ")
        stdout.flush()
        line = stdin.readline()
        choice = line.strip().lower()
        if not line:
            return EOF_
        if choice in QUIT:
            return "quit"
        if choice in UNDO:
            return "undo"
        if choice in CHOICES:
            return choice
        stdout.write(f"  '{printable(choice)}' is not one of a, b, tie, skip, undo, quit\n")


def _answer(request: JudgeRequest, choice: str) -> JudgeAnswer:
    task, value = request.task, CHOICES[choice]
    rids = tuple(task.response_ids[s] for s in request.slots)
    return JudgeAnswer(request.key, task.prompt_id, rids, value, choice, "human",
                       error="skipped by the annotator" if value is None else None)


def retraction(request: JudgeRequest) -> JudgeAnswer:
    """The log line that takes back the answer to `request` (not final: asked again)."""
    rids = tuple(request.task.response_ids[s] for s in request.slots)
    return JudgeAnswer(request.key, request.task.prompt_id, rids, None, "undo", "human",
                       error=f"{RETRACTED} undone by the annotator")


STOPS = {"quit": "stopped at your request", EOF_: "end of input (nothing more to read)"}


HUMAN = Capabilities(interactive=True, per_pair=True)
TERMINAL = "terminal"  # the annotator of every answer typed at this terminal (the export's column)


@register("human", HUMAN)
def human_oracle(cfg: OracleConfig, *, stdin: TextIO | None = None,
                 stdout: TextIO | None = None,
                 tally: Callable[[], tuple[int, int] | None] | None = None, **_) -> Oracle:
    """Pairwise labels typed by a person; `stdin`/`stdout` default to the terminal;
    tally() -> (pairs answered, pairs planned) of the whole run, for the header."""

    def plan(task: JudgeTask) -> list[JudgeRequest]:
        k = len(task.responses)
        orders = [pair_order(task, i, j) for i in range(k) for j in range(i + 1, k)]
        return [JudgeRequest(human_key(task, o), task, o) for o in orders]

    def send(requests: Sequence[JudgeRequest]) -> Iterator[JudgeAnswer]:
        inp, out = stdin or sys.stdin, stdout or sys.stdout
        n = 0
        while n < len(requests):
            request = requests[n]
            out.write(show(request.task, request.slots, n + 1, len(requests),
                           tally() if tally else None))
            choice = ask(inp, out)  # Ctrl-C raises KeyboardInterrupt: the run stops (130)
            if choice in STOPS:
                raise Stopped(f"{STOPS[choice]}; every answer so far is saved: rerun the "
                              "same command to continue")
            if choice != "undo":
                yield _answer(request, choice)
                n += 1
            elif n == 0:
                out.write("  nothing to undo in this round (earlier rounds are final)\n")
            else:
                n -= 1
                yield retraction(requests[n])
                out.write(f"  undone: pair {n + 1} is shown again\n")

    def resolve(task: JudgeTask, answers: Mapping[str, JudgeAnswer]) -> Judgement:
        pairs = []
        for request in plan(task):
            p = value_of(answers, request.key)
            if p is not None:
                i, j = request.slots
                pairs.append((i, j, p) if i < j else (j, i, 1.0 - p))
        return Judgement(task, np.full(len(task.responses), np.nan), pairs,
                         annotators=(TERMINAL,) if pairs else ())

    return Oracle("human", plan, send, resolve, nothing, chunk=10**9, caps=HUMAN)
