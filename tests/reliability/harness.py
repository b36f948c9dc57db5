"""The kill-test harness: a world of native-format backups in a primary location, `btar sync
--once` run as a real subprocess and killed with SIGKILL at seeded moments, and the invariants
checked after every restart, straight from the catalog file and the storage (never through the
engine's own reading code, so a bug there cannot hide itself).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from engine.api import Btar
from engine.catalog import Catalog
from engine.demo import DemoProducer
from engine.model import Service, ServiceType
from engine.runtime import KILL_AT_ENV
from engine.storage.base import TEMP_MARKER, Storage

ROOT = Path(__file__).resolve().parents[2]
BTAR = [sys.executable, "-m", "engine.cli"]
PRIMARY, SECONDARY = "aws-eu-west-1", "aws-eu-central-1"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
RESTORABLE = ("available", "retained")


# -- where the bytes live -----------------------------------------------------------------------

class Place(Protocol):
    """One location, read directly (not through btar's storage layer)."""

    def toml(self) -> str:
        """The location's value in [regions]."""
        ...

    def open(self) -> Storage:
        """btar's storage for it (to produce backups)."""
        ...

    def digests(self) -> dict[str, str]:
        """key -> a content digest of every object (sha256 locally, the MD5 ETag on S3)."""
        ...

    def fingerprint(self) -> dict[str, tuple[Any, ...]]:
        """key -> what changes if the object is written again, even with the same bytes."""
        ...

    def read(self, key: str) -> bytes: ...

    def digest_of(self, data: bytes) -> str: ...

    def garbage(self) -> int:
        """Leftovers of interrupted writes (temporary files), if the backend keeps any."""
        ...


@dataclass
class LocalPlace:
    root: Path

    def toml(self) -> str:
        return f'"file://{self.root}"'

    def open(self) -> Storage:
        from engine.storage.local import LocalStorage

        return LocalStorage(self.root)

    def _files(self) -> Iterator[tuple[str, Path]]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and TEMP_MARKER not in path.name:
                yield path.relative_to(self.root).as_posix(), path

    def digests(self) -> dict[str, str]:
        return {key: hashlib.sha256(path.read_bytes()).hexdigest() for key, path in self._files()}

    def fingerprint(self) -> dict[str, tuple[Any, ...]]:
        return {key: (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns,
                      path.stat().st_ino) for key, path in self._files()}

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def digest_of(self, data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def garbage(self) -> int:
        return sum(1 for p in self.root.rglob(f"{TEMP_MARKER}*")) if self.root.is_dir() else 0


@dataclass
class S3Place:
    endpoint: str
    bucket: str
    prefix: str
    client: Any = field(repr=False, default=None)

    def __post_init__(self) -> None:
        import boto3

        self.client = boto3.session.Session().client("s3", region_name="eu-west-1",
                                                      endpoint_url=self.endpoint)

    def toml(self) -> str:
        return f'{{ url = "s3://{self.bucket}/{self.prefix}", endpoint_url = "{self.endpoint}" }}'

    def open(self) -> Storage:
        from engine.storage.s3 import S3Storage

        return S3Storage(self.bucket, self.prefix, region="eu-west-1", endpoint_url=self.endpoint)

    def _list(self) -> Iterator[dict[str, Any]]:
        for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}/"):
            yield from page.get("Contents", [])

    def digests(self) -> dict[str, str]:
        return {o["Key"][len(self.prefix) + 1:]: o["ETag"].strip('"') for o in self._list()}

    def fingerprint(self) -> dict[str, tuple[Any, ...]]:
        return {o["Key"][len(self.prefix) + 1:]: (o["ETag"], o["Size"], o["LastModified"])
                for o in self._list()}

    def read(self, key: str) -> bytes:
        body = self.client.get_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")["Body"]
        data: bytes = body.read()
        return data

    def digest_of(self, data: bytes) -> str:
        return hashlib.md5(data).hexdigest()  # the ETag of a single-part object

    def garbage(self) -> int:
        uploads = self.client.list_multipart_uploads(Bucket=self.bucket,
                                                     Prefix=f"{self.prefix}/")
        return len(uploads.get("Uploads", []))


# -- the world ----------------------------------------------------------------------------------

#: (name, type, log segments, a base backup every N segments)
SERVICES = (("orders", ServiceType.POSTGRESQL), ("shop", ServiceType.MYSQL))


@dataclass
class Run:
    """One `btar sync --once` process."""

    how: str  # "hook N", "hook N+", "timed 0.42s", "clean"
    code: int
    seconds: float
    stderr: str

    @property
    def killed(self) -> bool:
        return self.code == -signal.SIGKILL

    @property
    def phase(self) -> str:
        """Where a hook kill landed, from the hook's own line on stderr."""
        for line in self.stderr.splitlines():
            if line.startswith("btar test hook:"):
                words = line.split()
                return f"{words[4]} {words[-1].strip('()')}"  # "before StartCopy"
        return "timed" if self.killed else "completed"


class KillWorld:
    """A primary full of backups, a catalog snapshot taken right after `enable`, and one fresh
    secondary location (and catalog copy) per episode.

    Each episode has two configurations over the same catalog and secondary: ``btar.toml``
    copies four objects at once, and ``serial.toml`` one at a time. Copies finish in whatever
    order the threads make, so with several in flight the sequence of effects (how many
    completions each NextCompletions brings) differs from run to run; one at a time, it is the
    same in every run, so that a kill at effect N of a reference run lands on the same effect
    in a subprocess."""

    def __init__(self, root: Path, primary: Place, secondary_for: Callable[[str], Place],
                 segments: dict[str, int], base_every: int) -> None:
        self.root = root
        self.primary = primary
        self.secondary_for = secondary_for
        self.services = [Service(name, kind, PRIMARY) for name, kind in SERVICES
                         if name in segments]
        storage = primary.open()
        for service in self.services:
            producer = DemoProducer(storage, service, last_end=T0)
            producer.base_backup(T0)
            moment = T0
            for index in range(segments[service.name]):
                moment += timedelta(minutes=5)
                producer.segment(moment)
                if (index + 1) % base_every == 0:
                    producer.base_backup(moment)
        storage.close()
        self.primary_bytes = {key: primary.read(key) for key in primary.digests()}
        self.primary_sha = {k: hashlib.sha256(v).hexdigest() for k, v in self.primary_bytes.items()}
        self.primary_digest = {k: primary.digest_of(v) for k, v in self.primary_bytes.items()}
        self.primary_before = primary.fingerprint()
        # The snapshot every episode starts from: replication enabled, nothing copied.
        snapshot = self.episode("snapshot")
        app = Btar.open(str(snapshot.config))
        for service in self.services:
            app.enable(service.name, SECONDARY)
        app.close()
        self.snapshot = snapshot.catalog

    def episode(self, name: str) -> Episode:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        secondary = self.secondary_for(name)
        secondary.open()  # made ready as an operator would: btar never creates a location
        services = "".join(f'\n[[services]]\nname = "{s.name}"\ntype = "{s.type}"\n'
                           f'region = "{PRIMARY}"\n' for s in self.services)
        configs = []
        for file, concurrency in (("btar.toml", 4), ("serial.toml", 1)):
            config = folder / file
            config.write_text(
                f'catalog = "btar.sqlite"\n\n[replication]\nconcurrency = {concurrency}\n\n'
                f"[regions]\n{PRIMARY} = {self.primary.toml()}\n"
                f"{SECONDARY} = {secondary.toml()}\n{services}", encoding="utf-8")
            configs.append(config)
        if name != "snapshot":
            shutil.copyfile(self.snapshot, folder / "btar.sqlite")
        return Episode(self, folder, configs[0], configs[1], folder / "btar.sqlite", secondary)


@dataclass
class Episode:
    world: KillWorld
    folder: Path
    config: Path
    #: the same, copying one object at a time: the same effects in every run
    serial: Path
    catalog: Path
    secondary: Place
    runs: list[Run] = field(default_factory=list)

    # -- running ----------------------------------------------------------------------------

    def spawn(self, *, kill_at: str | None = None, kill_after: float | None = None,
              how: str = "clean", serial: bool = False) -> Run:
        env = dict(os.environ)
        env.pop(KILL_AT_ENV, None)
        if kill_at is not None:
            env[KILL_AT_ENV] = kill_at
        config = self.serial if serial else self.config
        started = time.monotonic()
        process = subprocess.Popen([*BTAR, "--config", str(config), "sync", "--once"],
                                   cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        if kill_after is not None:
            try:
                process.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=120)
        run = Run(how, process.returncode, time.monotonic() - started, stderr)
        self.runs.append(run)
        return run

    def run_in_process(self) -> tuple[list[str], float]:
        """An uninterrupted run, one copy at a time, in this process, recording the effects it
        yields (the same sequence a fresh `btar sync --once` subprocess with the serial
        configuration yields)."""
        trace: list[str] = []
        app = Btar.open(str(self.serial))
        inner = app.driver.run

        def traced_run(procedure: Generator[Any, Any, Any]) -> Any:
            return inner(_traced(procedure, trace))

        app.driver.run = traced_run  # type: ignore[method-assign]
        started = time.monotonic()
        try:
            app.sync()
        finally:
            app.close()
        return trace, time.monotonic() - started

    # -- the invariants -----------------------------------------------------------------------

    def check(self) -> None:
        """What must hold after any crash, before the next run starts."""
        world = self.world
        # 1. The catalog opens, is not damaged, and the engine can open it too.
        db = sqlite3.connect(self.catalog)
        try:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            items = db.execute("select service, region, item_id, kind, status, object_count "
                               "from items").fetchall()
            objects: dict[tuple[str, str, str], list[tuple[str, str, str]]] = {}
            for service, region, item_id, key, sha, status in db.execute(
                    "select service, region, item_id, key, sha256, status from objects"):
                objects.setdefault((service, region, item_id), []).append((key, sha, status))
            runs = sorted(db.execute("select service, region, stream, first_seq, last_seq "
                                     "from log_runs").fetchall())
            logs = db.execute("select service, region, stream, seq from items where kind = "
                              f"'log' and status in {RESTORABLE} order by 1, 2, 3, 4").fetchall()
        finally:
            db.close()
        Catalog.open(self.catalog).close()
        assert runs == _runs_of(logs), "log_runs disagrees with the restorable segments"
        # 2. An item listed available in a region has all its objects there, hashing right.
        places = {PRIMARY: (world.primary, world.primary.digests()),
                  SECONDARY: (self.secondary, self.secondary.digests())}
        published = 0
        for service, region, item_id, _, status, count in items:
            if status not in RESTORABLE:
                continue
            _place, digests = places[region]
            refs = objects.get((service, region, item_id), [])
            assert len(refs) == count, (region, item_id, "objects missing from the catalog")
            for key, sha, object_status in refs:
                full = f"{service}/{key}"
                assert object_status == "available", (region, item_id, key, object_status)
                assert world.primary_sha.get(full) == sha, (region, full, "recorded hash")
                assert digests.get(full) == world.primary_digest[full], (region, full)
            published += region == SECONDARY
        # 3. The secondary holds only byte-identical copies of primary objects (same layout),
        #    and never a completion marker without its whole payload.
        secondary = places[SECONDARY][1]
        for key, digest in secondary.items():
            assert world.primary_digest.get(key) == digest, (key, "not a copy of the primary")
        for key in secondary:
            parts = key.split("/")
            if len(parts) == 4 and parts[1] == "base" and parts[3] == "manifest.json":
                manifest = json.loads(self.secondary.read(key))
                for entry in manifest["objects"]:
                    payload = f"{parts[0]}/base/{parts[2]}/{entry['key']}"
                    assert world.primary_sha[payload] == entry["sha256"]
                    assert secondary.get(payload) == world.primary_digest[payload], \
                        (key, "marker without its whole payload", payload)
        # 4. Nothing in the primary changed.
        assert world.primary.fingerprint() == world.primary_before, "the primary was touched"

    def state(self) -> tuple[dict[str, str], set[tuple[str, str, str, str]]]:
        """What a finished run leaves: the secondary's objects and every item's status."""
        db = sqlite3.connect(self.catalog)
        try:
            items = {tuple(row) for row in db.execute(
                "select service, region, item_id, status from items")}
        finally:
            db.close()
        return self.secondary.digests(), items  # type: ignore[return-value]


def _traced(procedure: Generator[Any, Any, Any],
            trace: list[str]) -> Generator[Any, Any, Any]:
    """Pass a procedure's effects through, noting each one's type."""
    try:
        effect = next(procedure)
        while True:
            trace.append(type(effect).__name__)
            try:
                result = yield effect
            except Exception as error:  # a StorageError the driver throws back in
                effect = procedure.throw(error)
            else:
                effect = procedure.send(result)
    except StopIteration as stop:
        return stop.value


def _runs_of(logs: list[tuple[str, str, str, int]]) -> list[tuple[str, str, str, int, int]]:
    runs: list[list[Any]] = []
    for service, region, stream, seq in logs:
        last = runs[-1] if runs else None
        if last and last[:3] == [service, region, stream] and last[4] == seq - 1:
            last[4] = seq
        else:
            runs.append([service, region, stream, seq, seq])
    return sorted(tuple(run) for run in runs)  # type: ignore[misc]


# -- the schedule of kills ----------------------------------------------------------------------

#: the phases a first kill is spread over: (effect type, before/after it is carried out).
#: After StartCopy, the copy is in flight on a thread; before NextCompletions, copies may have
#: landed that the catalog does not know of; after it, their results are not recorded yet.
PHASES = (("StartRequest", ""), ("StartRequest", "+"), ("StartCopy", ""),
          ("NextCompletions", "+"), ("StartCopy", "+"), ("NextCompletions", ""), ("Now", "+"),
          ("StartRequest", "+"), ("StartRequest", ""), ("Now", ""))


def kill_episodes(world: KillWorld, label: str, episodes: int,
                  seed: int) -> tuple[list[Run], int]:
    """Run ``episodes`` episodes of kills, checking the invariants after each, and compare
    each episode's final state with a never-interrupted run. Each episode: a kill at a phase
    picked from the uninterrupted run's effects (copying one object at a time, so that the
    kill lands on that effect), a kill after a seeded delay and two kills early in a resumed
    run (where restarts spend their first moments), copying four at a time. Returns every run
    and the leftovers of interrupted writes found in the secondaries."""
    rng = random.Random(f"{label}-{seed}")
    reference = world.episode("reference")
    trace, work = reference.run_in_process()
    reference.check()
    expected = reference.state()
    assert all(status == "available" for *_, status in expected[1])
    assert expected[0] == world.primary_digest, "the reference run left something out"
    idle, _ = reference.run_in_process()  # what a run with nothing left to copy does
    startup = 0.0
    runs: list[Run] = []
    garbage = 0
    for number in range(episodes):
        episode = world.episode(f"episode-{number}")
        plan: list[tuple[str, str | None, float | None, bool]] = []
        if number == 0:
            plan.append(("hook 1 (calibration)", "1", None, False))
        kind, when = PHASES[number % len(PHASES)]
        positions = [i + 1 for i, name in enumerate(trace) if name == kind]
        nth = rng.randrange(len(positions))
        position = positions[nth]  # roughly where, for the timed kill below
        # Counted by kind: requests and copies finish in varying order, so the Nth effect
        # overall differs from run to run, the Nth of a kind much less.
        plan.append((f"hook {kind}:{nth + 1}{when}", f"{kind}:{nth + 1}{when}", None, True))
        # A delay inside what the previous kill left to do, roughly.
        plan.append(("timed", None, rng.uniform(0.0, 0.9) * (1 - position / len(trace)), False))
        for _ in range(2):
            # Counted in requests: an idle run always makes its listings' requests, while how
            # many times it waits for completions (and so its effect count) depends on timing
            # and on the copy concurrency, which differs between the traced and spawned runs.
            early = (f"StartRequest:{rng.randint(1, idle.count('StartRequest'))}"
                     f"{rng.choice(['', '+'])}")
            plan.append((f"hook {early}", early, None, False))
        for how, kill_at, share, serial in plan:
            delay = None
            if share is not None:
                delay = startup + share * work
                how = f"timed {delay:.2f}s"
            run = episode.spawn(kill_at=kill_at, kill_after=delay, how=how, serial=serial)
            if serial and kill_at is not None and run.killed:
                assert run.phase == f"{'after' if when else 'before'} {kind}", \
                    (how, run.phase, "the serial run's effects differ from the reference's")
            assert run.killed or run.code == 0, (how, run.code, run.stderr)
            assert run.killed or kill_at is None, f"{how} did not land: the hook is broken"
            if how.startswith("hook 1 ("):
                startup = run.seconds
            episode.check()
        final = episode.spawn(how="clean")
        assert final.code == 0, final.stderr
        episode.check()
        assert episode.state() == expected, f"{label} episode {number} ends elsewhere"
        garbage += episode.secondary.garbage()
        runs.extend(episode.runs)
    return runs, garbage
