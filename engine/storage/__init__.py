"""Storage backends behind one protocol (engine.storage.base.Storage)."""
