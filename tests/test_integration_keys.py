"""Integration keys: made by staff and shown once, stored hashed, revoked everywhere, and on the WebSocket.

A key stands for a host application (the field plugin's editinword_token). It signs in on the
WebSocket as a `client` of the sessions it created, which it may end, and nowhere else.
"""

import base64
import json
from io import StringIO

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from sessions_app.models import CollabSession, IntegrationKey, SessionToken, digest_secret
from sessions_app.services import do_create_integration_key, do_end_session, do_revoke_integration_key
from tests.launch_links import custom_properties, launch_path, post_launch_link
from tests.sockets import assert_closed, open_socket, receive, send

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_password_hashing"),
]

PASSWORD = "staff-password-for-tests"  # noqa: S105
KEYS = "/api/integration-keys/"
ADMIN_KEYS = "/admin/sessions_app/integrationkey/"


@pytest.fixture
def staff():
    """An API client of a staff user holding every permission on collab's models, with HTTP Basic."""
    user = User.objects.create_user("staff", password=PASSWORD, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="sessions_app"))
    client = APIClient()
    credentials = base64.b64encode(f"staff:{PASSWORD}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {credentials}")
    return client


def key_session(secret, html="<p>Hello</p>"):
    """A session made by the key through the launch link endpoint: its id and the .docx's word token."""
    answer = post_launch_link(secret, html)
    assert answer.status_code == 200, answer.content
    docx = APIClient().get(launch_path(answer.json())).content
    return answer.json()["sessionId"], custom_properties(docx)["token"]


# Made and shown once, stored hashed


def test_api_shows_a_new_key_once_and_stores_only_its_hash(staff):
    response = staff.post(KEYS, {"name": "Intranet editor", "max_sessions": 3}, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert set(created) == {"id", "name", "key", "max_sessions"}
    assert (created["name"], created["max_sessions"]) == ("Intranet editor", 3)
    key = IntegrationKey.objects.get(pk=created["id"])
    assert key.digest == digest_secret(created["key"]) and created["key"] not in key.digest
    assert created["key"].startswith(key.prefix)
    assert key.last_used_at is None
    assert post_launch_link(created["key"]).status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None  # the admin and the API show when a key was last used
    listed = staff.get(KEYS)
    assert listed.status_code == 200
    assert created["key"] not in listed.content.decode()
    [row] = listed.json()["results"]
    assert row["id"] == key.pk and row["prefix"] == key.prefix and row["active_sessions"] == 1
    assert row["last_used_at"] is not None
    assert "key" not in row and "digest" not in row


def test_command_prints_a_working_key_once(settings):
    out = StringIO()
    call_command("create_integration_key", "--name", "CMS", "--max-sessions", "2", "--json", stdout=out)
    printed = json.loads(out.getvalue())
    assert set(printed) == {"id", "name", "key"}
    key = IntegrationKey.objects.get(pk=printed["id"])
    assert (key.name, key.max_sessions, key.digest) == ("CMS", 2, digest_secret(printed["key"]))
    assert post_launch_link(printed["key"]).status_code == 200
    text = StringIO()
    call_command("create_integration_key", "--name", "Wiki", stdout=text)
    assert "shown once" in text.getvalue() and "no cap" in text.getvalue()
    with pytest.raises(CommandError):
        call_command("create_integration_key", "--name", " ", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("create_integration_key", "--name", "x", "--max-sessions", "-1", stdout=StringIO())


def test_admin_shows_a_new_key_once(admin_client):
    form = admin_client.get(f"{ADMIN_KEYS}add/")
    assert form.status_code == 200 and "Create key" in form.content.decode()
    response = admin_client.post(f"{ADMIN_KEYS}add/", {"name": "Portal", "max_sessions": "0"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = IntegrationKey.objects.get(name="Portal")
    text = response.content.decode()
    secrets_shown = [
        word for word in text.replace("<", " ").replace(">", " ").split() if word.startswith(key.prefix)
    ]
    assert len(secrets_shown) == 1 and digest_secret(secrets_shown[0]) == key.digest
    assert "/edit-in-word/generate-word-launch-link" in text
    change = admin_client.get(f"{ADMIN_KEYS}{key.pk}/change/").content.decode()
    assert secrets_shown[0] not in change and key.prefix in change


def test_staff_needs_the_permissions_on_keys(settings):
    User.objects.create_user("helper", password=PASSWORD, is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"helper:{PASSWORD}".encode()).decode())
    assert client.get(KEYS).status_code == 403
    assert client.post(KEYS, {"name": "x"}, format="json").status_code == 403
    key, _ = do_create_integration_key("Someone's")
    assert client.delete(f"{KEYS}{key.pk}/").status_code == 403
    assert APIClient().get(KEYS).status_code == 401
    assert not IntegrationKey.objects.get(pk=key.pk).revoked


def test_a_key_manages_no_keys():
    _, secret = do_create_integration_key("Host")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get(KEYS).status_code == 401
    assert client.post(KEYS, {"name": "more"}, format="json").status_code == 401
    assert IntegrationKey.objects.count() == 1


# Sessions remember their key


def test_admin_and_api_show_the_sessions_of_a_key(admin_client, staff):
    key, secret = do_create_integration_key("Host")
    session_id, _ = key_session(secret, "<h1>Minutes of the board</h1>")
    ended_id, _ = key_session(secret, "<h1>Old notes</h1>")
    do_end_session(ended_id)
    other = post_launch_link(do_create_integration_key("Other")[1]).json()["sessionId"]
    page = admin_client.get(f"{ADMIN_KEYS}{key.pk}/change/").content.decode()
    assert session_id in page and ended_id not in page and other not in page  # its active sessions
    every = admin_client.get("/admin/sessions_app/collabsession/", {"integration_key__id__exact": key.pk})
    listed = every.content.decode()
    assert session_id in listed and ended_id in listed and other not in listed
    session_page = admin_client.get(
        f"/admin/sessions_app/collabsession/{session_id}/change/"
    ).content.decode()
    assert str(key) in session_page
    assert "Edit in Word" in session_page  # the labels of the word token and of the key's token
    api = staff.get("/api/sessions/", {"integration_key": key.pk}).json()["results"]
    assert {row["id"] for row in api} == {session_id, ended_id}
    assert {row["integration_key"] for row in api} == {key.pk}
    keys = {row["id"]: row["active_sessions"] for row in staff.get(KEYS).json()["results"]}
    assert keys[key.pk] == 1


# Revoked keys are refused everywhere


def test_api_revokes_a_key(staff):
    key, secret = do_create_integration_key("Host")
    assert staff.delete(f"{KEYS}{key.pk}/").status_code == 204
    key.refresh_from_db()
    assert key.revoked and key.revoked_at is not None
    assert staff.delete(f"{KEYS}{key.pk}/").status_code == 204  # revoking twice changes nothing
    assert staff.delete(f"{KEYS}{key.pk + 1000}/").status_code == 404
    assert staff.delete(f"{KEYS}{2**70}/").status_code == 404
    refused = post_launch_link(secret)
    assert (refused.status_code, refused.json()["errorCode"]) == (401, "H1002")


def test_admin_action_revokes_keys(admin_client):
    key, secret = do_create_integration_key("Host")
    response = admin_client.post(
        ADMIN_KEYS, {"action": "revoke_keys", "_selected_action": [key.pk]}, follow=True
    )
    assert "1 key(s) revoked." in response.content.decode()
    assert IntegrationKey.objects.get(pk=key.pk).revoked
    assert post_launch_link(secret).status_code == 401


def test_revoked_key_is_refused_by_the_conversion_endpoints():
    key, secret = do_create_integration_key("Host")
    client = APIClient(HTTP_TOKEN=secret)
    assert client.post("/api/convert/html-docx", {"html": "<p>x</p>"}, format="json").status_code == 200
    do_revoke_integration_key(key)
    response = client.post("/api/convert/html-docx", {"html": "<p>x</p>"}, format="json")
    assert response.status_code == 401
    assert response.json()["success"] is False and response.json()["message"]


# On the WebSocket


async def plugin_socket(secret, session_id):
    """A socket signed in as the field plugin does: get-html with the key, its answer read."""
    socket = await open_socket()
    await send(socket, Origin="client", Token=secret, SessionId=session_id, Action="get-html")
    return socket, await receive(socket)


async def assert_refused(socket, code, close_code=4401):
    error = await receive(socket)
    assert (error["Success"], error.get("ErrorCode")) == (False, code), error
    assert (await receive(socket))["Action"] == "session-closed"
    await assert_closed(socket, close_code)


async def test_key_reads_and_ends_a_session_it_created():
    _, secret = await database_sync_to_async(do_create_integration_key)("Host")
    session_id, _ = await database_sync_to_async(key_session)(secret, "<p>Shown before Word publishes</p>")
    socket, answer = await plugin_socket(secret, session_id)
    assert (answer["Action"], answer["Success"], answer["SessionId"]) == ("get-html", True, session_id)
    assert "Shown before Word publishes" in answer["Content"]
    # The plugin's "off": end-session without a token, on the signed-in socket.
    await send(socket, Origin="client", SessionId=session_id, Action="end-session", Success=True)
    ended = await receive(socket)
    assert (ended["Action"], ended["Success"]) == ("end-session", True)
    assert (await receive(socket))["Action"] == "session-closed"
    await assert_closed(socket, 1000)
    session = await database_sync_to_async(CollabSession.objects.get)(pk=session_id)
    assert not session.is_active


async def test_key_never_opens_another_keys_session_nor_publishes():
    _, first = await database_sync_to_async(do_create_integration_key)("First host")
    _, second = await database_sync_to_async(do_create_integration_key)("Second host")
    session_id, _ = await database_sync_to_async(key_session)(first)
    socket, answer = await plugin_socket(second, session_id)
    assert (answer["Success"], answer["ErrorCode"]) == (False, "E1003")
    await assert_closed_after_session_closed(socket)
    # The key is a client: as a publisher it is an invalid token too.
    socket = await open_socket()
    await send(socket, Origin="word", Token=first, SessionId=session_id, Action="init")
    await assert_refused(socket, "E1003")


async def assert_closed_after_session_closed(socket):
    assert (await receive(socket))["Action"] == "session-closed"
    await assert_closed(socket, 4401)


async def test_key_opens_no_session_made_by_staff(session):
    _, secret = await database_sync_to_async(do_create_integration_key)("Host")
    socket, answer = await plugin_socket(secret, session["id"])
    assert answer["ErrorCode"] == "E1003"
    await assert_closed_after_session_closed(socket)


async def test_key_of_an_ended_session_gets_session_not_found():
    _, secret = await database_sync_to_async(do_create_integration_key)("Host")
    session_id, _ = await database_sync_to_async(key_session)(secret)
    await database_sync_to_async(do_end_session)(session_id)
    socket, answer = await plugin_socket(secret, session_id)
    assert answer["ErrorCode"] == "E1001"
    await assert_closed_after_session_closed(socket)


async def test_revoking_a_key_closes_its_sockets_and_refuses_it_afterwards():
    key, secret = await database_sync_to_async(do_create_integration_key)("Host")
    session_id, word_secret = await database_sync_to_async(key_session)(secret)
    socket, answer = await plugin_socket(secret, session_id)
    assert answer["Success"]
    word = await open_socket()
    await send(word, Origin="word", Token=word_secret, SessionId=session_id, Action="init", Protocol=2)
    assert (await receive(word))["Action"] == "init"
    await database_sync_to_async(do_revoke_integration_key)(key)
    error = await receive(socket)
    assert (error["ErrorCode"], error["Success"]) == ("E1003", False)
    assert (await receive(socket))["Action"] == "session-closed"
    await assert_closed(socket, 4401)
    again, answer = await plugin_socket(secret, session_id)
    assert answer["ErrorCode"] == "E1003"
    await assert_closed_after_session_closed(again)
    # The Word side signed in with the document's own token: it goes on.
    await send(word, Action="ping")
    assert (await receive(word))["Action"] == "pong"
    await word.disconnect()
    tokens = await database_sync_to_async(
        lambda: sorted(SessionToken.objects.filter(session_id=session_id).values_list("role", "revoked"))
    )()
    assert tokens == [("client", True), ("word", False)]


async def test_the_sweep_refuses_a_socket_whose_key_was_revoked_unheard():
    from sessions_app import sweeper

    key, secret = await database_sync_to_async(do_create_integration_key)("Host")
    session_id, _ = await database_sync_to_async(key_session)(secret)
    socket, _ = await plugin_socket(secret, session_id)
    # Revoked by another process whose broadcast never came (the in-memory layer spans one process).
    await database_sync_to_async(lambda: IntegrationKey.objects.filter(pk=key.pk).update(revoked=True))()
    await database_sync_to_async(
        lambda: SessionToken.objects.filter(integration_key=key).update(revoked=True)
    )()
    await sweeper.refuse_lapsed_tokens()
    error = await receive(socket)
    assert error["ErrorCode"] == "E1003"
    assert (await receive(socket))["Action"] == "session-closed"
    await assert_closed(socket, 4401)
