"""Services, their locations per region and what answered there; the listing cursors
and copy marks of a service."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from engine.catalog.journal import JournalPart
from engine.catalog.rows import (
    LocationRow,
    Reachability,
)
from engine.catalog.schema import (
    _CHUNK,
    from_text,
    to_text,
)
from engine.model import (
    ItemStatus,
    RegionRole,
    RegionState,
    Service,
    ServiceType,
)

#: location rows made, by their columns: rows are frozen values, and the scheduler reads a
#: service's few locations several times per pass (a cache by content is never stale)
_LOCATION_ROWS: dict[tuple[Any, ...], LocationRow] = {}
_ROWS_KEPT = 4096


class LocationsPart(JournalPart):
    """Services, locations, reachability, listing cursors and copy marks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: each service's locations as last read, kept while no other connection has
        #: written the catalog (``PRAGMA data_version``) and this one has not written them:
        #: the scheduler reads them several times a pass, a management command seldom
        #: changes them
        self._locations: dict[str, list[LocationRow]] = {}
        self._locations_version = -1
        super().__init__(*args, **kwargs)

    def upsert_service(self, service: Service, now: datetime) -> None:
        self._upsert(
            "services", {"name": service.name, "type": str(service.type),
                         "region": service.region, "layout": service.layout,
                         "prefix": service.key_prefix, "updated_at": to_text(now)}, ("name",))

    def known_services(self) -> dict[str, Service]:
        """Every service the catalog knows, by name (one query for a whole fleet)."""
        return {r[0]: Service(r[0], ServiceType(r[1]), r[2], r[3], r[4]) for r in self._read(
            "select name, type, region, layout, prefix from services")}

    def service(self, name: str) -> Service | None:
        rows = self._query("select * from services where name = ?", [name])
        if not rows:
            return None
        r = rows[0]
        return Service(r["name"], ServiceType(r["type"]), r["region"], r["layout"], r["prefix"])

    def set_location(self, service: str, region: str, role: RegionRole, state: RegionState,
                     now: datetime, reason: str = "") -> None:
        existing = self.location(service, region)
        since = existing.since if existing and existing.role == role else now
        self._locations.pop(service, None)
        self._upsert(
            "locations", {"service": service, "region": region, "role": str(role),
                          "state": str(state), "reason": reason, "since": to_text(since),
                          "updated_at": to_text(now)}, ("service", "region"))

    def note_reachable(self, service: str, region: str, now: datetime) -> None:
        """A listing or copy of ``region`` succeeded: it answers, any fault is over."""
        self._write(
            "insert into reachability (service, region, ok_at, fault, reason, fault_since, "
            "fault_at) values (?, ?, ?, '', '', '', '') on conflict (service, region) do "
            "update set ok_at = excluded.ok_at, fault = '', reason = '', fault_since = ''",
            (service, region, self._text(now)))

    def note_fault(self, service: str, region: str, fault: str, reason: str,
                   now: datetime) -> None:
        """``region`` failed for ``service``; the fault's start is kept while it lasts."""
        stamp = self._text(now)
        self._write(
            "insert into reachability (service, region, ok_at, fault, reason, fault_since, "
            "fault_at) values (?, ?, '', ?, ?, ?, ?) on conflict (service, region) do update "
            "set fault = excluded.fault, reason = excluded.reason, fault_at = "
            "excluded.fault_at, fault_since = case when reachability.fault_since = '' then "
            "excluded.fault_since else reachability.fault_since end",
            (service, region, fault, reason, stamp, stamp))

    def reachability(self, service: str) -> dict[str, Reachability]:
        """Per region, what the replicator last saw of it for ``service``."""
        def moment(text: str) -> datetime | None:
            return from_text(text) if text else None
        return {r["region"]: Reachability(service, r["region"], moment(r["ok_at"]), r["fault"],
                                          r["reason"], moment(r["fault_since"]),
                                          moment(r["fault_at"]))
                for r in self._query("select * from reachability where service = ?",
                                       [service])}

    def reactivate_region(self, service: str, region: str, now: datetime) -> None:
        """A region replicates again: its retained copies count as published again."""
        self._write(
            "update items set status = ?, reason = '', updated_at = ? "
            "where service = ? and region = ? and status = ?",
            [str(ItemStatus.AVAILABLE), to_text(now), service, region,
             str(ItemStatus.RETAINED)])

    def remove_location(self, service: str, region: str) -> None:
        self._locations.pop(service, None)
        for table in ("locations", "reachability"):
            self._write(f"delete from {table} where service = ? and region = ?",
                            [service, region])

    def location(self, service: str, region: str) -> LocationRow | None:
        rows = self.locations(service, region=region)
        return rows[0] if rows else None

    def locations(self, service: str, *, region: str | None = None,
                  roles: Iterable[RegionRole] | None = None) -> list[LocationRow]:
        """A service's locations (those in ``region``, or with one of ``roles``), oldest
        first."""
        rows = self._locations_of(service)
        if region is not None:
            rows = [row for row in rows if row.region == region]
        if roles is not None:
            wanted = frozenset(roles)
            rows = [row for row in rows if row.role in wanted]
        return list(rows)

    def _locations_of(self, service: str) -> list[LocationRow]:
        if self.in_transaction:  # what this connection may yet roll back is never kept
            return self._read_locations(service)
        version = self.data_version()
        if version != self._locations_version:
            self._locations.clear()
            self._locations_version = version
        rows = self._locations.get(service)
        if rows is None:
            rows = self._locations[service] = self._read_locations(service)
        return rows

    def _read_locations(self, service: str) -> list[LocationRow]:
        # Plain tuples, each made into a row once (_LOCATION_ROWS).
        rows: list[LocationRow] = []
        for found in self._read("select region, role, state, reason, since from locations "
                                "where service = ? order by since, region", [service]):
            key = (service, *found)
            row = _LOCATION_ROWS.get(key)
            if row is None:
                region, role, state, reason, since = found
                row = LocationRow(service, region, RegionRole(role), RegionState(state),
                                  reason, from_text(since))
                if len(_LOCATION_ROWS) >= _ROWS_KEPT:
                    _LOCATION_ROWS.clear()
                _LOCATION_ROWS[key] = row
            rows.append(row)
        return rows

    def listing_cursors(self, service: str) -> dict[str, str]:
        """Listing area -> the greatest key settled in it ("" for none yet)."""
        return {area: cursor for area, cursor in self._read(
            "select area, cursor from listing_areas where service = ?", (service,))}

    def save_listing_cursors(self, service: str, cursors: dict[str, str], *,
                             full_at: datetime | None) -> None:
        """Store cursors; after a full listing (``full_at``) they replace every area."""
        with self._atomic():
            if full_at is not None:
                self.conn.execute("delete from listing_areas where service = ?", (service,))
                self.conn.execute("insert or replace into full_listings (service, at) "
                                  "values (?, ?)", (service, self._text(full_at)))
            self.conn.executemany(
                "insert or replace into listing_areas (service, area, cursor) values (?, ?, ?)",
                [(service, area, cursor) for area, cursor in cursors.items()])

    def last_full_listing(self, service: str) -> datetime | None:
        rows = self._read("select at from full_listings where service = ?", (service,))
        return from_text(rows[0][0]) if rows else None

    def copy_mark(self, service: str, region: str) -> int:
        """The last source row that ``region`` was checked against (see add_missing)."""
        rows = self._read("select primary_rowid from copy_marks where service = ? and "
                          "region = ?", (service, region))
        return int(rows[0][0]) if rows else 0

    def set_copy_mark(self, service: str, region: str) -> None:
        """Every source row so far has been checked for ``region``."""
        self._write(
            "insert or replace into copy_marks (service, region, primary_rowid) "
            "values (?, ?, (select coalesce(max(rowid), 0) from items))", (service, region))

    def _reset_copy_mark(self, service: str, region: str) -> None:
        self._write("delete from copy_marks where service = ? and region = ?",
                        [service, region])

    def _cap_copy_marks(self) -> None:
        """After items rows are deleted: SQLite gives a new row the largest rowid left plus
        one, so a mark above that would pass over the rows added next."""
        self._write("update copy_marks set primary_rowid = (select coalesce(max(rowid), 0) "
                        "from items) where primary_rowid > (select coalesce(max(rowid), 0) "
                        "from items)")

    def recheck_copies(self, service: str, region: str, item_ids: Collection[str]) -> None:
        """Items of ``region`` to check against every destination of the service again (they
        are available again): each copy mark goes back to just before the oldest of them."""
        ids = sorted(item_ids)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            self._write(
                "update copy_marks set primary_rowid = min(primary_rowid, coalesce((select "
                "min(rowid) - 1 from items where service = ? and region = ? and item_id in "
                f"({','.join('?' * len(chunk))})), primary_rowid)) where service = ?",
                (service, region, *chunk, service))
