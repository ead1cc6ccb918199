"""The WebSocket consumer on the real ASGI application, for version 1 and version 2 clients."""

import asyncio
import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from collab.asgi import application
from sessions_app.hub import SessionHub
from sessions_app.models import CollabSession, SessionToken
from sessions_app.presence import PresenceAnnouncer
from sessions_app.protocol import VIEWER_TOKEN_FOR_PUBLISHING, published_at_text
from sessions_app.services import do_create_session, do_issue_token
from tests.documents import flat_opc
from tests.sockets import TIMEOUT, assert_closed, join, open_socket, receive, send

pytestmark = pytest.mark.django_db(transaction=True)


async def quiet(communicator, seconds=0.4):
    """Whether nothing but presence announcements arrives for a while."""
    while True:
        if await communicator.receive_nothing(seconds):
            return True
        message = json.loads(await communicator.receive_from())
        if message.get("Action") != "presence":
            return False


async def receive_action(communicator, action):
    """The next message, which must have this action."""
    message = await receive(communicator)
    assert message["Action"] == action, message
    return message


async def open_with_first_message(session, role, **message):
    """A socket whose first message is `message` (not init), signed with the session's token of this role."""
    socket = await open_socket()
    await send(socket, Origin=role, SessionId=session["id"], Token=session[role], **message)
    return socket


async def sign_in_as(origin, session, token, **message):
    """A socket whose first message names this Origin with this token (of any role or session)."""
    socket = await open_socket()
    await send(socket, Origin=origin, SessionId=session["id"], Token=token, **message)
    return socket


async def stored(session_id):
    return await sync_to_async(CollabSession.objects.get)(pk=session_id)


@pytest.mark.session_title("Budget <b>2026</b>")
async def test_word_v2_gets_init_reply_naming_the_session(session):
    word = await join(session, "word")
    reply = await receive_action(word, "init")
    assert reply == {
        "Origin": "server",
        "SessionId": session["id"],
        "Action": "init",
        "Success": True,
        "Role": "word",
        "Version": 0,
        "Viewers": 0,
        "Protocol": 2,
        "Features": [],
        "Title": "Budget <b>2026</b>",
    }
    assert await quiet(word)
    await word.disconnect()


async def test_viewer_v2_gets_init_then_current_html(session):
    viewer = await join(session, "client")
    init = await receive_action(viewer, "init")
    assert init["Role"] == "client" and init["Viewers"] == 1
    html = await receive_action(viewer, "get-html")
    assert html == {
        "Origin": "server",
        "SessionId": session["id"],
        "Action": "get-html",
        "PayloadType": "html",
        "Content": "",
        "Success": True,
        "Version": 0,
    }
    await viewer.disconnect()


async def viewer_and_word(session):
    """A version 2 viewer that has had its first document, and a Word socket that has had its init."""
    viewer = await join(session, "client")
    await receive_action(viewer, "init")
    await receive_action(viewer, "get-html")
    word = await join(session, "word")
    await receive_action(word, "init")
    return viewer, word


async def test_viewer_gets_update_from_word(session):
    viewer, word = await viewer_and_word(session)
    await send(word, Action="update-ooxml", Content=flat_opc("Hello from Word"))
    for socket in (viewer, word):
        update = await receive_action(socket, "get-html")
        assert update["Version"] == 1
        assert update["Content"] == "<p>Hello from Word</p>"
    # Stored before anyone heard of it, with the time it was published.
    row = await stored(session["id"])
    assert row.version == 1
    assert update["PublishedAt"] == published_at_text(row.updated_at)
    await viewer.disconnect()
    await word.disconnect()


async def test_v1_viewer_receives_only_v1_messages(session):
    viewer = await join(session, "client", protocol=None)
    assert await viewer.receive_nothing(0.5)
    word = await join(session, "word", protocol=None)
    await send(word, Action="update-ooxml", Content=flat_opc("Version one"))
    message = await receive(viewer, presence=True)
    assert message == {
        "Origin": "server",
        "SessionId": session["id"],
        "Action": "get-html",
        "PayloadType": "html",
        "Content": "<p>Version one</p>",
        "Success": True,
    }
    await receive_action(word, "get-html")
    await send(word, Action="end-session")
    assert await receive(viewer, presence=True) == {
        "Origin": "server",
        "SessionId": session["id"],
        "Action": "end-session",
        "Content": "Session ended successfully.",
        "Success": True,
    }
    assert (await receive(viewer, presence=True))["Action"] == "session-closed"
    await assert_closed(viewer, 1000)


async def test_presence_counts_reach_v2_sockets(session):
    viewer = await join(session, "client")
    assert (await receive_action(viewer, "init"))["Viewers"] == 1
    word = await join(session, "word")
    assert (await receive_action(word, "init"))["Viewers"] == 1
    second = await join(session, "client", protocol=None)
    while (message := await receive(viewer, presence=True))["Action"] != "presence" or message[
        "Viewers"
    ] != 2:
        pass
    assert message == {
        "Origin": "server",
        "SessionId": session["id"],
        "Action": "presence",
        "Viewers": 2,
        "Publishers": 1,
        "Success": True,
    }
    await second.disconnect()
    while (message := await receive(word, presence=True))["Action"] != "presence" or message["Viewers"] != 1:
        pass
    assert message["Publishers"] == 1
    await viewer.disconnect()
    await word.disconnect()


async def test_v1_get_html_has_no_version(session):
    viewer = await join(session, "client", protocol=None)
    await send(viewer, Action="get-html")
    message = await receive_action(viewer, "get-html")
    assert "Version" not in message and message["Content"] == ""
    await viewer.disconnect()


async def test_first_message_action_is_carried_out(session):
    word = await open_with_first_message(
        session, "word", Action="update-ooxml", Content=flat_opc("First message publishes")
    )
    update = await receive_action(word, "get-html")
    assert update["Content"] == "<p>First message publishes</p>"
    assert (await stored(session["id"])).html == "<p>First message publishes</p>"
    await word.disconnect()


async def test_first_message_get_html_sends_html_once(session):
    viewer = await open_with_first_message(session, "client", Action="GET-HTML", Protocol=2)
    await receive_action(viewer, "init")
    await receive_action(viewer, "get-html")
    assert await quiet(viewer)
    await viewer.disconnect()


async def test_last_version_skips_html_already_shown(session):
    word = await join(session, "word")
    await receive_action(word, "init")
    await send(word, Action="update-ooxml", Content=flat_opc("Shown already"))
    await receive_action(word, "get-html")
    current = await join(session, "client", LastVersion=1)
    await receive_action(current, "init")
    assert await quiet(current)
    behind = await join(session, "client", LastVersion=0)
    await receive_action(behind, "init")
    assert (await receive_action(behind, "get-html"))["Version"] == 1
    for socket in (word, current, behind):
        await socket.disconnect()


async def test_ping_gets_pong_in_v2_only(session):
    v2 = await join(session, "client")
    await receive_action(v2, "init")
    await receive_action(v2, "get-html")
    await send(v2, Action="ping")
    assert (await receive_action(v2, "pong"))["Success"] is True
    v1 = await join(session, "client", protocol=None)
    await send(v1, Action="ping")
    assert (await receive(v1))["ErrorCode"] == "E1004"
    await v1.disconnect()
    await v2.disconnect()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"SessionId": "no-such-session"}, "E1001"),
        ({"Token": None}, "E1002"),
        ({"Token": "not-a-real-token"}, "E1003"),
        ({"Origin": "word"}, "E1003"),  # a client token cannot join as word
        ({"Origin": "server"}, "E1003"),
    ],
)
async def test_failed_authentication_is_refused_and_closed(session, change, code):
    socket = await open_socket()
    message = {"Origin": "client", "SessionId": session["id"], "Token": session["client"], "Action": "init"}
    message.update(change)
    await send(socket, **{k: v for k, v in message.items() if v is not None})
    error = await receive(socket)
    assert error["Success"] is False and error["ErrorCode"] == code and error["Action"] == "init"
    assert "token" not in error["Content"].lower() or code in ("E1002", "E1003")
    assert session["client"] not in json.dumps(error)
    assert (await receive(socket))["Action"] == "session-closed"
    await assert_closed(socket, 4401)


async def test_ended_session_is_refused(session):
    await sync_to_async(CollabSession.objects.filter(pk=session["id"]).update)(status="ended")
    socket = await join(session, "client")
    assert (await receive(socket))["ErrorCode"] == "E1001"
    assert (await receive(socket))["Action"] == "session-closed"
    await assert_closed(socket, 4401)


async def test_token_of_another_session_is_refused(session):
    other, _, other_client = await sync_to_async(do_create_session)("Other")
    socket = await open_socket()
    await send(socket, Origin="client", SessionId=session["id"], Token=other_client, Action="init")
    assert (await receive(socket))["ErrorCode"] == "E1003"
    await socket.disconnect()


@pytest.mark.parametrize("state", ["revoked", "expired"])
async def test_unusable_token_is_refused(session, state):
    def make_token():
        fields = {"expires_at": timezone.now() - timedelta(minutes=1)} if state == "expired" else {}
        token, secret = do_issue_token(session["model"], SessionToken.Role.CLIENT, **fields)
        if state == "revoked":
            SessionToken.objects.filter(pk=token.pk).update(revoked=True)
        return secret

    secret = await sync_to_async(make_token)()
    socket = await open_socket()
    await send(socket, Origin="client", SessionId=session["id"], Token=secret, Action="init")
    assert (await receive(socket))["ErrorCode"] == "E1003"
    await socket.disconnect()


async def test_unknown_action_keeps_socket_open(session):
    viewer = await join(session, "client", protocol=None)
    await send(viewer, Action="dance")
    error = await receive(viewer)
    assert error["ErrorCode"] == "E1004" and error["Action"] == "dance"
    await send(viewer, Action="get-html")
    await receive_action(viewer, "get-html")
    await viewer.disconnect()


async def test_mismatched_session_id_closes(session):
    viewer = await join(session, "client", protocol=None)
    await send(viewer, Action="get-html", SessionId="another-session")
    error = await receive(viewer)
    assert error["ErrorCode"] == "E1007"
    assert (await receive(viewer))["Action"] == "session-closed"
    await assert_closed(viewer, 4401)


def refused_for_role(session, action, code, content, **reason):
    """The exact error a refusal of a viewer's token sends, as a version 1 client has always seen it."""
    return {
        "Origin": "server",
        "SessionId": session["id"],
        "Action": action,
        "Content": content,
        "Success": False,
        "ErrorCode": code,
        **reason,
    }


@pytest.mark.parametrize("action", ["init", "update-ooxml"])
async def test_viewer_token_used_to_publish_is_named_to_a_client_that_asks(session, action):
    socket = await sign_in_as(
        "word",
        session,
        session["client"],
        Action=action,
        Content=flat_opc("x"),
        Protocol=2,
        Features=["refusal-reasons"],
    )
    assert await receive(socket) == refused_for_role(
        session, action, "E1003", "Invalid token", Reason=VIEWER_TOKEN_FOR_PUBLISHING
    )
    closed = await receive(socket)
    assert (closed["Action"], closed["Content"]) == ("session-closed", "Invalid token")
    await assert_closed(socket, 4401)


@pytest.mark.parametrize(
    "asks",
    [{"Protocol": 2}, {"Protocol": 2, "Features": ["html-patch"]}, {"Features": ["refusal-reasons"]}],
    ids=["v2", "v2-other-feature", "v1-listing-it"],
)
async def test_viewer_token_used_to_publish_is_only_invalid_to_a_client_that_did_not_ask(session, asks):
    socket = await sign_in_as("word", session, session["client"], Action="init", **asks)
    # Byte for byte what the server has always sent: no Reason key.
    assert await socket.receive_from(timeout=TIMEOUT) == json.dumps(
        refused_for_role(session, "init", "E1003", "Invalid token")
    )
    await socket.disconnect()


@pytest.mark.parametrize("case", ["unknown token", "another session's viewer token", "word token as viewer"])
async def test_only_a_usable_viewer_token_of_the_session_used_to_publish_gets_a_reason(session, case):
    origin, token = "word", "not-a-real-token"
    if case == "another session's viewer token":
        _, _, token = await sync_to_async(do_create_session)("Other")
    elif case == "word token as viewer":
        origin, token = "client", session["word"]
    socket = await sign_in_as(origin, session, token, Action="init", Protocol=2, Features=["refusal-reasons"])
    error = await receive(socket)
    assert error == refused_for_role(session, "init", "E1003", "Invalid token")
    await socket.disconnect()


async def test_viewer_socket_publishing_is_told_why_when_it_asked(session):
    viewer = await join(session, "client", Features=["refusal-reasons"])
    assert (await receive_action(viewer, "init"))["Features"] == ["refusal-reasons"]
    await receive_action(viewer, "get-html")
    await send(viewer, Action="update-ooxml", Content=flat_opc("Not allowed"))
    assert await receive(viewer) == refused_for_role(
        session,
        "update-ooxml",
        "E1008",
        "Action not allowed for this token",
        Reason=VIEWER_TOKEN_FOR_PUBLISHING,
    )
    # Ending is not publishing: no reason about publishing.
    await send(viewer, Action="end-session")
    assert await receive(viewer) == refused_for_role(
        session, "end-session", "E1008", "Action not allowed for this token"
    )
    await viewer.disconnect()


async def test_features_that_are_no_strings_are_not_granted_and_sign_in_works(session):
    viewer = await join(session, "client", Features=[{}, ["html-patch"], "refusal-reasons"])
    assert (await receive_action(viewer, "init"))["Features"] == ["refusal-reasons"]
    await viewer.disconnect()


async def test_client_token_cannot_publish_or_end(session):
    viewer = await join(session, "client", protocol=None)
    await send(viewer, Action="update-ooxml", Content=flat_opc("Not allowed"))
    assert await viewer.receive_from(timeout=TIMEOUT) == json.dumps(
        refused_for_role(session, "update-ooxml", "E1008", "Action not allowed for this token")
    )
    await send(viewer, Action="end-session")
    assert (await receive(viewer))["ErrorCode"] == "E1008"
    assert (await stored(session["id"])).status == "active"
    await viewer.disconnect()


async def test_oversized_message_is_refused(session, settings):
    settings.COLLAB_MAX_MESSAGE_BYTES = 1000
    word = await join(session, "word", protocol=None)
    # 400 characters of 3 bytes each: counted in UTF-8 bytes, not characters.
    await send(word, Action="update-ooxml", Content="€" * 400)
    error = await receive(word)
    assert error["ErrorCode"] == "E1009" and error["Action"] == "Unknown"
    assert (await receive(word))["Action"] == "session-closed"
    await assert_closed(word, 4413)


@pytest.mark.parametrize(
    "frame", [{"bytes_data": b"\x00\x01"}, {"text_data": "not json"}, {"text_data": "[1, 2]"}]
)
async def test_malformed_frames_get_e1010_and_stay_open(session, frame):
    viewer = await join(session, "client", protocol=None)
    await viewer.send_to(**frame)
    error = await receive(viewer)
    assert error == {
        "Origin": "server",
        "SessionId": session["id"],
        "Action": "Unknown",
        "Content": error["Content"],
        "Success": False,
        "ErrorCode": "E1010",
    }
    await send(viewer, Action="get-html")
    await receive_action(viewer, "get-html")
    await viewer.disconnect()


async def test_silent_socket_times_out(settings):
    settings.COLLAB_AUTH_TIMEOUT = 0.2
    socket = await open_socket()
    error = await receive(socket)
    assert error["ErrorCode"] == "E1012" and error["Action"] == "Unknown"
    assert (await receive(socket))["Action"] == "session-closed"
    await assert_closed(socket, 4401)


async def test_broken_document_keeps_previous_html(session):
    word = await join(session, "word")
    await receive_action(word, "init")
    await send(word, Action="update-ooxml", Content=flat_opc("Good version"))
    await receive_action(word, "get-html")
    await send(word, Action="update-ooxml", Content="<pkg:package broken")
    error = await receive(word)
    assert error["ErrorCode"] == "E2002" and error["Action"] == "update-ooxml"
    assert error["Content"].startswith("Conversion error")
    await send(word, Action="update-ooxml", PayloadType="docx", Content="bm90IGEgemlw")
    assert (await receive(word))["ErrorCode"] == "E2002"
    session_row = await stored(session["id"])
    assert (session_row.version, session_row.html) == (1, "<p>Good version</p>")
    await send(word, Action="get-html")
    assert (await receive_action(word, "get-html"))["Content"] == "<p>Good version</p>"
    await word.disconnect()


async def test_end_session_reaches_every_socket(session):
    viewer, word = await viewer_and_word(session)
    await send(word, Action="end-session")
    for socket in (viewer, word):
        ended = await receive_action(socket, "end-session")
        assert ended["Content"] == "Session ended successfully."
        await receive_action(socket, "session-closed")
        await assert_closed(socket, 1000)
    assert (await stored(session["id"])).status == "ended"


async def test_update_after_session_ended_elsewhere_gets_e1006(session):
    word = await join(session, "word")
    await receive_action(word, "init")
    # Ended without a broadcast reaching this process (another server's database write).
    await sync_to_async(CollabSession.objects.filter(pk=session["id"]).update)(status="ended")
    await send(word, Action="update-ooxml", Content=flat_opc("Too late"))
    assert (await receive(word))["ErrorCode"] == "E1006"
    assert (await receive(word))["Action"] == "session-closed"
    await assert_closed(word, 4410)


async def test_client_reconnects_at_once(session):
    for _ in range(3):
        viewer = await join(session, "client")
        await receive_action(viewer, "init")
        await receive_action(viewer, "get-html")
        await viewer.disconnect()


async def test_foreign_origin_is_refused(session):
    communicator = WebsocketCommunicator(application, "/ws", headers=[(b"origin", b"http://evil.example")])
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert not connected


async def test_own_origin_is_accepted(session):
    headers = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]
    viewer = await open_socket(headers)
    await viewer.disconnect()


async def test_versions_grow_by_one_per_update(session):
    word = await join(session, "word")
    await receive_action(word, "init")
    for number in range(1, 4):
        await send(word, Action="update-ooxml", Content=flat_opc(f"Edit {number}"))
        assert (await receive_action(word, "get-html"))["Version"] == number
        await asyncio.sleep(0)
    revisions = await sync_to_async(list)(session["model"].revisions.values_list("version", flat=True))
    assert sorted(revisions) == [1, 2, 3]
    await word.disconnect()


# The publish-receipts extension


async def answers_until_stored(word, version):
    """The update-ooxml answers a word socket gets until the receipt of `version`, documents skipped."""
    answers = []
    while True:
        message = await receive(word)
        if message["Action"] == "get-html":
            continue
        assert message["Action"] == "update-ooxml", message
        answers.append(message)
        if message.get("Version") == version:
            return answers


async def test_publish_receipt_goes_to_the_sender_alone(session):
    viewer = await join(session, "client")
    await receive_action(viewer, "init")
    await receive_action(viewer, "get-html")
    sender = await join(session, "word", Features=["publish-receipts"])
    assert (await receive_action(sender, "init"))["Features"] == ["publish-receipts"]
    other = await join(session, "word", Features=["publish-receipts"])
    await receive_action(other, "init")
    await send(sender, Action="update-ooxml", Content=flat_opc("Mine"))
    assert await answers_until_stored(sender, 1) == [
        {
            "Origin": "server",
            "SessionId": session["id"],
            "Action": "update-ooxml",
            "Success": True,
            "Version": 1,
        }
    ]
    for socket in (viewer, other):
        assert (await receive_action(socket, "get-html"))["Version"] == 1
        assert await quiet(socket)
    for socket in (viewer, sender, other):
        await socket.disconnect()


@pytest.mark.parametrize(
    "first_message",
    [{}, {"Features": ["html-patch"]}, {"protocol": None, "Features": ["publish-receipts"]}],
    ids=["not-requested", "other-feature", "version-1"],
)
async def test_no_publish_receipt_unless_granted(session, first_message):
    word = await join(session, "word", **first_message)
    if first_message.get("protocol", 2):
        assert "publish-receipts" not in (await receive_action(word, "init"))["Features"]
    await send(word, Action="update-ooxml", Content=flat_opc("Unreceipted"))
    assert (await receive_action(word, "get-html"))["Content"] == "<p>Unreceipted</p>"
    assert await quiet(word)
    await word.disconnect()


async def test_every_update_gets_one_answer_even_when_superseded(session):
    word = await join(session, "word", Features=["publish-receipts"])
    await receive_action(word, "init")
    # Sent at once, after a long first one: those waiting while it converts are replaced by the newest.
    await send(word, Action="update-ooxml", Content=flat_opc(*(f"Paragraph {n}" for n in range(3000))))
    for number in range(1, 4):
        await send(word, Action="update-ooxml", Content=flat_opc(f"Edit {number}"))
    answers = []
    document_version = 0
    while len(answers) < 4:
        message = await receive(word)
        if message["Action"] == "get-html":
            document_version = message["Version"]
        else:
            answers.append(message)
    row = await stored(session["id"])
    while document_version < row.version:
        document_version = (await receive_action(word, "get-html"))["Version"]
    assert row.html == "<p>Edit 3</p>"
    receipts = [answer for answer in answers if "Version" in answer]
    assert [receipt["Version"] for receipt in receipts] == list(range(1, row.version + 1))
    assert answers[-1] == receipts[-1]  # the newest update is never superseded, so it answers last
    superseded = [answer for answer in answers if answer not in receipts]
    assert len(superseded) == 4 - row.version
    for answer in superseded:
        assert answer == {
            "Origin": "server",
            "SessionId": session["id"],
            "Action": "update-ooxml",
            "Success": True,
            "Superseded": True,
        }
    assert await quiet(word)
    await word.disconnect()


async def test_a_presence_frame_is_encoded_once_while_the_counts_hold(session):
    hub = SessionHub(session["id"], get_channel_layer())
    try:
        await hub.started
        first = hub.presence_frame((3, 1))
        assert hub.presence_frame((3, 1)) is first
        assert json.loads(first.text) == {
            "SessionId": session["id"],
            "Origin": "server",
            "Action": "presence",
            "Viewers": 3,
            "Publishers": 1,
            "Success": True,
        }
        changed = hub.presence_frame((4, 1))
        assert changed is not first
        assert json.loads(changed.text)["Viewers"] == 4
    finally:
        hub.stop()


def test_presence_is_announced_less_often_the_larger_the_crowd():
    announcer = PresenceAnnouncer()
    assert announcer.delay("new") == PresenceAnnouncer.DELAY
    for viewers, delay in ((10, 0.25), (1000, 1.0), (100_000, PresenceAnnouncer.MAX_DELAY)):
        announcer._last["s"] = (None, None, (viewers, 1))
        assert announcer.delay("s") == pytest.approx(delay)
