"""The machinery under the configs: fields that carry their help, building a config from a
dict (a --config file, a run's config.json) with every value checked against its field's
type, and the range checks each config's `__post_init__` uses."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import field
from typing import Any

from aeuf.errors import ConfigError


def opt(default: Any, help: str, *, flag: str | None = None, cli: bool = True,
        choices: tuple[str, ...] | None = None) -> Any:
    """A config field with its help text. flag: the command-line name when it differs from the
    field's; cli=False: settable only from a --config file; choices: the valid values."""
    return field(default=default, metadata={"help": help, "flag": flag, "cli": cli,
                                            "choices": choices})


def sub(cls: type, help: str, *, prefix: str = "", hide: tuple[str, ...] = (),
        **defaults: Any) -> Any:
    """A nested config field; its flags get `prefix`, fields in `hide` get none, and
    `defaults` override the class's."""
    return field(default_factory=lambda: cls(**defaults),
                 metadata={"help": help, "prefix": prefix, "nested": cls, "defaults": defaults,
                           "hide": hide})


def to_dict(cfg: Any) -> dict:
    """A JSON-ready dict of a (nested) config dataclass; tuples become lists."""
    return dataclasses.asdict(cfg)


def nested_type(f: dataclasses.Field) -> type | None:
    """The config class of a nested field (`sub(...)`), else None."""
    return f.metadata.get("nested")


class SettingError(ConfigError):
    """A setting with a bad value: `key` (dotted path), the value, and why (one line)."""

    def __init__(self, key: str, value: Any, why: str, where: str = "config"):
        self.key, self.value, self.why, self.where = key, value, why, where
        super().__init__(f"{where}: {key} = {value!r}: {why}")

    def at(self, prefix: str, where: str) -> SettingError:
        """The same error one section further out."""
        return SettingError(prefix + self.key, self.value, self.why, where)


def from_dict(cls: type, data: dict, where: str = "config", path: str = "") -> Any:
    """Build `cls` from a dict, recursing into nested configs; unknown keys are errors, and
    so is a value of the wrong type (one line: the key, the value, the type expected)."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} for {cls.__name__}")
    kwargs = {}
    for name, value in data.items():
        inner = nested_type(known[name])
        key = f"{path}{name}"
        if inner is not None:
            if not isinstance(value, (dict, inner)):
                raise SettingError(key, value, "expected a section of settings", where)
            if isinstance(value, dict):
                base = known[name].metadata.get("defaults", {})
                value = from_dict(inner, {**base, **value}, where, f"{key}.")
        else:
            try:
                value = coerce(value, field_type(cls, name))
            except SettingError as err:
                raise err.at(key, where) from None
            choices = known[name].metadata.get("choices")
            if choices and value not in choices:
                raise SettingError(key, value, f"must be one of {', '.join(choices)}", where)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except SettingError as err:
        raise err.at(path, where) from None


TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def coerce(value: Any, tp: Any) -> Any:
    """`value` as type `tp` (int, float, str, bool, tuple[int, ...], each maybe `| None`);
    numbers written as text are read, "no"/"false" is False; anything else is an error."""
    base = base_type(tp)
    if value is None:
        if base is not tp:
            return None
        raise SettingError("", value, f"expected {_name(base)}")
    if typing.get_origin(base) is tuple:
        item = typing.get_args(base)[0]
        items = value.split(",") if isinstance(value, str) else value
        items = items if isinstance(items, (list, tuple)) else [items]
        return tuple(coerce(x.strip() if isinstance(x, str) else x, item)
                     for x in items if not (isinstance(x, str) and not x.strip()))
    out = _scalar(value, base)
    if out is None:
        raise SettingError("", value, f"expected {_name(base)}")
    return out


def _scalar(value: Any, base: Any) -> Any:
    """value as the scalar type `base`, or None when it is not one."""
    if base is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower() if isinstance(value, (str, int)) else ""
        return True if text in TRUE else False if text in FALSE else None
    if isinstance(value, bool):
        return None
    if base is int:
        if isinstance(value, float):
            return int(value) if value.is_integer() else None
        return _parse(value, int)
    if base is float:
        return float(value) if isinstance(value, (int, float)) else _parse(value, float)
    if base is str:
        return value if isinstance(value, str) else None
    return value


def _parse(value: Any, kind: type) -> Any:
    if isinstance(value, kind) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return kind(value.strip())
        except ValueError:
            return None
    return None


def _name(tp: Any) -> str:
    if typing.get_origin(tp) is tuple:
        return f"a list of {_name(typing.get_args(tp)[0])}s"
    return {int: "an integer", float: "a number", str: "a string",
            bool: "true or false"}.get(tp, str(tp))


def field_type(cls: type, name: str) -> Any:
    """The resolved type annotation of field `name` of `cls` (string annotations evaluated)."""
    return typing.get_type_hints(cls)[name]


def base_type(tp: Any) -> Any:
    """`int | None` -> int; other types unchanged."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def at_least(cfg: Any, low: float, *names: str, strict: bool = False) -> None:
    """SettingError naming the first field in `names` below `low` (or at it, with strict);
    None values pass."""
    for name in names:
        value = getattr(cfg, name)
        if value is not None and not (value > low or (not strict and value == low)):  # NaN too
            raise SettingError(name, value, f"must be {'above' if strict else 'at least'} "
                                            f"{low:g}")


def within(cfg: Any, low: float, high: float, *names: str) -> None:
    """SettingError naming the first field in `names` outside [low, high]; None passes."""
    for name in names:
        value = getattr(cfg, name)
        if value is not None and not low <= value <= high:
            raise SettingError(name, value, f"must be between {low:g} and {high:g}")


def one_of(cfg: Any, name: str, choices) -> None:
    """SettingError unless field `name` is one of `choices`."""
    value = getattr(cfg, name)
    if value not in choices:
        raise SettingError(name, value, f"must be one of {', '.join(map(str, choices))}")
