"""The SimPy simulator: replays outages, lag and restores against the engine (coming next).

It may import simpy and engine, never textual.
"""
