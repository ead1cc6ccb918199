"""Fan-out: one encode per process, html-patch, slow viewers cut off, presence across processes."""

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import random
import socket
import time
import urllib.request

import pytest
from channels.db import database_sync_to_async

from sessions_app.html_patch import apply_patch
from sessions_app.hub import document_frames
from sessions_app.publishing import conversion_pool
from sessions_app.services import do_publish_document
from tests.documents import flat_opc
from tests.sockets import join
from tests.test_browser_viewer import publish as publish_from_word
from tests.test_integration_daphne import html_with, joined, new_session, update

TIMEOUT = 30
BROWSER_WAIT_MS = 30_000

consumer_test = pytest.mark.django_db(transaction=True)


async def receive(communicator, *actions):
    """The next message with one of these actions, skipping presence announcements."""
    while True:
        message = json.loads(await communicator.receive_from(timeout=TIMEOUT))
        if message.get("Action") != "presence":
            assert message["Action"] in actions, message
            return message


def blocks_of(message):
    """A full get-html message's HTML cut into the blocks its "Blocks" lengths give (UTF-16 units)."""
    encoded = message["Content"].encode("utf-16-le", "surrogatepass")
    blocks, start = [], 0
    for length in message["Blocks"]:
        blocks.append(encoded[start * 2 : (start + length) * 2].decode("utf-16-le", "surrogatepass"))
        start += length
    assert "".join(blocks) == message["Content"]
    return blocks


def document(paragraphs):
    return "".join(paragraphs)


async def publish(word, html):
    await word.send_to(
        text_data=json.dumps({"Action": "update-ooxml", "PayloadType": "html", "Content": html})
    )


@consumer_test
async def test_html_patch_reproduces_every_version_a_full_get_html_gives(session):
    rng = random.Random(6)
    viewer = await join(session, Features=["html-patch", "no-such-feature"])
    plain = await join(session, Features=[])
    word = await join(session, "word")
    assert (await receive(viewer, "init"))["Features"] == ["html-patch"]
    assert (await receive(plain, "init"))["Features"] == []
    await receive(word, "init")
    blocks = blocks_of(await receive(viewer, "get-html"))
    await receive(plain, "get-html")
    paragraphs = [f"<p>Paragraph {n} of a long document, é😀</p>" for n in range(60)]
    patches = 0
    for version in range(1, 16):
        if version > 1:
            at = rng.randrange(len(paragraphs))
            paragraphs[at : at + rng.randrange(2)] = [f"<h2>Edit {version}</h2>", f"<p>New {version}</p>"][
                : rng.randrange(1, 3)
            ]
        await publish(word, document(paragraphs))
        message = await receive(viewer, "get-html", "html-patch")
        assert message["Version"] == version
        if message["Action"] == "html-patch":
            patches += 1
            assert message["BaseVersion"] == version - 1
            blocks = apply_patch(blocks, message["Ops"])
            html = "".join(blocks)
            assert hashlib.sha256(html.encode()).hexdigest() == message["Checksum"]
            assert len(json.dumps(message)) < len(html) / 4
        else:
            blocks = blocks_of(message)
            html = message["Content"]
        # The full document a get-html gives is exactly what the patches built.
        await viewer.send_to(text_data=json.dumps({"Action": "get-html"}))
        full = await receive(viewer, "get-html")
        assert full["Version"] == version and full["Content"] == html
        assert blocks_of(full) == blocks
        # A client that did not ask for the extension never sees it.
        assert (await receive(plain, "get-html"))["Content"] == html
        await receive(word, "get-html")
    assert patches == 14  # every version after the first
    for communicator in (viewer, plain, word):
        await communicator.disconnect()


@consumer_test
async def test_a_viewer_that_missed_a_version_gets_the_full_document(session):
    word = await join(session, "word")
    await receive(word, "init")
    paragraphs = [f"<p>Paragraph {n} of a document long enough for patches to pay</p>" for n in range(20)]
    for version in (1, 2):
        await publish(word, document(paragraphs[: 10 * version]))
        assert (await receive(word, "get-html"))["Version"] == version
    # Holding version 1 while version 2 is stored: the answer is the whole of version 2.
    viewer = await join(session, Features=["html-patch"], LastVersion=1)
    await receive(viewer, "init")
    message = await receive(viewer, "get-html")
    assert message["Version"] == 2 and blocks_of(message) == paragraphs
    await publish(word, document([*paragraphs, "<p>three</p>"]))
    patch = await receive(viewer, "html-patch")
    assert patch["Ops"] == [["keep", 20], ["insert", ["<p>three</p>"]]]
    await viewer.disconnect()
    await word.disconnect()


@consumer_test
async def test_a_broadcast_to_many_viewers_is_encoded_once_and_not_read_back_by_its_publisher(session):
    viewers = [await join(session, Features=["html-patch"] if n % 2 else []) for n in range(60)]
    word = await join(session, "word")
    await receive(word, "init")
    for viewer in viewers:
        await receive(viewer, "init")
        await receive(viewer, "get-html")
    await publish(word, "<p>first</p>")
    await receive(word, "get-html")
    for viewer in viewers:
        await receive(viewer, "get-html")
    reads, encodes = document_frames.reads, document_frames.encodes
    await publish(word, "<p>first</p><p>second</p>")
    await receive(word, "get-html")
    for viewer in viewers:
        await receive(viewer, "get-html", "html-patch")
    # The process that stored the version serves it from the HTML in hand.
    assert document_frames.reads - reads == 0
    # The plain full frame, the full frame with block lengths (a patch's fallback), the patch.
    assert document_frames.encodes - encodes == 3
    for communicator in (*viewers, word):
        await communicator.disconnect()


@pytest.mark.parametrize(("notice_html_bytes", "reads"), [(64 * 1024, 0), (10, 1)])
@consumer_test
async def test_a_version_stored_elsewhere_is_read_once_for_many_viewers(
    session, settings, notice_html_bytes, reads
):
    """The version's notice carries its HTML, unless it is longer than COLLAB_NOTICE_HTML_BYTES."""
    settings.COLLAB_NOTICE_HTML_BYTES = notice_html_bytes
    viewers = [await join(session) for _ in range(30)]
    for viewer in viewers:
        await receive(viewer, "init")
        await receive(viewer, "get-html")
    before = document_frames.reads
    # As another process (or the REST API) stores it: the notice comes after its commit.
    converted = await conversion_pool().convert("<p>from elsewhere</p>", "html", session["id"])
    version = await database_sync_to_async(do_publish_document)(session["id"], converted)
    for viewer in viewers:
        message = await receive(viewer, "get-html")
        assert (message["Version"], message["Content"]) == (version, "<p>from elsewhere</p>")
    assert document_frames.reads - before == reads
    for viewer in viewers:
        await viewer.disconnect()


@consumer_test
async def test_a_version_with_more_blocks_than_the_limit_goes_whole(session, settings):
    settings.COLLAB_PATCH_MAX_BLOCKS = 30
    viewer = await join(session, Features=["html-patch"])
    word = await join(session, "word")
    await receive(viewer, "init")
    await receive(word, "init")
    await receive(viewer, "get-html")
    paragraphs = [f"<p>Paragraph {n} of a document long enough for patches to pay</p>" for n in range(31)]
    # 31 blocks, or 31 in the version before: the full document; 30 after 30: a patch.
    for version, count, action in [
        (1, 30, "get-html"),
        (2, 31, "get-html"),
        (3, 30, "get-html"),
        (4, 30, "html-patch"),
    ]:
        paragraphs[0] = f"<p>Version {version}</p>"
        await publish(word, document(paragraphs[:count]))
        await receive(word, "get-html")
        message = await receive(viewer, "get-html", "html-patch")
        assert (message["Version"], message["Action"]) == (version, action)
    await viewer.disconnect()
    await word.disconnect()


# Real daphne processes


def viewers_are(count):
    return lambda message: message.get("Action") == "presence" and message.get("Viewers") == count


@pytest.mark.integration
@pytest.mark.redis
async def test_presence_counts_span_processes_and_drop_soon_after_one_is_killed(redis_servers):
    first, second = redis_servers
    session = await new_session(first)
    async with (
        joined(first, session, "word") as word,
        joined(first, session, "client"),
        joined(second, session, "client"),
        joined(second, session, "client"),
    ):
        await word.receive_until(viewers_are(3))
        await asyncio.to_thread(second.kill)
        # Nobody left on the first process: its presence refresh notices the lapsed entries.
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        await word.receive_until(viewers_are(1), timeout=20)
        assert loop.time() - killed_at < 12
        async with joined(first, session, "client") as late:
            assert late.init["Viewers"] == 2


async def group_members(redis_url, redis_prefix, session):
    """The channel-layer members of a session's group in Redis (channels-redis keeps them in a sorted set)."""
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        return await client.zcard(f"{redis_prefix}:group:collab.session.{session['id']}")
    finally:
        await client.aclose()


@pytest.mark.integration
@pytest.mark.redis
async def test_each_process_is_one_group_member_however_many_sockets_it_serves(
    redis_servers, redis_url, redis_prefix
):
    first, second = redis_servers
    session = await new_session(first)
    async with contextlib.AsyncExitStack() as stack:
        word = await stack.enter_async_context(joined(first, session, "word"))
        servers = (first, first, first, second, second)
        viewers = [await stack.enter_async_context(joined(server, session, "client")) for server in servers]
        assert await group_members(redis_url, redis_prefix, session) == 2
        await word.send(update(session, "<p>To every socket, once per process</p>", "html"))
        await word.published(1)
        for viewer in viewers:
            await viewer.receive_until(html_with("once per process", version=1))
    # The last socket of a session in a process takes the process out of the group.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while await group_members(redis_url, redis_prefix, session) and loop.time() < deadline:
        await asyncio.sleep(0.1)
    assert await group_members(redis_url, redis_prefix, session) == 0


def healthz_seconds(server):
    """How long one /healthz takes to answer 200."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    started = time.perf_counter()
    with opener.open(f"{server.url}/healthz", timeout=TIMEOUT) as response:
        assert response.status == 200
    return time.perf_counter() - started


async def ping_seconds(peer):
    """How long one ping of a version 2 socket takes to be answered."""
    started = time.perf_counter()
    await peer.send({"Action": "ping"})
    await peer.receive_until(lambda m: m.get("Action") == "pong")
    return time.perf_counter() - started


@pytest.mark.integration
async def test_swapped_blocks_reach_a_patching_viewer_in_seconds_while_other_sessions_stay_fast(daphne):
    # difflib took 97 s over these in a daphne thread, slowing every other session meanwhile.
    pairs = 25_000
    first, swapped = "<p>a</p><p>b</p>" * pairs, "<p>b</p><p>a</p>" * pairs
    server = await asyncio.to_thread(daphne)
    session, other = await new_session(server), await new_session(server)
    async with (
        joined(server, session, "word") as word,
        joined(server, session, "client", Features=["html-patch"]) as viewer,
        joined(server, other, "client") as bystander,
    ):
        assert viewer.init["Features"] == ["html-patch"]
        await word.send(update(session, first, "html"))
        await word.published(1)
        await viewer.receive_until(lambda m: m.get("Version") == 1)
        await word.send(update(session, swapped, "html"))
        started = time.perf_counter()
        arrived = asyncio.ensure_future(viewer.receive_until(lambda m: m.get("Version") == 2, timeout=15))
        health, pings = [], []
        while not arrived.done() or len(health) < 5:
            health.append(await asyncio.to_thread(healthz_seconds, server))
            pings.append(await ping_seconds(bystander))
        seconds = time.perf_counter() - started
        message = (await arrived)[-1]
    # The patch would be as long as the document: the full document goes, with its blocks.
    assert message["Action"] == "get-html" and message["Content"] == swapped
    assert len(message["Blocks"]) == 2 * pairs
    assert seconds < 15
    assert max(health) < 1, health
    assert max(pings) < 1, pings


def stalled_viewer(server, session, features=()):
    """A viewer that signs in and then reads nothing, with a receive window as small as the kernel allows."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += raw.recv(1)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    hello = {"Origin": "client", "SessionId": session["id"], "Token": session["client_token"]}
    payload = json.dumps({**hello, "Action": "init", "Protocol": 2, "Features": list(features)}).encode()
    mask = os.urandom(4)
    header = bytes([0x81, 0x80 | 126]) + len(payload).to_bytes(2, "big") + mask
    raw.sendall(header + bytes(byte ^ mask[n % 4] for n, byte in enumerate(payload)))
    return raw


@pytest.mark.integration
async def test_a_stalled_viewer_is_cut_off_without_holding_up_the_others(daphne):
    server = await asyncio.to_thread(daphne, COLLAB_SEND_BUFFER_BYTES="65536", COLLAB_SLOW_VIEWER_SECONDS="2")
    session = await new_session(server)
    stalled = await asyncio.to_thread(stalled_viewer, server, session)
    versions = 12
    try:
        async with joined(server, session, "client") as viewer, joined(server, session, "word") as word:
            await viewer.receive_until(viewers_are(2))
            for version in range(1, versions + 1):
                paragraphs = [
                    f"<p>Version {version}, paragraph {n}: {'text ' * 200}</p>" for n in range(1000)
                ]
                html = "".join(paragraphs)
                await word.send({"Action": "update-ooxml", "PayloadType": "html", "Content": html})
                await word.published(version)
                # Every version reaches the viewer that reads, however far behind the stalled one is.
                await viewer.receive_until(lambda m, v=version: m.get("Version") == v, timeout=10)
            # The stalled socket is closed: it leaves the counts.
            await viewer.receive_until(viewers_are(1), timeout=15)
    finally:
        stalled.close()


def read_frames(raw, until_version, timeout=TIMEOUT):
    """Text frames from a raw socket, parsed, up to the first document of `until_version`."""
    raw.settimeout(timeout)
    buffer = b""
    messages = []

    def take(count):
        nonlocal buffer
        while len(buffer) < count:
            chunk = raw.recv(1 << 20)
            assert chunk, f"connection closed; got {[m.get('Action') for m in messages]}"
            buffer += chunk
        data, buffer = buffer[:count], buffer[count:]
        return data

    while True:
        first, second = take(2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(take(2), "big")
        elif length == 127:
            length = int.from_bytes(take(8), "big")
        payload = take(length)
        if first & 0x0F == 0x1:
            messages.append(json.loads(payload))
            last = messages[-1]
            if last.get("Version") == until_version and last["Action"] in ("get-html", "html-patch"):
                return messages


@pytest.mark.integration
async def test_a_viewer_that_falls_behind_gets_only_the_newest_version_in_a_consistent_chain(daphne):
    server = await asyncio.to_thread(
        daphne, COLLAB_SEND_BUFFER_BYTES="65536", COLLAB_SLOW_VIEWER_SECONDS="60"
    )
    session = await new_session(server)
    stalled = await asyncio.to_thread(stalled_viewer, server, session, ["html-patch"])
    # Larger than the kernel's socket buffers (up to 4 MiB), so daphne's own buffer fills.
    paragraphs = [f"<p>Paragraph {n}: {'text ' * 200}</p>" for n in range(6000)]
    try:
        async with joined(server, session, "word") as word:
            for version in range(1, 7):
                paragraphs[version] = f"<p>Edited in version {version}</p>"
                html = "".join(paragraphs)
                await word.send({"Action": "update-ooxml", "PayloadType": "html", "Content": html})
                await word.published(version)
        # The viewer reads again: what waited for it is the newest version only, and every
        # patch it gets starts from the version it holds.
        messages = await asyncio.to_thread(read_frames, stalled, 6)
    finally:
        stalled.close()
    documents_seen = [m for m in messages if m["Action"] in ("get-html", "html-patch")]
    assert len(documents_seen) < 7
    held = None
    for message in documents_seen:
        if message["Action"] == "html-patch":
            assert held is not None and message["BaseVersion"] == held, [
                (m["Action"], m["Version"]) for m in documents_seen
            ]
        held = message["Version"]
    assert held == 6


# The viewer page (last: its module-wide browser keeps an event loop running in this thread)


def paragraphs(ending):
    return [f"Paragraph {n}: " + "words of a long document " * 10 for n in range(1, 40)] + [ending]


def received_actions(page_frames):
    return [message.get("Action") for message in page_frames]


def open_patching_viewer(context, server, session, corrupt_checksums=False):
    """The viewer page, with every frame it receives recorded (and html-patch checksums spoilt if asked)."""
    page = context.new_page()
    received, sent = [], []

    def route(websocket):
        upstream = websocket.connect_to_server()

        def down(payload):
            message = json.loads(payload)
            received.append(message)
            if corrupt_checksums and message.get("Action") == "html-patch":
                payload = json.dumps({**message, "Checksum": "0" * 64})
            websocket.send(payload)

        def up(payload):
            sent.append(json.loads(payload))
            upstream.send(payload)

        upstream.on_message(down)
        websocket.on_message(up)

    page.route_web_socket(server.ws_url, route)
    page.goto(f"{server.url}/s/{session['id']}/#token={session['client_token']}", timeout=BROWSER_WAIT_MS)
    return page, received, sent


def wait_for_text(page, text):
    page.wait_for_function(
        "text => document.getElementById('document').textContent.includes(text)",
        arg=text,
        timeout=BROWSER_WAIT_MS,
    )


def shown_paragraphs(page):
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('#document > p'), (p) => [p.textContent, p.className])"
    )


@pytest.mark.integration
@pytest.mark.browser
@pytest.mark.parametrize("corrupt", [False, True], ids=["patch-applied", "checksum-mismatch"])
def test_viewer_page_applies_a_patch_or_falls_back_to_the_full_document(shared_daphne, chromium, corrupt):
    server = shared_daphne
    session = server.create_session("patching viewer")
    publish_from_word(server, session, flat_opc(*paragraphs("The first ending.")))
    context = chromium.new_context(viewport={"width": 1100, "height": 800})
    try:
        page, received, sent = open_patching_viewer(context, server, session, corrupt_checksums=corrupt)
        wait_for_text(page, "The first ending.")
        assert sent[0]["Features"] == ["html-patch"]
        assert received[0]["Features"] == ["html-patch"]

        edited = paragraphs("The first ending.")
        edited[20] = "Paragraph 21 says something new."
        publish_from_word(server, session, flat_opc(*edited))
        wait_for_text(page, "Paragraph 21 says something new.")
        page.wait_for_function("() => document.getElementById('document').dataset.version === '2'")
        shown = shown_paragraphs(page)
        assert [text for text, _ in shown] == edited
        assert "html-patch" in received_actions(received)
        if corrupt:
            # The spoilt patch was refused and the whole document asked for.
            assert [m["Action"] for m in sent] == ["init", "get-html"]
            assert received[-1]["Action"] == "get-html" and received[-1]["Version"] == 2
        else:
            assert [m["Action"] for m in sent] == ["init"]
            assert [n for n, (_, css) in enumerate(shown) if "collab-changed" in css] == [20]
            # The highlight fades.
            page.wait_for_function(
                "() => !document.querySelector('#document .collab-changed')", timeout=BROWSER_WAIT_MS
            )
    finally:
        context.close()
