"""Edit in Word (PROTOCOL.md section 10) as the field's plugin and Word use it, and section 11's endpoints.

The plugin posts its editor's HTML with its integration key and opens the answer's Word link;
Word downloads the .docx without credentials, and the add-in in it publishes with the word
token of the document's custom properties; the plugin follows the session on the WebSocket.
"""

import asyncio
import base64
import io
import re
import time
import zipfile

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from sessions_app.models import CollabSession, IntegrationKey, LaunchFile, SessionToken
from sessions_app.services import do_create_integration_key, do_end_session, do_expire_sessions
from tests.documents import corpus_file, flat_opc
from tests.launch_links import (
    DOCX,
    GENERATE,
    custom_properties,
    launch_path,
    post_launch_link,
)
from tests.sockets import assert_closed, open_socket, receive, send

pytestmark = [
    pytest.mark.django_db(transaction=True),
]

HOST = "https://intranet.example"
ERROR_KEYS = {"success", "errorCode", "message", "sessionId", "wordUrl"}


@pytest.fixture
def key():
    """An integration key without a cap, and its secret."""
    return do_create_integration_key("Intranet")


@pytest.fixture
def host_origin(settings):
    """The host application's origin listed in COLLAB_ALLOWED_ORIGINS."""
    settings.COLLAB_ALLOWED_ORIGINS = [HOST]
    settings.CORS_ALLOWED_ORIGINS = [HOST]


def assert_refused(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert (body["success"], body["errorCode"], body["sessionId"], body["wordUrl"]) == (
        False,
        code,
        None,
        None,
    )
    assert body["message"]
    return body["message"]


# The launch link


def test_launch_link_makes_a_session_whose_first_version_is_the_posted_body_sanitised(key):
    _, secret = key
    content = (
        "<h1>Board minutes</h1><p onclick='steal()'>First <strong>point</strong></p>"
        "<script>steal()</script><p><a href='javascript:steal()'>link</a></p>"
    )
    response = post_launch_link(secret, content)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["success"] is True and answer["message"] == "Word link generated successfully."
    session = CollabSession.objects.get(pk=answer["sessionId"])
    assert session.is_active and session.version == 1 and session.integration_key_id == key[0].pk
    assert session.title == "Board minutes"
    assert session.revisions.get().version == 1
    html = session.html
    assert "<h1>Board minutes</h1>" in html and "<strong>point</strong>" in html
    assert '<div dir="rtl">' in html  # the plugin's wrapper keeps the editor's direction
    for hostile in ("script", "steal", "onclick", "javascript"):
        assert hostile not in html
    assert "<html" not in html and "<body" not in html and "<meta" not in html


def test_the_title_is_a_default_without_a_heading(key):
    answer = post_launch_link(key[1], "<p>Only a paragraph</p>").json()
    session = CollabSession.objects.get(pk=answer["sessionId"])
    assert session.title == "Document"
    assert launch_path(answer).endswith("/Document.docx")


def test_the_key_is_accepted_as_a_bearer_token_and_html_in_lower_case(key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key[1]}")
    response = client.post(GENERATE, {"html": "<p>Lower case key</p>"}, format="json")
    assert response.status_code == 200, response.content
    assert "Lower case key" in CollabSession.objects.get(pk=response.json()["sessionId"]).html


def test_the_docx_carries_the_session_and_a_new_word_token_that_publishes(key):
    answer = post_launch_link(key[1], "<h2>Plan</h2><p>Text</p>").json()
    docx = APIClient().get(launch_path(answer)).content
    properties = custom_properties(docx)
    assert properties["sessionId"] == answer["sessionId"]
    token = SessionToken.objects.for_secret(properties["token"])
    assert token.session_id == answer["sessionId"] and token.role == "word" and token.is_usable()
    assert "Edit in Word" in token.label
    # Publishing as Word does, with that token, over the REST API.
    publisher = APIClient()
    publisher.credentials(HTTP_AUTHORIZATION=f"Bearer {properties['token']}")
    published = publisher.put(
        f"/api/sessions/{answer['sessionId']}/document",
        flat_opc("Written in Word").encode(),
        content_type="application/xml",
    )
    assert published.json() == {"version": 2}


# Refusals, each in section 10's shape


def test_missing_unknown_and_revoked_keys_are_refused(key):
    assert_refused(post_launch_link(None), 401, "H1002")
    assert_refused(post_launch_link("not-a-key"), 401, "H1002")
    assert_refused(post_launch_link(""), 401, "H1002")
    session_token = SessionToken.objects.filter(role="word").first()
    assert session_token is None  # nothing was made by the refused requests
    IntegrationKey.objects.filter(pk=key[0].pk).update(revoked=True)
    assert_refused(post_launch_link(key[1]), 401, "H1002")
    assert CollabSession.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [{}, {"Html": ""}, {"Html": "   "}, {"Html": 42}, {"Text": "<p>x</p>"}, ["<p>x</p>"], "<p>x</p>"],
    ids=["empty", "empty-html", "blank-html", "number", "other-key", "list", "string"],
)
def test_a_body_without_html_is_an_invalid_request(key, body):
    assert_refused(post_launch_link(key[1], body=body), 400, "H1001")
    assert CollabSession.objects.count() == 0


def test_a_body_that_is_not_json_is_an_invalid_request(key):
    client = APIClient(HTTP_TOKEN=key[1])
    for body in (b"{not json", b"\xff\xfe", b'{"Html": "<p>x</p>"} trailing'):
        assert_refused(client.post(GENERATE, body, content_type="application/json"), 400, "H1001")
    assert_refused(client.post(GENERATE, b"<p>x</p>", content_type="text/html"), 400, "H1001")
    assert_refused(client.get(GENERATE), 405, "H1001")


def test_a_body_over_the_message_limit_is_413(key, settings):
    settings.COLLAB_MAX_MESSAGE_BYTES = 10_000
    assert post_launch_link(key[1], "<p>" + "x" * 8_000 + "</p>").status_code == 200
    message = assert_refused(post_launch_link(key[1], "<p>" + "x" * 10_000 + "</p>"), 413, "H1001")
    assert "10000" in message


def test_html_no_word_document_can_be_made_of_is_refused_clearly(key):
    deep = "<div>" * 5_000 + "text" + "</div>" * 5_000
    message = assert_refused(post_launch_link(key[1], deep), 400, "H1007")
    assert "nested" in message or "deep" in message
    assert CollabSession.objects.count() == 0


def test_a_key_at_its_cap_may_not_start_a_session(key):
    capped, secret = do_create_integration_key("Capped", max_sessions=2)
    first = post_launch_link(secret).json()["sessionId"]
    assert post_launch_link(secret).status_code == 200
    message = assert_refused(post_launch_link(secret), 400, "H1006")
    assert "2" in message
    # Other keys are not held back, and an ended session makes room again.
    assert post_launch_link(key[1]).status_code == 200
    do_end_session(first)
    assert post_launch_link(secret).status_code == 200
    assert_refused(post_launch_link(secret), 400, "H1006")
    assert CollabSession.objects.filter(integration_key=capped, status="active").count() == 2


def test_the_rate_limit_is_per_key(key, settings):
    settings.COLLAB_INTEGRATION_KEY_RATE = "3/hour"
    for _ in range(3):
        assert post_launch_link(key[1]).status_code == 200
    refused = post_launch_link(key[1])
    assert_refused(refused, 429, "H1008")
    assert 0 < int(refused["Retry-After"]) <= 3600
    _, other = do_create_integration_key("Another host")
    assert post_launch_link(other).status_code == 200


# CORS for the host application's page


def test_cors_allows_a_listed_origin_on_answers_and_errors(key, host_origin):
    made = post_launch_link(key[1], HTTP_ORIGIN=HOST)
    assert made.status_code == 200 and made["Access-Control-Allow-Origin"] == HOST
    refused = post_launch_link("wrong", HTTP_ORIGIN=HOST)
    assert refused.status_code == 401 and refused["Access-Control-Allow-Origin"] == HOST
    capped, secret = do_create_integration_key("Capped", max_sessions=1)
    post_launch_link(secret)
    at_cap = post_launch_link(secret, HTTP_ORIGIN=HOST)
    assert at_cap.json()["errorCode"] == "H1006" and at_cap["Access-Control-Allow-Origin"] == HOST


def test_cors_refuses_an_origin_not_listed(key, host_origin):
    response = post_launch_link(key[1], HTTP_ORIGIN="https://attacker.example")
    assert "Access-Control-Allow-Origin" not in response


def preflight(origin):
    return APIClient().options(
        GENERATE,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,token",
    )


def test_preflight_allows_the_token_and_content_type_headers_for_a_listed_origin(host_origin):
    allowed = preflight(HOST)
    assert allowed.status_code == 200
    assert allowed["Access-Control-Allow-Origin"] == HOST
    headers = {name.strip() for name in allowed["Access-Control-Allow-Headers"].split(",")}
    assert {"token", "content-type"} <= headers
    assert "POST" in allowed["Access-Control-Allow-Methods"]
    refused = preflight("https://attacker.example")
    assert "Access-Control-Allow-Origin" not in refused


# Launch files


def test_launch_file_is_served_to_get_and_head_without_credentials(key):
    answer = post_launch_link(key[1], "<h1>Résumé: plan</h1>").json()
    path = launch_path(answer)
    assert answer["documentUrl"].endswith(path)
    # 256 random bits, not the session id.
    file_id = path.split("/")[3]
    assert len(file_id) >= 43 and answer["sessionId"] not in path
    anonymous = APIClient()
    got = anonymous.get(path)
    assert got.status_code == 200
    assert got["Content-Type"] == DOCX
    assert got["Cache-Control"] == "no-store"
    assert got["Content-Disposition"] == "attachment; filename*=utf-8''R%C3%A9sum%C3%A9%20plan.docx"
    assert zipfile.ZipFile(io.BytesIO(got.content)).testzip() is None
    head = anonymous.head(path)
    assert head.status_code == 200 and head.content == b""
    assert head["Content-Length"] == str(len(got.content)) and head["Cache-Control"] == "no-store"
    assert head["Content-Type"] == DOCX


def test_ascii_titles_give_a_plain_file_name(key):
    answer = post_launch_link(key[1], "<h1>Plan: Q3/Q4?</h1>").json()
    got = APIClient().get(launch_path(answer))
    assert got["Content-Disposition"] == 'attachment; filename="Plan Q3 Q4.docx"'


def test_launch_file_is_gone_once_its_session_ends(key):
    answer = post_launch_link(key[1]).json()
    path = launch_path(answer)
    assert APIClient().get(path).status_code == 200
    do_end_session(answer["sessionId"])
    assert APIClient().get(path).status_code == 404
    assert APIClient().head(path).status_code == 404
    assert not LaunchFile.objects.filter(session_id=answer["sessionId"]).exists()


def test_launch_file_is_gone_after_its_lifetime(key, settings):
    settings.COLLAB_LAUNCH_LINK_TTL = 1
    answer = post_launch_link(key[1]).json()
    path = launch_path(answer)
    assert APIClient().get(path).status_code == 200
    time.sleep(1.2)
    assert APIClient().get(path).status_code == 404
    assert CollabSession.objects.get(pk=answer["sessionId"]).is_active  # the session goes on
    do_expire_sessions()
    assert not LaunchFile.objects.exists()  # and the sweep deletes the bytes


def test_unknown_launch_files_are_not_found(key):
    answer = post_launch_link(key[1]).json()
    path = launch_path(answer)
    file_id = path.split("/")[3]
    other = path.replace(file_id, file_id[:-1] + ("A" if file_id[-1] != "A" else "B"))
    assert APIClient().get(other).status_code == 404
    assert APIClient().post(path).status_code == 405


# The plugin and Word on the WebSocket


async def test_the_plugin_follows_what_word_publishes_until_word_ends_the_session(key, host_origin):
    answer = await database_sync_to_async(lambda: post_launch_link(key[1], "<p>From the editor</p>").json())()
    session_id = answer["sessionId"]
    docx = await database_sync_to_async(lambda: APIClient().get(launch_path(answer)).content)()
    word_token = custom_properties(docx)["token"]
    plugin = await open_socket(headers=[(b"origin", HOST.encode())])
    await send(plugin, Origin="client", Token=key[1], SessionId=session_id, Action="get-html")
    first = await receive(plugin)
    assert (first["Action"], first["Success"], first["SessionId"]) == ("get-html", True, session_id)
    assert "From the editor" in first["Content"]
    # The add-in, as the field's does: update-ooxml with the document's token in its first message.
    word = await open_socket()
    await send(
        word,
        Origin="word",
        Token=word_token,
        SessionId=session_id,
        Action="update-ooxml",
        Content=flat_opc("Edited"),
    )
    assert "Edited" in (await receive(word))["Content"]
    update = await receive(plugin)
    assert (update["Action"], update["SessionId"]) == ("get-html", session_id)
    assert "Edited" in update["Content"] and "Version" not in update  # a version 1 client
    await send(word, Action="end-session")
    ended = await receive(plugin)
    assert (ended["Action"], ended["Success"], ended["SessionId"]) == ("end-session", True, session_id)
    assert (await receive(plugin))["Action"] == "session-closed"
    await assert_closed(plugin, 1000)
    await word.disconnect()
    gone = await database_sync_to_async(lambda: APIClient().get(launch_path(answer)).status_code)()
    assert gone == 404


async def test_a_page_of_an_origin_not_listed_cannot_open_the_socket(host_origin):
    from channels.testing import WebsocketCommunicator

    from collab.asgi import application

    socket = WebsocketCommunicator(application, "/ws", headers=[(b"origin", b"https://attacker.example")])
    connected, _ = await socket.connect(timeout=10)
    assert not connected
    await asyncio.sleep(0)


# Section 11's conversion endpoints


def converter(secret=None):
    client = APIClient()
    if secret is not None:
        client.credentials(HTTP_TOKEN=secret)
    return client


def test_html_to_docx_with_a_key(key):
    response = converter(key[1]).post("/api/convert/html-docx", {"html": "<h1>Title</h1>"}, format="json")
    assert response.status_code == 200
    assert response["Content-Type"] == DOCX
    assert response["Content-Disposition"] == 'attachment; filename="Document.docx"'
    assert zipfile.ZipFile(io.BytesIO(response.content)).testzip() is None
    empty = converter(key[1]).post("/api/convert/html-docx", {"html": ""}, format="json")
    assert (empty.status_code, empty.json()) == (
        400,
        {"success": False, "message": "HTML content cannot be empty."},
    )


def test_conversions_need_a_key_or_a_staff_login(client, fast_password_hashing):
    for response in (
        converter().post("/api/convert/html-docx", {"html": "<p>x</p>"}, format="json"),
        converter("wrong").post("/api/convert/html-docx", {"html": "<p>x</p>"}, format="json"),
        converter().post("/api/convert/docx-html", {}),
    ):
        assert response.status_code == 401
        body = response.json()
        assert set(body) == {"success", "message"} and body["success"] is False and body["message"]
    User.objects.create_user("staff", password="staff-password", is_staff=True)
    staff = APIClient()
    staff.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"staff:staff-password").decode())
    assert staff.post("/api/convert/html-docx", {"html": "<p>x</p>"}, format="json").status_code == 200
    client.login(username="staff", password="staff-password")
    assert client.post(
        "/api/convert/html-docx", {"html": "<p>x</p>"}, content_type="application/json"
    ).status_code == (200)


def docx_to_html(secret, content, name="document.docx"):
    upload = io.BytesIO(content)
    upload.name = name
    return converter(secret).post("/api/convert/docx-html", {"file": upload}, format="multipart")


def with_default_language(path, bidi):
    """A corpus document whose default right-to-left language (w:docDefaults) is `bidi`."""
    source = zipfile.ZipFile(corpus_file(path))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in source.infolist():
            data = source.read(entry)
            if entry.filename == "word/styles.xml":
                data, count = re.subn(
                    rb'(<w:docDefaults>.*?<w:lang [^>]*w:bidi=")[^"]*',
                    rb"\g<1>" + bidi,
                    data,
                    count=1,
                    flags=re.DOTALL,
                )
                assert count == 1
            archive.writestr(entry, data)
    return out.getvalue()


def test_docx_to_html_gives_the_body_and_the_document_language(key):
    english = docx_to_html(key[1], corpus_file("docx/mammoth-simple-list.docx").read_bytes())
    assert english.status_code == 200, english.content
    assert set(english.json()) == {"html", "document_language"}
    assert "<li>" in english.json()["html"] and english.json()["document_language"] == "en-GB"
    persian = docx_to_html(key[1], with_default_language("docx/oxpt-hebrew.docx", b"fa-IR"))
    assert 'dir="rtl"' in persian.json()["html"] and persian.json()["document_language"] == "fa-IR"
    german = docx_to_html(key[1], corpus_file("docx/docx4j-tables.docx").read_bytes())
    assert german.json()["document_language"] == "de-DE"  # its defaults' w:bidi is Word's ar-SA
    nameless = docx_to_html(key[1], corpus_file("docx/mammoth-empty.docx").read_bytes())
    assert nameless.json()["document_language"] == ""


def test_docx_to_html_refusals(key):
    empty = docx_to_html(key[1], b"")
    assert (empty.status_code, empty.json()) == (
        400,
        {"success": False, "message": "DOCX file cannot be empty."},
    )
    missing = converter(key[1]).post("/api/convert/docx-html", {}, format="multipart")
    assert missing.status_code == 400 and missing.json()["message"] == "DOCX file cannot be empty."
    broken = docx_to_html(key[1], b"PK\x03\x04 not really a zip")
    assert broken.status_code == 422
    assert broken.json()["error"] == {"code": "E2002", "message": "Conversion error: damaged archive"}
    text = docx_to_html(key[1], b"Just some text", name="notes.txt")
    assert text.json()["error"]["message"] == "Conversion error: this is plain text, not a Word document"
    legacy = docx_to_html(key[1], corpus_file("docx/poi-encrypted-password-pass.docx").read_bytes())
    assert "password-protected" in legacy.json()["error"]["message"]


def test_the_sweep_keeps_launch_files_of_live_links(key):
    answer = post_launch_link(key[1]).json()
    do_expire_sessions(timezone.now())
    assert APIClient().get(launch_path(answer)).status_code == 200
