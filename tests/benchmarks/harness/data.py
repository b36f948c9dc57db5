"""The benchmark data in btar's native layout (docs/native-layout.md), as (key, bytes) specs
that a local folder or the moto host can materialise without shipping the bytes around."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.formats.native import build_manifest, manifest_key, payload_key, segment_key

PREFIX = "bench"
KIB, MIB = 1024, 1024 * 1024
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def payload(size: int, fill: int) -> bytes:
    """Deterministic bytes of one object (distinct per ``fill``)."""
    block = hashlib.sha256(fill.to_bytes(8, "little")).digest()
    return (block * (size // len(block) + 1))[:size]


@dataclass(frozen=True)
class Obj:
    """One object: its key under the location root, and either generated or literal bytes."""

    key: str
    size: int
    fill: int = 0
    text: str | None = None

    def data(self) -> bytes:
        return self.text.encode() if self.text is not None else payload(self.size, self.fill)

    def spec(self) -> list[object]:
        return [self.key, self.size, self.fill] + ([self.text] if self.text is not None else [])


def segments(count: int, size: int, *, first_seq: int = 1) -> list[Obj]:
    """``count`` log segments of stream 1, one minute each."""
    out = []
    for seq in range(first_seq, first_seq + count):
        sha = hashlib.sha256(payload(size, seq)).hexdigest()
        start = T0 + timedelta(minutes=seq - 1)
        key = segment_key("1", seq, start, start + timedelta(minutes=1), sha)
        out.append(Obj(f"{PREFIX}/{key}", size, seq))
    return out


def base_backup(parts: int, size: int, backup_id: str = "b1") -> list[Obj]:
    """One base backup: ``parts`` payload objects, then its manifest (the completion marker)."""
    data = {f"part-{i:03d}": payload(size, 1_000_000 + i) for i in range(parts)}
    objs = [Obj(f"{PREFIX}/{payload_key(backup_id, rel)}", size, 1_000_000 + i)
            for i, rel in enumerate(sorted(data))]
    manifest = build_manifest(backup_id, T0, T0 + timedelta(minutes=5), "1", 1, data).decode()
    objs.append(Obj(f"{PREFIX}/{manifest_key(backup_id)}", len(manifest.encode()), text=manifest))
    return objs


def write_local(root: Path, objs: list[Obj]) -> None:
    """Write the objects as files under ``root`` (no fsync: the caller runs `sync` once)."""
    made: set[Path] = set()
    for obj in objs:
        path = root / obj.key
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        with open(path, "wb") as out:
            out.write(obj.data())


def sync_disks() -> None:
    os.sync()


def total_bytes(objs: list[Obj]) -> int:
    return sum(o.size for o in objs)
