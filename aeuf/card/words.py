"""The dataset card's fixed words and its text helpers (aeuf.card renders the card from them).

The words: the default title, the Hub tags, annotator kinds and size buckets of the front
matter, what each exported column, count and oracle means, the limitations of some oracles and
formats, and the TRL trainer of each format. The helpers make input text, which is hostile,
inert in markdown: escaped (`esc`), one line (`esc_line`), an inline code span (`code_span`), a
fenced block (`code_block`), a number or "unknown" (`num`).
"""

from __future__ import annotations

import html
import re

TITLE = "Preference dataset built with aeuf"
TAGS = {"standard": ["dpo", "reward-modeling"], "conversational": ["dpo", "reward-modeling"],
        "kto": ["kto"]}
ANNOTATORS = {"replay": "found", "human": "expert-generated"}  # else machine-generated
SIZES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")]

COLUMN_HELP = {
    "prompt": "the prompt (a message list in the conversational format)",
    "chosen": "the preferred response", "rejected": "the other response",
    "completion": "one judged response", "label": "True: above its prompt's median score",
    "margin": "chosen_score - rejected_score (0 for a tie); TRL's RewardTrainer reads it",
    "tie": "the judged responses tied (kept only with --keep_ties)",
    "chosen_model": "the model that wrote `chosen` (null if unknown)",
    "rejected_model": "the model that wrote `rejected`", "completion_model": "its model",
    "chosen_score": "the oracle's score of `chosen`", "rejected_score": "of `rejected`",
    "score": "the oracle's score", "median_score": "its prompt's median judged score",
    "rule": "the acquisition rule that chose the pair", "round": "the labelling round",
    "uncertainty": "the head's pair uncertainty when it was chosen (NaN in round 0)",
    "acquisition_score": "the rule's score", "judge": "who labelled it (\"head\": self-labelled)",
    "confidence": "the labeller's confidence in chosen > rejected",
}

ORACLE_WORDS = {"replay": "the gold scores of the input (replayed)", "human": "a person",
                "local": "a local llama.cpp judge", "judge": "an LLM judge",
                "batch": "an LLM judge (batch API)",
                "reward_model": "a reward model (sequence classifier)"}
COUNT_WORDS = {"rows": "rows", "prompts": "labelled prompts with a row",
               "ties": "tied prompts (judged responses scored equal, or fewer than two scored)",
               "ties_kept": "tied prompts kept as rows (--keep_ties)",
               "desirable": "rows with label True", "undesirable": "rows with label False",
               "failed": "judged prompts without a usable answer",
               "self_labelled": "pairs labelled by the reward head, not the oracle"}

LIMITS = {
    "replay": "The labels replay gold scores that came with the input: they are only as good "
              "as those scores.",
    "local": "The local judge is a small model; its labels are close to noise unless it was "
             "pointed at a strong model.",
    "kto": "`label` compares a response with the median score of its prompt's judged "
           "responses; responses at the median have no row.",
}

TRAINERS = {"standard": ("DPOConfig", "DPOTrainer"), "conversational": ("DPOConfig", "DPOTrainer"),
            "kto": ("KTOConfig", "KTOTrainer")}


# --- input text made inert ------------------------------------------------------------------

_MD = re.compile(r"([\\`*_{}\[\]|#!])")


def esc(text, limit: int = 300) -> str:
    """Input text made inert in markdown: one line, at most `limit` characters, markdown and
    HTML characters escaped."""
    one = esc_line(text, limit)
    return _MD.sub(r"\\\1", html.escape(one, quote=False))


def code_span(text) -> str:
    """Input text as an inline code span (one line, no backticks; pipes escaped for tables)."""
    return "`" + esc_line(text).replace("`", "'").replace("|", "\\|") + "`"


def esc_line(text, limit: int = 300) -> str:
    one = " ".join(str(text).split())
    return one if len(one) <= limit else one[: limit - 1] + "\u2026"


def code_block(text: str) -> str:
    """`text` in a fenced block whose fence is longer than any backtick run inside it."""
    run = max((len(m) for m in re.findall(r"`+", str(text))), default=0)
    fence = "`" * max(3, run + 1)
    return f"{fence}\n{text}\n{fence}\n"


def num(v) -> str:
    """A number for the card (thousands separated, 4 significant digits); anything else
    escaped; None or NaN: "unknown"."""
    if v is None or (isinstance(v, float) and v != v):
        return "unknown"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return esc(v)
    return f"{v:,}" if isinstance(v, int) else f"{v:.4g}"
