"""Correctness checks of every run: the destination holds exactly the source's objects."""

from __future__ import annotations

import os
from pathlib import Path

from tests.benchmarks.harness.data import Obj


def local_listing(root: Path) -> dict[str, int]:
    """key (relative to ``root``) -> size of every file under ``root``."""
    out: dict[str, int] = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            out[str(path.relative_to(root))] = path.stat().st_size
    return out


def expect_same(who: str, got: dict[str, int], objs: list[Obj]) -> None:
    want = {o.key: o.size for o in objs}
    if got != want:
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        wrong = sorted(k for k in set(want) & set(got) if want[k] != got[k])
        raise AssertionError(
            f"{who}: destination differs from the source: {len(missing)} missing "
            f"{missing[:3]}, {len(extra)} extra {extra[:3]}, {len(wrong)} of another size "
            f"{wrong[:3]}")


def sample(objs: list[Obj]) -> list[Obj]:
    return [objs[0], objs[len(objs) // 2], objs[-1]]


def check_local(who: str, root: Path, objs: list[Obj]) -> None:
    """Every key with its size, and the bytes of a sample."""
    expect_same(who, local_listing(root), objs)
    for obj in sample(objs):
        if (root / obj.key).read_bytes() != obj.data():
            raise AssertionError(f"{who}: {obj.key} has other bytes than the source")


def check_s3(who: str, got: dict[str, tuple[int, str]], source: dict[str, tuple[int, str]],
             objs: list[Obj]) -> None:
    """Every key with its size; ETags equal to the source's where both are single-part MD5s
    (a multipart copy, as aws s3 sync makes above 8 MiB, has another kind of ETag)."""
    expect_same(who, {k: size for k, (size, _) in got.items()}, objs)
    for key, (_, etag) in got.items():
        theirs = source[key][1]
        if "-" not in etag and "-" not in theirs and etag != theirs:
            raise AssertionError(f"{who}: {key} has ETag {etag}, the source {theirs}")
