"""Tolerant JSON records: dataclasses that read what other versions wrote.

Bots and workers of two versions share one Redis during a rolling upgrade, so
a reader must accept a record from the future (fields it does not know) and
one from the past (fields missing). `load(cls, data)`:

* ignores no field silently: fields this version does not know are kept in
  the instance's `unknown` dict and written back by `dump`, so an older
  worker that updates a newer bot's record does not strip what it cannot read;
* gives a missing field its default;
* builds nested records, enums and lists of records from their type hints;
  an enum value this version does not know (a newer job kind) stays a plain
  string, for the reader to refuse clearly.

A record class is a dataclass with a field
`unknown: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)`.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")

UNKNOWN = "unknown"


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(options[0], value) if len(options) == 1 else value
    if origin in (list, tuple, frozenset, set):
        args = typing.get_args(hint)
        item = args[0] if args else Any
        items = [_convert(item, v) for v in value]
        return origin(items) if origin is not list else items
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint):
            return load(hint, value) if isinstance(value, dict) else value
        if issubclass(hint, enum.Enum):
            try:
                return hint(value)
            except ValueError:
                return value  # a kind or state from a newer version: kept as its text
        if hint is float and isinstance(value, int):
            return float(value)
    return value


def load(cls: type[T], data: dict[str, Any]) -> T:
    """An instance of the dataclass `cls` from `data`, tolerantly (see the module doc)."""
    hints = _hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    unknown: dict[str, Any] = {}
    for key, value in data.items():
        if key in known and key != UNKNOWN:
            kwargs[key] = _convert(hints[key], value)
        else:
            unknown[key] = value
    if UNKNOWN in known:
        kwargs[UNKNOWN] = unknown
    return cls(**kwargs)


def dump(record: Any) -> dict[str, Any]:
    """The JSON-ready dict of a record, with what a newer version wrote put back."""
    out: dict[str, Any] = dict(getattr(record, UNKNOWN, None) or {})
    for f in dataclasses.fields(record):
        if f.name == UNKNOWN:
            continue
        out[f.name] = _plain(getattr(record, f.name))
    return out


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dump(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple | frozenset | set):
        items = [_plain(v) for v in value]
        return sorted(items) if isinstance(value, frozenset | set) else items
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
