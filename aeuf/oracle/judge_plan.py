"""The judge's plan (pure): what a judge is (JudgeSpec), the requests a task needs and their
keys. The key of a request names what is judged, never how it was asked: judge model,
template digest, prompt id, response ids in the order shown and a hash of those texts (and,
for a request with a response too long for the context, the --judge_overlong policy).
Re-exported by aeuf.oracle.judge.
"""

from __future__ import annotations

import dataclasses

from aeuf.config import OracleConfig
from aeuf.errors import ConfigError
from aeuf.oracle.base import request_key
from aeuf.oracle.prompts import Template, cut_flags, load_templates, template_cost
from aeuf.types import JudgeRequest, JudgeTask

CONTEXT_USE = 0.9  # share of the context the estimate may fill (token estimates are rough)
CHAT_OVERHEAD = 64  # tokens of the chat template's own markup
MIN_TEXT_TOKENS = 128


@dataclasses.dataclass(frozen=True)
class JudgeSpec:
    """What defines a judge's answers (and so its keys): model, templates, sampling."""

    model: str
    templates: tuple[Template, ...]
    cfg: OracleConfig

    @property
    def kind(self) -> str:
        return self.templates[0].kind


def text_tokens(cfg: OracleConfig, template: Template) -> float:
    """Token budget of the untrusted texts of one request: the judge's context less the
    reply, the template and the chat markup."""
    return (CONTEXT_USE * cfg.context_tokens - cfg.max_tokens - template_cost(template)
            - CHAT_OVERHEAD)


def make_spec(cfg: OracleConfig, model: str | None = None) -> JudgeSpec:
    """JudgeSpec from the config; ConfigError when no model is named or the context leaves
    no room for the texts."""
    model = model or cfg.judge.model
    if not model:
        raise ConfigError("the LLM judge needs a model: pass --judge_model NAME")
    spec = JudgeSpec(model, load_templates(cfg.template), cfg)
    for t in spec.templates:
        if text_tokens(cfg, t) < MIN_TEXT_TOKENS:
            raise ConfigError(f"--judge_context {cfg.context_tokens} leaves no room for the "
                              f"texts after judge template {t.name} and --judge_max_tokens "
                              f"{cfg.max_tokens}; raise --judge_context")
    return spec


def shown(task: JudgeTask, slots: tuple[int, ...]) -> tuple[str, ...]:
    """The untrusted texts a request shows: the prompt, then the responses in slot order."""
    return (task.prompt, *(task.responses[s] for s in slots))


def cut_slots(spec: JudgeSpec, t: int, task: JudgeTask, slots: tuple[int, ...]
              ) -> tuple[int, ...]:
    """The responses (task slots) of a request that do not fit the judge's context whole."""
    flags = cut_flags(shown(task, slots), text_tokens(spec.cfg, spec.templates[t]))
    return tuple(s for s, cut in zip(slots, flags[1:]) if cut)


def judge_key(spec: JudgeSpec, t: int, task: JudgeTask, slots: tuple[int, ...],
              cut: tuple[int, ...] = ()) -> str:
    """hash(judge model, template digest, prompt id, response ids in the order shown, and a
    hash of the texts shown): an edited text is a new request. A request with a cut response
    also names the --judge_overlong policy (aeuf.oracle.overlong)."""
    rids = [task.response_ids[s] for s in slots]
    texts = request_key("texts", list(shown(task, slots)))
    how = ("overlong", spec.cfg.overlong) if cut else ()
    return request_key("judge", spec.model, spec.templates[t].digest, task.prompt_id, rids,
                       texts, *how)


def make_request(spec: JudgeSpec, t: int, task: JudgeTask, slots: tuple[int, ...]
                 ) -> JudgeRequest:
    """The request of template t on `slots`; payload: the template and the cut slots."""
    cut = cut_slots(spec, t, task, slots)
    return JudgeRequest(judge_key(spec, t, task, slots, cut), task, slots,
                        {"template": t, "cut": cut})


def slot_groups(kind: str, k: int) -> list[tuple[int, ...]]:
    """Rating: (i,) for each response; pairwise: (i, j) and (j, i) for each i < j."""
    if kind == "rating":
        return [(i,) for i in range(k)]
    return [o for i in range(k) for j in range(i + 1, k) for o in ((i, j), (j, i))]


def plan_requests(spec: JudgeSpec, task: JudgeTask) -> list[JudgeRequest]:
    """Every request a task needs, in a stable order: templates x slot groups (pure: the
    bodies are built when sent)."""
    return [make_request(spec, t, task, slots) for t in range(len(spec.templates))
            for slots in slot_groups(spec.kind, len(task.responses))]
