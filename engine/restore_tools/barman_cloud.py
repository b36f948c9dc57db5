"""The Barman Cloud fork: ``barman-cloud-restore`` and ``barman-cloud-wal-restore`` run against
the copy in the fork's region (docs/barman-cloud-layout.md).

btar fetches the plan's objects verified into ``INTO/repo`` first, as for every fork: Barman
records no checksum, so barman-cloud-restore could not tell a damaged copy, and this refuses
one before anything is restored. barman-cloud reads only cloud URLs (s3://, gs://, Azure
https://), so the tools then read the same objects in place, from the region's bucket:

1. ``barman-cloud-restore URL SERVER BACKUP_ID INTO/data`` (empty data directory), every
   tablespace relocated to ``INTO/tablespaces/<oid>`` (never over the primary's paths);
2. ``postgresql.auto.conf`` gets a restore_command running ``barman-cloud-wal-restore`` against
   the same URL, only for the WAL files of the plan (``INTO/wal-allowed``: recovery never reads
   a segment or a timeline the window was not checked against, even when the bucket holds
   newer ones), the recovery target, the plan's timeline, and ``archive_mode = 'off'`` (the
   restored configuration still names the primary's archive);
3. ``--start``: the server starts on its own port and socket and is waited for until it left
   recovery (engine.restore_tools.base).

Credentials are never written: the tools (and the server, whose restore_command needs them)
inherit them from btar's environment, or from the profile the location names.

A region whose location is a local folder cannot be read by barman-cloud at all. There the fork
restores from the verified staging copy the way barman-cloud-restore does (barman/cloud.py:
``data.tar`` then its ``_NNNN`` parts into the data directory, each tablespace's tar files into
its folder and a ``pg_tblspc`` link to it, an empty ``pg_wal``), and recovery copies the plan's
WAL from ``INTO/repo`` (decompressing gz and bz2 as barman-cloud-wal-restore does): nothing is
read from the region after the fetch.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from engine.errors import BadInput, CorruptBackup
from engine.formats.barman_cloud import TAR_NAME, BackupInfo, summarize_backup_info
from engine.formats.wal import wal_file_name
from engine.model import iso
from engine.restore import RestorePlan
from engine.restore_tools.base import (
    InRepository,
    ToolOptions,
    ToolRun,
    chown_tree,
    pg_time,
    postgresql_runner,
    private_folder,
    recovery_reaches_past,
    recovery_timeline,
    start_or_explain,
    write_private,
)
from engine.storage.locations import AzureLocation, GcsLocation, S3Location

ALLOWED_FILE = "wal-allowed"
#: what the tools and the server may inherit from btar's environment: where the provider's
#: standard credential chain looks (values are passed on, never written or shown)
_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
    "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CA_BUNDLE", "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_EC2_METADATA_DISABLED", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT",
    "STORAGE_EMULATOR_HOST", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_SAS_TOKEN", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE")


class BarmanCloud(InRepository):
    """Backups in the barman-cloud layout, restored by barman-cloud-restore (module
    docstring)."""

    def lay_out(self, plan: RestorePlan, into: Path, wal_fetch_command: list[str]) -> list[str]:
        return lay_out_barman_cloud(plan, into)

    def consistency_wal(self, plan: RestorePlan, into: Path) -> Mapping[str, object] | None:
        return barman_wal_bounds(plan, into)

    def restore(self, plan: RestorePlan, into: Path, options: ToolOptions) -> ToolRun | None:
        return restore_barman_cloud(plan, into, options)

    def next_steps(self, plan: RestorePlan, into: Path, written: Sequence[str]) -> list[str]:
        return [f"the verified objects are in {into / 'repo'}; fork without --fetch-only to "
                "restore them with barman-cloud-restore"]


def server_of(plan: RestorePlan) -> str:
    return plan.layout.partition(":")[2] or "main"


def backup_id_of(plan: RestorePlan) -> str:
    return plan.base_id.removeprefix("base/")


def staged_backup(plan: RestorePlan, into: Path) -> Path:
    """The backup's folder in the fork's staging copy."""
    return into / "repo" / server_of(plan) / "base" / backup_id_of(plan)


def tablespaces_of(plan: RestorePlan, into: Path) -> list[tuple[str, int, str]]:
    """(name, oid, location at the primary) of each tablespace, from the staged backup.info."""
    return list(staged_info(plan, into).tablespaces)


def staged_info(plan: RestorePlan, into: Path) -> BackupInfo:
    """The fetched (verified) backup.info of the plan's backup."""
    path = staged_backup(plan, into) / "backup.info"
    try:
        return summarize_backup_info(backup_id_of(plan), path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorruptBackup(str(path), "the backup's backup.info was not fetched") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise CorruptBackup(str(path), str(error)) from None


def barman_wal_bounds(plan: RestorePlan, into: Path) -> dict[str, object]:
    """What engine.restore.supplement_consistency needs to add the WAL that makes the backup
    consistent (its begin through its end segment), from the fetched backup.info: without
    it a target at the backup's own end (or "latest" with no commit since) would plan no
    WAL at all. A Barman backup refers to no other backup."""
    return {"archive_stop": staged_info(plan, into).end_wal, "references": []}


# -- where the copy is, as barman-cloud names it --------------------------------------------------

def cloud_source(location: object, region: str,
                 prefix: str) -> tuple[list[str], str, dict[str, str]]:
    """barman-cloud's options, source URL and extra environment for the copy of a service
    (``prefix``) in a region's location."""
    if isinstance(location, S3Location):
        parts = urlsplit(location.url)
        url = _join(f"s3://{parts.netloc}", unquote(parts.path), prefix)
        options = ["--cloud-provider", "aws-s3"]
        if location.endpoint_url:
            options += ["--endpoint-url", location.endpoint_url]
        if location.profile:
            options += ["--profile", location.profile]
        aws_region = location.region or (region[4:] if region.startswith("aws-") else "")
        return options, url, {"AWS_DEFAULT_REGION": aws_region} if aws_region else {}
    if isinstance(location, GcsLocation):
        parts = urlsplit(location.url)
        url = _join(f"gs://{parts.netloc}", unquote(parts.path), prefix)
        emulator = {"STORAGE_EMULATOR_HOST": location.emulator_host} \
            if location.emulator_host else {}
        return ["--cloud-provider", "google-cloud-storage"], url, emulator
    if isinstance(location, AzureLocation):
        parts = urlsplit(location.url)
        account = parts.hostname or ""
        base = location.account_url or f"https://{account}.blob.core.windows.net"
        url = _join(base.rstrip("/"), unquote(parts.path), prefix)
        env: dict[str, str] = {}
        # barman-cloud's Azure client reads the key or SAS from its own variable names
        for named, theirs in ((location.account_key_env, "AZURE_STORAGE_KEY"),
                              (location.sas_token_env, "AZURE_STORAGE_SAS_TOKEN")):
            if named and named in os.environ:
                env[theirs] = os.environ[named]
        host = urlsplit(base).hostname or ""
        if not host.endswith(".core.windows.net") and "AZURE_STORAGE_KEY" in env:
            # barman-cloud reads an emulator's URL (http://host:port/account/...) only with a
            # connection string
            env["AZURE_STORAGE_CONNECTION_STRING"] = (
                f"DefaultEndpointsProtocol={urlsplit(base).scheme};AccountName={account};"
                f"AccountKey={env['AZURE_STORAGE_KEY']};BlobEndpoint={base.rstrip('/')};")
        return ["--cloud-provider", "azure-blob-storage"], url, env
    raise BadInput(f"{region}: barman-cloud-restore reads only S3, GCS or Azure locations")


def _join(root: str, *paths: str) -> str:
    parts = [p.strip("/") for p in paths if p.strip("/")]
    return "/".join([root, *parts])


# -- laying out and restoring ---------------------------------------------------------------------

def allowed_wal(plan: RestorePlan, reaches_past: bool) -> list[str]:
    """The WAL files recovery may read: the plan's segments and timeline histories, and, when
    recovery stops at a commit after the target, the segment after the last one (a commit
    record cut by a segment's end completes there). Replaying to the end (latest, or a target
    after the last commit) reads no more than the plan: a newer segment in the bucket could
    carry the fork past the point the window was checked at."""
    names = [wal_file_name(int(s.stream), s.seq) for s in plan.segments]
    names += [f"{int(h.removeprefix('history/')):08X}.history" for h in plan.histories]
    if reaches_past and plan.segments:
        last = max(plan.segments, key=lambda s: s.seq)
        names.append(wal_file_name(int(last.stream), last.seq + 1))
    return sorted(set(names))


def lay_out_barman_cloud(plan: RestorePlan, into: Path) -> list[str]:
    """What a Barman fork writes before the tools run: the WAL files recovery may read."""
    reaches = plan.target is not None and recovery_reaches_past(plan, plan.target)
    write_private(into / ALLOWED_FILE, "".join(f"{n}\n" for n in allowed_wal(plan, reaches)))
    return [ALLOWED_FILE]


def _conf_value(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def cloud_restore_command(plan: RestorePlan, into: Path, options: list[str], url: str) -> str:
    """barman-cloud-wal-restore from the copy, for the plan's WAL files only."""
    fetch = shlex.join(["barman-cloud-wal-restore", *options, url, server_of(plan)])
    allowed = shlex.quote(str(into / ALLOWED_FILE))
    return f"grep -qxF -e %f {allowed} && {fetch} %f %p"


def staged_restore_command(plan: RestorePlan, into: Path) -> str:
    """A copy of a staged (verified) WAL file, decompressed as barman-cloud-wal-restore does;
    exit 1 (end of WAL) for any file the plan did not fetch."""
    wals = shlex.quote(str(into / "repo" / server_of(plan) / "wals"))
    allowed = shlex.quote(str(into / ALLOWED_FILE))
    return (f"grep -qxF -e %f {allowed} || exit 1; w={wals}; "
            'case %f in *.history) s="$w/%f";; *) s="$w/$(echo %f | cut -c1-16)/%f";; esac; '
            'if [ -f "$s" ]; then cp "$s" "%p"; elif [ -f "$s.gz" ]; then gzip -dc "$s.gz" > "%p"; '
            'elif [ -f "$s.bz2" ]; then bzip2 -dc "$s.bz2" > "%p"; else exit 1; fi')


def recovery_settings(plan: RestorePlan, restore: str) -> tuple[list[str], str]:
    """The lines appended to the restored postgresql.auto.conf, and what recovery does."""
    timeline = recovery_timeline(plan)
    lines = ["", f"# written by btar fork: recover from the copy in {plan.region}",
             f"restore_command = {_conf_value(restore)}",
             f"recovery_target_timeline = {_conf_value(timeline)}",
             # a fork must never push WAL into the source's archive
             "archive_mode = 'off'"]
    along = f" along timeline {timeline}" if timeline != "latest" else ""
    if plan.target is not None and recovery_reaches_past(plan, plan.target):
        lines += [f"recovery_target_time = {_conf_value(pg_time(plan.target))}",
                  "recovery_target_action = 'promote'"]
        return lines, f"recovery stops before the first commit after {iso(plan.target)}{along}"
    return lines, f"recovery replays every WAL segment of the plan{along}, then promotes"


def restore_barman_cloud(plan: RestorePlan, into: Path, options: ToolOptions) -> ToolRun:
    """``barman-cloud-restore`` of the plan's backup into ``INTO/data`` from the copy in the
    plan's region, recovery configured with ``barman-cloud-wal-restore``; optionally started
    and waited for until it left recovery. From a local folder: the same from the staging
    copy (module docstring)."""
    if options.location is None:
        raise BadInput(f"{plan.region}: the fork was given no location settings for the "
                       "region; run it through `btar fork`")
    # barman-cloud reads S3, GCS and Azure; anything else (a local folder) is restored from
    # the staging copy
    local = not isinstance(options.location, S3Location | GcsLocation | AzureLocation)
    data, spaces = into / "data", into / "tablespaces"
    runner = postgresql_runner("barman-cloud" if not local else
                               "staging copy (barman-cloud layout)", into, options)
    run = runner.run_
    tablespaces = tablespaces_of(plan, into)
    if any(":" in name for name, _, _ in tablespaces):
        # barman-cloud-restore's --tablespace NAME:LOCATION cannot name it, and it would
        # otherwise be restored over the primary's own path
        raise BadInput("a tablespace name holds ':', which barman-cloud-restore cannot "
                       "relocate; restore this backup by hand with barman-cloud-restore")
    for folder in (data, spaces):
        if folder.exists():
            # barman-cloud-restore wants empty directories; these are a previous, interrupted
            # attempt of this very fork (INTO is the fork's own folder)
            shutil.rmtree(folder)
    private_folder(data)
    private_folder(spaces)
    if local:
        with runner.timed("restore"):
            extract_staged(plan, into, tablespaces)
        restore = staged_restore_command(plan, into)
        run.notes.append(f"{plan.region} is not a cloud location barman-cloud can read: "
                         "restored from the verified staging copy in INTO/repo")
        runner.hand_over(into)
    else:
        tool_options, url, extra = cloud_source(options.location, plan.region, options.prefix)
        runner.env.update({k: v for k, v in os.environ.items() if k in _CREDENTIAL_VARIABLES})
        runner.env.update(extra)
        runner.hand_over(into)
        relocate = [f"--tablespace={name}:{spaces / str(oid)}" for name, oid, _ in tablespaces]
        runner("restore", ["barman-cloud-restore", *tool_options, *relocate, url,
                           server_of(plan), backup_id_of(plan), str(data)])
        restore = cloud_restore_command(plan, into, tool_options, url)
        run.notes.append("restore_command reads the plan's WAL from the copy in "
                         f"{plan.region} with the credentials of the environment")
    lines, note = recovery_settings(plan, restore)
    run.notes.append(note)
    auto = data / "postgresql.auto.conf"
    existing = auto.read_text(encoding="utf-8") if auto.exists() else ""
    write_private(auto, existing + "\n".join(lines) + "\n")
    write_private(data / "recovery.signal", "")
    chown_tree(data, runner.user)
    run.notes.append("archive_mode=off: the fork never pushes WAL into the source's archive")
    start_or_explain(plan, into, options, runner, run, "" if local else (
        ", with the cloud credentials in the environment: recovery runs "
        "barman-cloud-wal-restore"))
    return run


def tar_files(folder: Path) -> dict[str, list[Path]]:
    """The staged tar files of a backup by what they hold (``data`` or a tablespace oid),
    each main file first, then its parts in order (barman's CloudBackupCatalog)."""
    found: dict[str, list[tuple[int, Path]]] = {}
    for path in folder.iterdir():
        if match := TAR_NAME.match(path.name):
            if match["ext"] == ".snappy":
                raise CorruptBackup(str(path), "snappy-compressed backups need python-snappy, "
                                    "which btar does not use; restore from a cloud region")
            found.setdefault(match["base"], []).append((int(match["part"] or 0), path))
    return {base: [p for _, p in sorted(parts)] for base, parts in found.items()}


def extract_staged(plan: RestorePlan, into: Path,
                   tablespaces: list[tuple[str, int, str]]) -> None:
    """What barman-cloud-restore does, from the staging copy: PGDATA into INTO/data, each
    tablespace into INTO/tablespaces/<name> with its pg_tblspc link, an empty pg_wal."""
    data = into / "data"
    tars = tar_files(staged_backup(plan, into))
    # folders by oid: a tablespace name may hold any character, "/" included
    targets = {"data": data, **{str(oid): into / "tablespaces" / str(oid)
                                for _, oid, _ in tablespaces}}
    for base, target in targets.items():
        if base not in tars:
            raise CorruptBackup(str(staged_backup(plan, into)), f"no {base}.tar was fetched")
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        for path in tars[base]:
            with tarfile.open(path, "r:*") as archive:
                # the "data" filter refuses members that would land outside the target
                archive.extractall(target, filter="data")
    for _, oid, _ in tablespaces:
        link = data / "pg_tblspc" / str(oid)
        link.parent.mkdir(exist_ok=True, mode=0o700)
        link.unlink(missing_ok=True)
        link.symlink_to(into / "tablespaces" / str(oid))
    (data / "pg_wal").mkdir(exist_ok=True, mode=0o700)
