"""The Textual front end: a thin layer over engine.api.

Entry points for the CLI live in :mod:`btar_tui.app` (``run_tui`` and ``run_demo_tui``).
Every engine call runs in a thread worker through :class:`btar_tui.bridge.Bridge`.
"""
