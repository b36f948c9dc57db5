"""Scenario files: TOML with a versioned schema (``schema = 1``), validated with pydantic.

Every problem is reported with the file, the line and the dotted key, and says what is
expected. ``load_scenario`` returns a ``Scenario`` or raises ``ScenarioError`` listing them all.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from engine.config import RetentionConfig
from engine.errors import FAULT_CLASSES, UnknownName
from engine.model import ServiceType
from engine.regions import get_region
from simulator.state_expectation import expected_state
from simulator.tomllines import Path as KeyPath
from simulator.tomllines import dotted, key_lines, line_of
from simulator.units import parse_duration, parse_moment, parse_rate, parse_size

SCHEMA_VERSION = 1

Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Rate = Annotated[float, BeforeValidator(parse_rate)]
#: seconds after the start, or an absolute UTC time (resolved by Scenario.offset)
Moment = Annotated[float | datetime, BeforeValidator(parse_moment)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]


def _parse_target(value: object) -> object:
    return "latest" if value == "latest" else parse_moment(value)


Target = Annotated[Literal["latest"] | float | datetime, BeforeValidator(_parse_target)]


def _parse_bound(value: object) -> object:
    return "none" if value == "none" else parse_moment(value)


WindowBound = Annotated[Literal["none"] | float | datetime, BeforeValidator(_parse_bound)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegionSpec(_Model):
    """A cloud region with an in-memory backup location."""

    id: str
    #: time a list or read request takes
    request_latency: Duration = 0.02


class LinkSpec(_Model):
    """The network between two regions, used by copies in both directions."""

    between: tuple[str, str]
    #: bytes per second of one transfer stream; up to replicator.concurrency streams at once
    bandwidth: Rate
    latency: Duration = 0.0


class Schedule(_Model):
    """When and how big a service's primary backups are."""

    base_every: Duration = 86400.0
    base_duration: Duration = 600.0
    base_size: Size = 10**9
    base_objects: Annotated[int, Field(ge=1, le=64)] = 4
    log_every: Annotated[float, BeforeValidator(parse_duration), Field(gt=0)] = 300.0
    log_size: Size = 16 * 2**20
    #: when the first base backup starts (offset or time)
    first_base: Moment = 0.0
    #: how long after the start the first log segment ends (it covers that time; then one
    #: every log_every); default log_every. Services of a fleet write at different moments.
    first_log: Annotated[float | None, BeforeValidator(parse_duration), Field(gt=0)] = None


class ServiceSpec(_Model):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")]
    type: ServiceType
    region: str
    additional_region: str | None = None
    schedule: Schedule = Schedule()
    #: retention in the additional region, as in btar.toml ({ keep_count, keep_age })
    retention: RetentionConfig | None = None


class ReplicatorSpec(_Model):
    #: longest wait between two listings of a service
    poll_interval: Annotated[float, BeforeValidator(parse_duration), Field(gt=0)] = 60.0
    #: wait after a listing that found work (doubling when idle); default: poll_interval,
    #: a fixed pace
    busy_poll_interval: Annotated[float | None, BeforeValidator(parse_duration),
                                  Field(gt=0)] = None
    #: copy streams in flight at once, over every service and destination
    concurrency: Annotated[int, Field(ge=1, le=256)] = 8
    #: streams base backups may hold (default: all but a quarter of concurrency, at least
    #: one kept)
    base_streams: Annotated[int | None, Field(ge=1, le=256)] = None
    #: accepted from scenario files written when copies went in batches; no effect
    batch_size: Annotated[int | None, Field(ge=1, le=10000)] = None
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3


class RestoreSpec(_Model):
    #: how fast a fork reads its plan's bytes in the region it runs in
    bandwidth: Rate = 200e6


class _Event(_Model):
    at: Moment
    #: referenced by expectations (forks and management actions)
    name: str = ""


class RegionOutage(_Event):
    kind: Literal["region_outage"]
    region: str
    until: Moment | None = None


class RegionRecovery(_Event):
    kind: Literal["region_recovery"]
    region: str


class LinkDown(_Event):
    kind: Literal["link_down"]
    between: tuple[str, str]
    until: Moment | None = None


class LinkUp(_Event):
    kind: Literal["link_up"]
    between: tuple[str, str]


class LinkDegrade(_Event):
    kind: Literal["link_degrade"]
    between: tuple[str, str]
    until: Moment | None = None
    bandwidth: Rate | None = None
    latency: Duration | None = None
    #: share of copies over the link that fail with a retryable error
    failure_rate: Share = 0.0


class Throttle(_Event):
    kind: Literal["throttle"]
    region: str
    until: Moment | None = None
    #: share of requests to the region that are refused (slow down)
    rate: Share = 0.5


class Corrupt(_Event):
    kind: Literal["corrupt"]
    #: the destination region whose incoming copies land corrupted
    region: str
    until: Moment | None = None
    share: Share = 1.0
    #: glob on the object key (service prefix included)
    keys: str = "*"


class ReplicatorCrash(_Event):
    kind: Literal["replicator_crash"]
    restart_after: Duration | None = None


class ReplicatorRestart(_Event):
    kind: Literal["replicator_restart"]


class Enable(_Event):
    kind: Literal["enable"]
    service: str
    region: str


class ChangeRegion(_Event):
    kind: Literal["change_region"]
    service: str
    region: str


class Disable(_Event):
    kind: Literal["disable"]
    service: str
    mode: Literal["keep", "delete"]


class Fork(_Event):
    kind: Literal["fork"]
    name: Annotated[str, Field(min_length=1)]
    service: str
    #: where the fork runs and restores from; default: the additional region at that time
    region: str | None = None
    target: Target = "latest"
    #: recover along this timeline (`btar fork --timeline`); default: the latest
    timeline: Annotated[str, Field(min_length=1)] | None = None


class Promotion(_Event):
    """The primary restored to a point in time (``to``) and promoted: it continues on a new
    timeline from the log segment after the last one ending at or before ``to``; what it
    wrote after that point stays on the old timeline, abandoned."""

    kind: Literal["promotion"]
    service: str
    #: the point restored to; default: the promotion itself (nothing abandoned)
    to: Moment | None = None


Event = Annotated[
    RegionOutage | RegionRecovery | LinkDown | LinkUp | LinkDegrade | Throttle | Corrupt
    | ReplicatorCrash | ReplicatorRestart | Enable | ChangeRegion | Disable | Fork | Promotion,
    Field(discriminator="kind")]


class ExpectFork(_Model):
    kind: Literal["fork"]
    fork: str
    outcome: Literal["succeeds", "refused"]
    rule: int | None = None


class ExpectAction(_Model):
    kind: Literal["action"]
    action: str
    outcome: Literal["succeeds", "refused"]
    rule: int | None = None


class ExpectRpo(_Model):
    """RPO = the primary's latest point minus the latest point any other region can restore.
    Judged at ``at`` (default: the first outage of the primary region), or at every sample
    between ``from`` and ``to`` (no gap in protection)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    kind: Literal["rpo"]
    service: str
    at: Moment | None = None
    since: Moment | None = Field(default=None, alias="from")
    until: Moment | None = Field(default=None, alias="to")
    at_most: Duration

    @property
    def ranged(self) -> bool:
        return self.since is not None or self.until is not None


class ExpectRto(_Model):
    kind: Literal["rto"]
    fork: str
    at_most: Duration


class ExpectLag(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    kind: Literal["lag"]
    service: str
    region: str | None = None
    #: only items of this kind ("log" also counts timeline history); default: every item
    items: Literal["log", "base"] | None = None
    since: Moment | None = Field(default=None, alias="from")
    until: Moment | None = Field(default=None, alias="to")
    p50_at_most: Duration | None = None
    p99_at_most: Duration | None = None
    max_at_most: Duration | None = None


class ExpectWindow(_Model):
    kind: Literal["window"]
    service: str
    region: str
    at: Moment
    #: expected window start / end, or "none" for a region that cannot restore anything
    start: WindowBound | None = None
    end: WindowBound | None = None
    tolerance: Duration = 60.0
    #: judge the window along this timeline (a branch `btar window` shows) instead of the
    #: one recovery follows by default
    timeline: Annotated[str, Field(min_length=1)] | None = None
    #: the timeline recovery follows by default in that region at that moment
    followed: Annotated[str, Field(min_length=1)] | None = None


class ExpectNeverUnverified(_Model):
    kind: Literal["never_published_unverified"]


class ExpectNoDataLoss(_Model):
    kind: Literal["no_data_loss"]
    service: str
    healthy_for: Duration


class ExpectWindowsRestorable(_Model):
    kind: Literal["windows_restorable"]
    #: random points probed per region at each sample
    probes: Annotated[int, Field(ge=1, le=100)] = 1


class ExpectNoOnlyCopyDeleted(_Model):
    kind: Literal["no_only_copy_deleted"]


#: the checks of `btar check` (engine.alerts.evaluate)
CHECKS = ("lag", "window", "paused", "copies", "primary")


def _parse_state(value: object) -> object:
    if isinstance(value, str):
        expected_state(value)  # raises ValueError naming the states
    return value


def _parse_fault(value: object) -> object:
    if isinstance(value, str) and value != "none" and value not in FAULT_CLASSES:
        raise ValueError(f"unknown fault {value!r}; expected none or one of: "
                         f"{', '.join(FAULT_CLASSES)}")
    return value


def _parse_check(value: object) -> object:
    if isinstance(value, str) and value not in CHECKS:
        raise ValueError(f"unknown check {value!r}; expected one of: {', '.join(CHECKS)}")
    return value


StatePrefix = Annotated[str, BeforeValidator(_parse_state), Field(min_length=1)]
FaultKind = Annotated[str, BeforeValidator(_parse_fault)]
CheckName = Annotated[str, BeforeValidator(_parse_check)]


class ExpectState(_Model):
    """What `btar status` shows of a service (state, faults) and what `btar check` reports
    for it, at every snapshot from ``from`` + ``within`` to ``to`` (both included; the
    sampler snapshots at those two moments too). ``within`` is the time the state may take
    to settle after ``from``. Only the keys ``from`` and ``to`` are read (not the names
    ``since`` and ``until`` of the fields: a fault has a since of its own)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["state"]
    service: str
    since: Moment = Field(default=0.0, alias="from")
    until: Moment | None = Field(default=None, alias="to")
    within: Duration = 0.0
    #: the state ("in sync", "paused", ...), the beginning of states' words ("primary"), or
    #: a state that has a reason and the beginning of the reason ("paused: aws-eu-central-1");
    #: see simulator.state_expectation
    state: StatePrefix | None = None
    #: the primary's fault class ("unreachable", ...), or "none": it answers
    primary_fault: FaultKind | None = None
    #: the additional region's fault class, or "none"
    destination_fault: FaultKind | None = None
    #: `btar check` reports a problem of this check for the service ...
    check: CheckName | None = None
    #: ... at this level (default: warning or critical); "ok": it reports none
    level: Literal["ok", "warning", "critical"] | None = None


Expectation = Annotated[
    ExpectFork | ExpectAction | ExpectRpo | ExpectRto | ExpectLag | ExpectWindow
    | ExpectNeverUnverified | ExpectNoDataLoss | ExpectWindowsRestorable
    | ExpectNoOnlyCopyDeleted | ExpectState,
    Field(discriminator="kind")]


class Scenario(_Model):
    """A whole scenario file."""

    schema_: Annotated[int, Field(alias="schema")]
    name: str = ""
    description: str = ""
    seed: int = 0
    start: datetime
    duration: Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
    #: how often the lag and windows are sampled for the report and the checks
    sample_every: Duration | None = None
    regions: Annotated[list[RegionSpec], Field(min_length=2)]
    links: list[LinkSpec] = []
    services: Annotated[list[ServiceSpec], Field(min_length=1)]
    replicator: ReplicatorSpec = ReplicatorSpec()
    restore: RestoreSpec = RestoreSpec()
    timeline: list[Event] = []
    expect: list[Expectation] = []

    def offset(self, moment: float | datetime) -> float:
        """Seconds after the start."""
        if isinstance(moment, datetime):
            return (moment - self.start).total_seconds()
        return moment

    def time(self, moment: float | datetime) -> datetime:
        """The absolute time of a moment."""
        return self.start + timedelta(seconds=self.offset(moment))


@dataclass(frozen=True)
class Problem:
    line: int
    key: str
    message: str


class ScenarioError(Exception):
    """An invalid scenario; ``problems`` each name a line and a key."""

    def __init__(self, path: str, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [f"{self.path}:{p.line}: {p.key}: {p.message}" for p in self.problems]


@dataclass(frozen=True)
class LoadedScenario:
    """A valid scenario and what identifies its run."""

    path: str
    text: str
    sha256: str
    scenario: Scenario
    lines: dict[KeyPath, int]

    def line(self, *path: str | int) -> int:
        return line_of(self.lines, tuple(path))


def load_scenario(path: str | Path) -> LoadedScenario:
    """Read, parse and validate a scenario file."""
    shown = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ScenarioError(shown, [Problem(1, "(file)", f"cannot read: {error.strerror}")]) \
            from None
    return parse_scenario(data, shown)


def parse_scenario(data: bytes, shown: str) -> LoadedScenario:
    """Parse and validate scenario bytes; ``shown`` is the file name used in messages."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ScenarioError(shown, [Problem(1, "(file)", f"not UTF-8 text: {error}")]) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"\(at line (\d+), column \d+\)", str(error))
        line = int(match[1]) if match else 1
        raise ScenarioError(shown, [Problem(line, "(syntax)", f"not valid TOML: {error}")]) \
            from None
    lines = key_lines(text)
    version = document.get("schema")
    if version != SCHEMA_VERSION:
        expected = f"schema = {SCHEMA_VERSION}"
        message = (f"missing; the first line of a scenario is {expected}" if version is None
                   else f"unsupported schema version {version!r}; this btar reads {expected}")
        raise ScenarioError(shown, [Problem(line_of(lines, ("schema",)), "schema", message)])
    try:
        scenario = Scenario.model_validate(document)
    except ValidationError as error:
        raise ScenarioError(shown, _problems(error, document, lines)) from None
    problems = [Problem(line_of(lines, loc), dotted(loc), message)
                for loc, message in semantic_problems(scenario)]
    if problems:
        raise ScenarioError(shown, problems)
    return LoadedScenario(shown, text, hashlib.sha256(data).hexdigest(), scenario, lines)


_UNION_FIELDS = {"timeline": Event, "expect": Expectation}


def _problems(error: ValidationError, document: dict[str, Any],
              lines: dict[KeyPath, int]) -> list[Problem]:
    problems: list[Problem] = []
    for detail in error.errors():
        loc = _clean_loc(tuple(detail["loc"]), document)
        message = _message(detail, loc)
        problems.append(Problem(line_of(lines, loc), dotted(loc), message))
    return sorted(problems, key=lambda p: (p.line, p.key, p.message))


def _clean_loc(loc: tuple[Any, ...], document: dict[str, Any]) -> KeyPath:
    """Drop the discriminator tag pydantic puts into the location of a union member."""
    cleaned: list[str | int] = []
    node: Any = document
    for depth, part in enumerate(loc):
        # "timeline", 2, "fork", "target": the "fork" is the tag, not a key (even when a
        # member has a key named as its kind: "expect", 0, "state", "state").
        member = depth == 2 and loc[0] in _UNION_FIELDS and isinstance(loc[1], int)
        if member and isinstance(node, dict) and node.get("kind") == part:
            continue
        cleaned.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(cleaned)


def _kinds(union: Any) -> list[str]:
    members = union.__origin__.__args__ if hasattr(union, "__origin__") else ()
    return sorted(m.model_fields["kind"].annotation.__args__[0] for m in members)


def _message(detail: Any, loc: KeyPath) -> str:
    kind = detail["type"]
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key; check its spelling against the scenario schema"
    if kind in ("union_tag_invalid", "union_tag_not_found") and loc and loc[0] in _UNION_FIELDS:
        kinds = ", ".join(_kinds(_UNION_FIELDS[str(loc[0])]))
        got = detail.get("ctx", {}).get("tag")
        return (f"unknown kind {got!r}; expected one of: {kinds}" if got
                else f"needs a kind; one of: {kinds}")
    text = str(detail["msg"])
    text = text.removeprefix("Value error, ")
    got = detail.get("input")
    if kind not in ("value_error",) and not isinstance(got, dict | list):
        text += f"; got {got!r}"
    return text


def semantic_problems(scenario: Scenario) -> list[tuple[KeyPath, str]]:
    """References between sections and times inside the run."""
    problems: list[tuple[KeyPath, str]] = []
    regions = [r.id for r in scenario.regions]
    known = set(regions)
    for index, region in enumerate(scenario.regions):
        try:
            get_region(region.id)
        except UnknownName as error:
            problems.append((("regions", index, "id"), str(error)))
        if regions.count(region.id) > 1 and regions.index(region.id) != index:
            problems.append((("regions", index, "id"), f"region {region.id} is declared twice"))
    if scenario.start.tzinfo is None:
        problems.append((("start",), "the start needs a zone: write it in UTC with a Z suffix"))
        return problems
    links = set()
    for index, link in enumerate(scenario.links):
        for side in (0, 1):
            if link.between[side] not in known:
                problems.append((("links", index, "between", side),
                                 _unknown("region", link.between[side], regions)))
        links.add(frozenset(link.between))

    def check_region(loc: KeyPath, region: str | None) -> None:
        if region is not None and region not in known:
            problems.append((loc, _unknown("region", region, regions)))

    def check_link(loc: KeyPath, service: ServiceSpec, region: str) -> None:
        if region in known and service.region in known and region != service.region \
                and frozenset((service.region, region)) not in links:
            problems.append((loc, f"no link between {service.region} and {region}; add a "
                                  f"[[links]] with between = [\"{service.region}\", "
                                  f"\"{region}\"]"))

    def check_time(loc: KeyPath, moment: float | datetime | None, *,
                   before_end: bool = False) -> None:
        if moment is None:
            return
        if isinstance(moment, datetime) and moment.tzinfo is None:
            problems.append((loc, "the time needs a zone (Z)"))
            return
        offset = scenario.offset(moment)
        # Events must happen before the end; checks may look at the very end.
        late = offset >= scenario.duration if before_end else offset > scenario.duration
        if offset < 0 or late:
            problems.append((loc, f"outside the run: {offset:g}s after the start, the run "
                                  f"lasts {scenario.duration:g}s"))

    names = [s.name for s in scenario.services]
    services = {s.name: s for s in scenario.services}
    for index, service in enumerate(scenario.services):
        if names.count(service.name) > 1 and names.index(service.name) != index:
            problems.append((("services", index, "name"), f"service {service.name} is declared "
                                                          "twice"))
        check_region(("services", index, "region"), service.region)
        check_region(("services", index, "additional_region"), service.additional_region)
        if service.additional_region:
            check_link(("services", index, "additional_region"), service,
                       service.additional_region)
        check_time(("services", index, "schedule", "first_base"), service.schedule.first_base)
        if service.schedule.base_duration >= service.schedule.base_every:
            problems.append((("services", index, "schedule", "base_duration"),
                             "a base backup must take less time than base_every"))
    event_names: dict[str, str] = {}
    for index, event in enumerate(scenario.timeline):
        loc: KeyPath = ("timeline", index)
        check_time((*loc, "at"), event.at, before_end=True)
        if hasattr(event, "until"):
            check_time((*loc, "until"), event.until)
            if event.until is not None and scenario.offset(event.until) \
                    <= scenario.offset(event.at):
                problems.append(((*loc, "until"), "must be after at"))
        if event.name:
            if event.name in event_names:
                problems.append(((*loc, "name"), f"name {event.name!r} is used twice"))
            event_names[event.name] = event.kind
        for field in ("region",):
            if hasattr(event, field):
                check_region((*loc, field), getattr(event, field))
        if hasattr(event, "between"):
            for side in (0, 1):
                check_region((*loc, "between", side), event.between[side])
            if frozenset(event.between) not in links and set(event.between) <= known:
                problems.append(((*loc, "between"), "no such link in [[links]]"))
        if hasattr(event, "service"):
            owner = services.get(event.service)
            if owner is None:
                problems.append(((*loc, "service"), _unknown("service", event.service, names)))
            elif isinstance(event, Enable | ChangeRegion):
                check_link((*loc, "region"), owner, event.region)
        if isinstance(event, Fork) and event.target != "latest":
            check_time((*loc, "target"), event.target)
        if isinstance(event, Promotion) and event.to is not None:
            check_time((*loc, "to"), event.to)
            if scenario.offset(event.to) > scenario.offset(event.at):
                problems.append(((*loc, "to"), "a promotion restores to a point before it"))
    for index, expectation in enumerate(scenario.expect):
        loc = ("expect", index)
        if isinstance(expectation, ExpectFork | ExpectRto) \
                and event_names.get(expectation.fork) != "fork":
            problems.append(((*loc, "fork"), f"no fork event named {expectation.fork!r} in "
                                             "the timeline"))
        if isinstance(expectation, ExpectAction) \
                and event_names.get(expectation.action) not in ("enable", "change_region",
                                                                "disable", "promotion"):
            problems.append(((*loc, "action"), f"no enable, change_region, disable or "
                                               f"promotion event named {expectation.action!r} "
                                               "in the timeline"))
        if hasattr(expectation, "service") and expectation.service not in services:
            problems.append(((*loc, "service"), _unknown("service", expectation.service, names)))
        if hasattr(expectation, "region"):
            check_region((*loc, "region"), expectation.region)
        for field in ("at", "since", "until"):
            if hasattr(expectation, field):
                # Reported under the key the file uses ("from", "to").
                key = type(expectation).model_fields[field].alias or field
                check_time((*loc, key), getattr(expectation, field))
        if isinstance(expectation, ExpectWindow):
            for field in ("start", "end"):
                value = getattr(expectation, field)
                if isinstance(value, datetime) and value.tzinfo is None:
                    problems.append(((*loc, field), "the time needs a zone (Z)"))
        if isinstance(expectation, ExpectState):
            problems += _state_problems(scenario, loc, expectation)
        if isinstance(expectation, ExpectRpo) and expectation.at is None \
                and not expectation.ranged and expectation.service in services:
            primary = services[expectation.service].region
            if not any(isinstance(e, RegionOutage) and e.region == primary
                       for e in scenario.timeline):
                problems.append(((*loc, "at"), f"no region_outage of {primary} in the "
                                               "timeline to measure at; give at"))
    return problems


def _state_problems(scenario: Scenario, loc: KeyPath,
                    e: ExpectState) -> list[tuple[KeyPath, str]]:
    problems: list[tuple[KeyPath, str]] = []
    if e.state is None and e.primary_fault is None and e.destination_fault is None \
            and e.check is None:
        problems.append((loc, "nothing to expect: give state, primary_fault, "
                              "destination_fault or check"))
    if e.level is not None and e.check is None:
        problems.append(((*loc, "level"), "a level needs the check it grades: give check"))
    for field in ("since", "until"):
        value = getattr(e, field)
        if isinstance(value, datetime) and value.tzinfo is None:
            return problems  # reported by check_time
    since = scenario.offset(e.since)
    until = scenario.offset(e.until) if e.until is not None else scenario.duration
    if not 0 <= since <= scenario.duration or until > scenario.duration:
        return problems  # outside the run: reported by check_time
    if e.until is not None and until <= since:
        problems.append(((*loc, "to"), "must be after from"))
    elif since + e.within > until:
        problems.append(((*loc, "within"), f"longer than from..to ({until - since:g}s): "
                                           "nothing would be judged"))
    return problems


def _unknown(kind: str, name: str, known: list[str]) -> str:
    return f"unknown {kind} {name!r}; declared: {', '.join(known) or 'none'}"
