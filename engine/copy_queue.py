"""What the scheduler (engine.scheduler) keeps per destination: the lanes, and per item the
objects still to copy, in flight and verified.

A lane holds, in copy order, the items that may have an object to start. An item whose
every object is in flight or verified is parked (set aside) when ``head`` meets it at the
head of its lane, and put back in its place when a copy of it fails or its completion marker
becomes due (``finish``): choosing the next copy never walks past the copies in flight,
however many there are."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from engine.catalog import ItemRow, ObjectRow
from engine.model import UNFINISHED, ItemKind, ItemStatus, RegionRole, Service


class Lane(StrEnum):
    """Copies of one urgency: log segments (and timeline history) before base backups."""

    LOG = "log"
    BASE = "base"


LANES = (Lane.LOG, Lane.BASE)


def lane_of(kind: ItemKind) -> Lane:
    return Lane.BASE if kind == ItemKind.BASE else Lane.LOG


@dataclass
class ItemCopies:
    """An item still to be brought to one destination: which of its objects wait, which are
    in flight, how many payload objects still have to verify (the marker goes last). Keys
    are relative to the service prefix. Choosing the next object is O(1), whatever the
    number of files in a base backup."""

    row: ItemRow
    #: key -> object, once loaded from the catalog
    refs: dict[str, ObjectRow] | None = None
    #: payload objects to start, in publish order (a failed copy goes back to the end)
    waiting: deque[str] = field(default_factory=deque)
    #: payload objects not yet verified
    payload_left: int = 0
    #: completion markers not yet verified
    markers: list[str] = field(default_factory=list)
    in_flight: set[str] = field(default_factory=set)
    #: its place in its lane's order (smaller first)
    seq: int = 0
    #: set aside from its lane: nothing of it can start until a copy of it ends
    parked: bool = False

    def load(self, refs: list[ObjectRow]) -> None:
        self.refs = {ref.key: ref for ref in refs}
        unverified = [ref for ref in refs if ref.status != ItemStatus.AVAILABLE]
        self.waiting = deque(ref.key for ref in unverified if not ref.is_marker)
        self.payload_left = len(self.waiting)
        self.markers = [ref.key for ref in unverified if ref.is_marker]

    def next_key(self) -> str | None:
        """The object to copy next: payload first, the marker once the payload verified."""
        if self.waiting:
            return self.waiting[0]
        if self.payload_left == 0:
            return next((k for k in self.markers if k not in self.in_flight), None)
        return None

    def start(self, key: str) -> None:
        if self.waiting and self.waiting[0] == key:
            self.waiting.popleft()
        self.in_flight.add(key)

    def unstart(self, key: str) -> None:
        self.in_flight.discard(key)
        if key not in self.markers:
            self.waiting.appendleft(key)

    def finish(self, key: str, ok: bool) -> None:
        self.in_flight.discard(key)
        if key in self.markers:
            if ok:
                self.markers.remove(key)
        elif ok:
            self.payload_left -= 1
        else:
            self.waiting.append(key)

    @property
    def complete(self) -> bool:
        return self.payload_left == 0 and not self.markers and not self.in_flight


class DestinationQueue:
    """One service's unfinished items in one destination region."""

    def __init__(self, service: Service, region: str, role: RegionRole) -> None:
        self.service = service
        self.region = region
        self.role = role
        self.items: dict[str, ItemCopies] = {}
        #: per lane, its items in copy order (ascending ``ItemCopies.seq``), but for those
        #: parked
        self.lanes: dict[Lane, deque[str]] = {lane: deque() for lane in LANES}
        #: the seq given to the next item put at the front, and at the back, of a lane
        self._front = 0
        self._back = 0
        #: object key -> attempts since the service's last listing
        self.attempts: dict[str, int] = {}
        #: object key -> the item it belongs to
        self.owner: dict[str, str] = {}
        self.in_flight = 0
        #: completions in a row that the destination throttled, and when to try again
        self.throttled = 0
        self.hold_until: datetime | None = None
        self.paused = False
        #: no longer a destination (retired, disabled): completions are ignored
        self.dropped = False
        #: published or given up since the service's last listing (its pace)
        self.busy = False
        #: its unfinished items were read from the catalog (again after a pause)
        self.loaded = False
        #: the fault the catalog records for this destination ("" when none), its latest
        #: reason (when the catalog does not have it yet), and whether copies succeeded or
        #: failed there since the service's last listing
        self.fault = ""
        self.new_reason = ""
        self.answered = False
        self.failed = False

    @property
    def name(self) -> tuple[str, str]:
        return self.service.name, self.region

    def add(self, rows: Iterable[ItemRow]) -> None:
        """Queue items, oldest first; timeline history ahead of every log segment. An item
        the catalog says failed is tried again: only one given up in this run waits (out of
        its lane) for the next listing."""
        for row in rows:
            if row.item_id in self.items or row.status not in UNFINISHED:
                continue
            if row.status == ItemStatus.FAILED:
                row = with_status(row, ItemStatus.PENDING)
            work = self.items[row.item_id] = ItemCopies(row)
            if row.kind == ItemKind.HISTORY:
                self.put_first(work)
            else:
                self._back += 1
                work.seq = self._back
                self.lanes[lane_of(row.kind)].append(row.item_id)

    def put_first(self, work: ItemCopies) -> None:
        """Put an item at the front of its lane (ahead of what was put there before)."""
        self._front -= 1
        work.seq = self._front
        self.lanes[lane_of(work.row.kind)].appendleft(work.row.item_id)

    def head(self, lane: Lane,
             load: Callable[[ItemCopies], None]) -> tuple[ItemCopies, str] | None:
        """The first item of ``lane`` with an object to start, and that object. Items met
        before it with nothing to start are parked; ``load`` reads an item's objects when
        they are not known yet."""
        items = self.lanes[lane]
        while items:
            work = self.items[items[0]]
            if work.refs is None:
                load(work)
            key = work.next_key()
            if key is not None:
                return work, key
            items.popleft()
            work.parked = True
        return None

    def finish(self, work: ItemCopies, key: str, ok: bool) -> None:
        """A copy of ``key`` ended: a parked item that can start again goes back to its place
        (near the head: it was parked from there)."""
        work.finish(key, ok)
        if work.parked and not work.complete and work.next_key() is not None:
            self._unpark(work)

    def unstart(self, work: ItemCopies, key: str) -> None:
        """A copy the driver refused to start: the item can start it again."""
        work.unstart(key)
        if work.parked:
            self._unpark(work)

    def _unpark(self, work: ItemCopies) -> None:
        work.parked = False
        lane = self.lanes[lane_of(work.row.kind)]
        place = 0
        for item_id in lane:
            if self.items[item_id].seq > work.seq:
                break
            place += 1
        lane.insert(place, work.row.item_id)

    def clear(self) -> None:
        self.items.clear()
        self.owner.clear()
        self.attempts.clear()
        for lane in self.lanes.values():
            lane.clear()

    def take_out(self, work: ItemCopies) -> None:
        """Take an item out of its lane (it stays queued)."""
        if work.parked:
            work.parked = False
            return
        lane = self.lanes[lane_of(work.row.kind)]
        item_id = work.row.item_id
        if lane and lane[0] == item_id:
            lane.popleft()
        elif item_id in lane:
            lane.remove(item_id)

    def remove(self, item_id: str) -> None:
        work = self.items.pop(item_id)
        self.take_out(work)
        for key in work.refs or ():
            self.owner.pop(key, None)
            self.attempts.pop(key, None)

    def ready(self, now: datetime) -> bool:
        return not (self.paused or self.dropped) and (self.hold_until is None
                                                      or self.hold_until <= now)


def with_status(item: ItemRow, status: ItemStatus) -> ItemRow:
    return replace(item, status=status)
