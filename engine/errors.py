"""The error hierarchy: shallow, typed, each error carries the data that explains it.

Front ends map the three families to exit codes: BadInput -> 2, RuleViolation -> 3,
anything else -> 1. ``str(error)`` is one sentence a user can act on.
"""

from __future__ import annotations


class BtarError(Exception):
    """Base of every error btar raises on purpose."""

    exit_code = 1


class BadInput(BtarError):
    """The user gave something malformed: a flag, a config file, a time."""

    exit_code = 2


class ConfigError(BadInput):
    """The configuration file is missing or invalid; names the file and the key."""

    def __init__(self, path: str, key: str, problem: str) -> None:
        self.path = path
        self.key = key
        self.problem = problem
        where = f"{path}: {key}: " if key else f"{path}: "
        super().__init__(f"{where}{problem}")


class UnknownName(BadInput):
    """A service or region name that does not exist."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = known
        hint = f"; known: {', '.join(known)}" if known else ""
        super().__init__(f"unknown {kind} {name!r}{hint}")


class RuleViolation(BtarError):
    """A request that a rule of the feature refuses. ``rule`` is its number in the README's
    "The rules it enforces"."""

    exit_code = 3
    rule = 0

    def __init__(self, message: str) -> None:
        super().__init__(f"refused by rule {self.rule}: {message}")


class UnsupportedServiceType(RuleViolation):
    rule = 1

    def __init__(self, service: str, service_type: str) -> None:
        self.service = service
        self.service_type = service_type
        super().__init__(
            f"{service} is a {service_type} service; only postgresql and mysql services "
            "can have an additional backup region"
        )


class RegionNotQualified(RuleViolation):
    """The requested additional region is of another provider or is the primary itself."""

    rule = 2

    def __init__(self, service: str, region: str, reason: str, qualifying: list[str]) -> None:
        self.service = service
        self.region = region
        self.reason = reason
        self.qualifying = qualifying
        hint = f"; choose one of: {', '.join(qualifying)}" if qualifying else ""
        super().__init__(f"{region} cannot back up {service}: {reason}{hint}")


class OutsideWindow(RuleViolation):
    rule = 5

    def __init__(self, region: str, target: str, window: str, hint: str = "") -> None:
        self.region = region
        self.target = target
        self.window = window
        self.hint = hint
        super().__init__(
            f"{target} is outside the restorable window of {region} ({window}); "
            + (hint or "pick a time inside it or --latest")
        )


class NoRestorableWindow(RuleViolation):
    rule = 5

    def __init__(self, region: str) -> None:
        self.region = region
        super().__init__(f"{region} holds no complete base backup yet, so nothing can be restored")


class WrongRestoreRegion(RuleViolation):
    rule = 6

    def __init__(self, stored_in: str, requested: str) -> None:
        self.stored_in = stored_in
        self.requested = requested
        super().__init__(
            f"a backup stored in {stored_in} is restored only in {stored_in}, not in {requested}"
        )


class DeletionNotConfirmed(RuleViolation):
    rule = 7

    def __init__(self, service: str) -> None:
        self.service = service
        super().__init__(
            f"deleting the secondary copies of {service} needs --delete --yes; "
            "use --keep to retain them"
        )


class OnlyRestorableCopy(RuleViolation):
    rule = 7

    def __init__(self, service: str, region: str, uncovered: str) -> None:
        self.service = service
        self.region = region
        self.uncovered = uncovered
        super().__init__(
            f"the copies of {service} in {region} are the only restorable copy of {uncovered}; "
            "use --keep, or wait until the primary covers that time again"
        )


class ReplicationNotEnabled(RuleViolation):
    rule = 7

    def __init__(self, service: str) -> None:
        self.service = service
        super().__init__(f"{service} has no additional backup region; enable one first")


class AlreadyEnabled(RuleViolation):
    rule = 8

    def __init__(self, service: str, region: str) -> None:
        self.service = service
        self.region = region
        super().__init__(
            f"{service} already replicates to {region}; use change-region to move it"
        )


class StorageError(BtarError):
    """A storage operation failed. ``retryable`` says whether trying again may help;
    ``fault`` is the class of fault it shows in status, check and metrics."""

    retryable = True
    fault = "error"

    def __init__(self, location: str, key: str, message: str) -> None:
        self.location = location
        self.key = key
        #: what went wrong, without the location and the key (what a fault shows)
        self.message = message
        super().__init__(f"{location}: {key}: {message}" if key else f"{location}: {message}")


#: every fault class a StorageError can show, and those that mean the location cannot be used
FAULT_CLASSES = ("unreachable", "missing", "denied", "unusable", "throttled", "error")
UNREACHABLE_FAULTS = frozenset(FAULT_CLASSES[:4])


class RegionsUnreachable(BtarError):
    """A once-run could not reach some primaries or destinations (exit code 4, documented in
    the README); what it could reach was replicated."""

    exit_code = 4

    def __init__(self, regions: dict[str, list[str]]) -> None:
        #: region -> the services it failed for
        self.regions = regions
        where = "; ".join(f"{region} (for {', '.join(sorted(services))})"
                          for region, services in sorted(regions.items()))
        super().__init__(f"could not reach {where}; the rest was replicated; `btar status` and "
                         "`btar check` show since when, and a later sync resumes by itself")


class ObjectNotFound(StorageError):
    retryable = False


class InvalidKey(StorageError, BadInput):
    """A key that would escape the location's root or is otherwise malformed."""

    retryable = False
    exit_code = 2


class Unreachable(StorageError):
    """The location cannot be reached at all (region outage, DNS, refused connection)."""

    fault = "unreachable"


class LocationMissing(Unreachable):
    """The location itself is not there: no bucket, no container, no folder (or a file
    where the folder should be). Never read as an empty location."""

    fault = "missing"


class AccessDenied(Unreachable):
    """The location refuses these credentials (wrong keys, no permission)."""

    fault = "denied"


class LocationUnusable(Unreachable):
    """The location answers but cannot take writes: disk full, quota, read-only."""

    fault = "unusable"


class Throttled(StorageError):
    """The provider asked to slow down."""

    fault = "throttled"


class ChecksumMismatch(StorageError):
    """Bytes written or copied do not hash to what was expected."""

    def __init__(self, location: str, key: str, expected: str, actual: str, *,
                 algorithm: str = "sha256", against: str = "expected") -> None:
        self.expected = expected
        self.actual = actual
        self.algorithm = algorithm
        super().__init__(location, key, f"{algorithm} {actual} does not match {against} "
                                        f"{expected}")


class CorruptBackup(BtarError):
    """A backup's completion marker or a log segment name cannot be parsed."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        super().__init__(f"{key}: {problem}")


class CatalogTooNew(BadInput):
    """The catalog was written by a newer btar (a schema version this one does not know)."""

    def __init__(self, path: str, version: int, supported: int) -> None:
        self.path = path
        self.version = version
        self.supported = supported
        super().__init__(
            f"{path}: the catalog has schema version {version}, newer than this btar "
            f"({supported}); upgrade btar")


class CatalogDamaged(BadInput):
    """The catalog file cannot be used: not SQLite, truncated or corrupt, or unreadable."""

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(
            f"{path}: the catalog file is damaged or unreadable ({detail}); restore it from a "
            "backup, or move it away and btar starts a new one (everything is copied and "
            "verified again)")


class SyncAlreadyRunning(BadInput):
    """Another process holds this catalog's sync lock."""

    def __init__(self, path: str, pid: int | None) -> None:
        self.path = path
        self.pid = pid
        who = f"pid {pid}" if pid else "pid unknown"
        super().__init__(f"another btar sync is running on this catalog ({who}); "
                         f"lock file {path}")
