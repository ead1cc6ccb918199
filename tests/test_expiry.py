"""Sessions end by themselves when abandoned or too old, and ended ones are deleted after a while."""

import asyncio
import io
import json
import sys
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.core.management import call_command
from django.utils import timezone
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from sessions_app import sweeper
from sessions_app.models import CollabSession, Revision, SessionToken
from sessions_app.services import (
    ENDED_MESSAGE,
    SessionUnavailable,
    do_create_session,
    do_end_session,
    do_expire_sessions,
)
from tests.clients import get_html_message
from tests.documents import store_version
from tests.servers import REPO_ROOT
from tests.sockets import join_with_get_html

pytestmark = pytest.mark.django_db

TIMEOUT = 30
IDLE_REASON = "Session ended: no update for 2 hours."
AGE_REASON = "Session ended: it reached its maximum age of 1 day."


@pytest.fixture(autouse=True)
def lifetimes(settings):
    """The documented defaults, whatever the environment says."""
    settings.COLLAB_SESSION_IDLE_TIMEOUT = 2 * 3600
    settings.COLLAB_SESSION_MAX_AGE = 24 * 3600
    settings.COLLAB_KEEP_ENDED = 30


def later(**delta):
    return timezone.now() + timedelta(**delta)


def stored(session_id):
    return CollabSession.objects.get(pk=session_id)


async def assert_hears_end(socket, reason):
    """end-session and session-closed, both with the reason, then a normal close."""
    ended = json.loads(await socket.receive_from(timeout=TIMEOUT))
    assert (ended["Action"], ended["Content"]) == ("end-session", reason)
    closed = json.loads(await socket.receive_from(timeout=TIMEOUT))
    assert (closed["Action"], closed["Content"], closed["Success"]) == ("session-closed", reason, True)
    assert await socket.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": 1000}


def test_session_without_updates_ends_after_the_idle_timeout(session):
    assert do_expire_sessions(now=later(hours=1, minutes=59)) == (0, 0)
    assert stored(session["id"]).is_active
    assert do_expire_sessions(now=later(hours=2, seconds=1)) == (1, 0)
    ended = stored(session["id"])
    assert ended.status == "ended" and ended.end_reason == IDLE_REASON
    # It already ended: a second sweep does nothing.
    assert do_expire_sessions(now=later(hours=3)) == (0, 0)


def test_idle_time_counts_from_the_last_update(session):
    CollabSession.objects.filter(pk=session["id"]).update(created_at=later(hours=-3))
    store_version(session["id"], "<p>Fresh</p>")
    assert do_expire_sessions(now=later(hours=1)) == (0, 0)
    assert do_expire_sessions(now=later(hours=2, minutes=1)) == (1, 0)
    assert stored(session["id"]).end_reason == IDLE_REASON


def test_busy_session_ends_at_its_maximum_age(session):
    CollabSession.objects.filter(pk=session["id"]).update(created_at=later(hours=-23))
    store_version(session["id"], "<p>Busy</p>")
    assert do_expire_sessions(now=later(minutes=59)) == (0, 0)
    assert do_expire_sessions(now=later(hours=1, minutes=1)) == (1, 0)
    ended = stored(session["id"])
    assert ended.end_reason == AGE_REASON
    # The document stays.
    assert ended.html == "<p>Busy</p>" and ended.revisions.count() == 1


def test_zero_disables_each_limit(session, settings):
    settings.COLLAB_SESSION_IDLE_TIMEOUT = 0
    settings.COLLAB_SESSION_MAX_AGE = 0
    assert do_expire_sessions(now=later(days=400)) == (0, 0)
    settings.COLLAB_SESSION_MAX_AGE = 3600
    assert do_expire_sessions(now=later(hours=1, seconds=1)) == (1, 0)
    assert stored(session["id"]).end_reason == "Session ended: it reached its maximum age of 1 hour."


def test_ended_sessions_are_kept_then_deleted_with_tokens_and_revisions(session):
    store_version(session["id"], "<p>Final</p>")
    do_end_session(session["id"])
    survivor = do_create_session("Still running")[0]
    store_version(survivor.id, "<p>Live</p>")  # active sessions are never deleted, however old
    CollabSession.objects.filter(pk=survivor.id).update(created_at=later(days=-400))

    assert do_expire_sessions(now=later(days=29))[1] == 0
    kept = stored(session["id"])
    assert kept.html == "<p>Final</p>" and kept.revisions.count() == 1

    _, deleted = do_expire_sessions(now=later(days=30, minutes=1))
    assert deleted == 1
    assert not CollabSession.objects.filter(pk=session["id"]).exists()
    assert not SessionToken.objects.filter(session_id=session["id"]).exists()
    assert not Revision.objects.filter(session_id=session["id"]).exists()
    # The old active session was ended by that sweep, not deleted.
    assert stored(survivor.id).status == "ended"


def test_keep_ended_zero_keeps_them_forever(session, settings):
    settings.COLLAB_KEEP_ENDED = 0
    do_end_session(session["id"])
    assert do_expire_sessions(now=later(days=4000)) == (0, 0)
    assert CollabSession.objects.filter(pk=session["id"]).exists()


def test_expire_sessions_command(session, settings):
    settings.COLLAB_SESSION_IDLE_TIMEOUT = 60
    CollabSession.objects.filter(pk=session["id"]).update(created_at=later(minutes=-2))
    ended_long_ago = do_create_session("Old")[0]
    CollabSession.objects.filter(pk=ended_long_ago.id).update(status="ended", ended_at=later(days=-31))
    out = io.StringIO()
    call_command("expire_sessions", stdout=out)
    assert out.getvalue() == "1 session(s) ended, 1 ended session(s) deleted.\n"
    assert stored(session["id"]).end_reason == "Session ended: no update for 1 minute."


@pytest.mark.django_db(transaction=True)
async def test_idle_session_ends_and_its_live_socket_hears_why(session):
    viewer = await join_with_get_html(session["id"], session["client"], "client")
    ended, _ = await database_sync_to_async(do_expire_sessions)(now=later(hours=2, seconds=1))
    assert ended == 1
    await assert_hears_end(viewer, IDLE_REASON)


@pytest.mark.integration
@pytest.mark.redis
async def test_several_processes_sweeping_at_once_end_a_session_once(daphne, redis_url, redis_prefix):
    server = daphne(REDIS_URL=redis_url, COLLAB_REDIS_PREFIX=redis_prefix)
    try:
        created = server.create_session("abandoned")
        async with connect(server.ws_url, open_timeout=TIMEOUT) as viewer:
            await viewer.send(json.dumps(get_html_message(created)))
            assert json.loads(await asyncio.wait_for(viewer.recv(), TIMEOUT))["Action"] == "get-html"
            await asyncio.sleep(1.1)
            # Four sweeps at once, as cron and several servers may run them, each in its own process.
            env = {**server.env, "COLLAB_SESSION_IDLE_TIMEOUT": "1"}
            sweeps = [
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "manage.py",
                    "expire_sessions",
                    cwd=REPO_ROOT,
                    env=env,
                    stdout=asyncio.subprocess.PIPE,
                )
                for _ in range(4)
            ]
            outputs = [(await asyncio.wait_for(sweep.communicate(), 120))[0].decode() for sweep in sweeps]
            assert all(sweep.returncode == 0 for sweep in sweeps), outputs
            assert sum(int(output.split()[0]) for output in outputs) == 1, outputs
            reason = "Session ended: no update for 1 second."
            ended = json.loads(await asyncio.wait_for(viewer.recv(), TIMEOUT))
            assert (ended["Action"], ended["Content"]) == ("end-session", reason)
            closed = json.loads(await asyncio.wait_for(viewer.recv(), TIMEOUT))
            assert (closed["Action"], closed["Content"]) == ("session-closed", reason)
            with pytest.raises(ConnectionClosed) as closing:
                await asyncio.wait_for(viewer.recv(), TIMEOUT)
            assert closing.value.rcvd.code == 1000
    finally:
        print(server.output_tail(80))  # shown when the test fails


@pytest.mark.integration
async def test_end_session_command_reaches_a_viewer_on_the_in_memory_layer(daphne):
    # The command runs in its own process: its broadcast cannot reach the server's in-memory layer.
    server = daphne()
    try:
        created = server.create_session("ended from a terminal")
        async with connect(server.ws_url, open_timeout=TIMEOUT) as viewer:
            await viewer.send(json.dumps(get_html_message(created)))
            assert json.loads(await asyncio.wait_for(viewer.recv(), TIMEOUT))["Action"] == "get-html"
            await asyncio.to_thread(server.manage, "end_session", created["id"])
            # Far sooner than the minute between sweeps; generous for a loaded machine.
            deadline = 10
            ended = json.loads(await asyncio.wait_for(viewer.recv(), deadline))
            assert (ended["Action"], ended["Content"]) == ("end-session", ENDED_MESSAGE)
            closed = json.loads(await asyncio.wait_for(viewer.recv(), deadline))
            assert (closed["Action"], closed["Content"]) == ("session-closed", ENDED_MESSAGE)
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(viewer.recv(), deadline)
    finally:
        print(server.output_tail(80))  # shown when the test fails


@pytest.mark.django_db(transaction=True)
async def test_ended_check_closes_the_sockets_of_a_session_ended_unheard(session, settings):
    settings.COLLAB_SWEEP_INTERVAL = 3600  # no sweep during the test: only the ended check
    settings.COLLAB_ENDED_CHECK_INTERVAL = 1
    viewer = await join_with_get_html(session["id"], session["client"], "client")
    task = sweeper.ensure_sweeper()
    # Ended as by another process: the row changes, and no broadcast reaches this one.
    await database_sync_to_async(CollabSession.objects.filter(pk=session["id"]).update)(
        status="ended", end_reason="Ended elsewhere."
    )
    await assert_hears_end(viewer, "Ended elsewhere.")
    task.cancel()


@pytest.mark.django_db(transaction=True)
async def test_sweeper_in_the_server_ends_an_abandoned_session(session, settings):
    settings.COLLAB_SWEEP_INTERVAL = 1
    await database_sync_to_async(CollabSession.objects.filter(pk=session["id"]).update)(
        created_at=later(hours=-3)
    )
    # Connecting starts this event loop's sweeper; the next sweep ends the session.
    viewer = await join_with_get_html(session["id"], session["client"], "client")
    task = sweeper.ensure_sweeper()
    assert task is not None and sweeper.ensure_sweeper() is task  # one per event loop
    await assert_hears_end(viewer, IDLE_REASON)
    assert (await database_sync_to_async(stored)(session["id"])).status == "ended"
    task.cancel()


async def test_sweeper_is_off_when_both_intervals_are_zero(settings):
    settings.COLLAB_SWEEP_INTERVAL = 0
    settings.COLLAB_ENDED_CHECK_INTERVAL = 0
    assert sweeper.ensure_sweeper() is None


def test_publishing_after_expiry_is_refused(session):
    do_expire_sessions(now=later(hours=3))
    with pytest.raises(SessionUnavailable):
        store_version(session["id"], "<p>Too late</p>")
