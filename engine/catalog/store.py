"""Opening a catalog file, and the lock that keeps one sync per catalog."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from pathlib import Path

from engine.catalog.fleet import FleetPart
from engine.catalog.items import ItemsPart
from engine.catalog.mirror import MirrorPart
from engine.catalog.plans import PlanPart
from engine.errors import CatalogDamaged, SyncAlreadyRunning

#: what SQLite's memdb VFS holds at most (SQLITE_MEMDB_DEFAULT_MAXSIZE, which Python cannot
#: change): past it, writes fail with SQLITE_FULL
IN_MEMORY_LIMIT = 1 << 30


class Catalog(ItemsPart, MirrorPart, FleetPart, PlanPart):
    """All reads and writes of the catalog. Use from one thread at a time."""

    @classmethod
    def open(cls, path: str | Path) -> Catalog:
        """Open (creating if needed) the catalog file, in WAL mode, readable by its owner only.
        A file that is not a usable SQLite catalog raises CatalogDamaged."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _create_owner_only(path)
            # Front ends call from worker threads one at a time (the TUI serialises its
            # calls); sqlite3's same-thread check would refuse that outright.
            connection = sqlite3.connect(path, check_same_thread=False)
        except (OSError, sqlite3.Error) as error:
            raise CatalogDamaged(str(path), _reason(error)) from None
        try:
            # Plain sqlite3 (what sqlite_utils' execute and enable_wal did): a command that
            # only reads never imports sqlite_utils (CatalogBase.db).
            connection.execute("PRAGMA busy_timeout = 5000")
            if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                # journal_mode cannot change inside a transaction: none is open yet
                level = connection.isolation_level
                connection.isolation_level = None
                try:
                    connection.execute("PRAGMA journal_mode=wal")
                finally:
                    connection.isolation_level = level
            # In WAL mode NORMAL never corrupts; a power cut may lose the last commits, which
            # only makes btar copy those objects again.
            connection.execute("PRAGMA synchronous = NORMAL")
            catalog = cls(connection, name=str(path), path=path)
            # Reading every table's root page finds a file cut short before any command does.
            for (table,) in connection.execute(
                    "select name from sqlite_master where type = 'table'").fetchall():
                connection.execute(f"select 1 from [{table}] limit 1").fetchall()
            return catalog
        except BaseException as error:
            connection.close()
            busy = isinstance(error, sqlite3.OperationalError) \
                and ("locked" in str(error) or "busy" in str(error))
            if isinstance(error, sqlite3.DatabaseError) and not busy:
                raise CatalogDamaged(str(path), _reason(error)) from None
            raise

    @classmethod
    def in_memory(cls) -> Catalog:
        """A private catalog in memory (the simulator's, the tests'), at most
        ``IN_MEMORY_LIMIT`` bytes: SQLite's memdb VFS, whose page cache is bounded like a
        file's. A ``:memory:`` database keeps every page in its cache, and SQLite walks that
        whole cache at each commit after a B-tree split renumbered pages (balance_nonroot
        moves a page through the lock-byte page's number), so its commits grow with the
        history: 40 us at 35 MB, against 8 us here. Where SQLite lacks memdb, ``:memory:``."""
        try:
            return cls(sqlite3.connect("file:btar-catalog?vfs=memdb", uri=True))
        except sqlite3.OperationalError:  # "no such vfs: memdb": built without it
            return cls(sqlite3.connect(":memory:"))


class CatalogLock:
    """The exclusive lock of one catalog: a lock file beside it (``<catalog>.lock``) held with
    flock, so that two `btar sync` never copy the same objects at once. The kernel releases it
    when the holder exits, even on SIGKILL; the file stays and holds the last holder's pid."""

    def __init__(self, catalog: str | Path) -> None:
        self.path = Path(f"{catalog}.lock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = ""
            for _ in range(20):
                # The holder writes its pid just after it takes the lock: give it a moment.
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                if holder.isdigit():
                    break
                time.sleep(0.025)
            os.close(fd)
            raise SyncAlreadyRunning(str(self.path),
                                     int(holder) if holder.isdigit() else None) from None
        # One write of a fixed width: a reader never sees the file half rewritten.
        os.pwrite(fd, f"{os.getpid():<20}\n".encode(), 0)
        os.ftruncate(fd, 21)
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


def _create_owner_only(path: Path) -> None:
    """Create the catalog file empty, readable and writable by its owner only, unless it
    exists (an existing file keeps the mode its owner gave it). SQLite creates the -wal and
    -shm files with the mode of the database file."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.fchmod(fd, 0o600)  # whatever the umask
    os.close(fd)


def _reason(error: BaseException) -> str:
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(str(text).split())
