"""What a restore tool provides to ``btar fork`` (the ``Restorer`` protocol), and what the tools
share: how they are run (as the fork's user, in a clean environment, each step timed), what a
run reports, private files, and starting PostgreSQL on a restored data directory."""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from engine.errors import BadInput, BtarError
from engine.model import ServiceType
from engine.restore import RestorePlan


class Restorer(Protocol):
    """One restore tool: where a plan's objects land in the fork folder (``INTO``), what is
    written next to them, and how the tool turns them into a database."""

    def handles(self, plan: RestorePlan) -> bool:
        """Among the restorers registered for the plan's layout and service type, is the
        plan's backup this tool's?"""
        ...

    def local_path(self, plan: RestorePlan, key: str) -> str:
        """Where the object ``key`` of the plan lands, relative to ``INTO``."""
        ...

    def lay_out(self, plan: RestorePlan, into: Path, wal_fetch_command: list[str]) -> list[str]:
        """Write what the tool starts from next to the fetched files; returns what was
        written."""
        ...

    def consistency_wal(self, plan: RestorePlan, into: Path) -> Mapping[str, object] | None:
        """The fetched backup's own record of the WAL that makes it consistent (and the
        backups it refers to), for engine.restore.supplement_consistency; None: nothing to
        add to the plan."""
        ...

    def restore(self, plan: RestorePlan, into: Path, options: ToolOptions) -> ToolRun | None:
        """Run the tool on a fetched and laid-out fork (None: there is nothing to run)."""
        ...

    def next_steps(self, plan: RestorePlan, into: Path, written: Sequence[str]) -> list[str]:
        """What to do with a fork whose tool did not run, one instruction a line."""
        ...


class InRepository:
    """For a tool that restores every backup of its layout from a staging copy of the
    repository: the plan's objects land in ``INTO/repo`` under their own keys."""

    def handles(self, plan: RestorePlan) -> bool:
        return True

    def local_path(self, plan: RestorePlan, key: str) -> str:
        return f"repo/{key}"


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
    #: read the copy in place (barman-cloud: engine.restore_tools.barman_cloud)
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


def ran_steps(restored: ToolRun) -> list[str]:
    """What to do with a fork whose tool ran, one instruction a line."""
    if restored.running:
        where = f"port {restored.port}" + (f", socket {restored.socket}"
                                           if restored.socket else "")
        return [f"the fork runs on {where}", f"stop it with: {restored.stop_command}"]
    starts = [note for note in restored.notes if note.startswith("start it with:")]
    return starts or [f"its data directory is {restored.datadir}"]


# -- files of the fork ----------------------------------------------------------------------------

def log_folder(service_type: str) -> str:
    return "binlogs" if service_type == ServiceType.MYSQL else "wal"


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


def read_text(path: Path) -> str:
    """A file's text, "" when it cannot be read (a log or pid file that may not exist)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def tail(text: str, lines: int = 8) -> str:
    return " | ".join(line for line in text.strip().splitlines()[-lines:]) or "(no output)"


# -- running the tools ----------------------------------------------------------------------------

@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    #: run commands through setpriv (btar is root and the user is another one)
    switch: bool


def run_user(wanted: str | None, default_for_root: str) -> User:
    """The OS user a fork runs as (``--run-as``, else the current one, else as root the
    database's own user)."""
    me = pwd.getpwuid(os.geteuid())
    name = wanted or (default_for_root if os.geteuid() == 0 else me.pw_name)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise BadInput(f"--run-as: no OS user {name!r} on this host") from None
    if entry.pw_uid == os.geteuid():
        return User(name, entry.pw_uid, entry.pw_gid, False)
    if os.geteuid() != 0:
        raise BadInput(f"--run-as {name}: only root can run the fork as another user")
    if entry.pw_uid == 0:
        raise BadInput("--run-as: database servers refuse to run as root; name another user")
    return User(name, entry.pw_uid, entry.pw_gid, True)


def _environment() -> dict[str, str]:
    """A clean environment: nothing that could point a tool at the source (PGBACKREST_*, PG*,
    MYSQL_*), times in UTC."""
    keep = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "HOME", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["TZ"] = "UTC"
    return env


class Runner:
    """Runs commands as the fork's user, timing each step."""

    def __init__(self, user: User, run: ToolRun, timeout: float) -> None:
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
                             f"{tail(output)}")
        return output

    @contextlib.contextmanager
    def timed(self, step: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        self.run_.steps.append((step, time.monotonic() - started))

    def hand_over(self, into: Path) -> None:
        """Give the fork folder to the fork's user and make sure that user can reach it."""
        chown_tree(into, self.user)
        check_reachable(self, into)


def tool_runner(tool: str, datadir: Path, options: ToolOptions, default_for_root: str) -> Runner:
    """A runner for a tool's run as the fork's user (``--run-as``, else the current one, else
    as root ``default_for_root``), its ToolRun in ``runner.run_``."""
    user = run_user(options.run_as, default_for_root)
    return Runner(user, ToolRun(tool, user.name, str(datadir)), options.timeout)


def chown_tree(root: Path, user: User) -> None:
    """Give ``root`` and everything below it to the fork's user (when it is another one)."""
    if not user.switch:
        return
    os.chown(root, user.uid, user.gid)
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            os.chown(os.path.join(folder, name), user.uid, user.gid, follow_symlinks=False)


def check_reachable(runner: Runner, into: Path) -> None:
    """Refuse a fork folder the fork's user cannot reach (a parent it may not traverse)."""
    if not runner.user.switch:
        return
    result = subprocess.run(runner.argv(["test", "-w", str(into), "-a", "-x", str(into)]),
                            env=runner.env, check=False)
    if result.returncode != 0:
        raise BadInput(f"the fork runs as {runner.user.name}, who cannot reach {into}; "
                       "choose --into under a folder that user can traverse (e.g. /var/tmp)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- PostgreSQL: recovery settings and a server on the restored data directory ------------------

def pg_time(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}+00"


def recovery_reaches_past(plan: RestorePlan, target: datetime) -> bool:
    """Does the fetched WAL hold a commit after ``target``? PostgreSQL stops a time target at
    the first commit after it; without one it would end recovery with a FATAL error, while
    replaying every fetched segment yields exactly the state at ``target``."""
    return any(s.end_time > target for s in plan.segments)


def recovery_timeline(plan: RestorePlan) -> str:
    """``recovery_target_timeline`` for a plan: its timeline when it is a PostgreSQL
    timeline number, else 'latest'."""
    timeline = plan.timeline or (plan.segments[-1].stream if plan.segments else "")
    return timeline if timeline.isdigit() and int(timeline) > 0 else "latest"


def postgresql_runner(tool: str, into: Path, options: ToolOptions) -> Runner:
    """A runner for a tool restoring PostgreSQL into ``INTO/data``; refuses a data directory
    a server runs on."""
    data = into / "data"
    runner = tool_runner(tool, data, options, "postgres")
    if (data / "postmaster.pid").exists():
        raise BadInput(f"a server is running on {data} (postmaster.pid); stop it first")
    return runner


def start_or_explain(plan: RestorePlan, into: Path, options: ToolOptions, runner: Runner,
                     run: ToolRun, needs: str = "") -> None:
    """``--start``: PostgreSQL started on the restored ``INTO/data`` and waited for until it
    left recovery; otherwise the command that starts it (``needs``: what it needs besides)."""
    if options.start:
        start_postgresql(plan, into, options, runner, run)
    else:
        run.notes.append(f"start it with: pg_ctl -D {into / 'data'} -o '-p PORT -c "
                         f"archive_mode=off' start (as {runner.user.name}{needs})")


def start_postgresql(plan: RestorePlan, into: Path, options: ToolOptions, runner: Runner,
                     run: ToolRun) -> None:
    """Start PostgreSQL on ``INTO/data`` (its own port and socket, archive_mode off) and wait
    until it left recovery."""
    data, sockets = into / "data", into / "run"
    sockets.mkdir(exist_ok=True)
    chown_tree(sockets, runner.user)
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
            raise ToolFailed("recovery", f"PostgreSQL stopped: {tail(read_text(log))}")
        if time.monotonic() > deadline:
            raise ToolFailed("recovery", f"still in recovery after {options.timeout:.0f}s; "
                             f"see {log}")
        time.sleep(0.1)
    confirmed = _in_recovery(runner, bindir, sockets, port)
    run.steps.append(("recovery", time.monotonic() - started))
    pid_text = read_text(data / "postmaster.pid").split("\n", 1)[0].strip()
    run.pid = int(pid_text) if pid_text.isdigit() else None
    run.notes.append("pg_is_in_recovery() = false" if confirmed == "f" else
                     "recovery ended (pg_controldata: in production)")


def _pg_bindir(data: Path) -> str:
    version = read_text(data / "PG_VERSION").strip() or "15"
    candidate = Path(f"/usr/lib/postgresql/{version}/bin")
    if (candidate / "pg_ctl").exists():
        return str(candidate)
    found = shutil.which("pg_ctl")
    if found is None:
        raise ToolFailed("start", f"pg_ctl for PostgreSQL {version} is not installed")
    return str(Path(found).parent)


def _pg_state(runner: Runner, bindir: str, data: Path) -> str:
    result = subprocess.run(runner.argv([f"{bindir}/pg_controldata", str(data)]),
                            env=runner.env, capture_output=True, check=False, text=True)
    for line in result.stdout.splitlines():
        if line.startswith("Database cluster state:"):
            return line.partition(":")[2].strip()
    return ""


def _in_recovery(runner: Runner, bindir: str, sockets: Path, port: int) -> str:
    """``select pg_is_in_recovery()`` through the fork's socket ("" if it cannot connect)."""
    result = subprocess.run(
        runner.argv([f"{bindir}/psql", "-h", str(sockets), "-p", str(port), "-d", "postgres",
                     "-XAtc", "select pg_is_in_recovery()"]),
        env={**runner.env, "PGCONNECT_TIMEOUT": "5"}, capture_output=True, text=True,
        check=False)
    return result.stdout.strip() if result.returncode == 0 else ""
