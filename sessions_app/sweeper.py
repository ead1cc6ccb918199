"""Ends abandoned sessions from inside the server, so no extra scheduler is needed.

Each server process runs one sweep task per event loop, started by the first WebSocket
connection; every COLLAB_SWEEP_INTERVAL seconds it calls do_expire_sessions, which is safe
when several processes sweep at once. `manage.py expire_sessions` does the same from cron.
"""

import asyncio
import logging
import weakref

from channels.db import database_sync_to_async
from django.conf import settings

from .services import do_expire_sessions

log = logging.getLogger(__name__)

_tasks = weakref.WeakKeyDictionary()  # event loop -> its sweep task


def ensure_sweeper():
    """Start this event loop's sweep task unless it runs already; cheap enough for every connect."""
    if not settings.COLLAB_SWEEP_INTERVAL:
        return None
    loop = asyncio.get_running_loop()
    task = _tasks.get(loop)
    if task is None or task.done():
        task = _tasks[loop] = loop.create_task(sweep_forever(), name="collab-session-sweeper")
    return task


async def sweep_forever():
    """Expire sessions every COLLAB_SWEEP_INTERVAL seconds until the loop ends."""
    while True:
        await asyncio.sleep(settings.COLLAB_SWEEP_INTERVAL)
        try:
            ended, deleted = await database_sync_to_async(do_expire_sessions)()
        except Exception:
            # A database hiccup must not stop the sweeps; the next one tries again.
            log.exception("session sweep failed")
            continue
        if ended or deleted:
            log.info("session sweep: %d ended, %d deleted", ended, deleted)
