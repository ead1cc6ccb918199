"""The field's TinyMCE plugin `editinword`, unchanged, in TinyMCE 5 on a host page of another origin.

The host page, TinyMCE and the plugin are served by Playwright at HOST_ORIGIN (nothing listens
there); the page reaches collab, a real daphne, across origins as the host application's does.
There is no Word: `window.open` records the `ms-word:` link, and Word's part (downloading the
.docx, reading its properties, publishing, ending) is played by a WebSocket client.
"""

import asyncio
import json
import mimetypes
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from websockets.asyncio.client import connect

from tests.clients import Publisher
from tests.documents import CORPUS, corpus_file
from tests.launch_links import WORD_URL_PREFIX, custom_properties
from tests.pages import PageWatch, sign_in_to_admin
from tests.servers import REPO_ROOT, Server, create_superuser

pytestmark = [pytest.mark.browser, pytest.mark.integration]

WAIT_MS = 30_000
HOST_ORIGIN = "http://host.localtest:8765"
FIELD_PLUGIN = CORPUS.parent / "field-clients" / "tinymce-editinword" / "plugin.min.js"
TINYMCE = REPO_ROOT / ".browser-packages" / "node_modules" / "tinymce"
BUTTON = 'button[aria-label="Edit in Word"]'
WORD_TEXT = "This text is formatted using the Heading 1 paragraph style."
# The plugin's words (plugin.min.js ERRORS, in its default language fa).
NOT_ALLOWED = "ایجاد نشست جدید مجاز نمی باشد"  # 2004: the key holds its maximum of sessions
ENDED_FROM_WORD = "نشست از سمت وورد پایان یافت"  # 3002

# No Word: the link is recorded, and the launcher window closes at once, as when Word took the link.
WINDOW_OPEN_STUB = """
window.__opened = [];
window.open = (url) => {
    window.__opened.push(url);
    let reads = 0;
    return { get closed() { reads += 1; return reads > 1; }, close() {} };
};
"""

HOST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Host application</title>
<script src="/tinymce/tinymce.min.js"></script></head>
<body><textarea id="editor">{content}</textarea>
<script>
tinymce.init({{
    selector: "#editor",
    menubar: false,
    toolbar: "bold italic | editinword",
    external_plugins: {{ editinword: "/editinword/plugin.min.js" }},
    editinword_generate_url: {generate_url},
    editinword_websocket_url: {websocket_url},
    editinword_token: {key},
}});
</script></body></html>"""


def require_tinymce():
    if not (TINYMCE / "tinymce.min.js").is_file():
        pytest.fail(
            f"TinyMCE 5 is not installed in {TINYMCE.parent}: "
            "`make browser` installs it (npm install --prefix .browser-packages tinymce@5)",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def collab(integration_database_url):
    """One daphne that lets the host application's origin in."""
    server = Server({"DATABASE_URL": integration_database_url, "COLLAB_ALLOWED_ORIGINS": HOST_ORIGIN})
    try:
        yield server.start()
    finally:
        server.stop()


def create_key(server, name, max_sessions=0):
    made = server.manage(
        "create_integration_key", "--name", name, "--max-sessions", str(max_sessions), "--json"
    )
    return json.loads(made)


def session_record(server, session_id):
    """The session's status and the id of the key that made it, read from the database."""
    script = (
        "import json; from sessions_app.models import CollabSession; "
        f"s = CollabSession.objects.get(pk={session_id!r}); "
        "print(json.dumps({'status': s.status, 'key': s.integration_key_id}))"
    )
    return json.loads(server.manage("shell", "-c", script).strip().splitlines()[-1])


def wait_for_status(server, session_id, status, seconds=30):
    for _ in range(seconds * 2):
        if session_record(server, session_id)["status"] == status:
            return
        time.sleep(0.5)
    raise AssertionError(f"session {session_id} is not {status}: {session_record(server, session_id)}")


def run_as_word(coroutine):
    """Run Word's part to its end on a thread of its own (Playwright's sync API holds this one's loop)."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def download(url):
    """GET without credentials or cookies, as Word fetches the document; (status, headers, body)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=30) as response:
        return response.status, response.headers, response.read()


class HostPage(PageWatch):
    """The host application's page with TinyMCE and the field plugin."""

    def editor(self, expression):
        return self.page.evaluate(f"() => tinymce.activeEditor.{expression}")

    def editable(self):
        return self.editor("getBody().getAttribute('contenteditable')") == "true"

    def pressed(self):
        return self.page.get_attribute(BUTTON, "aria-pressed") == "true"

    def opened(self):
        return self.page.evaluate("() => window.__opened")

    def wait_for(self, expression, arg=None):
        self.page.wait_for_function(expression, arg=arg, timeout=WAIT_MS)

    def wait_for_content(self, text):
        self.wait_for("text => tinymce.activeEditor.getContent().includes(text)", text)

    def wait_until_editable(self):
        self.wait_for("() => tinymce.activeEditor.getBody().getAttribute('contenteditable') === 'true'")

    def notifications(self):
        return self.page.eval_on_selector_all(".tox-notification", "boxes => boxes.map(b => b.textContent)")

    def wait_for_notification(self, text):
        shown = "[...document.querySelectorAll('.tox-notification')].some(b => b.textContent.includes(text))"
        self.wait_for(f"text => {shown}", text)

    def wait_for_console_error(self, prefix):
        """The first error the page logged that starts with `prefix`, waited for."""
        for _ in range(WAIT_MS // 50):
            logged = [text for text in self.console_errors if text.startswith(prefix)]
            if logged:
                return logged[0]
            self.page.wait_for_timeout(50)
        raise AssertionError(f"no console error starting {prefix!r}: {self.console_errors}")


@pytest.fixture
def host_pages(chromium, collab):
    """`host_pages(key, content)`: a host page at HOST_ORIGIN whose editor holds `content`."""
    require_tinymce()
    contexts = []

    def open_page(key, content="<h1>Quarterly report</h1><p>Written on the web.</p>"):
        context = chromium.new_context()
        contexts.append(context)
        page_html = HOST_PAGE.format(
            content=content.replace("&", "&amp;").replace("<", "&lt;"),
            generate_url=json.dumps(f"{collab.url}/edit-in-word/generate-word-launch-link"),
            websocket_url=json.dumps(collab.ws_url),
            key=json.dumps(key),
        )

        def serve(route):
            path = route.request.url.removeprefix(HOST_ORIGIN).split("?")[0]
            if path == "/":
                route.fulfill(status=200, content_type="text/html", body=page_html)
            elif path == "/editinword/plugin.min.js":
                route.fulfill(
                    status=200, content_type="application/javascript", body=FIELD_PLUGIN.read_bytes()
                )
            elif path.startswith("/tinymce/") and ".." not in path:
                file = TINYMCE / path.removeprefix("/tinymce/")
                if file.is_file():
                    kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                    route.fulfill(status=200, content_type=kind, body=file.read_bytes())
                else:
                    route.fulfill(status=404, body="")
            else:
                route.fulfill(status=404, body="")

        context.route(f"{HOST_ORIGIN}/**", serve)
        context.add_init_script(WINDOW_OPEN_STUB)
        page = context.new_page()
        host = HostPage(page)
        page.goto(f"{HOST_ORIGIN}/", timeout=WAIT_MS)
        host.wait_for("() => window.tinymce && tinymce.activeEditor && tinymce.activeEditor.initialized")
        page.wait_for_selector(BUTTON, timeout=WAIT_MS)
        return host

    yield open_page
    for context in contexts:
        context.close()


def start_editing(host):
    """Click "Edit in Word" and wait for the launch link the plugin opened; the session's id."""
    host.page.click(BUTTON)
    host.wait_for("() => window.__opened.length > 0")
    host.wait_for("() => sessionStorage.getItem('open_in_word_session') !== null")
    return host.page.evaluate("() => sessionStorage.getItem('open_in_word_session')")


def test_the_field_plugin_hands_its_content_to_word_and_shows_what_word_publishes(collab, host_pages):
    key = create_key(collab, "host application")
    host = host_pages(key["key"])
    assert host.editable()

    session_id = start_editing(host)
    assert not host.editable()
    assert host.pressed()
    assert session_record(collab, session_id) == {"status": "active", "key": key["id"]}

    [word_url] = host.opened()
    assert word_url.startswith(WORD_URL_PREFIX + "http")
    status, headers, docx = download(word_url.removeprefix(WORD_URL_PREFIX))
    assert status == 200
    assert headers["Content-Type"].startswith("application/vnd.openxmlformats")
    properties = custom_properties(docx)
    assert properties["sessionId"] == session_id
    assert properties["token"]

    # Word opens the document and publishes its own version with the document's token.
    document = corpus_file("flatopc/oasamples-text-with-style.xml").read_text(encoding="utf-8-sig")

    run_as_word(publish_as_word(properties, collab.ws_url, document))
    host.wait_for_content(WORD_TEXT)
    assert "Written on the web" not in host.editor("getContent()")
    assert not host.editable()
    assert host.pressed()

    # Word ends the session: the plugin deactivates and the editor is editable again, with Word's text.
    run_as_word(end_from_word(properties, collab.ws_url))
    host.wait_until_editable()
    host.wait_for_notification(ENDED_FROM_WORD)
    assert not host.pressed()
    assert WORD_TEXT in host.editor("getContent()")
    assert session_record(collab, session_id)["status"] == "ended"
    assert host.page.evaluate("() => sessionStorage.getItem('open_in_word_session')") is None
    # The plugin logs each message it shows as an error; nothing else went wrong.
    assert host.errors == [f"editinword: {ENDED_FROM_WORD}"]


async def publish_as_word(properties, ws_url, document, text=WORD_TEXT):
    """Word's add-in publishes `document`, signed in with the token from the .docx's properties."""
    session = {"id": properties["sessionId"], "word_token": properties["token"]}
    publisher = Publisher([ws_url], session)
    outcome = await publisher.publish(document, text)
    await publisher.disconnect()
    assert outcome.version is not None, outcome


async def end_from_word(properties, ws_url):
    """Word's add-in ends the session (taskpane.js: Origin word, Action end-session)."""
    async with connect(ws_url, proxy=None) as websocket:
        hello = {
            "Origin": "word",
            "SessionId": properties["sessionId"],
            "Token": properties["token"],
            "Action": "end-session",
        }
        await websocket.send(json.dumps(hello))
        answer = json.loads(await websocket.recv())
        assert answer["Action"] == "end-session" and answer["Success"], answer


def test_toggling_the_button_off_ends_the_session(collab, host_pages):
    key = create_key(collab, "toggle off")
    host = host_pages(key["key"])
    session_id = start_editing(host)
    # The plugin's socket is signed in once it holds the session's first version.
    host.wait_for_content("Quarterly report")
    assert session_record(collab, session_id)["status"] == "active"

    host.page.click(BUTTON)
    assert host.editable()
    assert not host.pressed()
    wait_for_status(collab, session_id, "ended")
    with pytest.raises(urllib.error.HTTPError) as gone:
        download(host.opened()[0].removeprefix(WORD_URL_PREFIX))
    assert gone.value.code in (404, 410)
    assert host.errors == []


def test_a_bad_key_leaves_the_editor_as_it_was(collab, host_pages):
    host = host_pages("not-a-key")
    host.page.click(BUTTON)
    host.wait_until_editable()
    assert not host.pressed()
    # The plugin shows nothing for a refusal with a message; it logs the status and the message.
    assert "integration key" in host.wait_for_console_error("editinword: 401 - ")
    assert host.opened() == []
    assert "Written on the web." in host.editor("getContent()")


def test_a_key_at_its_session_cap_shows_new_session_not_allowed(collab, host_pages):
    key = create_key(collab, "capped", max_sessions=1)
    first = host_pages(key["key"])
    start_editing(first)

    second = host_pages(key["key"])
    second.page.click(BUTTON)
    second.wait_for_notification(NOT_ALLOWED)
    second.wait_until_editable()
    assert not second.pressed()
    assert second.opened() == []
    assert "maximum of 1 active sessions" in second.wait_for_console_error("editinword: 400 - ")
    # The first session is untouched.
    assert not first.editable()
    assert first.pressed()


# The staff-only "Try Edit in Word" page, on collab itself: editinword.js without TinyMCE.
TRY_PAGE = "/edit-in-word/try/"
STAFF_PASSWORD = "try-edit-in-word-password"  # noqa: S105 - a throwaway test database's user
TABLE_TEXT = "Southeast"  # in oasamples-table-styled


@pytest.fixture(scope="module")
def staff(collab):
    create_superuser(collab.env, STAFF_PASSWORD, username="trier")
    return "trier"


@pytest.fixture
def try_page(chromium, collab, staff):
    context = chromium.new_context()
    context.add_init_script(WINDOW_OPEN_STUB)
    page = context.new_page()
    sign_in_to_admin(page, collab.url, staff, STAFF_PASSWORD, TRY_PAGE, WAIT_MS)
    yield PageWatch(page)
    context.close()


def wait_for_area_text(page, text):
    page.wait_for_function(
        "text => document.getElementById('area').textContent.includes(text)", arg=text, timeout=WAIT_MS
    )


def wait_for_state(page, state):
    page.wait_for_function("state => document.body.dataset.state === state", arg=state, timeout=WAIT_MS)


def test_the_try_page_is_for_staff_only(collab):
    status, _, body = download(f"{collab.url}{TRY_PAGE}")
    assert status == 200
    assert b"id_username" in body  # the admin's sign-in page, not the try page
    assert b"Try Edit in Word" not in body


def test_the_try_page_hands_its_area_to_word_and_shows_each_version(collab, try_page):
    page = try_page.page
    key = create_key(collab, "try page")
    assert page.get_attribute("#area", "contenteditable") == "true"
    page.fill("#key", key["key"])
    page.click("#toggle")
    wait_for_state(page, "live")
    assert page.get_attribute("#area", "contenteditable") == "false"
    wait_for_area_text(page, "Written on the web, finished in Word.")

    [word_url] = page.evaluate("() => window.__opened")
    assert word_url.startswith(WORD_URL_PREFIX + "http")
    assert page.get_attribute("#word-link", "href") == word_url
    properties = custom_properties(download(word_url.removeprefix(WORD_URL_PREFIX))[2])
    assert session_record(collab, properties["sessionId"]) == {"status": "active", "key": key["id"]}
    [hello] = [message for message in try_page.sent if message.get("Action") == "init"]
    assert hello == {
        "Origin": "client",
        "SessionId": properties["sessionId"],
        "Token": key["key"],
        "Action": "init",
        "Protocol": 2,
        "Features": ["html-patch"],
    }

    for name, text in (("oasamples-table-styled", TABLE_TEXT), ("oasamples-text-with-style", WORD_TEXT)):
        document = corpus_file(f"flatopc/{name}.xml").read_text(encoding="utf-8-sig")
        run_as_word(publish_as_word(properties, collab.ws_url, document, text))
        wait_for_area_text(page, text)
    assert TABLE_TEXT not in page.inner_text("#area")

    run_as_word(end_from_word(properties, collab.ws_url))
    wait_for_state(page, "ended")
    assert page.get_attribute("#area", "contenteditable") == "true"
    assert page.inner_text("#toggle") == "Edit in Word"
    assert WORD_TEXT in page.inner_text("#area")
    assert try_page.errors == []


def test_the_try_page_ends_the_session_with_its_button(collab, try_page):
    page = try_page.page
    key = create_key(collab, "try page end")
    page.fill("#key", key["key"])
    page.click("#toggle")
    wait_for_state(page, "live")
    session_id = page.evaluate("() => window.__opened[0]")
    properties = custom_properties(download(session_id.removeprefix(WORD_URL_PREFIX))[2])

    page.click("#toggle")
    wait_for_state(page, "ended")
    assert page.get_attribute("#area", "contenteditable") == "true"
    assert session_record(collab, properties["sessionId"])["status"] == "ended"


def test_the_try_page_says_why_a_key_is_refused(try_page):
    page = try_page.page
    page.fill("#key", "not-a-key")
    page.click("#toggle")
    wait_for_state(page, "failed")
    assert "integration key" in page.inner_text("#state")
    assert page.get_attribute("#area", "contenteditable") == "true"
    assert page.evaluate("() => window.__opened") == []
