"""What happened: lag samples, the audit log of management actions, events."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from engine.catalog.base import CatalogBase
from engine.catalog.rows import (
    EventRow,
)
from engine.catalog.schema import (
    from_text,
    to_text,
)


class JournalPart(CatalogBase):
    """Lag samples, audit and events."""

    def lag_samples(self, service: str, region: str, since: datetime,
                    until: datetime) -> list[tuple[datetime, float]]:
        return [(from_text(r["at"]), float(r["lag_seconds"])) for r in self._query(
            "select at, lag_seconds from lag_samples where service = ? and region = ? "
            "and at >= ? and at <= ? order by at, id",
            [service, region, to_text(since), to_text(until)])]

    def last_lag(self, service: str, region: str) -> float | None:
        """The lag of the item most recently published in ``region``."""
        rows = self._query(
            "select lag_seconds from lag_samples where service = ? and region = ? "
            "order by at desc, id desc limit 1", [service, region])
        return float(rows[0]["lag_seconds"]) if rows else None

    def audit(self, now: datetime, actor: str, action: str, service: str,
              details: dict[str, Any]) -> None:
        self._insert("audit",
            {"at": to_text(now), "actor": actor, "action": action, "service": service,
             "details": json.dumps(details, sort_keys=True)})

    def audit_log(self, service: str | None = None) -> list[dict[str, Any]]:
        sql, params = "select * from audit", []
        if service is not None:
            sql, params = sql + " where service = ?", [service]
        return self._query(sql + " order by id", params)

    def event(self, now: datetime, level: str, service: str, region: str, message: str) -> None:
        self._insert("events", {"at": to_text(now), "level": level, "service": service,
                                  "region": region, "message": message})

    def events(self, limit: int = 100, service: str | None = None) -> list[EventRow]:
        sql, params = "select * from events", []
        if service is not None:
            sql, params = sql + " where service = ?", [service]
        rows = self._query(sql + " order by id desc limit ?", [*params, limit])
        return [EventRow(from_text(r["at"]), r["level"], r["service"], r["region"],
                         r["message"]) for r in reversed(rows)]

    def recent_errors(self, service: str, region: str, limit: int = 500) -> list[EventRow]:
        """The error events of ``region`` among the last ``limit`` events of ``service``,
        oldest first: what a caller filtering events(limit, service) would keep, without
        decoding the rest (a seek on the events' service index, schema v7)."""
        return [EventRow(from_text(at), level, name, where, message)
                for at, level, name, where, message in self.conn.execute(
                    "select at, level, service, region, message from (select id, at, level, "
                    "service, region, message from events where service = ? order by id desc "
                    "limit ?) where level = 'error' and region = ? order by id",
                    [service, limit, region])]

