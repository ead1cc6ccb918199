"""Conversions (and .docx files made of HTML) in worker processes, with a hard timeout, shared fairly."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import resource
import signal
import sys
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from multiprocessing.reduction import ForkingPickler
from typing import TYPE_CHECKING, Any

from .converting import convert_payload, payload_kind
from .docx_package import check_properties
from .errors import ConversionError
from .html_docx import html_to_docx
from .kept_conversions import ConversionStates
from .limits import DEFAULT_LIMITS, TOO_MUCH_MEMORY, Limits

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from .converting import Converted

TIMED_OUT = "conversion timed out"
WORKER_FAILED = "conversion worker failed"
CLOSED = "the conversion service is shut down"
BUSY = "conversion stopped: it took too long while other documents were waiting, try again"
# How often a running conversion checks whether it must make way for a waiting one.
_POLL_SECONDS = 0.1
# The worker time an owner used counts half after this long, when choosing who goes next.
_USAGE_HALF_LIFE_SECONDS = 60.0
# A fresh worker imports mammoth and nh3; on a loaded machine that can take seconds.
_STARTUP_SECONDS = 30.0
_EXIT_SECONDS = 2.0
# A job this small fits in the empty socket buffer of a worker's pipe, so sending it cannot block.
_SEND_AT_ONCE_BYTES = 64 * 1024
_WORKER_RECURSION_LIMIT = 20_000
_KEPT_OWNERS = 10_000  # owners a worker is remembered to keep, at most
# What a worker is asked to do: convert a payload to HTML, or make a .docx of HTML.
_CONVERT, _HTML_TO_DOCX = "convert", "html-docx"
# An HTML payload up to this long, building at most this many elements, is sanitised in a
# thread of the caller's process: for a document's HTML (a few thousand elements) the scan and
# nh3 take well under a millisecond there, less than the hand-over to a worker and back. The
# HTML rules let a few kilobytes build millions of elements (formatting left open is repeated
# in every paragraph: 64 KB can sanitise to 9 MB in 0.7 s), so the scan stops at the element
# bound, within milliseconds, and such a payload, or one refused, goes to a worker after all.
IN_PROCESS_HTML_CHARS = 64 * 1024
IN_PROCESS_HTML_ELEMENTS = 10_000


class ConversionPool:
    """Converts in worker processes so a big document never blocks the event loop; hard timeout.

    Each running job holds one thread of a small thread pool, which talks to one worker
    process over a pipe and kills it when the deadline passes. At most ``workers`` jobs run;
    the others wait here, and the pool shares its workers between owners (sessions):

    - a free worker goes to the waiting job whose owner used the least worker time lately
      (time used counts half after a minute), so one session's stream of slow documents
      waits behind everybody else's updates;
    - while a job of another owner waits, a job that has run ``share_seconds`` is stopped
      (``BUSY``) and its worker replaced, so no owner holds a worker longer than that while
      others wait. Alone, a job runs up to the timeout. ``share_seconds=0`` turns this off.

    Nothing here is bound to an event loop, so one pool serves any number of loops.
    """

    def __init__(self, workers: int = 2, limits: Limits = DEFAULT_LIMITS, share_seconds: float = 10.0):
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.limits = limits
        self.share_seconds = share_seconds
        self._size = workers
        # spawn, not fork: a forked child would inherit Django, sockets and the loop.
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._workers: set[_Worker] = set()
        self._threads: ThreadPoolExecutor | None = None
        self._closed = False
        self._waiting: list[_Job] = []
        self._running = 0
        self._arrivals = itertools.count()
        self._usage: dict[Any, tuple[float, float]] = {}  # owner: (worker seconds, when counted)

    async def convert(self, content: str, payload_type: str, owner: Any = None) -> Converted:
        """Convert in a worker process; raises ConversionError, also on timeout or a dead worker.

        A small HTML payload is sanitised in a thread of this process instead, unless it builds
        too many elements (IN_PROCESS_HTML_CHARS, IN_PROCESS_HTML_ELEMENTS) or is refused.

        ``owner`` says whose update it is (a session id): the pool shares its workers fairly
        between owners. Jobs without one count as one owner.
        """
        if self._closed:
            raise ConversionError(CLOSED)
        if could_sanitise_here(content, payload_type):
            converted = await asyncio.to_thread(_sanitise_here, content, self.limits)
            if converted is not None:
                return converted
        return await self._submit(_Job(owner, _CONVERT, (content, payload_type), next(self._arrivals)))

    async def html_to_docx(
        self, html: str, properties: dict[str, str], title: str | None = None, owner: Any = None
    ) -> bytes:
        """Make a .docx of HTML in a worker process (``html_docx.html_to_docx``), as convert converts.

        The same limits, timeout and sharing between owners; ConversionError as convert,
        ValueError (here, before any work) for properties Word cannot keep.
        """
        properties = dict(properties)
        check_properties(properties)
        if title is not None and not isinstance(title, str):
            raise ValueError("the title must be text")
        return await self._submit(_Job(owner, _HTML_TO_DOCX, (html, properties, title), next(self._arrivals)))

    async def _submit(self, job: _Job):
        with self._lock:
            if self._closed:
                raise ConversionError(CLOSED)
            if self._threads is None:
                self._threads = ThreadPoolExecutor(self._size, thread_name_prefix="conversion")
            self._waiting.append(job)
            self._dispatch()
        return await asyncio.wrap_future(job.future)

    def _dispatch(self) -> None:
        """Start waiting jobs while workers are free, the least served owner first (lock held)."""
        while self._running < self._size and self._waiting:
            now = time.monotonic()
            job = min(self._waiting, key=lambda waiting: (self._used(waiting.owner, now), waiting.arrival))
            self._waiting.remove(job)
            if not job.future.set_running_or_notify_cancel():
                continue  # its caller went away while it waited
            self._running += 1
            try:
                self._threads.submit(self._run, job)
            except RuntimeError:  # shut down in the meantime
                self._running -= 1
                job.future.set_exception(ConversionError(CLOSED))

    def _used(self, owner: Any, now: float) -> float:
        seconds, at = self._usage.get(owner, (0.0, now))
        return seconds * 0.5 ** ((now - at) / _USAGE_HALF_LIFE_SECONDS)

    def _run(self, job: _Job) -> None:
        started = time.monotonic()
        try:
            job.future.set_result(self._convert_blocking(job))
        except BaseException as error:
            job.future.set_exception(error)
        finally:
            with self._lock:
                self._running -= 1
                now = time.monotonic()
                self._usage[job.owner] = (self._used(job.owner, now) + now - started, now)
                # Owners whose use has faded are forgotten, so the table stays small.
                for owner in [owner for owner in self._usage if self._used(owner, now) < 0.01]:
                    del self._usage[owner]
                if not self._closed:
                    self._dispatch()

    def _must_make_way(self, job: _Job, seconds: float) -> bool:
        """Whether a job that has run this long must stop for another owner's waiting job."""
        if not self.share_seconds or seconds < self.share_seconds:
            return False
        with self._lock:
            # A waiter whose caller went away (cancelled, not yet swept out) claims nothing.
            return any(
                waiting.owner != job.owner and not waiting.future.cancelled() for waiting in self._waiting
            )

    def close(self) -> None:
        """Terminate the worker processes; jobs still running or waiting fail. Safe to call twice."""
        with self._lock:
            self._closed = True
            idle = list(self._idle)
            busy = [worker for worker in self._workers if worker not in idle]
            self._workers.clear()
            self._idle.clear()
            threads, self._threads = self._threads, None
            waiting, self._waiting = self._waiting, []
        for job in waiting:
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(ConversionError(CLOSED))
        for worker in idle:
            worker.stop()
        # A busy worker's pipe belongs to the thread waiting on it, which sees the
        # process end, fails its job and closes the pipe itself.
        for worker in busy:
            worker.kill()
        if threads is not None:
            threads.shutdown(wait=False)

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        with self._lock:
            return [worker.process.pid for worker in self._workers if worker.process.is_alive()]

    def _convert_blocking(self, job: _Job) -> Converted | bytes:
        worker = self._take_worker(job.owner)
        try:
            result = worker.run(
                job.kind,
                job.arguments,
                job.owner,
                self.limits,
                lambda seconds: self._must_make_way(job, seconds),
            )
        except ConversionError as error:
            if error.reason in {TIMED_OUT, WORKER_FAILED, BUSY}:
                self._discard(worker)
            else:
                self._give_back(worker)
            raise
        except BaseException:
            self._discard(worker)
            raise
        self._give_back(worker)
        return result

    def _take_worker(self, owner: Any = None) -> _Worker:
        with self._lock:
            if self._closed:
                raise ConversionError(CLOSED)
            # The worker that converted this owner's last version keeps it: the next converts faster there.
            keeping = [worker for worker in self._idle if owner is not None and owner in worker.kept]
            if keeping:
                self._idle.remove(keeping[-1])
                self._idle.append(keeping[-1])
            while self._idle:
                worker = self._idle.pop()
                if worker.process.is_alive():
                    return worker
                # Died while idle (the OOM killer, an operator): replace it quietly.
                self._workers.discard(worker)
                worker.stop()
        # At most `workers` jobs run at once, so this never exceeds the size.
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


def _next_wait(deadline: float) -> float:
    """How long to wait for a worker before looking at the deadline and the fair share again."""
    return min(max(deadline - time.monotonic(), 0), _POLL_SECONDS)


@dataclass(eq=False)
class _Job:
    """One job (a conversion, or a .docx made of HTML), waiting for a worker or running."""

    owner: Any
    kind: str
    arguments: tuple = field(repr=False)
    arrival: int
    future: Future = field(default_factory=Future, repr=False)


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, context):
        # Owners whose last conversion this worker may still keep, oldest first (it may
        # have let some go to stay within its budget; then it converts whole).
        self.kept: OrderedDict[Any, None] = OrderedDict()
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

    def run(
        self, kind: str, arguments: tuple, owner: Any, limits: Limits, must_make_way
    ) -> Converted | bytes:
        started = time.monotonic()
        deadline = started + limits.timeout_seconds
        converting = kind == _CONVERT
        if converting:
            self.kept.pop(owner, None)  # kept again below only if this conversion succeeds

        def out_of_time():
            now = time.monotonic()
            if now >= deadline:
                raise ConversionError(TIMED_OUT)
            if must_make_way(now - started):
                raise ConversionError(BUSY)

        try:
            self._send(ForkingPickler.dumps((kind, arguments, owner, limits)), deadline, out_of_time)
            while not self.connection.poll(_next_wait(deadline)):
                out_of_time()
            status, value = self.connection.recv()
        except (EOFError, OSError, ValueError, TypeError) as error:
            raise ConversionError(WORKER_FAILED) from error
        if status == "ok":
            if converting and owner is not None:
                self.kept[owner] = None
                while len(self.kept) > _KEPT_OWNERS:
                    self.kept.popitem(last=False)
            return value
        raise ConversionError(value)

    def _send(self, job: bytes, deadline: float, out_of_time) -> None:
        """Send a pickled job; a worker that stops reading it counts as one that stops converting.

        A job larger than the pipe's buffer blocks its sender until the worker has read it: a
        worker that hangs meanwhile would hold this thread past any deadline. Such a job goes
        from a thread of its own, and `out_of_time` (which raises) is asked meanwhile; the
        worker is killed then, which ends the send.
        """
        if len(job) <= _SEND_AT_ONCE_BYTES:
            self.connection.send_bytes(job)
            return
        failed: list[BaseException] = []

        def send():
            try:
                self.connection.send_bytes(job)
            except BaseException as error:  # raised again in the converting thread
                failed.append(error)

        sender = threading.Thread(target=send, name="conversion-send", daemon=True)
        sender.start()
        try:
            while sender.is_alive():
                sender.join(_next_wait(deadline))
                if sender.is_alive():
                    out_of_time()
        except ConversionError:
            self.kill()
            sender.join(_EXIT_SECONDS)
            raise
        if failed:
            raise failed[0]

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(_EXIT_SECONDS)

    def stop(self) -> None:
        self.kill()
        self.connection.close()


def could_sanitise_here(content: Any, payload_type: Any) -> bool:
    """Whether a payload is HTML short enough to try sanitising in the caller's process."""
    return (
        payload_kind(payload_type) == "html"
        and isinstance(content, str | bytes)
        and len(content) <= IN_PROCESS_HTML_CHARS
    )


def _sanitise_here(content: str | bytes, limits: Limits) -> Converted | None:
    """The payload sanitised, or None when a worker must: too many elements, or refused.

    A refusal comes from the worker, which checks against the limits themselves and words it.
    """
    bounded = replace(limits, max_html_elements=min(limits.max_html_elements, IN_PROCESS_HTML_ELEMENTS))
    try:
        return convert_payload(content, "html", bounded)
    except Exception:
        return None


def worker_main(connection: Connection) -> None:
    """Serve conversions over connection until the parent goes away (runs in the child)."""
    # Ctrl-C in a terminal reaches the whole process group; the parent decides our end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # mammoth walks the XML tree recursively, several frames per level; this process
    # exists only to convert, so it can afford the stack for max_xml_depth levels.
    sys.setrecursionlimit(_WORKER_RECURSION_LIMIT)
    connection.send("ready")
    states = ConversionStates(0)
    while True:
        try:
            kind, arguments, owner, limits = connection.recv()
        except EOFError:
            return
        try:
            limit_memory(limits.max_memory_bytes)
            if kind == _HTML_TO_DOCX:
                reply = ("ok", html_to_docx(*arguments, limits=limits))
            else:
                states.max_bytes = limits.kept_conversion_bytes
                converted = states.convert(owner, *arguments, limits)
                # What the next version reuses stays here; the parent needs the HTML only.
                reply = ("ok", replace(converted, document=None))
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
