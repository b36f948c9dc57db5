"""A service producing its primary backups on a schedule, in btar's native layout.

The content is the demo's key-value log (engine.demo.records_of), so a fork of a simulated copy
is a real, checkable database state. Objects are stored padded up to a small physical size; the
size a scenario declares (gigabytes) is kept beside them and drives transfer and restore times,
which is what lets a simulated day of backups fit in memory.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Generator, Sequence
from datetime import datetime
from typing import Any

import simpy

from engine.demo import records_of
from engine.formats.native import (
    base_item_id,
    build_manifest,
    history_item_id,
    log_item_id,
    manifest_key,
    payload_key,
    write_log_segment,
    write_stream_history,
)
from engine.model import Service, iso
from engine.storage.faults import FaultyStorage
from simulator.journal import Journal
from simulator.scenario import Schedule

#: Bytes an object really occupies at most; its declared size is only simulated.
PHYSICAL_CAP = 512


def _sorted_keys_encoder() -> Callable[[object], str]:
    """``json.dumps(value, sort_keys=True)``. JSONEncoder.encode builds json's C encoder anew on
    every call, which costs more than encoding a record: this one is built once (without the
    circular-reference check, which a flat record never needs)."""
    encoder = json.JSONEncoder(sort_keys=True)
    make: Callable[..., Callable[[object, int], Sequence[str]]] | None = getattr(
        json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator in this Python
        return encoder.encode
    encode = make(None, encoder.default, json.encoder.encode_basestring_ascii, None,
                  encoder.key_separator, encoder.item_separator, encoder.sort_keys,
                  encoder.skipkeys, encoder.allow_nan)
    return lambda value: "".join(encode(value, 0))


_encode = _sorted_keys_encoder()
#: a hundred services end their segments at the same moments
_iso = functools.lru_cache(maxsize=256)(iso)


class Producer:
    """Writes one service's base backups and log segments into its primary region."""

    def __init__(self, env: simpy.Environment, service: Service, schedule: Schedule,
                 storage: FaultyStorage, journal: Journal, now: Callable[[], datetime],
                 declared: dict[str, int], first_base: float) -> None:
        self.env = env
        self.service = service
        self.schedule = schedule
        self.storage = storage
        self.journal = journal
        self.now = now
        #: full object key -> declared size (shared with the world)
        self.declared = declared
        self.first_base = first_base
        self.stream = "1"
        self.next_seq = 1
        self.last_end: datetime = now()
        self.state: dict[str, object] = {}
        #: seq -> (start, end) of the segments on the current timeline's history, what a
        #: point-in-time restore of the primary goes back to (the state after one is their
        #: records replayed: a copy of it per segment would be a day's largest allocation)
        self.points: dict[int, tuple[datetime, datetime]] = {}

    @property
    def down(self) -> bool:
        """The service lives in its primary region: when the region is out, so is it."""
        return self.storage.unreachable

    def start(self) -> None:
        self.env.process(self._logs())
        self.env.process(self._bases())

    # -- log segments -------------------------------------------------------------------------

    def _logs(self) -> Generator[simpy.Event, Any, None]:
        wait = self.schedule.first_log or self.schedule.log_every
        while True:
            yield self.env.timeout(wait)
            wait = self.schedule.log_every
            if self.down:
                continue  # the WAL waits on the server; the next segment covers the gap
            self.segment()

    def segment(self) -> None:
        end = self.now()
        start = self.last_end
        records = records_of(self.service.name, self.next_seq, start, end)
        lines = [_encode(r) for r in records]
        size = sum(len(line) + 1 for line in lines)
        room = min(self.schedule.log_size, PHYSICAL_CAP) - size - len(',"pad":""')
        if room > 0 and lines:
            # Padding rides inside the last record: a fork's replay ignores unknown fields.
            lines[-1] = _encode({**records[-1], "pad": "." * room})
        data = "".join(line + "\n" for line in lines).encode()
        key = write_log_segment(self.storage.inner, self.service.key_prefix, self.stream,
                                self.next_seq, start, end, data)
        self.declared[key] = max(self.schedule.log_size, len(data))
        for record in records:
            self.state[str(record["key"])] = record["value"]
        self.points[self.next_seq] = (start, end)
        self.journal.add("produce", "ok", service=self.service.name, region=self.service.region,
                         item=log_item_id(self.stream, self.next_seq), kind="log",
                         start=_iso(start), end=_iso(end), keys=[key],
                         bytes=self.declared[key])
        self.next_seq += 1
        self.last_end = end

    # -- promotion -----------------------------------------------------------------------------

    def promote(self, to: datetime) -> None:
        """Restore the primary to ``to`` and promote it: a new timeline branches off after the
        last segment ending at or before ``to``; later segments of the old one are abandoned.
        The history file is published at once, as PostgreSQL archives it first."""
        now = self.now()
        kept = [seq for seq, (_, end) in self.points.items() if end <= to]
        switch_seq = max(kept) + 1 if kept else min(self.points, default=self.next_seq)
        parent = self.stream
        self.stream = str(int(parent) + 1) if parent.isdigit() else f"{parent}.1"
        self.points = {seq: point for seq, point in self.points.items() if seq < switch_seq}
        self.state = {}
        for seq in sorted(self.points):
            for record in records_of(self.service.name, seq, *self.points[seq]):
                self.state[str(record["key"])] = record["value"]
        abandoned = self.next_seq - switch_seq
        self.next_seq, self.last_end = switch_seq, now
        key = write_stream_history(self.storage.inner, self.service.key_prefix, self.stream,
                                   parent, switch_seq, now)
        self.declared[key] = len(self.storage.inner.read_bytes(key))
        self.journal.add("produce", "ok", service=self.service.name, region=self.service.region,
                         item=history_item_id(self.stream), kind="history", start=iso(now),
                         end=iso(now), keys=[key], bytes=self.declared[key], parent=parent,
                         switch_seq=switch_seq, abandoned_segments=abandoned)

    # -- base backups -------------------------------------------------------------------------

    def _bases(self) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(self.first_base)
        while True:
            began = self.env.now
            if not self.down:
                yield from self._base_backup()
            wait = began + self.schedule.base_every - self.env.now
            yield self.env.timeout(max(0.0, wait))

    def _base_backup(self) -> Generator[simpy.Event, Any, None]:
        started = self.now()
        backup_id = started.strftime("%Y%m%dT%H%M%SZ")
        log_start_seq, stream = self.next_seq, self.stream
        parts = self.schedule.base_objects
        step = self.schedule.base_duration / (parts + 1)
        part_size = max(1, self.schedule.base_size // parts)
        prefix = self.service.key_prefix
        keys: list[str] = []
        payload: dict[str, bytes] = {}
        self.journal.add("produce", "invoke", service=self.service.name,
                         region=self.service.region, item=base_item_id(backup_id), kind="base")
        for index in range(parts):
            yield self.env.timeout(step)
            if self.down:
                # The backup dies with the region: payload without a manifest stays incomplete
                # and must never be copied (rule 3).
                self.journal.add("produce", "fail", service=self.service.name,
                                 item=base_item_id(backup_id), error="primary region down")
                return
            items = sorted(self.state.items())[index::parts]
            body = json.dumps(dict(items), sort_keys=True)
            # JSON allows trailing blanks: padding keeps the snapshot readable.
            body += " " * max(0, min(part_size, PHYSICAL_CAP) - len(body))
            relative = f"part-{index}.json"
            payload[relative] = body.encode()
            key = f"{prefix}/{payload_key(backup_id, relative)}"
            self.storage.inner.write(key, payload[relative])
            self.declared[key] = max(part_size, len(payload[relative]))
            keys.append(key)
        yield self.env.timeout(step)
        if self.down or stream != self.stream:
            error = "primary region down" if self.down else "the primary was promoted"
            self.journal.add("produce", "fail", service=self.service.name,
                             item=base_item_id(backup_id), error=error)
            return
        end = self.last_end
        manifest = build_manifest(backup_id, min(started, end), end, stream, log_start_seq,
                                  payload)
        key = f"{prefix}/{manifest_key(backup_id)}"
        self.storage.inner.write(key, manifest)
        self.declared[key] = len(manifest)
        keys.append(key)
        self.journal.add("produce", "ok", service=self.service.name, region=self.service.region,
                         item=base_item_id(backup_id), kind="base",
                         start=iso(min(started, end)), end=iso(end), keys=keys,
                         bytes=sum(self.declared[k] for k in keys))
