"""The catalog's connection, schema migration and transactions, under every part."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from engine.catalog.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    to_text,
)
from engine.errors import CatalogTooNew

if TYPE_CHECKING:
    import sqlite_utils


def text_of(moment: datetime) -> str:
    """``schema.to_text(moment)``, faster for the UTC times the engine handles: isoformat is
    C code, strftime parses its format every call."""
    if moment.tzinfo is UTC and moment.year >= 1000:
        return moment.isoformat(timespec="microseconds")[:26] + "Z"
    return to_text(moment)


class Transaction:
    """What sqlite_utils' ``atomic()`` does (BEGIN and COMMIT, or ROLLBACK on an error; a
    savepoint when nested), without a generator and a random savepoint name per use: the
    scheduler opens several per pass of every service."""

    __slots__ = ("_conn", "_inert", "_owner", "_savepoint", "_savepoints")

    def __init__(self, owner: CatalogBase, *, savepoint: bool = True) -> None:
        self._owner = owner
        self._conn = owner.conn
        self._savepoints = savepoint
        self._savepoint = ""
        self._inert = False

    def __enter__(self) -> Transaction:
        conn = self._conn
        if conn.in_transaction and not self._savepoints:
            self._inert = True  # the enclosing transaction makes it atomic
            return self
        if conn.in_transaction:
            # Named by depth, not uniquely: only the open ones must differ, and a name seen
            # before is a statement SQLite has compiled already (sqlite3 caches them by text).
            self._owner._savepoints += 1
            self._savepoint = f"btar_{self._owner._savepoints}"
            conn.execute(f"SAVEPOINT {self._savepoint}")
        else:
            conn.execute("BEGIN")
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        conn, savepoint = self._conn, self._savepoint
        if self._inert:
            return
        if savepoint:
            self._owner._savepoints -= 1
            if error is None:
                conn.execute(f"RELEASE SAVEPOINT {savepoint}")
            elif conn.in_transaction:
                # An error may have ended the whole transaction, savepoint included.
                conn.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
                conn.execute(f"RELEASE SAVEPOINT {savepoint}")
            return
        if error is not None:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


class CatalogBase:
    """The database and its schema; the parts add their reads and writes."""

    def __init__(self, conn: sqlite3.Connection, *, name: str = "the catalog",
                 path: Path | None = None) -> None:
        #: the plain connection, for the hot paths (sqlite_utils wraps each query in a
        #: savepoint and parses its first keyword) and every read
        self.conn = conn
        # What sqlite_utils.Database sets on a connection it is given: the item_counts
        # triggers run under it. The Database itself is made when first needed (db).
        conn.execute("PRAGMA recursive_triggers = on")
        self._db: sqlite_utils.Database | None = None
        #: savepoints open (nested transactions)
        self._savepoints = 0
        #: the last time written as text, and its text (a pass stamps many rows with one now)
        self._stamped: tuple[datetime, str] | None = None
        self.name = name
        #: the file (None in memory): its lock file sits beside it (CatalogLock)
        self.path = path
        #: item rows this connection deleted, ever (what a reader keeping ids checks)
        self.item_deletions = 0
        self._migrate()

    @property
    def db(self) -> sqlite_utils.Database:
        """sqlite_utils over the same connection, for the migrations. Made (and sqlite_utils
        imported, with its plugins: some 0.1 s) on first use: the catalog's own reads and
        writes go through the plain connection, so that no command pays for it."""
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    def close(self) -> None:
        self.conn.close()

    @property
    def schema_version(self) -> int:
        row = self.conn.execute("PRAGMA user_version").fetchone()
        return int(row[0])

    def _migrate(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise CatalogTooNew(self.name, version, SCHEMA_VERSION)
        for number in range(version, SCHEMA_VERSION):
            with self.db.atomic():
                MIGRATIONS[number](self.db)
                self.db.execute(f"PRAGMA user_version = {number + 1}")

    def transaction(self) -> Transaction:
        """Group writes into one commit (nested groups become savepoints)."""
        return Transaction(self)

    def _atomic(self) -> Transaction:
        """The transaction of one catalog method's writes. Inside a caller's transaction it
        adds no savepoint: the caller's commits or rolls back the whole, and no caller catches
        a catalog error inside its transaction (two statements saved per nested call, and a
        pass makes several)."""
        return Transaction(self, savepoint=False)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """The rows of a query, as dicts by column name (what sqlite_utils' ``query``
        gives, without importing it)."""
        cursor = self.conn.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _insert(self, table: str, record: dict[str, Any], on_conflict: str = "") -> None:
        """Insert one row (committed at once unless a transaction is open); ``on_conflict``:
        an upsert clause that follows the values."""
        self._write(f"insert into {table} ({', '.join(record)}) "
                    f"values ({', '.join('?' * len(record))}){on_conflict}",
                    list(record.values()))

    def _upsert(self, table: str, record: dict[str, Any], pk: tuple[str, ...]) -> None:
        """Insert a row, or set the columns ``record`` names on the row with its key (as
        sqlite_utils' ``upsert``: the other columns keep their values)."""
        updates = ", ".join(f"{c} = excluded.{c}" for c in record if c not in pk)
        self._insert(table, record, f" on conflict ({', '.join(pk)}) do update set {updates}")

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def data_version(self) -> int:
        """SQLite's ``PRAGMA data_version``: it moves when another connection commits."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of a query, as tuples (a plain read opens no transaction)."""
        return self.conn.execute(sql, params).fetchall()

    def _write(self, sql: str, params: Sequence[Any] = ()) -> None:
        """One write, committed at once unless a transaction is open (as sqlite_utils'
        ``execute`` does: the driver would otherwise leave its implicit transaction open)."""
        conn = self.conn
        was_open = conn.in_transaction
        try:
            conn.execute(sql, params)
        except Exception:
            if not was_open and conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if not was_open and conn.in_transaction:
            conn.execute("COMMIT")

    def _text(self, moment: datetime) -> str:
        """``to_text(moment)``, remembering the last one (a pass writes one now many times)."""
        stamped = self._stamped
        if stamped is not None and stamped[0] == moment:
            return stamped[1]
        text = text_of(moment)
        self._stamped = (moment, text)
        return text
