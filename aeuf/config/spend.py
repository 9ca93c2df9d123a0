"""What a run may spend, and whether it spends at all: the loop's and the ledger's settings
(`--max_cost`, `--max_requests`, `--retry_unparsable`, `--dry_run`), apart from the oracle's.

Until 0.2 these lived in the oracle's config (`oracle: {max_cost: ...}` in a --config file
and in a run's config.json). MOVED maps those old places to the new ones: `upgrade` reads
an old layout (with a one-line note for a --config file, for one release; silently for an
old run's config.json, so it still resumes).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from aeuf.config.fields import at_least, opt


@dataclass(frozen=True, kw_only=True)
class SpendConfig:
    max_cost: float | None = opt(None, "stop cleanly before spending more than this (USD)")
    max_requests: int | None = opt(None, "stop cleanly after this many requests")
    retry_unparsable: bool = opt(False, "ask again for paid answers that had no parsable "
                                        "verdict (they are final otherwise)")
    retry_unanswered: bool = opt(False, "ask again for requests an earlier run sent without "
                                        "logging an answer (killed or crashed mid-request): "
                                        "they may have been paid, so they are not sent again "
                                        "otherwise")
    dry_run: bool = opt(False, "print the cost plan (requests, estimated tokens, cost, "
                               "batch shards) and stop: nothing is sent or written")

    def __post_init__(self):
        at_least(self, 0, "max_cost", "max_requests")


# old dotted key -> new dotted key (config sections of RunConfig)
MOVED = {f"oracle.{k}": f"spend.{k}" for k in ("max_cost", "max_requests", "retry_unparsable",
                                               "dry_run")}


def upgrade(data: dict, where: str | None = None) -> dict:
    """`data` (a nested config dict) with the MOVED keys at their new places (a value given
    at the new place wins). where: names the file in a one-line note on stderr (None: no
    note). The input is not changed."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for old, new in MOVED.items():
        (sec, key), (nsec, nkey) = old.split("."), new.split(".")
        if not isinstance(out.get(sec), dict) or key not in out[sec]:
            continue
        value = out[sec].pop(key)
        target = out.setdefault(nsec, {})
        if isinstance(target, dict):
            target.setdefault(nkey, value)
        if where is not None:
            print(f"aeuf: {where}: '{old}' is now '{new}' (the old place goes in the next "
                  f"release)", file=sys.stderr)
    return out
