"""Files mirrored into a destination (engine.mirror): what was last written there, from which
version at the primary, and what keeps the current version out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.catalog.base import CatalogBase
from engine.catalog.schema import from_text, to_text
from engine.model import ObjectRef


@dataclass(frozen=True)
class MirrorRow:
    """One mirrored file in one region. ``sha256`` is '' until a version was written there;
    ``blocked`` names the items the primary's current version lists that the region lacks."""

    service: str
    region: str
    key: str
    sha256: str
    size: int
    source_size: int
    source_modified: datetime | None
    blocked: str
    mirrored_at: datetime | None


class MirrorPart(CatalogBase):
    """The mirrored_files table (schema v6)."""

    def mirror_rows(self, service: str, region: str | None = None) -> list[MirrorRow]:
        where, args = "service = ?", [service]
        if region is not None:
            where, args = f"{where} and region = ?", [service, region]
        return [_mirror_row(r)
                for r in self._query(f"select * from mirrored_files where {where} "
                                     "order by region, key", args)]

    def blocked_mirrors(self) -> dict[str, list[MirrorRow]]:
        """Per service, its rows with a version kept out (``blocked``), ordered as
        mirror_rows orders them: one query for every service (`btar check`)."""
        found: dict[str, list[MirrorRow]] = {}
        for r in self._query("select * from mirrored_files where blocked != '' "
                               "order by service, region, key"):
            found.setdefault(r["service"], []).append(_mirror_row(r))
        return found

    def record_mirrored(self, service: str, region: str, key: str, sha256: str, size: int,
                        source_size: int, source_modified: datetime, now: datetime) -> None:
        """A version verified in the region: what a later pass compares the primary with."""
        self._upsert(
            "mirrored_files",
            {"service": service, "region": region, "key": key, "sha256": sha256, "size": size,
             "source_size": source_size, "source_modified": to_text(source_modified),
             "blocked": "", "mirrored_at": to_text(now), "updated_at": to_text(now)},
            ("service", "region", "key"))

    def record_mirror_blocked(self, service: str, region: str, key: str, blocked: str,
                              now: datetime) -> None:
        """The current version was not written (``blocked``: why; '' clears it); the row keeps
        the version written before."""
        self._upsert(
            "mirrored_files", {"service": service, "region": region, "key": key,
                               "blocked": blocked, "updated_at": to_text(now)},
            ("service", "region", "key"))

    def forget_mirrored(self, service: str, region: str, key: str) -> None:
        """The region no longer holds a version btar wrote (its copy was removed)."""
        self._write("delete from mirrored_files where service = ? and region = ? and "
                        "key = ?", [service, region, key])

    def mirrored_refs(self, service: str, region: str) -> list[ObjectRef]:
        """The mirrored files a region holds, as objects a fork fetches and verifies."""
        return [ObjectRef(row.key, row.size, row.sha256)
                for row in self.mirror_rows(service, region) if row.sha256]


def _mirror_row(r: dict[str, Any]) -> MirrorRow:
    return MirrorRow(r["service"], r["region"], r["key"], r["sha256"], r["size"],
                     r["source_size"],
                     from_text(r["source_modified"]) if r["source_modified"] else None,
                     r["blocked"], from_text(r["mirrored_at"]) if r["mirrored_at"] else None)
