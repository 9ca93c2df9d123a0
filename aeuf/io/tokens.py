"""The web oracle's annotator tokens, kept in the run folder so that a rerun of the same
command prints the same links (a link sent to an annotator keeps working after a restart).

    <run>/web_tokens.json   {"annotator1": "<token>", ...}, mode 0600 (the links' secrets;
                            not API keys: they only open this run's page)

A name missing from the file (more --annotators than before) gets a new random token; the
file is rewritten atomically, never half-written.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from aeuf.errors import InputError
from aeuf.io.atomic import atomic_write

TOKENS_FILE = "web_tokens.json"


def annotator_tokens(folder: Path, names: Sequence[str]) -> dict[str, str]:
    """{name: token} for every name, the stored token where there is one."""
    path = Path(folder) / TOKENS_FILE
    stored = _read(path)
    tokens = {n: stored.get(n) or secrets.token_urlsafe(18) for n in names}
    if any(n not in stored for n in names):
        _write(path, {**stored, **tokens})
    return tokens


def _read(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read the annotators' tokens ({err}); delete it to "
                         "make new links (the old links stop working)") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) and v for v in data.values()):
        raise InputError(f"{path}: not a name -> token object; delete it to make new links "
                         "(the old links stop working)")
    return data


def _write(path: Path, tokens: dict[str, str]) -> None:
    def write(tmp: Path) -> None:
        os.chmod(tmp, 0o600)  # before the secrets go in
        tmp.write_text(json.dumps(tokens, indent=1) + "\n", encoding="utf-8")

    atomic_write(path, write)
