"""The viewer page in real headless Chromium, against real daphne processes."""

import json
import time
from datetime import datetime

import pytest
from websockets.sync.client import connect

from sessions_app.protocol import SESSION_ENDED
from tests.documents import corpus_file, flat_opc
from tests.pages import PageWatch
from tests.servers import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.integration]

WAIT = 30  # seconds any single wait may take
WAIT_MS = WAIT * 1000
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"


def publish(server, session, content):
    """Send a Flat OPC document as the Word add-in does; the version the server stored."""
    with connect(server.ws_url, open_timeout=WAIT, close_timeout=2, max_size=None) as websocket:
        websocket.send(
            json.dumps(
                {
                    "Origin": "word",
                    "SessionId": session["id"],
                    "Token": session["word_token"],
                    "Action": "update-ooxml",
                    "PayloadType": "ooxml",
                    "Content": content,
                    "Protocol": 2,
                }
            )
        )
        deadline = time.monotonic() + WAIT
        while True:
            message = json.loads(websocket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("Success") is False:
                raise AssertionError(f"publishing failed: {message}")
            if message.get("Action") == "get-html":
                return message["Version"]


def end_session(server, session):
    """End the session as the Word add-in's "End session" button does."""
    with connect(server.ws_url, open_timeout=WAIT, close_timeout=2) as websocket:
        hello = {"Origin": "word", "SessionId": session["id"], "Token": session["word_token"], "Protocol": 2}
        websocket.send(json.dumps({**hello, "Action": "end-session"}))
        deadline = time.monotonic() + WAIT
        while True:
            message = json.loads(websocket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("Action") == "end-session":
                assert message["Success"] is True, message
                return


def long_document(last_words):
    """Sixty paragraphs, enough to scroll; the last one says `last_words`."""
    paragraphs = [f"Paragraph {n}: " + "words of a long document " * 12 for n in range(1, 60)]
    return flat_opc(*paragraphs, last_words)


def open_viewer(context, server, session, token=None):
    page = context.new_page()
    watch = PageWatch(page)
    token = session["client_token"] if token is None else token
    page.goto(f"{server.url}/s/{session['id']}/#token={token}", timeout=WAIT_MS)
    return page, watch


def wait_for_text(page, text):
    page.wait_for_function(
        "text => document.getElementById('document').textContent.includes(text)", arg=text, timeout=WAIT_MS
    )


def wait_for_state(page, state):
    page.wait_for_function("state => document.body.dataset.state === state", arg=state, timeout=WAIT_MS)


def viewer_showing(context, server, title, text):
    """A new session whose first version is one paragraph, `text`, and a viewer page showing it."""
    session = server.create_session(title)
    publish(server, session, flat_opc(text))
    page, watch = open_viewer(context, server, session)
    wait_for_text(page, text)
    return session, page, watch


def status_text(page):
    return page.inner_text("#status")


@pytest.fixture
def context(chromium):
    context = chromium.new_context(viewport={"width": 1100, "height": 800})
    yield context
    context.close()


def test_viewer_shows_published_document_then_next_version_in_place(shared_daphne, context):
    server = shared_daphne
    session = server.create_session("viewer in place")
    page, watch = open_viewer(context, server, session)
    wait_for_state(page, "live")
    assert "Nothing has been published yet" in page.inner_text("#notice")

    publish(server, session, long_document("The first ending."))
    wait_for_text(page, "The first ending.")
    # Mark the container and an unchanged block, then scroll into the middle of the document.
    page.evaluate(
        """() => {
            const container = document.getElementById('document');
            container.testMark = 'same container';
            container.firstElementChild.testMark = 'same block';
            window.scrollTo(0, 1500);
        }"""
    )
    page.wait_for_function("() => window.scrollY === 1500", timeout=WAIT_MS)

    publish(server, session, long_document("The second ending."))
    wait_for_text(page, "The second ending.")
    kept = page.evaluate(
        """() => {
            const container = document.getElementById('document');
            return {
                container: container.testMark,
                block: container.firstElementChild.testMark,
                scrollY: window.scrollY,
                gone: container.textContent.includes('The first ending.'),
                version: container.dataset.version,
            };
        }"""
    )
    assert kept == {
        "container": "same container",
        "block": "same block",
        "scrollY": 1500,
        "gone": False,
        "version": "2",
    }
    assert status_text(page).strip() == "Live"
    assert page.inner_text("#viewers") == "1 viewer"
    assert page.inner_text("#updated").startswith("Version 2 · updated ")
    assert watch.errors == []


def test_the_page_says_when_the_version_was_published_not_when_it_loaded(shared_daphne, context):
    server = shared_daphne
    session = server.create_session("published time")
    before = time.time()
    publish(server, session, flat_opc("Published a while ago."))
    after = time.time()
    time.sleep(2)  # so the page loads well after the version was published
    page, watch = open_viewer(context, server, session)
    wait_for_text(page, "Published a while ago.")
    assert page.inner_text("#updated").startswith("Version 1 · updated ")
    published_at = page.get_attribute("#updated", "datetime")
    assert published_at.endswith("Z")
    published = datetime.fromisoformat(published_at).timestamp()
    assert int(before) <= published <= after  # PublishedAt has whole seconds
    assert watch.errors == []


def test_token_never_leaves_the_page_except_in_the_websocket_message(shared_daphne, context):
    server = shared_daphne
    session, page, watch = viewer_showing(context, server, "token hygiene", "Nothing secret here.")
    page.reload(timeout=WAIT_MS)
    wait_for_text(page, "Nothing secret here.")

    token = session["client_token"]
    assert len(watch.requests) >= 6  # two page loads, each with its styles, scripts and icon
    for url, headers in watch.requests:
        assert token not in url
        assert all(token not in value for value in headers.values()), url
        assert not headers.get("referer"), url
    assert watch.websockets and all(token not in websocket.url for websocket in watch.websockets)
    # ...it travels in the first WebSocket message only.
    assert [message.get("Token") for message in watch.sent] == [token, token]
    assert context.cookies() == []
    storage = page.evaluate(
        "() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"
    )
    assert token not in storage
    assert token not in server.output_tail(lines=10_000)
    assert watch.errors == []


def test_viewer_renders_a_real_document_with_footnote_links_that_keep_the_token(shared_daphne, context):
    server = shared_daphne
    session = server.create_session("real document")
    sample = corpus_file("flatopc/docx4j-sample-docx.xml").read_text(encoding="utf-8-sig")
    publish(server, session, sample)
    page, watch = open_viewer(context, server, session)
    wait_for_text(page, "This is a document exhibiting basic docx features.")
    assert page.locator("#document table").count() >= 1
    assert page.locator("#document h1").count() >= 3
    assert page.title().startswith("Docx sample document")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "viewer.png"))

    notes = corpus_file("flatopc/docx4j-endnotes.xml").read_text(encoding="utf-8-sig")
    publish(server, session, notes)
    wait_for_text(page, "My second endnote.")
    page.click("#document sup a", timeout=WAIT_MS)
    assert page.evaluate("() => window.location.hash") == f"#token={session['client_token']}"
    assert watch.errors == []


def test_viewer_catches_up_after_its_server_is_killed_and_restarted(daphne, context):
    server = daphne()
    other = daphne()  # shares the database: Word publishes there while the viewer's server is down
    session, page, watch = viewer_showing(context, server, "restart", "Before the crash.")
    # The page's own resources (its icon comes last) are in before the crash: only the socket's
    # refused connections are expected while the server is down.
    page.wait_for_load_state("networkidle")

    server.kill()
    wait_for_state(page, "reconnecting")
    page.wait_for_function(
        "() => /reconnecting in \\d+ s/.test(document.getElementById('status').textContent)", timeout=WAIT_MS
    )
    assert publish(other, session, flat_opc("Published while the server was down.")) == 2
    server.start()

    wait_for_text(page, "Published while the server was down.")
    wait_for_state(page, "live")
    assert "Before the crash." not in page.inner_text("#document")
    assert page.evaluate("() => document.getElementById('document').dataset.version") == "2"
    # The page resumed from the version it showed.
    assert watch.sent[0] == {
        "Origin": "client",
        "SessionId": session["id"],
        "Token": session["client_token"],
        "Action": "init",
        "Protocol": 2,
        "Features": ["html-patch"],  # http://127.0.0.1 is a secure context: SubtleCrypto is there
    }
    assert watch.sent[-1]["LastVersion"] == 1
    assert 2 <= len(watch.websockets) <= 10  # backoff, not a stream of attempts
    assert watch.errors == []


def test_viewer_served_under_another_name_of_its_server_connects(daphne, context):
    # As `make run` reached through the machine's address: the page's origin is not the public URL's.
    server = daphne(COLLAB_PUBLIC_URL="http://localhost")
    session = server.create_session("another name")
    publish(server, session, flat_opc("Reached under another name."))
    page, watch = open_viewer(context, server, session)
    wait_for_text(page, "Reached under another name.")
    wait_for_state(page, "live")
    assert page.evaluate("() => window.location.origin") == server.url
    assert watch.errors == []


def test_viewer_shows_the_end_of_the_session_and_stops(shared_daphne, context):
    server = shared_daphne
    session, page, watch = viewer_showing(context, server, "ending", "The last words.")
    wait_for_state(page, "live")

    end_session(server, session)
    wait_for_state(page, "ended")
    assert "Session ended" in status_text(page)
    assert "The last version is shown below" in page.inner_text("#notice")
    assert "The last words." in page.inner_text("#document")
    sockets = len(watch.websockets)
    page.wait_for_timeout(2000)
    assert len(watch.websockets) == sockets  # no reconnecting to an ended session

    page.reload(timeout=WAIT_MS)
    wait_for_state(page, "refused")
    # Not a refusal of the reader: the one wording of collab's own surfaces.
    assert status_text(page) == "Session ended"
    assert page.inner_text("#notice") == f"{SESSION_ENDED}."


def test_viewer_refuses_a_bad_token_in_words_and_does_not_retry(shared_daphne, context):
    server = shared_daphne
    session = server.create_session("bad token")
    page, watch = open_viewer(context, server, session, token="not-the-token")
    wait_for_state(page, "refused")
    assert "Access refused: the link's access token is invalid, revoked or expired" in status_text(page)
    assert "cannot be shown" in page.inner_text("#notice")
    page.wait_for_timeout(2000)
    assert len(watch.websockets) == 1


def test_viewer_of_an_unknown_session_says_so(shared_daphne, context):
    server = shared_daphne
    page, watch = open_viewer(context, server, {"id": "no-such-session", "client_token": "whatever"})
    wait_for_state(page, "refused")
    assert page.inner_text("#notice") == f"{SESSION_ENDED}."


def test_viewer_link_without_token_is_refused_without_connecting(shared_daphne, context):
    server = shared_daphne
    session = server.create_session("no token")
    page = context.new_page()
    watch = PageWatch(page)
    page.goto(f"{server.url}/s/{session['id']}/", timeout=WAIT_MS)
    wait_for_state(page, "refused")
    assert "the link carries no access token" in status_text(page)
    assert watch.websockets == []
