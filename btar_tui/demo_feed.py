"""The demo's backup producer: a thread writing new primary backups, as `btar demo` does."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from engine.demo import demo_producers
from engine.errors import BtarError

#: a base backup after this many segments (what engine.demo.run_demo does)
BASE_EVERY = 10


class DemoFeed:
    """Writes a log segment for every demo database service every ``interval`` seconds, and
    a base backup every ten segments. Touches only the demo's primary storage folders."""

    def __init__(self, root: Path, interval: float) -> None:
        self.root = root
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.segments = 0

    def start(self) -> None:
        producers = demo_producers(self.root)
        for producer in producers:
            producer.resume()  # continue after the history create_demo wrote

        def produce() -> None:
            while not self._stop.wait(self.interval):
                moment = datetime.now(UTC)
                for producer in producers:
                    try:
                        producer.segment(moment)
                        if producer.segments_since_base >= BASE_EVERY:
                            producer.base_backup(moment)
                    except (OSError, BtarError):
                        # Its primary folder is broken (a fault being tried out): as a real
                        # archiver, this service waits; the others go on.
                        continue
                self.segments += 1

        self._thread = threading.Thread(target=produce, name="btar-demo-producer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
