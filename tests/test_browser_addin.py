"""The Word add-in's task pane in real headless Chromium, with a stand-in for office.js."""

import base64
import json
import re
from pathlib import Path

import pytest

from sessions_app.protocol import SESSION_ENDED, VIEWER_TOKEN_FOR_PUBLISHING
from tests.documents import corpus_file
from tests.pages import PageWatch
from tests.servers import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.integration]

WAIT_MS = 30_000
OFFICE_JS = "https://appsforoffice.microsoft.com/lib/1/hosted/office.js"
OFFICE_STUB = Path(__file__).with_name("office_stub.js").read_text(encoding="utf-8")
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"


def corpus_document(name):
    return corpus_file(f"flatopc/{name}.xml").read_text(encoding="utf-8-sig")


FIRST = corpus_document("oasamples-table-styled")  # a table: Region, Q1, Q2
SECOND = corpus_document("oasamples-text-with-style")  # one Heading 1 paragraph


class TaskPane(PageWatch):
    """A task pane page and what it sent over its WebSockets."""

    @property
    def updates(self):
        return [message for message in self.sent if message.get("Action") == "update-ooxml"]

    def wait_for_state(self, state):
        self.page.wait_for_function(
            "state => document.body.dataset.state === state", arg=state, timeout=WAIT_MS
        )

    def wait_for_updates(self, count):
        self.page.wait_for_timeout(0)  # let Playwright deliver the frames it has seen
        deadline_ms = WAIT_MS
        while len(self.updates) < count and deadline_ms > 0:
            self.page.wait_for_timeout(50)
            deadline_ms -= 50
        assert len(self.updates) >= count, f"{len(self.updates)} updates sent, expected {count}"

    def stub(self, expression):
        return self.page.evaluate(f"() => window.__stub.{expression}")

    def fire(self, kind, times=1):
        assert self.stub(f"fire({json.dumps(kind)}, {times})") >= 1, f"nobody listens to {kind}"

    def status(self):
        return self.page.inner_text("#status").strip()


@pytest.fixture
def contexts(chromium):
    """Browser contexts whose office.js requests get the stand-in; closed afterwards."""
    opened = []

    def new_context(**options):
        context = chromium.new_context(**options)

        def serve_stub(route):
            if route.request.url == OFFICE_JS:
                route.fulfill(status=200, content_type="application/javascript", body=OFFICE_STUB)
            else:
                route.abort()

        context.route("https://appsforoffice.microsoft.com/**", serve_stub)
        opened.append(context)
        return context

    yield new_context
    for context in opened:
        context.close()


def open_taskpane(contexts, server, documents=(FIRST,), properties=None, **stub_options):
    context = contexts(viewport={"width": 340, "height": 640})
    settings = {"__stubDocuments": list(documents), "__stubProperties": properties or {}, **stub_options}
    context.add_init_script(
        ";".join(f"window.{name} = {json.dumps(value)}" for name, value in settings.items())
    )
    page = context.new_page()
    pane = TaskPane(page)
    page.goto(f"{server.url}/addin/taskpane.html", timeout=WAIT_MS)
    return pane


def open_viewer(contexts, server, session):
    page = contexts(viewport={"width": 900, "height": 700}).new_page()
    page.goto(f"{server.url}/s/{session['id']}/#token={session['client_token']}", timeout=WAIT_MS)
    page.wait_for_function("() => document.body.dataset.state === 'live'", timeout=WAIT_MS)
    return page


def wait_for_viewer_text(page, text):
    page.wait_for_function(
        "text => document.getElementById('document').textContent.includes(text)", arg=text, timeout=WAIT_MS
    )


def word_properties(session):
    return {"sessionId": session["id"], "token": session["word_token"]}


def test_taskpane_publishes_the_document_named_in_its_properties(shared_daphne, contexts):
    server = shared_daphne
    session = server.create_session("task pane")
    viewer = open_viewer(contexts, server, session)
    pane = open_taskpane(contexts, server, documents=[FIRST, SECOND], properties=word_properties(session))

    pane.wait_for_state("live")
    pane.wait_for_updates(1)
    wait_for_viewer_text(viewer, "Southeast")
    assert pane.sent[0] == {
        "Origin": "word",
        "SessionId": session["id"],
        "Token": session["word_token"],
        "Action": "init",
        "Protocol": 2,
        "Features": ["refusal-reasons"],
    }
    assert pane.updates[0]["PayloadType"] == "ooxml"
    assert pane.updates[0]["Content"] == FIRST
    # The server's title for the session and the server's host: a document may name anyone's session.
    assert pane.page.inner_text("#session") == "\u201ctask pane\u201d (from this document)"
    assert pane.page.inner_text("#server") == f"127.0.0.1:{server.port}"
    assert pane.page.is_visible("#named-by-document")
    assert re.fullmatch(r"\d\d:\d\d:\d\d", pane.page.inner_text("#last-sent"))
    pane.page.wait_for_function(
        "() => document.getElementById('viewers').textContent === '1 watching'", timeout=WAIT_MS
    )

    # Events with nothing changed: Word is read again, nothing is sent again.
    reads = pane.stub("counts.getOoxml")
    pane.fire("selection", 3)
    pane.fire("paragraphChanged", 2)
    pane.page.wait_for_function(f"() => window.__stub.counts.getOoxml > {reads}", timeout=WAIT_MS)
    pane.page.wait_for_timeout(1000)
    assert len(pane.updates) == 1

    pane.stub("setDocument(1)")
    pane.fire("paragraphChanged")
    pane.wait_for_updates(2)
    wait_for_viewer_text(viewer, "This text is formatted using the Heading 1 paragraph style.")
    assert pane.updates[1]["Content"] == SECOND
    assert pane.status() == "Sharing live"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pane.page.screenshot(path=str(SCREENSHOTS / "taskpane.png"))

    pane.page.click("#toggle")
    pane.wait_for_state("stopped")
    assert pane.status() == "Sharing stopped"
    pane.stub("setDocument(0)")
    pane.fire("paragraphChanged", 5)
    pane.page.wait_for_timeout(1000)
    assert len(pane.updates) == 2
    assert all(session["word_token"] not in url for url, _ in pane.requests)
    assert pane.errors == []


def test_a_burst_of_fifty_changes_leads_to_few_captures(shared_daphne, contexts):
    server = shared_daphne
    session = server.create_session("burst")
    pane = open_taskpane(contexts, server, documents=[FIRST, SECOND], properties=word_properties(session))
    pane.wait_for_state("live")
    pane.wait_for_updates(1)
    pane.page.wait_for_timeout(500)
    reads = pane.stub("counts.getOoxml")

    # Fifty paragraph events over a second, as fast typing makes them.
    pane.stub("setDocument(1)")
    pane.page.evaluate(
        """() => new Promise((done) => {
            let fired = 0;
            const timer = setInterval(() => {
                window.__stub.fire(fired % 2 ? 'paragraphChanged' : 'selection');
                fired += 1;
                if (fired === 50) { clearInterval(timer); done(); }
            }, 20);
        })"""
    )
    pane.wait_for_updates(2)
    pane.page.wait_for_timeout(1500)
    captures = pane.stub("counts.getOoxml") - reads
    assert 1 <= captures <= 3
    assert pane.stub("counts.maxInFlight") == 1
    assert len(pane.updates) == 2


@pytest.mark.parametrize("form", ["publish code", "link"])
def test_taskpane_connects_with_a_pasted_code_and_can_remember_it(shared_daphne, contexts, form):
    server = shared_daphne
    session = server.create_session("pasted")
    pane = open_taskpane(contexts, server)
    pane.page.wait_for_selector("#code-form:not([hidden])", timeout=WAIT_MS)
    assert pane.status() == "Not connected"
    code = (
        session["publish_code"]
        if form == "publish code"
        else f"{server.url}/s/{session['id']}/#token={session['word_token']}"
    )
    pane.page.fill("#code", code)
    pane.page.check("#remember")
    pane.page.click("button[type=submit]")

    pane.wait_for_state("live")
    pane.wait_for_updates(1)
    assert pane.page.input_value("#code") == ""
    pane.page.wait_for_function("() => window.__stub.properties.token !== undefined", timeout=WAIT_MS)
    assert pane.stub("properties") == word_properties(session)
    assert pane.page.inner_text("#session") == "\u201cpasted\u201d (from a pasted code)"
    assert pane.page.inner_text("#server") == f"127.0.0.1:{server.port}"
    assert not pane.page.is_visible("#named-by-document")
    assert all(session["word_token"] not in url for url, _ in pane.requests)


def test_taskpane_shows_a_session_title_with_markup_as_text(shared_daphne, contexts):
    server = shared_daphne
    title = '<img src="x" onerror="window.__ran = 1"><b>Not yours</b>'
    session = server.create_session(title)
    pane = open_taskpane(contexts, server, properties=word_properties(session))
    pane.wait_for_state("live")
    pane.page.wait_for_function(
        "() => document.getElementById('session').textContent.indexOf('Not yours') >= 0", timeout=WAIT_MS
    )
    assert pane.page.inner_text("#session") == f"\u201c{title}\u201d (from this document)"
    assert pane.page.eval_on_selector("#session", "box => box.children.length") == 0
    assert pane.page.evaluate("() => window.__ran") is None
    assert pane.errors == []


@pytest.mark.parametrize(
    ("framing_page", "shown"),
    [
        ("http://attacker.example/", False),
        ("https://word-edit.officeapps.live.com/we/wordeditorframe.aspx", True),
    ],
    ids=["foreign-site", "word-on-the-web"],
)
def test_only_office_on_the_web_may_frame_the_taskpane(shared_daphne, contexts, framing_page, shown):
    context = contexts()
    frame_html = f'<!doctype html><iframe id="pane" src="{shared_daphne.url}/addin/taskpane.html"></iframe>'
    context.route(
        framing_page, lambda route: route.fulfill(status=200, content_type="text/html", body=frame_html)
    )
    page = context.new_page()
    refusals = []
    page.on("console", lambda message: "frame-ancestors" in message.text and refusals.append(message.text))
    page.goto(framing_page, timeout=WAIT_MS)
    pane = page.frame_locator("#pane")
    if shown:
        # The stand-in office.js reports Word and no session: the pane ran and asks for a code.
        pane.locator("#code-form:not([hidden])").wait_for(timeout=WAIT_MS)
        assert refusals == []
    else:
        waited = 0
        while not refusals and waited < WAIT_MS:
            page.wait_for_timeout(100)
            waited += 100
        assert refusals, "Chromium did not refuse the frame"
        assert pane.locator("#status").count() == 0


def publish_code(session_id, token, url):
    payload = json.dumps({"s": session_id, "t": token, "u": url}, separators=(",", ":")).encode()
    return "collab:" + base64.urlsafe_b64encode(payload).decode().rstrip("=")


def test_taskpane_explains_codes_it_cannot_use(shared_daphne, contexts):
    server = shared_daphne
    session = server.create_session("bad codes")
    pane = open_taskpane(contexts, server)
    pane.page.wait_for_selector("#code-form:not([hidden])", timeout=WAIT_MS)

    pane.page.fill("#code", "hello there")
    pane.page.click("button[type=submit]")
    assert "neither a publish code" in pane.page.inner_text("#error")

    pane.page.fill("#code", publish_code(session["id"], session["word_token"], "https://elsewhere.example"))
    pane.page.click("button[type=submit]")
    assert "for the collab server at https://elsewhere.example" in pane.page.inner_text("#error")
    assert pane.websockets == []

    pane.page.fill("#code", publish_code(session["id"], "not-the-token", server.url))
    pane.page.click("button[type=submit]")
    pane.wait_for_state("refused")
    assert pane.status() == "Refused: the publishing token is invalid, revoked or expired"
    pane.page.wait_for_timeout(1500)
    assert len(pane.websockets) == 1


def test_taskpane_explains_a_pasted_viewer_link(shared_daphne, contexts):
    server = shared_daphne
    session = server.create_session("viewer link")
    pane = open_taskpane(contexts, server)
    pane.page.wait_for_selector("#code-form:not([hidden])", timeout=WAIT_MS)
    pane.page.fill("#code", f"{server.url}/s/{session['id']}/#token={session['client_token']}")
    pane.page.click("button[type=submit]")
    pane.wait_for_state("refused")
    # The server's Reason, which the pane asked for, names the token's real role.
    assert pane.sent[0]["Features"] == ["refusal-reasons"]
    assert pane.status() == f"Refused: {VIEWER_TOKEN_FOR_PUBLISHING}"
    explanation = pane.page.inner_text("#error")
    assert explanation.startswith("This is a viewer link")
    assert "paste the Word publish code (collab:…)" in explanation
    assert "create_session" in explanation and "Add session" in explanation
    assert pane.updates == []


def test_taskpane_names_a_viewer_token_in_a_publish_code_without_calling_it_a_link(shared_daphne, contexts):
    server = shared_daphne
    session = server.create_session("viewer token in a code")
    pane = open_taskpane(contexts, server)
    pane.page.wait_for_selector("#code-form:not([hidden])", timeout=WAIT_MS)
    pane.page.fill("#code", publish_code(session["id"], session["client_token"], server.url))
    pane.page.click("button[type=submit]")
    pane.wait_for_state("refused")
    assert pane.status() == f"Refused: {VIEWER_TOKEN_FOR_PUBLISHING}"
    assert not pane.page.is_visible("#error")


def test_taskpane_says_an_ended_session_has_ended_or_does_not_exist(shared_daphne, contexts):
    server = shared_daphne
    session = server.create_session("ended before the pane")
    server.manage("end_session", session["id"])
    pane = open_taskpane(contexts, server, properties=word_properties(session))
    pane.wait_for_state("refused")
    assert pane.status() == f"Refused: {SESSION_ENDED.lower()}"


def test_taskpane_reconnects_and_sends_what_changed_while_the_server_was_down(daphne, contexts):
    server = daphne()
    session = server.create_session("task pane restart")
    pane = open_taskpane(contexts, server, documents=[FIRST, SECOND], properties=word_properties(session))
    pane.wait_for_state("live")
    pane.wait_for_updates(1)

    server.kill()
    pane.wait_for_state("reconnecting")
    pane.stub("setDocument(1)")
    pane.fire("paragraphChanged")
    server.start()

    pane.wait_for_updates(2)
    pane.wait_for_state("live")
    assert pane.updates[-1]["Content"] == SECOND
    viewer = open_viewer(contexts, server, session)
    wait_for_viewer_text(viewer, "This text is formatted using the Heading 1 paragraph style.")
    assert pane.errors == []


def test_end_session_button_ends_the_session_for_viewers(shared_daphne, contexts):
    server = shared_daphne
    session = server.create_session("end from word")
    viewer = open_viewer(contexts, server, session)
    pane = open_taskpane(contexts, server, properties=word_properties(session))
    pane.wait_for_state("live")
    pane.wait_for_updates(1)

    pane.page.click("#end")
    assert pane.page.inner_text("#end") == "Click again to end it for everyone"
    assert viewer.evaluate("() => document.body.dataset.state") == "live"
    pane.page.click("#end")
    pane.wait_for_state("ended")
    assert pane.status() == "Session ended"
    viewer.wait_for_function("() => document.body.dataset.state === 'ended'", timeout=WAIT_MS)


def test_taskpane_outside_word_says_how_to_install_it(shared_daphne, contexts):
    pane = open_taskpane(contexts, shared_daphne, __stubHost=None)
    pane.page.wait_for_selector("#outside:not([hidden])", timeout=WAIT_MS)
    assert pane.status() == "Not in Word"
    assert pane.page.get_attribute("#outside a", "href") == f"{shared_daphne.url}/addin/manifest.xml"


def test_taskpane_says_so_when_office_js_does_not_load(shared_daphne, chromium):
    context = chromium.new_context()
    try:
        context.route("https://appsforoffice.microsoft.com/**", lambda route: route.abort())
        page = context.new_page()
        page.goto(f"{shared_daphne.url}/addin/taskpane.html", timeout=WAIT_MS)
        page.wait_for_function("() => document.body.dataset.state === 'refused'", timeout=WAIT_MS)
        assert "office.js did not load" in page.inner_text("#error")
    finally:
        context.close()
