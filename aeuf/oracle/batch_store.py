"""The batch oracle's records on disk: <workdir>/batches/<shard>.json and <shard>.jsonl.

A record is written (atomically, fsync'd) before a batch is created and again with its id,
so a killed process finds its batches and polls them instead of paying for them twice.
This is the only file access of the oracle package.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


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
        path = self.folder / f"{shard}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def save(self, record: dict) -> None:
        """Write record["shard"].json atomically."""
        self._write(self.folder / f"{record['shard']}.json", json.dumps(record, indent=1))

    def write_shard(self, shard: str, lines: list[str]) -> Path:
        """The request lines of a shard as <shard>.jsonl; returns its path."""
        path = self.folder / f"{shard}.jsonl"
        self._write(path, "".join(line + "\n" for line in lines))
        return path

    def _write(self, path: Path, text: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
