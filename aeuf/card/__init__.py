"""The dataset card (hf/README.md): Hub YAML front matter, then what the data is, how it was
made, counts, cost, judge hygiene, limitations, how to load it, licence.

`render_card(facts)` is pure: the run fills a plain dict, every key optional (a missing fact is
shown as "unknown" or its line left out). Keys:

    name          str    title (default "Preference dataset built with aeuf")
    repo_id       str    hub repo the data is pushed to (--push_to_hub), for the load snippet
    format        str    standard | conversational | kto (ExportConfig.format)
    columns       list[str]  the exported columns (list(frame.columns))
    license       str    Hub licence id of the input (e.g. "cc-by-nc-4.0"); else "unknown"
    license_note  str    one line: where the licence comes from, restrictions
    languages     list[str]  ISO 639 codes, e.g. ["en"]
    pool          dict   source (path or hub id), prompts (P), responses_per_prompt (R),
                         models (list of the models that wrote responses), skipped (prompts
                         dropped while reading)
    features      str    feature parts, e.g. "minilm+stats";  encoder: str
    head          dict   name ("ensemble"/"bll") and any settings to show (members, ...)
    rules         list[str]  acquisition rules in order of first use (the initial rule first)
    num_annotations int  responses per prompt shown to the oracle (k)
    oracle        dict   name (replay/judge/batch/local/human), model (the judge's model),
                         template, label_mode; a cascade adds cheap_model, cheap_rows (pairs
                         the cheap judge labelled alone) and strong_rows
    rounds        int    rounds run;  budget: int prompts to label (or words, e.g. "every
                         prompt once");  seed: int
    counts        dict   rows, prompts, ties, ties_kept, desirable, undesirable (all of
                         dataset.build_rows(...).attrs), plus failed (judged prompts with no
                         usable answer) and self_labelled (pairs labelled by the head)
    cost          dict   total (in the units of --price_in/--price_out), requests, tokens
    hygiene       dict   figure name -> value, or -> {"value": v, "note": "what it means"}
                         (e.g. position bias, length bias, parse failures, agreement)
    command       str    the command line that made the data
    aeuf_version  str
    report        str    the run report's file name, if there is one

Every string may come from input files (model names, sources, licences) and is treated as
hostile: YAML values are JSON-quoted, markdown values escaped, code spans fenced safely.
"""

from __future__ import annotations

import json
import re

from aeuf.card.words import (
    ANNOTATORS,
    COLUMN_HELP,
    COUNT_WORDS,
    LIMITS,
    ORACLE_WORDS,
    SIZES,
    TAGS,
    TITLE,
    TRAINERS,
    code_block,
    code_span,
    esc,
    num,
)

_LICENSE_ID = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,63}$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?$")


def render_card(facts: dict) -> str:
    """The card's markdown for `facts` (keys in the module docstring)."""
    parts = [_front_matter(facts), _intro(facts), _structure(facts), _made(facts),
             _counts(facts), _cost(facts), _hygiene(facts), _limitations(facts),
             _loading(facts), _licence(facts)]
    return "\n".join(p for p in parts if p)


# --- YAML front matter -----------------------------------------------------------------------

def license_id(facts: dict) -> str:
    """The Hub licence id of the data: the input's when it looks like one, else "unknown"."""
    lic = str(facts.get("license") or "").strip().lower()
    return lic if _LICENSE_ID.match(lic) else "unknown"


def size_category(rows: int | None) -> str:
    """The Hub's size bucket for `rows` examples."""
    if rows is None:
        return "unknown"
    return next((name for limit, name in SIZES if rows < limit), "n>1M")


def _front_matter(facts: dict) -> str:
    fmt = facts.get("format", "standard")
    meta = {
        "license": license_id(facts),
        "language": list(facts.get("languages") or []),
        "task_categories": ["text-generation"],
        "tags": ["aeuf", "trl", "preference", *TAGS.get(fmt, []), "synthetic"],
        "size_categories": [size_category(_get(facts, "counts", "rows"))],
        "annotations_creators": [ANNOTATORS.get(_get(facts, "oracle", "name"), "machine-generated")],
        "language_creators": ["found", "machine-generated"],
        "pretty_name": str(facts.get("name") or TITLE),
    }
    lines = ["---", *(_yaml(k, v) for k, v in meta.items() if v != []), *_yaml_configs(), "---"]
    return "\n".join(lines) + "\n"


def _yaml(key: str, value) -> str:
    """One YAML entry; strings JSON-quoted (valid YAML, no injection through the value)."""
    if isinstance(value, list):
        return f"{key}:\n" + "\n".join(f"- {json.dumps(str(v))}" for v in value)
    return f"{key}: {json.dumps(str(value))}"


def _yaml_configs() -> list[str]:
    """The data layout `Dataset.push_to_hub` writes (one default config, one train split)."""
    return ["configs:", "- config_name: default", "  data_files:", "  - split: train",
            "    path: data/train-*"]


# --- sections ------------------------------------------------------------------------------

def _intro(facts: dict) -> str:
    fmt = facts.get("format", "standard")
    what = {"standard": "preference pairs (`prompt`, `chosen`, `rejected` as text)",
            "conversational": "preference pairs as message lists (`prompt`, `chosen`, "
                              "`rejected`)",
            "kto": "unpaired preferences (`prompt`, `completion`, boolean `label`)"}
    pool = facts.get("pool") or {}
    return (f"# {esc(facts.get('name') or TITLE)}\n\n"
            f"{num(_get(facts, 'counts', 'rows'))} {what.get(fmt, esc(fmt))}, labelled by {_oracle_words(facts)} on prompts chosen by "
            f"active learning from {esc(pool.get('source') or 'an unnamed pool')}, "
            f"made with aeuf (Active UltraFeedback).\n")


def _structure(facts: dict) -> str:
    cols = [str(c) for c in facts.get("columns") or []]
    if not cols:
        return ""
    rows = [f"| {code_span(c)} | {COLUMN_HELP.get(c, _id_help(c))} |" for c in cols]
    return "## Columns\n\n| column | content |\n|---|---|\n" + "\n".join(rows) + "\n"


def _id_help(column: str) -> str:
    if column.startswith("pref_"):
        return "the judged responses ranked best first (k > 2)"
    return "stable id" if column.endswith("_id") else ""


def _made(facts: dict) -> str:
    pool, head = facts.get("pool") or {}, facts.get("head") or {}
    models = [esc(m) for m in pool.get("models") or []]
    lines = [
        f"- **Pool**: {num(pool.get('prompts'))} prompts x {num(pool.get('responses_per_prompt'))} "
        f"responses from {esc(pool.get('source') or 'unknown')}"
        + (f"; responses by {', '.join(models[:12])}" + (" ..." if len(models) > 12 else "")
           if models else ""),
        f"- **Features**: {esc(facts.get('features') or 'unknown')}"
        + (f" (encoder {esc(facts['encoder'])})" if facts.get("encoder") else ""),
        f"- **Reward head**: {_settings(head)}",
        f"- **Acquisition**: {', '.join(esc(r) for r in facts.get('rules') or []) or 'unknown'}; "
        f"{num(facts.get('num_annotations'))} responses per prompt shown to the oracle",
        f"- **Oracle**: {_oracle_words(facts)}",
        f"- **Rounds**: {num(facts.get('rounds'))}, budget {_budget(facts.get('budget'))}, "
        f"seed {num(facts.get('seed'))}",
    ]
    if facts.get("aeuf_version"):
        lines.append(f"- **aeuf**: {esc(facts['aeuf_version'])}")
    cmd = f"\n{code_block(facts['command'])}" if facts.get("command") else ""
    return "## How it was made\n\n" + "\n".join(lines) + "\n" + cmd


def _budget(budget) -> str:
    """'20 prompts', the budget's words when it is not a number, or 'unknown'."""
    if isinstance(budget, int) and not isinstance(budget, bool):
        return f"{num(budget)} prompts"
    return esc(budget) if budget else "unknown"


def _settings(d) -> str:
    if not isinstance(d, dict):
        return esc(d) if d else "unknown"
    name = esc(d.get("name") or "unknown")
    rest = [f"{esc(k)}={esc(v)}" for k, v in d.items() if k != "name"]
    return name + (f" ({', '.join(rest)})" if rest else "")


def _oracle_words(facts: dict) -> str:
    o = facts.get("oracle") or {}
    text = ORACLE_WORDS.get(o.get("name"), esc(o.get("name") or "an unknown oracle"))
    extra = [f"{key} {esc(o[key])}" for key in ("reward_model", "model", "template", "label_mode")
             if o.get(key)]
    text += f" ({', '.join(extra)})" if extra else ""
    if not o.get("cheap_model"):
        return text
    return (f"a cascade: a cheap LLM judge (model {esc(o['cheap_model'])}) first, which "
            f"labelled {num(o.get('cheap_rows'))} pairs alone, then {text}, which labelled "
            f"{num(o.get('strong_rows'))} pairs")


def _counts(facts: dict) -> str:
    counts = facts.get("counts") or {}
    rows = [f"| {COUNT_WORDS.get(k, esc(k))} | {num(v)} |" for k, v in counts.items()
            if k != "format" and not (k in ("desirable", "undesirable") and facts.get("format") != "kto")]
    skipped = _get(facts, "pool", "skipped")
    if skipped:
        rows.append(f"| prompts skipped while reading (too few responses) | {num(skipped)} |")
    return ("## Counts\n\n| | count |\n|---|---|\n" + "\n".join(rows) + "\n") if rows else ""


def _cost(facts: dict) -> str:
    cost = facts.get("cost") or {}
    if not cost:
        return ""
    return (f"## Cost\n\n{num(cost.get('requests'))} oracle requests, {num(cost.get('tokens'))} "
            f"tokens, total cost {num(cost.get('total'))} (in the units of --price_in / "
            f"--price_out; 0 when no price was given).\n")


def _hygiene(facts: dict) -> str:
    figures = facts.get("hygiene") or {}
    if not figures:
        return ""
    if not any(_note(v) for v in figures.values()):  # no meanings: no empty column
        rows = [f"| {esc(k)} | {num(_value(v))} |" for k, v in figures.items()]
        return "## Judge hygiene\n\n| figure | value |\n|---|---|\n" + "\n".join(rows) + "\n"
    rows = [f"| {esc(k)} | {num(_value(v))} | {esc(_note(v))} |" for k, v in figures.items()]
    return ("## Judge hygiene\n\n| figure | value | meaning |\n|---|---|---|\n"
            + "\n".join(rows) + "\n")


def _value(v):
    return v.get("value") if isinstance(v, dict) else v


def _note(v) -> str:
    return v.get("note", "") if isinstance(v, dict) else ""


def _limitations(facts: dict) -> str:
    o, counts = facts.get("oracle") or {}, facts.get("counts") or {}
    items = ["The labels are one oracle's opinion; LLM judges prefer longer answers and one "
             "position more often than people do (see the hygiene figures).",
             "The pairs are not a random sample: an acquisition rule chose the prompts and "
             "responses it expected to be most informative for its reward model.",
             "Ties are " + ("kept as rows with `tie` = true and margin 0." if counts.get("ties_kept")
                            else "left out of the rows (counted above).")]
    items += [LIMITS[key] for key in (o.get("name"), facts.get("format")) if key in LIMITS]
    if counts.get("self_labelled"):
        items.append("Rows with `judge` = \"head\" were labelled by the reward head, not the oracle.")
    return "## Limitations\n\n" + "\n".join(f"- {x}" for x in items) + "\n"


def _loading(facts: dict) -> str:
    repo = str(facts.get("repo_id") or "")
    load = (f'load_dataset("{repo}", split="train")' if _REPO_ID.match(repo)
            else 'load_from_disk("hf")  # the hf/ folder of the run')
    fn = "load_dataset" if _REPO_ID.match(repo) else "load_from_disk"
    trainer = TRAINERS.get(facts.get("format", "standard"), TRAINERS["standard"])
    body = (f"from datasets import {fn}\nfrom transformers import AutoModelForCausalLM, "
            f"AutoTokenizer\nfrom trl import {trainer[0]}, {trainer[1]}\n\n"
            f"BASE_MODEL = \"your/base-model\"  # the model to align\n"
            f"ds = {load}\nmodel = AutoModelForCausalLM.from_pretrained(BASE_MODEL)\n"
            f"tokenizer = AutoTokenizer.from_pretrained(BASE_MODEL)\n"
            f"trainer = {trainer[1]}(model=model, args={trainer[0]}(output_dir=\"out\"),\n"
            f"    train_dataset=ds, processing_class=tokenizer)\ntrainer.train()\n")
    note = ("`RewardTrainer` accepts the same rows and uses `margin`." if trainer[1] == "DPOTrainer"
            else "")
    return f"## How to load it\n\n```python\n{body}```\n{note}\n"


def _licence(facts: dict) -> str:
    lic = license_id(facts)
    text = (f"`{lic}`, the licence given with the input." if lic != "unknown" else
            "Unknown: no licence came with the input; check the licences of the prompts' "
            "source and of the models that wrote the responses before use.")
    note = f"\n\n{esc(facts['license_note'])}" if facts.get("license_note") else ""
    return f"## Licence\n\n{text}{note}\n"


def _get(facts: dict, key: str, sub: str):
    inner = facts.get(key)
    return inner.get(sub) if isinstance(inner, dict) else None
