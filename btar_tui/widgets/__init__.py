"""Custom widgets of the btar TUI."""
