"""`btar status --json` writes its document with engine.cli.output.json_text (json.dumps with
an indent runs its pure-Python encoder, a third of the command at a thousand services): the
text must be exactly what print_json writes, ``json.dumps(to_jsonable(value), indent=2)``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum, IntEnum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.api.values import Fault, LaneBacklog, RegionStatus, ServiceState, ServiceStatus
from engine.cli.output import Record, json_text, to_jsonable
from engine.model import RegionRole, RegionState, RestoreWindow, TimeRange

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


class Colour(Enum):
    RED = "red"
    SHADE = 0.5


class Rank(IntEnum):
    LOW = 1


class Count(int):
    def __repr__(self) -> str:
        return f"Count({int(self)})"


class Name(str):
    pass


class Ratio(float):
    pass


@dataclass(frozen=True)
class Inner:
    moment: datetime
    colour: Colour
    rank: Rank
    note: str = "ünïcödé \"quoted\"\n\ttabbed \x00"


@dataclass
class Outer:
    inner: Inner
    items: list[Any] = field(default_factory=list)
    table: dict[Any, Any] = field(default_factory=dict)
    pair: tuple[int, ...] = ()
    nothing: None = None


def _printed(value: Any) -> str:
    return json.dumps(to_jsonable(value), indent=2, sort_keys=False)


@pytest.mark.parametrize("value", [
    None, True, False, 0, -7, 2**70, 0.0, -0.0, 1e-07, 3.3656029650434496, float("nan"),
    float("inf"), float("-inf"), "", "plain", "\u2028 and \U0001f600", [], {}, (), [[]], {"a": {}},
    {1: "int key", None: "none key", 2.5: "float key"}, [1, [2, [3, {"deep": [4]}]]],
    T0, T0 + timedelta(microseconds=5), ServiceState.PAUSED, Colour.SHADE, Rank.LOW,
    Count(5), Name("named"), Ratio(0.25), {"n": [Count(1), Name("x"), Ratio(float("inf"))]},
    RestoreWindow("aws-eu-west-1", RegionRole.PRIMARY, (TimeRange(T0, T0 + timedelta(hours=1)),)),
    Outer(Inner(T0, Colour.RED, Rank.LOW), [Inner(T0, Colour.SHADE, Rank.LOW), None, 1.5],
          {"k": (1, 2), "e": Colour.RED}, (3, 4)),
], ids=repr)
def test_json_text_writes_what_print_json_writes(value: Any) -> None:
    assert json_text(value) == _printed(value)


@pytest.mark.parametrize("value", [Inner, object(), {"nested": [{1, 2}]}],
                         ids=["a class", "an object", "a set inside"])
def test_json_text_refuses_what_json_dumps_refuses(value: Any) -> None:
    with pytest.raises(TypeError, match="is not JSON serializable"):
        _printed(value)
    with pytest.raises(TypeError, match="is not JSON serializable"):
        json_text(value)


def test_json_text_nests_deeper_than_its_first_indents() -> None:
    value: Any = "leaf"
    for depth in range(40):
        value = [value] if depth % 2 else {"level": value}
    assert json_text(value) == _printed(value)


def test_a_record_is_its_dataclass_then_its_entries() -> None:
    window = RestoreWindow("aws-eu-central-1", RegionRole.SECONDARY,
                           (TimeRange(T0, T0 + timedelta(minutes=5)),))
    region = RegionStatus("aws-eu-central-1", RegionRole.SECONDARY, RegionState.PAUSED,
                          "unreachable", {"available": 3, "pending": 1}, window,
                          {"log": LaneBacklog(1, 16 << 20)},
                          Fault("unreachable", "connection refused", T0), T0)
    status = ServiceStatus("orders", "postgresql", "aws", "aws-eu-west-1", "aws-eu-central-1",
                           ServiceState.PAUSED, 12.5, None, [region], 3.0, T0,
                           "aws-eu-central-1: unreachable")
    extra = {"backlog": status.backlog, "primary_fault": status.primary_fault,
             "state_line": status.state_line}
    assert json_text({"services": [Record(status, extra)], "streams": {"concurrency": 8}}) \
        == _printed({"services": [{**to_jsonable(status), **to_jsonable(extra)}],
                     "streams": {"concurrency": 8}})


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4)
    | st.tuples(inner, inner),
    max_leaves=30)


@given(_json_values)
def test_json_text_writes_any_plain_value_as_json_dumps_does(value: Any) -> None:
    assert json_text(value) == _printed(value)
