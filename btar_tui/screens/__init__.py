"""Screens and dialogs of the btar TUI."""
