"""Read a table of prompts/responses from CSV, JSONL, JSON, parquet, a `save_to_disk`
folder or a hub dataset id, into a pandas DataFrame with a 0-based RangeIndex.

Row numbers in messages are 1-based data rows, as a user counts them (the CSV header line
is not a row); JSON-lines errors name the line of the file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from aeuf.errors import InputError
from aeuf.registry import Registry

READERS: Registry[Callable[[Path], pd.DataFrame]] = Registry("table format")
HUB_TIMEOUT_S = 10.0
ID_COLUMNS = ("prompt_id", "id", "response_id")  # kept as text: "007" stays "007"
_HUB_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*(?::[\w.-]+)?$")
_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
             ".json": "json", ".parquet": "parquet", ".pq": "parquet"}


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """A local file or folder, or a hub dataset id (`owner/name[:split]`) -> DataFrame [rows].

    Raises InputError (one line naming the file) for a missing, empty or unreadable input.
    """
    p = Path(path)
    if p.is_dir():
        df = _read_saved_dataset(p)
    elif p.is_file():
        df = READERS.get(_format_of(p))(p)
    elif _looks_like_hub_id(str(path)):
        df = _read_hub(str(path))
    else:
        raise InputError(f"{path}: no such file or folder; check the path")
    if len(df) == 0:
        raise InputError(f"{path}: has no data rows; add rows or pick another file")
    return df.reset_index(drop=True)


def _format_of(p: Path) -> str:
    fmt = _SUFFIXES.get(p.suffix.lower())
    if fmt is None:
        raise InputError(
            f"{p}: unknown file type '{p.suffix}'; use .csv, .tsv, .jsonl, .json or .parquet")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: the file is empty; add a header and rows or pick another file")
    return fmt


def decode_text(p: Path) -> str:
    """The file's text as UTF-8 (a byte-order mark is dropped); other encodings raise."""
    data = p.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise InputError(
            f"{p}: line {line} is not valid UTF-8 (byte 0x{data[e.start]:02x}); "
            "re-save the file as UTF-8") from None


EMPTY_IS_TEXT = "empty_cells_are_text"  # df.attrs flag: an empty response cell is ""


def _read_delimited(p: Path, sep: str) -> pd.DataFrame:
    """A CSV/TSV table. Only empty cells are missing ("NA", "None" or "null" are text); a
    CSV cannot tell an empty cell from an empty string, so the readers of response columns
    take an empty cell as an empty response (a real, bad answer), flagged in df.attrs."""
    try:
        df = pd.read_csv(p, sep=sep, encoding="utf-8-sig", keep_default_na=False,
                         na_values=[""], dtype=dict.fromkeys(ID_COLUMNS, str))
        df.attrs[EMPTY_IS_TEXT] = True
        return df
    except UnicodeDecodeError:
        decode_text(p)  # raises the InputError naming the line
        raise
    except pd.errors.EmptyDataError:
        raise InputError(f"{p}: the file is empty; add a header and rows or pick another "
                         "file") from None
    except pd.errors.ParserError as e:
        raise InputError(f"{p}: not a readable {'CSV' if sep == ',' else 'TSV'} file "
                         f"({_first_line(e)}); fix the quoting or the column count") from None


@READERS.register("csv")
def _read_csv(p: Path) -> pd.DataFrame:
    return _read_delimited(p, ",")


@READERS.register("tsv")
def _read_tsv(p: Path) -> pd.DataFrame:
    return _read_delimited(p, "\t")


@READERS.register("jsonl")
def _read_jsonl(p: Path) -> pd.DataFrame:
    return _records_frame(p, _parse_lines(p, decode_text(p)))


@READERS.register("json")
def _read_json(p: Path) -> pd.DataFrame:
    text = decode_text(p)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":  # JSON lines saved as .json (common on the hub)
            return _records_frame(p, _parse_lines(p, text))
        raise InputError(f"{p}: line {e.lineno} is not valid JSON ({e.msg}); fix it") from None
    if isinstance(obj, dict) and len(obj) == 1 and isinstance(next(iter(obj.values())), list):
        obj = next(iter(obj.values()))  # {"data": [records]}
    if not isinstance(obj, list):
        raise InputError(f"{p}: expected a JSON list of records, got a {type(obj).__name__}")
    if _SURROGATE_ESCAPE.search(text):
        for n, row in enumerate(obj, 1):
            _check_unicode(row, f"{p}: record {n}")
    return _records_frame(p, obj)


@READERS.register("parquet")
def _read_parquet(p: Path) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(p).to_pandas()
    except (pa.ArrowException, OSError) as e:
        raise InputError(f"{p}: not a readable parquet file ({_first_line(e)})") from None


def _parse_lines(p: Path, text: str) -> list:
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise InputError(f"{p}: line {n} is not valid JSON ({e.msg}); fix or delete "
                             "that line") from None
        if _SURROGATE_ESCAPE.search(line):
            _check_unicode(rows[-1], f"{p}: line {n}")
    return rows


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # a JSON escape of a UTF-16 surrogate


def _check_unicode(obj, where: str, key: str | None = None) -> None:
    """InputError when a string in `obj` holds a lone surrogate (a JSON "\\ud800" without
    its pair decodes to text no file format can store)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            _check_unicode(v, where, str(k))
    elif isinstance(obj, list):
        for v in obj:
            _check_unicode(v, where, key)
    elif isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError as e:
            column = f", column '{key}'" if key is not None else ""
            raise InputError(f"{where}{column}: holds a lone surrogate "
                             f"(\\u{ord(obj[e.start]):04x}), which is not text; remove it or "
                             "write the character it stands for") from None


def _records_frame(p: Path, rows: list) -> pd.DataFrame:
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise InputError(f"{p}: row {n} is a {type(row).__name__}, not a record "
                             "({\"column\": value, ...}); fix that row")
    if not rows:
        raise InputError(f"{p}: has no data rows; add rows or pick another file")
    return pd.DataFrame.from_records(rows)


def _read_saved_dataset(p: Path) -> pd.DataFrame:
    """A `datasets.save_to_disk` folder (a Dataset, or a DatasetDict: its 'train' split)."""
    if not ((p / "state.json").exists() or (p / "dataset_dict.json").exists()):
        raise InputError(f"{p}: is a folder but not a datasets.save_to_disk folder; "
                         "give a file or a folder written by save_to_disk")
    import datasets

    ds = datasets.load_from_disk(str(p))
    if isinstance(ds, datasets.DatasetDict):
        ds = _pick_split(str(p), ds, None)
    return ds.to_pandas()


def _pick_split(name: str, dd, split: str | None):
    splits = list(dd.keys())
    if split is None:
        split = "train" if "train" in splits or len(splits) != 1 else splits[0]
    if split not in splits:
        raise InputError(f"{name}: has no split '{split}' (splits: {', '.join(splits)}); "
                         f"name one as {name.split(':')[0]}:SPLIT")
    return dd[split]


def _looks_like_hub_id(s: str) -> bool:
    return bool(_HUB_ID.match(s)) and Path(s.split(":")[0]).suffix.lower() not in _SUFFIXES


def hub_offline() -> bool:
    """True when the hub must not be contacted (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE set)."""
    flags = (os.environ.get(v, "") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    return any(f.strip().lower() in {"1", "true", "yes", "on"} for f in flags)


def _read_hub(spec: str) -> pd.DataFrame:
    """`owner/name[:split]` from the hub; offline or unreachable -> one-line InputError."""
    repo, _, split = spec.partition(":")
    if hub_offline():
        raise InputError(f"{spec}: no such local file or folder, and the hub is off "
                         "(HF_HUB_OFFLINE=1); check the path, or unset HF_HUB_OFFLINE")
    _probe_hub(spec, repo)
    import datasets

    if split:
        return datasets.load_dataset(repo, split=split).to_pandas()
    return _pick_split(spec, datasets.load_dataset(repo), None).to_pandas()


def _probe_hub(spec: str, repo: str) -> None:
    """Ask the hub about `repo` with a short timeout, so no network means a quick error."""
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError

    api = huggingface_hub.HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None)
    try:
        api.dataset_info(repo, timeout=HUB_TIMEOUT_S)
    except HfHubHTTPError as e:
        raise InputError(f"{spec}: not a local path, and the hub has no dataset '{repo}' "
                         f"({_first_line(e)}); check the name") from None
    except network_errors() as e:
        raise InputError(f"{spec}: not a local path, and the hub cannot be reached "
                         f"({type(e).__name__}); check the path or your network") from None


def network_errors() -> tuple[type[BaseException], ...]:
    """Connection/timeout error classes of whichever HTTP clients huggingface_hub uses."""
    import importlib

    errors: list[type[BaseException]] = [OSError]
    for module, name in (("httpx2", "TransportError"), ("httpx", "TransportError"),
                         ("requests", "RequestException")):
        try:
            errors.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
