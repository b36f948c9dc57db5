"""The restore tools ``btar fork`` drives, one module each behind the ``Restorer`` protocol
(base.py), and the one place that picks a plan's tool: by its layout and service type, then,
where one layout holds backups of several tools, by what the backup is."""

from __future__ import annotations

from engine.errors import BadInput
from engine.formats import layout_kind
from engine.model import ServiceType
from engine.restore import RestorePlan
from engine.restore_tools.barman_cloud import BarmanCloud
from engine.restore_tools.base import Restorer, ToolFailed, ToolOptions, ToolRun
from engine.restore_tools.mariadb import MariaDB
from engine.restore_tools.native import Native
from engine.restore_tools.pgbackrest import PgBackRest

__all__ = ["RESTORERS", "Restorer", "ToolFailed", "ToolOptions", "ToolRun", "restorer_for"]

#: (layout kind, service type or None for any) -> the candidates, the first that
#: ``handles`` the plan wins
RESTORERS: dict[tuple[str, str | None], tuple[Restorer, ...]] = {
    ("pgbackrest", None): (PgBackRest(),),
    ("barman-cloud", None): (BarmanCloud(),),
    # a mariadb-backup base is MariaDB's; any other is the demo's key-value data
    ("native", ServiceType.MYSQL): (MariaDB(), Native()),
    ("native", None): (Native(),),
}


def restorer_for(plan: RestorePlan) -> Restorer:
    """The restore tool of a plan."""
    kind = layout_kind(plan.layout)
    candidates = RESTORERS.get((kind, plan.service_type)) \
        or RESTORERS.get((kind, None), ())
    for restorer in candidates:
        if restorer.handles(plan):
            return restorer
    raise BadInput(f"no restore tool for layout {plan.layout!r} ({plan.service_type})")
