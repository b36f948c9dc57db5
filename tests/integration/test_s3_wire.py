"""The lean S3 listing path against a moto that checks every signature: it lists what
botocore lists, awkward keys and pages included."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from engine.errors import AccessDenied
from engine.storage.locations import S3Location
from engine.storage.s3 import S3Storage
from engine.storage.s3_wire import Wire
from tests.integration.conftest import MotoAuth

KEYS = ["a b", "a+b", "a%2Bb", "é/ü", "x=y&z", "tilde~", "log/1/0001", "log/1/0002",
        "log/1/0003", "log/2/history.json"]


def test_the_lean_path_lists_what_botocore_lists(moto_auth: MotoAuth, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[good]\naws_access_key_id = {moto_auth.key_id}\n"
                           f"aws_secret_access_key = {moto_auth.secret}\n"
                           f"[bad]\naws_access_key_id = {moto_auth.key_id}\n"
                           "aws_secret_access_key = not-the-secret\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    location = S3Location(url=f"s3://{moto_auth.bucket('aws-eu-west-1')}/w-{uuid.uuid4().hex[:8]}",
                          endpoint_url=moto_auth.endpoint, profile="good")
    lean = S3Storage.from_location(location, "aws-eu-west-1")
    for key in KEYS:
        lean.write(key, key.encode())
    botocore_only = S3Storage.from_location(location, "aws-eu-west-1")
    botocore_only._wire = False
    for prefix, start_after, limit in (("", None, 1000), ("", None, 3), ("log/", "log/1/0001", 2),
                                       ("a", "a b", 1000), ("é", None, 1000)):
        mine = lean.list_page(prefix, start_after, limit)
        theirs = botocore_only.list_page(prefix, start_after, limit)
        assert mine == theirs, (prefix, start_after, limit)
    assert isinstance(lean._wire, Wire)  # moto checked its signatures, and let it list
    # Copies, awkward keys included, on the lean path: the same bytes, verified.
    target = S3Storage.from_location(replace(
        location, url=f"s3://{moto_auth.bucket('aws-eu-central-1')}/w-{uuid.uuid4().hex[:8]}"),
        "aws-eu-central-1")
    for key in KEYS:
        report = target.copy_from(lean, key, key, size=len(key.encode()),
                                  sha256=hashlib.sha256(key.encode()).hexdigest())
        assert report.method == "server-side"
        assert report.verified_by is not None, key
        assert target.read_bytes(key) == key.encode()
    assert isinstance(target._wire, Wire)
    wrong = S3Storage.from_location(replace(location, profile="bad"),
                                    "aws-eu-west-1", sleep=lambda _: None)
    with pytest.raises(AccessDenied, match="SignatureDoesNotMatch"):
        wrong.list_page("", None, 10)
    assert isinstance(wrong._wire, Wire)
    assert [o.key for o in lean.list_page("", None, 1000).objects] == sorted(KEYS)
