"""Readers (and, for btar's own layout, writers) of backup layouts on storage."""

from engine.errors import BadInput
from engine.formats.base import BackupLayout
from engine.formats.native import NativeLayout

LAYOUTS: dict[str, BackupLayout] = {"native": NativeLayout()}


def get_layout(name: str) -> BackupLayout:
    """The layout reader registered under ``name``."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise BadInput(f"unknown backup layout {name!r}; known: {', '.join(LAYOUTS)}") from None
