"""Export a preference table as preferences.jsonl, preferences.parquet and hf/ (a
`datasets.save_to_disk` folder with the dataset card as hf/README.md), optionally pushed to
the hub (card first, then the data: `push_to_hub` keeps the card's text and adds its own
metadata to the card's YAML)."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aeuf.config import ExportConfig
from aeuf.errors import AeufError
from aeuf.io.atomic import TMP_MARK, fsync_dir, json_floats, replace_dir
from aeuf.io.jsonl import encoded, lines
from aeuf.io.tables import hub_offline, network_errors

EXPORT_NAMES = {"jsonl": "preferences.jsonl", "parquet": "preferences.parquet", "hf": "hf"}
CARD_NAME = "README.md"  # the dataset card, inside hf/
LINES_BLOCK = 65_536  # JSON lines per string written (the text of one block is held at once)
_ENCODER = json.JSONEncoder(ensure_ascii=False)  # what json.dumps(..., ensure_ascii=False) uses
_PLAIN = {str, int, bool, type(None)}  # cell types that are JSON values as they are


def write_preferences(df: pd.DataFrame, output_dir: Path, cfg: ExportConfig,
                      card: str | None = None) -> dict[str, Path]:
    """Write `df` [M rows] in three formats -> {"jsonl", "parquet", "hf"[, "card"]}: paths.

    All three (and `card`, the dataset card's markdown, as hf/README.md) are built in a temp
    folder inside `output_dir` and then renamed into place, so a failure leaves the previous
    export (or none) and no partial file. NaN becomes null in JSON lines. With
    `cfg.push_to_hub` (a repo id) the card and the data are pushed after the local files.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_exports(out)
    df = df.reset_index(drop=True)
    tmp = Path(tempfile.mkdtemp(dir=out, prefix=f".export{TMP_MARK}"))
    try:
        _write_all(df, tmp, card)
        paths = {kind: out / name for kind, name in EXPORT_NAMES.items()}
        for kind in ("jsonl", "parquet"):
            os.replace(tmp / EXPORT_NAMES[kind], paths[kind])
        replace_dir(tmp / "hf", paths["hf"])
        fsync_dir(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if card is not None:
        paths["card"] = paths["hf"] / CARD_NAME
    if cfg.push_to_hub:
        push(paths["hf"], cfg.push_to_hub)
    return paths


def remove_stale_exports(out: Path) -> None:
    """Delete what a killed export left in `out` (.export.tmp-* folders, .hf.tmp-old). Call
    only while holding the run's lock: then no other export is writing there."""
    for path in Path(out).glob(f".*{TMP_MARK}*"):
        if path.name.startswith((".export", f".{EXPORT_NAMES['hf']}")) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def remove_preferences(out: Path) -> None:
    """Delete an earlier export (preferences.*, hf/) and stale temp folders, so a run that
    exports nothing leaves no dataset of another run beside its report."""
    out = Path(out)
    remove_stale_exports(out)
    for kind, name in EXPORT_NAMES.items():
        path = out / name
        if kind == "hf" and path.is_dir():
            shutil.rmtree(path)
        elif path.is_file():
            path.unlink()
    fsync_dir(out)


def _write_all(df: pd.DataFrame, folder: Path, card: str | None) -> None:
    """The three formats (and the card) into `folder`, each file fsync'd."""
    import datasets

    jsonl = folder / EXPORT_NAMES["jsonl"]
    with open(jsonl, "w", encoding="utf-8") as f:
        for text in json_lines(df):
            f.write(text)
        f.flush()
        os.fsync(f.fileno())
    df.to_parquet(folder / EXPORT_NAMES["parquet"], index=False)
    _fsync_file(folder / EXPORT_NAMES["parquet"])
    ds = datasets.Dataset.from_pandas(df, preserve_index=False)
    was_off = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # the CLI shows its own progress; no bar per export
    try:
        ds.save_to_disk(str(folder / EXPORT_NAMES["hf"]))
    finally:
        if not was_off:
            datasets.enable_progress_bars()
    if card is not None:
        _write_text(folder / EXPORT_NAMES["hf"] / CARD_NAME, card)


def push(hf_dir: Path, repo_id: str) -> None:
    """Upload a save_to_disk folder to the hub as `repo_id`, its README.md (the card) first;
    problems -> one-line AeufError."""
    if hub_offline():
        raise AeufError(f"--push_to_hub {repo_id}: the hub is off (HF_HUB_OFFLINE=1); the "
                        f"dataset is saved in {hf_dir}, push it later with network access")
    import datasets
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    card = hf_dir / CARD_NAME
    try:
        if card.is_file():
            api = HfApi()
            api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
            api.upload_file(path_or_fileobj=str(card), path_in_repo=CARD_NAME, repo_id=repo_id,
                            repo_type="dataset", commit_message="Dataset card (aeuf)")
        datasets.load_from_disk(str(hf_dir)).push_to_hub(repo_id)
    except (HfHubHTTPError, ValueError, *network_errors()) as e:
        raise AeufError(f"--push_to_hub {repo_id}: upload failed ({str(e).splitlines()[0]}); "
                        f"the dataset is saved in {hf_dir}") from None


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def json_lines(df: pd.DataFrame, block: int = LINES_BLOCK) -> Iterator[str]:
    """The JSON lines of `df`, `block` rows per string: for every row of json_records(df),
    exactly json.dumps(row, ensure_ascii=False) + "\\n", but each value is encoded once, a
    column at a time (aeuf.io.jsonl.lines)."""
    names = [str(c) for c in df.columns]
    repeated = len(set(names)) < len(names)  # then a row's dict keeps one value per name
    for lo in range(0, len(df), block):
        part = df.iloc[lo:lo + block]
        if repeated:
            yield "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in json_records(part))
        elif part.shape[1]:
            yield lines(names, [encoded(_json_column(part.iloc[:, i]), _ENCODER.encode)
                                for i in range(part.shape[1])])


def json_records(df: pd.DataFrame) -> Iterator[dict]:
    """The rows of `df` as plain JSON dicts: _jsonable of each to_dict("records") row, made a
    column at a time (numeric columns in numpy); json_lines writes them."""
    names = [str(c) for c in df.columns]
    for row in zip(*(_json_column(df.iloc[:, i]) for i in range(df.shape[1])), strict=True):
        yield dict(zip(names, row, strict=True))


def _json_column(s: pd.Series) -> list:
    """One column's values as _jsonable makes them: floats (NaN/inf -> None), ints and bools
    unwrapped in numpy; any other dtype value by value."""
    kind = s.dtype.kind if isinstance(s.dtype, np.dtype) else "O"
    if kind == "f":
        return json_floats(s.to_numpy())
    if kind in "iub":
        return s.to_numpy().tolist()
    values = s.tolist()
    if set(map(type, values)) <= _PLAIN:  # _jsonable would return each as it is
        return values
    return [_jsonable(x) for x in values]


def _jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars/arrays unwrapped, NaN/inf -> None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value

