"""The fleet-size catalog of the ``catalog`` case: N items over S services in a real SQLite
file, written straight into the catalog's own tables (the schema comes from Catalog.open, so
it is whatever version the engine has), and kept between runs.

Per service, both regions (its primary and a secondary) hold the same history: one-minute log
segments on stream 1 and a base backup a day, items/2 rows per region. The primary holds them
all; the secondary lacks nothing but the last 0..3 segments, still pending (a small backlog, so
the lag and backlog columns have something to say), and one service in 50 misses a segment
in the middle of its secondary (a hole for `btar check`). Published copies carry their lag; the
catalog also has objects (one per segment, two per base), log runs, reachability, the last
full listing, a few events per service and the last 20 lag samples per service.
"""

from __future__ import annotations

import math
import random
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.catalog import Catalog, to_text
from tests.benchmarks.harness.btar import PRIMARY, SECONDARY
from tests.benchmarks.harness.proc import progress

#: a base backup a day of one-minute segments
PER_DAY = 1440
STEP = timedelta(minutes=1)
#: the moment the built history ends (fixed, so that a cached file means the same thing)
END = datetime(2026, 12, 1, tzinfo=UTC)
SAMPLES = 20
EVENTS = 20
#: the version of what build() writes, in the cached file's name
SHAPE = "v3"


def service_name(index: int) -> str:
    return f"s{index:04d}"


def cache_path(work: Path, items: int, services: int) -> Path:
    return work / "catalog-cache" / f"catalog-{SHAPE}-{items}-{services}.sqlite"


def shape(items: int, services: int) -> tuple[int, int]:
    """(log segments, base backups) per service and region, ``items`` over both regions."""
    per_region = items // services // 2
    # every day begun has its base backup, the last one too
    bases = math.ceil(per_region / (PER_DAY + 1))
    return per_region - bases, bases


def hole_of(index: int, segments: int) -> int | None:
    """The segment missing from the secondary of one service in 50 (what `btar check`
    reports as a hole), None for the others."""
    return segments // 2 if index % 50 == 7 else None


def _item_rows(service: str, segments: int, bases: int, pending: int, hole: int | None,
               rng: random.Random) -> Iterator[tuple[object, ...]]:
    """Rows of ``items`` for both regions of one service, in primary key order."""
    start = END - STEP * segments
    stamp = to_text(END)
    base_seqs = [1 + day * PER_DAY for day in range(bases)]
    for region in sorted((PRIMARY, SECONDARY)):
        secondary = region == SECONDARY
        rows: list[tuple[object, ...]] = []
        for number, seq in enumerate(base_seqs):
            at = start + STEP * (seq - 1)
            lag = rng.uniform(5, 60) if secondary else None
            rows.append((service, region, f"base/b{number:05d}", "base", "1", seq, to_text(at),
                         to_text(at), 2 * 2**30, 2, "available", "", to_text(at),
                         to_text(at + timedelta(seconds=lag or 0)), lag, stamp, ""))
        for seq in range(1, segments + 1):
            if secondary and seq == hole:
                continue
            begin, end = start + STEP * (seq - 1), start + STEP * seq
            waiting = secondary and seq > segments - pending
            lag = None if waiting or not secondary else rng.uniform(0.5, 4)
            available = None if waiting else to_text(end + timedelta(seconds=lag or 0))
            rows.append((service, region, f"log/1/{seq:010d}", "log", "1", seq, to_text(begin),
                         to_text(end), 16 * 2**20, 1, "pending" if waiting else "available",
                         "", to_text(end), available, lag, stamp, ""))
        yield from sorted(rows, key=lambda r: str(r[2]))


def _objects(rows: list[tuple[object, ...]]) -> Iterator[tuple[object, ...]]:
    for r in rows:
        service, region, item_id, kind, status = r[0], r[1], str(r[2]), r[3], r[10]
        keys = [f"{item_id}/data.tar", f"{item_id}/manifest"] if kind == "base" else [item_id]
        for n, key in enumerate(keys):
            yield (service, region, item_id, key, r[8], "0" * 64, int(n == len(keys) - 1),
                   status, "server-side" if status == "available" else "", "sha256", 1,
                   r[15], "")


def build(path: Path, items: int, services: int) -> float:
    """Write the catalog file (replacing any); returns the seconds it took."""
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(path.name + "*"):
        old.unlink()
    partial = path.with_suffix(".partial")
    for old in path.parent.glob(partial.name + "*"):
        old.unlink()
    Catalog.open(partial).close()  # the engine's schema, at its current version
    db = sqlite3.connect(partial, isolation_level=None)
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -1000000")
    segments, bases = shape(items, services)
    rng = random.Random(17)
    stamp = to_text(END)
    db.execute("begin")
    for index in range(services):
        name = service_name(index)
        pending = index % 4
        hole = hole_of(index, segments)
        rows = list(_item_rows(name, segments, bases, pending, hole, rng))
        db.executemany("insert into items (service, region, item_id, kind, stream, seq, "
                       "start_time, end_time, size, object_count, status, reason, "
                       "completed_at, available_at, lag_seconds, updated_at, parent) values "
                       "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.executemany("insert into objects (service, region, item_id, key, size, sha256, "
                       "is_marker, status, method, verified_by, attempts, updated_at, digest) "
                       "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _objects(rows))
        first = to_text(END - STEP * segments)  # the first segment's start
        for region, last in ((PRIMARY, segments), (SECONDARY, segments - pending)):
            runs = [(1, last)]
            if region == SECONDARY and hole is not None:
                runs = [(1, hole - 1), (hole + 1, last)]
            for low, high in runs:
                db.execute("insert into log_runs values (?, ?, '1', ?, ?, ?, ?)",
                           (name, region, low, high, to_text(END - STEP * (segments - low + 1)),
                            to_text(END - STEP * (segments - high))))
            db.execute("insert into locations values (?, ?, ?, 'active', '', ?, ?)",
                       (name, region, "primary" if region == PRIMARY else "secondary",
                        first, stamp))
            db.execute("insert into reachability values (?, ?, ?, '', '', '', '')",
                       (name, region, stamp))
        db.execute("insert into services values (?, 'postgresql', ?, 'native', ?, ?)",
                   (name, PRIMARY, name, stamp))
        db.execute("insert into full_listings values (?, ?)", (name, stamp))
        db.executemany("insert into lag_samples (service, region, item_id, at, lag_seconds) "
                       "values (?, ?, ?, ?, ?)",
                       [(name, SECONDARY, f"log/1/{seq:010d}", to_text(END - STEP * n),
                         rng.uniform(0.5, 4)) for n, seq in
                        enumerate(range(segments - pending, segments - pending - SAMPLES, -1))])
        if index % 100 == 99:
            db.execute("commit")
            db.execute("begin")
            progress(f"catalog: {index + 1:,} of {services:,} services written")
    # Events of the whole fleet interleave, as a daemon writes them.
    db.executemany("insert into events (at, level, service, region, message) values "
                   "(?, 'info', ?, ?, 'additional backup region enabled')",
                   [(to_text(END - STEP * n), service_name(i), SECONDARY)
                    for n in range(EVENTS) for i in range(services)])
    db.execute("commit")
    db.execute("PRAGMA journal_mode = WAL")
    db.close()
    partial.rename(path)
    return time.perf_counter() - started
