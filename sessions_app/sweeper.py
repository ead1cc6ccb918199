"""Ends abandoned sessions from inside the server, so no extra scheduler is needed.

Each server process runs one sweep task per event loop, started by the first WebSocket
connection; every COLLAB_SWEEP_INTERVAL seconds it calls do_expire_sessions, which is safe
when several processes sweep at once. `manage.py expire_sessions` does the same from cron.

Every COLLAB_ENDED_CHECK_INTERVAL seconds (and with each sweep) the task closes this
process's sockets of sessions that ended without their broadcast reaching it: ended by
`manage.py end_session` or removed while running on the in-memory layer (which spans one
process), or during a channel-layer outage. That check is one primary-key query on the
sessions of this process's sockets, and none while no socket is open. With each sweep it
also re-reads the tokens of this process's sockets, all in one query, and refuses the
sockets of a token revoked unheard (E1003).
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
    if not (settings.COLLAB_SWEEP_INTERVAL or settings.COLLAB_ENDED_CHECK_INTERVAL):
        return None
    loop = asyncio.get_running_loop()
    task = _tasks.get(loop)
    if task is None or task.done():
        task = _tasks[loop] = loop.create_task(sweep_forever(), name="collab-session-sweeper")
    return task


async def sweep_forever():
    """Sweep every COLLAB_SWEEP_INTERVAL s; check for ended sessions every COLLAB_ENDED_CHECK_INTERVAL."""
    loop = asyncio.get_running_loop()
    last_sweep = loop.time()
    while True:
        sweep_every = settings.COLLAB_SWEEP_INTERVAL
        check_every = settings.COLLAB_ENDED_CHECK_INTERVAL
        next_sweep = last_sweep + sweep_every if sweep_every else None
        wakes = [t for t in (next_sweep, loop.time() + check_every if check_every else None) if t is not None]
        if not wakes:
            return  # both turned off
        await asyncio.sleep(max(min(wakes) - loop.time(), 0))
        if next_sweep is not None and loop.time() >= next_sweep:
            last_sweep = loop.time()
            await sweep()
        else:
            await guarded(close_ended_sessions, "closing the sockets of ended sessions failed")


async def sweep():
    """Expire sessions, then make up for the notices this process's sockets missed."""
    try:
        ended, deleted = await database_sync_to_async(do_expire_sessions)()
    except Exception:
        # A database hiccup must not stop the sweeps; the next one tries again.
        log.exception("session sweep failed")
        return
    if ended or deleted:
        log.info("session sweep: %d ended, %d deleted", ended, deleted)
    await guarded(close_ended_sessions, "closing the sockets of ended sessions failed")
    await guarded(refuse_lapsed_tokens, "checking the tokens of open sockets failed")


async def guarded(check, failure):
    """Run a check, logging rather than raising its failure: the next period tries again."""
    try:
        await check()
    except Exception:
        log.exception(failure)


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
