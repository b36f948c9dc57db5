"""Every fault of a cloud location is a typed storage error with its fault class and a one-line
reason, against the real servers (moto, fake-gcs-server, Azurite) behind a loopback relay:
a missing bucket or container, wrong credentials, throttling, 500s, a refused connection and
an endpoint that accepts connections and never answers (bounded by the read timeout)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import google.auth
import pytest
from azure.storage.blob import ContainerClient
from google.cloud import storage as gcs_storage

from engine.errors import (
    AccessDenied,
    LocationMissing,
    StorageError,
    Throttled,
    Unreachable,
)
from engine.storage.azure import AzureStorage
from engine.storage.base import Storage
from engine.storage.gcs import GcsStorage
from engine.storage.locations import AzureLocation, S3Location
from engine.storage.s3 import S3Storage
from tests.integration.azurite_server import Azurite
from tests.integration.conftest import MotoAuth
from tests.integration.gcs_server import FakeGcs
from tests.integration.relay import GCS_UNAUTHORIZED, SERVER_ERROR, THROTTLED, TcpRelay
from tests.integration.s3_server import MotoS3

pytestmark = pytest.mark.integration

#: how long the tests let a hanging endpoint go unanswered per request
READ_TIMEOUT = 0.5
#: the read timeout of every other request (emulators on a busy machine can be slow)
PATIENT = 20.0
WRONG_SECRET = "btarWrongSecret/DoNotLeak+00000000000000"


def no_sleep(_: float) -> None:
    pass


@dataclass
class Cloud:
    """A cloud's emulator, a healthy source location, and a destination location opened
    through any endpoint (a relay, or the emulator itself)."""

    name: str
    host: str
    port: int
    source: Storage
    #: the destination location through ``endpoint`` (bucket or container ``place``), with
    #: a read timeout
    open: Callable[[str, str, float], Storage]
    #: a bucket or container that exists
    place: str


@pytest.fixture(params=["s3", "gcs", "azure"])
def cloud(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    prefix = f"faults-{uuid.uuid4().hex[:8]}"
    if request.param == "s3":
        moto: MotoS3 = request.getfixturevalue("moto_s3")

        def open_s3(endpoint: str, bucket: str, timeout: float = PATIENT) -> Storage:
            location = S3Location(url=f"s3://{bucket}/{prefix}", endpoint_url=endpoint,
                                  max_attempts=2)
            return S3Storage.from_location(location, "aws-eu-central-1",
                                           read_timeout=timeout, sleep=no_sleep)

        host, _, port = moto.endpoint.removeprefix("http://").partition(":")
        source = open_s3(moto.endpoint, moto.bucket("aws-eu-west-1"), PATIENT)
        yield Cloud("s3", host, int(port), source, open_s3, moto.bucket("aws-eu-central-1"))
    elif request.param == "gcs":
        gcs: FakeGcs = request.getfixturevalue("fake_gcs")

        def open_gcs(endpoint: str, bucket: str, timeout: float = PATIENT) -> Storage:
            return GcsStorage(bucket, prefix, emulator_host=endpoint, max_attempts=2,
                              read_timeout=timeout, sleep=no_sleep)

        host, _, port = gcs.endpoint.removeprefix("http://").partition(":")
        source = open_gcs(gcs.endpoint, gcs.bucket("google-europe-west1"), PATIENT)
        yield Cloud("gcs", host, int(port), source, open_gcs,
                    gcs.bucket("google-europe-west4"))
    else:
        azurite: Azurite = request.getfixturevalue("azurite")
        for account in ("acct1", "acct2"):
            monkeypatch.setenv(f"BTAR_FAULTS_{account.upper()}", azurite.keys[account])
        containers = {account: f"faults{uuid.uuid4().hex[:10]}" for account in ("acct1", "acct2")}
        for account, container in containers.items():
            ContainerClient(azurite.account_url(account), container, credential={
                "account_name": account, "account_key": azurite.keys[account]}
            ).create_container()

        def open_azure_account(account: str) -> Callable[[str, str, float], Storage]:
            def open_azure(endpoint: str, container: str, timeout: float = PATIENT) -> Storage:
                location = AzureLocation(url=f"az://{account}/{container}/{prefix}",
                                         account_url=f"{endpoint}/{account}",
                                         account_key_env=f"BTAR_FAULTS_{account.upper()}")
                return AzureStorage.from_location(location, "azure-northeurope",
                                                  max_attempts=2, read_timeout=timeout,
                                                  sleep=no_sleep)
            return open_azure

        endpoint = f"http://{azurite.host}:{azurite.port}"
        source = open_azure_account("acct1")(endpoint, containers["acct1"], PATIENT)
        yield Cloud("azure", azurite.host, azurite.port, source, open_azure_account("acct2"),
                    containers["acct2"])


@pytest.fixture
def relay(cloud: Cloud) -> Iterator[TcpRelay]:
    relay = TcpRelay(cloud.host, cloud.port, rewrite_host=True)
    relay.up()
    try:
        yield relay
    finally:
        relay.down()


def operations(cloud: Cloud, target: Storage) -> dict[str, Callable[[], object]]:
    """A listing, a write and a copy from the healthy source into ``target``."""
    cloud.source.write("src", b"source bytes")
    return {"list": target.list_page,
            "write": lambda: target.write("k", b"payload"),
            "copy": lambda: target.copy_from(cloud.source, "src", "copy", size=12)}


def expect(operation: Callable[[], object], error: type[StorageError], fault: str,
           *words: str) -> StorageError:
    """``operation`` fails with exactly ``error``, whose one-line reason has ``words``."""
    with pytest.raises(StorageError) as caught:
        operation()
    assert type(caught.value) is error, repr(caught.value)
    assert caught.value.fault == fault
    text = str(caught.value)
    assert "\n" not in text, text
    for word in words:
        assert word in text, text
    return caught.value


def test_works_through_the_relay(cloud: Cloud, relay: TcpRelay) -> None:
    target = cloud.open(relay.url, cloud.place, PATIENT)
    for operation in operations(cloud, target).values():
        operation()
    assert target.read_bytes("copy") == b"source bytes"


def test_a_missing_bucket_or_container_is_location_missing(cloud: Cloud) -> None:
    endpoint = f"http://{cloud.host}:{cloud.port}"
    absent = f"btarmissing{uuid.uuid4().hex[:8]}"
    target = cloud.open(endpoint, absent, PATIENT)
    reason = "the container does not exist" if cloud.name == "azure" \
        else f"bucket {absent} does not exist"
    for operation in operations(cloud, target).values():
        expect(operation, LocationMissing, "missing", reason)


def test_throttling_after_the_retries_is_throttled(cloud: Cloud, relay: TcpRelay) -> None:
    target = cloud.open(relay.url, cloud.place, PATIENT)
    steps = operations(cloud, target)
    relay.switch(THROTTLED[cloud.name])
    word = "throttled by the service after 2 attempts" if cloud.name == "azure" \
        else "still throttled after 2 attempts"
    said = {"s3": "SlowDown", "gcs": "rateLimitExceeded", "azure": "ServerBusy"}[cloud.name]
    for operation in steps.values():
        expect(operation, Throttled, "throttled", word, said)


def test_server_errors_after_the_retries_are_storage_errors(cloud: Cloud,
                                                           relay: TcpRelay) -> None:
    target = cloud.open(relay.url, cloud.place, PATIENT)
    steps = operations(cloud, target)
    relay.switch(SERVER_ERROR[cloud.name])
    said = {"s3": "InternalError", "gcs": "backendError", "azure": "InternalError"}[cloud.name]
    for operation in steps.values():
        expect(operation, StorageError, "error", "the service kept answering 500 after 2 "
               "attempts", said)


def test_a_refused_connection_is_unreachable(cloud: Cloud, relay: TcpRelay) -> None:
    target = cloud.open(relay.url, cloud.place, PATIENT)
    steps = operations(cloud, target)
    relay.down()
    for operation in steps.values():
        expect(operation, Unreachable, "unreachable", "after 2 attempts")


def test_an_endpoint_that_never_answers_is_unreachable_in_bounded_time(
        cloud: Cloud, relay: TcpRelay) -> None:
    target = cloud.open(relay.url, cloud.place, READ_TIMEOUT)
    steps = operations(cloud, target)
    relay.switch("hang")
    for operation in steps.values():
        began = time.monotonic()
        expect(operation, Unreachable, "unreachable",
               f"no answer within {READ_TIMEOUT:g} s after 2 attempts")
        # two read timeouts, no more (botocore first waits up to 1 s for "100 Continue"
        # before it sends the body of an upload)
        assert time.monotonic() - began < 2 * (READ_TIMEOUT + 1.0) + 1.0
    relay.switch("pass")
    cloud.open(relay.url, cloud.place, PATIENT).write("k", b"payload")  # it answers again


@pytest.mark.parametrize("cloud", ["azure"], indirect=True)
def test_a_copy_source_the_service_cannot_read_is_no_fault_of_the_destination(
        cloud: Cloud) -> None:
    """Azurite copies between its accounts only when the request's Host is the source's host;
    through a relay that keeps the Host header it answers CannotVerifyCopySource (what Azure
    answers when it cannot read the source: a bad SAS, network rules). A storage error of the
    copy, not an unreachable or forbidden destination."""
    relay = TcpRelay(cloud.host, cloud.port, rewrite_host=False)
    relay.up()
    try:
        target = cloud.open(relay.url, cloud.place, PATIENT)
        copy = operations(cloud, target)["copy"]
        expect(copy, StorageError, "error", "could not read the copy source",
               "CannotVerifyCopySource")
        target.write("k", b"payload")  # the destination itself answers
    finally:
        relay.down()


def test_the_default_timeouts_are_bounded() -> None:
    """Without test settings, a hanging endpoint is Unreachable within minutes (a few read
    timeouts), not max_attempts of them."""
    from engine.storage import azure, gcs, s3

    for module in (s3, gcs, azure):
        bound = module.READ_TIMEOUT * module.TIMEOUT_ATTEMPTS
        assert 30 <= bound <= 240, module.__name__
        assert module.CONNECT_TIMEOUT <= 30, module.__name__


# --- wrong credentials --------------------------------------------------------------------------

def test_wrong_s3_keys_are_access_denied(moto_auth: MotoAuth, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[good]\naws_access_key_id = {moto_auth.key_id}\n"
        f"aws_secret_access_key = {moto_auth.secret}\n"
        "[unknown-key]\naws_access_key_id = AKIABTARUNKNOWNKEY01\n"
        f"aws_secret_access_key = {WRONG_SECRET}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    prefix = f"faults-{uuid.uuid4().hex[:8]}"

    def open_as(profile: str, region: str) -> S3Storage:
        return S3Storage.from_location(S3Location(
            url=f"s3://{moto_auth.bucket(region)}/{prefix}", endpoint_url=moto_auth.endpoint,
            profile=profile, max_attempts=2), region, sleep=no_sleep)

    source = open_as("good", "aws-eu-west-1")
    source.write("src", b"source bytes")
    assert open_as("good", "aws-eu-central-1").copy_from(source, "src", "copy").info.size == 12
    target = open_as("unknown-key", "aws-eu-central-1")
    for operation in (target.list_page, lambda: target.write("k", b"payload"),
                      lambda: target.copy_from(source, "src", "copy")):
        error = expect(operation, AccessDenied, "denied", "check the AWS credentials",
                       "InvalidAccessKeyId")
        assert WRONG_SECRET not in str(error)
        assert "AKIABTARUNKNOWNKEY01" not in str(error)


def test_a_wrong_azure_key_is_access_denied(azurite: Azurite,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    container = f"faults{uuid.uuid4().hex[:10]}"
    ContainerClient(azurite.account_url("acct2"), container, credential={
        "account_name": "acct2", "account_key": azurite.keys["acct2"]}).create_container()
    wrong = azurite.keys["acct1"]  # a well-formed key, of another account
    monkeypatch.setenv("BTAR_FAULTS_WRONG", wrong)
    target = AzureStorage.from_location(AzureLocation(
        url=f"az://acct2/{container}/p", account_url=azurite.account_url("acct2"),
        account_key_env="BTAR_FAULTS_WRONG"), "azure-northeurope", max_attempts=2,
        sleep=no_sleep)
    for operation in (target.list_page, lambda: target.write("k", b"payload")):
        error = expect(operation, AccessDenied, "denied", "check the account key or SAS token",
                       "HTTP 403")
        assert wrong not in str(error)


# fake-gcs-server checks no credentials: the relay refuses them as GCS does.
@pytest.mark.parametrize("cloud", ["gcs"], indirect=True)
def test_gcs_refusing_the_credentials_is_access_denied(cloud: Cloud, relay: TcpRelay) -> None:
    target = cloud.open(relay.url, cloud.place, PATIENT)
    steps = operations(cloud, target)
    relay.switch(GCS_UNAUTHORIZED)
    for operation in steps.values():
        # The client answers a 401 by refreshing its token; emulator (anonymous) credentials
        # cannot be refreshed, real ones would be, and the 401 would come back.
        expect(operation, AccessDenied, "denied", "check the Google credentials")


class _RefusingTokens(BaseHTTPRequestHandler):
    """An OAuth token endpoint that refuses the refresh token (revoked, or a wrong secret)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        raw = json.dumps({"error": "invalid_grant",
                          "error_description": "Token has been expired or revoked."}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_google_credentials_that_get_no_token_are_access_denied(
        fake_gcs: FakeGcs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RefusingTokens)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        path = tmp_path / "user.json"
        path.write_text(json.dumps({
            "type": "authorized_user", "client_id": "btar-fake.apps.googleusercontent.com",
            "client_secret": WRONG_SECRET, "refresh_token": "1//btarFakeRefresh-DoNotLeak"}))
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
        credentials, _ = google.auth.default(
            scopes=["https://www.googleapis.com/auth/devstorage.read_write"])
        credentials = credentials.with_token_uri(
            f"http://127.0.0.1:{server.server_address[1]}/token")
        client = gcs_storage.Client(project="btar-test", credentials=credentials,
                                    client_options={"api_endpoint": fake_gcs.endpoint})
        target = GcsStorage(fake_gcs.bucket("google-europe-west4"), "p", client=client,
                            max_attempts=2, sleep=no_sleep)
        for operation in (target.list_page, lambda: target.write("k", b"payload")):
            error = expect(operation, AccessDenied, "denied", "check the Google credentials",
                           "RefreshError")
            assert WRONG_SECRET not in str(error)
            assert "DoNotLeak" not in str(error)
    finally:
        server.shutdown()
        server.server_close()


def test_a_missing_source_bucket_is_the_source_s_fault(moto_s3: MotoS3) -> None:
    """A server-side copy from a bucket that is gone: the source's location is missing, not
    the destination's (which must not be paused for it)."""
    prefix = f"faults-{uuid.uuid4().hex[:8]}"
    absent = f"btarmissing{uuid.uuid4().hex[:8]}"

    def open_s3(bucket: str) -> S3Storage:
        return S3Storage.from_location(S3Location(
            url=f"s3://{bucket}/{prefix}", endpoint_url=moto_s3.endpoint, max_attempts=2),
            "aws-eu-central-1", sleep=no_sleep)

    source, target = open_s3(absent), open_s3(moto_s3.bucket("aws-eu-central-1"))
    error = expect(lambda: target.copy_from(source, "src", "copy", size=12),
                   LocationMissing, "missing", f"bucket {absent} does not exist")
    assert error.location == source.name
