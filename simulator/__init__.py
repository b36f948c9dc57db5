"""The SimPy simulator: replays outages, lag and forks from scenario files against the very
same engine, in virtual time.

- scenario.py    scenario files (TOML, schema 1, pydantic), errors with file, line and key
- world.py       regions (memory storage behind fault wrappers), links, catalog, Btar
- interpreter.py the SimPy twin of engine.runtime.LiveDriver (and the instant SimDriver)
- producer.py    services writing native-format backups on a schedule
- replicator.py  the engine's replication procedure (Btar.replication), one SimPy process
- faults.py      the timeline (outages, links, throttling, corruption, crashes)
- actions.py     management actions and forks through engine.api.Btar
- sampler.py     snapshots of lag and windows, probes of the windows' claims
- journal.py     every operation, invoked and completed, at virtual time
- expectations.py the checks, judged on the journal after the run
- runner.py, report.py, swarm.py, cli.py, pytest_plugin.py

It imports simpy and engine, never textual.
"""
