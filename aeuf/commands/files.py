"""Settings files: a --config FILE (every setting, YAML/TOML/JSON) and judge files
(--judge FILE, --cheap_judge FILE: one judge's endpoint, model, template, prices and limits).

Both become the nested dict of the config their flags belong to; flags given on the
command line are merged over them (aeuf.commands.flags.build)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aeuf.commands.flags import RENAMED, Flag, merge, suggest
from aeuf.config import upgrade
from aeuf.errors import ConfigError


def read_config_file(path: str | None, flags: list[Flag], extras: tuple[str, ...] = ()) -> dict:
    """A --config file (YAML or TOML; JSON too) as the nested dict of the config.

    Keys are config sections (as in a run's config.json) or flat flag names; `extras` are
    command-level settings (e.g. no_progress) kept as they are at the top level."""
    if not path:
        return {}
    data = upgrade(_load_mapping(path, f"--config {path}"), f"--config {path}")
    kept = {k: data.pop(k) for k in extras if k in data}
    return {**_unflatten(data, flags, path, extras), **kept}


# a judge file names the environment variable of its key, never the key
SECRET_KEYS = ("api_key", "key", "token", "secret", "password", "authorization")


def read_judge_file(path: str, flags: list[Flag], role: str = "judge") -> dict:
    """A judge file (--judge FILE, --cheap_judge FILE): YAML/TOML/JSON whose keys are the
    names of the `--{role}_*` flags without that prefix (base_url, model, template, ...),
    as the nested dict of the config those flags belong to."""
    where = f"--{role} {path}"
    prefix = f"{role}_"
    by_key = {fl.name[len(prefix):]: fl.path for fl in flags if fl.name.startswith(prefix)}
    judge_only = {fl.name[len("judge_"):] for fl in flags if fl.name.startswith("judge_")}
    out: dict = {}
    shared = []
    for key, value in _load_mapping(path, where).items():
        if key not in by_key and key in judge_only:  # a judge's file used as the cheap one
            shared.append(key)
            continue
        if str(key).lower() in SECRET_KEYS:
            raise ConfigError(f"{where}: '{key}': a judge file never holds a key; name the "
                              f"environment variable that holds it with api_key_env")
        if key not in by_key:
            raise ConfigError(f"{where}: unknown setting '{key}' for a {role.replace('_', ' ')} "
                              f"file{suggest(str(key), by_key)} (keys: {', '.join(by_key)})")
        node = out
        for name in by_key[key][:-1]:
            node = node.setdefault(name, {})
        node[by_key[key][-1]] = value
    if shared:
        print(f"aeuf: {where}: {', '.join(shared)} left out: the cheap judge asks with the "
              f"judge's template and sampling", file=sys.stderr)
    return out


def add_judge_files(parser: argparse.ArgumentParser, cascade: bool) -> None:
    """--judge FILE (and --cheap_judge FILE for a cascade): a judge described by a file."""
    parser.add_argument("--judge", dest="judge_file", metavar="FILE", default=None,
                        help="the judge from a YAML/TOML file: its keys are the --judge_* flags' "
                             "names without 'judge_' (base_url, model, template, answer_format, "
                             "price_in, concurrency, ...; see judges/); flags override it")
    if cascade:
        parser.add_argument("--cheap_judge", dest="cheap_judge_file", metavar="FILE",
                            default=None, help="a cascade's cheap judge from a file (keys: the "
                                               "--cheap_judge_* flags' names without that "
                                               "prefix)")


def judge_files(args: argparse.Namespace, flags: list[Flag], file: dict) -> tuple[dict, list]:
    """`file` (a --config file's settings) under the judge files given by flags or by the
    config file's `judge:` / `cheap_judge:` keys, and those files' names (for errors)."""
    names = []
    for role in ("judge", "cheap_judge"):
        path = getattr(args, f"{role}_file", None) or file.pop(role, None)
        file.pop(role, None)
        if path is not None:
            if not isinstance(path, str):
                raise ConfigError(f"--config: {role}: expected the path of a judge file")
            file = merge(file, read_judge_file(path, flags, role))
            names.append(f"--{role} {path}")
    return file, names


def _load_mapping(path: str, where: str) -> dict:
    """The top-level mapping of a YAML/TOML/JSON settings file; one line if it has none."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{where}: no such file")
    try:
        data = _parse(p, p.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise ConfigError(f"{where}: not valid {p.suffix.lstrip('.') or 'YAML'} "
                          f"({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of settings at the top level")
    return data


def _parse(p: Path, text: str) -> Any:
    if p.suffix == ".toml":
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(str(err)) from None
    if p.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(str(err)) from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(str(err)) from None


def _unflatten(data: dict, flags: list[Flag], where: str, extras: tuple[str, ...] = ()) -> dict:
    """Flat flag names -> nested paths; sections (dicts) are kept as they are."""
    by_name = {fl.name: fl.path for fl in flags}
    sections = {fl.path[0] for fl in flags if len(fl.path) > 1}
    out: dict = {}
    for key, value in data.items():
        if isinstance(value, dict) and key in sections:
            out = merge(out, {key: value})
            continue
        if key not in by_name and RENAMED.get(key) in by_name:
            print(f"aeuf: --config {where}: '{key}' is renamed '{RENAMED[key]}' (the old name "
                  f"goes in the next release)", file=sys.stderr)
            key = RENAMED[key]
        if key not in by_name:
            raise ConfigError(f"--config {where}: unknown setting '{key}'"
                              f"{suggest(key, [*by_name, *extras])}")
        node = out
        path = by_name[key]
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = value
    return out
