"""Case fleet (issue target 1): one replicator, many services, one moto server.

``btar sync`` runs as a daemon at its default pace against moto in its own process, over N
services (default 1,000) of btar's native layout in one primary bucket. Each service starts
with a small base backup; then every service writes a 64 KiB log segment a minute (spread
evenly over the minute, straight into moto's backend, so the producer costs btar nothing and
each object's LastModified is its completed_at) for the measured minutes, after a warm-up.

Measured:
- lag per service: p99 of (available_at - completed_at) of the segments written in the
  measured window, from btar's catalog; the worst service's p99 is the row, against the
  target poll interval + 5 s;
- btar's CPU over the measured window (utime + stime of the btar process from /proc), as a
  share of one core; its peak RSS (the launcher's wait4);
- requests per pass per idle service: after the producer stops, everything is published and
  the back-off after work has run out, the requests moto serves during IDLE_SECONDS (counted
  inside moto, by kind and bucket), divided by the passes btar made in that time, counted by
  their one listing each of the service's base/ area in the primary bucket (the destination
  is looked at once per poll interval for all the services replicating there).
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.api import Btar
from engine.formats.native import segment_key
from tests.benchmarks.harness.btar import PRIMARY, SECONDARY, s3_region
from tests.benchmarks.harness.data import KIB, Obj, base_backup, payload
from tests.benchmarks.harness.lag import percentile
from tests.benchmarks.harness.proc import launch, progress, read_launch
from tests.benchmarks.harness.results import Case, Row
from tests.benchmarks.harness.s3 import Moto, moto_server

SEGMENT = 64 * KIB
#: btar's default poll interval (engine.config), which the lag target is stated against
POLL_INTERVAL = 10.0
IDLE_SECONDS = 60.0
#: above this share of a core, moto answers slower than S3 would (noted on the lag row)
SATURATED = 0.8
SOURCE, DESTINATION = "fleet-primary", "fleet-secondary"


def service_name(index: int) -> str:
    return f"f{index:04d}"


def _segment(service: str, seq: int, start: datetime) -> Obj:
    fill = int.from_bytes(hashlib.sha256(f"{service}/{seq}".encode()).digest()[:6], "little")
    sha = hashlib.sha256(payload(SEGMENT, fill)).hexdigest()
    key = segment_key("1", seq, start, start + timedelta(minutes=1), sha)
    return Obj(f"{service}/{key}", SEGMENT, fill)


def _base(service: str) -> list[Obj]:
    return [Obj(o.key.replace("bench/", f"{service}/", 1), o.size, o.fill, o.text)
            for o in base_backup(2, 64 * KIB, backup_id="b1")]


def _config(folder: Path, endpoint: str, services: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ['catalog = "btar.sqlite"', "", "[regions]",
             f"{PRIMARY} = {s3_region(SOURCE, endpoint)}",
             f"{SECONDARY} = {s3_region(DESTINATION, endpoint)}", ""]
    for index in range(services):
        lines += ["[[services]]", f'name = "{service_name(index)}"', 'type = "postgresql"',
                  f'region = "{PRIMARY}"', ""]
    path = folder / "btar.toml"
    path.write_text("\n".join(lines))
    return path


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _btar_pid(launcher: int) -> int:
    """The btar process the launcher spawned (its only child)."""
    for _ in range(100):
        for task in Path(f"/proc/{launcher}/task").iterdir():
            children = (task / "children").read_text().split()
            if children:
                return int(children[0])
        time.sleep(0.05)
    raise RuntimeError("the launcher started no btar process")


class Producer(threading.Thread):
    """One segment per service per minute, spread evenly, for ``minutes`` minutes."""

    def __init__(self, moto: Moto, services: int, minutes: float) -> None:
        super().__init__(daemon=True)
        self.moto, self.services, self.minutes = moto, services, minutes
        self.written = 0
        self.behind = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            start, beat = time.monotonic(), 60.0 / self.services
            rounds = int(self.minutes)
            for seq in range(2, rounds + 2):
                for index in range(self.services):
                    due = start + ((seq - 2) * self.services + index) * beat
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    else:
                        self.behind = max(self.behind, -delay)
                    name = service_name(index)
                    moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=seq - 1)
                    self.moto.seed(SOURCE, [_segment(name, seq, moment)])
                    self.written += 1
        except BaseException as error:  # reported by the case
            self.error = error


def _published(catalog: Path) -> int:
    with sqlite3.connect(f"file:{catalog}?mode=ro", uri=True) as db:
        return int(db.execute("select count(*) from items where region = ? and status = ?",
                              (SECONDARY, "available")).fetchone()[0])


def _lags(catalog: Path, since: str) -> dict[str, list[float]]:
    """Per service, the lag (s) of each log segment completed at or after ``since``."""
    with sqlite3.connect(f"file:{catalog}?mode=ro", uri=True) as db:
        rows = db.execute(
            "select d.service, (julianday(d.available_at) - julianday(p.completed_at)) * 86400 "
            "from items d join items p on p.service = d.service and p.item_id = d.item_id "
            "and p.region = ? where d.region = ? and d.kind = 'log' and d.status = 'available' "
            "and p.completed_at >= ?", (PRIMARY, SECONDARY, since)).fetchall()
    out: dict[str, list[float]] = {}
    for service, lag in rows:
        out.setdefault(str(service), []).append(float(lag))
    return out


def run(work: Path, services: int, minutes: float, warmup: float,
        env: Mapping[str, str]) -> Case:
    case = Case("fleet")
    with moto_server() as moto:
        moto.create_bucket(SOURCE, "eu-west-1")
        moto.create_bucket(DESTINATION)
        progress(f"fleet: seeding {services} services with a base backup and one segment")
        start = datetime(2026, 1, 1, tzinfo=UTC)
        seed: list[Obj] = []
        for index in range(services):
            seed += [*_base(service_name(index)), _segment(service_name(index), 1, start)]
        moto.seed(SOURCE, seed)
        config = _config(work / "fleet-cfg", moto.endpoint, services)
        api = Btar.open(str(config), actor="bench")
        try:
            for index in range(services):
                api.enable(service_name(index), SECONDARY)
        finally:
            api.close()
        log = open(work / "fleet-daemon.log", "wb")  # noqa: SIM115 (closed below)
        result = work / "fleet-daemon.json"
        daemon = launch(["btar", "--config", str(config), "sync", "--log-format", "json"],
                        result, stdout=log, stderr=log, env=env)
        btar_pid = _btar_pid(daemon.pid)
        catalog = config.parent / "btar.sqlite"
        producer = Producer(moto, services, warmup + minutes)
        try:
            progress(f"fleet: {services} services, one {SEGMENT // KIB} KiB segment a minute "
                     f"each; warm-up {warmup:g} min, then {minutes:g} min measured")
            producer.start()
            time.sleep(warmup * 60)
            measured_from = datetime.now(UTC)
            cpu_before, wall_before = _cpu_seconds(btar_pid), time.monotonic()
            moto_before = moto.cpu_seconds()
            time.sleep(minutes * 60)
            cpu = _cpu_seconds(btar_pid) - cpu_before
            moto_cpu = moto.cpu_seconds() - moto_before
            wall = time.monotonic() - wall_before
            producer.join()
            if producer.error is not None:
                raise producer.error
            progress("fleet: producer done; waiting until every segment is published")
            # per service: the base backup, the seeded segment, one segment a minute
            total = services * (2 + int(warmup + minutes))
            deadline = time.monotonic() + 300
            while _published(catalog) < total and time.monotonic() < deadline:
                if daemon.poll() is not None:
                    raise RuntimeError(f"the btar daemon exited; see {work / 'fleet-daemon.log'}")
                time.sleep(1)
            published = _published(catalog)
            # After work, a service is listed again sooner (busy_poll_interval, doubling up
            # to poll_interval): let that back-off run out before counting idle passes.
            time.sleep(2 * POLL_INTERVAL)
            progress(f"fleet: idle; counting requests for {IDLE_SECONDS:g} s")
            before = moto.request_kinds()
            time.sleep(IDLE_SECONDS)
            idle_kinds = {kind: count - before.get(kind, 0)
                          for kind, count in moto.request_kinds().items()
                          if count > before.get(kind, 0)}
            idle_requests = sum(idle_kinds.values())
        finally:
            daemon.send_signal(signal.SIGTERM)
            _, exit_code, rss_kib = read_launch(daemon, result)
            log.close()
        lags = _lags(catalog, measured_from.strftime("%Y-%m-%dT%H:%M:%S"))
    if published < total:
        raise AssertionError(f"fleet: {published} of {total} items published in time")
    worst = max((percentile(v, 0.99), s) for s, v in lags.items()) if lags else (None, "-")
    every = [lag for values in lags.values() for lag in values]
    cpu_share = cpu / wall
    # Each idle pass of a service lists its base/ area once (engine.listing): those
    # listings count the passes, whatever pace btar kept.
    passes = idle_kinds.get(f"GET bucket {SOURCE} list-type base/", 0)
    per_pass = idle_requests / passes if passes else float("inf")
    rss = rss_kib / 1024
    case.details.update({
        "services": services, "minutes": minutes, "warmup_minutes": warmup,
        "segments_measured": len(every), "services_measured": len(lags),
        "lag_p50_all": percentile(every, 0.5) if every else None,
        "lag_p99_all": percentile(every, 0.99) if every else None,
        "worst_service": worst[1], "cpu_seconds": cpu, "wall_seconds": wall,
        "moto_cpu_seconds": moto_cpu,
        "idle_requests": idle_requests, "idle_request_kinds": idle_kinds,
        "idle_passes": passes,
        "idle_passes_per_service_per_poll": passes / services / (IDLE_SECONDS / POLL_INTERVAL),
        "producer_behind_s": producer.behind,
        "daemon_exit": exit_code})
    note = (f"{services} services x {minutes:g} min after {warmup:g} min warm-up; "
            f"{len(every)} segments measured")
    moto_share = moto_cpu / wall
    if moto_share > SATURATED:
        # The emulator answers slower than S3 would: the lag then measures moto too.
        note += f"; moto used {moto_share:.0%} of a core (saturated)"
    lag_target = POLL_INTERVAL + 5
    case.add(Row(f"fleet lag p99 worst service ({services})", worst[0],
                 target=f"<= {lag_target:g} s",
                 met=worst[0] is not None and worst[0] <= lag_target and
                 len(lags) == services, note=note))
    case.add(Row("fleet btar CPU (share of one core)", cpu_share * 100, unit="%",
                 target="<= 25 %", met=cpu_share <= 0.25))
    case.add(Row("fleet moto CPU (share of one core)", moto_share * 100, unit="%",
                 note="the server's side, for reading the lag row"))
    case.add(Row("fleet btar peak RSS", rss, unit="MiB", target="<= 300 MiB", met=rss <= 300))
    case.add(Row("fleet requests per pass per idle service", per_pass, unit="",
                 target="<= 3", met=per_pass <= 3,
                 note=f"{passes} idle passes counted (listings of base/), "
                      f"{passes / services / (IDLE_SECONDS / POLL_INTERVAL):.2f} per service "
                      "per poll interval"))
    return case
