#!/usr/bin/env python3
"""Produce a MariaDB service's primary backups in btar's native layout (docs/native-layout.md),
so that btar replicates them and `btar fork` restores them with the real tools.

    # a base backup: mariadb-backup's output is the payload, the manifest is written last
    python examples/mariadb-backup-to-btar.py --config btar.toml --service shop \
        --defaults-file /etc/mysql/my.cnf backup

    # ship every closed binlog not shipped yet (--flush closes the active one first)
    python examples/mariadb-backup-to-btar.py --config btar.toml --service shop \
        --defaults-file /etc/mysql/my.cnf binlogs --flush

Run `backup` on a schedule (e.g. daily) and `binlogs --flush` often (e.g. every minute: that
is your RPO). Run it as a user that can read the datadir and the binlogs and that connects to
the server over its socket (root, or the mysql user, with unix_socket authentication); it
writes to the service's *primary* location through btar's storage backends, so file://, s3://,
gs:// and az:// all work.

What lands under the service prefix:

* ``base/<YYYYmmddTHHMMSSZ>/data/<file>``: every file mariadb-backup wrote (including
  ``xtrabackup_binlog_info``, the binlog file and position the backup is consistent with, and
  ``xtrabackup_checkpoints``, which tells `btar fork` to run mariadb-backup);
  ``base/<id>/manifest.json`` last: stream = the server id, log_start_seq = the number of the
  binlog named in xtrabackup_binlog_info, start/end = wall-clock UTC around the backup (the
  backup is consistent at a point between them, so the window starts at ``end``);
* ``log/<server id>/<binlog number>_<first event>_<last event>_<sha256>.log``: one closed
  binlog, byte-identical; its times are the first and last event timestamps (whole seconds).

`btar fork --target-time T` then prepares the backup, copies it back into an empty datadir,
starts a server and replays ``TZ=UTC mariadb-binlog --start-position=POS
--stop-datetime=<T's second + 1 s> binlogs... | mariadb``: binlog times are whole seconds, so
events stamped in T's second are replayed. Keep a margin between a target and the writes
around it.

Limits: the payload is read into memory before it is written (fine for small and test
databases; stream it for big ones); binlogs must not be encrypted; one server id per service
(a new primary after a failover starts a new stream, which needs a history: see
engine.formats.native.write_stream_history).
"""

from __future__ import annotations

import argparse
import struct
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from engine.config import config_path, load_config
from engine.formats.native import write_base_backup, write_log_segment
from engine.storage.base import Storage
from engine.storage.locations import open_location

BINLOG_MAGIC = b"\xfebin"
EVENT_HEADER = struct.Struct("<IBIIIH")  # timestamp, type, server id, size, next, flags


def binlog_times(data: bytes) -> tuple[datetime, datetime]:
    """The first and last event timestamps of a binlog file."""
    if not data.startswith(BINLOG_MAGIC):
        raise ValueError("not a binlog (or an encrypted one)")
    pos, stamps = len(BINLOG_MAGIC), []
    while pos + EVENT_HEADER.size <= len(data):
        timestamp, _, _, size, _, _ = EVENT_HEADER.unpack_from(data, pos)
        if size < EVENT_HEADER.size:
            break
        if timestamp:
            stamps.append(timestamp)
        pos += size
    if not stamps:
        raise ValueError("no event in the binlog")
    return (datetime.fromtimestamp(min(stamps), UTC), datetime.fromtimestamp(max(stamps), UTC))


def sql(defaults: str, query: str) -> str:
    result = subprocess.run(["mariadb", f"--defaults-file={defaults}", "-NBe", query],
                            capture_output=True, text=True, check=True)
    return result.stdout.strip()


def binlog_number(name: str) -> int:
    return int(name.rsplit(".", 1)[-1])


def backup(storage: Storage, prefix: str, defaults: str, extra: list[str]) -> str:
    server_id = sql(defaults, "select @@server_id")
    with tempfile.TemporaryDirectory(prefix="btar-mariadb-backup-") as folder:
        target = Path(folder) / "backup"
        start = datetime.now(UTC)
        done = subprocess.run(["mariadb-backup", f"--defaults-file={defaults}", "--backup",
                               f"--target-dir={target}", *extra], capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise SystemExit("mariadb-backup failed: " + done.stderr.strip()[-2000:])
        end = datetime.now(UTC)
        fields = (target / "xtrabackup_binlog_info").read_text().split()
        if not fields:
            raise SystemExit("xtrabackup_binlog_info is empty: the server needs log-bin")
        payload = {p.relative_to(target).as_posix(): p.read_bytes()
                   for p in sorted(target.rglob("*")) if p.is_file()}
    backup_id = f"{end:%Y%m%dT%H%M%SZ}"
    write_base_backup(storage, prefix, backup_id, start, end, server_id,
                      binlog_number(fields[0]), payload)
    return backup_id


def ship_binlogs(storage: Storage, prefix: str, defaults: str, flush: bool) -> list[str]:
    if flush:
        sql(defaults, "flush binary logs")
    server_id = sql(defaults, "select @@server_id")
    index = Path(sql(defaults, "select @@log_bin_index"))
    files = [index.parent / Path(line).name
             for line in index.read_text().splitlines() if line.strip()]
    shipped = {int(o.key.rsplit("/", 1)[-1].split("_", 1)[0])
               for o in storage.iter_objects(f"{prefix}/log/{server_id}/")
               if o.key.endswith(".log")}
    written = []
    for path in files[:-1]:  # the last one is still being written
        number = binlog_number(path.name)
        if number in shipped:
            continue
        data = path.read_bytes()
        first, last = binlog_times(data)
        written.append(write_log_segment(storage, prefix, server_id, number, first, last, data))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="btar configuration (default: $BTAR_CONFIG)")
    parser.add_argument("--service", required=True, help="a mysql service, layout native")
    parser.add_argument("--defaults-file", required=True, help="the server's option file")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("backup", help="take a base backup with mariadb-backup")
    b.add_argument("extra", nargs="*", help="more mariadb-backup options (after --)")
    s = sub.add_parser("binlogs", help="ship closed binlogs")
    s.add_argument("--flush", action="store_true", help="FLUSH BINARY LOGS first")
    args = parser.parse_args(argv)
    loaded = load_config(config_path(args.config))
    service = loaded.services().get(args.service)
    if service is None or service.layout != "native" or service.type.value != "mysql":
        parser.error(f"{args.service} is not a mysql service with the native layout")
    storage = open_location(loaded.location(service.region), service.region, create=True)
    try:
        if args.command == "backup":
            backup_id = backup(storage, service.key_prefix, args.defaults_file, args.extra)
            print(f"base backup {backup_id}")
        else:
            for key in ship_binlogs(storage, service.key_prefix, args.defaults_file, args.flush):
                print(f"shipped {key}")
    finally:
        storage.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
