"""MariaDB: a native-layout MySQL base backup made by mariadb-backup (its payload holds
``xtrabackup_checkpoints``) is prepared with ``mariadb-backup --prepare``, copied back with
``--copy-back`` into the empty ``INTO/mysql``, and the binlogs are replayed with
``mariadb-binlog --stop-datetime`` into a server started on the fork."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.errors import BadInput, CorruptBackup
from engine.restore import RestorePlan
from engine.restore_tools.base import (
    Runner,
    ToolFailed,
    ToolOptions,
    ToolRun,
    free_port,
    log_folder,
    read_text,
    tail,
    tool_runner,
    write_private,
)
from engine.restore_tools.native import lay_out_recovery, native_path


class MariaDB:
    """mariadb-backup bases in the native layout."""

    def handles(self, plan: RestorePlan) -> bool:
        return any(o.key == f"{plan.base_id}/data/xtrabackup_checkpoints" for o in plan.objects)

    def local_path(self, plan: RestorePlan, key: str) -> str:
        return native_path(plan, key)

    def lay_out(self, plan: RestorePlan, into: Path, wal_fetch_command: list[str]) -> list[str]:
        return lay_out_recovery(plan, into, wal_fetch_command)

    def consistency_wal(self, plan: RestorePlan, into: Path) -> Mapping[str, object] | None:
        return None

    def restore(self, plan: RestorePlan, into: Path, options: ToolOptions) -> ToolRun | None:
        return restore_mariadb(plan, into, options)

    def next_steps(self, plan: RestorePlan, into: Path, written: Sequence[str]) -> list[str]:
        data = shlex.quote(str(into / "data"))
        replay = shlex.quote(str(into / "replay.json"))
        return [f"prepare it with: mariadb-backup --prepare --target-dir={data}",
                f"copy it back with mariadb-backup --copy-back, start mariadbd on it, then "
                f"replay the binlogs listed in {replay}"]


def binlog_stop(target: datetime) -> str:
    """``--stop-datetime`` for a target: binlog events carry whole seconds, and the replay
    stops at the first event at or after the value, so every event stamped in the target's
    second (and before) is replayed."""
    moment = target.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
    return f"{moment:%Y-%m-%d %H:%M:%S}"


def restore_mariadb(plan: RestorePlan, into: Path, options: ToolOptions) -> ToolRun:
    """Prepare the fetched mariadb-backup, copy it back into an empty datadir, start a server
    on it and replay the binlogs up to the target; stop it again unless ``start``."""
    backup, datadir, sockets = into / "data", into / "mysql", into / "run"
    runner = tool_runner("mariadb-backup", datadir, options, "mysql")
    run, user = runner.run_, runner.user
    if (sockets / "mysqld.pid").exists():
        raise BadInput(f"a server is running on {datadir} ({sockets / 'mysqld.pid'}); "
                       "stop it first")
    if datadir.exists():
        shutil.rmtree(datadir)  # a previous, interrupted attempt of this fork
    for folder in (datadir, sockets, into / "tmp"):
        folder.mkdir(parents=True, exist_ok=True)
    port = options.port or free_port()
    defaults = into / "my.cnf"
    write_private(defaults, "\n".join([
        "# written by btar fork", "[client-server]", f"socket={sockets / 'mysqld.sock'}",
        f"port={port}", "", "[mariadb]", f"datadir={datadir}", "bind-address=127.0.0.1",
        f"pid-file={sockets / 'mysqld.pid'}", f"log-error={into / 'mysqld.err'}",
        f"tmpdir={into / 'tmp'}", "server-id=4242", "skip-log-bin", "skip-name-resolve",
        ""]))
    runner.hand_over(into)
    runner("prepare", ["mariadb-backup", f"--defaults-file={defaults}", "--prepare",
                       f"--target-dir={backup}"])
    runner("copy-back", ["mariadb-backup", f"--defaults-file={defaults}", "--copy-back",
                         f"--target-dir={backup}"])
    run.socket, run.port = str(sockets / "mysqld.sock"), port
    run.stop_command = f"mariadb-admin --defaults-file={defaults} shutdown"
    with runner.timed("start"):
        server = subprocess.Popen(runner.argv(["mariadbd", f"--defaults-file={defaults}"]),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=runner.env, start_new_session=True)
        run.pid, run.running = server.pid, True
        _wait_for_mariadb(runner, defaults, server, into, options.timeout)
    try:
        _replay_binlogs(plan, into, backup, defaults, runner)
    except BaseException:
        _stop_mariadb(runner, defaults, server)
        run.running = False
        raise
    if options.start:
        run.notes.append(f"MariaDB runs as {user.name} on 127.0.0.1:{port}")
    else:
        with runner.timed("stop"):
            _stop_mariadb(runner, defaults, server)
        run.running, run.pid = False, None
        run.notes.append(f"start it with: mariadbd --defaults-file={defaults} (as {user.name})")
    return run


def _wait_for_mariadb(runner: Runner, defaults: Path, server: subprocess.Popen[bytes],
                      into: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        ping = subprocess.run(["mariadb-admin", f"--defaults-file={defaults}", "ping"],
                              env=runner.env, capture_output=True, check=False)
        if ping.returncode == 0:
            return
        if server.poll() is not None:
            raise ToolFailed("start", f"mariadbd exited {server.returncode}: "
                             f"{tail(read_text(into / 'mysqld.err'))}")
        if time.monotonic() > deadline:
            raise ToolFailed("start", f"mariadbd did not answer within {timeout:.0f}s")
        time.sleep(0.1)


def _stop_mariadb(runner: Runner, defaults: Path, server: subprocess.Popen[bytes]) -> None:
    subprocess.run(["mariadb-admin", f"--defaults-file={defaults}", "shutdown"],
                   env=runner.env, capture_output=True, check=False, timeout=60)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def binlog_start(backup: Path) -> tuple[str, int]:
    """The binlog file and position the backup is consistent with (xtrabackup_binlog_info)."""
    fields = read_text(backup / "xtrabackup_binlog_info").split()
    if len(fields) < 2 or not fields[1].isdigit():
        raise CorruptBackup("xtrabackup_binlog_info", "no binlog position in the backup "
                            "(was the source running with log-bin?)")
    return fields[0], int(fields[1])


def _replay_binlogs(plan: RestorePlan, into: Path, backup: Path, defaults: Path,
                    runner: Runner) -> None:
    files = [str(into / log_folder(plan.service_type) / s.stream / f"{s.seq:010d}.log")
             for s in plan.segments]
    if not files:
        runner.run_.notes.append("the target is the backup's own point: no binlog to replay")
        return
    _, position = binlog_start(backup)
    reader = ["mariadb-binlog", f"--start-position={position}"]
    if plan.target is not None:
        reader.append(f"--stop-datetime={binlog_stop(plan.target)}")
        runner.run_.notes.append(f"binlog events stamped before {binlog_stop(plan.target)} "
                                 "UTC replayed (binlog times are whole seconds)")
    reader += files
    client = ["mariadb", f"--defaults-file={defaults}"]
    runner.run_.commands.append(f"TZ=UTC {shlex.join(reader)} | {shlex.join(client)}")
    with runner.timed("replay"):
        # mariadb-binlog reads --stop-datetime in the local zone: the environment says UTC.
        with tempfile.TemporaryFile() as errors:
            producer = subprocess.Popen(reader, stdout=subprocess.PIPE, stderr=errors,
                                        env=runner.env)
            try:
                consumer = subprocess.run(client, stdin=producer.stdout, capture_output=True,
                                          env=runner.env, check=False, timeout=runner.timeout)
            finally:
                if producer.stdout is not None:
                    producer.stdout.close()
                if producer.wait(timeout=runner.timeout) != 0:
                    errors.seek(0)
                    raise ToolFailed("replay", f"mariadb-binlog exited {producer.returncode}: "
                                     f"{tail(errors.read().decode('utf-8', 'replace'))}")
        if consumer.returncode != 0:
            raise ToolFailed("replay", f"mariadb exited {consumer.returncode}: "
                             f"{tail(consumer.stderr.decode('utf-8', 'replace'))}")
