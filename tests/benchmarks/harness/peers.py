"""The peers, each run as the command a person would type, on the same data and the same
server as btar: `cp -r`, `rclone copy` (Debian's rclone) and `aws s3 sync` (AWS CLI v1 from
PyPI in .venv-peers, which pins its own botocore).

Flags, and why:

- rclone, local: ``--transfers 16 --checkers 32`` (defaults 4/8) so it copies in parallel like
  btar (concurrency 32). It verifies each copy's MD5 by default; kept (btar verifies too).
- rclone, S3: one remote holding both buckets, so `rclone copy` uses server-side CopyObject.
  ``--transfers 32 --checkers 64`` (btar's concurrency is 32), ``--fast-list`` (one recursive
  listing per side instead of a listing per "directory"), ``--s3-no-check-bucket`` (the buckets
  exist; skips a bucket probe). No-op runs add ``--size-only`` (otherwise rclone HEADs every
  object to read its modification time from metadata) or ``--checksum`` (MD5 from the listing).
  ``--no-update-modtime`` is not needed: with --size-only nothing is touched.
- aws s3 sync: ``max_concurrent_requests = 64`` (default 10) in a temporary AWS config file;
  otherwise defaults (8 MiB multipart threshold: 64 MiB objects are copied as 8 UploadPartCopy
  parts, which is what a user of the CLI gets).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from tests.benchmarks.harness.proc import Run, run

ROOT = Path(__file__).resolve().parents[3]
AWS = ROOT / ".venv-peers" / "bin" / "aws"
REMOTE = "benchs3"
_RCLONE_COPIED = re.compile(r"INFO\s+:\s+.*: Copied \(")


@cache
def rclone_path() -> str | None:
    return shutil.which("rclone")


def aws_available() -> bool:
    return AWS.exists()


@cache
def rclone_version() -> str:
    path = rclone_path()
    if path is None:
        return "missing (rclone cases skipped)"
    return subprocess.run([path, "version"], capture_output=True, text=True).stdout.split("\n")[0]


@cache
def aws_version() -> str:
    if not aws_available():
        return "missing (aws cases skipped)"
    done = subprocess.run([str(AWS), "--version"], capture_output=True, text=True)
    return (done.stdout or done.stderr).strip()


def rclone_copied(result: Run) -> int:
    """Objects an `rclone copy -v` run reports as copied."""
    return sum(1 for line in (result.stderr + result.stdout).splitlines()
               if _RCLONE_COPIED.search(line))


def aws_copied(result: Run) -> int:
    """Objects an `aws s3 sync` run reports as copied."""
    return sum(1 for line in result.stdout.splitlines() if line.startswith("copy: "))


def cp_r(source: Path, destination: Path) -> Run:
    """`cp -r SOURCE DESTINATION` (DESTINATION does not exist yet)."""
    return run(["cp", "-r", str(source), str(destination)])


def rclone_local(source: Path, destination: Path, env: Mapping[str, str]) -> Run:
    path = rclone_path()
    assert path is not None
    return run([path, "copy", str(source), str(destination), "--transfers", "16",
                "--checkers", "32", "-v", "--stats", "0"], env=env)


def rclone_environment(env: Mapping[str, str], endpoint: str, config_file: Path) -> dict[str, str]:
    """One rclone remote ``benchs3`` on moto (both buckets), configured through the
    environment; an empty config file so no user configuration is read."""
    config_file.touch()
    prefix = f"RCLONE_CONFIG_{REMOTE.upper()}_"
    return {**env, "RCLONE_CONFIG": str(config_file), prefix + "TYPE": "s3",
            prefix + "PROVIDER": "Other", prefix + "ENDPOINT": endpoint,
            prefix + "FORCE_PATH_STYLE": "true", prefix + "REGION": "eu-central-1",
            prefix + "ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"],
            prefix + "SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"]}


def rclone_s3(source: str, destination: str, env: Mapping[str, str], *extra: str) -> Run:
    """`rclone copy benchs3:SOURCE benchs3:DESTINATION` (bucket/prefix each)."""
    path = rclone_path()
    assert path is not None
    return run([path, "copy", f"{REMOTE}:{source}", f"{REMOTE}:{destination}",
                "--transfers", "32", "--checkers", "64", "--fast-list", "--s3-no-check-bucket",
                "-v", "--stats", "0", *extra], env=env)


def aws_environment(env: Mapping[str, str], config_file: Path) -> dict[str, str]:
    config_file.write_text("[default]\ns3 =\n  max_concurrent_requests = 64\n")
    return {**env, "AWS_CONFIG_FILE": str(config_file)}


def aws_s3_sync(source: str, destination: str, endpoint: str, env: Mapping[str, str]) -> Run:
    """`aws s3 sync s3://SOURCE s3://DESTINATION` (bucket/prefix each)."""
    return run([str(AWS), "s3", "sync", f"s3://{source}", f"s3://{destination}",
                "--endpoint-url", endpoint, "--region", "eu-central-1", "--no-progress"],
               env=env)
