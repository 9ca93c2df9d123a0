"""Judge templates: files a user can swap, parsed into `Template`s and rendered into chat
messages with the untrusted texts fenced by unforgeable delimiters.

A template file has "key: value" header lines (`kind`: rating | pairwise, `aspect`), '#'
comments, then a "--- system ---" and a "--- user ---" section. Placeholders: {{prompt}},
{{response}} or {{response_a}}/{{response_b}}, and {{tag}} (the request's random nonce).
Substitution is one pass, so a response that contains "{{tag}}" stays literal text. The
untrusted texts are neutralised and cut to the judge's context first (aeuf.oracle.fence).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from aeuf.errors import ConfigError
from aeuf.oracle.fence import NONCE_BYTES, budgets, cost, cut_middle, is_cut, neutralise

KINDS = ("rating", "pairwise")
# builtin name -> template files under aeuf/oracle/templates/
BUILTIN = {
    "overall": ("overall",),
    "ultrafeedback": ("instruction_following", "honesty", "truthfulness", "helpfulness"),
    "pairwise": ("pairwise",),
    "instruction_following": ("instruction_following",),
    "honesty": ("honesty",),
    "truthfulness": ("truthfulness",),
    "helpfulness": ("helpfulness",),
}
_SECTION = re.compile(r"^--- *(system|user) *---[ \t]*$", re.M)
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@dataclass(frozen=True)
class Template:
    """One judge prompt. digest: SHA-256 of the file text (part of every request key)."""

    name: str
    kind: str
    aspect: str
    system: str
    user: str
    digest: str


def parse_template(text: str, name: str) -> Template:
    """Template file text -> Template; ConfigError naming `name` when malformed."""
    parts = _SECTION.split(text)
    if len(parts) != 5 or parts[1] != "system" or parts[3] != "user":
        raise ConfigError(f"judge template {name}: needs a '--- system ---' then a "
                          f"'--- user ---' section")
    header = {}
    for line in parts[0].splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition(":")
            if not sep:
                raise ConfigError(f"judge template {name}: bad header line {line!r}")
            header[key.strip()] = value.strip()
    kind = header.get("kind", "rating")
    if kind not in KINDS:
        raise ConfigError(f"judge template {name}: kind must be one of {', '.join(KINDS)}")
    needed = ("{{response}}",) if kind == "rating" else ("{{response_a}}", "{{response_b}}")
    if any(n not in parts[4] for n in needed):
        raise ConfigError(f"judge template {name}: the user section needs {' and '.join(needed)}")
    return Template(name, kind, header.get("aspect", name), parts[2].strip("\n"),
                    parts[4].strip("\n"), hashlib.sha256(text.encode()).hexdigest())


def _read(item: str) -> tuple[str, str]:
    if item in BUILTIN and len(BUILTIN[item]) == 1:
        ref = resources.files("aeuf.oracle").joinpath("templates", f"{item}.txt")
        return item, ref.read_text(encoding="utf-8")
    path = Path(item).expanduser()
    if not path.is_file():
        raise ConfigError(f"judge template {item!r}: not a file nor one of "
                          f"{', '.join(BUILTIN)}")
    return path.stem, path.read_text(encoding="utf-8")


def load_templates(spec: str) -> tuple[Template, ...]:
    """'overall' | 'ultrafeedback' | 'pairwise' | an aspect | paths, comma-separated.

    All templates of one judge must share a kind (ratings are averaged over aspects).
    """
    items = [i.strip() for i in spec.split(",") if i.strip()]
    names = [n for i in items for n in (BUILTIN[i] if i in BUILTIN else (i,))]
    templates = tuple(parse_template(text, name) for name, text in map(_read, names))
    if not templates or len({t.kind for t in templates}) != 1:
        raise ConfigError(f"judge template {spec!r}: give one or more templates of one kind")
    return templates


def template_cost(template: Template) -> float:
    """Estimated tokens of a template's own text, nonces filled in (the texts not)."""
    tag = "0" * 2 * NONCE_BYTES
    return sum(cost(text.replace("{{tag}}", tag)) for text in (template.system, template.user))


def shown_texts(texts: tuple[str, ...], tokens: float | None, tag: str = "") -> list[str]:
    """The untrusted texts as the judge sees them: control tokens neutralised, then cut in
    the middle so that together they fit in `tokens` (None: no limit); `tag` marks the cuts."""
    safe = [neutralise(t) for t in texts]
    if tokens is None:
        return safe
    return [cut_middle(t, b, tag) for t, b in zip(safe, budgets([cost(t) for t in safe], tokens))]


def cut_flags(texts: tuple[str, ...], tokens: float | None) -> list[bool]:
    """Which of the untrusted texts shown_texts would cut (the judge would not see whole)."""
    if tokens is None:
        return [False] * len(texts)
    safe = [neutralise(t) for t in texts]
    return [is_cut(t, b) for t, b in zip(safe, budgets([cost(t) for t in safe], tokens))]


def render(template: Template, prompt: str, responses: tuple[str, ...], *, nonce: str,
           tokens: float | None = None) -> list[dict]:
    """Chat messages for one request: responses = (r,) for rating, (a, b) for pairwise;
    nonce: the fence tag (fence.new_nonce(), fresh per request); tokens: the budget of the
    untrusted texts together."""
    texts = shown_texts((prompt, *responses), tokens, nonce)
    names = ("response",) if template.kind == "rating" else ("response_a", "response_b")
    values = {"prompt": texts[0], "tag": nonce} | dict(zip(names, texts[1:]))

    def fill(text: str) -> str:
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)

    return [{"role": "system", "content": fill(template.system)},
            {"role": "user", "content": fill(template.user)}]
