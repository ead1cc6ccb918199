"""The REST API of PROTOCOL.md section 6, through DRF's APIClient and, for live effects, real sockets."""

import base64
import json
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from rest_framework.test import APIClient

from sessions_app.access import access_session_by_token
from sessions_app.models import CollabSession, Revision, SessionToken
from sessions_app.protocol import SESSION_ENDED, VIEWER_TOKEN_FOR_PUBLISHING
from sessions_app.services import do_create_session, do_end_session, do_issue_token, publish_code_expiry
from tests.documents import corpus_file, flat_opc, store_version
from tests.sockets import assert_closed, join_with_get_html, receive

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

STAFF_PASSWORD = "staff-password-for-tests"  # noqa: S105
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture
def staff_user():
    """Staff with every permission on collab's models (tests/test_api_security.py checks each one)."""
    user = User.objects.create_user("staff", password=STAFF_PASSWORD, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="sessions_app"))
    return user


@pytest.fixture
def anonymous():
    return APIClient()


@pytest.fixture
def staff(staff_user):
    """An API client authenticated as staff with HTTP Basic."""
    client = APIClient()
    credentials = base64.b64encode(f"staff:{STAFF_PASSWORD}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {credentials}")
    return client


@pytest.fixture
def other_session(make_session):
    return make_session("Someone else's")


def bearer(secret):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]["message"]


# Creating, listing and reading sessions


def test_staff_creates_session_and_sees_tokens_once(staff):
    response = staff.post("/api/sessions/", {"title": "Board meeting"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id",
        "title",
        "status",
        "version",
        "word_token",
        "client_token",
        "viewer_url",
        "ws_url",
    }
    assert body["title"] == "Board meeting" and body["status"] == "active" and body["version"] == 0
    assert body["viewer_url"] == f"http://127.0.0.1:8000/s/{body['id']}/#token={body['client_token']}"
    assert body["ws_url"] == "ws://127.0.0.1:8000/ws"
    assert access_session_by_token(body["id"], body["word_token"], "word").role == "word"
    assert access_session_by_token(body["id"], body["client_token"], "client").role == "client"
    # Nowhere else, ever: not in the session's own page, not in the list.
    for later in (staff.get(f"/api/sessions/{body['id']}/"), staff.get("/api/sessions/")):
        assert body["word_token"] not in later.content.decode()
        assert body["client_token"] not in later.content.decode()


def test_new_tokens_get_the_default_lifetime_of_their_role(staff, settings):
    settings.COLLAB_WORD_TOKEN_DAYS = 3
    settings.COLLAB_CLIENT_TOKEN_DAYS = 0
    session_id = staff.post("/api/sessions/", {"title": "Lifetimes"}, format="json").json()["id"]
    tokens = {token.role: token for token in SessionToken.objects.filter(session_id=session_id)}
    assert abs(tokens["word"].expires_at - (timezone.now() + timedelta(days=3))) < timedelta(minutes=1)
    assert tokens["client"].expires_at is None


def test_a_new_sessions_publish_code_gets_the_publish_code_lifetime(staff, session, settings):
    settings.COLLAB_PUBLISH_CODE_HOURS = 2
    body = staff.post("/api/sessions/", {"title": "Short code"}, format="json").json()
    word = access_session_by_token(body["id"], body["word_token"], "word")
    assert abs(word.expires_at - (timezone.now() + timedelta(hours=2))) < timedelta(minutes=1)
    # A word token issued for a script, shown as no publish code, keeps the word tokens' lifetime.
    issued = staff.post(f"/api/sessions/{session['id']}/tokens/", {"role": "word"}, format="json").json()
    assert SessionToken.objects.get(pk=issued["id"]).expires_at - timezone.now() > timedelta(days=29)


@pytest.mark.parametrize(
    ("word_days", "code_hours", "lifetime"), [(30, 0, 720), (1, 48, 24), (0, 5, 5), (0, 0, None)]
)
def test_publish_code_lifetime_is_the_sooner_of_the_two_settings(word_days, code_hours, lifetime, settings):
    settings.COLLAB_WORD_TOKEN_DAYS, settings.COLLAB_PUBLISH_CODE_HOURS = word_days, code_hours
    now = timezone.now()
    assert publish_code_expiry(now) == (None if lifetime is None else now + timedelta(hours=lifetime))


def test_create_session_title_is_optional(staff):
    response = staff.post("/api/sessions/", {}, format="json")
    assert response.status_code == 201 and response.json()["title"] == ""


@pytest.mark.parametrize(
    ("body", "content_type", "field"),
    [
        (json.dumps({"title": "x" * 201}), "application/json", "title"),
        (json.dumps({"title": ["a", "list"]}), "application/json", "title"),
        (json.dumps(["not", "an", "object"]), "application/json", None),
        ("{not json", "application/json", None),
    ],
)
def test_create_session_validates_its_body(staff, body, content_type, field):
    response = staff.generic("POST", "/api/sessions/", body, content_type=content_type)
    message = assert_error(response, 400, "E1010")
    if field:
        assert message.startswith(f"{field}:")
    assert not CollabSession.objects.exists()


def test_create_session_refuses_other_content_types(staff):
    response = staff.generic(
        "POST", "/api/sessions/", "title=x", content_type="application/x-www-form-urlencoded"
    )
    assert_error(response, 415, "E1010")


def test_creating_needs_staff_credentials(anonymous, staff_user, session):
    response = anonymous.post("/api/sessions/", {"title": "x"}, format="json")
    assert_error(response, 401, "E1002")
    assert response["WWW-Authenticate"] == 'Bearer realm="collab"'

    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"staff:wrong").decode())
    assert_error(wrong.post("/api/sessions/", {"title": "x"}, format="json"), 401, "E1003")

    User.objects.create_user("visitor", password=STAFF_PASSWORD)  # not staff
    visitor = APIClient()
    visitor.credentials(
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"visitor:{STAFF_PASSWORD}".encode()).decode()
    )
    assert_error(visitor.post("/api/sessions/", {"title": "x"}, format="json"), 403, "E1008")

    # A session token is no staff credential.
    assert_error(bearer(session["word"]).post("/api/sessions/", {"title": "x"}, format="json"), 403, "E1008")
    assert_error(bearer("not-a-token").get("/api/sessions/"), 401, "E1003")
    assert CollabSession.objects.count() == 1


def test_staff_may_use_a_django_login_session(staff_user, session):
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="staff", password=STAFF_PASSWORD)
    assert client.get("/api/sessions/").json()["count"] == 1
    # Unsafe methods with a login session need the CSRF token, as everywhere in Django.
    assert_error(client.post("/api/sessions/", {"title": "x"}, format="json"), 403, "E1008")


def test_list_sessions_newest_first_paginated_and_filtered(staff, settings):
    settings.COLLAB_API_PAGE_SIZE = 2
    ids = [do_create_session(f"Session {n}")[0].id for n in range(3)]
    do_end_session(ids[0])
    first = staff.get("/api/sessions/").json()
    assert first["count"] == 3 and first["next"] and first["previous"] is None
    assert [row["id"] for row in first["results"]] == [ids[2], ids[1]]
    assert set(first["results"][0]) == {
        "id",
        "title",
        "status",
        "version",
        "viewers",
        "publishers",
        "created_at",
        "updated_at",
        "ended_at",
        "end_reason",
        "integration_key",
    }
    second = staff.get(first["next"]).json()
    assert [row["id"] for row in second["results"]] == [ids[0]]
    assert second["results"][0]["status"] == "ended"
    ended = staff.get("/api/sessions/", {"status": "ended"}).json()
    assert [row["id"] for row in ended["results"]] == [ids[0]]
    assert staff.get("/api/sessions/", {"page_size": 3}).json()["next"] is None
    assert_error(staff.get("/api/sessions/", {"status": "sleeping"}), 400, "E1010")
    assert_error(staff.get("/api/sessions/", {"page": 9}), 404, "E1001")


def test_session_detail_lists_tokens_without_secrets(staff, session):
    response = staff.get(f"/api/sessions/{session['id']}/")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == session["id"] and body["status"] == "active"
    assert body["viewers"] == 0 and body["publishers"] == 0
    tokens = body["tokens"]
    assert sorted(token["role"] for token in tokens) == ["client", "word"]
    assert {token["prefix"] for token in tokens} == {session["word"][:8], session["client"][:8]}
    assert session["word"] not in response.content.decode()
    assert all("token" not in token and "digest" not in token for token in tokens)


def test_unknown_session_and_other_paths_answer_json_404(staff):
    # An unknown session in the one wording of collab's own surfaces.
    assert assert_error(staff.get("/api/sessions/no-such-session/"), 404, "E1001") == f"{SESSION_ENDED}."
    assert_error(staff.get("/api/sessions/not%20an%20id/"), 404, "E1001")
    assert_error(staff.get("/api/sessions/%00/html"), 404, "E1001")
    assert_error(staff.post("/api/nothing-here/"), 404, "E1001")
    assert_error(staff.get("/api/sessions/x/tokens/12/"), 405, "E1004")


def test_a_token_sees_its_own_session_only(session, other_session):
    own, foreign = f"/api/sessions/{session['id']}", f"/api/sessions/{other_session['id']}"
    word = bearer(session["word"])
    # Another session's id and an unknown id look the same.
    for path in (f"{foreign}/html", "/api/sessions/no-such-session/html"):
        assert_error(word.get(path), 404, "E1001")
    assert_error(word.post(f"{foreign}/end/"), 404, "E1001")
    assert_error(word.get(f"{foreign}/"), 404, "E1001")
    assert_error(word.get(f"{foreign}/revisions/"), 404, "E1001")
    assert_error(word.post(f"{foreign}/tokens/", {"role": "client"}, format="json"), 404, "E1001")
    # Its own session, but staff-only endpoints.
    assert_error(word.get(f"{own}/"), 403, "E1008")
    assert_error(word.get(f"{own}/revisions/"), 403, "E1008")
    assert_error(word.post(f"{own}/tokens/", {"role": "client"}, format="json"), 403, "E1008")
    assert SessionToken.objects.filter(session_id=session["id"]).count() == 2


@pytest.mark.django_db(transaction=True)
async def test_session_detail_counts_live_sockets(staff, session):
    viewer = await join_with_get_html(session["id"], session["client"], "client")
    other_viewer = await join_with_get_html(session["id"], session["client"], "client")
    word = await join_with_get_html(session["id"], session["word"], "word")
    body = (await database_sync_to_async(staff.get)(f"/api/sessions/{session['id']}/")).json()
    assert (body["viewers"], body["publishers"]) == (2, 1)
    listed = (await database_sync_to_async(staff.get)("/api/sessions/")).json()["results"][0]
    assert (listed["viewers"], listed["publishers"]) == (2, 1)
    await other_viewer.disconnect()
    body = (await database_sync_to_async(staff.get)(f"/api/sessions/{session['id']}/")).json()
    assert (body["viewers"], body["publishers"]) == (1, 1)
    await viewer.disconnect()
    await word.disconnect()


# Tokens


def test_staff_issues_token_with_explicit_expiry(staff, session):
    response = staff.post(
        f"/api/sessions/{session['id']}/tokens/",
        {"role": "client", "label": "projector", "expires_in": 3600},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "token", "role", "expires_at"}
    token = SessionToken.objects.get(pk=body["id"])
    assert (token.role, token.label, token.prefix) == ("client", "projector", body["token"][:8])
    assert abs(token.expires_at - (timezone.now() + timedelta(hours=1))) < timedelta(minutes=1)
    assert access_session_by_token(session["id"], body["token"], "client").pk == token.pk
    assert bearer(body["token"]).get(f"/api/sessions/{session['id']}/html").status_code == 200
    # The secret is not shown again.
    assert body["token"] not in staff.get(f"/api/sessions/{session['id']}/").content.decode()


def test_issued_token_lifetime_defaults_and_never(staff, session, settings):
    settings.COLLAB_WORD_TOKEN_DAYS = 7
    url = f"/api/sessions/{session['id']}/tokens/"
    default = staff.post(url, {"role": "word"}, format="json").json()
    assert abs(
        SessionToken.objects.get(pk=default["id"]).expires_at - (timezone.now() + timedelta(days=7))
    ) < (timedelta(minutes=1))
    never = staff.post(url, {"role": "word", "expires_in": 0}, format="json").json()
    assert never["expires_at"] is None
    assert SessionToken.objects.get(pk=never["id"]).can_end_session


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "role"),
        ({"role": "admin"}, "role"),
        ({"role": "client", "expires_in": -5}, "expires_in"),
        ({"role": "client", "expires_in": "soon"}, "expires_in"),
        ({"role": "client", "label": "x" * 101}, "label"),
        ({"role": "client", "label": "nul\u0000"}, "label"),
    ],
)
def test_issue_token_validates_its_body(staff, session, body, field):
    response = staff.post(f"/api/sessions/{session['id']}/tokens/", body, format="json")
    assert assert_error(response, 400, "E1010").startswith(f"{field}:")
    assert SessionToken.objects.filter(session_id=session["id"]).count() == 2


def test_issue_token_for_unknown_session_is_404(staff):
    assert_error(staff.post("/api/sessions/nope/tokens/", {"role": "word"}, format="json"), 404, "E1001")


def test_expired_token_is_refused_by_the_api(session):
    token, secret = do_issue_token(
        session["model"], "client", expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert_error(bearer(secret).get(f"/api/sessions/{session['id']}/html"), 401, "E1003")


def test_staff_revokes_token_and_the_api_refuses_it_at_once(staff, session):
    client = bearer(session["client"])
    assert client.get(f"/api/sessions/{session['id']}/html").status_code == 200
    token = SessionToken.objects.get(session_id=session["id"], role="client")
    response = staff.delete(f"/api/sessions/{session['id']}/tokens/{token.pk}/")
    assert response.status_code == 204 and response.content == b""
    assert SessionToken.objects.get(pk=token.pk).revoked
    assert_error(client.get(f"/api/sessions/{session['id']}/html"), 401, "E1003")
    # Revoking again changes nothing.
    assert staff.delete(f"/api/sessions/{session['id']}/tokens/{token.pk}/").status_code == 204


def test_revoke_finds_tokens_of_that_session_only(staff, session, other_session):
    foreign = SessionToken.objects.get(session_id=other_session["id"], role="word")
    assert_error(staff.delete(f"/api/sessions/{session['id']}/tokens/{foreign.pk}/"), 404, "E1001")
    assert_error(staff.delete(f"/api/sessions/{session['id']}/tokens/999999/"), 404, "E1001")
    assert not SessionToken.objects.filter(revoked=True).exists()
    # A token cannot revoke, not even itself.
    own = SessionToken.objects.get(session_id=session["id"], role="word")
    assert_error(
        bearer(session["word"]).delete(f"/api/sessions/{session['id']}/tokens/{own.pk}/"), 403, "E1008"
    )
    assert_error(APIClient().delete(f"/api/sessions/{session['id']}/tokens/{own.pk}/"), 401, "E1002")


@pytest.mark.django_db(transaction=True)
async def test_revoking_closes_live_sockets_of_that_token(staff, session):
    word = await join_with_get_html(session["id"], session["word"], "word")
    viewer = await join_with_get_html(session["id"], session["client"], "client")
    token = await database_sync_to_async(SessionToken.objects.get)(session_id=session["id"], role="word")
    response = await database_sync_to_async(staff.delete)(f"/api/sessions/{session['id']}/tokens/{token.pk}/")
    assert response.status_code == 204
    error = await receive(word)
    assert error["ErrorCode"] == "E1003" and error["Success"] is False
    assert (await receive(word))["Action"] == "session-closed"
    await assert_closed(word, 4401)
    # The viewer's token still works.
    assert await viewer.receive_nothing(0.2)
    await viewer.disconnect()


# Ending


@pytest.mark.django_db(transaction=True)
async def test_ending_over_the_api_reaches_live_sockets(staff, session):
    viewer = await join_with_get_html(session["id"], session["client"], "client")
    response = await database_sync_to_async(staff.post)(f"/api/sessions/{session['id']}/end/")
    assert response.status_code == 200
    assert response.json()["status"] == "ended"
    ended = await receive(viewer)
    assert (ended["Action"], ended["Content"]) == ("end-session", "Session ended successfully.")
    closed = await receive(viewer)
    assert (closed["Action"], closed["Content"]) == ("session-closed", "Session ended successfully.")
    await assert_closed(viewer, 1000)


def test_word_token_may_end_its_session_and_client_token_may_not(session):
    url = f"/api/sessions/{session['id']}/end/"
    # Not publishing: the refusal says nothing of publishing.
    assert (
        assert_error(bearer(session["client"]).post(url), 403, "E1008")
        == "Action not allowed for this token."
    )
    assert CollabSession.objects.get(pk=session["id"]).is_active
    response = bearer(session["word"]).post(url)
    assert response.status_code == 200
    stored = CollabSession.objects.get(pk=session["id"])
    assert stored.status == "ended" and stored.ended_at is not None
    # Ending an ended session changes nothing.
    again = bearer(session["word"]).post(url)
    assert again.status_code == 200 and again.json()["ended_at"] == response.json()["ended_at"]


def test_ending_needs_credentials(anonymous, session):
    assert_error(anonymous.post(f"/api/sessions/{session['id']}/end/"), 401, "E1002")
    assert_error(bearer("x" * 43).post(f"/api/sessions/{session['id']}/end/"), 401, "E1003")
    assert CollabSession.objects.get(pk=session["id"]).is_active


# Reading the HTML


def test_html_has_version_etag_and_answers_304(session, staff):
    url = f"/api/sessions/{session['id']}/html"
    viewer = bearer(session["client"])
    empty = viewer.get(url)
    assert empty.status_code == 200 and empty.content == b"" and empty["ETag"] == '"0"'
    store_version(session["id"], "<p>First</p>")
    first = viewer.get(url)
    assert first.status_code == 200
    assert first["Content-Type"] == "text/html; charset=utf-8"
    assert first.content == b"<p>First</p>"
    assert first["ETag"] == '"1"'
    assert "sandbox" in first["Content-Security-Policy"]
    unchanged = viewer.get(url, headers={"If-None-Match": first["ETag"]})
    assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged["ETag"] == '"1"'
    assert viewer.get(url, headers={"If-None-Match": 'W/"1"'}).status_code == 304
    store_version(session["id"], "<p>Second</p>")
    changed = viewer.get(url, headers={"If-None-Match": first["ETag"]})
    assert changed.status_code == 200 and changed.content == b"<p>Second</p>" and changed["ETag"] == '"2"'
    # The word token and staff may read it too.
    assert bearer(session["word"]).get(url).content == b"<p>Second</p>"
    assert staff.get(url).content == b"<p>Second</p>"


def test_html_needs_a_credential(anonymous, session):
    assert_error(anonymous.get(f"/api/sessions/{session['id']}/html"), 401, "E1002")
    response = APIClient().get(f"/api/sessions/{session['id']}/html", headers={"Authorization": "Bearer"})
    assert_error(response, 401, "E1003")


def test_html_of_ended_session_stays_readable(session):
    store_version(session["id"], "<p>Last words</p>")
    do_end_session(session["id"])
    assert (
        bearer(session["client"]).get(f"/api/sessions/{session['id']}/html").content == b"<p>Last words</p>"
    )


# Publishing over HTTP


@pytest.mark.django_db(transaction=True)
async def test_publishing_over_http_reaches_a_live_viewer(session):
    viewer = await join_with_get_html(session["id"], session["client"], "client")
    response = await database_sync_to_async(bearer(session["word"]).put)(
        f"/api/sessions/{session['id']}/document",
        flat_opc("Published over HTTP").encode(),
        content_type="application/xml",
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"version": 1}
    update = await receive(viewer)
    assert (update["Action"], update["Content"]) == ("get-html", "<p>Published over HTTP</p>")
    stored = await database_sync_to_async(CollabSession.objects.get)(pk=session["id"])
    assert (stored.version, stored.html) == (1, "<p>Published over HTTP</p>")
    assert await database_sync_to_async(Revision.objects.filter(session_id=session["id"], version=1).exists)()
    await viewer.disconnect()


@pytest.mark.django_db(transaction=True)
def test_publishing_a_docx_file(session):
    body = corpus_file("docx/mammoth-single-paragraph.docx").read_bytes()
    response = bearer(session["word"]).put(f"/api/sessions/{session['id']}/document", body, content_type=DOCX)
    assert response.status_code == 200, response.content
    assert response.json() == {"version": 1}
    assert CollabSession.objects.get(pk=session["id"]).html.startswith("<p>")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<w:document>not a package</w:document>", "application/xml"),
        (b"PK\x03\x04 not really a zip", DOCX),
        (b"\xff\xfe\x00bad", "application/xml"),
        (b"   ", "application/xml"),
        (b"", DOCX),
    ],
)
def test_bad_document_is_422_and_changes_nothing(session, body, content_type):
    store_version(session["id"], "<p>Kept</p>")
    response = bearer(session["word"]).put(
        f"/api/sessions/{session['id']}/document", body, content_type=content_type
    )
    assert assert_error(response, 422, "E2002").startswith("Conversion error")
    stored = CollabSession.objects.get(pk=session["id"])
    assert (stored.version, stored.html) == (1, "<p>Kept</p>")


def test_publishing_needs_a_document_content_type(session):
    url = f"/api/sessions/{session['id']}/document"
    word = bearer(session["word"])
    assert_error(word.put(url, b"hello", content_type="text/plain"), 415, "E1010")
    # A .docx sent as a plain octet stream is told which types are accepted.
    message = assert_error(
        word.put(url, b"PK\x03\x04", content_type="application/octet-stream"), 415, "E1010"
    )
    assert message.startswith("application/octet-stream is not a Word document's type")
    assert "application/vnd.openxmlformats-officedocument.wordprocessingml.document" in message
    assert "application/xml" in message
    assert_error(word.generic("PUT", url, b"hello"), 415, "E1010")
    assert_error(word.put(url, {"Content": "x"}, format="json"), 415, "E1010")


def test_publishing_needs_the_sessions_word_token(staff, session, other_session, anonymous):
    url = f"/api/sessions/{session['id']}/document"
    body = flat_opc("No").encode()
    refusal = assert_error(
        bearer(session["client"]).put(url, body, content_type="application/xml"), 403, "E1008"
    )
    # The viewer's token is named as such.
    assert refusal == f"Action not allowed for this token: {VIEWER_TOKEN_FOR_PUBLISHING}."
    assert_error(staff.put(url, body, content_type="application/xml"), 403, "E1008")
    foreign = assert_error(
        bearer(other_session["word"]).put(url, body, content_type="application/xml"), 404, "E1001"
    )
    assert foreign == f"{SESSION_ENDED}."
    assert_error(anonymous.put(url, body, content_type="application/xml"), 401, "E1002")
    assert CollabSession.objects.get(pk=session["id"]).version == 0


def test_oversized_document_is_413(session, settings):
    settings.COLLAB_MAX_MESSAGE_BYTES = 1000
    response = bearer(session["word"]).put(
        f"/api/sessions/{session['id']}/document",
        b"<x>" + b"a" * 2000 + b"</x>",
        content_type="application/xml",
    )
    assert "1000" in assert_error(response, 413, "E1009")


@pytest.mark.django_db(transaction=True)
def test_publishing_into_an_ended_session_is_410(session):
    do_end_session(session["id"])
    response = bearer(session["word"]).put(
        f"/api/sessions/{session['id']}/document",
        flat_opc("Too late").encode(),
        content_type="application/xml",
    )
    assert assert_error(response, 410, "E1006") == f"{SESSION_ENDED}."
    assert CollabSession.objects.get(pk=session["id"]).version == 0


# Revisions


def test_revisions_newest_first(staff, session, settings):
    settings.COLLAB_API_PAGE_SIZE = 2
    for n in range(1, 4):
        store_version(session["id"], f"<p>Version {n}</p>")
    first = staff.get(f"/api/sessions/{session['id']}/revisions/").json()
    assert first["count"] == 3
    assert [row["version"] for row in first["results"]] == [3, 2]
    assert first["results"][0]["html"] == "<p>Version 3</p>"
    assert set(first["results"][0]) == {
        "version",
        "created_at",
        "input_bytes",
        "html_bytes",
        "conversion_ms",
        "warnings",
        "html",
    }
    assert [row["version"] for row in staff.get(first["next"]).json()["results"]] == [1]
    assert_error(staff.get("/api/sessions/nope/revisions/"), 404, "E1001")


# Throttling


def test_token_requests_are_throttled_but_staff_are_not(session, staff, settings):
    settings.COLLAB_API_TOKEN_RATE = "3/minute"
    url = f"/api/sessions/{session['id']}/html"
    viewer = bearer(session["client"])
    assert [viewer.get(url).status_code for _ in range(3)] == [200, 200, 200]
    throttled = viewer.get(url)
    assert_error(throttled, 429, "E1011")
    assert int(throttled["Retry-After"]) > 0
    # Another token has its own budget; staff have none.
    assert bearer(session["word"]).get(url).status_code == 200
    assert [staff.get(url).status_code for _ in range(5)] == [200] * 5


def test_schema_and_docs_are_public(anonymous):
    assert anonymous.get("/api/schema/").status_code == 200
    assert anonymous.get("/api/").json()["docs"].endswith("/api/docs/")
