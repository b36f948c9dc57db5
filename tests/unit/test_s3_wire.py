"""The lean S3 listing path (engine.storage.s3_wire) signs as AWS and botocore do, and reads a
listing and an error as botocore would."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from engine.storage import s3_wire
from engine.storage.s3_wire import Wire, WireDeclined, parse_listing

KEY_ID, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DAY = datetime(2013, 5, 24, tzinfo=UTC)


def wire(endpoint: str = "https://s3.amazonaws.com", bucket: str = "examplebucket", *,
         token: str | None = None, path_style: bool = False) -> Wire:
    return Wire(endpoint, bucket, "us-east-1", Credentials(KEY_ID, SECRET, token),
                path_style=path_style, connect_timeout=1, read_timeout=1, pool_size=1,
                ca_certs=None)


def test_the_signature_of_awss_own_example() -> None:
    # "Example: GET Bucket (List Objects)" of the SigV4 header-based authentication docs.
    headers = wire().signed_headers("GET", {"max-keys": "2", "prefix": "J"}, DAY)
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
        "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")


@pytest.mark.parametrize("path_style", [False, True])
def test_the_signature_is_botocores_with_a_token_and_awkward_keys(
        path_style: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    query = {"list-type": "2", "encoding-type": "url", "max-keys": "1000",
             "prefix": "svc one/log+x/é~_-.", "start-after": "svc one/log+x/a=b&c/0001"}
    lean = wire("http://127.0.0.1:9000", "btar-bucket", token="FwoGZXIvYXdzE//token+=",
                path_style=path_style)
    mine = lean.signed_headers("GET", query, DAY)
    host = "127.0.0.1:9000" if path_style else "btar-bucket.127.0.0.1:9000"
    path = "/btar-bucket" if path_style else "/"
    url = f"http://{host}{path}?" + "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items()))
    request = AWSRequest(method="GET", url=url, headers={
        "x-amz-content-sha256": s3_wire.EMPTY_SHA256})
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: DAY.replace(tzinfo=None))
    S3SigV4Auth(Credentials(KEY_ID, SECRET, "FwoGZXIvYXdzE//token+="), "s3",
                "us-east-1").add_auth(request)
    assert mine["authorization"] == request.headers["Authorization"]
    assert mine["x-amz-security-token"] == request.headers["X-Amz-Security-Token"]


def test_a_listing_is_read_as_botocore_reads_it() -> None:
    body = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix>svc/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
  <EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
  <Contents><Key>svc/a+b%2Bc%C3%A9</Key><LastModified>2026-12-06T19:15:16.000Z</LastModified>
    <ETag>&quot;x&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>svc/log/1</Key><LastModified>2026-12-06T19:15:17.250Z</LastModified>
    <Size>0</Size></Contents>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
</ListBucketResult>"""
    answer = parse_listing(body)
    assert answer == {
        "Contents": [
            {"Key": "svc/a b+cé", "Size": 12,
             "LastModified": datetime(2026, 12, 6, 19, 15, 16, tzinfo=UTC)},
            {"Key": "svc/log/1", "Size": 0,
             "LastModified": datetime(2026, 12, 6, 19, 15, 17, 250000, tzinfo=UTC)}],
        "IsTruncated": True,
        "NextContinuationToken": "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="}
    empty = parse_listing(b"<ListBucketResult><IsTruncated>false</IsTruncated>"
                          b"</ListBucketResult>")
    assert empty == {"Contents": [], "IsTruncated": False}


def test_errors_are_botocores_and_redirects_are_left_to_it() -> None:
    missing = s3_wire._error(404, b"<Error><Code>NoSuchBucket</Code><Message>gone</Message>"
                                  b"</Error>", {}, "ListObjectsV2")
    assert isinstance(missing, ClientError)
    assert missing.response["Error"] == {"Code": "NoSuchBucket", "Message": "gone"}
    assert missing.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    bare = s3_wire._error(503, b"", {}, "ListObjectsV2")
    assert isinstance(bare, ClientError)
    assert bare.response["Error"]["Code"] == "503"
    for status, body in ((301, b"<Error><Code>PermanentRedirect</Code></Error>"),
                         (400, b"<Error><Code>AuthorizationHeaderMalformed</Code></Error>"),
                         (307, b"")):
        assert isinstance(s3_wire._error(status, body, {}, "ListObjectsV2"), WireDeclined)


def test_botocore_sends_where_the_lean_path_would_not_do_as_it_does(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    for name in s3_wire.BOTOCORE_ONLY_ENV:
        monkeypatch.delenv(name, raising=False)
    client = boto3.session.Session().client("s3", region_name="eu-west-1")
    credentials = Credentials(KEY_ID, SECRET)

    def made(bucket: str, creds: Credentials | None = credentials) -> Wire | None:
        return Wire.for_client(client, bucket, creds, None, path_style=False,
                               connect_timeout=1, read_timeout=1, pool_size=1)

    assert made("btar-primary") is not None
    assert made("btar.primary") is None  # a dotted name is no TLS host name
    assert made("btar-primary", None) is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert made("btar-primary") is None
