"""pgBackRest and Barman Cloud backups under incremental listing, against a model: random
runs of backups begun, completed and expired, the clock moved and `btar sync --once` passes
(most listed incrementally, one now and then in full). After each pass:

- every backup completed before it and still there is an item (found at once: never left to
  the next full listing, whatever was written in between or how the cursors stand);
- every item is the one a listing of the whole repository describes, object by object;
- after a full listing, the items are exactly those of a fresh full listing.

Over memory storages with the live driver; no WAL (its listing is the native layout's)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.api import Btar
from engine.catalog import ItemRow, ObjectRow
from engine.formats.pgbackrest import wal_file_name
from engine.model import ItemKind, ItemStatus
from engine.storage.memory import MemoryStorage
from tests.pgbackrest_repo import T0, Backup, write_backup, write_info
from tests.unit.test_barman_cloud import backup_info as barman_info
from tests.worlds import ManualClock, orders_app

PRIMARY, SECONDARY = "aws-eu-west-1", "aws-eu-central-1"
FULL_LISTING_INTERVAL = 600.0


@dataclass(frozen=True)
class Repository:
    """A backup tool writing into the primary: backups by number, in the order they run."""

    layout: str
    begin: Callable[[MemoryStorage, int], None]
    complete: Callable[[MemoryStorage, int], None]
    folder: Callable[[int], str]
    item_id: Callable[[int], str]


def _pgbackrest(n: int) -> Backup:
    label = f"20261126-{n:02d}0000F"
    start = T0 + timedelta(hours=n)
    return Backup(label, {"pg_data/PG_VERSION": b"15", f"pg_data/base/{n}": b"x" * n},
                  bundled={1: ("pg_data/base/1/1259",)}, start=start, stop=start,
                  archive_start=wal_file_name(1, n + 2), archive_stop=wal_file_name(1, n + 2),
                  lsn_start=f"0/{n + 2:X}000028")


def _pgbackrest_complete(store: MemoryStorage, n: int) -> None:
    write_backup(store, "orders", _pgbackrest(n))
    write_info(store, "orders", *(_pgbackrest(k).label for k in range(n + 1)))


PGBACKREST = Repository(
    "pgbackrest:main",
    lambda store, n: write_backup(store, "orders", _pgbackrest(n), complete=False),
    _pgbackrest_complete,
    lambda n: f"orders/{_pgbackrest(n).folder}/",
    lambda n: f"base/{_pgbackrest(n).label}")


def _barman_id(n: int) -> str:
    return f"20261206T{n:02d}0000"


def _barman_begin(store: MemoryStorage, n: int) -> None:
    # the tablespace's tar sorts before backup.info, PGDATA's after
    store.write(f"orders/main/base/{_barman_id(n)}/16385.tar", b"tablespace")
    store.write(f"orders/main/base/{_barman_id(n)}/data.tar", b"data" * n)


def _barman_complete(store: MemoryStorage, n: int) -> None:
    store.write(f"orders/main/base/{_barman_id(n)}/backup.info",
                barman_info(tablespaces="[('tbs', 16385, '/tbs')]"))


BARMAN = Repository("barman-cloud:main", _barman_begin, _barman_complete,
                    lambda n: f"orders/main/base/{_barman_id(n)}/",
                    lambda n: f"base/{_barman_id(n)}")

#: begin the next backup or complete the one under way; move the clock (past the settling
#: time, past the full listing interval); a pass; delete the oldest completed backup's folder
steps = st.sampled_from([("backup", 0), ("backup", 0), ("clock", 1), ("clock", 61),
                         ("clock", 61), ("clock", 300), ("clock", 700), ("sync", 0),
                         ("sync", 0), ("expire", 0)])


def world(clock: ManualClock, primary: MemoryStorage, layout: str) -> Btar:
    stores = {PRIMARY: primary, SECONDARY: MemoryStorage(SECONDARY, clock.now)}
    return orders_app(layout, stores, clock, full_listing_interval=FULL_LISTING_INTERVAL)


def bases(app: Btar) -> dict[str, tuple[ItemRow, list[ObjectRow]]]:
    """Each base item of the primary region: its row and its objects."""
    return {row.item_id: (row, app.catalog.item_refs("orders", PRIMARY, row.item_id))
            for row in app.catalog.items("orders", PRIMARY, kind=ItemKind.BASE)}


def run_model(repository: Repository, run: list[tuple[str, int]]) -> None:
    clock = ManualClock(T0 + timedelta(days=1))
    primary = MemoryStorage(PRIMARY, clock.now)
    app = world(clock, primary, repository.layout)
    begun, completed, expired = -1, list[int](), set[int]()
    for step, amount in [*run, ("sync", 0)]:
        if step == "backup" and (begun < 0 or begun in completed):
            begun += 1
            repository.begin(primary, begun)
        elif step == "backup":
            repository.complete(primary, begun)
            completed.append(begun)
        elif step == "clock":
            clock.advance(amount)
        elif step == "expire" and set(completed) - expired:
            oldest = min(set(completed) - expired)
            for info in list(primary.iter_objects(repository.folder(oldest))):
                primary.delete(info.key)
            expired.add(oldest)
        elif step == "sync":
            listed_in_full = app.catalog.last_full_listing("orders")
            app.sync(["orders"])
            full = app.catalog.last_full_listing("orders") != listed_in_full
            fresh = world(clock, primary, repository.layout)
            fresh.sync(["orders"], full_listing=True)
            found, described = bases(app), bases(fresh)
            live = {repository.item_id(n) for n in completed if n not in expired}
            assert live <= found.keys(), (sorted(live - found.keys()), run)
            for item_id in found.keys() & described.keys():
                assert found[item_id] == described[item_id], (item_id, run)
            if full:
                available = {i for i, (row, _) in found.items()
                             if row.status == ItemStatus.AVAILABLE}
                assert available == described.keys(), run


@settings(max_examples=150, deadline=None)
@given(st.lists(steps, min_size=4, max_size=30))
def test_pgbackrest_backups_are_found_at_once_and_as_a_full_listing_describes(
        run: list[tuple[str, int]]) -> None:
    run_model(PGBACKREST, run)


@settings(max_examples=150, deadline=None)
@given(st.lists(steps, min_size=4, max_size=30))
def test_barman_backups_are_found_at_once_and_as_a_full_listing_describes(
        run: list[tuple[str, int]]) -> None:
    run_model(BARMAN, run)
