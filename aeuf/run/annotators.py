"""What an oracle with annotator links (Capabilities.links: --oracle web) needs from the run
folder: each annotator's token (aeuf.io.tokens: the same links after a rerun) and the answers
already in the ledger (so that nobody gets a second vote on a pair they answered before a
restart)."""

from __future__ import annotations

from pathlib import Path

from aeuf import io
from aeuf.config import OracleConfig
from aeuf.oracle import capabilities
from aeuf.oracle.web import annotator_names


def link_options(cfg: OracleConfig, out: Path, box: dict, *, has_gold: bool) -> dict:
    """make_oracle's options for a links oracle ({} for any other): tokens, and earlier()
    reading box["ledger"] once the caller has opened it."""
    if not capabilities(cfg, has_gold=has_gold).links:
        return {}
    tokens = io.annotator_tokens(out, annotator_names(cfg.web.annotators))
    return {"tokens": tokens, "earlier": lambda: _answers(box)}


def _answers(box: dict) -> list:
    ledger = box.get("ledger")
    return [] if ledger is None else list(ledger.answers.values())
