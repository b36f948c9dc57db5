"""Logging for long-running commands: readable lines on a terminal, JSON lines for machines.
Nothing logged ever carries a credential: btar never has one in hand to log."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

LOGGER = "btar"
#: LogRecord attributes that are not fields the caller added
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and every extra field."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00",
                                                                                     "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        return json.dumps(document, default=str, sort_keys=False)


class HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S")
        return f"{moment} {record.levelname.lower():<7} {record.getMessage()}"


def configure(log_format: str, level: str, stream: TextIO | None = None) -> logging.Logger:
    """Set up the ``btar`` logger: ``log_format`` is "human" or "json"."""
    logger = logging.getLogger(LOGGER)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else HumanFormatter())
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
    return logger
