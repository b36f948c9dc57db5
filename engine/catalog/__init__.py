"""The catalog: what is where, in one SQLite file (WAL mode) through sqlite-utils.

The schema is versioned; ``MIGRATIONS[i]`` brings a catalog from version i to i + 1 (schema).
Times are stored as fixed-width UTC text (``YYYY-MM-DDTHH:MM:SS.ffffffZ``) so that text order
is time order. Credentials are never stored here.

One ``Catalog`` object, built from parts by responsibility: journal (lag samples, audit,
events), locations (services, locations, reachability, listing cursors, copy marks), runs
(the chain summary of log segments) and items (items and their objects); store opens the file.
"""

from engine.catalog.fleet import ChainMark, RegionCounts
from engine.catalog.mirror import MirrorRow
from engine.catalog.rows import (
    CopyRecord,
    EventRow,
    ItemRow,
    LagRow,
    LocationRow,
    LogRun,
    ObjectRow,
    Reachability,
)
from engine.catalog.schema import (
    MIGRATIONS,
    RESTORABLE,
    SCHEMA_VERSION,
    _rebuild_runs,
    from_text,
    to_text,
)
from engine.catalog.store import Catalog, CatalogLock
from engine.errors import CatalogTooNew

__all__ = ["MIGRATIONS", "RESTORABLE", "SCHEMA_VERSION", "Catalog", "CatalogLock",
           "CatalogTooNew", "ChainMark", "CopyRecord", "EventRow", "ItemRow", "LagRow",
           "LocationRow", "LogRun", "MirrorRow", "ObjectRow", "Reachability", "RegionCounts",
           "_rebuild_runs", "from_text", "to_text"]
