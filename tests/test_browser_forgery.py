"""Another site's page in real headless Chromium cannot make the browser end a session with staff's Basic.

The attacker's page is served by Playwright's routing under a name of its own; the API is a real daphne.
"""

import base64
import http.server
import json
import threading
import urllib.request
from contextlib import contextmanager

import pytest

from tests.servers import child_env, create_superuser

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PASSWORD = "staff-password-for-tests"  # noqa: S105
CHALLENGE = 'Bearer realm="collab"'
ATTACKER = "http://attacker.example"

FORM_PAGE = """<!doctype html><title>Win a prize</title>
<form method="POST" action="{action}" enctype="text/plain"><input name="a" value="b"></form>
<script>document.forms[0].submit()</script>"""
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def staff_in_database(integration_database_url):
    """A staff superuser named "staff" in the database the module's daphne processes share."""
    create_superuser(child_env({"DATABASE_URL": integration_database_url}), PASSWORD)


@pytest.fixture
def server(staff_in_database, daphne):
    return daphne()


def session_status(server, session_id):
    """The session's status, asked as a script asks: HTTP Basic, no Origin."""
    request = urllib.request.Request(f"{server.url}/api/sessions/{session_id}/")  # noqa: S310
    credentials = base64.b64encode(f"staff:{PASSWORD}".encode()).decode()
    request.add_header("Authorization", f"Basic {credentials}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as response:
        return json.loads(response.read())["status"]


def submit_attackers_form(context, server, session_id):
    """Open a page of another site that posts a text/plain form to the end endpoint; the answer."""
    action = f"{server.url}/api/sessions/{session_id}/end/"
    page_text = FORM_PAGE.format(action=action)
    context.route(
        f"{ATTACKER}/**", lambda route: route.fulfill(status=200, content_type="text/html", body=page_text)
    )
    page = context.new_page()
    with page.expect_response(lambda response: response.url == action, timeout=WAIT_MS) as answer:
        page.goto(f"{ATTACKER}/prize", timeout=WAIT_MS)
    return answer.value


class BasicChallenge(http.server.BaseHTTPRequestHandler):
    """Asks for Basic credentials and takes any: how a browser comes to keep a password for an origin."""

    def do_GET(self):
        signed_in = self.headers.get("Authorization", "").startswith("Basic ")
        self.send_response(200 if signed_in else 401)
        if not signed_in:
            self.send_header("WWW-Authenticate", 'Basic realm="api"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@contextmanager
def basic_challenge_on(port):
    """A server asking for Basic credentials on this loopback port, while the block runs."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), BasicChallenge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_chromium_never_keeps_the_password_of_an_api_visit(server, chromium):
    session = server.create_session("forgery target")
    context = chromium.new_context()
    try:
        # A staff user opens the API once in the browser with their name and password.
        url = f"http://staff:{PASSWORD}@127.0.0.1:{server.port}/api/sessions/"
        visit = context.new_page().goto(url, timeout=WAIT_MS)
        answer = submit_attackers_form(context, server, session["id"])
    finally:
        context.close()
    assert session_status(server, session["id"]) == "active"
    # No Basic challenge, so Chromium never sent (nor kept) the password.
    assert visit.status == 401 and visit.headers["www-authenticate"] == CHALLENGE
    assert answer.status == 401


def test_chromium_holding_basic_credentials_cannot_be_made_to_end_a_session(server, chromium):
    session = server.create_session("forgery target")
    context = chromium.new_context()
    try:
        # Chromium keeps a password only after a Basic challenge, and collab sends none: one from
        # whatever answered on this origin before (an older collab, a proxy) stands in for it.
        server.stop()
        with basic_challenge_on(server.port):
            visit = context.new_page().goto(f"http://staff:{PASSWORD}@127.0.0.1:{server.port}/api/sessions/")
            assert visit.status == 200
        server.start()
        # Chromium now sends that password with every request under /api/sessions/, from any page.
        answer = submit_attackers_form(context, server, session["id"])
        sent = answer.request.all_headers()
        assert sent["origin"] == ATTACKER and sent["content-type"] == "text/plain"
        # 403 for the forged change (without the password it would be 401).
        assert answer.status == 403, answer.text()
        assert json.loads(answer.text())["error"]["message"].startswith("Cross-site request refused")
    finally:
        context.close()
    assert session_status(server, session["id"]) == "active"
