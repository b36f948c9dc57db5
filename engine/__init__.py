"""btar engine: the shared core behind the CLI, the TUI and the simulator.

This package must never import textual or simpy (a test enforces it).
"""

__version__ = "0.1.0"
