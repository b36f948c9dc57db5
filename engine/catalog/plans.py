"""Reads for a restore plan: a day of one-minute segments is some 1,440 items, each with its
objects; a plan reads them in a few queries and decodes only what it uses."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from engine.catalog.base import CatalogBase
from engine.catalog.schema import _CHUNK, RESTORABLE, from_text
from engine.model import Digest, ObjectRef

#: a planned log segment: item id, stream, seq, start and end time
SegmentFacts = tuple[str, str, int, datetime, datetime]


class PlanPart(CatalogBase):
    """Log segments and objects as a restore plan needs them."""

    def segment_facts(self, service: str, region: str, stream: str, first_seq: int,
                      last_seq: int) -> list[SegmentFacts]:
        """RunsPart.log_items (restorable log segments of a stream in a seq range, by seq),
        only the columns a plan keeps."""
        statuses = [str(s) for s in RESTORABLE]
        return [(item_id, found, seq, from_text(start), from_text(end))
                for item_id, found, seq, start, end in self.conn.execute(
                    "select item_id, stream, seq, start_time, end_time from items where "
                    "service = ? and region = ? and kind = 'log' and stream = ? and seq "
                    f"between ? and ? and status in ({','.join('?' * len(statuses))}) "
                    "order by seq", [service, region, stream, first_seq, last_seq, *statuses])]

    def objects_of(self, service: str, region: str,
                   item_ids: Iterable[str]) -> dict[str, tuple[ObjectRef, ...]]:
        """Per item, ``item_as_model(row).objects``: its payload by key, then its marker
        (the first, as there); one query per 500 items. An item without a marker raises
        StopIteration, as item_as_model does."""
        wanted = list(item_ids)
        payloads: dict[str, list[ObjectRef]] = {item_id: [] for item_id in wanted}
        markers: dict[str, ObjectRef] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start:start + _CHUNK]
            for item_id, key, size, sha256, is_marker, digest in self.conn.execute(
                    "select item_id, key, size, sha256, is_marker, digest from objects where "
                    f"service = ? and region = ? and item_id in ({','.join('?' * len(chunk))}) "
                    "order by item_id, is_marker, key", [service, region, *chunk]):
                ref = ObjectRef(key, size, sha256 or None,
                                Digest.parse(digest) if digest else None)
                if not is_marker:
                    payloads[item_id].append(ref)
                elif item_id not in markers:
                    markers[item_id] = ref
        found: dict[str, tuple[ObjectRef, ...]] = {}
        for item_id, payload in payloads.items():
            if item_id not in markers:
                raise StopIteration(item_id)
            found[item_id] = (*payload, markers[item_id])
        return found
