"""The copy helper: a process of its own that lands small copies between local locations and
commits them together. Both ends of its pipe are here: CopyHelper in btar, ``serve`` in the
process.

A catch-up of thousands of small files spent its time handing the GIL from copy thread to
copy thread (a dozen system calls per copy, each one a hand-over) and fsyncing file by file,
while the driver's thread, which records and publishes, waited for the GIL in between. The
helper runs that work on its own interpreter: a few threads land copies (kernel copy, read
back, hash, check: engine.storage.file_copy) in temporary files while another commits what
has landed, many files at once (engine.storage.durability.commit_together), and answers each
copy once it is durable under its name. The caller (engine.storage.local) keeps every
decision that needs its state (keys, folders, symlinks, errors) and does in its own thread
whatever the helper declines.

Frames on both pipes: 4 bytes of length (little-endian), then a marshal'd tuple.
  request: (ident, source path, temporary path, final path, expected SHA-256)
  answer:  (-1, "ready") once, first; then per request
           (ident, "ok", sha256, length, mtime) | (ident, "declined", errno, reason)
           | (ident, "mismatch", sha256) | (ident, "short", size, length)
           | (ident, "error", errno, reason)
"declined": the source cannot be opened as a plain file without following a symlink, or the
temporary file's folder is missing: the caller does that copy itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import marshal
import os
import queue
import signal
import stat
import struct
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from engine.storage.durability import Landed, commit_together
from engine.storage.file_copy import CORES, copy_then_hash

#: prctl(2): the signal a process gets when the thread that started it ends
_PR_SET_PDEATHSIG = 1
#: how the helper opens a copy's source, and creates its temporary file (new, never someone
#: else's; read too, since the copy is read back)
_READ_SOURCE = os.O_RDONLY | os.O_CLOEXEC
_CREATE_TEMP = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
#: a frame's length
_LENGTH = struct.Struct("<I")
#: Threads of the helper that land copies: most of a landing is the kernel's copy, which
#: runs on as many cores as there are threads; past a few, the disk is the limit.
LANDERS = min(4, max(2, CORES))
#: one answer of the helper (see the frames above)
Answer = tuple[Any, ...]


def encode_frame(message: tuple[Any, ...]) -> bytes:
    """A message as it goes on a pipe."""
    body = marshal.dumps(message)
    return _LENGTH.pack(len(body)) + body


def decode_frames(buffer: bytearray) -> list[tuple[Any, ...]]:
    """Take every whole frame from the start of ``buffer`` (what is left is a frame's start)."""
    messages: list[tuple[Any, ...]] = []
    start = 0
    while len(buffer) - start >= _LENGTH.size:
        (length,) = _LENGTH.unpack_from(buffer, start)
        end = start + _LENGTH.size + length
        if end > len(buffer):
            break
        messages.append(marshal.loads(buffer[start + _LENGTH.size:end]))
        start = end
    del buffer[:start]
    return messages


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to a pipe."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _land(request: tuple[Any, ...]) -> tuple[Landed | None, Answer]:
    """Copy one request's source into its temporary file and check it: the landed copy and
    the answer it gets once committed, or no copy and the answer that ends the request
    (nothing of it is left on disk then)."""
    ident, source_path, temp, final, expected = request
    try:
        # O_NOFOLLOW: a symlink is the caller's to judge (it may point outside the location).
        source = os.open(source_path, _READ_SOURCE | os.O_NOFOLLOW)
    except OSError as error:
        return None, (ident, "declined", error.errno or 0, error.strerror or str(error))
    try:
        try:
            described = os.fstat(source)
        except OSError as error:
            return None, (ident, "declined", error.errno or 0, error.strerror or str(error))
        if not stat.S_ISREG(described.st_mode):
            return None, (ident, "declined", 0, "not a file")
        try:
            out = os.open(temp, _CREATE_TEMP, 0o666)
        except (FileNotFoundError, NotADirectoryError):
            return None, (ident, "declined", 0, "no folder for the temporary file")
        except OSError as error:
            return None, (ident, "error", error.errno or 0, error.strerror or str(error))
        return _check(ident, source, described.st_size, out, temp, final, expected)
    finally:
        os.close(source)


def _check(ident: int, source: int, size: int, out: int, temp: str, final: str,
           expected: str) -> tuple[Landed | None, Answer]:
    """_land once its temporary file is open: copy, hash the copy, compare."""
    answer: Answer
    try:
        sha256, length = copy_then_hash(source, out, size)
        landed = os.fstat(out)
    except OSError as error:
        answer = (ident, "error", error.errno or 0, error.strerror or str(error))
    else:
        if sha256 != expected:
            answer = (ident, "mismatch", sha256)
        elif landed.st_size != length:  # what was hashed must be all the file holds
            answer = (ident, "short", landed.st_size, length)
        else:
            return (Landed(ident, out, temp, final, landed.st_dev),
                    (ident, "ok", sha256, length, landed.st_mtime))
    os.close(out)
    with contextlib.suppress(OSError):
        os.unlink(temp)
    return None, answer


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to kill this process when the thread that started it ends (its
    caller's process dying included), so that no copy lands after a crash of btar."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it ended before the request above
        os._exit(1)


class _Committer:
    """The helper's committing thread: commits whatever landed meanwhile, all at once
    (engine.storage.durability.commit_together), and sends each copy's answer once it is
    durable under its name."""

    def __init__(self, answers: int) -> None:
        self._answers = answers
        self._send = threading.Lock()
        self._landed: list[Landed] = []
        #: the answer each landed copy gets if its commit succeeds
        self._ok: dict[int, Answer] = {}
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="btar-commit")
        self._thread.start()

    def send(self, answers: list[Answer]) -> None:
        with self._send:
            write_all(self._answers, b"".join(encode_frame(a) for a in answers))

    def add(self, landed: Landed, answer: Answer) -> None:
        with self._changed:
            self._landed.append(landed)
            self._ok[landed.ident] = answer
            self._changed.notify()

    def close(self) -> None:
        """Commit what is left, then stop."""
        with self._changed:
            self._closed = True
            self._changed.notify()
        self._thread.join()

    def _run(self) -> None:
        try:
            self._commit_until_closed()
        except BaseException:
            # The copies waiting here can no longer be answered: end the process, so that
            # btar answers them as failed (it sees the pipe close) rather than waiting on.
            traceback.print_exc()
            os._exit(70)

    def _commit_until_closed(self) -> None:
        while True:
            with self._changed:
                while not self._landed and not self._closed:
                    self._changed.wait()
                batch, self._landed = self._landed, []
                answers = [self._ok.pop(landed.ident) for landed in batch]
            if not batch:
                return
            commit_together(batch)
            self.send([answer if landed.error is None else
                       (answer[0], "error", landed.error.errno or 0,
                        landed.error.strerror or str(landed.error))
                       for landed, answer in zip(batch, answers, strict=True)])


def serve(parent: int, requests: int = 0, answers: int = 1) -> None:
    """The helper process's loop: read requests until the caller closes the pipe; landing
    threads take them in turn while the committer commits those landed before; at the end
    the committer commits the last."""
    _die_with_parent(parent)
    # A Ctrl-C in a terminal, or a service manager's SIGTERM, reaches the whole group: btar
    # then stops between copies and lets those in flight finish, here as in its own threads.
    # This process ends when btar closes the pipe, or with btar (above).
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)
    committer = _Committer(answers)
    work: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()

    def land() -> None:
        while (request := work.get()) is not None:
            try:
                landed, answer = _land(request)
            except Exception as error:  # a bug: this copy fails, the caller never hangs
                landed, answer = None, (request[0], "error", 0, f"{type(error).__name__}: "
                                                               f"{error}")
            if landed is None:
                committer.send([answer])
            else:
                committer.add(landed, answer)

    landers = [threading.Thread(target=land, name=f"btar-land-{n}") for n in range(LANDERS)]
    for lander in landers:
        lander.start()
    committer.send([(-1, "ready")])
    buffer = bytearray()
    try:
        while chunk := os.read(requests, 1 << 16):
            buffer += chunk
            for request in decode_frames(buffer):
                work.put(request)
    finally:
        for _ in landers:
            work.put(None)
        for lander in landers:
            lander.join()
        committer.close()


#: Small copies made on the callers' own threads before a location starts its copy helper
#: (and while it starts): a catch-up has thousands, a base backup's marker or a live stream's
#: next segment one now and then.
HELPER_FROM = 16
#: the folder that holds the engine package: the copy helper imports its copying code there
_ENGINE_HOME = str(Path(__file__).resolve().parents[2])
#: the copy helper's program: no site packages, no environment variables, no bytecode written
#: into the tree (it needs the standard library and engine.storage alone)
_HELPER_CODE = ("import sys; sys.path.insert(0, sys.argv[1]); "
                "from engine.storage.copy_helper import serve; serve(int(sys.argv[2]))")


class CopyHelper:
    """The process that lands and commits this location's small copies between local
    locations (the module's docstring says why). Copy threads hand it a request and
    wait for its answer. One thread of this process starts it (the kernel kills it when that
    thread ends) and reads its answers; it takes requests once it said it is ready, and
    until then the callers make their copies themselves."""

    def __init__(self) -> None:
        self._pending: dict[int, queue.SimpleQueue[Answer]] = {}
        self._pending_lock = threading.Lock()
        #: frames are written whole, one at a time; never held while waiting for an answer
        self._write_lock = threading.Lock()
        self._ids = itertools.count()
        self._replies = threading.local()
        #: set once it has started and imported what it runs
        self.ready = False
        #: why it takes no more requests (it could not start, it ended, it was closed)
        self.ended: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        #: set once the process was started, or could not be
        self._spawned = threading.Event()
        self._reader = threading.Thread(target=self._run, daemon=True,
                                        name="btar-copy-helper")
        self._reader.start()

    def _run(self) -> None:
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-E", "-S", "-B", "-c", _HELPER_CODE, _ENGINE_HOME,
                 str(os.getpid())], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        except OSError as error:
            self.ended = f"it could not start: {error.strerror or error}"
            return
        finally:
            self._spawned.set()
        assert self._process.stdout is not None
        answers, buffer = self._process.stdout.fileno(), bytearray()
        try:
            while chunk := os.read(answers, 1 << 16):
                buffer += chunk
                for answer in decode_frames(buffer):
                    if answer[1] == "ready":
                        self.ready = True
                        continue
                    with self._pending_lock:
                        reply = self._pending.pop(answer[0])
                    reply.put(answer)
        except BaseException:
            self._process.kill()  # nobody would read its answers: it must not wait on
            raise
        finally:
            code = self._process.wait()
            with self._pending_lock:
                self.ended = self.ended or f"it ended (exit status {code})"
                waiting, self._pending = self._pending, {}
            for ident, reply in waiting.items():
                reply.put((ident, "ended", self.ended))

    def copy(self, source: str, temp: str, final: str, sha256: str) -> Answer:
        """Ask for one copy and wait for its answer (the frames are in the module's docstring)."""
        reply: queue.SimpleQueue[Answer] | None = getattr(self._replies, "queue", None)
        if reply is None:
            reply = self._replies.queue = queue.SimpleQueue()
        with self._pending_lock:
            if self.ended is not None:
                return -1, "ended", self.ended
            ident = next(self._ids)
            self._pending[ident] = reply
        process = self._process
        assert process is not None
        assert process.stdin is not None
        try:
            with self._write_lock:
                write_all(process.stdin.fileno(), encode_frame(
                    (ident, source, temp, final, sha256)))
        except (OSError, ValueError):
            # It ended: the reader answers every request still pending, this one included.
            pass
        return reply.get()

    def close(self) -> None:
        """Let it commit what it holds and end; wait for it."""
        with self._pending_lock:
            self.ended = self.ended or "it was closed"
        if self._reader is threading.current_thread():
            return
        self._spawned.wait()
        process = self._process
        if process is not None and process.stdin is not None:
            with self._write_lock, contextlib.suppress(OSError):
                process.stdin.close()
        self._reader.join()
