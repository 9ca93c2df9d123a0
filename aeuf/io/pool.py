"""Read prompts, or a pool of prompts with candidate responses, from any table `read_table`
reads. Four layouts are recognised, first match wins (CONVENTION_ORDER):

  completions  a `completions` column of lists of {model, response[, overall_score|score]}
               records (ActiveUltraFeedback / UltraFeedback); the score is gold
  pair         `chosen` and `rejected` columns (text, or conversations whose last turn is
               the answer, or HH-RLHF transcripts when there is no prompt column): gold
               [1, 0], gold_kind "pair" (BAL-PM setting)
  long         one row per response (aeuf.io.long): `prompt_id` repeats across rows (or,
               without ids, the prompt text does) and there is a `response` column
  columns      one row per prompt; every other text column is a candidate response (AEPO),
               except metadata: META_COLUMNS, `*_id`, `<col>_model`, `<col>_score`,
               `score_<col>`; gold from a numeric `<col>_score` / `score_<col>`

Prompts: the `prompt` or `instruction` column (or --prompt_column), else a `messages` /
`conversations` column of OpenAI [{role, content}] or ShareGPT [{from, value}] turns
(aeuf.io.chat). For a conversation, `pool.prompts[p]` is its last user turn (what the
encoder and the judge see as the prompt) and `pool.messages[p]` keeps every turn before the
final assistant answer, roles normalised to user/assistant/system. A final assistant turn is
a response only where the table has no other (long layout without a `response` column);
elsewhere it is left out (UltraFeedback-binarized's `messages` repeats the chosen answer).

Missing vs empty responses: an empty response ("" or only whitespace) is a legitimate, bad
candidate and is kept. A missing one (null, NaN, an absent JSON key, a completions record
with a null response) is no response: its prompt simply has fewer. CSV/TSV cannot tell the
two apart (pandas reads an empty cell, quoted or not, as missing), so an empty CSV cell is
an empty response, unless its `<column>_model` cell is empty too (no model wrote anything:
the prompt has fewer responses). A response that is not text
(a number, a list, a record) is malformed: one line naming file, row and column.

Ragged pools: R = --num_responses, else the most common number of responses per prompt
(at least 2; ties -> the larger). Each prompt keeps its first R (in column / list / layout
order); prompts with fewer are skipped and their ids listed in `pool.skipped`.
"""

from __future__ import annotations

import pandas as pd

from aeuf.config import InputConfig
from aeuf.errors import ConfigError
from aeuf.io import cells, layouts, long  # noqa: F401  (layouts, long register conventions)
from aeuf.io.layouts import META_COLUMNS, is_meta_column, response_columns
from aeuf.io.long import CLIP, is_long, score_to_utility
from aeuf.io.ragged import CONVENTIONS, Convention, head, square, wide_prompts
from aeuf.io.tables import read_table
from aeuf.types import ResponsePool

CONVENTION_ORDER = ("completions", "pair", "long", "columns")

__all__ = [
    "CLIP", "CONVENTIONS", "CONVENTION_ORDER", "META_COLUMNS", "is_long", "is_meta_column",
    "pool_from_long", "read_pool", "read_prompts", "response_columns", "score_to_utility",
]


def read_prompts(path: str, prompt_column: str | None = None,
                 num_instructions: int | None = None) -> tuple[list[str], list[str]]:
    """The prompts of a table for `aeuf generate` -> (prompt_ids [P], prompts [P]); a
    conversation gives its last user turn."""
    _at_least(num_instructions, 1, "--num_instructions")
    df = head(read_table(path), num_instructions)
    wide = wide_prompts(df, path, cells.find_prompt_column(df, path, prompt_column))
    return wide.ids, wide.texts


def read_pool(cfg: InputConfig) -> ResponsePool:
    """The first num_instructions prompts with their first R responses each -> [P, R].

    Response ids are f"{prompt_id}:{slot}", the slot a column name (columns, pair), a
    position in the list (completions) or a model name (long). Prompts with fewer than R
    responses are left out and named in `pool.skipped`.
    """
    _at_least(cfg.num_instructions, 1, "--num_instructions")
    _at_least(cfg.num_responses, 2, "--num_responses")
    df = read_table(cfg.path)
    rows = _convention(df, cfg.prompt_column).build(df, str(cfg.path), cfg)
    return square(rows, cfg.num_responses, str(cfg.path))


def pool_from_long(df: pd.DataFrame, source: str = "", *,
                   num_responses: int | None = None) -> ResponsePool:
    """A long table (one row per response; see aeuf.io.long) -> ResponsePool [P, R]."""
    cfg = InputConfig(path=source, num_responses=num_responses)
    return square(CONVENTIONS.get("long").build(df.reset_index(drop=True), source, cfg),
                  num_responses, source)


def _at_least(n: int | None, low: int, flag: str) -> None:
    if n is not None and n < low:
        raise ConfigError(f"{flag} must be at least {low} (got {n})")


def _convention(df: pd.DataFrame, prompt_column: str | None) -> Convention:
    """The first convention in CONVENTION_ORDER that matches the table."""
    matching = (CONVENTIONS.get(n) for n in CONVENTION_ORDER)
    return next(c for c in matching if c.matches(df, prompt_column))  # "columns" matches all
