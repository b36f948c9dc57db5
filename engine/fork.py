"""Running a fork: fetch a restore plan's objects into a folder (verified, resumable), lay
out what the database's own tooling starts from, and, for real backups, run that tooling:

* pgbackrest layout: the plan's objects land in ``INTO/repo`` (a pgBackRest repository), the
  info files come from the backup's seal, and ``pgbackrest restore`` writes ``INTO/data``;
* native layout with a mariadb-backup base (its payload holds ``xtrabackup_checkpoints``):
  ``mariadb-backup --prepare``, ``--copy-back`` into the empty ``INTO/mysql``, then the binlogs
  replayed with ``mariadb-binlog --stop-datetime`` into a server started on the fork;
* native layout otherwise (the demo's key-value data): ``state.json`` is reconstructed.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.effects import Effect, FetchBatch, FetchResult, FetchTask, Now
from engine.errors import BadInput, BtarError, CorruptBackup
from engine.formats import layout_kind
from engine.formats.pgbackrest import SEAL_FOLDER, parse_seal, wal_position
from engine.model import ServiceType, iso, parse_iso
from engine.restore import RestorePlan

FETCH_BATCH = 32
PLAN_FILE = "fork.json"


class ForkIncomplete(BtarError):
    """Some objects could not be fetched or verified; running the fork again resumes it."""

    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        super().__init__(f"{len(failures)} objects failed ({failures[0]}); "
                         "run the same fork again to resume")


@dataclass
class FetchOutcome:
    downloaded: int = 0
    skipped: int = 0
    bytes_downloaded: int = 0
    failures: list[str] = field(default_factory=list)
    started: datetime | None = None
    finished: datetime | None = None


def log_folder(service_type: str) -> str:
    return "binlogs" if service_type == ServiceType.MYSQL else "wal"


def is_pgbackrest(plan: RestorePlan) -> bool:
    return layout_kind(plan.layout) == "pgbackrest"


def stanza_of(plan: RestorePlan) -> str:
    return plan.layout.partition(":")[2] or "main"


def is_mariadb_backup(plan: RestorePlan) -> bool:
    """A native-layout MySQL base backup whose payload is mariadb-backup's output."""
    return plan.service_type == ServiceType.MYSQL and layout_kind(plan.layout) == "native" \
        and any(o.key == f"{plan.base_id}/data/xtrabackup_checkpoints" for o in plan.objects)


def local_path(plan: RestorePlan, key: str) -> str:
    """Where an object of the plan lands inside the fork folder."""
    if is_pgbackrest(plan) or layout_kind(plan.layout) == "barman-cloud":
        return f"repo/{key}"  # INTO/repo holds the repository with the same layout
    parts = key.split("/")
    if parts[0] == "base" and parts[2:3] == ["data"]:
        return "/".join(["data", *parts[3:]])
    if parts[0] == "base":
        return "backup_manifest.json"
    folder = log_folder(plan.service_type)
    if parts[-1] == "history.json":
        return f"{folder}/{parts[1]}/history.json"
    return f"{folder}/{parts[1]}/{parts[2].split('_', 1)[0]}.log"


def fetch_plan(plan: RestorePlan, prefix: str, into: Path,
               keys: Sequence[str] | None = None) -> Generator[Effect, Any, FetchOutcome]:
    """Download every object of the plan (or only those of ``keys``) into ``into``; files
    already whole are kept."""
    outcome = FetchOutcome()
    outcome.started = yield Now()
    wanted = None if keys is None else set(keys)
    tasks = [FetchTask(plan.region, f"{prefix}/{o.key}", str(into / local_path(plan, o.key)),
                       o.size, o.sha256, o.digest)
             for o in plan.objects if wanted is None or o.key in wanted]
    for start in range(0, len(tasks), FETCH_BATCH):
        results: tuple[FetchResult, ...] = yield FetchBatch(tuple(tasks[start:start + FETCH_BATCH]))
        for result in results:
            if not result.ok:
                outcome.failures.append(result.error)
            elif result.skipped:
                outcome.skipped += 1
            else:
                outcome.downloaded += 1
                outcome.bytes_downloaded += result.task.size
    outcome.finished = yield Now()
    return outcome


def private_folder(folder: Path) -> None:
    """Create ``folder`` (and parents) readable by its owner only: a fork holds a copy of a
    database."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)


def write_private(path: Path, text: str) -> None:
    """Write a text file that only its owner can read."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    path.chmod(0o600)


def write_plan_file(plan_json: dict[str, Any], into: Path, state: str) -> None:
    private_folder(into)
    document = {"state": state, "plan": plan_json}
    temp = into / f".{PLAN_FILE}.tmp"
    write_private(temp, json.dumps(document, indent=2) + "\n")
    temp.replace(into / PLAN_FILE)


def lay_out(plan: RestorePlan, into: Path, wal_fetch_command: list[str]) -> list[str]:
    """Write the recovery configuration next to the fetched files; returns what was written."""
    written: list[str] = []
    target = iso(plan.effective_target)
    if is_pgbackrest(plan):
        return lay_out_pgbackrest(plan, into)
    if layout_kind(plan.layout) == "barman-cloud":
        from engine.fork_barman import lay_out_barman_cloud  # it builds on this module
        return lay_out_barman_cloud(plan, into)
    if plan.service_type == ServiceType.POSTGRESQL:
        data = into / "data"
        private_folder(data)
        write_private(data / "recovery.signal", "")
        restore = " ".join([*map(shlex.quote, wal_fetch_command), '"%f"', '"%p"'])
        lines = [
            "# written by btar fork: recover from the copy in " + plan.region,
            f"restore_command = '{restore}'",
            f"recovery_target_timeline = '{recovery_timeline(plan)}'",
            "recovery_target_action = 'promote'",
            # a fork must never push WAL into the source's archive
            "archive_mode = 'off'",
        ]
        if plan.target is not None:
            lines.append(f"recovery_target_time = '{target.replace('Z', '+00')}'")
        write_private(data / "postgresql.auto.conf", "\n".join(lines) + "\n")
        written += ["data/recovery.signal", "data/postgresql.auto.conf"]
    else:
        replay = {
            "binlogs": [f"binlogs/{s.stream}/{s.seq:010d}.log" for s in plan.segments],
            "start_after": iso(plan.base_end),
            "stop_datetime": target,
            "note": "replay these binlogs in order on top of the restored backup, stopping at "
                    "stop_datetime (UTC)",
        }
        write_private(into / "replay.json", json.dumps(replay, indent=2) + "\n")
        written.append("replay.json")
    if plan.layout == "native" and not is_mariadb_backup(plan):
        state = reconstruct_native_state(plan, into)
        write_private(into / "state.json", json.dumps(state, indent=1, sort_keys=True) + "\n")
        written.append("state.json")
    return written


def reconstruct_native_state(plan: RestorePlan, into: Path) -> dict[str, object]:
    """The native layout carries a tiny key-value database: the base backup's snapshot, then
    every logged write after the backup up to the target."""
    state: dict[str, object] = {}
    for part in sorted((into / "data").glob("*.json")):
        try:
            state.update(json.loads(part.read_text(encoding="utf-8")))
        except (ValueError, AttributeError) as error:
            raise CorruptBackup(str(part), f"not a native snapshot: {error}") from None
    folder = log_folder(plan.service_type)
    for segment in plan.segments:
        path = into / folder / segment.stream / f"{segment.seq:010d}.log"
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            moment = parse_iso(record["t"])
            if plan.base_end < moment <= plan.effective_target:
                state[str(record["key"])] = record["value"]
    return state


# -- pgBackRest: the staging repository ---------------------------------------------------------

def base_label(plan: RestorePlan) -> str:
    return plan.base_id.removeprefix("base/")


def read_seal(plan: RestorePlan, into: Path) -> dict[str, Any]:
    """The seal of the plan's backup, as fetched into the staging repository."""
    key = f"{SEAL_FOLDER}/{stanza_of(plan)}/{base_label(plan)}.json"
    path = into / local_path(plan, key)
    try:
        return parse_seal(path.read_bytes(), key)
    except FileNotFoundError:
        raise CorruptBackup(key, "the backup's seal was not fetched") from None


def lay_out_pgbackrest(plan: RestorePlan, into: Path) -> list[str]:
    """Complete ``INTO/repo`` into a repository pgBackRest can restore from: its info files
    (pgBackRest's own bytes, snapshotted in the seal), and ``INTO/pgbackrest.conf``."""
    seal = read_seal(plan, into)
    written: list[str] = []
    for key, text in sorted(seal.get("info", {}).items()):
        path = into / local_path(plan, key)
        private_folder(path.parent)
        write_private(path, text)
        written.append(local_path(plan, key))
    stanza = stanza_of(plan)
    config = "\n".join([
        "# written by btar fork: a staging copy of the repository in " + plan.region,
        "[global]", "repo1-type=posix", f"repo1-path={into / 'repo'}",
        f"log-path={into / 'log'}", f"lock-path={into / 'lock'}", f"spool-path={into / 'spool'}",
        "log-level-console=warn", "log-level-file=info", "",
        f"[{stanza}]", f"pg1-path={into / 'data'}", ""])
    write_private(into / "pgbackrest.conf", config)
    for folder in ("log", "lock", "spool"):
        private_folder(into / folder)
    return [*written, "pgbackrest.conf"]


# -- running the database's own tools ----------------------------------------------------------

class ToolFailed(BtarError):
    """A restore tool failed; the message carries its command and the end of its output."""

    def __init__(self, step: str, detail: str) -> None:
        self.step = step
        super().__init__(f"{step} failed: {detail}")


@dataclass(frozen=True)
class ToolOptions:
    """How ``btar fork`` runs the restore tools after fetching."""

    #: only fetch and lay out; run nothing
    fetch_only: bool = False
    #: leave a server running on the fork (PostgreSQL: waits until it left recovery)
    start: bool = False
    #: the server's port (default: a free loopback port)
    port: int | None = None
    #: OS user that owns the fork and runs the tools and the server; default: the current
    #: user, or ``postgres`` / ``mysql`` when btar runs as root (servers refuse root)
    run_as: str | None = None
    timeout: float = 600.0
    #: the fork region's location settings and the service's prefix in it, for tools that
    #: read the copy in place (barman-cloud: engine.fork_barman)
    location: object = None
    prefix: str = ""


@dataclass
class ToolRun:
    """What the restore tools did."""

    tool: str
    user: str
    datadir: str
    steps: list[tuple[str, float]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    running: bool = False
    port: int | None = None
    pid: int | None = None
    socket: str = ""
    stop_command: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _User:
    name: str
    uid: int
    gid: int
    #: run commands through setpriv (btar is root and the user is another one)
    switch: bool


def _user(wanted: str | None, default_for_root: str) -> _User:
    me = pwd.getpwuid(os.geteuid())
    name = wanted or (default_for_root if os.geteuid() == 0 else me.pw_name)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise BadInput(f"--run-as: no OS user {name!r} on this host") from None
    if entry.pw_uid == os.geteuid():
        return _User(name, entry.pw_uid, entry.pw_gid, False)
    if os.geteuid() != 0:
        raise BadInput(f"--run-as {name}: only root can run the fork as another user")
    if entry.pw_uid == 0:
        raise BadInput("--run-as: database servers refuse to run as root; name another user")
    return _User(name, entry.pw_uid, entry.pw_gid, True)


def _environment() -> dict[str, str]:
    """A clean environment: nothing that could point a tool at the source (PGBACKREST_*, PG*,
    MYSQL_*), times in UTC."""
    keep = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "HOME", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["TZ"] = "UTC"
    return env


class _Runner:
    """Runs commands as the fork's user, timing each step."""

    def __init__(self, user: _User, run: ToolRun, timeout: float) -> None:
        self.user = user
        self.run_ = run
        self.timeout = timeout
        self.env = _environment()
        if user.switch:
            self.env["HOME"] = pwd.getpwnam(user.name).pw_dir

    def argv(self, command: Sequence[str], *, as_user: bool = True) -> list[str]:
        if as_user and self.user.switch:
            return ["setpriv", f"--reuid={self.user.uid}", f"--regid={self.user.gid}",
                    "--init-groups", "--", *command]
        return list(command)

    def __call__(self, step: str, command: Sequence[str], *, as_user: bool = True,
                 stdin: bytes | None = None) -> str:
        self.run_.commands.append(shlex.join(command))
        started = time.monotonic()
        try:
            result = subprocess.run(self.argv(command, as_user=as_user), input=stdin,
                                    capture_output=True, env=self.env, timeout=self.timeout,
                                    check=False)
        except FileNotFoundError:
            raise ToolFailed(step, f"{command[0]} is not installed on this host") from None
        except subprocess.TimeoutExpired:
            raise ToolFailed(step, f"no answer after {self.timeout:.0f}s: "
                             f"{shlex.join(command)}") from None
        self.run_.steps.append((step, time.monotonic() - started))
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        if result.returncode != 0:
            raise ToolFailed(step, f"`{shlex.join(command)}` exited {result.returncode}: "
                             f"{_tail(output)}")
        return output

    @contextlib.contextmanager
    def timed(self, step: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        self.run_.steps.append((step, time.monotonic() - started))


def _tail(text: str, lines: int = 8) -> str:
    return " | ".join(line for line in text.strip().splitlines()[-lines:]) or "(no output)"


def _chown_tree(root: Path, user: _User) -> None:
    if not user.switch:
        return
    os.chown(root, user.uid, user.gid)
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            os.chown(os.path.join(folder, name), user.uid, user.gid, follow_symlinks=False)


def _check_reachable(runner: _Runner, into: Path) -> None:
    if not runner.user.switch:
        return
    result = subprocess.run(runner.argv(["test", "-w", str(into), "-a", "-x", str(into)]),
                            env=runner.env, check=False)
    if result.returncode != 0:
        raise BadInput(f"the fork runs as {runner.user.name}, who cannot reach {into}; "
                       "choose --into under a folder that user can traverse (e.g. /var/tmp)")


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def run_restore_tools(plan: RestorePlan, into: Path, options: ToolOptions) -> ToolRun | None:
    """Run the database's own restore on a fetched and laid-out fork (None: nothing to run)."""
    if options.fetch_only:
        return None
    if is_pgbackrest(plan):
        return restore_pgbackrest(plan, into, options)
    if is_mariadb_backup(plan):
        return restore_mariadb(plan, into, options)
    if layout_kind(plan.layout) == "barman-cloud":
        from engine.fork_barman import restore_barman_cloud
        return restore_barman_cloud(plan, into, options)
    if options.start:
        raise BadInput("--start needs a real backup (layout pgbackrest, or a mariadb-backup "
                       "base in the native layout); this fork holds btar's demo data")
    return None


def _pg_time(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}+00"


def recovery_reaches_past(plan: RestorePlan, target: datetime) -> bool:
    """Does the fetched WAL hold a commit after ``target``? PostgreSQL stops a time target at
    the first commit after it; without one it would end recovery with a FATAL error, while
    replaying every fetched segment yields exactly the state at ``target``."""
    return any(s.end_time > target for s in plan.segments)


def pgbackrest_restore_command(plan: RestorePlan, into: Path) -> tuple[list[str], str]:
    """The ``pgbackrest`` command (without ``--delta`` and the final ``restore``) that restores
    the fork's staging repository to the plan's point, and what its recovery does."""
    command = ["pgbackrest", f"--config={into / 'pgbackrest.conf'}",
               f"--stanza={stanza_of(plan)}", f"--set={base_label(plan)}", "--archive-mode=off"]
    # Recovery follows the plan's timeline, never another one its archive happens to hold:
    # the window the plan was checked against is that timeline's.
    timeline = recovery_timeline(plan)
    along = [f"--target-timeline={timeline}"] if timeline != "latest" else []
    follows = f" along timeline {timeline}" if along else ""
    if plan.target is not None and recovery_reaches_past(plan, plan.target):
        command += ["--type=time", f"--target={_pg_time(plan.target)}",
                    "--target-action=promote", *along]
        return command, (f"recovery stops before the first commit after {iso(plan.target)}"
                         f"{follows}")
    # latest, or a target after the last commit in the fetched WAL: replay all of it
    command += ["--type=default", *along]
    return command, f"recovery replays every fetched WAL segment{follows}, then promotes"


def recovery_timeline(plan: RestorePlan) -> str:
    """``recovery_target_timeline`` for a plan: its timeline when it is a PostgreSQL
    timeline number, else 'latest'."""
    timeline = plan.timeline or (plan.segments[-1].stream if plan.segments else "")
    return timeline if timeline.isdigit() and int(timeline) > 0 else "latest"


def restore_pgbackrest(plan: RestorePlan, into: Path, options: ToolOptions) -> ToolRun:
    """``pgbackrest restore`` from the staging repository into ``INTO/data``, optionally
    starting PostgreSQL and waiting until it left recovery."""
    user = _user(options.run_as, "postgres")
    data = into / "data"
    run = ToolRun("pgbackrest", user.name, str(data))
    runner = _Runner(user, run, options.timeout)
    if (data / "postmaster.pid").exists():
        raise BadInput(f"a server is running on {data} (postmaster.pid); stop it first")
    _chown_tree(into, user)
    _check_reachable(runner, into)
    command, note = pgbackrest_restore_command(plan, into)
    run.notes.append(note)
    if data.exists() and any(data.iterdir()):
        command.append("--delta")
    runner("restore", [*command, "restore"])
    run.notes.append("archive_mode=off: the fork never pushes WAL into the source repository")
    if options.start:
        _start_postgresql(plan, into, options, runner, run)
    else:
        run.stop_command = ""
        run.notes.append(f"start it with: pg_ctl -D {data} -o '-p PORT -c archive_mode=off' "
                         f"start (as {user.name})")
    return run


def _start_postgresql(plan: RestorePlan, into: Path, options: ToolOptions, runner: _Runner,
                      run: ToolRun) -> None:
    data, sockets = into / "data", into / "run"
    sockets.mkdir(exist_ok=True)
    _chown_tree(sockets, runner.user)
    port = options.port or free_port()
    settings = (f"-p {port} -c archive_mode=off "
                f"-c unix_socket_directories={shlex.quote(str(sockets))}")
    log = into / "postgresql.log"
    bindir = _pg_bindir(data)
    with runner.timed("start"):
        subprocess.run(runner.argv([f"{bindir}/pg_ctl", "-D", str(data), "-l", str(log),
                                    "-o", settings, "-W", "start"]),
                       env=runner.env, capture_output=True, check=False,
                       timeout=options.timeout)
    run.running, run.port, run.socket = True, port, str(sockets)
    run.stop_command = f"{bindir}/pg_ctl -D {data} stop" + \
        (f"  (as {runner.user.name})" if runner.user.switch else "")
    started = time.monotonic()
    deadline = started + options.timeout
    while True:
        state = _pg_state(runner, bindir, data)
        alive = (data / "postmaster.pid").exists()
        if state == "in production" and not (data / "recovery.signal").exists():
            break
        if not alive and time.monotonic() - started > 1.0:
            run.running = False
            raise ToolFailed("recovery", f"PostgreSQL stopped: {_tail(_read(log))}")
        if time.monotonic() > deadline:
            raise ToolFailed("recovery", f"still in recovery after {options.timeout:.0f}s; "
                             f"see {log}")
        time.sleep(0.1)
    confirmed = _in_recovery(runner, bindir, sockets, port)
    run.steps.append(("recovery", time.monotonic() - started))
    pid_text = _read(data / "postmaster.pid").split("\n", 1)[0].strip()
    run.pid = int(pid_text) if pid_text.isdigit() else None
    run.notes.append("pg_is_in_recovery() = false" if confirmed == "f" else
                     "recovery ended (pg_controldata: in production)")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _pg_bindir(data: Path) -> str:
    version = _read(data / "PG_VERSION").strip() or "15"
    candidate = Path(f"/usr/lib/postgresql/{version}/bin")
    if (candidate / "pg_ctl").exists():
        return str(candidate)
    found = shutil.which("pg_ctl")
    if found is None:
        raise ToolFailed("start", f"pg_ctl for PostgreSQL {version} is not installed")
    return str(Path(found).parent)


def _pg_state(runner: _Runner, bindir: str, data: Path) -> str:
    result = subprocess.run(runner.argv([f"{bindir}/pg_controldata", str(data)]),
                            env=runner.env, capture_output=True, check=False, text=True)
    for line in result.stdout.splitlines():
        if line.startswith("Database cluster state:"):
            return line.partition(":")[2].strip()
    return ""


def _in_recovery(runner: _Runner, bindir: str, sockets: Path, port: int) -> str:
    """``select pg_is_in_recovery()`` through the fork's socket ("" if it cannot connect)."""
    result = subprocess.run(
        runner.argv([f"{bindir}/psql", "-h", str(sockets), "-p", str(port), "-d", "postgres",
                     "-XAtc", "select pg_is_in_recovery()"]),
        env={**runner.env, "PGCONNECT_TIMEOUT": "5"}, capture_output=True, text=True,
        check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


def next_steps(plan: RestorePlan, into: Path, written: Sequence[str],
               restored: ToolRun | None) -> list[str]:
    """What to do with a finished fork, one instruction a line (commands ready to copy)."""
    if restored is not None:
        if restored.running:
            where = f"port {restored.port}" + (f", socket {restored.socket}"
                                               if restored.socket else "")
            return [f"the fork runs on {where}", f"stop it with: {restored.stop_command}"]
        starts = [note for note in restored.notes if note.startswith("start it with:")]
        return starts or [f"its data directory is {restored.datadir}"]
    if "state.json" in written:  # the demo's key-value data: there is no server to start
        point = iso(plan.effective_target.replace(microsecond=0))
        return [f"read the data at {point}: cat {shlex.quote(str(into / 'state.json'))}"]
    if layout_kind(plan.layout) == "barman-cloud":
        return [f"the verified objects are in {into / 'repo'}; fork without --fetch-only to "
                "restore them with barman-cloud-restore"]
    data = shlex.quote(str(into / "data"))
    start = f"start it with: pg_ctl -D {data} -o '-p PORT -c archive_mode=off' start"
    if is_pgbackrest(plan):
        command, _ = pgbackrest_restore_command(plan, into)
        return [f"restore it with: {shlex.join([*command, 'restore'])}", start]
    if plan.service_type == ServiceType.POSTGRESQL:
        return [start + " (recovery fetches its WAL from the copy in " + plan.region + ")"]
    replay = shlex.quote(str(into / "replay.json"))
    if is_mariadb_backup(plan):
        return [f"prepare it with: mariadb-backup --prepare --target-dir={data}",
                f"copy it back with mariadb-backup --copy-back, start mariadbd on it, then "
                f"replay the binlogs listed in {replay}"]
    return [f"replay the binlogs listed in {replay} on top of the backup in {data}"]


# -- MariaDB: prepare, copy-back, replay the binlogs ---------------------------------------------

def binlog_stop(target: datetime) -> str:
    """``--stop-datetime`` for a target: binlog events carry whole seconds, and the replay
    stops at the first event at or after the value, so every event stamped in the target's
    second (and before) is replayed."""
    moment = target.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
    return f"{moment:%Y-%m-%d %H:%M:%S}"


def restore_mariadb(plan: RestorePlan, into: Path, options: ToolOptions) -> ToolRun:
    """Prepare the fetched mariadb-backup, copy it back into an empty datadir, start a server
    on it and replay the binlogs up to the target; stop it again unless ``start``."""
    user = _user(options.run_as, "mysql")
    backup, datadir, sockets = into / "data", into / "mysql", into / "run"
    run = ToolRun("mariadb-backup", user.name, str(datadir))
    runner = _Runner(user, run, options.timeout)
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
    _chown_tree(into, user)
    _check_reachable(runner, into)
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


def _wait_for_mariadb(runner: _Runner, defaults: Path, server: subprocess.Popen[bytes],
                      into: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        ping = subprocess.run(["mariadb-admin", f"--defaults-file={defaults}", "ping"],
                              env=runner.env, capture_output=True, check=False)
        if ping.returncode == 0:
            return
        if server.poll() is not None:
            raise ToolFailed("start", f"mariadbd exited {server.returncode}: "
                             f"{_tail(_read(into / 'mysqld.err'))}")
        if time.monotonic() > deadline:
            raise ToolFailed("start", f"mariadbd did not answer within {timeout:.0f}s")
        time.sleep(0.1)


def _stop_mariadb(runner: _Runner, defaults: Path, server: subprocess.Popen[bytes]) -> None:
    subprocess.run(["mariadb-admin", f"--defaults-file={defaults}", "shutdown"],
                   env=runner.env, capture_output=True, check=False, timeout=60)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def binlog_start(backup: Path) -> tuple[str, int]:
    """The binlog file and position the backup is consistent with (xtrabackup_binlog_info)."""
    fields = _read(backup / "xtrabackup_binlog_info").split()
    if len(fields) < 2 or not fields[1].isdigit():
        raise CorruptBackup("xtrabackup_binlog_info", "no binlog position in the backup "
                            "(was the source running with log-bin?)")
    return fields[0], int(fields[1])


def _replay_binlogs(plan: RestorePlan, into: Path, backup: Path, defaults: Path,
                    runner: _Runner) -> None:
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
                                     f"{_tail(errors.read().decode('utf-8', 'replace'))}")
        if consumer.returncode != 0:
            raise ToolFailed("replay", f"mariadb exited {consumer.returncode}: "
                             f"{_tail(consumer.stderr.decode('utf-8', 'replace'))}")


def wal_stream_of(name: str) -> tuple[str, int]:
    """(stream, seq) of a PostgreSQL WAL file name in the pgbackrest layout's numbering."""
    timeline, segno = wal_position(name)
    return str(timeline), segno
