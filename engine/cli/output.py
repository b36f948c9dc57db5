"""Printing results: JSON for scripts, aligned tables and short values for people."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import operator
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any, TextIO

from engine.model import RestoreWindow, iso
from engine.units import short_duration


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums and datetimes as plain JSON values."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, RestoreWindow):
        return {"region": value.region, "role": value.role.value,
                "start": iso(value.start) if value.start else None,
                "end": iso(value.end) if value.end else None,
                "intervals": [{"start": iso(r.start), "end": iso(r.end)}
                              for r in value.intervals]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def print_json(value: Any, out: TextIO) -> None:
    json.dump(to_jsonable(value), out, indent=2, sort_keys=False)
    out.write("\n")


class Record:
    """A dataclass printed as its fields followed by more entries (properties a reader of the
    JSON wants too): ``{**to_jsonable(value), **extra}`` for json_text, without the dict."""

    __slots__ = ("extra", "value")

    def __init__(self, value: Any, extra: dict[str, Any]) -> None:
        self.value = value
        self.extra = extra


_encode_str = json.encoder.encode_basestring_ascii  # what json.dumps uses (ensure_ascii)


class _Breaks(dict[int, str]):
    """The line break and indent before an entry at each depth, made when first asked for
    (a lookup is then a dict's, in C)."""

    def __missing__(self, depth: int) -> str:
        text = self[depth] = "\n" + "  " * depth
        return text


_BREAKS = _Breaks()


def _float_text(value: float) -> str:
    """json.dumps' float: repr, and JavaScript's names for what JSON lacks (allow_nan)."""
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def json_text(value: Any) -> str:
    """``json.dumps(to_jsonable(value), indent=2)``, the same text, made in one pass without
    the intermediate dicts. json.dumps uses its C encoder only without an indent; its Python
    one spends some 10 µs per value, and `btar status --json` of a thousand services is
    60,000 values. Plain values are written where they are met, not through a call each,
    and what is made once (a datetime's text, an object's keys with their indent) is
    looked up in a dict that makes it when it is missing: a hit costs no Python call."""
    parts: list[str] = []
    _write(value, 0, parts)
    return "".join(parts)


class _Moments(dict[datetime, str]):
    """The JSON text of a datetime, by its instant (equal instants have one UTC text): a
    status names the same few moments thousands of times, and iso() is a conversion and two
    copies. At most _MOMENTS_KEPT are kept."""

    def __missing__(self, moment: datetime) -> str:
        if len(self) >= _MOMENTS_KEPT:
            self.clear()
        text = self[moment] = _encode_str(iso(moment))
        return text


_MOMENTS_KEPT = 8192
_MOMENTS = _Moments()
_moment_text = _MOMENTS.__getitem__
#: a datetime's JSON text, as json_text writes it (made once per instant)
moment_text: Callable[[datetime], str] = _moment_text

#: the JSON text of a plain value, by its exact type (as to_jsonable leaves it): C functions
#: but for floats, so that the loops below call no Python function for most values
_SCALARS: dict[type, Callable[[Any], str]] = {
    str: _encode_str, int: int.__repr__, float: _float_text,
    bool: {True: "true", False: "false"}.__getitem__, type(None): {None: "null"}.__getitem__,
    datetime: _moment_text,
}

Writer = Callable[[Any, int, list[str]], None]


def _enum_scalar(kind: type[Enum]) -> Callable[[Any], str] | None:
    """The text of each member of an enum whose values are plain (to_jsonable gives its
    value), registered in _SCALARS when the enum is first met: a status names a handful
    of states and roles some 10,000 times."""
    texts: dict[Any, str] = {}
    for member in kind:
        scalar = _SCALARS.get(type(member.value))
        if scalar is None:
            return None
        texts[member] = scalar(member.value)
    _SCALARS[kind] = texts.__getitem__
    return _SCALARS[kind]


def _write(value: Any, depth: int, parts: list[str]) -> None:
    kind = type(value)
    scalar = _SCALARS.get(kind)
    if scalar is not None:
        parts.append(scalar(value))
        return
    writer = _WRITERS.get(kind)
    if writer is not None:
        writer(value, depth, parts)
    elif kind is dict:
        _write_pairs(value, depth, parts)
    elif kind is list or kind is tuple:
        _write_items(value, depth, parts)
    elif kind is Record:
        fields = _fields_of(type(value.value))
        assert fields is not None, "a Record holds a dataclass"
        names, read = fields
        extra = value.extra
        _write_fields(value.value, depth, parts, keys=(*names, *extra), read=read,
                      extra=extra)
    else:
        fields = _fields_of(kind)
        if fields is not None:
            names, read = fields
            _WRITERS[kind] = writer = functools.partial(_write_fields, keys=names, read=read)
            writer(value, depth, parts)
            return
        scalar = _enum_scalar(kind) if isinstance(value, Enum) else None
        if scalar is not None:
            parts.append(scalar(value))
            return
        plain = to_jsonable(value)
        if plain is not value:
            _write(plain, depth, parts)
        elif isinstance(value, str | int | float):  # a subclass json.dumps writes as its base
            base = str if isinstance(value, str) else int if isinstance(value, int) else float
            parts.append(_SCALARS[base](value))
        else:  # to_jsonable knows it not, and neither does json.dumps
            raise TypeError(f"Object of type {kind.__name__} is not JSON serializable")


#: a dataclass's fields' names, and what reads their values as one tuple
Fields = tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]


def _fields_of(kind: type) -> Fields | None:
    """The fields of a dataclass; None for a type to_jsonable turns into something else
    (datetimes, enums, windows, ...)."""
    fields = _FIELDS.get(kind)
    if fields is None:
        if issubclass(kind, datetime | Enum | RestoreWindow | type) \
                or not dataclasses.is_dataclass(kind):
            return None
        names = tuple(f.name for f in dataclasses.fields(kind))
        fields = _FIELDS[kind] = (names, _reader(names))
    return fields


def _reader(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The values of these attributes as one tuple: read in C (attrgetter) for several."""
    if len(names) > 1:
        return operator.attrgetter(*names)
    return lambda value: tuple(getattr(value, name) for name in names)


#: per dataclass type, its fields, found once
_FIELDS: dict[type, Fields] = {}


class _Heads(dict[tuple[tuple[str, ...], int], tuple[str, ...]]):
    """Per (keys of an object, depth): the text before each value ('{' or ',', the line
    break and indent, the key), made when first asked for."""

    def __missing__(self, key: tuple[tuple[str, ...], int]) -> tuple[str, ...]:
        keys, depth = key
        inner = _BREAKS[depth + 1]
        heads = self[key] = tuple(("{" if index == 0 else ",") + inner + _encode_str(name)
                                  + ": " for index, name in enumerate(keys))
        return heads


_HEADS = _Heads()


def _write_fields(value: Any, depth: int, parts: list[str], *, keys: tuple[str, ...],
                  read: Callable[[Any], tuple[Any, ...]],
                  extra: dict[str, Any] | None = None) -> None:
    """A dataclass's fields (``read``), then ``extra``'s entries (``keys``: the names of
    both), without a dict or a list of pairs made for it."""
    if not keys:
        parts.append("{}")
        return
    scalars = _SCALARS
    items = read(value)
    if extra:
        items = (*items, *extra.values())
    for head, item in zip(_HEADS[(keys, depth)], items, strict=True):
        scalar = scalars.get(type(item))
        if scalar is not None:
            parts.append(head + scalar(item))
        else:
            parts.append(head)
            _write(item, depth + 1, parts)
    parts.append(_BREAKS[depth] + "}")


_WINDOW_KEYS = ("region", "role", "start", "end", "intervals")
_RANGE_KEYS = ("start", "end")


def _write_window(window: RestoreWindow, depth: int, parts: list[str]) -> None:
    """to_jsonable's RestoreWindow, written without its dict: a status holds a window per
    region."""
    heads = _HEADS[(_WINDOW_KEYS, depth)]
    intervals = window.intervals
    # the role's _value_ (what .value gives, without the enum property's Python call)
    parts.append(heads[0] + _encode_str(window.region) + heads[1]
                 + _encode_str(window.role._value_) + heads[2]
                 + (_moment_text(intervals[0].start) if intervals else "null") + heads[3]
                 + (_moment_text(intervals[-1].end) if intervals else "null") + heads[4])
    if not intervals:
        parts.append("[]" + _BREAKS[depth] + "}")
        return
    inner = _BREAKS[depth + 2]
    ranges = _HEADS[(_RANGE_KEYS, depth + 2)]
    close = _BREAKS[depth + 2] + "}"
    lead = "[" + inner
    for piece in intervals:
        parts.append(lead + ranges[0] + _moment_text(piece.start) + ranges[1]
                     + _moment_text(piece.end) + close)
        lead = "," + inner
    parts.append(_BREAKS[depth + 1] + "]" + _BREAKS[depth] + "}")


#: the writer of a type met before, by its exact type: dataclasses (their fields), windows
_WRITERS: dict[type, Writer] = {RestoreWindow: _write_window}


def _write_pairs(pairs: dict[Any, Any], depth: int, parts: list[str]) -> None:
    if not pairs:
        parts.append("{}")
        return
    inner = _BREAKS[depth + 1]
    lead = "{" + inner
    scalars = _SCALARS
    for key, item in pairs.items():
        head = lead + _encode_str(str(key)) + ": "
        scalar = scalars.get(type(item))
        if scalar is not None:
            parts.append(head + scalar(item))
        else:
            parts.append(head)
            _write(item, depth + 1, parts)
        lead = "," + inner
    parts.append(_BREAKS[depth] + "}")


def _write_items(items: list[Any] | tuple[Any, ...], depth: int, parts: list[str]) -> None:
    if not items:
        parts.append("[]")
        return
    inner = _BREAKS[depth + 1]
    lead = "[" + inner
    scalars = _SCALARS
    for item in items:
        scalar = scalars.get(type(item))
        if scalar is not None:
            parts.append(lead + scalar(item))
        else:
            parts.append(lead)
            _write(item, depth + 1, parts)
        lead = "," + inner
    parts.append(_BREAKS[depth] + "]")


def table(rows: list[list[str]], out: TextIO) -> None:
    if not rows:
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")


duration = short_duration


def when(moment: datetime | None) -> str:
    return iso(moment.replace(microsecond=0)) if moment else "-"


def json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def service_and_json(parser: argparse.ArgumentParser) -> None:
    """The arguments of a command about one service that can print JSON."""
    parser.add_argument("service")
    json_flag(parser)
