"""Conversions in worker processes, with a hard timeout that kills a stuck worker."""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from .errors import ConversionError
from .limits import DEFAULT_LIMITS, TOO_MUCH_MEMORY, Limits

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from . import Converted

TIMED_OUT = "conversion timed out"
WORKER_FAILED = "conversion worker failed"
CLOSED = "the conversion service is shut down"
# A fresh worker imports mammoth and nh3; on a loaded machine that can take seconds.
_STARTUP_SECONDS = 30.0
_EXIT_SECONDS = 2.0
_WORKER_RECURSION_LIMIT = 20_000


class ConversionPool:
    """Converts in worker processes so a big document never blocks the event loop; hard timeout.

    Each running job holds one thread of a small thread pool, which talks to one worker
    process over a pipe and kills it when the deadline passes. Jobs beyond ``workers``
    queue in that thread pool. Nothing here is bound to an event loop, so one pool
    serves any number of loops over its life.
    """

    def __init__(self, workers: int = 2, limits: Limits = DEFAULT_LIMITS):
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.limits = limits
        self._size = workers
        # spawn, not fork: a forked child would inherit Django, sockets and the loop.
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._workers: set[_Worker] = set()
        self._threads: ThreadPoolExecutor | None = None
        self._closed = False

    async def convert(self, content: str, payload_type: str) -> Converted:
        """Convert in a worker process; raises ConversionError, also on timeout or a dead worker."""
        with self._lock:
            if self._closed:
                raise ConversionError(CLOSED)
            if self._threads is None:
                self._threads = ThreadPoolExecutor(self._size, thread_name_prefix="conversion")
            threads = self._threads
        try:
            job = threads.submit(self._convert_blocking, content, payload_type)
        except RuntimeError as error:  # closed in the meantime
            raise ConversionError(CLOSED) from error
        return await asyncio.wrap_future(job)

    def close(self) -> None:
        """Terminate the worker processes; jobs still running fail. Safe to call twice."""
        with self._lock:
            self._closed = True
            idle = list(self._idle)
            busy = [worker for worker in self._workers if worker not in idle]
            self._workers.clear()
            self._idle.clear()
            threads, self._threads = self._threads, None
        for worker in idle:
            worker.stop()
        # A busy worker's pipe belongs to the thread waiting on it, which sees the
        # process end, fails its job and closes the pipe itself.
        for worker in busy:
            worker.kill()
        if threads is not None:
            # Queued jobs still run, find the pool closed and fail with CLOSED; cancelling
            # them instead would surface as CancelledError in the awaiting tasks.
            threads.shutdown(wait=False)

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        with self._lock:
            return [worker.process.pid for worker in self._workers if worker.process.is_alive()]

    def _convert_blocking(self, content: str, payload_type: str) -> Converted:
        worker = self._take_worker()
        try:
            result = worker.run(content, payload_type, self.limits)
        except ConversionError as error:
            if error.reason in {TIMED_OUT, WORKER_FAILED}:
                self._discard(worker)
            else:
                self._give_back(worker)
            raise
        except BaseException:
            self._discard(worker)
            raise
        self._give_back(worker)
        return result

    def _take_worker(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise ConversionError(CLOSED)
            while self._idle:
                worker = self._idle.pop()
                if worker.process.is_alive():
                    return worker
                # Died while idle (the OOM killer, an operator): replace it quietly.
                self._workers.discard(worker)
                worker.stop()
        # The thread pool runs at most `workers` jobs, so this never exceeds the size.
        try:
            worker = _Worker(self._context)
        except OSError as error:  # no processes or pipes left on the machine
            raise ConversionError(WORKER_FAILED) from error
        with self._lock:
            if not self._closed:
                self._workers.add(worker)
                return worker
        worker.stop()
        raise ConversionError(CLOSED)

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if not self._closed and worker in self._workers:
                self._idle.append(worker)
                return
        worker.stop()

    def _discard(self, worker: _Worker) -> None:
        with self._lock:
            self._workers.discard(worker)
        worker.stop()


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, context):
        self.connection, child_connection = context.Pipe()
        self.process = context.Process(
            target=worker_main, args=(child_connection,), name="collab-conversion", daemon=True
        )
        self.process.start()
        # Only the child may hold its end open, or its death would never read as EOF.
        child_connection.close()
        try:
            ready = self.connection.poll(_STARTUP_SECONDS) and self.connection.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.stop()
            raise ConversionError(WORKER_FAILED)

    def run(self, content: str, payload_type: str, limits: Limits) -> Converted:
        deadline = time.monotonic() + limits.timeout_seconds
        try:
            self.connection.send((content, payload_type, limits))
            if not self.connection.poll(max(deadline - time.monotonic(), 0)):
                raise ConversionError(TIMED_OUT)
            status, value = self.connection.recv()
        except (EOFError, OSError, ValueError, TypeError) as error:
            raise ConversionError(WORKER_FAILED) from error
        if status == "ok":
            return value
        raise ConversionError(value)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(_EXIT_SECONDS)

    def stop(self) -> None:
        self.kill()
        self.connection.close()


def worker_main(connection: Connection) -> None:
    """Serve conversions over connection until the parent goes away (runs in the child)."""
    # Imported here: the package imports this module before convert_payload exists.
    from . import convert_payload

    # Ctrl-C in a terminal reaches the whole process group; the parent decides our end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # mammoth walks the XML tree recursively, several frames per level; this process
    # exists only to convert, so it can afford the stack for max_xml_depth levels.
    sys.setrecursionlimit(_WORKER_RECURSION_LIMIT)
    connection.send("ready")
    while True:
        try:
            content, payload_type, limits = connection.recv()
        except EOFError:
            return
        try:
            limit_memory(limits.max_memory_bytes)
            reply = ("ok", convert_payload(content, payload_type, limits))
        except ConversionError as error:
            reply = ("error", error.reason)
        except MemoryError:
            reply = ("error", TOO_MUCH_MEMORY)
        except Exception:
            # Whatever went wrong, the client gets no internals.
            reply = ("error", "document could not be converted")
        connection.send(reply)


def limit_memory(max_bytes: int) -> None:
    """Cap this process's address space (soft limit only), so a huge document ends in MemoryError."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = max_bytes if max_bytes > 0 else hard
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
