"""The Textual front end: a thin layer over engine.api (coming next)."""
