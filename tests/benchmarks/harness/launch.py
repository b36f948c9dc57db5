"""A tiny launcher between the harness and every timed command, for a clean peak RSS.

Linux folds the parent's memory high-water mark at fork/vfork time into the child's ru_maxrss
at exec (it keeps the max of the old and new address spaces). The harness holds hundreds of MiB
(test data, a million-row catalog), which would then show up as every child's "peak". This
launcher starts with a small address space, spawns the command, times it from the spawn to
the reap, and reports the child's os.wait4 rusage (peak RSS, and CPU: user + system).

    python -I -S launch.py RESULT_JSON ARGV...

SIGTERM and SIGINT are passed on to the command. The command inherits stdin/stdout/stderr.
"""

import json
import os
import signal
import sys
import time


def main() -> None:
    result_path, argv = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, os.environ)

    def forward(signum: int, _frame: object) -> None:
        os.kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - started
    with open(result_path, "w") as out:
        json.dump({"seconds": seconds, "returncode": os.waitstatus_to_exitcode(status),
                   "max_rss_kib": usage.ru_maxrss,
                   "cpu_seconds": usage.ru_utime + usage.ru_stime}, out)


if __name__ == "__main__":
    main()
