"""The local demo world: regions as folders, sample services producing native-format backups
(a tiny key-value log whose state at any time is known), replicated live."""

from __future__ import annotations

import functools
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from engine.formats.native import NativeLayout, write_base_backup, write_log_segment
from engine.model import ObjectInfo, Service, ServiceType, iso
from engine.storage.base import Storage

#: regions of the local demo that no service uses yet: one per provider with a location, so
#: that changing the additional region (btar change-region, c in the TUI) can be tried
DEMO_SPARE_REGIONS = ("aws-eu-north-1", "google-europe-north2")
DEMO_REGIONS = ("aws-eu-west-1", "aws-eu-central-1", "google-europe-west1",
                "google-europe-north1", *DEMO_SPARE_REGIONS)
#: (name, type, primary region, additional region to enable or None)
DEMO_SERVICES = (
    ("orders", ServiceType.POSTGRESQL, "aws-eu-west-1", "aws-eu-central-1"),
    ("billing", ServiceType.POSTGRESQL, "google-europe-west1", "google-europe-north1"),
    ("inventory", ServiceType.MYSQL, "aws-eu-west-1", "aws-eu-central-1"),
    ("sessions", ServiceType.REDIS, "aws-eu-west-1", None),
)
HISTORY = timedelta(hours=3)
SEGMENT_EVERY = timedelta(minutes=5)
BASE_EVERY_SEGMENTS = 18  # a base backup every 90 minutes of history
RECORDS_PER_SEGMENT = 4
STARTER_CONFIG = """\
# btar configuration. Times are UTC; paths are relative to this file.
catalog = "btar.sqlite"

[replication]
concurrency = 8
poll_interval = 10.0

# One backup location per region: file:///..., s3://bucket/prefix, gs://bucket/prefix,
# az://account/container/prefix. Credentials come from the environment, never from here.
[regions]
aws-eu-west-1 = "file:///var/backups/aws-eu-west-1"
aws-eu-central-1 = "file:///var/backups/aws-eu-central-1"

[[services]]
name = "orders"
type = "postgresql"        # postgresql or mysql can replicate; other types are refused
region = "aws-eu-west-1"   # the primary backup region
"""


def write_starter_config(path: Path) -> None:
    """Write a commented starter configuration; never overwrite an existing file."""
    from engine.errors import BadInput

    if path.exists():
        raise BadInput(f"{path} already exists; edit it or pass --config with a new path")
    path.write_text(STARTER_CONFIG, encoding="utf-8")


def records_of(service: str, seq: int, start: datetime, end: datetime) -> list[dict[str, object]]:
    """The key-value writes a demo service makes during one segment (deterministic)."""
    return [{"t": moment, "key": f"{service}-k{(seq * 7 + i) % 13}", "value": seq * 100 + i}
            for i, moment in enumerate(_record_times(start, end))]


@functools.lru_cache(maxsize=64)
def _record_times(start: datetime, end: datetime) -> tuple[str, ...]:
    # Services that write on one cadence share their segments' bounds (a simulated fleet:
    # a hundred at each minute), and formatting the times is most of a segment's records.
    step = (end - start) / (RECORDS_PER_SEGMENT + 1)
    return tuple(iso(start + step * (i + 1)) for i in range(RECORDS_PER_SEGMENT))


@dataclass
class DemoProducer:
    """Produces one service's primary backups: log segments and, now and then, a base backup
    whose snapshot is the key-value state at its end time."""

    storage: Storage
    service: Service
    stream: str = "1"
    next_seq: int = 1
    last_end: datetime | None = None
    state: dict[str, object] = field(default_factory=dict)
    segments_since_base: int = 0

    def segment(self, end: datetime) -> str:
        start = self.last_end or end - SEGMENT_EVERY
        records = records_of(self.service.name, self.next_seq, start, end)
        data = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode()
        key = write_log_segment(self.storage, self.service.key_prefix, self.stream,
                                self.next_seq, start, end, data)
        for record in records:
            self.state[str(record["key"])] = record["value"]
        self.next_seq += 1
        self.last_end = end
        self.segments_since_base += 1
        return key

    def resume(self) -> None:
        """Continue after the segments already in storage (their writes are deterministic)."""
        prefix = f"{self.service.key_prefix}/"
        found = NativeLayout().discover(
            ObjectInfo(o.key[len(prefix):], o.size, o.last_modified)
            for o in self.storage.iter_objects(prefix))
        last = max(found.segments, key=lambda s: s.seq)
        self.next_seq, self.last_end = last.seq + 1, last.end_time
        for seq in range(1, last.seq + 1):
            for record in records_of(self.service.name, seq, last.end_time, last.end_time):
                self.state[str(record["key"])] = record["value"]

    def base_backup(self, started: datetime) -> str:
        """A snapshot at the end of the last segment; replay continues at the next one."""
        end = self.last_end or started
        items = sorted(self.state.items())
        half = len(items) // 2
        payload = {f"part-{i}.json": json.dumps(dict(chunk), sort_keys=True).encode()
                   for i, chunk in enumerate((items[:half], items[half:]))}
        backup_id = end.strftime("%Y%m%dT%H%M%SZ")
        self.segments_since_base = 0
        return write_base_backup(self.storage, self.service.key_prefix, backup_id,
                                 min(started, end), end, self.stream, self.next_seq, payload)


def _times(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    moment = start
    while moment <= end:
        yield moment
        moment += step


#: the two regions a cloud demo uses, per backend (the local demo mixes providers)
CLOUD_REGIONS = {
    "s3": ("aws-eu-west-1", "aws-eu-central-1"),
    "gcs": ("google-europe-west1", "google-europe-north1"),
    "azure": ("azure-westeurope", "azure-northeurope"),
}
BACKENDS = ("local", *CLOUD_REGIONS)


def demo_bucket(region: str) -> str:
    """The bucket (S3, GCS) a cloud demo expects for a region; it must exist."""
    return f"btar-demo-{region}"


def _location(backend: str, root: Path, region: str, endpoint: str | None,
              account: str | None) -> str:
    if backend == "local":
        return f'"file://{root / "regions" / region}"'
    if backend == "s3":
        extra = f', endpoint_url = "{endpoint}"' if endpoint else ""
        return f'{{ url = "s3://{demo_bucket(region)}/demo"{extra} }}'
    if backend == "gcs":
        extra = f', emulator_host = "{endpoint}", project = "btar-demo"' if endpoint else ""
        return f'{{ url = "gs://{demo_bucket(region)}/demo"{extra} }}'
    extra = f', account_url = "{endpoint.rstrip("/")}/{account}"' if endpoint else ""
    return (f'{{ url = "az://{account}/btar-demo/demo"{extra}, '
            f'account_key_env = "{azure_key_env(account or "")}" }}')


def azure_key_env(account: str) -> str:
    """The environment variable a cloud demo reads an Azure account's shared key from."""
    return f"BTAR_AZURE_KEY_{account.upper().replace('-', '_')}"


def create_demo(root: Path, *, config: Path | None = None, now: datetime | None = None,
                backend: str = "local", endpoint: str | None = None,
                azure_accounts: tuple[str, str] | None = None) -> Path:
    """Build a demo world: a configuration, three database services (and a redis one) with
    three hours of backups in their primary regions, additional regions enabled, and (local
    backend) a spare region with a location per provider to change to. Returns the
    config path. ``backend`` "local" keeps regions as folders under ``root``; "s3", "gcs" and
    "azure" write into existing buckets named by demo_bucket() (or, for Azure, a container
    "btar-demo" in the two given accounts), through ``endpoint`` when given (an emulator)."""
    from engine.api import Btar
    from engine.errors import BadInput

    if backend not in BACKENDS:
        raise BadInput(f"--backend must be one of {', '.join(BACKENDS)}")
    if backend == "azure" and not azure_accounts:
        raise BadInput("an Azure demo needs --azure-accounts PRIMARY,SECONDARY (two storage "
                       "accounts, one per region, each with a container named btar-demo)")
    root = root.resolve()
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    config_file = config.resolve() if config else root / "btar.toml"
    services: tuple[tuple[str, ServiceType, str, str | None], ...] = DEMO_SERVICES
    regions: tuple[str, ...] = DEMO_REGIONS
    if backend != "local":
        primary, secondary = CLOUD_REGIONS[backend]
        regions = (primary, secondary)
        services = tuple((name, kind, primary, secondary if extra else None)
                         for name, kind, _, extra in DEMO_SERVICES)
    accounts = dict(zip(regions, azure_accounts, strict=True)) if azure_accounts else {}
    lines = ['catalog = "btar.sqlite"', "", "[replication]", "concurrency = 8",
             "poll_interval = 2.0", "", "[regions]"]
    for region in regions:
        if backend == "local":
            (root / "regions" / region).mkdir(parents=True, exist_ok=True)
        location = _location(backend, root, region, endpoint, accounts.get(region))
        lines.append(f"{region} = {location}")
    for name, kind, region, _ in services:
        lines += ["", "[[services]]", f'name = "{name}"', f'type = "{kind}"',
                  f'region = "{region}"']
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for producer in demo_producers(root, config_file):
        start = now - HISTORY
        producer.last_end = start
        producer.base_backup(start)
        for moment in _times(start + SEGMENT_EVERY, now, SEGMENT_EVERY):
            producer.segment(moment)
            if producer.segments_since_base >= BASE_EVERY_SEGMENTS:
                producer.base_backup(moment)
    app = Btar.open(str(config_file), actor="btar init --demo")
    try:
        for name, _, _, additional in services:
            if additional:
                app.enable(name, additional)
    finally:
        app.close()
    return config_file


def demo_producers(root: Path, config: Path | None = None) -> list[DemoProducer]:
    """One producer per database service of the demo world whose configuration is
    ``config`` (default ``root/btar.toml``), writing to that service's primary location."""
    from engine.config import load_config
    from engine.storage.locations import open_location

    loaded = load_config(config or root / "btar.toml")
    producers = []
    for service in loaded.services().values():
        if service.type in (ServiceType.POSTGRESQL, ServiceType.MYSQL):
            location = loaded.location(service.region)
            producers.append(DemoProducer(open_location(location, service.region, create=True),
                                          service))
    return producers


def run_demo(root: Path | None, *, duration: float | None, interval: float,
             out: TextIO) -> int:
    """Build a demo world, produce backups in a thread and replicate them live, printing a
    status line per pass."""
    from engine.api import Btar

    holder = tempfile.TemporaryDirectory(prefix="btar-demo-") if root is None else None
    base = Path(holder.name) if holder else root
    assert base is not None
    config = create_demo(base)
    out.write(f"btar demo: world under {base}\n  config {config}\n")
    producers = demo_producers(base)
    for producer in producers:
        producer.resume()
    stop = threading.Event()

    def produce() -> None:
        while not stop.wait(interval):
            moment = datetime.now(UTC)
            for producer in producers:
                producer.segment(moment)
                if producer.segments_since_base >= 10:
                    producer.base_backup(moment)

    thread = threading.Thread(target=produce, name="btar-demo-producer", daemon=True)
    thread.start()
    app = Btar.open(str(config), actor="btar demo")
    started = time.monotonic()
    try:
        while duration is None or time.monotonic() - started < duration:
            app.sync()
            parts = []
            for status in app.status():
                if status.additional_region:
                    end = next((r.window.end for r in status.regions
                                if r.region == status.additional_region), None)
                    parts.append(f"{status.name} {status.state_with_reason}, lag "
                                 f"{status.last_lag_seconds or 0.0:.1f}s, window end "
                                 f"{end.strftime('%H:%M:%S') if end else '-'}")
            out.write(f"{datetime.now(UTC):%H:%M:%S}  " + " | ".join(parts) + "\n")
            out.flush()
            time.sleep(max(0.2, interval / 2))
    except KeyboardInterrupt:
        out.write("stopping\n")
    finally:
        stop.set()
        thread.join(timeout=5)
        app.sync()
        for status in app.status():
            if status.additional_region is None:
                continue
            for region in status.regions:
                out.write(f"  {status.name:<10} {region.region:<22} {region.role.value:<9} "
                          f"window {region.window.describe()}\n")
        app.close()
        if holder:
            holder.cleanup()
    return 0
