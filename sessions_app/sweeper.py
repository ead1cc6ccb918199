"""Ends abandoned sessions from inside the server, so no extra scheduler is needed.

Each server process runs one sweep task per event loop, started by the first WebSocket
connection; every COLLAB_SWEEP_INTERVAL seconds it calls do_expire_sessions, which is safe
when several processes sweep at once. `manage.py expire_sessions` does the same from cron.

The sweep also closes this process's sockets of sessions that ended without their broadcast
reaching it: ended by `manage.py end_session` or removed while running on the in-memory
layer (which spans one process), or during a channel-layer outage. In the same way it
re-reads the tokens of this process's sockets, all in one query, and refuses the sockets
of a token revoked unheard (E1003).
"""

import asyncio
import logging
import weakref

from channels.db import database_sync_to_async
from django.conf import settings

from .access import token_standings
from .hub import hubs
from .models import CollabSession
from .services import ENDED_MESSAGE, do_expire_sessions

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
        try:
            await close_ended_sessions()
        except Exception:
            log.exception("closing the sockets of ended sessions failed")
        try:
            await refuse_lapsed_tokens()
        except Exception:
            log.exception("checking the tokens of open sockets failed")


def end_reasons(session_ids):
    """Why each of these sessions is no longer active (removed ones included); active ones are left out."""
    rows = CollabSession.objects.filter(pk__in=session_ids).values_list("pk", "status", "end_reason")
    known = {session_id: (status, reason) for session_id, status, reason in rows}
    return {
        session_id: known.get(session_id, (None, ""))[1] or ENDED_MESSAGE
        for session_id in session_ids
        if known.get(session_id, (None,))[0] != CollabSession.Status.ACTIVE
    }


async def close_ended_sessions():
    """Tell this process's sockets of sessions that ended unheard, and close them."""
    local = hubs.local_sessions()
    if not local:
        return
    for session_id, reason in (await database_sync_to_async(end_reasons)(local)).items():
        await hubs.end_session_here(session_id, reason)


async def refuse_lapsed_tokens():
    """Refuse this process's sockets whose token was revoked or removed unheard; one query for all tokens."""
    token_ids = hubs.local_token_ids()
    if token_ids:
        await hubs.apply_token_standings(await database_sync_to_async(token_standings)(token_ids))
