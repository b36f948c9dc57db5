"""The Btar class: one installation, with every part of the application API."""

from engine.api.restoring import RestorePart


class Btar(RestorePart):
    """One btar installation: its configuration, catalog and driver. Its parts: management
    (engine.api.management), status (engine.api.status) and restore (engine.api.restoring),
    on top of the installation itself (engine.api.installation)."""
