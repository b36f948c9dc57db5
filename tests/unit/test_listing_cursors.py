"""Listing cursors (engine.listing.advance_cursors) against the rule written out key by key:
an area's cursor passes every key in order while each is settled and stops before the first
that is not. The engine skips the keys of a full listing that settled by age; the answers
must be the same."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.formats.native import NativeLayout, history_key, manifest_key, segment_key
from engine.listing import FIRST_SEQ, PrimaryListing, advance_cursors
from engine.model import ObjectInfo
from tests.worlds import T0

SETTLE = 60.0
NOW = T0 + timedelta(hours=2)


@dataclass
class FakeCatalog:
    """The catalog's answers the walk asks for, and the cursors it saves."""

    segments: set[tuple[str, int]]
    starts: dict[str, int]
    saved: dict[str, str] = field(default_factory=dict)

    def stream_start(self, service: str, region: str, stream: str) -> int | None:
        return self.starts.get(stream)

    def has_log_segment(self, service: str, region: str, stream: str, seq: int) -> bool:
        return (stream, seq) in self.segments

    def save_listing_cursors(self, service: str, cursors: dict[str, str], *,
                             full_at: datetime | None) -> None:
        self.saved = dict(cursors)


@dataclass(frozen=True)
class FakeService:
    name: str = "orders"
    region: str = "primary"


def by_the_rule(layout: NativeLayout, catalog: FakeCatalog, listing: PrimaryListing,
                now: datetime, settle: float) -> dict[str, str]:
    """Every key of every area, one after the other."""
    cursors: dict[str, str] = {}
    areas: dict[str, list[ObjectInfo]] = {}
    for info in listing.objects:
        for area in layout.listing_areas(info.key):
            areas.setdefault(area, []).append(info)
    for area, members in areas.items():
        cursor = listing.cursors.get(area, "")
        previous: tuple[str, int] | None = None
        for info in members:
            if info.key <= cursor:
                continue
            old = (now - info.last_modified).total_seconds() >= settle
            position = layout.log_position(info.key)
            if position is None:
                settled = old
            else:
                stream, seq = position
                start = catalog.starts.get(stream) or FIRST_SEQ
                settled = previous == (stream, seq - 1) or seq == start \
                    or (listing.full and old) or (stream, seq - 1) in catalog.segments
            if not settled:
                break
            cursor, previous = info.key, position
        if cursor != listing.cursors.get(area):
            cursors[area] = cursor
    return cursors


def segment(stream: str, seq: int, age: float) -> ObjectInfo:
    start = T0 + timedelta(minutes=seq)
    return ObjectInfo(segment_key(stream, seq, start, start + timedelta(minutes=1), "a" * 64),
                      16, NOW - timedelta(seconds=age))


ages = st.sampled_from([0.0, 1.0, SETTLE - 1, SETTLE, SETTLE + 1, 3600.0])


@st.composite
def listings(draw: st.DrawFn) -> tuple[PrimaryListing, FakeCatalog]:
    objects: dict[str, ObjectInfo] = {}
    catalog = FakeCatalog(set(), {})
    for stream in draw(st.lists(st.sampled_from(["1", "2", "10"]), max_size=3, unique=True)):
        for seq in draw(st.lists(st.integers(1, 30), max_size=25, unique=True)):
            info = segment(stream, seq, draw(ages))
            objects[info.key] = info
        catalog.segments.update((stream, seq) for seq in draw(
            st.lists(st.integers(0, 31), max_size=10)))
        if draw(st.booleans()):
            catalog.starts[stream] = draw(st.integers(1, 10))
        if draw(st.booleans()):
            key = history_key(stream)
            objects[key] = ObjectInfo(key, 10, NOW - timedelta(seconds=draw(ages)))
    for backup in draw(st.lists(st.sampled_from(["a", "b", "c"]), max_size=3, unique=True)):
        for key in (f"base/{backup}/data/x", manifest_key(backup)):
            objects[key] = ObjectInfo(key, 10, NOW - timedelta(seconds=draw(ages)))
    ordered = tuple(objects[key] for key in sorted(objects))
    full = draw(st.booleans())
    cursors: dict[str, str] = {}
    if not full and ordered:
        for area in ("base/", "log/", "log/1/", "log/2/"):
            if draw(st.booleans()):
                cursors[area] = draw(st.sampled_from([info.key for info in ordered] + [""]))
        ordered = tuple(info for info in ordered if any(
            info.key.startswith(area) and info.key > cursor
            for area, cursor in cursors.items()))
    return PrimaryListing(ordered, full, cursors), catalog


@settings(max_examples=400, deadline=None)
@given(listings())
def test_cursors_follow_the_rule_key_by_key(case: tuple[PrimaryListing, FakeCatalog]) -> None:
    listing, catalog = case
    layout = NativeLayout()
    expected = by_the_rule(layout, catalog, listing, NOW, SETTLE)
    advance_cursors(catalog, layout, FakeService(), listing, NOW, SETTLE)  # type: ignore[arg-type]
    assert catalog.saved == expected


def test_a_full_listing_stops_before_a_young_gap() -> None:
    """Old segments settle by age; the young one after a gap holds the cursor before it."""
    old = [segment("1", seq, 3600.0) for seq in (1, 2, 4)]
    young = segment("1", 7, 1.0)
    catalog = FakeCatalog(set(), {})
    listing = PrimaryListing((*old, young), True, {})
    advance_cursors(catalog, NativeLayout(), FakeService(), listing, NOW, SETTLE)  # type: ignore[arg-type]
    assert catalog.saved == {"log/": old[-1].key, "log/1/": old[-1].key}
