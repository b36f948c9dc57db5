"""A destination's lanes (engine.copy_queue): parking the items with nothing to start never
changes which copy starts next. Each step is checked against the rule written out: walk every
queued item of the lane in copy order, and take the first one with an object to start."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engine.catalog import ItemRow, ObjectRow
from engine.copy_queue import LANES, DestinationQueue, ItemCopies, Lane, lane_of
from engine.model import ItemKind, ItemStatus, RegionRole, Service, ServiceType

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SERVICE = Service("orders", ServiceType.POSTGRESQL, "aws-eu-west-1")


def item_row(item_id: str, kind: ItemKind) -> ItemRow:
    return ItemRow("orders", "aws-eu-central-1", item_id, kind, "1", 0, T0, T0, 1, 1,
                   ItemStatus.PENDING, "", T0, None, None)


def objects_of(item_id: str, kind: ItemKind, files: int) -> list[ObjectRow]:
    """A log segment or history file is its own marker; a base has files and a manifest."""
    if kind != ItemKind.BASE:
        return [ObjectRow(f"{item_id}/only", 1, None, True, ItemStatus.PENDING, 0)]
    payload = [ObjectRow(f"{item_id}/f{n}", 1, None, False, ItemStatus.PENDING, 0)
               for n in range(files)]
    return [*payload, ObjectRow(f"{item_id}/manifest", 1, None, True, ItemStatus.PENDING, 0)]


class Lanes(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.queue = DestinationQueue(SERVICE, "aws-eu-central-1", RegionRole.SECONDARY)
        self.files: dict[str, int] = {}
        self.counter = 0
        #: every item ever queued and not removed, with the order the rule gives it:
        #: (front, number) -- put first: a smaller front; queued at the back: front 0
        self.order: dict[str, tuple[int, int]] = {}
        self.fronts = 0
        #: items taken out of their lane (given up): the rule skips them
        self.out: set[str] = set()
        self.flying: list[tuple[str, str]] = []

    def load(self, work: ItemCopies) -> None:
        item_id = work.row.item_id
        work.load(objects_of(item_id, work.row.kind, self.files[item_id]))

    def expected(self, lane: Lane) -> tuple[str, str] | None:
        for item_id in sorted(self.order, key=self.order.__getitem__):
            work = self.queue.items[item_id]
            if lane_of(work.row.kind) != lane or item_id in self.out:
                continue
            if work.refs is None:
                self.load(work)
            key = work.next_key()
            if key is not None:
                return item_id, key
        return None

    @rule(kind=st.sampled_from([ItemKind.LOG, ItemKind.BASE, ItemKind.HISTORY]),
          files=st.integers(0, 3), count=st.integers(1, 3))
    def add(self, kind: ItemKind, files: int, count: int) -> None:
        rows = []
        for _ in range(count):
            self.counter += 1
            item_id = f"i{self.counter:03}"
            self.files[item_id] = files
            if kind == ItemKind.HISTORY:
                self.fronts -= 1
                self.order[item_id] = (self.fronts, 0)
            else:
                self.order[item_id] = (0, self.counter)
            rows.append(item_row(item_id, kind))
        self.queue.add(rows)

    @rule(lane=st.sampled_from(LANES))
    def start_next(self, lane: Lane) -> None:
        want = self.expected(lane)
        got = self.queue.head(lane, self.load)
        assert (None if got is None else (got[0].row.item_id, got[1])) == want
        if got is not None:
            work, key = got
            work.start(key)
            self.flying.append((work.row.item_id, key))

    @precondition(lambda self: self.flying)
    @rule(pick=st.integers(0, 1000), ok=st.booleans(), refused=st.booleans())
    def end_copy(self, pick: int, ok: bool, refused: bool) -> None:
        item_id, key = self.flying.pop(pick % len(self.flying))
        work = self.queue.items[item_id]
        if refused:
            self.queue.unstart(work, key)
        else:
            self.queue.finish(work, key, ok)
        if work.complete:
            self.queue.remove(item_id)
            del self.order[item_id]
            self.out.discard(item_id)

    @precondition(lambda self: any(i not in self.out for i in self.order))
    @rule(pick=st.integers(0, 1000))
    def give_up(self, pick: int) -> None:
        candidates = sorted(i for i in self.order if i not in self.out)
        item_id = candidates[pick % len(candidates)]
        self.queue.take_out(self.queue.items[item_id])
        self.out.add(item_id)

    @precondition(lambda self: self.out)
    @rule(pick=st.integers(0, 1000))
    def try_again_first(self, pick: int) -> None:
        item_id = sorted(self.out)[pick % len(self.out)]
        self.out.discard(item_id)
        self.fronts -= 1
        self.order[item_id] = (self.fronts, 0)
        self.queue.put_first(self.queue.items[item_id])

    @invariant()
    def lanes_hold_their_items_in_order(self) -> None:
        for lane in LANES:
            seqs = [self.queue.items[i].seq for i in self.queue.lanes[lane]]
            assert seqs == sorted(seqs)
            for item_id in self.queue.lanes[lane]:
                assert not self.queue.items[item_id].parked
                assert item_id not in self.out


Lanes.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
test_parking_never_changes_the_next_copy = Lanes.TestCase
