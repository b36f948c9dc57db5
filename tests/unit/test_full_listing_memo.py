"""A full listing that reuses the last one (engine.listing.FullListingMemo) against one that
works every key out again: after any history of writes, rewrites and deletions in the
primary (its neighbours' keys sharing the storage), both see the same keys, the same areas,
the same cursors and what the layout finds in them; and what did not change is reused."""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import timedelta
from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

import engine.listing as listing_module
from engine.effects import Effect, ListPage
from engine.formats.base import Discovery
from engine.formats.native import NativeLayout, history_key, manifest_key, segment_key
from engine.listing import FullListingMemo, PrimaryListing, advance_cursors, list_primary
from engine.model import Service, ServiceType
from engine.storage.memory import MemoryStorage
from tests.unit.test_listing_cursors import SETTLE, FakeCatalog, by_the_rule
from tests.worlds import T0

SERVICE = Service("orders", ServiceType.POSTGRESQL, "primary")
#: the service's neighbours in key order, whose writes share the storage's blocks
NEIGHBOURS = ("order", "orders-2")
PAGE = 7
RUN = 3


def drive(storage: MemoryStorage, procedure: Generator[Effect, Any, PrimaryListing],
          ) -> PrimaryListing:
    answer: Any = None
    try:
        while True:
            effect = procedure.send(answer)
            assert isinstance(effect, ListPage)
            answer = storage.list_page(effect.prefix, effect.start_after, effect.limit)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


def key_of(kind: str, stream: str, number: int) -> str:
    if kind == "segment":
        start = T0 + timedelta(minutes=number)
        return segment_key(stream, number, start, start + timedelta(minutes=1), "a" * 64)
    if kind == "history":
        return history_key(stream)
    if kind == "manifest":
        return manifest_key(f"b{number}")
    return f"base/b{number}/data/x"


keys = st.tuples(st.sampled_from(["segment", "segment", "history", "manifest", "payload"]),
                 st.sampled_from(["1", "2"]), st.integers(1, 16))
owners = st.sampled_from((SERVICE.name, SERVICE.name, *NEIGHBOURS))
steps = st.one_of(
    st.tuples(st.just("write"), owners, keys, st.sampled_from([0.0, 1.0, SETTLE, 3600.0])),
    st.tuples(st.just("remove"), owners, keys),
    st.tuples(st.just("list"), st.frozensets(st.integers(1, 16), max_size=16)))


def outcome(found: Discovery, known: set[str]) -> tuple[Any, ...]:
    """What the engine does with a discovery: the markers it reads, the segments it adds (the
    ones it does not know), every id it counts as present, the files it mirrors."""
    ids = {s.item_id for s in found.segments} | set(found.known_segments)
    return (found.markers, [s for s in found.segments if s.item_id not in known], ids,
            found.mirrored)


@settings(max_examples=300, deadline=None)
@given(st.lists(steps, min_size=8, max_size=80))
def test_a_reused_full_listing_sees_what_a_fresh_one_sees(
        history: list[tuple[Any, ...]]) -> None:
    layout = NativeLayout()
    clock = [T0 + timedelta(hours=2)]
    storage = MemoryStorage("primary", clock=lambda: clock[0])
    memo = FullListingMemo()
    with mock.patch.object(listing_module, "_RUN", RUN):
        for step in history:
            if step[0] == "write":  # a write, some time after the last
                _, owner, (kind, stream, number), gap = step
                clock[0] += timedelta(seconds=gap)
                storage.write(f"{owner}/{key_of(kind, stream, number)}", b"x")
                continue
            if step[0] == "remove":
                _, owner, (kind, stream, number) = step
                storage.delete(f"{owner}/{key_of(kind, stream, number)}")
                continue
            reused = drive(storage, list_primary(None, layout, SERVICE, full=True,  # type: ignore[arg-type]
                                                 page_size=PAGE, memo=memo))
            fresh = drive(storage, list_primary(None, layout, SERVICE, full=True,  # type: ignore[arg-type]
                                                page_size=PAGE))
            assert reused.objects == fresh.objects
            assert reused.members == fresh.members
            # the runs' discoveries end to end are the whole listing's, whatever is known
            known = {f"log/{stream}/{seq:010d}" for seq in step[1] for stream in ("1", "2")}
            joined = Discovery.joined([run.discovery(layout, known) for run in reused.runs])
            assert outcome(joined, known) == outcome(layout.discover(fresh.objects, known), known)
            # and the cursors are the rule's, walked key by key
            now = clock[0] + timedelta(seconds=SETTLE / 2)
            catalog = FakeCatalog({(s, seq) for seq in step[1] for s in ("1", "2")}, {})
            expected = by_the_rule(layout, catalog, PrimaryListing(fresh.objects, True, {}),
                                   now, SETTLE)
            advance_cursors(catalog, layout, SERVICE, reused, now, SETTLE)  # type: ignore[arg-type]
            assert catalog.saved == expected
            # listed again with nothing written, every run is reused
            again = drive(storage, list_primary(None, layout, SERVICE, full=True,  # type: ignore[arg-type]
                                                page_size=PAGE, memo=memo))
            assert [id(run) for run in again.runs] == [id(run) for run in reused.runs]


def ten_segments() -> tuple[MemoryStorage, Callable[[], list[listing_module.ListedRun]]]:
    """Segments 1 to 10 of a stream, and its full listings' runs, one memo for all."""
    storage = MemoryStorage("primary", clock=lambda: T0)
    for seq in range(1, 11):
        storage.write(f"orders/{key_of('segment', '1', seq)}", b"x")
    layout, memo = NativeLayout(), FullListingMemo()

    def runs() -> list[listing_module.ListedRun]:
        return list(drive(storage, list_primary(None, layout, SERVICE, full=True,  # type: ignore[arg-type]
                                                page_size=PAGE, memo=memo)).runs)

    return storage, runs


def test_only_the_runs_that_changed_are_worked_out_again() -> None:
    storage, runs = ten_segments()
    with mock.patch.object(listing_module, "_RUN", RUN):
        first = runs()
        # pages of 7 in runs of 3: [1-3][4-6][7] [8-10]
        assert [len(run.objects) for run in first] == [3, 3, 1, 3]
        storage.write(f"orders/{key_of('segment', '1', 11)}", b"x")  # at the end
        second = runs()
        assert [len(run.objects) for run in second] == [3, 3, 1, 3, 1]
        assert [a is b for a, b in zip(first, second[:4], strict=True)] == [True] * 4
        storage.write(f"orders/{key_of('segment', '1', 5)}", b"y")  # rewritten
        third = runs()
        assert [a is b for a, b in zip(second, third, strict=True)] == [True, False, True, True,
                                                                        True]


def test_keys_written_before_the_others_leave_their_runs_reused() -> None:
    """A new base sorts before every segment: the pages start at other keys, yet the runs of
    the keys that did not change are found again where they now are."""
    storage, runs = ten_segments()
    with mock.patch.object(listing_module, "_RUN", RUN):
        first = runs()
        storage.write(f"orders/{key_of('manifest', '1', 1)}", b"x")
        second = runs()
        # pages of 7: [b1 1-6] [7-10]; only the new key's run is new
        assert [len(run.objects) for run in second] == [1, 3, 3, 1, 3]
        assert [run.objects[0].key for run in second
                if not any(run is old for old in first)] == [
            key_of("manifest", "1", 1)]
        assert all(any(run is old for run in second) for old in first)


def test_a_storage_that_hands_out_new_objects_is_worked_out_every_time() -> None:
    storage = MemoryStorage("primary", clock=lambda: T0)
    storage.write(f"orders/{key_of('segment', '1', 1)}", b"x")
    real = storage.list_page

    def unstable(prefix: str = "", start_after: str | None = None,
                 limit: int = 1000) -> Any:
        page = real(prefix, start_after, limit)
        return type(page)(page.objects, page.next_start_after)

    storage.list_page = unstable  # type: ignore[method-assign]
    layout, memo = NativeLayout(), FullListingMemo()
    first = drive(storage, list_primary(None, layout, SERVICE, full=True,  # type: ignore[arg-type]
                                        page_size=PAGE, memo=memo))
    second = drive(storage, list_primary(None, layout, SERVICE, full=True,  # type: ignore[arg-type]
                                         page_size=PAGE, memo=memo))
    assert first.runs[0] is not second.runs[0]
    assert memo.runs == {}
