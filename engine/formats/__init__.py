"""Readers (and, for btar's own layout, writers) of backup layouts on storage."""

from engine.errors import BadInput
from engine.formats.barman_cloud import BarmanCloudLayout
from engine.formats.base import BackupLayout
from engine.formats.native import NativeLayout
from engine.formats.pgbackrest import PgBackRestLayout

LAYOUTS: dict[str, BackupLayout] = {"native": NativeLayout(), "pgbackrest": PgBackRestLayout(),
                                     "barman-cloud": BarmanCloudLayout()}


def layout_kind(name: str) -> str:
    """The registered layout of a service's layout name (``pgbackrest:main`` -> pgbackrest)."""
    return name.partition(":")[0]


def get_layout(name: str) -> BackupLayout:
    """The layout reader registered under ``name``; ``kind:option`` passes an option to it
    (``pgbackrest:<stanza>``, ``barman-cloud:<server>``)."""
    kind, _, option = name.partition(":")
    try:
        layout = LAYOUTS[kind]
    except KeyError:
        raise BadInput(f"unknown backup layout {name!r}; known: {', '.join(LAYOUTS)}") from None
    if not option:
        return layout
    if isinstance(layout, PgBackRestLayout):
        try:
            return layout.for_stanza(option)
        except ValueError as error:
            raise BadInput(f"backup layout {name!r}: {error}") from None
    if isinstance(layout, BarmanCloudLayout):
        try:
            return layout.for_server(option)
        except ValueError as error:
            raise BadInput(f"backup layout {name!r}: {error}") from None
    raise BadInput(f"backup layout {kind!r} takes no option (got {name!r})")
