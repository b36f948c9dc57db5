"""The Barman Cloud reader without servers: names, backup.info, WAL and histories as
barman-cloud 3.4 writes them (barman/cloud.py, barman/infofile.py, barman/xlog.py), the
configuration of a barman-cloud service, the fork's recovery settings, and a replication + fork
plan over memory storages."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import os
import pwd
import subprocess
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.api import Btar
from engine.config import parse_config
from engine.errors import BadInput, ConfigError, CorruptBackup, ObjectNotFound
from engine.fork import local_path
from engine.formats import get_layout
from engine.formats.barman_cloud import (
    BarmanCloudLayout,
    consistent_from,
    summarize_backup_info,
)
from engine.formats.base import BackupMarker
from engine.formats.pgbackrest import NO_COMMIT, wal_file_name
from engine.model import Digest, ItemKind, ItemStatus, ObjectInfo
from engine.restore_tools import ToolOptions
from engine.restore_tools.barman_cloud import (
    allowed_wal,
    cloud_restore_command,
    cloud_source,
    lay_out_barman_cloud,
    recovery_settings,
)
from engine.storage.locations import (
    AzureLocation,
    GcsLocation,
    LocalLocation,
    S3Location,
)
from engine.storage.memory import MemoryStorage
from tests.drills.test_pgbackrest_reader import commit, segment
from tests.key_shapes import shaped_keys
from tests.worlds import ListingLog, ManualClock, orders_app

T0 = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)
LAYOUT = BarmanCloudLayout("pg")
BACKUP = "20261206T140000"


def backup_info(status: str = "DONE", *, begin_wal: str = "000000010000000000000002",
                end_wal: str = "000000010000000000000002", tablespaces: str = "None",
                end: str = "2026-12-06 14:00:05.250000+00:00", snapshots: str = "None") -> bytes:
    """A backup.info as barman-cloud-backup writes it (every field, sorted, ``None`` unset)."""
    fields = {
        "backup_label": "'START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\\n'",
        "begin_offset": "40", "begin_time": "2026-12-06 14:00:01.125000+00:00",
        "begin_wal": begin_wal, "begin_xlog": "0/2000028", "compression": "None",
        "config_file": "/db/postgresql.conf", "copy_stats": "{'total_time': 1.5}",
        "deduplicated_size": "None", "end_offset": "312", "end_time": end, "end_wal": end_wal,
        "end_xlog": "0/2000138", "error": "None", "hba_file": "/db/pg_hba.conf",
        "ident_file": "/db/pg_ident.conf", "included_files": "None", "mode": "concurrent",
        "pgdata": "/db", "server_name": "cloud", "size": "None", "snapshots_info": snapshots,
        "status": status, "systemid": "7312345678901234567", "tablespaces": tablespaces,
        "timeline": "1", "version": "150004", "xlog_segment_size": "16777216",
    }
    return "".join(f"{k}={v}\n" for k, v in sorted(fields.items())).encode()


def info(key: str, size: int = 10, *, md5: str | None = None) -> ObjectInfo:
    return ObjectInfo(key, size, T0, digests=(Digest("md5", md5),) if md5 else ())


def wal_key(timeline: int, segno: int, ext: str = ".gz") -> str:
    name = wal_file_name(timeline, segno)
    return f"pg/wals/{name[:16]}/{name}{ext}"


def marker_for(listing: list[ObjectInfo], layout: BarmanCloudLayout = LAYOUT) -> ObjectInfo:
    """The backup's marker as the engine hands it to parse_marker: discovered, with what the
    listing shows under its payload_prefixes (engine.replication ``_with_payload``)."""
    key = f"pg/base/{BACKUP}/backup.info"
    marker = next(m for m in layout.discover(listing).markers if m.key == key)
    prefixes = layout.payload_prefixes(key, b"")
    return BackupMarker.of(marker, [o for o in listing if o.key.startswith(prefixes)])


# --- discovery -----------------------------------------------------------------------------

def test_discovery_finds_backups_wal_and_histories_of_its_server() -> None:
    listing = [info(k) for k in [
        f"pg/base/{BACKUP}/16385.tar.gz", f"pg/base/{BACKUP}/backup.info",
        f"pg/base/{BACKUP}/data.tar.gz", f"pg/base/{BACKUP}/data_0001.tar.gz",
        "pg/base/20261206T150000/data.tar",  # still uploading: no backup.info yet
        "pg/wals/00000002.history", "pg/wals/00000003.history.gz",
        wal_key(1, 3), wal_key(1, 2, ""), wal_key(1, 2, ".bz2"),
        "pg/wals/0000000100000000/000000010000000000000002.00000028.backup.gz",
        "pg/wals/0000000100000000/000000010000000000000004.partial",
        "pg/wals/0000000100000000/000000010000000000000005.snappy",
        "pg/wals/0000000200000000/000000010000000000000006.gz",  # in the wrong folder
        "other/base/20261206T140000/backup.info", wal_key(1, 7).replace("pg/", "other/"),
    ]]
    found = LAYOUT.discover(listing)
    assert found.segments == ()
    ids = [LAYOUT.item_id_of_marker(m.key) for m in found.markers]
    assert ids == [f"base/{BACKUP}", "history/2", "history/3", "log/1/0000000002",
                   "log/1/0000000003", "log/1/0000000005"]
    assert LAYOUT.payload_prefixes(found.markers[0].key, b"") == (f"pg/base/{BACKUP}/",)
    assert LAYOUT.payload_prefixes(wal_key(1, 2), b"") == ()
    # the first name of a segment in key order, as barman-cloud-wal-restore's listing
    assert found.markers[3].key == wal_key(1, 2, "")
    assert LAYOUT.log_position(wal_key(1, 0x1FF)) == ("1", 0x1FF)
    assert LAYOUT.log_position(f"pg/base/{BACKUP}/data.tar") is None
    # listing areas: the WAL, and each backup's backup.info (its tar files sort on both sides)
    assert LAYOUT.listing_areas(wal_key(1, 2)) == ("pg/wals/",)
    assert LAYOUT.listing_areas("pg/wals/00000002.history") == ("pg/wals/",)
    assert LAYOUT.listing_areas(f"pg/base/{BACKUP}/backup.info") == ("pg/base/",)
    assert LAYOUT.listing_areas(f"pg/base/{BACKUP}/16385.tar.gz") == ()
    assert LAYOUT.listing_areas("other/base/20261206T140000/backup.info") == ()


def test_get_layout_takes_the_server_as_option() -> None:
    layout = get_layout("barman-cloud:db-1")
    assert isinstance(layout, BarmanCloudLayout)
    assert layout.server == "db-1"
    assert get_layout("barman-cloud:db-1") is layout
    with pytest.raises(BadInput, match="server name"):
        get_layout("barman-cloud:../x")


# --- backup.info -------------------------------------------------------------------------------

def test_backup_info_fields() -> None:
    summary = summarize_backup_info(BACKUP, backup_info(
        tablespaces="[('tbs', 16385, '/srv/tbs')]").decode())
    assert summary.status == "DONE"
    assert summary.begin_time == datetime(2026, 12, 6, 14, 0, 1, 125000, tzinfo=UTC)
    assert summary.tablespaces == (("tbs", 16385, "/srv/tbs"),)
    assert (summary.begin_wal, summary.timeline, summary.version) == (
        "000000010000000000000002", 1, 150004)
    assert consistent_from(summary.end_time) == datetime(2026, 12, 6, 14, 0, 6, tzinfo=UTC)
    assert consistent_from(T0) == T0


def test_a_done_backup_becomes_a_base_item_with_its_folder_as_payload() -> None:
    listing = [info(f"pg/base/{BACKUP}/data.tar.gz", 4000, md5="0" * 32),
               info(f"pg/base/{BACKUP}/data_0001.tar.gz", 300),
               info(f"pg/base/{BACKUP}/backup.info", 900)]
    data = backup_info()
    item = LAYOUT.parse_marker(marker_for(listing), data)
    assert (item.kind, item.item_id, item.stream, item.seq) == (
        ItemKind.BASE, f"base/{BACKUP}", "1", 2)
    assert item.start_time == datetime(2026, 12, 6, 14, 0, 1, 125000, tzinfo=UTC)
    assert item.end_time == datetime(2026, 12, 6, 14, 0, 6, tzinfo=UTC)
    assert [(o.key, o.size, o.sha256) for o in item.payload] == [
        (f"pg/base/{BACKUP}/data.tar.gz", 4000, None),
        (f"pg/base/{BACKUP}/data_0001.tar.gz", 300, None)]
    # the listing's own digest pins the copy to the bytes that were listed
    assert item.payload[0].digest == Digest("md5", "0" * 32)
    assert item.payload[1].digest is None
    assert item.marker.key.endswith("backup.info")
    assert item.marker.sha256 is not None
    assert item.objects[-1] == item.marker  # backup.info is published last


@pytest.mark.parametrize(("data", "extra", "problem"), [
    (backup_info("FAILED"), [], "status FAILED"),
    (backup_info(snapshots="{'provider': 'gcp', 'snapshots': []}"), [], "snapshot"),
    (backup_info(tablespaces="[('tbs', 16385, '/srv/tbs')]"), [], "16385.tar"),
    (backup_info(), ["data_0002.tar.gz"], "data_0001.tar"),
    (backup_info(end="2026-12-06 14:00:05"), [], "no time zone"),
    (backup_info(end="2026-12-06 13:00:00+00:00"), [], "before begin_time"),
    (backup_info(begin_wal="nonsense"), [], "not a Barman backup.info"),
    (b"\xff\xfe", [], "backup.info|codec"),
    (b"just text\n", [], "key=value"),
])
def test_a_backup_info_that_is_no_complete_backup_is_refused(data: bytes, extra: list[str],
                                                              problem: str) -> None:
    listing = [info(f"pg/base/{BACKUP}/{name}") for name in ["data.tar.gz", *extra]]
    listing.append(info(f"pg/base/{BACKUP}/backup.info"))
    layout = BarmanCloudLayout("pg")
    with pytest.raises(CorruptBackup, match=problem):
        layout.parse_marker(marker_for(listing, layout), data)


def test_a_failed_backup_is_refused_once_not_on_every_pass() -> None:
    layout = BarmanCloudLayout("pg")
    listing = [info(f"pg/base/{BACKUP}/data.tar"), info(f"pg/base/{BACKUP}/backup.info")]
    with pytest.raises(CorruptBackup, match="FAILED"):
        layout.parse_marker(marker_for(listing, layout), backup_info("FAILED"))
    assert layout.discover(listing).markers == ()
    # another object at that key (not what barman-cloud does, but possible) is read again
    rewritten = [listing[0], info(f"pg/base/{BACKUP}/backup.info", 11)]
    assert layout.parse_marker(marker_for(rewritten, layout), backup_info()).item_id == \
        f"base/{BACKUP}"


def test_a_backup_info_without_its_listing_is_refused() -> None:
    key = f"pg/base/{BACKUP}/backup.info"
    with pytest.raises(CorruptBackup, match=r"listing of its backup's folder"):
        LAYOUT.parse_marker(ObjectInfo(key, 10, T0), backup_info())


# --- WAL and histories -----------------------------------------------------------------------

@pytest.mark.parametrize(("ext", "pack"), [(".gz", gzip.compress), (".bz2", bz2.compress),
                                           ("", bytes)])
def test_a_wal_segment_is_timed_by_its_commits(ext: str, pack: object) -> None:
    raw = segment(1, 5, [commit(T0), commit(T0 + timedelta(seconds=2))])
    data = pack(raw)  # type: ignore[operator]
    item = LAYOUT.parse_marker(ObjectInfo(wal_key(1, 5, ext), len(data), T0), data)
    assert (item.kind, item.item_id, item.stream, item.seq) == (
        ItemKind.LOG, "log/1/0000000005", "1", 5)
    assert (item.start_time, item.end_time) == (T0, T0 + timedelta(seconds=2))
    assert item.payload == ()
    assert item.marker.sha256 is not None


def test_wal_that_is_not_what_its_name_says_is_refused() -> None:
    quiet = gzip.compress(segment(1, 5, []))
    item = LAYOUT.parse_marker(ObjectInfo(wal_key(1, 5), len(quiet), T0), quiet)
    assert item.start_time == item.end_time == NO_COMMIT
    with pytest.raises(CorruptBackup, match="not what its name says"):
        LAYOUT.parse_marker(ObjectInfo(wal_key(1, 6), len(quiet), T0), quiet)
    with pytest.raises(CorruptBackup, match="decompress"):
        LAYOUT.parse_marker(ObjectInfo(wal_key(1, 5), 5, T0), b"plain")
    with pytest.raises(CorruptBackup, match="snappy-compressed WAL cannot be read"):
        LAYOUT.parse_marker(ObjectInfo(wal_key(1, 5, ".snappy"), 5, T0), b"plain")


def test_a_timeline_history_names_its_parent_and_switch_segment() -> None:
    text = b"1\t0/5000198\tno recovery target specified\n"
    for key, data in [("pg/wals/00000002.history", text),
                      ("pg/wals/00000002.history.gz", gzip.compress(text))]:
        item = LAYOUT.parse_marker(ObjectInfo(key, len(data), T0), data)
        assert (item.kind, item.item_id, item.stream, item.parent, item.seq) == (
            ItemKind.HISTORY, "history/2", "2", "1", 5)
    # a recovery to a time records the commit it stopped at: there the timelines part
    stopped = b"1\t0/5000198\tbefore 2026-12-06 13:52:59.1+00\n"
    item = LAYOUT.parse_marker(ObjectInfo("pg/wals/00000002.history", 40, T0), stopped)
    assert item.start_time == datetime(2026, 12, 6, 13, 52, 59, 100000, tzinfo=UTC)
    with pytest.raises(CorruptBackup, match="cannot branch off"):
        LAYOUT.parse_marker(ObjectInfo("pg/wals/00000002.history", 5, T0), b"3\t0/5000198\n")


# --- configuration -----------------------------------------------------------------------------

def config(**service: str) -> dict[str, object]:
    return {"regions": {"aws-eu-west-1": "s3://primary/pg", "aws-eu-central-1": "s3://copy/pg"},
            "services": [{"name": "orders", "type": "postgresql", "region": "aws-eu-west-1",
                          **service}]}


def test_a_barman_cloud_service_names_its_server() -> None:
    parsed = parse_config(config(layout="barman-cloud", server="pg"), "btar.toml")
    assert parsed.services[0].to_service().layout == "barman-cloud:pg"
    with pytest.raises(ConfigError, match="server"):
        parse_config(config(layout="barman-cloud"), "btar.toml")
    with pytest.raises(ConfigError, match="server"):
        parse_config(config(server="pg"), "btar.toml")
    with pytest.raises(ConfigError, match="PostgreSQL"):
        parse_config({**config(layout="barman-cloud", server="pg"), "services": [
            {"name": "shop", "type": "mysql", "region": "aws-eu-west-1",
             "layout": "barman-cloud", "server": "pg"}]}, "btar.toml")


# --- the fork's settings -------------------------------------------------------------------------

def test_barman_cloud_reads_the_copy_where_btar_put_it() -> None:
    s3 = S3Location(url="s3://copy/btar", endpoint_url="http://127.0.0.1:9000")
    options, url, env = cloud_source(s3, "aws-eu-central-1", "orders")
    assert url == "s3://copy/btar/orders"
    assert options == ["--cloud-provider", "aws-s3", "--endpoint-url", "http://127.0.0.1:9000"]
    assert env == {"AWS_DEFAULT_REGION": "eu-central-1"}
    with pytest.raises(BadInput, match="only S3, GCS or Azure"):
        cloud_source(LocalLocation(url="file:///srv/copy"), "aws-eu-central-1", "orders")


def test_barman_cloud_urls_for_gcs_and_azure(monkeypatch: pytest.MonkeyPatch) -> None:
    options, url, env = cloud_source(GcsLocation(url="gs://copy/btar"), "google-europe-west3",
                                     "orders")
    assert (options, url, env) == (["--cloud-provider", "google-cloud-storage"],
                                   "gs://copy/btar/orders", {})
    monkeypatch.setenv("COPY_KEY", "c2VjcmV0")
    azure = AzureLocation(url="az://acct2/copy/btar", account_key_env="COPY_KEY")
    options, url, env = cloud_source(azure, "azure-westeurope", "orders")
    assert url == "https://acct2.blob.core.windows.net/copy/btar/orders"
    assert env == {"AZURE_STORAGE_KEY": "c2VjcmV0"}  # handed to the tool, never written
    azurite = AzureLocation(url="az://acct2/copy", account_key_env="COPY_KEY",
                            account_url="http://127.0.0.1:10000/acct2")
    _, url, env = cloud_source(azurite, "azure-westeurope", "orders")
    assert url == "http://127.0.0.1:10000/acct2/copy/orders"
    assert "AccountName=acct2;AccountKey=c2VjcmV0;BlobEndpoint=http://127.0.0.1:10000/acct2" \
        in env["AZURE_STORAGE_CONNECTION_STRING"]


# --- replication, window and fork plan over memory storages ------------------------------------

PRIMARY, SECONDARY = "aws-eu-west-1", "aws-eu-central-1"


def barman_world() -> tuple[Btar, dict[str, MemoryStorage], ManualClock]:
    clock = ManualClock()
    stores = {r: MemoryStorage(r, clock.now) for r in (PRIMARY, SECONDARY)}
    return orders_app("barman-cloud:pg", stores, clock, enable=None), stores, clock


def test_replication_window_and_fork_plan(tmp_path: Path) -> None:
    app, stores, clock = barman_world()
    primary = stores[PRIMARY]
    primary.write(f"orders/pg/base/{BACKUP}/data.tar", b"tar bytes" * 100)
    begin = clock.now()
    end = begin + timedelta(seconds=5)
    primary.write(f"orders/pg/base/{BACKUP}/backup.info", backup_info(
        end=f"{end:%Y-%m-%d %H:%M:%S}.5+00:00").replace(
        b"begin_time=2026-12-06 14:00:01.125000+00:00",
        f"begin_time={begin:%Y-%m-%d %H:%M:%S}+00:00".encode()))
    commits = [end + timedelta(seconds=10 * n) for n in range(1, 7)]
    for n, segno in enumerate((2, 3, 4)):
        raw = segment(1, segno, [commit(commits[2 * n]), commit(commits[2 * n + 1])])
        primary.write(f"orders/{wal_key(1, segno)}", gzip.compress(raw, compresslevel=1))
    clock.advance(120)
    app.enable("orders", SECONDARY)
    app.sync(["orders"])
    published = app.catalog.items("orders", SECONDARY, statuses=[ItemStatus.AVAILABLE])
    assert sorted(r.item_id for r in published) == [
        f"base/{BACKUP}", "log/1/0000000002", "log/1/0000000003", "log/1/0000000004"]
    assert sorted(o.key for o in stores[SECONDARY].iter_objects("orders/")) == sorted(
        o.key for o in primary.iter_objects("orders/"))
    plan = app.plan_fork("orders", SECONDARY, commits[2], refresh_primary=False)
    assert plan.window.start == consistent_from(end + timedelta(seconds=0.5)) \
        == end + timedelta(seconds=1)
    assert plan.window.end == commits[-1]
    assert [s.seq for s in plan.segments] == [2, 3]
    assert local_path(plan, f"pg/base/{BACKUP}/data.tar") == f"repo/pg/base/{BACKUP}/data.tar"
    # recovery stops at the target, so the segment after the plan may be read
    assert allowed_wal(plan, True) == [wal_file_name(1, s) for s in (2, 3, 4)]
    assert lay_out_barman_cloud(plan, tmp_path) == ["wal-allowed"]
    assert (tmp_path / "wal-allowed").read_text().split() == allowed_wal(plan, True)
    lines, note = recovery_settings(plan, cloud_restore_command(
        plan, tmp_path, ["--cloud-provider", "aws-s3"], "s3://copy/orders"))
    assert "recovery stops before the first commit after" in note
    assert f"recovery_target_time = '{commits[2]:%Y-%m-%d %H:%M:%S}.000000+00'" in lines
    assert "recovery_target_timeline = '1'" in lines
    assert "archive_mode = 'off'" in lines
    restore = next(line for line in lines if line.startswith("restore_command"))
    assert f"grep -qxF -e %f ''{tmp_path}/wal-allowed''" in restore \
        or f"grep -qxF -e %f {tmp_path}/wal-allowed" in restore
    assert restore.endswith("barman-cloud-wal-restore --cloud-provider aws-s3 "
                            "s3://copy/orders pg %f %p'")
    latest = app.plan_fork("orders", SECONDARY, None, refresh_primary=False)
    lines, note = recovery_settings(latest, "true")
    assert "replays every WAL segment of the plan" in note
    assert not any(line.startswith("recovery_target_time =") for line in lines)
    assert allowed_wal(latest, False) == [wal_file_name(1, s) for s in (2, 3, 4)]
    # a fork through the API fetches the plan's objects verified into INTO/repo
    outcome = app.fork("orders", SECONDARY, commits[2], tmp_path / "fork",
                       tools=ToolOptions(fetch_only=True))
    # ... with the segment after the plan: a commit cut by a segment's end completes there
    assert outcome.downloaded == len(outcome.plan.objects) == len(plan.objects) + 1
    assert [s.seq for s in outcome.plan.segments] == [2, 3, 4]
    assert (tmp_path / "fork" / "repo" / "pg" / "base" / BACKUP / "backup.info").exists()
    assert any("fork without --fetch-only" in step for step in outcome.next_steps)
    # `btar wal-fetch` serves a restore_command from the copy: verified, decompressed
    app.wal_fetch("orders", SECONDARY, wal_file_name(1, 3), tmp_path / "RECOVERYXLOG")
    assert (tmp_path / "RECOVERYXLOG").read_bytes() == gzip.decompress(
        primary.read_bytes(f"orders/{wal_key(1, 3)}"))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    with pytest.raises(ObjectNotFound):
        app.wal_fetch("orders", SECONDARY, wal_file_name(1, 9), tmp_path / "absent")
    with pytest.raises(BadInput):
        app.wal_fetch("orders", SECONDARY, "00000001.history", tmp_path / "history")


def test_between_full_listings_only_the_wal_and_each_backup_info_are_listed() -> None:
    """A pass between full listings lists ``wals/`` and ``base/`` after their cursors, and
    the cursor of ``base/`` moves over backup.info keys only: a tablespace's tar sorts before
    its backup.info, and the folder of a backup under way is listed until its backup.info
    comes. The new backup's folder is listed once its backup.info is read: the same item a
    full listing describes."""
    clock = ManualClock()
    stores = {r: ListingLog(MemoryStorage(r, clock.now)) for r in (PRIMARY, SECONDARY)}
    primary = stores[PRIMARY]

    def world() -> Btar:
        return orders_app("barman-cloud:pg", stores, clock)

    def wal(segno: int) -> None:
        moment = clock.now()
        raw = segment(1, segno, [commit(moment - timedelta(seconds=1)), commit(moment)])
        primary.write(f"orders/{wal_key(1, segno)}", gzip.compress(raw, compresslevel=1))

    primary.write(f"orders/pg/base/{BACKUP}/data.tar", b"tar bytes")
    primary.write(f"orders/pg/base/{BACKUP}/backup.info", backup_info())
    for segno in (2, 3):
        wal(segno)
    clock.advance(120)
    app = world()
    app.sync(["orders"])  # the first pass lists in full
    assert ("orders/", None) in primary.pages

    later = "20261206T150000"
    clock.advance(60)
    wal(4)
    primary.write(f"orders/pg/base/{later}/16385.tar", b"tablespace")  # under way
    primary.write(f"orders/pg/base/{later}/data.tar", b"data")
    clock.advance(61)  # settled: a cursor over every key would pass them
    primary.pages.clear()
    app.sync(["orders"])
    assert primary.prefixes() == {"orders/pg/base/", "orders/pg/wals/"}
    assert "log/1/0000000004" in app.catalog.item_ids("orders", SECONDARY, ItemStatus.AVAILABLE)

    clock.advance(60)
    primary.write(f"orders/pg/base/{later}/backup.info", backup_info(
        begin_wal="000000010000000000000004", end_wal="000000010000000000000004",
        tablespaces="[('tbs', 16385, '/tbs')]"))
    primary.pages.clear()
    app.sync(["orders"])
    assert primary.prefixes() == {"orders/pg/base/", "orders/pg/wals/",
                                  f"orders/pg/base/{later}/"}
    assert f"base/{later}" in app.catalog.item_ids("orders", SECONDARY, ItemStatus.AVAILABLE)
    keys = {o.key for o in app.catalog.item_refs("orders", PRIMARY, f"base/{later}")}
    assert keys == {f"pg/base/{later}/{name}" for name in ("16385.tar", "data.tar",
                                                           "backup.info")}
    clock.advance(60)
    again = world()
    again.sync(["orders"], full_listing=True)
    for item_id in (f"base/{BACKUP}", f"base/{later}", "log/1/0000000004"):
        assert again.catalog.item_refs("orders", PRIMARY, item_id) == \
            app.catalog.item_refs("orders", PRIMARY, item_id), item_id


def tar_of(files: dict[str, bytes], compress: bool) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if compress else "w") as archive:
        for name, content in files.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(content)
            archive.addfile(entry, io.BytesIO(content))
    return buffer.getvalue()


def test_a_fork_from_a_local_folder_restores_from_the_staging_copy(tmp_path: Path) -> None:
    """barman-cloud reads no local folder: the fork unpacks the verified staging copy as
    barman-cloud-restore would (parts in order, tablespaces relocated) and recovery copies
    the plan's WAL from it."""
    app, stores, clock = barman_world()
    primary = stores[PRIMARY]
    folder = f"orders/pg/base/{BACKUP}"
    primary.write(f"{folder}/data.tar.gz", tar_of({"PG_VERSION": b"15\n",
                                                  "base/1/1259": b"first"}, True))
    primary.write(f"{folder}/data_0001.tar.gz", tar_of({"base/1/1259": b"second"}, True))
    primary.write(f"{folder}/16385.tar", tar_of({"PG_15_202209061/5/16386": b"tbs"}, False))
    end = clock.now() + timedelta(seconds=1)
    primary.write(f"{folder}/backup.info", backup_info(
        end=f"{end:%Y-%m-%d %H:%M:%S}+00:00", tablespaces="[('tbs', 16385, '/srv/tbs')]")
        .replace(b"begin_time=2026-12-06 14:00:01.125000+00:00",
                 f"begin_time={clock.now():%Y-%m-%d %H:%M:%S}+00:00".encode()))
    raw = segment(1, 2, [commit(end + timedelta(seconds=5))])
    primary.write(f"orders/{wal_key(1, 2)}", gzip.compress(raw, compresslevel=1))
    clock.advance(60)
    app.enable("orders", SECONDARY)
    app.sync(["orders"])
    into = tmp_path / "fork"
    me = pwd.getpwuid(os.geteuid()).pw_name
    outcome = app.fork("orders", SECONDARY, None, into, tools=ToolOptions(run_as=me))
    assert outcome.restore is not None
    assert outcome.restore.tool == "staging copy (barman-cloud layout)"
    data = into / "data"
    assert (data / "PG_VERSION").read_bytes() == b"15\n"
    assert (data / "base/1/1259").read_bytes() == b"second"  # the part after the main file
    assert (data / "pg_tblspc/16385").resolve() == (into / "tablespaces/16385").resolve()
    assert (into / "tablespaces/16385/PG_15_202209061/5/16386").read_bytes() == b"tbs"
    assert (data / "pg_wal").is_dir()
    assert (data / "recovery.signal").exists()
    conf = (data / "postgresql.auto.conf").read_text()
    assert "archive_mode = 'off'" in conf
    restore = next(line for line in conf.splitlines() if line.startswith("restore_command"))
    command = restore.partition("= ")[2][1:-1].replace("''", "'")
    name = wal_file_name(1, 2)

    def fetch(wanted: str) -> int:
        out = tmp_path / "RECOVERYXLOG"
        out.unlink(missing_ok=True)
        result = subprocess.run(["sh", "-c", command.replace("%f", wanted)
                                 .replace("%p", str(out))], check=False)
        if result.returncode == 0:
            assert out.read_bytes() == raw
        return result.returncode

    assert fetch(name) == 0
    assert fetch(wal_file_name(1, 3)) != 0  # not in the plan: the end of recovery


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(
    ["status", "begin_time", "end_time", "begin_wal", "end_wal", "timeline", "tablespaces",
     "snapshots_info", "version", "x"]), st.text(max_size=40)), max_size=12))
def test_hostile_backup_info_is_refused_cleanly(fields: list[tuple[str, str]]) -> None:
    """Whatever a backup.info holds, the reader describes a backup or raises CorruptBackup."""
    data = "".join(f"{k}={v}\n" for k, v in fields).encode("utf-8", "surrogatepass")
    listing = [info(f"pg/base/{BACKUP}/data.tar"), info(f"pg/base/{BACKUP}/backup.info")]
    layout = BarmanCloudLayout("pg")
    with contextlib.suppress(CorruptBackup):
        layout.parse_marker(marker_for(listing, layout), data)


def test_a_fork_at_the_backups_own_end_still_reads_its_wal(tmp_path: Path) -> None:
    """No commit since the backup: "latest" is the backup's own end, which plans no segment;
    the fork adds the WAL that makes the backup consistent (begin_wal .. end_wal)."""
    app, stores, clock = barman_world()
    primary = stores[PRIMARY]
    primary.write(f"orders/pg/base/{BACKUP}/data.tar", tar_of({"PG_VERSION": b"15\n"}, False))
    end = clock.now() + timedelta(seconds=1)
    primary.write(f"orders/pg/base/{BACKUP}/backup.info", backup_info(
        end_wal="000000010000000000000003", end=f"{end:%Y-%m-%d %H:%M:%S}+00:00").replace(
        b"begin_time=2026-12-06 14:00:01.125000+00:00",
        f"begin_time={clock.now():%Y-%m-%d %H:%M:%S}+00:00".encode()))
    for segno in (2, 3):  # a checkpoint and the backup's end: no commit in either
        primary.write(f"orders/{wal_key(1, segno)}", gzip.compress(segment(1, segno, [])))
    clock.advance(60)
    app.enable("orders", SECONDARY)
    app.sync(["orders"])
    assert app.plan_fork("orders", SECONDARY, None, refresh_primary=False).segments == ()
    into = tmp_path / "fork"
    outcome = app.fork("orders", SECONDARY, None, into, tools=ToolOptions(fetch_only=True))
    assert [s.seq for s in outcome.plan.segments] == [2, 3]
    assert (into / "wal-allowed").read_text().split() == [wal_file_name(1, 2),
                                                          wal_file_name(1, 3)]
    assert (into / "repo" / wal_key(1, 3)).exists()


#: what each part of a Barman key can be: the right values and near misses
_BARMAN_PARTS = {
    "server": ["main", "other"],
    "dir": ["0000000100000000", "0000000100000001", "00000001"],
    "name": ["000000010000000000000002", "000000010000000000000100", "00000002", "backup.info",
             "data.tar", "0000000100000000000000"],
    "ext": ["", ".gz", ".bz2", ".xz", ".zip", ".history", ".history.gz"],
    "id": ["20261126T080000", "20261126T08000", "0000000100000000"],
}
_BARMAN_SHAPES = ["{server}/wals/{dir}/{name}{ext}", "{server}/wals/{name}{ext}",
                  "{server}/base/{id}/{name}{ext}", "{server}/{dir}/{id}/{name}"]


@settings(max_examples=3000, deadline=None)
@given(shaped_keys(_BARMAN_SHAPES, _BARMAN_PARTS))
def test_each_barman_key_is_one_kind_of_file(key: str) -> None:
    """The reader tries the WAL pattern first, most of a listing: that changes nothing
    because no key is two kinds of file at once."""
    layout = BarmanCloudLayout()
    found = [p.pattern for p in (layout._wal, layout._folder, layout._history) if p.match(key)]
    assert len(found) <= 1, (key, found)
    markers = [p.pattern for p in (layout._wal, layout._info, layout._history) if p.match(key)]
    assert len(markers) <= 1, (key, markers)
    # Listing areas: the WAL and each backup's backup.info, never a backup's tar files (a
    # tablespace's sorts before its backup.info, PGDATA's after).
    areas = layout.listing_areas(key)
    assert all(key.startswith(area) for area in areas)
    if layout._wal.match(key) or layout._history.match(key):
        assert areas == ("main/wals/",)
    if layout._info.match(key):
        assert areas == ("main/base/",)
    if layout._folder.match(key) and not layout._info.match(key):
        assert areas == ()
