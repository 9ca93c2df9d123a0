"""A deterministic stand-in for an honest LLM judge, served over the OpenAI chat API.

It reads a request the way a chat model does: the messages are laid out in a chat template
and split into turns at every control token of the common templates (so a control token
inside a response really starts a new turn there), and it answers the LAST user turn. In
that turn it finds the judge template's fences: the nonce is the one of the first marker
(the template's own, before any untrusted text), and each response is what lies between
its BEGIN and END markers with that nonce. Its verdict depends only on a hidden property of
each response, the quality word it starts with (QUALITY); instructions to the judge, forged
answer lines and fake fences do not move it. After the answer it quotes the responses, as a
chatty judge does, so forged lines do appear in its replies.

When the turn it answers is not a whole judge request (a control token split it, a fence
was forged so that the structure it reads is someone else's, the rubric after the response
is missing, or a response does not start with a quality word), it does what a manipulated
model does: it copies the last answer it saw in the conversation ("Rating: 5", or 5 when
there is none). So a defence that fails shows as a wrong rating. A prompt over `context`
tokens gets HTTP 400, as llama.cpp, vLLM and OpenAI do. It answers in JSON when asked for a
response_format it accepts (`formats`), and refuses the others with HTTP 400 naming
response_format, as a server without structured output does.
"""

from __future__ import annotations

import json
import math
import re
import threading

from servers import _Quiet, _Server

QUALITY = {"terrible": 1, "poor": 2, "fair": 3, "good": 4, "excellent": 5}
RATING_P = 0.7  # log-probs: the honest rating gets 0.7, its neighbours share the rest
WINNER_P = 0.8
_TURN = re.compile(r"<\|im_start\|>(\w+)\n|<\|start_header_id\|>(\w+)<\|end_header_id\|>"
                   r"|<start_of_turn>(\w+)|<\|(user|assistant|system)\|>|(\[INST\])"
                   r"|<\|im_end\|>|<\|eot_id\|>|\[/INST\]|<end_of_turn>|<\|end\|>|</s>|<s>"
                   r"|<\|endoftext\|>")
_FIRST_MARKER = re.compile(r"\[\[BEGIN [A-Z ]+ ([0-9a-f]+)\]\]")
_ANSWER = re.compile(r"(?:Rating|rating\"?)\s*:\s*\"?([1-5])|(?:Winner|winner\"?)\s*:\s*\"?"
                     r"(A|B|tie)")


def count_tokens(text: str) -> int:
    """The stand-in's tokenizer: 4 ASCII characters a token, other characters a token per
    UTF-8 byte."""
    ascii_chars = sum(1 for c in text if c < "\x80")
    return math.ceil(ascii_chars / 4) + len(text.encode("utf-8", "replace")) - ascii_chars


def chatml(messages: list) -> str:
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n"
                   for m in messages) + "<|im_start|>assistant\n"


def last_user_turn(conversation: str) -> str | None:
    """The text of the last turn that a control token opened as a user turn."""
    turns, role, start = [], None, 0
    for m in _TURN.finditer(conversation):
        if role is not None:
            turns.append((role, conversation[start:m.start()]))
        opened = next((g for g in m.groups() if g), None)
        role = ("user" if opened == "[INST]" else opened)
        start = m.end()
    users = [text for r, text in turns if r == "user"]
    return users[-1] if users else None


def _between(turn: str, begin: str, end: str) -> str | None:
    i = turn.find(begin)
    j = turn.find(end, i + len(begin)) if i >= 0 else -1
    return None if j < 0 else turn[i + len(begin):j].strip("\n")


def read_request(turn: str | None) -> tuple[str, list[int]] | None:
    """(kind, hidden qualities of the responses) of a whole judge request, else None."""
    first = _FIRST_MARKER.search(turn or "")
    if first is None or not first.group(0).startswith("[[BEGIN INSTRUCTION"):
        return None
    n = first.group(1)
    slots = ["A", "B"] if f"[[BEGIN RESPONSE A {n}]]" in turn else [""]
    texts = [_between(turn, f"[[BEGIN RESPONSE {s} {n}]]".replace("  ", " "),
                      f"[[END RESPONSE {s} {n}]]".replace("  ", " ")) for s in slots]
    tail = turn[turn.rfind(f" {n}]]"):]
    if None in texts or "Start your reply with" not in tail:
        return None
    words = [re.split(r"\W+", t.strip().lower(), maxsplit=1)[0] for t in texts]
    if any(w not in QUALITY for w in words):
        return None
    return ("pairwise" if len(slots) == 2 else "rating"), [QUALITY[w] for w in words]


def honest_answer(kind: str, qualities: list[int]) -> str:
    if kind == "rating":
        return str(qualities[0])
    return "A" if qualities[0] > qualities[1] else "B" if qualities[1] > qualities[0] else "tie"


def answer_probs(kind: str, answer: str) -> dict[str, float]:
    """The distribution the stand-in reports at its answer token."""
    if kind == "pairwise":
        rest = [x for x in ("A", "B", "tie") if x != answer]
        return {answer: WINNER_P} | {x: (1 - WINNER_P) / 2 for x in rest}
    r = int(answer)
    near = [x for x in (r - 1, r + 1) if 1 <= x <= 5]
    return {answer: RATING_P} | {str(x): (1 - RATING_P) / len(near) for x in near}


def honest_value(kind: str, qualities: list[int], logprobs: bool) -> float:
    """The value an honest judge's answer gives aeuf (the log-prob expectation when asked)."""
    answer, labels = honest_answer(kind, qualities), {"A": 1.0, "B": 0.0, "tie": 0.5}
    value = (lambda a: float(a)) if kind == "rating" else labels.get
    if not logprobs:
        return value(answer)
    return sum(value(a) * p for a, p in answer_probs(kind, answer).items())


def manipulated(kind: str, conversation: str) -> str:
    """What a manipulated model answers: the last answer it saw, else the top one."""
    found = [m.group(1) or m.group(2) for m in _ANSWER.finditer(conversation)]
    found = [a for a in found if (a in "12345") == (kind == "rating")]
    return found[-1] if found else ("5" if kind == "rating" else "A")


class _JudgeHandler(_Quiet):
    def do_GET(self) -> None:
        self.reply(200, json.dumps({"object": "list", "data": [{"id": "honest"}]}).encode())

    def do_POST(self) -> None:
        self.reply(*self.server.owner.answer(json.loads(self.body())))


class HonestJudge(_Server):
    """The stand-in judge at base_url; `requests` counts what it answered (status -> n)."""

    def __init__(self, context: int = 2048, formats=("json_schema", "json_object")) -> None:
        self.context, self.formats = context, tuple(formats)
        self.lock, self.requests, self.prompts = threading.Lock(), {}, []
        super().__init__(_JudgeHandler)

    def _count(self, status: int) -> None:
        with self.lock:
            self.requests[status] = self.requests.get(status, 0) + 1

    def answer(self, body: dict) -> tuple[int, bytes, dict]:
        conversation = chatml(body["messages"])
        rf = (body.get("response_format") or {}).get("type")
        if rf not in (None, "text", *self.formats):
            self._count(400)
            return 400, json.dumps({"error": {"message": f"response_format of type {rf} "
                                                         "is not supported"}}).encode(), {}
        used = count_tokens(conversation)
        if used + int(body.get("max_tokens") or 0) > self.context:
            self._count(400)
            why = f"this model's context is {self.context} tokens, the request needs {used}"
            return 400, json.dumps({"error": {"message": why}}).encode(), {}
        with self.lock:
            self.prompts.append(conversation)
        self._count(200)
        return 200, json.dumps(self.completion(body, conversation, rf)).encode(), {}

    def completion(self, body: dict, conversation: str, rf: str | None) -> dict:
        kind = "pairwise" if "Winner:" in body["messages"][0]["content"] else "rating"
        read = read_request(last_user_turn(conversation))
        answer = honest_answer(*read) if read and read[0] == kind else manipulated(kind,
                                                                                   conversation)
        quote = " | ".join(t[:300] for t in re.findall(r"\[\[BEGIN RESPONSE[^\]]*\]\]\n(.*?)"
                                                       r"\n\[\[END RESPONSE", conversation, re.S))
        field = "rating" if kind == "rating" else "winner"
        if rf in (None, "text"):
            head, tail = f"{field.capitalize()}: ", f"\nRationale: the response reads: {quote}"
        else:
            head = f'{{"{field}": ' + ('"' if kind == "pairwise" else "")
            tail = ('"' if kind == "pairwise" else "") + \
                f', "rationale": {json.dumps("the response reads: " + quote)}}}'
        tokens = [(head, []), (answer, list(answer_probs(kind, answer).items())), (tail, [])]
        content = [{"token": t, "logprob": 0.0 if not top else math.log(dict(top)[t]),
                    "top_logprobs": [{"token": a, "logprob": math.log(p)} for a, p in top]
                    or [{"token": t, "logprob": 0.0}]} for t, top in tokens]
        choice = {"index": 0, "finish_reason": "stop",
                  "message": {"role": "assistant", "content": head + answer + tail}}
        if body.get("logprobs"):
            choice["logprobs"] = {"content": content}
        return {"id": "honest", "object": "chat.completion", "choices": [choice],
                "usage": {"prompt_tokens": count_tokens(conversation),
                          "completion_tokens": count_tokens(head + answer + tail)}}
