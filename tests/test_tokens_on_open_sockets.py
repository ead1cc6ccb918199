"""A token that lapses stops working on sockets already open: at expiry, on every action, by the sweep."""

import asyncio
import json
import time
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from sessions_app import sweeper
from sessions_app.access import token_standings
from sessions_app.models import CollabSession, SessionToken
from sessions_app.services import do_issue_token
from tests.clients import get_html_message
from tests.documents import flat_opc
from tests.sockets import TIMEOUT, assert_closed, join, receive, send

pytestmark = pytest.mark.django_db(transaction=True)

LIFETIME = 2.0  # seconds a token issued by a test lives


async def token_of(session, role, seconds=None):
    """A new token of the session's model with this role, expiring in `seconds` (None: never); its secret."""
    expires_at = timezone.now() + timedelta(seconds=seconds) if seconds is not None else None
    token, secret = await database_sync_to_async(do_issue_token)(
        session["model"], role, label="test", expires_at=expires_at
    )
    return token, secret


async def joined(session, role, secret=None):
    """A version 2 socket signed in with `secret` (the session's own token by default), greeting read."""
    socket = await join({**session, role: secret or session[role]}, role)
    assert (await receive(socket))["Action"] == "init"
    if role == "client":
        assert (await receive(socket))["Action"] == "get-html"
    return socket


async def assert_refused(socket, code, action, close_code, within=TIMEOUT):
    """The error `code` about `action`, then session-closed, then the close code."""
    error = json.loads(await socket.receive_from(timeout=within))
    while error.get("Action") == "presence":
        error = json.loads(await socket.receive_from(timeout=within))
    assert (error["ErrorCode"], error["Action"], error["Success"]) == (code, action, False), error
    closed = await receive(socket)
    assert closed["Action"] == "session-closed", closed
    await assert_closed(socket, close_code)


async def publish(word, text):
    await send(word, Action="update-ooxml", Content=flat_opc(text))
    while (message := await receive(word))["Action"] != "get-html":
        assert message["Success"], message
    assert text in message["Content"]
    return message["Version"]


@pytest.mark.parametrize("role", ["client", "word"])
async def test_socket_whose_token_expires_while_idle_is_closed_at_expiry(session, role):
    token, secret = await token_of(session, role, LIFETIME)
    socket = await joined(session, role, secret)
    # It sends nothing: its hub's timer closes it when the token expires.
    await assert_refused(socket, "E1003", "Unknown", 4401, within=LIFETIME + 10)
    assert time.time() >= token.expires_at.timestamp() - 0.05


async def test_viewer_gets_no_version_after_its_token_expires(session):
    _, secret = await token_of(session, "client", LIFETIME)
    viewer = await joined(session, "client", secret)
    word = await joined(session, "word")
    assert await publish(word, "Before the expiry") == 1
    assert "Before the expiry" in (await receive(viewer))["Content"]
    await asyncio.sleep(LIFETIME + 0.2)
    assert await publish(word, "After the expiry") == 2
    seen = []
    while (output := await viewer.receive_output(timeout=TIMEOUT))["type"] == "websocket.send":
        seen.append(json.loads(output["text"]))
    assert [m["Action"] for m in seen if m["Action"] != "presence"] == ["Unknown", "session-closed"], seen
    assert seen[-2]["ErrorCode"] == "E1003" and output["code"] == 4401
    await word.disconnect()


def lapse_unheard(session, token, change):
    """Change a token or its session in the database only, unheard (another server on its own layer)."""
    if change == "expired":
        SessionToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif change == "revoked":
        SessionToken.objects.filter(pk=token.pk).update(revoked=True)
    else:
        CollabSession.objects.filter(pk=session["id"]).update(status=CollabSession.Status.ENDED)


@pytest.mark.parametrize(
    ("change", "code", "close_code"),
    [("expired", "E1003", 4401), ("revoked", "E1003", 4401), ("ended", "E1006", 4410)],
)
async def test_an_update_is_refused_and_stores_nothing_when_its_token_lapsed_unheard(
    session, change, code, close_code
):
    # The check runs beside the conversion (consumers.action_update): the outcome is the same.
    token, secret = await token_of(session, "word", seconds=3600)
    socket = await joined(session, "word", secret)
    await database_sync_to_async(lapse_unheard)(session, token, change)
    await send(socket, Action="update-ooxml", Content=flat_opc("Not to be stored"))
    await assert_refused(socket, code, "update-ooxml", close_code)
    stored = await database_sync_to_async(CollabSession.objects.get)(pk=session["id"])
    assert (stored.version, stored.html) == (0, "")


@pytest.mark.parametrize(
    ("role", "action", "change", "code", "close_code"),
    [
        ("client", "get-html", "expired", "E1003", 4401),
        ("client", "get-html", "revoked", "E1003", 4401),
        ("client", "get-html", "ended", "E1006", 4410),
        ("client", "init", "revoked", "E1003", 4401),
        ("word", "end-session", "expired", "E1003", 4401),
        ("word", "end-session", "revoked", "E1003", 4401),
    ],
)
async def test_every_action_rechecks_the_token(session, role, action, change, code, close_code):
    token, secret = await token_of(session, role, seconds=3600)
    socket = await joined(session, role, secret)
    await database_sync_to_async(lapse_unheard)(session, token, change)
    await send(socket, Action=action)
    await assert_refused(socket, code, action, close_code)
    if action == "end-session":
        # The word socket's lapsed token did not end the session.
        assert (await database_sync_to_async(CollabSession.objects.get)(pk=session["id"])).is_active


async def test_token_revoked_unheard_is_refused_by_the_next_sweep(session, settings):
    settings.COLLAB_SWEEP_INTERVAL = 1
    token, secret = await token_of(session, "client", seconds=3600)
    viewer = await joined(session, "client", secret)
    other = await joined(session, "client")
    sweep = sweeper.ensure_sweeper()
    try:
        await database_sync_to_async(lapse_unheard)(session, token, "revoked")
        await assert_refused(viewer, "E1003", "Unknown", 4401, within=10)
        # Sockets of other tokens stay.
        await send(other, Action="ping")
        assert (await receive(other))["Action"] == "pong"
    finally:
        sweep.cancel()
    await other.disconnect()


def test_the_sweep_reads_the_standing_of_all_tokens_in_one_query(make_session, django_assert_num_queries):
    session, ended = make_session(), make_session()
    now = timezone.now()
    usable, _ = do_issue_token(session["model"], "client", expires_at=now + timedelta(hours=1))
    forever, _ = do_issue_token(session["model"], "client")
    expired, _ = do_issue_token(session["model"], "client", expires_at=now - timedelta(seconds=1))
    revoked, _ = do_issue_token(session["model"], "word")
    SessionToken.objects.filter(pk=revoked.pk).update(revoked=True)
    of_ended, _ = do_issue_token(ended["model"], "client")
    CollabSession.objects.filter(pk=ended["id"]).update(status=CollabSession.Status.ENDED)
    ids = [usable.pk, forever.pk, expired.pk, revoked.pk, of_ended.pk, 999_999]
    with django_assert_num_queries(1):
        standings = token_standings(ids)
    assert standings == {
        usable.pk: (None, usable.expires_at.timestamp()),
        forever.pk: (None, None),
        expired.pk: ("E1003", expired.expires_at.timestamp()),
        revoked.pk: ("E1003", None),
        of_ended.pk: ("E1006", None),
        999_999: ("E1006", None),  # gone
    }


@pytest.mark.integration
async def test_token_revoked_from_another_process_is_refused_by_the_sweep(daphne):
    """manage.py's revocation broadcast stays in its own in-memory layer: the server's sweep repairs it."""
    server = await asyncio.to_thread(daphne, COLLAB_SWEEP_INTERVAL="1")
    created = await asyncio.to_thread(server.create_session)
    async with connect(server.ws_url, proxy=None, open_timeout=TIMEOUT) as viewer:
        await viewer.send(json.dumps(get_html_message(created)))
        assert json.loads(await asyncio.wait_for(viewer.recv(), TIMEOUT))["Action"] == "get-html"
        revoke = (
            "from sessions_app.models import SessionToken\n"
            "from sessions_app.services import do_revoke_token\n"
            f"do_revoke_token(SessionToken.objects.get(session_id={created['id']!r}, role='client'))"
        )
        await asyncio.to_thread(server.manage, "shell", "-c", revoke)
        error = json.loads(await asyncio.wait_for(viewer.recv(), 15))
        assert (error["ErrorCode"], error["Success"]) == ("E1003", False), error
        assert json.loads(await asyncio.wait_for(viewer.recv(), TIMEOUT))["Action"] == "session-closed"
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(viewer.recv(), TIMEOUT)
        assert closed.value.rcvd.code == 4401
