"""The catalog's connection, schema migration and transactions, under every part."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import sqlite_utils
from sqlite_utils.db import Table

from engine.catalog.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
)
from engine.errors import CatalogTooNew


class CatalogBase:
    """The database and its schema; the parts add their reads and writes."""

    def __init__(self, db: sqlite_utils.Database, *, name: str = "the catalog",
                 path: Path | None = None) -> None:
        self.db = db
        self.name = name
        #: the file (None in memory): its lock file sits beside it (CatalogLock)
        self.path = path
        self._migrate()

    def close(self) -> None:
        self.db.close()

    @property
    def schema_version(self) -> int:
        row = self.db.execute("PRAGMA user_version").fetchone()
        return int(row[0])

    def _migrate(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise CatalogTooNew(self.name, version, SCHEMA_VERSION)
        for number in range(version, SCHEMA_VERSION):
            with self.db.atomic():
                MIGRATIONS[number](self.db)
                self.db.execute(f"PRAGMA user_version = {number + 1}")

    def transaction(self) -> AbstractContextManager[object]:
        """Group writes into one commit (nested groups become savepoints)."""
        return self.db.atomic()

    def _t(self, name: str) -> Table:
        return self.db.table(name)
