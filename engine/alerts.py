"""Health checks for monitoring: per-service thresholds on lag, window age, pause duration and
primary outages, judged the way monitoring plugins expect (0 ok, 1 warning, 2 critical)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from functools import lru_cache
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    field_validator,
    model_validator,
)

from engine.units import parse_duration


class Level(IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2


class Thresholds(BaseModel):
    """Seconds, or durations such as "15m". A service's own table overrides the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lag_warning: float = 900.0
    lag_critical: float = 3600.0
    window_age_warning: float = 1800.0
    window_age_critical: float = 7200.0
    paused_warning: float = 600.0
    paused_critical: float = 3600.0
    primary_unreachable_warning: float = 300.0
    primary_unreachable_critical: float = 1800.0

    @field_validator("lag_warning", "lag_critical", "window_age_warning",
                     "window_age_critical", "paused_warning", "paused_critical",
                     "primary_unreachable_warning", "primary_unreachable_critical",
                     mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)


class AlertsConfig(Thresholds):
    """``[alerts]``: the default thresholds, and ``[alerts.services.<name>]`` overrides."""

    services: dict[str, dict[str, Any]] = {}

    @model_validator(mode="after")
    def _overrides_are_valid(self) -> AlertsConfig:
        for name in self.services:
            try:
                self.for_service(name)
            except ValidationError as error:
                first = error.errors()[0]
                key = ".".join(str(part) for part in first["loc"])
                message = first["msg"].removeprefix("Value error, ")
                raise ValueError(f"services.{name}.{key}: {message}") from None
        return self

    def for_service(self, name: str) -> Thresholds:
        """The thresholds that apply to one service."""
        defaults = tuple(getattr(self, key) for key in Thresholds.model_fields)
        overrides = self.services.get(name)
        if not overrides:
            # `btar check` asks for each of a thousand services, most without a table of
            # their own: validated once (a Thresholds is frozen, so it can be shared).
            return _defaults(defaults)
        return Thresholds.model_validate({**_named(defaults), **overrides})


def _named(values: tuple[float, ...]) -> dict[str, float]:
    return dict(zip(Thresholds.model_fields, values, strict=True))


@lru_cache(maxsize=16)
def _defaults(values: tuple[float, ...]) -> Thresholds:
    """Thresholds with these values and no override (as for_service validates them)."""
    return Thresholds.model_validate(_named(values))


@dataclass(frozen=True)
class Problem:
    service: str
    level: Level
    check: str
    message: str


@dataclass(frozen=True)
class ServiceHealth:
    """What the checks need to know of one service, gathered through the application API."""

    service: str
    additional_region: str | None
    current_lag_seconds: float | None
    window_end: datetime | None
    paused_since: datetime | None
    paused_reason: str
    primary_region: str = ""
    #: since when listing the primary fails, and why (None: it answers)
    primary_down_since: datetime | None = None
    primary_reason: str = ""
    #: the newest point the primary was known to hold when it was last listed
    primary_window_end: datetime | None = None
    #: a destination fault that is not a pause (throttling, errors): (class, reason, since)
    copies_failing: tuple[str, str, datetime] | None = None


def _grade(value: float, warning: float, critical: float) -> Level:
    if value >= critical:
        return Level.CRITICAL
    if value >= warning:
        return Level.WARNING
    return Level.OK


def evaluate(health: ServiceHealth, limits: Thresholds, now: datetime) -> list[Problem]:
    """The problems of one replicating service (none when it has no additional region)."""
    if health.additional_region is None:
        return []
    problems: list[Problem] = []
    name, region = health.service, health.additional_region
    if health.current_lag_seconds is not None:
        level = _grade(health.current_lag_seconds, limits.lag_warning, limits.lag_critical)
        if level:
            problems.append(Problem(name, level, "lag", (
                f"{name}: {region} is {health.current_lag_seconds:.0f}s behind the primary "
                f"(warning {limits.lag_warning:.0f}s, critical {limits.lag_critical:.0f}s)")))
    if health.window_end is None:
        problems.append(Problem(name, Level.CRITICAL, "window",
                                f"{name}: {region} has no restorable point yet"))
    else:
        age = (now - health.window_end).total_seconds()
        level = _grade(age, limits.window_age_warning, limits.window_age_critical)
        if level:
            problems.append(Problem(name, level, "window", (
                f"{name}: the newest restorable point in {region} is {age:.0f}s old "
                f"(warning {limits.window_age_warning:.0f}s, critical "
                f"{limits.window_age_critical:.0f}s)")))
    if health.paused_since is not None:
        paused = (now - health.paused_since).total_seconds()
        level = max(_grade(paused, limits.paused_warning, limits.paused_critical), Level.WARNING)
        problems.append(Problem(name, level, "paused", (
            f"{name}: replication to {region} paused for {paused:.0f}s: "
            f"{health.paused_reason}")))
    if health.copies_failing is not None and health.paused_since is None:
        kind, reason, since = health.copies_failing
        problems.append(Problem(name, Level.WARNING, "copies", (
            f"{name}: copies to {region} failing ({kind}) for "
            f"{(now - since).total_seconds():.0f}s: {reason}")))
    if health.primary_down_since is not None:
        problems += _primary_outage(health, limits, now)
    return problems


def _primary_outage(health: ServiceHealth, limits: Thresholds, now: datetime) -> list[Problem]:
    """A primary that cannot be listed: how long, and what a fork from the copy would give."""
    assert health.primary_down_since is not None
    name, region = health.service, health.additional_region
    down = (now - health.primary_down_since).total_seconds()
    level = _grade(down, limits.primary_unreachable_warning, limits.primary_unreachable_critical)
    if not level:
        return []  # status shows it; a short outage is not worth a page
    message = (f"{name}: the primary {health.primary_region} cannot be listed for {down:.0f}s "
               f"(warning {limits.primary_unreachable_warning:.0f}s, critical "
               f"{limits.primary_unreachable_critical:.0f}s): {health.primary_reason}")
    if health.window_end is None:
        advice = f"; {region} holds no restorable copy yet"
    else:
        # What a fork to latest loses: at least what the primary was last seen to hold beyond
        # the copy, at most everything written since the copy's end.
        known = 0.0
        if health.primary_window_end is not None:
            known = max(0.0, (health.primary_window_end - health.window_end).total_seconds())
        most = max(0.0, (now - health.window_end).total_seconds())
        advice = (f"; {region} holds a copy restorable to {_moment(health.window_end)}: a fork "
                  f"to latest now loses at least {known:.0f}s (known in the primary) and up to "
                  f"{most:.0f}s of writes; to fork: btar fork {name} --region {region} --latest "
                  f"--into DIR")
    return [Problem(name, level, "primary", message + advice)]


def _moment(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def exit_code(problems: list[Problem]) -> int:
    """The monitoring-plugin convention: the worst level found."""
    return int(max((p.level for p in problems), default=Level.OK))
