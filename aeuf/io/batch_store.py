"""The batch oracle's records on disk: <workdir>/batches/<shard>.json and <shard>.jsonl.

A record is written (atomically, fsync'd) before a batch is created and again with its id,
so a killed process finds its batches and polls them instead of paying for them twice.
The batch oracle (aeuf.oracle.batch) reads and writes its files only through this class.
"""

from __future__ import annotations

import json
from pathlib import Path

from aeuf.io.atomic import atomic_write_bytes, atomic_write_text


class BatchStore:
    """Shard files and batch records under one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def records(self) -> list[dict]:
        """Every record, oldest shard name first."""
        if not self.folder.is_dir():
            return []
        return [json.loads(p.read_text()) for p in sorted(self.folder.glob("*.json"))]

    def get(self, shard: str) -> dict | None:
        """The record of one shard, or None if none was saved."""
        path = self.folder / f"{shard}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def save(self, record: dict) -> None:
        """Write record["shard"].json atomically."""
        atomic_write_text(self.folder / f"{record['shard']}.json", json.dumps(record, indent=1))

    def write_shard(self, shard: str, lines: list[str]) -> tuple[str, bytes]:
        """The request lines of a shard, written as <shard>.jsonl; returns (file name,
        file bytes) as the Files API upload takes them."""
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        path = atomic_write_bytes(self.folder / f"{shard}.jsonl", data)
        return path.name, data
