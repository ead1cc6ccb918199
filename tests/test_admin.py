"""The Django admin as staff use it: sessions, tokens, revisions, connecting, and actions reaching sockets."""

import html
import re
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from sessions_app import links
from sessions_app.access import access_session_by_token
from sessions_app.models import CollabSession, SessionToken
from sessions_app.services import do_create_session, do_end_session
from tests.documents import store_version
from tests.sockets import assert_closed, join_with_get_html, receive

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("fast_password_hashing"),
    pytest.mark.session_title("Quarterly report"),
]

SESSIONS = "/admin/sessions_app/collabsession/"
TOKENS = "/admin/sessions_app/sessiontoken/"


def page(response):
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def shown_value(text, label):
    """The value the secrets page shows beside a label."""
    match = re.search(rf"<th scope=\"row\">{re.escape(label)}</th>\s*<td>(?:<a [^>]*>|<code>)([^<]+)<", text)
    assert match, f"{label} not shown"
    return html.unescape(match.group(1))


def test_admin_needs_staff(client, session):
    response = client.get(SESSIONS)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    User.objects.create_user("visitor", password="visitor-password")
    client.login(username="visitor", password="visitor-password")
    assert client.get(SESSIONS).status_code == 302


def test_session_list_shows_status_version_and_live_counts(admin_client, session):
    ended = do_create_session("Finished review")[0]
    do_end_session(ended.id)
    store_version(session["id"], "<p>One</p>")
    text = page(admin_client.get(SESSIONS))
    assert "Quarterly report" in text and "Finished review" in text
    assert "0 viewers, 0 publishers" in text
    assert "Last update" in text
    filtered = page(admin_client.get(SESSIONS, {"status__exact": "ended"}))
    assert "Finished review" in filtered and "Quarterly report" not in filtered
    searched = page(admin_client.get(SESSIONS, {"q": "quarterly"}))
    assert "Quarterly report" in searched and "Finished review" not in searched
    assert page(admin_client.get(SESSIONS, {"q": session["id"]})).count(session["id"]) >= 1


def test_session_page_shows_tokens_revisions_and_how_to_connect(admin_client, session):
    store_version(session["id"], "<p>First</p>")
    store_version(session["id"], "<p>Second</p>")
    text = page(admin_client.get(f"{SESSIONS}{session['id']}/change/"))
    for secret in (session["word"], session["client"]):
        assert secret[:8] in text  # the prefix tells tokens apart
        assert secret not in text  # the secret is never shown again
    assert "Issue a viewer link" in text and "Issue a publish code for Word" in text
    assert "http://127.0.0.1:8000/addin/manifest.xml" in text
    assert links.ws_url() in text
    assert "0 viewers, 0 publishers" in text
    assert re.search(r"field-version[^>]*>\s*<p>\s*2\s*</p>", text)  # the revisions inline
    assert re.search(r"field-version[^>]*>\s*<p>\s*1\s*</p>", text)
    # The current HTML is previewed in a sandbox, escaped into srcdoc, in the viewer's page and styles.
    srcdoc = html.unescape(re.search(r'sandbox="" srcdoc="([^"]*)"', text).group(1))
    assert '<link rel="stylesheet" href="/static/viewer/viewer.css">' in srcdoc
    assert '<article id="document" class="document"><p>Second</p></article>' in srcdoc


def test_revision_page_is_read_only_with_a_sandboxed_preview(admin_client, session):
    hostile = '<p>Hi</p><img src="x" onerror="alert(1)"><script>alert(2)</script>'
    store_version(session["id"], hostile)
    revision = session["model"].revisions.get()
    text = page(admin_client.get(f"/admin/sessions_app/revision/{revision.pk}/change/"))
    assert "<script>alert(2)" not in text and 'onerror="alert(1)"' not in text
    assert 'sandbox=""' in text
    assert html.escape(hostile) in text
    assert 'name="_save"' not in text  # read-only
    assert admin_client.get("/admin/sessions_app/revision/add/").status_code == 403


def test_issuing_a_viewer_link_shows_it_once(admin_client, session):
    url = f"{SESSIONS}{session['id']}/issue-token/"
    form = page(admin_client.get(url, {"role": "client"}))
    assert 'value="client" selected' in form
    response = admin_client.post(url, {"role": "client", "label": "lobby screen", "expires_in_days": "2"})
    text = page(response)
    assert "no-store" in response["Cache-Control"]
    viewer_url = shown_value(text, "Viewer link")
    secret = viewer_url.split("#token=")[1]
    assert viewer_url == links.viewer_url(session["id"], secret)
    token = access_session_by_token(session["id"], secret, "client")
    assert token.label == "lobby screen" and token.expires_at is not None
    assert secret not in page(admin_client.get(f"{SESSIONS}{session['id']}/change/"))


def test_issuing_a_publish_code_for_word(admin_client, session):
    text = page(
        admin_client.post(f"{SESSIONS}{session['id']}/issue-token/", {"role": "word", "expires_in_days": "0"})
    )
    secret = shown_value(text, "Word token")
    assert shown_value(text, "Publish code for the Word add-in") == links.publish_code(session["id"], secret)
    assert shown_value(text, "Word add-in manifest") == "http://127.0.0.1:8000/addin/manifest.xml"
    token = access_session_by_token(session["id"], secret, "word")
    assert token.expires_at is None and token.can_end_session


def test_publish_codes_get_the_shorter_publish_code_lifetime(admin_client, session, settings):
    settings.COLLAB_PUBLISH_CODE_HOURS = 8
    issued = page(admin_client.post(f"{SESSIONS}{session['id']}/issue-token/", {"role": "word"}))
    added = page(admin_client.post(f"{SESSIONS}add/", {"title": "Short-lived codes"}))
    added_id = CollabSession.objects.get(title="Short-lived codes").id
    for text, session_id in ((issued, session["id"]), (added, added_id)):
        token = access_session_by_token(session_id, shown_value(text, "Word token"), "word")
        assert abs(token.expires_at - (timezone.now() + timedelta(hours=8))) < timedelta(minutes=1)
        assert not token.is_usable(now=token.expires_at + timedelta(seconds=1))
        # A viewer link keeps the client tokens' lifetime.
        client = SessionToken.objects.filter(session_id=session_id, role="client").latest("created_at")
        assert client.expires_at - timezone.now() > timedelta(days=29)
    # A lifetime the admin asks for is the admin's choice.
    chosen = page(
        admin_client.post(f"{SESSIONS}{session['id']}/issue-token/", {"role": "word", "expires_in_days": "2"})
    )
    token = access_session_by_token(session["id"], shown_value(chosen, "Word token"), "word")
    assert token.expires_at - timezone.now() > timedelta(days=1)


def test_no_tokens_for_an_ended_session(admin_client, session):
    do_end_session(session["id"])
    response = admin_client.post(f"{SESSIONS}{session['id']}/issue-token/", {"role": "client"})
    assert response.status_code == 302
    assert SessionToken.objects.filter(session_id=session["id"]).count() == 2


def test_adding_a_session_shows_its_tokens_once(admin_client):
    assert "Create session" in page(admin_client.get(f"{SESSIONS}add/"))
    text = page(admin_client.post(f"{SESSIONS}add/", {"title": "Made in the admin"}))
    created = CollabSession.objects.get(title="Made in the admin")
    assert shown_value(text, "Session id") == created.id
    word = shown_value(text, "Word token")
    client = shown_value(text, "Client token")
    assert shown_value(text, "Viewer link") == links.viewer_url(created.id, client)
    assert shown_value(text, "Publish code for the Word add-in") == links.publish_code(created.id, word)
    assert access_session_by_token(created.id, word, "word")
    assert access_session_by_token(created.id, client, "client")


def session_page_form(session_id, title, revoke_role=None):
    """The session page's form as a browser posts it: the title, and each token's row."""
    tokens = list(SessionToken.objects.filter(session_id=session_id))
    data = {
        "title": title,
        "tokens-TOTAL_FORMS": str(len(tokens)),
        "tokens-INITIAL_FORMS": str(len(tokens)),
        "tokens-MIN_NUM_FORMS": "0",
        "tokens-MAX_NUM_FORMS": "1000",
        "revisions-TOTAL_FORMS": "0",
        "revisions-INITIAL_FORMS": "0",
        "revisions-MIN_NUM_FORMS": "0",
        "revisions-MAX_NUM_FORMS": "1000",
    }
    for index, token in enumerate(tokens):
        data[f"tokens-{index}-id"] = str(token.pk)
        data[f"tokens-{index}-session"] = session_id
        if token.role == revoke_role:
            data[f"tokens-{index}-revoked"] = "on"
    return data


def test_editing_the_title_keeps_the_document(admin_client, session):
    data = session_page_form(session["id"], "Renamed")
    admin_client.get(f"{SESSIONS}{session['id']}/change/")
    store_version(session["id"], "<p>Published while the page was open</p>")
    response = admin_client.post(f"{SESSIONS}{session['id']}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    stored = CollabSession.objects.get(pk=session["id"])
    assert stored.title == "Renamed"
    assert (stored.version, stored.html) == (1, "<p>Published while the page was open</p>")


def test_only_ended_sessions_can_be_deleted(admin_client, session):
    assert admin_client.get(f"{SESSIONS}{session['id']}/delete/").status_code == 403
    do_end_session(session["id"])
    assert admin_client.post(f"{SESSIONS}{session['id']}/delete/", {"post": "yes"}).status_code == 302
    assert not CollabSession.objects.filter(pk=session["id"]).exists()


@pytest.mark.django_db(transaction=True)
async def test_end_sessions_action_reaches_live_sockets(admin_client, session):
    other = await database_sync_to_async(do_create_session)("Untouched")
    viewer = await join_with_get_html(session["id"], session["client"], "client")
    response = await database_sync_to_async(admin_client.post)(
        SESSIONS, {"action": "end_sessions", "_selected_action": [session["id"]]}
    )
    assert response.status_code == 302
    ended = await receive(viewer)
    assert (ended["Action"], ended["Content"]) == ("end-session", "Session ended successfully.")
    assert (await receive(viewer))["Action"] == "session-closed"
    await assert_closed(viewer, 1000)
    assert (await database_sync_to_async(CollabSession.objects.get)(pk=session["id"])).status == "ended"
    assert (await database_sync_to_async(CollabSession.objects.get)(pk=other[0].id)).status == "active"


@pytest.mark.django_db(transaction=True)
async def test_revoke_tokens_action_reaches_live_sockets(admin_client, session):
    word = await join_with_get_html(session["id"], session["word"], "word")
    viewer = await join_with_get_html(session["id"], session["client"], "client")
    token = await database_sync_to_async(SessionToken.objects.get)(session_id=session["id"], role="word")
    response = await database_sync_to_async(admin_client.post)(
        TOKENS, {"action": "revoke_tokens", "_selected_action": [token.pk]}
    )
    assert response.status_code == 302
    error = await receive(word)
    assert error["ErrorCode"] == "E1003"
    assert (await receive(word))["Action"] == "session-closed"
    await assert_closed(word, 4401)
    assert await viewer.receive_nothing(0.2)
    assert (await database_sync_to_async(SessionToken.objects.get)(pk=token.pk)).revoked
    await viewer.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_revoking_from_the_session_page_reaches_live_sockets(admin_client, session):
    viewer = await join_with_get_html(session["id"], session["client"], "client")

    def submit():
        data = session_page_form(session["id"], "Quarterly report", revoke_role="client")
        return admin_client.post(f"{SESSIONS}{session['id']}/change/", data)

    response = await database_sync_to_async(submit)()
    assert response.status_code == 302
    assert (await receive(viewer))["ErrorCode"] == "E1003"
    assert (await receive(viewer))["Action"] == "session-closed"
    client_token = await database_sync_to_async(SessionToken.objects.get)(
        session_id=session["id"], role="client"
    )
    assert client_token.revoked


@pytest.mark.django_db(transaction=True)
async def test_end_session_button_ends_it_through_the_service_and_reaches_live_sockets(admin_client, session):
    change_page = f"{SESSIONS}{quote(session['id'])}/change/"
    text = page(await database_sync_to_async(admin_client.get)(change_page))
    assert f'action="{SESSIONS}{quote(session["id"])}/end/"' in text and "End session" in text
    viewer = await join_with_get_html(session["id"], session["client"], "client")
    response = await database_sync_to_async(admin_client.post)(
        f"{SESSIONS}{quote(session['id'])}/end/", follow=True
    )
    assert response.redirect_chain == [(change_page, 302)]
    assert "ended: its viewers and publishers were told and closed." in response.content.decode()
    ended = await receive(viewer)
    assert (ended["Action"], ended["Content"]) == ("end-session", "Session ended successfully.")
    assert (await receive(viewer))["Action"] == "session-closed"
    await assert_closed(viewer, 1000)
    assert (await database_sync_to_async(CollabSession.objects.get)(pk=session["id"])).status == "ended"
    # An ended session's page has no button any more.
    text = page(await database_sync_to_async(admin_client.get)(change_page))
    assert "End session" not in text


def test_end_session_button_needs_post_csrf_and_the_change_permission(client, session):
    admin = User.objects.create_superuser("boss", password="boss-password")
    careful = Client(enforce_csrf_checks=True)
    careful.force_login(admin)
    end = f"{SESSIONS}{quote(session['id'])}/end/"
    assert careful.get(end).status_code == 405
    assert careful.post(end).status_code == 403  # no CSRF token
    assert CollabSession.objects.get(pk=session["id"]).is_active
    viewer = User.objects.create_user("viewer", password="viewer-password", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_collabsession"))
    client.force_login(viewer)
    assert "End session" not in page(client.get(f"{SESSIONS}{session['id']}/change/"))
    assert client.post(end).status_code == 403
    assert CollabSession.objects.get(pk=session["id"]).is_active
    # With the form's token the same request ends it.
    form = page(careful.get(f"{SESSIONS}{session['id']}/change/"))
    csrf = re.search(r'id="end-session".*?name="csrfmiddlewaretoken" value="([^"]+)"', form, re.S).group(1)
    assert careful.post(end, {"csrfmiddlewaretoken": csrf}).status_code == 302
    assert not CollabSession.objects.get(pk=session["id"]).is_active


def test_times_are_shown_to_the_minute_with_how_far_away(admin_client, session):
    created = timezone.now() - timedelta(hours=3)
    CollabSession.objects.filter(pk=session["id"]).update(
        created_at=created, updated_at=created + timedelta(hours=1)
    )
    expires = timezone.now() + timedelta(days=30, minutes=5)
    SessionToken.objects.filter(session_id=session["id"], role="client").update(expires_at=expires)
    raw = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
    tokens = page(admin_client.get(TOKENS)).replace("\xa0", " ")
    assert not raw.search(tokens) and expires.strftime("%-d %b %Y, %H:%M UTC") in tokens
    for url in (SESSIONS, f"{SESSIONS}{session['id']}/change/"):
        text = page(admin_client.get(url)).replace("\xa0", " ")  # timesince keeps "3 hours" on one line
        assert not raw.search(text), url
        assert created.strftime("%-d %b %Y, %H:%M UTC") in text, url
        assert "3 hours ago" in text, url
    listed = page(admin_client.get(SESSIONS)).replace("\xa0", " ")
    assert "2 hours ago" in listed  # the last update
    detail = page(admin_client.get(f"{SESSIONS}{session['id']}/change/")).replace("\xa0", " ")
    assert f"{expires.strftime('%-d %b %Y, %H:%M UTC')} (in 4 weeks)" in detail
    issued = page(admin_client.post(f"{SESSIONS}{session['id']}/issue-token/", {"role": "client"}))
    expiry = shown_value(issued, "Expires").replace("\xa0", " ")
    assert re.fullmatch(r"\d{1,2} \w{3} \d{4}, \d\d:\d\d UTC \(in 4 weeks\)", expiry)


def test_actions_need_the_change_permission(client, session):
    viewer = User.objects.create_user("viewer", password="viewer-password", is_staff=True)
    viewer.user_permissions.set(
        Permission.objects.filter(codename__in=["view_collabsession", "view_sessiontoken"])
    )
    client.login(username="viewer", password="viewer-password")
    assert "end_sessions" not in page(client.get(SESSIONS))
    assert "revoke_tokens" not in page(client.get(TOKENS))
    token = SessionToken.objects.get(session_id=session["id"], role="word")
    client.post(SESSIONS, {"action": "end_sessions", "_selected_action": [session["id"]]})
    client.post(TOKENS, {"action": "revoke_tokens", "_selected_action": [token.pk]})
    assert CollabSession.objects.get(pk=session["id"]).is_active
    token.refresh_from_db()
    assert not token.revoked


# Failed sign-ins are limited per user name and per address.

LOGIN = "/admin/login/"


def sign_in(client, username, password, address="127.0.0.1"):
    """Post the admin's login form; the response (a redirect once signed in)."""
    return client.post(
        LOGIN, {"username": username, "password": password, "next": SESSIONS}, REMOTE_ADDR=address
    )


def test_admin_login_refuses_further_tries_of_a_user_name_in_words(client, settings):
    settings.COLLAB_LOGIN_FAILURES_PER_USER = "3/hour"
    User.objects.create_user("operator", password="operator-password", is_staff=True)
    for n in range(3):
        assert "Please enter the correct username" in page(sign_in(client, "operator", f"guess-{n}"))
    # Now even the right password is refused, from any address, with the reason on the form.
    refused = page(sign_in(client, "operator", "operator-password", address="198.51.100.4"))
    assert re.search(r"Too many failed sign-ins for this user name; try again in \d+ minutes?\.", refused)
    assert client.get(SESSIONS).status_code == 302  # not signed in
    # Another user name may still sign in.
    User.objects.create_user("colleague", password="colleague-password", is_staff=True)
    assert sign_in(client, "colleague", "colleague-password").status_code == 302


def test_admin_login_refuses_an_address_after_too_many_failures(client, settings):
    settings.COLLAB_LOGIN_FAILURES_PER_ADDRESS = "3/hour"
    User.objects.create_user("operator", password="operator-password", is_staff=True)
    for name in ("root", "admin", "operator"):
        sign_in(client, name, "guess", address="203.0.113.9")
    refused = page(sign_in(client, "operator", "operator-password", address="203.0.113.9"))
    assert "Too many failed sign-ins from this address; try again in" in refused
    assert sign_in(client, "operator", "operator-password", address="203.0.113.10").status_code == 302


def test_admin_login_counts_failures_not_successes(client, settings):
    settings.COLLAB_LOGIN_FAILURES_PER_USER = "2/hour"
    User.objects.create_user("operator", password="operator-password", is_staff=True)
    for _ in range(5):
        assert sign_in(client, "operator", "operator-password").status_code == 302
        client.logout()
