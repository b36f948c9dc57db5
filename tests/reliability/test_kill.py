"""Crash at any moment: `btar sync --once` runs as a real process and is killed with SIGKILL at
seeded moments (an effect count through the BTAR_TEST_KILL_AT hook, or a seeded delay), on the
local backend and on moto's S3 server. After every kill the invariants of harness.Episode.check
hold; after a final clean run the state equals that of a never-interrupted run.
"""

from __future__ import annotations

import collections
import uuid
from pathlib import Path

from tests.integration.s3_server import MotoS3
from tests.reliability.harness import (
    PRIMARY,
    SECONDARY,
    KillWorld,
    LocalPlace,
    Run,
    S3Place,
    kill_episodes,
)

SEED = 9


def summary(label: str, runs: list[Run], garbage: int) -> collections.Counter[str]:
    phases = collections.Counter(run.phase for run in runs if run.killed)
    print(f"{label}: {sum(phases.values())} kills in {len(runs)} runs, "
          f"{garbage} leftovers of interrupted writes", dict(sorted(phases.items())))
    return phases


def test_kills_on_the_local_backend(tmp_path: Path) -> None:
    world = KillWorld(tmp_path, LocalPlace(tmp_path / "regions" / PRIMARY),
                      lambda name: LocalPlace(tmp_path / "regions" / f"{SECONDARY}-{name}"),
                      segments={"orders": 200, "shop": 100}, base_every=60)
    runs, garbage = kill_episodes(world, "local", episodes=10, seed=SEED)
    phases = summary("local", runs, garbage)
    assert sum(phases.values()) >= 31  # every hook kill lands; timed ones mostly do
    assert {"before StartCopy", "after StartCopy", "before NextCompletions",
            "after NextCompletions", "after StartRequest", "timed"} <= set(phases)


def test_kills_on_s3(moto_s3: MotoS3, tmp_path: Path) -> None:
    run_id = uuid.uuid4().hex[:12]

    def place(region: str, name: str) -> S3Place:
        return S3Place(moto_s3.endpoint, moto_s3.bucket(region), f"kill-{run_id}/{name}")

    world = KillWorld(tmp_path, place(PRIMARY, "primary"), lambda name: place(SECONDARY, name),
                      segments={"orders": 90}, base_every=30)
    runs, garbage = kill_episodes(world, "s3", episodes=7, seed=SEED)
    phases = summary("s3", runs, garbage)
    assert sum(phases.values()) >= 22
    assert {"before StartCopy", "after StartCopy", "before NextCompletions",
            "after NextCompletions", "timed"} <= set(phases)
