"""API authentication as an attacker tries it: forged cross-site writes, staff without permissions, guessing.

Requests go through DRF's APIClient with the exact headers a browser or a script sends; the
cross-site form is driven in real Chromium too (tests/test_browser_forgery.py).
"""

import base64
import json

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.contrib.auth.models import Permission, User
from rest_framework.test import APIClient

from sessions_app.models import CollabSession, SessionToken
from sessions_app.services import do_issue_token
from tests.documents import store_version

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

PASSWORD = "staff-password-for-tests"  # noqa: S105
CHALLENGE = 'Bearer realm="collab"'
ATTACKER = "http://attacker.example"


def basic(username, password=PASSWORD, **headers):
    """An API client sending HTTP Basic with every request, as `curl -u` does."""
    client = APIClient(**headers)
    credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {credentials}")
    return client


def make_staff(username="staff", *permissions, superuser=False):
    """A staff user holding these sessions_app permissions (codenames) and no others."""
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True, is_superuser=superuser)
    user.user_permissions.set(Permission.objects.filter(codename__in=permissions))
    return user


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"]["code"] == code, body
    return body["error"]["message"]


def is_active(session):
    return CollabSession.objects.get(pk=session["id"]).is_active


# Finding 7: a browser must never hold Basic credentials another site's page can use.


def test_401_asks_for_a_bearer_token_never_for_basic(session):
    make_staff()
    end = f"/api/sessions/{session['id']}/end/"
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    for response in (
        APIClient().get("/api/sessions/"),
        APIClient().post(end),
        basic("staff", "wrong").get("/api/sessions/"),
        basic("nobody").post(end),
        bearer.post(end),
    ):
        assert response.status_code == 401, response.content
        # A Basic challenge would make a browser prompt for the password and keep it.
        assert response["WWW-Authenticate"] == CHALLENGE


@pytest.mark.parametrize(
    "browser_headers",
    [
        # What Chromium sends for another site's text/plain form once it holds Basic credentials.
        {"HTTP_ORIGIN": ATTACKER, "HTTP_SEC_FETCH_SITE": "cross-site", "HTTP_SEC_FETCH_MODE": "navigate"},
        {"HTTP_ORIGIN": ATTACKER},
        {"HTTP_ORIGIN": "null"},  # a sandboxed frame or a data: URL
        {"HTTP_SEC_FETCH_SITE": "cross-site"},
        {"HTTP_SEC_FETCH_SITE": "same-site"},  # another host of the same site
    ],
    ids=["chromium-form", "origin", "null-origin", "fetch-cross-site", "fetch-same-site"],
)
def test_cross_site_form_with_basic_credentials_cannot_end_a_session(session, browser_headers):
    make_staff(superuser=True)
    response = basic("staff").generic(
        "POST", f"/api/sessions/{session['id']}/end/", "a=b", content_type="text/plain", **browser_headers
    )
    message = assert_error(response, 403, "E1008")
    assert message.startswith("Cross-site request refused")
    assert is_active(session)


def test_no_change_can_be_forged_cross_site_with_basic(session):
    make_staff(superuser=True)
    token, _ = do_issue_token(session["model"], "client")
    forged = basic("staff", HTTP_ORIGIN=ATTACKER, HTTP_SEC_FETCH_SITE="cross-site")
    sid = session["id"]
    for response in (
        forged.post("/api/sessions/", {"title": "x"}, format="json"),
        forged.post(f"/api/sessions/{sid}/tokens/", {"role": "word"}, format="json"),
        forged.delete(f"/api/sessions/{sid}/tokens/{token.pk}/"),
        forged.post(f"/api/sessions/{sid}/end/"),
    ):
        assert_error(response, 403, "E1008")
    assert CollabSession.objects.count() == 1 and is_active(session)
    assert SessionToken.objects.filter(session_id=sid).count() == 3
    token.refresh_from_db()
    assert not token.revoked


def test_scripts_and_our_own_pages_still_use_basic(session, settings):
    make_staff(superuser=True)
    # A script (curl -u) sends neither Origin nor Sec-Fetch-Site.
    assert basic("staff").post("/api/sessions/", {"title": "curl"}, format="json").status_code == 201
    own = basic("staff", HTTP_ORIGIN="http://testserver", HTTP_SEC_FETCH_SITE="same-origin")
    assert own.post("/api/sessions/", {"title": "own page"}, format="json").status_code == 201
    typed = basic("staff", HTTP_SEC_FETCH_SITE="none")  # typed into the address bar
    assert typed.post("/api/sessions/", {"title": "typed"}, format="json").status_code == 201
    # An origin listed in COLLAB_ALLOWED_ORIGINS is trusted as for login sessions.
    settings.CSRF_TRUSTED_ORIGINS = [*settings.CSRF_TRUSTED_ORIGINS, "https://intranet.example.com"]
    listed = basic("staff", HTTP_ORIGIN="https://intranet.example.com", HTTP_SEC_FETCH_SITE="cross-site")
    assert listed.post("/api/sessions/", {"title": "intranet"}, format="json").status_code == 201
    # Reading changes nothing, and another site cannot read the answer.
    reader = basic("staff", HTTP_ORIGIN=ATTACKER, HTTP_SEC_FETCH_SITE="cross-site")
    assert reader.get(f"/api/sessions/{session['id']}/").status_code == 200


# Finding 8: staff on the API need the model permissions the admin asks for the same action.

# method, path, permissions the admin would need, status with them.
ENDPOINTS = [
    ("GET", "/api/sessions/", ["view_collabsession"], 200),
    ("POST", "/api/sessions/", ["add_collabsession"], 201),
    ("GET", "/api/sessions/{sid}/", ["view_collabsession", "view_sessiontoken"], 200),
    ("POST", "/api/sessions/{sid}/tokens/", ["change_collabsession"], 201),
    ("DELETE", "/api/sessions/{sid}/tokens/{token}/", ["change_sessiontoken"], 204),
    ("POST", "/api/sessions/{sid}/end/", ["change_collabsession"], 200),
    ("GET", "/api/sessions/{sid}/html", ["view_collabsession"], 200),
    ("GET", "/api/sessions/{sid}/revisions/", ["view_revision"], 200),
]
ENDPOINT_IDS = [f"{method} {path}" for method, path, _, _ in ENDPOINTS]
ALL_PERMISSIONS = [
    f"{action}_{model}"
    for action in ("view", "add", "change", "delete")
    for model in ("collabsession", "sessiontoken", "revision")
]


def call(client, method, path, session):
    """One request to an endpoint of ENDPOINTS, with a body it accepts."""
    token, _ = do_issue_token(session["model"], "client")
    url = path.format(sid=session["id"], token=token.pk)
    body = {"/api/sessions/": {"title": "x"}, "/api/sessions/{sid}/tokens/": {"role": "client"}}.get(path)
    return client.generic(method, url, json.dumps(body) if body else "", content_type="application/json")


@pytest.mark.parametrize(("method", "path", "needed", "status"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_staff_without_permissions_are_refused_on_every_endpoint(session, method, path, needed, status):
    make_staff()
    store_version(session["id"], "<p>Secret</p>")
    sessions_before = CollabSession.objects.count()
    tokens_before = SessionToken.objects.filter(revoked=False).count() + 1  # `call` issues one
    message = assert_error(call(basic("staff"), method, path, session), 403, "E1008")
    assert message.startswith("Your account lacks the permission to") and "sessions_app." in message
    assert CollabSession.objects.count() == sessions_before and is_active(session)
    assert SessionToken.objects.filter(revoked=False).count() == tokens_before


@pytest.mark.parametrize(("method", "path", "needed", "status"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_staff_with_the_endpoints_permissions_may_use_it(session, method, path, needed, status):
    make_staff("staff", *needed)
    assert call(basic("staff"), method, path, session).status_code == status


@pytest.mark.parametrize(("method", "path", "needed", "status"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_every_other_permission_is_not_enough(session, method, path, needed, status):
    for missing in needed:
        # As in the admin, changing includes viewing: without the one, the other goes too.
        gone = {missing, missing.replace("view_", "change_")}
        username = f"staff-without-{missing}"
        make_staff(username, *[name for name in ALL_PERMISSIONS if name not in gone])
        message = assert_error(call(basic(username), method, path, session), 403, "E1008")
        assert f"(sessions_app.{missing})" in message


def test_the_change_permission_includes_viewing_as_in_the_admin(session):
    make_staff("editor", "change_collabsession")
    assert basic("editor").get("/api/sessions/").status_code == 200
    assert basic("editor").get(f"/api/sessions/{session['id']}/html").status_code == 200


@pytest.mark.parametrize(("method", "path", "needed", "status"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_superusers_hold_every_permission(session, method, path, needed, status):
    make_staff(superuser=True)
    assert call(basic("staff"), method, path, session).status_code == status


def test_a_login_session_needs_the_permissions_too(client, session):
    make_staff()
    client.login(username="staff", password=PASSWORD)
    assert_error(client.get("/api/sessions/"), 403, "E1008")


# Finding 9: password guessing is throttled per user name and per client address.


class CountingHasher(MD5PasswordHasher):
    """MD5, counting every password it hashes or checks."""

    algorithm = "counting_md5"
    calls = 0

    def encode(self, password, salt):
        CountingHasher.calls += 1
        return super().encode(password, salt)


@pytest.fixture
def counting_hasher(settings):
    settings.PASSWORD_HASHERS = ["tests.test_api_security.CountingHasher"]
    CountingHasher.calls = 0
    return CountingHasher


def test_wrong_passwords_past_the_rate_per_user_name_get_429_in_words(settings, counting_hasher):
    settings.COLLAB_LOGIN_FAILURES_PER_USER = "3/hour"
    make_staff(superuser=True)
    wrong = [basic("staff", "guess", REMOTE_ADDR=f"198.51.100.{n}").get("/api/sessions/") for n in range(3)]
    assert [response.status_code for response in wrong] == [401] * 3
    hashes = counting_hasher.calls

    # The fourth try, from yet another address and even with the right password, is refused unheard.
    for password in ("guess", PASSWORD):
        refused = basic("staff", password, REMOTE_ADDR="198.51.100.99").get("/api/sessions/")
        message = assert_error(refused, 429, "E1011")
        assert message.startswith("Too many failed sign-ins for this user name; try again in ")
        assert message.endswith(" minutes.") or message.endswith(" minute.")
        assert 0 < int(refused["Retry-After"]) <= 3600
    assert counting_hasher.calls == hashes  # no password was hashed for the refused tries

    # Another user name is not affected.
    make_staff("other", superuser=True)
    assert basic("other").get("/api/sessions/").status_code == 200


def test_wrong_passwords_past_the_rate_per_address_get_429(settings):
    settings.COLLAB_LOGIN_FAILURES_PER_ADDRESS = "3/hour"
    make_staff(superuser=True)
    for name in ("alice", "bob", "staff"):
        assert basic(name, "guess", REMOTE_ADDR="203.0.113.7").get("/api/sessions/").status_code == 401
    refused = basic("staff", REMOTE_ADDR="203.0.113.7").get("/api/sessions/")
    message = assert_error(refused, 429, "E1011")
    assert message.startswith("Too many failed sign-ins from this address; try again in ")
    assert basic("staff", REMOTE_ADDR="203.0.113.8").get("/api/sessions/").status_code == 200


def test_the_address_is_the_client_a_trusted_proxy_names(settings):
    settings.COLLAB_LOGIN_FAILURES_PER_ADDRESS = "2/hour"
    settings.COLLAB_TRUSTED_PROXIES = ["10.0.0.1"]
    make_staff(superuser=True)
    behind = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.1"}
    for name in ("alice", "bob"):
        assert basic(name, "guess", **behind).get("/api/sessions/").status_code == 401
    assert basic("staff", **behind).get("/api/sessions/").status_code == 429
    # Another client behind the same proxy has its own count.
    neighbour = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.2"}
    assert basic("staff", **neighbour).get("/api/sessions/").status_code == 200
    # A stranger's own X-Forwarded-For is not believed: counted by its real address.
    for fake in ("192.0.2.1", "192.0.2.2"):
        spoofed = {"REMOTE_ADDR": "203.0.113.50", "HTTP_X_FORWARDED_FOR": fake}
        assert basic("mallory", "guess", **spoofed).get("/api/sessions/").status_code == 401
    spoofed = {"REMOTE_ADDR": "203.0.113.50", "HTTP_X_FORWARDED_FOR": "192.0.2.3"}
    assert basic("staff", **spoofed).get("/api/sessions/").status_code == 429


def test_successful_sign_ins_are_not_counted(settings):
    settings.COLLAB_LOGIN_FAILURES_PER_USER = "3/hour"
    settings.COLLAB_LOGIN_FAILURES_PER_ADDRESS = "3/hour"
    make_staff(superuser=True)
    assert [basic("staff").get("/api/sessions/").status_code for _ in range(10)] == [200] * 10


def test_the_default_rate_refuses_long_before_300_guesses():
    make_staff(superuser=True)
    statuses = [basic("staff", f"guess-{n}").get("/api/sessions/").status_code for n in range(300)]
    assert 429 in statuses and statuses.index(429) <= 50
    assert set(statuses[statuses.index(429) :]) == {429}
