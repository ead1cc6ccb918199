"""Keeping this process's entries in Redis sorted sets alive while it has any.

Presence and the connection limits score each entry by an expiry time: a live process
refreshes its entries every few seconds, and a crashed one's lapse by themselves.
"""

import asyncio
import logging

from .cancellation import stopping

log = logging.getLogger(__name__)


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
