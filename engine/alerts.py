"""Health checks for monitoring: per-service thresholds on lag, window age and pause duration,
judged the way monitoring plugins expect (0 ok, 1 warning, 2 critical)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
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

    @field_validator("lag_warning", "lag_critical", "window_age_warning",
                     "window_age_critical", "paused_warning", "paused_critical", mode="before")
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
        base = Thresholds.model_fields.keys()
        defaults = {key: getattr(self, key) for key in base}
        return Thresholds.model_validate({**defaults, **self.services.get(name, {})})


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
    return problems


def exit_code(problems: list[Problem]) -> int:
    """The monitoring-plugin convention: the worst level found."""
    return int(max((p.level for p in problems), default=Level.OK))
