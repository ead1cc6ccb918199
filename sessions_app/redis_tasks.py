"""Redis from the event loop: a waiting client per loop, entries kept alive, loops that really stop.

- `WaitingClient`: presence and the connection limits each take their redis.asyncio client
  from it. A crowd of sockets arriving at once waits its turn for one of a few connections:
  redis-py's plain pool refuses beyond 100 with "Too many connections".
- `Refresher`: presence and the connection limits score each entry of their Redis sorted
  sets by an expiry time; a live process refreshes its entries every few seconds, and a
  crashed one's lapse by themselves.
- `stopping()` and `cancellable()`: a cancellation that lands while redis-py (7 and 8 alike)
  is connecting or sending is lost; the command goes on, and a loop around it never ends,
  so the event loop never finishes closing (seen as a test run hanging in its teardown).
  Loops check `stopping()` after each step, and a blocking receive is cancelled again until
  it has really ended.
"""

import asyncio
import logging

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 20
RECANCEL_SECONDS = 0.1
# After Redis fails (restarted), a session hub's group and the version notices' subscription
# are tried again this often, doubling up to the cap.
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 5.0


class WaitingClient:
    """A redis.asyncio client for the running event loop, whose pool makes callers wait for a connection."""

    def __init__(self, url, timeout, **connection_options):
        self.url = url
        self.timeout = timeout  # how long a caller waits for a free connection
        self.connection_options = connection_options
        self._clients = {}  # event loop -> client; only the newest loop's is kept

    def __call__(self):
        import redis.asyncio

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            pool = redis.asyncio.BlockingConnectionPool.from_url(
                self.url, max_connections=MAX_CONNECTIONS, timeout=self.timeout, **self.connection_options
            )
            client = redis.asyncio.Redis(connection_pool=pool)
            self._clients = {loop: client}
        return client


class Refresher:
    """Runs `refresh()` every `seconds` while `has_entries()`, in one task per event loop."""

    def __init__(self, seconds, refresh, has_entries, what):
        self.seconds = seconds
        self.refresh = refresh
        self.has_entries = has_entries
        self.what = what
        self._task = None

    def ensure_running(self):
        """Start the task unless it runs already in this event loop; cheap enough for every entry."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._run())

    async def _run(self):
        while self.has_entries() and not stopping():
            await asyncio.sleep(self.seconds)
            try:
                await self.refresh()
            except Exception:
                # Redis is away: the next tick tries again, before the entries lapse if it is back.
                log.warning("%s not refreshed: Redis unavailable", self.what, exc_info=True)


def stopping():
    """Whether the running task was asked to stop, even if what it awaited swallowed the request."""
    return asyncio.current_task().cancelling() > 0


def cancel_until_done(task):
    """Cancel a task, and again every RECANCEL_SECONDS until it has ended."""
    if not task.done():
        task.cancel()
        asyncio.get_running_loop().call_later(RECANCEL_SECONDS, cancel_until_done, task)


async def cancellable(awaitable):
    """Await a blocking Redis call in a task of its own, which is cancelled until it ends if we are."""
    task = asyncio.ensure_future(awaitable)
    # Its outcome once abandoned is of no interest: read it so asyncio does not log it.
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        cancel_until_done(task)
        raise
