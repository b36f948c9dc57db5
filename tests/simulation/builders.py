"""Small scenario texts for the simulator's tests (written to tmp_path, never collected)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"

HEADER = """\
schema = 1
name = "tiny"
seed = 5
start = 2026-11-02T00:00:00Z
duration = "{duration}"

[[regions]]
id = "aws-eu-west-1"

[[regions]]
id = "aws-eu-central-1"

[[links]]
between = ["aws-eu-west-1", "aws-eu-central-1"]
bandwidth = "{bandwidth}"
latency = "50ms"

[[services]]
name = "orders"
type = "postgresql"
region = "aws-eu-west-1"
additional_region = "aws-eu-central-1"
[services.schedule]
base_every = "1h"
base_duration = "10m"
base_size = "{base_size}"
base_objects = 2
log_every = "5m"

[replicator]
poll_interval = "1m"
concurrency = {concurrency}
"""


def tiny(body: str = "", *, duration: str = "2h", bandwidth: str = "100MB/s",
         base_size: str = "1GB", concurrency: int = 4) -> str:
    """A one-service scenario; ``body`` adds timeline events and expectations."""
    return HEADER.format(duration=duration, bandwidth=bandwidth, base_size=base_size,
                         concurrency=concurrency) + "\n" + body


def write(tmp_path: Path, text: str, name: str = "case.btar.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


PASSING = """
[[expect]]
kind = "never_published_unverified"
"""

FAILING = """
[[expect]]
kind = "lag"
service = "orders"
p99_at_most = "1s"
"""
