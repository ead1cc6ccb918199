"""`make run` in a fresh clone, as a newcomer gets it: what it prints works as printed.

The clone is of this repository's committed HEAD: uncommitted changes are not in it, so commit
before trusting this test with them. Its `make run` builds a real virtualenv with pip (from pip's
cache when it can), serves the demo session, and the test follows the printed block in Chromium:
the viewer URL shows the sample document, and the publish command, run as printed, publishes the
other sample as the next version.
"""

import importlib.util
import os
import re
import signal
import subprocess
import time
import urllib.request
from xml.sax.saxutils import unescape

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.servers import REPO_ROOT, free_port

pytestmark = [pytest.mark.fresh_clone, pytest.mark.browser, pytest.mark.integration]

INSTALL_SECONDS = 600  # a real pip install on a loaded machine, then the migrations
WAIT = 60  # seconds any other single wait may take
# A newcomer's shell has none of these: the test process's own configuration, and the variables
# that make (which may be running this test) would take as its own.
NOT_INHERITED = ("DATABASE_URL", "REDIS_URL", "HOST", "PORT", "PYTHON", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
NOT_INHERITED_PREFIXES = ("DJANGO_", "COLLAB_")
ROW = re.compile(r"^  (\S.*?\S)  +(\S.*)$", re.MULTILINE)
RUN_TEXT = re.compile(r"<w:t(?: [^>]*)?>(.*?)</w:t>")  # not <w:tbl>, <w:tr> or <w:tc>


def newcomer_env():
    """This process's environment (PATH, HOME and pip's settings) less collab's and make's."""
    return {
        name: value
        for name, value in os.environ.items()
        if name not in NOT_INHERITED and not name.startswith(NOT_INHERITED_PREFIXES)
    }


@pytest.fixture
def clone(tmp_path):
    """tmp_path/"collab", a clone of the committed HEAD, with tmp_path/"shared" beside it as in CI."""
    shared = REPO_ROOT.parent / "shared"
    if not shared.is_dir():
        pytest.fail(f"{shared} is missing: the checkout needs ../shared beside it, as CI provides")
    (tmp_path / "shared").symlink_to(shared)
    head = git("rev-parse", "HEAD", cwd=REPO_ROOT).strip()
    checkout = tmp_path / "collab"
    git("clone", "--quiet", "--no-checkout", str(REPO_ROOT), str(checkout), cwd=tmp_path)
    git("checkout", "--quiet", head, cwd=checkout)
    return checkout


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


class Started:
    """A command run in its own process group, its output in a file."""

    def __init__(self, command, cwd, log):
        self.log = log
        with open(log, "wb") as output:
            self.process = subprocess.Popen(
                command,
                cwd=cwd,
                env=newcomer_env(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self):
        return self.log.read_text(errors="replace")

    def stop(self):
        """SIGTERM to the whole group (make, the shell, daphne), SIGKILL if it lingers."""
        for sent in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sent)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=30)
                break
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture
def start(tmp_path):
    """`start(name, command, cwd)`: a `Started` command; every group it started is stopped afterwards."""
    started = []

    def run(name, command, cwd):
        started.append(Started(command, cwd, tmp_path / f"{name}.log"))
        return started[-1]

    yield run
    for each in started:
        each.stop()


def printed_rows(make_run):
    """The rows of the block `make run` printed, once it printed its last one."""
    deadline = time.monotonic() + INSTALL_SECONDS
    while time.monotonic() < deadline:
        rows = dict(ROW.findall(make_run.output()))
        if "API docs" in rows:
            return rows
        if make_run.process.poll() is not None:
            break
        time.sleep(0.5)
    raise AssertionError(f"make run printed no block (exit {make_run.process.poll()}):\n{make_run.output()}")


def wait_until_answering(url):
    """Wait until url answers 200; no proxy, the server is on loopback."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            with opener.open(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:  # not listening yet (URLError and HTTPError are OSErrors)
            pass
        time.sleep(0.2)
    raise AssertionError(f"no answer from {url}")


def sample_texts(clone, sample):
    """The text of each body block of a sample, as scripts/make_samples.py writes it."""
    spec = importlib.util.spec_from_file_location("make_samples", clone / "scripts" / "make_samples.py")
    make_samples = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_samples)
    body, _links = make_samples.SAMPLES[sample]()
    return ["".join(unescape(text) for text in RUN_TEXT.findall(block)) for block in body]


def wait_for_texts(page, texts, process):
    """Wait until the viewer's document holds every one of texts; what `process` printed if not."""
    try:
        page.wait_for_function(
            "texts => texts.every(text => document.getElementById('document').textContent.includes(text))",
            arg=texts,
            timeout=WAIT * 1000,
        )
    except PlaywrightTimeout:
        shown = page.evaluate("() => document.getElementById('document').textContent")
        missing = [text for text in texts if text not in shown]
        raise AssertionError(
            f"the page lacks {missing!r}; the command printed:\n{process.output()}"
        ) from None


def test_make_run_in_a_fresh_clone_serves_the_sample_and_publishes_as_printed(clone, start, chromium):
    make_run = start("make-run", ["make", "run", f"PORT={free_port()}"], clone)
    rows = printed_rows(make_run)
    assert (clone / ".venv").is_dir() and not (clone / ".venv").is_symlink()  # its own, built now
    viewer = rows["Open the viewer"]
    wait_until_answering(viewer.split("#", 1)[0])

    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(viewer, timeout=WAIT * 1000)
        welcome = sample_texts(clone, "welcome.docx")
        wait_for_texts(page, welcome, make_run)

        publish = start("publish", ["sh", "-c", rows["Publish a sample"]], clone)
        report = sample_texts(clone, "report.docx")
        wait_for_texts(page, report, publish)
        assert publish.process.poll() is None  # still watching the file
        publish.stop()

        shown = page.inner_text("#document")
        assert report[0] in shown and welcome[0] not in shown  # the headings: Quarterly report, Welcome
        assert page.get_attribute("#document", "data-version") == "2"
    finally:
        context.close()
