"""Fault isolation on the clouds (moto's S3 server, fake-gcs-server, Azurite), a matrix of
cloud x fault: while the destination of one service ("orders") has no bucket or container,
refuses the credentials, is down, hangs, throttles every request or answers 500, the
`btar sync` daemon keeps running, a service on other regions ("billing", local folders)
keeps replicating, orders says why it waits, and once the fault is removed orders catches up
by itself: every item of its primary published in the destination, byte for byte.

Faults of the endpoint come from a loopback relay in front of the emulator (see relay.py).
Wrong credentials: S3 keys that moto (a server of its own, which checks them) does not know,
and a wrong Azure account key, both read by the engine when it opens a location, so the fix
is a daemon restart with the right configuration; fake-gcs-server checks no credentials, so
the relay refuses them as GCS does (401) until it passes requests again.

With BTAR_FAULT_MATRIX=FILE the cells' reasons and recovery times go to FILE as a table."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from azure.storage.blob import ContainerClient

from engine.api import REASONED_STATES, Btar, RegionStatus, ServiceState, ServiceStatus
from engine.daemon import run_sync
from engine.demo import DemoProducer
from engine.model import ItemStatus
from tests.integration.azurite_server import Azurite
from tests.integration.conftest import MotoAuth
from tests.integration.gcs_server import FakeGcs
from tests.integration.relay import GCS_UNAUTHORIZED, SERVER_ERROR, THROTTLED, TcpRelay
from tests.integration.s3_server import MotoS3

pytestmark = pytest.mark.integration

CLOUDS = ("s3", "gcs", "azure")
FAULTS = ("missing", "down", "denied", "hang", "throttled", "error500")
#: the fault class the destination shows in status, per fault
KIND = {"missing": "missing", "down": "unreachable", "denied": "denied", "hang": "unreachable",
        "throttled": "throttled", "error500": "error"}
#: faults of the endpoint, injected once orders replicates
RELAYED = ("down", "hang", "throttled", "error500")
#: seconds a hanging endpoint is given per request in these tests (the default is 60)
HANG_TIMEOUT = 2.0
#: the faulty destination's own settings: few attempts, short waits (the primary keeps the
#: defaults, so a loaded machine cannot make it time out)
FAST = f"max_attempts = 2, read_timeout = {HANG_TIMEOUT}"
#: cloud, fault, what status says, seconds from the fix to caught up, items lost
RESULTS: list[tuple[str, str, str, float, int]] = []


@dataclasses.dataclass(frozen=True)
class Cloud:
    """One backend's regions for the faulty service "orders", and the regions (local
    folders) of the healthy service "billing"."""

    name: str
    primary: str
    destination: str
    #: btar.toml lines of orders' regions, given the destination's bucket (or container),
    #: its endpoint and whether its credentials are right
    regions: Callable[[str, str, bool], str]
    #: creates a destination bucket (or container)
    create: Callable[[str], None]
    #: the emulator that serves the destination, as (host, port)
    server: tuple[str, int]
    #: the reason a missing destination bucket (or container) gives
    missing_reason: Callable[[str], str]
    local: tuple[str, str]

    @property
    def endpoint(self) -> str:
        return f"http://{self.server[0]}:{self.server[1]}"


def host_port(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.removeprefix("http://").partition(":")
    return host, int(port)


def s3_cloud(moto: MotoS3 | MotoAuth, profiles: bool) -> Cloud:
    """Orders on moto; with ``profiles``, on the moto that checks keys, each region with a
    profile of the shared credentials file (btar-good, or btar-wrong for wrong keys)."""
    prefix = f"iso-{uuid.uuid4().hex[:8]}"

    def keys(good: bool) -> str:
        return f', profile = "btar-{"good" if good else "wrong"}"' if profiles else ""

    def regions(bucket: str, endpoint: str, good: bool) -> str:
        return (f'aws-eu-west-1 = {{ url = "s3://{moto.bucket("aws-eu-west-1")}/{prefix}", '
                f'endpoint_url = "{moto.endpoint}", max_attempts = 2{keys(True)} }}\n'
                f'aws-eu-central-1 = {{ url = "s3://{bucket}/{prefix}", '
                f'endpoint_url = "{endpoint}", {FAST}{keys(good)} }}\n')

    def create(bucket: str) -> None:
        extra = {"aws_access_key_id": moto.key_id, "aws_secret_access_key": moto.secret} \
            if isinstance(moto, MotoAuth) else {}
        boto3.session.Session().client(
            "s3", region_name="eu-central-1", endpoint_url=moto.endpoint, **extra
        ).create_bucket(Bucket=bucket,
                        CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})

    return Cloud("s3", "aws-eu-west-1", "aws-eu-central-1", regions, create,
                 host_port(moto.endpoint), lambda bucket: f"bucket {bucket} does not exist",
                 ("google-europe-west1", "google-europe-north1"))


def gcs_cloud(gcs: FakeGcs) -> Cloud:
    prefix = f"iso-{uuid.uuid4().hex[:8]}"

    def regions(bucket: str, endpoint: str, good: bool) -> str:
        return (f'google-europe-west1 = {{ url = "gs://{gcs.bucket("google-europe-west1")}/'
                f'{prefix}", emulator_host = "{gcs.endpoint}", project = "btar-test" }}\n'
                f'google-europe-north1 = {{ url = "gs://{bucket}/{prefix}", '
                f'emulator_host = "{endpoint}", project = "btar-test", {FAST} }}\n')

    return Cloud("gcs", "google-europe-west1", "google-europe-north1", regions,
                 gcs.create_bucket, host_port(gcs.endpoint),
                 lambda bucket: f"bucket {bucket} does not exist",
                 ("aws-eu-west-1", "aws-eu-central-1"))


def azure_cloud(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Cloud:
    primary = f"iso{uuid.uuid4().hex[:10]}"
    for account in ("acct1", "acct2"):
        monkeypatch.setenv(f"BTAR_ISO_KEY_{account.upper()}", azurite.keys[account])
    monkeypatch.setenv("BTAR_ISO_WRONG_KEY", azurite.keys["acct1"])  # another account's
    admin("acct1", primary, azurite).create_container()

    def regions(container: str, endpoint: str, good: bool) -> str:
        key = "BTAR_ISO_KEY_ACCT2" if good else "BTAR_ISO_WRONG_KEY"
        return (f'azure-westeurope = {{ url = "az://acct1/{primary}/svc", account_url = '
                f'"{azurite.account_url("acct1")}", account_key_env = "BTAR_ISO_KEY_ACCT1" }}\n'
                f'azure-northeurope = {{ url = "az://acct2/{container}/svc", account_url = '
                f'"{endpoint}/acct2", account_key_env = "{key}", {FAST} }}\n')

    return Cloud("azure", "azure-westeurope", "azure-northeurope", regions,
                 lambda container: admin("acct2", container, azurite).create_container(),
                 (azurite.host, azurite.port), lambda _: "the container does not exist",
                 ("aws-eu-west-1", "aws-eu-central-1"))


def admin(account: str, container: str, azurite: Azurite) -> ContainerClient:
    return ContainerClient(azurite.account_url(account), container,
                           credential={"account_name": account,
                                       "account_key": azurite.keys[account]})


def write_config(folder: Path, cloud: Cloud, place: str, endpoint: str, good: bool) -> Path:
    """orders: the cloud (its destination in ``place`` at ``endpoint``); billing: local
    folders."""
    healthy_primary, healthy_destination = cloud.local
    for local in ("p", "d"):
        (folder / local).mkdir(exist_ok=True)
    config = folder / "btar.toml"
    config.write_text(f"""
catalog = "btar.sqlite"

[replication]
poll_interval = 0.3
busy_poll_interval = 0.1

[regions]
{cloud.regions(place, endpoint, good)}
{healthy_primary} = "{(folder / 'p').as_uri()}"
{healthy_destination} = "{(folder / 'd').as_uri()}"

[[services]]
name = "orders"
type = "postgresql"
region = "{cloud.primary}"

[[services]]
name = "billing"
type = "postgresql"
region = "{healthy_primary}"
""", encoding="utf-8")
    return config


class World:
    """Producers writing a segment of each service every 0.2 s (a base backup first), and the
    `btar sync` daemon, which can be restarted on a new configuration."""

    def __init__(self, config: Path, cloud: Cloud) -> None:
        self.config = config
        self.cloud = cloud
        self.failures: list[BaseException] = []
        self._app = Btar.open(str(config))  # the producers'
        self._app.enable("orders", cloud.destination)
        self._app.enable("billing", cloud.local[1])
        self._producing = threading.Event()
        self._producers = [DemoProducer(self._app.storage(s.region), s,
                                        last_end=datetime.now(UTC))
                           for s in (self._app.service("orders"), self._app.service("billing"))]
        for producer in self._producers:
            producer.base_backup(datetime.now(UTC))
        self._producer = threading.Thread(target=self._produce, name="producer")
        self._producer.start()
        self._daemon: tuple[Btar, threading.Thread, threading.Event] | None = None
        self.start_daemon()

    def _produce(self) -> None:
        try:
            while not self._producing.wait(0.2):
                for producer in self._producers:
                    producer.segment(datetime.now(UTC))
        except BaseException as error:
            self.failures.append(error)

    def start_daemon(self) -> None:
        app = Btar.open(str(self.config), exclusive=True)
        # a destination that throttles is held 0.2 s, then twice as long, up to 1 s
        app.settings = dataclasses.replace(app.settings, throttle_backoff=0.2,
                                           throttle_backoff_cap=1.0)
        stop = threading.Event()

        def replicate() -> None:
            try:
                run_sync(app, [], logger=logging.getLogger("test"), stop=stop)
            except BaseException as error:  # the daemon must not die: the test says so
                self.failures.append(error)

        thread = threading.Thread(target=replicate, name="daemon")
        thread.start()
        self._daemon = (app, thread, stop)

    def daemon_alive(self) -> bool:
        return self._daemon is not None and self._daemon[1].is_alive()

    def stop_daemon(self) -> None:
        if self._daemon is not None:
            app, thread, stop = self._daemon
            self._daemon = None
            stop.set()
            thread.join(60)
            app.close()
            assert not thread.is_alive()

    def stop_producing(self) -> None:
        self._producing.set()
        self._producer.join(30)

    def close(self) -> None:
        self.stop_producing()
        self.stop_daemon()
        self._app.close()

    @contextlib.contextmanager
    def looking(self) -> Iterator[Btar]:
        app = Btar.open(str(self.config))
        try:
            yield app
        finally:
            app.close()

    def published(self, service: str, region: str) -> int:
        with self.looking() as app:
            return sum(1 for r in app.backups(service, region)
                       if r.status == ItemStatus.AVAILABLE)

    def status(self, service: str) -> ServiceStatus:
        with self.looking() as app:
            return app.status_of(service)


def destination_of(status: ServiceStatus, region: str) -> RegionStatus:
    return next(r for r in status.regions if r.region == region)


def wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def caught_up(world: World) -> bool:
    cloud = world.cloud
    return world.status("orders").state == "in sync" and \
        world.published("orders", cloud.destination) >= world.published("orders", cloud.primary)


def same_objects(world: World) -> bool:
    """Orders' destination holds the objects of its primary (names and sizes)."""
    cloud = world.cloud
    with world.looking() as app:
        prefix = f"{app.service('orders').key_prefix}/"
        primary, destination = app.storage(cloud.primary), app.storage(cloud.destination)
        originals = {o.key: o.size for o in primary.iter_objects(prefix)}
        return {o.key: o.size for o in destination.iter_objects(prefix)} == originals


def assert_identical_copies(world: World) -> int:
    """Every object of orders in its destination is the primary's, byte for byte, and every
    primary item is published there; returns the number of primary items not published."""
    cloud = world.cloud
    with world.looking() as app:
        prefix = f"{app.service('orders').key_prefix}/"
        primary, destination = app.storage(cloud.primary), app.storage(cloud.destination)
        for copy in destination.iter_objects(prefix):
            assert destination.read_bytes(copy.key) == primary.read_bytes(copy.key), copy.key
        published = {r.item_id for r in app.backups("orders", cloud.destination)
                     if r.status == ItemStatus.AVAILABLE}
        return sum(1 for r in app.backups("orders", cloud.primary)
                   if r.status == ItemStatus.AVAILABLE and r.item_id not in published)


def shows(world: World, fault: str, words: str) -> bool:
    """Orders' destination shows the fault: its class in status, the reason, and the state
    (paused for the Unreachable family, copies failing per key otherwise)."""
    cloud = world.cloud
    status = world.status("orders")
    region = destination_of(status, cloud.destination)
    if region.fault is None or region.fault.kind != KIND[fault] \
            or words not in region.fault.reason:
        return False
    if KIND[fault] in ("throttled", "error"):
        # not paused: its copies fail one by one, and are tried again
        if status.state is ServiceState.PAUSED:
            return False
        with world.looking() as app:
            return any("copy of" in e.message and "failed" in e.message
                       for e in app.events(service="orders"))
    return status.state is ServiceState.PAUSED and words in status.state_reason


def reason_words(cloud: Cloud, fault: str, place: str) -> str:
    """What the reason of each fault says, at least."""
    return {"missing": cloud.missing_reason(place),
            "down": "after 2 attempts",  # no answer, cannot connect, the connection dropped
            "denied": "check the",
            "hang": f"no answer within {HANG_TIMEOUT:g} s",
            "throttled": "throttled",
            "error500": "the service kept answering 500"}[fault]


@pytest.fixture
def cloud_of(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
             tmp_path: Path) -> Callable[[str, str], Cloud]:
    def make(name: str, fault: str) -> Cloud:
        if name == "s3" and fault == "denied":
            moto: MotoAuth = request.getfixturevalue("moto_auth")
            credentials = tmp_path / "aws-credentials"
            credentials.write_text(
                f"[btar-good]\naws_access_key_id = {moto.key_id}\n"
                f"aws_secret_access_key = {moto.secret}\n"
                "[btar-wrong]\naws_access_key_id = AKIABTARWRONGKEYID01\n"
                "aws_secret_access_key = btarWrongSecret/DoNotLeak\n")
            monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
            return s3_cloud(moto, profiles=True)
        if name == "s3":
            return s3_cloud(request.getfixturevalue("moto_s3"), profiles=False)
        if name == "gcs":
            return gcs_cloud(request.getfixturevalue("fake_gcs"))
        return azure_cloud(request.getfixturevalue("azurite"), monkeypatch)
    return make


@pytest.fixture(scope="module", autouse=True)
def matrix_report() -> Iterator[None]:
    """With BTAR_FAULT_MATRIX=FILE, the cells' results go to FILE (for the issue's table)."""
    yield
    target = os.environ.get("BTAR_FAULT_MATRIX")
    if target and RESULTS:
        with open(target, "w", encoding="utf-8") as out:
            out.write("| cloud | fault | what status says | recovery | items lost |\n"
                      "|---|---|---|---|---|\n")
            for cloud, fault, seen, seconds, lost in RESULTS:
                shown = re.sub(r"orders/[^\s:]+: ", "<key>: ", " ".join(seen.split()))
                shown = (shown if len(shown) <= 240 else shown[:239] + "…").replace("|", "\\|")
                out.write(f"| {cloud} | {fault} | {shown} | {seconds:.1f} s | {lost} |\n")


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("name", CLOUDS)
def test_a_fault_of_one_destination_holds_up_only_its_service(
        name: str, fault: str, cloud_of: Callable[[str, str], Cloud], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cloud = cloud_of(name, fault)
    relay = TcpRelay(*cloud.server, rewrite_host=True)
    relay.up()
    place = f"btariso{uuid.uuid4().hex[:8]}"
    if fault != "missing":
        cloud.create(place)
    # Missing buckets and wrong keys are met directly (server-side copies); the other faults
    # come from the relay (with which S3 and GCS copies stream, the endpoints differing).
    through_relay = fault in RELAYED or (fault == "denied" and name == "gcs")
    endpoint = relay.url if through_relay else cloud.endpoint
    config = write_config(tmp_path, cloud, place, endpoint, good=fault != "denied")
    if fault == "denied" and name == "gcs":
        relay.switch(GCS_UNAUTHORIZED)
    world = World(config, cloud)
    try:
        # The fault: from the start, or once orders replicates for an endpoint that fails.
        if fault in RELAYED:
            wait_for(lambda: world.published("orders", cloud.destination) >= 1)
            if fault == "down":
                relay.down()
            else:
                relay.switch({"hang": "hang", "throttled": THROTTLED[name],
                              "error500": SERVER_ERROR[name]}[fault])
        before = world.published("billing", cloud.local[1])
        words = reason_words(cloud, fault, place)
        wait_for(lambda: shows(world, fault, words))
        # Billing goes on meanwhile, and the daemon lives.
        wait_for(lambda: world.published("billing", cloud.local[1]) >= before + 3)
        assert shows(world, fault, words)
        assert world.daemon_alive()
        status = world.status("orders")
        region = destination_of(status, cloud.destination)
        seen = status.state_with_reason if status.state in REASONED_STATES or \
            region.fault is None else f"{status.state}; {region.fault.kind}: {region.fault.reason}"
        # The fix; then orders catches up by itself (wrong keys: after a restart).
        fixed = time.monotonic()
        if fault == "missing":
            cloud.create(place)
        elif fault == "down":
            relay.up()
        elif fault == "denied" and name != "gcs":
            write_config(tmp_path, cloud, place, endpoint, good=True)
            world.stop_daemon()
            world.start_daemon()
        else:
            relay.switch("pass")
        wait_for(lambda: caught_up(world))
        recovery = time.monotonic() - fixed
        assert world.daemon_alive()
        world.stop_producing()
        # Every primary item is published (the last ones listed too), the fault is over.
        wait_for(lambda: caught_up(world) and same_objects(world)
                 and destination_of(world.status("orders"), cloud.destination).fault is None)
        lost = assert_identical_copies(world)
        assert lost == 0
        RESULTS.append((name, fault, seen, recovery, lost))
    finally:
        world.close()
        relay.down()
    assert not world.failures, world.failures
