"""The rules of the feature (README, "The rules it enforces") as pure functions: one table
per function."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.errors import (
    AlreadyEnabled,
    BtarError,
    DeletionNotConfirmed,
    NoRestorableWindow,
    OnlyRestorableCopy,
    OutsideWindow,
    RegionNotQualified,
    ReplicationNotEnabled,
    RuleViolation,
    UnknownName,
    UnsupportedServiceType,
    WrongRestoreRegion,
)
from engine.model import RegionRole, RestoreWindow, Service, ServiceType, TimeRange, iso
from engine.regions import distance_km, get_region, regions_of
from engine.rules import (
    check_additional_region,
    check_change,
    check_deletion_safe,
    check_disable,
    check_enable,
    check_not_primary,
    check_replicable,
    check_restore_region,
    check_target_in_window,
    offered_regions,
    uncovered,
)

PRIMARY = "aws-eu-west-1"
CENTRAL = "aws-eu-central-1"
NORTH = "aws-eu-north-1"
FAR = "aws-us-east-1"
GOOGLE = "google-europe-west1"
AZURE = "azure-westeurope"

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def t(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def window(*spans: tuple[float, float], region: str = CENTRAL,
           role: RegionRole = RegionRole.SECONDARY) -> RestoreWindow:
    return RestoreWindow(region, role, tuple(TimeRange(t(a), t(b)) for a, b in spans))


def service(kind: ServiceType = ServiceType.POSTGRESQL, region: str = PRIMARY) -> Service:
    return Service("orders", kind, region)


def assert_refusal(error: BtarError, cls: type[BtarError], *fragments: str) -> None:
    """The error is of ``cls``, carries its exit code, reads as one line and names
    every fragment."""
    assert type(error) is cls
    text = str(error)
    assert "\n" not in text
    assert text
    assert text.strip() == text
    if issubclass(cls, RuleViolation):
        assert error.exit_code == 3
        assert text.startswith(f"refused by rule {cls.rule}: ")
    elif issubclass(cls, UnknownName):
        assert error.exit_code == 2
    for fragment in fragments:
        assert fragment in text


# --- rule 1: check_replicable -----------------------------------------------------------------

@pytest.mark.parametrize(
    ("kind", "allowed"),
    [(k, k in {ServiceType.POSTGRESQL, ServiceType.MYSQL}) for k in ServiceType],
    ids=[str(k) for k in ServiceType],
)
def test_check_replicable(kind: ServiceType, allowed: bool) -> None:
    svc = service(kind)
    if allowed:
        check_replicable(svc)  # allowed: no error
        return
    with pytest.raises(UnsupportedServiceType) as caught:
        check_replicable(svc)
    assert_refusal(caught.value, UnsupportedServiceType, "orders", str(kind),
                   "postgresql", "mysql")
    assert caught.value.rule == 1
    assert caught.value.service_type == str(kind)


# --- rule 2: check_additional_region ----------------------------------------------------------

@pytest.mark.parametrize(
    ("kind", "region_id", "error", "fragments"),
    [
        (ServiceType.POSTGRESQL, CENTRAL, None, ()),
        (ServiceType.MYSQL, NORTH, None, ()),
        (ServiceType.POSTGRESQL, FAR, None, ()),
        (ServiceType.POSTGRESQL, GOOGLE, RegionNotQualified, (GOOGLE, "google", "aws")),
        (ServiceType.MYSQL, AZURE, RegionNotQualified, (AZURE, "azure", "aws")),
        (ServiceType.POSTGRESQL, PRIMARY, RegionNotQualified, (PRIMARY, "primary")),
        (ServiceType.POSTGRESQL, "aws-eu-west-l", UnknownName, ("aws-eu-west-l", PRIMARY)),
        (ServiceType.POSTGRESQL, "mars-1", UnknownName, ("mars-1",)),
        (ServiceType.REDIS, CENTRAL, UnsupportedServiceType, ("redis",)),
        (ServiceType.KAFKA, GOOGLE, UnsupportedServiceType, ("kafka",)),
    ],
    ids=["pg-same-provider", "mysql-same-provider", "pg-far-same-provider",
         "other-provider-google", "other-provider-azure", "primary-itself",
         "unknown-region-typo", "unknown-region", "redis-refused-first", "kafka-refused-first"],
)
def test_check_additional_region(kind: ServiceType, region_id: str,
                                 error: type[BtarError] | None,
                                 fragments: tuple[str, ...]) -> None:
    svc = service(kind)
    if error is None:
        region = check_additional_region(svc, region_id)
        assert region.id == region_id
        assert region.provider == get_region(PRIMARY).provider
        return
    with pytest.raises(error) as caught:
        check_additional_region(svc, region_id)
    assert_refusal(caught.value, error, *fragments)
    if isinstance(caught.value, RegionNotQualified):
        qualifying = caught.value.qualifying
        assert qualifying, "a refusal of rule 2 suggests regions that qualify"
        assert PRIMARY not in qualifying
        assert all(r.startswith("aws-") for r in qualifying)


# --- rules 1, 2, 8: check_enable ---------------------------------------------------------------

@pytest.mark.parametrize(
    ("kind", "region_id", "current", "error", "fragments"),
    [
        (ServiceType.POSTGRESQL, CENTRAL, None, None, ()),
        (ServiceType.MYSQL, FAR, None, None, ()),
        (ServiceType.POSTGRESQL, CENTRAL, NORTH, AlreadyEnabled, (NORTH, "orders")),
        (ServiceType.POSTGRESQL, CENTRAL, CENTRAL, AlreadyEnabled, (CENTRAL,)),
        (ServiceType.POSTGRESQL, GOOGLE, None, RegionNotQualified, (GOOGLE,)),
        (ServiceType.POSTGRESQL, PRIMARY, None, RegionNotQualified, ("primary",)),
        (ServiceType.POSTGRESQL, "aws-nowhere-9", None, UnknownName, ("aws-nowhere-9",)),
        (ServiceType.VALKEY, CENTRAL, None, UnsupportedServiceType, ("valkey",)),
    ],
    ids=["pg-first-enable", "mysql-first-enable", "already-enabled-elsewhere",
         "already-enabled-same", "other-provider", "primary-itself", "unknown-region",
         "valkey"],
)
def test_check_enable(kind: ServiceType, region_id: str, current: str | None,
                      error: type[BtarError] | None, fragments: tuple[str, ...]) -> None:
    svc = service(kind)
    if error is None:
        assert check_enable(svc, region_id, current).id == region_id
        return
    with pytest.raises(error) as caught:
        check_enable(svc, region_id, current)
    assert_refusal(caught.value, error, *fragments)


# --- rule 8: check_change ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("kind", "region_id", "current", "error", "fragments"),
    [
        (ServiceType.POSTGRESQL, CENTRAL, NORTH, None, ()),
        (ServiceType.MYSQL, FAR, CENTRAL, None, ()),
        (ServiceType.POSTGRESQL, CENTRAL, None, ReplicationNotEnabled, ("orders", "enable")),
        (ServiceType.POSTGRESQL, CENTRAL, CENTRAL, AlreadyEnabled, (CENTRAL,)),
        (ServiceType.POSTGRESQL, GOOGLE, CENTRAL, RegionNotQualified, (GOOGLE,)),
        (ServiceType.POSTGRESQL, PRIMARY, CENTRAL, RegionNotQualified, ("primary",)),
        (ServiceType.POSTGRESQL, "aws-eu-centrall-1", CENTRAL, UnknownName,
         ("aws-eu-centrall-1", CENTRAL)),
        (ServiceType.OPENSEARCH, CENTRAL, NORTH, UnsupportedServiceType, ("opensearch",)),
    ],
    ids=["pg-move", "mysql-move", "nothing-enabled", "to-current-region", "other-provider",
         "to-primary", "unknown-region", "opensearch"],
)
def test_check_change(kind: ServiceType, region_id: str, current: str | None,
                      error: type[BtarError] | None, fragments: tuple[str, ...]) -> None:
    svc = service(kind)
    if error is None:
        assert check_change(svc, region_id, current).id == region_id
        return
    with pytest.raises(error) as caught:
        check_change(svc, region_id, current)
    assert_refusal(caught.value, error, *fragments)


# --- rule 2: offered_regions -------------------------------------------------------------------

@pytest.mark.parametrize(
    "primary",
    [PRIMARY, FAR, "aws-ap-southeast-2", GOOGLE, "google-us-central1", AZURE, "azure-eastus"],
)
def test_offered_regions(primary: str) -> None:
    home = get_region(primary)
    offered = offered_regions(service(region=primary))
    ids = [r.id for r in offered]
    assert primary not in ids
    assert all(r.provider == home.provider for r in offered)
    assert sorted(ids) == sorted(r.id for r in regions_of(home.provider) if r.id != primary)
    distances = [distance_km(home, r) for r in offered]
    assert distances == sorted(distances, reverse=True), "farthest first"
    for region in offered:  # each offered region passes the rule it was offered under
        assert check_additional_region(service(region=primary), region.id) == region


def test_offered_regions_of_unknown_primary_is_unknown_name() -> None:
    with pytest.raises(UnknownName) as caught:
        offered_regions(service(region="aws-atlantis-1"))
    assert_refusal(caught.value, UnknownName, "aws-atlantis-1")


# --- rule 5: check_target_in_window ------------------------------------------------------------

ONE_SECOND = 1 / 60
TWO_PIECES = window((0, 60), (120, 180))


@pytest.mark.parametrize(
    ("win", "target", "expected"),
    [
        (window((0, 60)), None, t(60)),
        (TWO_PIECES, None, t(180)),
        (window((0, 60)), t(0), t(0)),
        (window((0, 60)), t(60), t(60)),
        (window((0, 60)), t(30), t(30)),
        (window((30, 30)), t(30), t(30)),
        (window((30, 30)), None, t(30)),
        (TWO_PIECES, t(60), t(60)),
        (TWO_PIECES, t(120), t(120)),
        (TWO_PIECES, t(150), t(150)),
    ],
    ids=["latest-is-end", "latest-is-end-of-last-interval", "exactly-at-start",
         "exactly-at-end", "inside", "single-instant", "single-instant-latest",
         "end-of-first-interval", "start-of-second-interval", "inside-second-interval"],
)
def test_check_target_in_window_allowed(win: RestoreWindow, target: datetime | None,
                                        expected: datetime) -> None:
    assert check_target_in_window(win, target) == expected


@pytest.mark.parametrize(
    ("win", "target"),
    [
        (window((0, 60)), t(60 + ONE_SECOND)),
        (window((0, 60)), t(-ONE_SECOND)),
        (window((0, 60)), t(60) + timedelta(microseconds=1)),
        (TWO_PIECES, t(90)),
        (TWO_PIECES, t(60 + ONE_SECOND)),
        (TWO_PIECES, t(120 - ONE_SECOND)),
        (TWO_PIECES, t(10_000)),
        (window((30, 30)), t(30 + ONE_SECOND)),
    ],
    ids=["one-second-past-end", "one-second-before-start", "one-microsecond-past-end",
         "inside-gap", "just-after-first-interval", "just-before-second-interval",
         "far-future", "next-to-single-instant"],
)
def test_check_target_in_window_refused(win: RestoreWindow, target: datetime) -> None:
    with pytest.raises(OutsideWindow) as caught:
        check_target_in_window(win, target)
    error = caught.value
    assert_refusal(error, OutsideWindow, win.region, iso(target), win.describe())
    for piece in win.intervals:  # the message names the whole window, every interval
        assert iso(piece.start) in str(error)
        assert iso(piece.end) in str(error)
    assert error.window == win.describe()


@pytest.mark.parametrize("target", [None, T0], ids=["latest", "point-in-time"])
def test_check_target_in_empty_window(target: datetime | None) -> None:
    with pytest.raises(NoRestorableWindow) as caught:
        check_target_in_window(RestoreWindow(CENTRAL, RegionRole.SECONDARY), target)
    assert_refusal(caught.value, NoRestorableWindow, CENTRAL)


# --- rule 6: check_restore_region --------------------------------------------------------------

@pytest.mark.parametrize(
    ("stored_in", "requested", "allowed"),
    [
        (CENTRAL, CENTRAL, True),
        (PRIMARY, PRIMARY, True),
        (CENTRAL, PRIMARY, False),
        (PRIMARY, CENTRAL, False),
        (CENTRAL, NORTH, False),
    ],
    ids=["secondary-in-secondary", "primary-in-primary", "secondary-in-primary",
         "primary-in-secondary", "secondary-in-third"],
)
def test_check_restore_region(stored_in: str, requested: str, allowed: bool) -> None:
    if allowed:
        check_restore_region(stored_in, requested)  # allowed: no error
        return
    with pytest.raises(WrongRestoreRegion) as caught:
        check_restore_region(stored_in, requested)
    assert_refusal(caught.value, WrongRestoreRegion, stored_in, requested)


# --- rule 7: check_disable ---------------------------------------------------------------------

@pytest.mark.parametrize(
    ("keep", "delete", "confirmed", "allowed"),
    [
        (True, False, False, True),
        (True, False, True, True),
        (False, True, True, True),
        (False, True, False, False),
        (False, False, False, False),
        (False, False, True, False),
        (True, True, False, False),
        (True, True, True, False),
    ],
    ids=["keep", "keep-confirmed", "delete-confirmed", "delete-unconfirmed", "neither",
         "neither-confirmed", "both", "both-confirmed"],
)
def test_check_disable(keep: bool, delete: bool, confirmed: bool, allowed: bool) -> None:
    if allowed:
        check_disable("orders", keep=keep, delete=delete, confirmed=confirmed)  # allowed: no error
        return
    with pytest.raises(DeletionNotConfirmed) as caught:
        check_disable("orders", keep=keep, delete=delete, confirmed=confirmed)
    assert_refusal(caught.value, DeletionNotConfirmed, "orders", "--keep")


# --- rule 7: uncovered and check_deletion_safe -------------------------------------------------

Spans = tuple[tuple[float, float], ...]

COVER_CASES: list[tuple[Spans, tuple[Spans, ...], Spans]] = [
    (((0, 60),), (((0, 60),),), ()),
    (((10, 50),), (((0, 60),),), ()),
    (((0, 60),), (((0, 30),), ((30, 60),)), ()),
    (((0, 60),), (((0, 40), (40, 60)),), ()),
    (((0, 60),), (((-10, 35),), ((20, 90),)), ()),
    (((0, 60), (120, 180)), (((0, 200),),), ()),
    (((30, 30),), (((0, 60),),), ()),
    (((0, 60),), (((0, 30),),), ((30, 60),)),
    (((0, 60),), (((30, 90),),), ((0, 30),)),
    (((0, 60),), (((20, 40),),), ((0, 20), (40, 60))),
    (((0, 60),), (((0, 20),), ((40, 60),)), ((20, 40),)),
    (((0, 60), (120, 180)), (((0, 60),),), ((120, 180),)),
    (((0, 60),), (((100, 200),),), ((0, 60),)),
    (((0, 60),), (), ((0, 60),)),
    (((0, 60),), ((),), ((0, 60),)),
    ((), ((),), ()),
]
COVER_IDS = [
    "same-window", "inside-a-larger-window", "union-of-two-windows",
    "union-of-two-intervals-of-one-window", "union-of-overlapping-windows",
    "both-intervals-covered", "single-instant-covered", "tail-uncovered", "head-uncovered",
    "both-ends-uncovered", "middle-uncovered", "second-interval-uncovered",
    "disjoint-cover", "no-other-windows", "other-window-empty", "nothing-to-delete",
]


@pytest.mark.parametrize(("mine", "others", "alone"), COVER_CASES, ids=COVER_IDS)
def test_uncovered(mine: Spans, others: tuple[Spans, ...], alone: Spans) -> None:
    target = window(*mine)
    covers = [window(*o, region=PRIMARY, role=RegionRole.PRIMARY) for o in others]
    assert uncovered(target, covers) == [TimeRange(t(a), t(b)) for a, b in alone]


@pytest.mark.parametrize(("mine", "others", "alone"), COVER_CASES, ids=COVER_IDS)
def test_check_deletion_safe(mine: Spans, others: tuple[Spans, ...], alone: Spans) -> None:
    target = window(*mine)
    covers = [window(*o, region=PRIMARY, role=RegionRole.PRIMARY) for o in others]
    if not alone:
        check_deletion_safe("orders", target, covers)  # allowed: no error
        return
    with pytest.raises(OnlyRestorableCopy) as caught:
        check_deletion_safe("orders", target, iter(covers))
    names = [f"{iso(t(a))} .. {iso(t(b))}" for a, b in alone]
    assert_refusal(caught.value, OnlyRestorableCopy, "orders", CENTRAL, *names)
    assert caught.value.uncovered == ", ".join(names)


# --- check_not_primary -------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("region_id", "allowed"),
    [(PRIMARY, False), (CENTRAL, True), (NORTH, True), (GOOGLE, True)],
    ids=["primary", "secondary", "previous", "other-provider"],
)
def test_check_not_primary(region_id: str, allowed: bool) -> None:
    if allowed:
        check_not_primary(service(), region_id)  # allowed: no error
        return
    with pytest.raises(RegionNotQualified) as caught:
        check_not_primary(service(), region_id)
    assert_refusal(caught.value, RegionNotQualified, PRIMARY, "primary", "never deletes")
