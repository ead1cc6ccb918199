"""Real daphne processes driven over real WebSockets, as the Word add-in, viewers and the CLI use them."""

import asyncio
import base64
import json
import os
import re
import secrets
import signal
import struct
import sys
import zlib
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from sessions_app.protocol import SESSION_ENDED, VIEWER_TOKEN_FOR_PUBLISHING
from tests.documents import corpus_file, flat_opc
from tests.servers import REPO_ROOT

pytestmark = pytest.mark.integration

WAIT = 90  # seconds any single wait may take: generous, so a busy machine slows the tests, never fails them


# Documents


def noise_png(width, height):
    """A valid RGB PNG of random pixels: incompressible, so it weighs about width * height * 3 bytes."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + os.urandom(width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 1))
        + chunk(b"IEND", b"")
    )


def flat_opc_with_image(png):
    """The corpus's Flat OPC document with one picture, that picture replaced by `png`."""
    source = corpus_file("flatopc/oasamples-simple-image.xml").read_text(encoding="utf-8-sig")
    encoded = base64.encodebytes(png).decode("ascii")
    document, replaced = re.subn(
        r"<pkg:binaryData>[^<]*</pkg:binaryData>",
        lambda _: f"<pkg:binaryData>{encoded}</pkg:binaryData>",
        source,
    )
    assert replaced == 1
    return document


# Talking to the server


def first_message(session, role, action="init", protocol=2, **fields):
    """A socket's first message: who it is, its token and an action."""
    message = {
        "Origin": role,
        "SessionId": session["id"],
        "Token": session["word_token" if role == "word" else "client_token"],
        "Action": action,
        **fields,
    }
    if protocol is not None:
        message["Protocol"] = protocol
    return message


def update(session, content, payload_type="ooxml"):
    """A Word update of the session."""
    return {
        "Origin": "word",
        "SessionId": session["id"],
        "Action": "update-ooxml",
        "PayloadType": payload_type,
        "Content": content,
    }


def html_with(text, version=None):
    """Accepts a get-html message whose HTML contains `text` (and, if given, of that version)."""

    def accept(message):
        return (
            message.get("Action") == "get-html"
            and text in message.get("Content", "")
            and (version is None or message.get("Version") == version)
        )

    return accept


def summary(message):
    return {key: value[:80] if isinstance(value, str) else value for key, value in message.items()}


class Peer:
    """One WebSocket of a session, as a test drives it."""

    def __init__(self, websocket):
        self.websocket = websocket
        self.init = None

    async def send(self, message):
        await self.websocket.send(json.dumps(message))

    async def receive_until(self, accept, timeout=WAIT):
        """Messages up to the first one `accept` takes; fails with what came instead if none does in time."""
        seen = []
        try:
            async with asyncio.timeout(timeout):
                while True:
                    seen.append(json.loads(await self.websocket.recv()))
                    if accept(seen[-1]):
                        return seen
        except TimeoutError:
            pytest.fail(f"no expected message within {timeout} s; got {[summary(m) for m in seen]}")

    async def published(self, version, timeout=WAIT):
        """Wait for the broadcast of `version`; an error message fails at once."""
        seen = await self.receive_until(
            lambda m: (
                m.get("Success") is False or m.get("Action") == "get-html" and m.get("Version") == version
            ),
            timeout,
        )
        assert seen[-1].get("Success") is True, summary(seen[-1])
        return seen[-1]


@asynccontextmanager
async def joined(server, session, role, action="init", protocol=2, origin=None, **fields):
    """A socket that has sent its first message and, in version 2, read the init reply."""
    async with connect(
        server.ws_url, origin=origin, max_size=None, open_timeout=WAIT, proxy=None
    ) as websocket:
        peer = Peer(websocket)
        await peer.send(first_message(session, role, action, protocol, **fields))
        if protocol == 2:
            seen = await peer.receive_until(lambda m: m.get("Action") in ("init", "session-closed"))
            peer.init = seen[-1]
            assert peer.init["Action"] == "init", [summary(m) for m in seen]
        yield peer


async def new_session(server):
    return await asyncio.to_thread(server.create_session)


async def start_publish(server, *args, env=None):
    """`manage.py publish …` running beside the test, its output captured; `env` adds variables."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "manage.py",
        "publish",
        *map(str, args),
        cwd=REPO_ROOT,
        env={**server.env, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # Ctrl-C must reach the command even when this test runs with SIGINT ignored (a background job).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


async def finish(process, timeout=WAIT):
    """(return code, stdout, stderr) of a publish process, killed if it does not end in time."""
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        stdout, stderr = await process.communicate()
        pytest.fail(f"publish did not end within {timeout} s:\n{stdout.decode()}\n{stderr.decode()}")
    return process.returncode, stdout.decode(), stderr.decode()


def watch_args(server, session, document):
    """The arguments of `publish --watch` for a session's document on a server."""
    return [session["id"], document, "--token", session["word_token"], "--url", server.ws_url, "--watch"]


async def read_until(stream, text, timeout=WAIT):
    """What a process printed up to and including the line containing `text`."""
    printed = ""
    try:
        async with asyncio.timeout(timeout):
            while text not in printed:
                line = (await stream.readline()).decode()
                if not line:
                    break
                printed += line
    except TimeoutError:
        pass
    assert text in printed, f"{text!r} not printed within {timeout} s; printed {printed!r}"
    return printed


@asynccontextmanager
async def publishing(server, *args, env=None):
    """A publish process that is killed if the test leaves it running."""
    process = await start_publish(server, *args, env=env)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()


# Viewers and the Word client


async def test_word_update_reaches_version_2_and_version_1_viewers(shared_daphne):
    session = await new_session(shared_daphne)
    text = "Minutes of the integration meeting"
    async with (
        joined(shared_daphne, session, "client") as viewer,
        joined(shared_daphne, session, "client", protocol=None) as old_viewer,
    ):
        async with joined(shared_daphne, session, "word") as word:
            assert word.init["Role"] == "word"
            await word.send(update(session, flat_opc(text)))
            assert text in (await word.published(1))["Content"]

        assert (await viewer.receive_until(html_with(text)))[-1]["Version"] == 1
        old_seen = await old_viewer.receive_until(html_with(text))
        # The word socket has left meanwhile; a get-html request fences anything sent before its answer.
        await asyncio.sleep(1)
        await old_viewer.send({"Action": "get-html"})
        old_seen += await old_viewer.receive_until(lambda m: m.get("Action") == "get-html")

    assert text in old_seen[-1]["Content"]
    for message in old_seen:
        assert message["Action"] == "get-html", summary(message)
        assert "Version" not in message, summary(message)
        assert message["Success"] is True
        assert message["PayloadType"] == "html"
        assert message["SessionId"] == session["id"]


async def test_ten_megabyte_flat_opc_with_image_reaches_viewer(shared_daphne):
    session = await new_session(shared_daphne)
    png = noise_png(1200, 2200)
    frame = json.dumps(update(session, flat_opc_with_image(png)))
    assert len(frame.encode()) > 10 * 1024 * 1024
    async with (
        joined(shared_daphne, session, "client") as viewer,
        joined(shared_daphne, session, "word") as word,
    ):
        await word.websocket.send(frame)
        await word.published(1, timeout=120)
        html = (await viewer.receive_until(html_with("<img", version=1), timeout=120))[-1]["Content"]
    assert re.search(r'<img [^>]*src="data:image/png;base64,', html)
    assert base64.b64encode(png).decode() in html


async def test_frame_above_the_limit_gets_e1009_and_close_4413(daphne):
    server = await asyncio.to_thread(daphne, COLLAB_MAX_MESSAGE_BYTES="2000000")
    session = await new_session(server)
    async with joined(server, session, "word") as word:
        await word.send(update(session, flat_opc("x" * 2_100_000)))
        received = []
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(WAIT):
                while True:
                    received.append(json.loads(await word.websocket.recv()))
    assert received, "the socket was closed without an error message"
    assert received[0]["ErrorCode"] == "E1009"
    assert received[0]["Success"] is False
    assert received[0]["Action"] == "Unknown"
    assert closed.value.rcvd is not None, "no close frame from the server"
    assert closed.value.rcvd.code == 4413


@pytest.mark.parametrize("protocol", [2, None], ids=["version-2", "version-1"])
async def test_first_message_update_is_published(shared_daphne, protocol):
    session = await new_session(shared_daphne)
    text = f"First message of a protocol {protocol or 1} add-in"
    async with joined(shared_daphne, session, "client") as viewer:
        async with connect(shared_daphne.ws_url, max_size=None, open_timeout=WAIT, proxy=None) as websocket:
            word = Peer(websocket)
            hello = first_message(session, "word", "update-ooxml", protocol, PayloadType="ooxml")
            await word.send({**hello, "Content": flat_opc(text)})
            seen = await word.receive_until(
                lambda m: m.get("Action") == "get-html" or m.get("Success") is False
            )
        await viewer.receive_until(html_with(text, version=1))
    assert text in seen[-1]["Content"], summary(seen[-1])
    if protocol == 2:
        assert [m["Action"] for m in seen if m["Action"] != "presence"] == ["init", "get-html"]
        assert seen[0]["Version"] == 0
        assert seen[-1]["Version"] == 1
    else:
        assert len(seen) == 1
        assert "Version" not in seen[0]


async def test_client_can_reconnect_at_once(shared_daphne):
    session = await new_session(shared_daphne)
    text = "Still here after reconnecting"
    for version in (1, 2):
        async with joined(shared_daphne, session, "word") as word:
            await word.send(update(session, flat_opc(f"{text} {version}")))
            await word.published(version)
        async with joined(shared_daphne, session, "client") as viewer:
            await viewer.receive_until(html_with(f"{text} {version}", version))


async def test_foreign_origin_is_refused(shared_daphne):
    with pytest.raises(InvalidStatus) as refused:
        async with connect(shared_daphne.ws_url, origin="http://evil.example", open_timeout=WAIT, proxy=None):
            pass
    assert refused.value.response.status_code == 403


async def test_own_origin_is_accepted(shared_daphne):
    session = await new_session(shared_daphne)
    async with joined(shared_daphne, session, "client", origin=shared_daphne.url) as viewer:
        assert viewer.init["Role"] == "client"


async def handshake_status(server, host, origin):
    """The HTTP status daphne answers a WebSocket handshake with this Host and Origin."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        writer.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
            ).encode()
        )
        status_line = await asyncio.wait_for(reader.readline(), WAIT)
        return int(status_line.split()[1])
    finally:
        writer.close()


async def test_own_host_with_another_scheme_is_refused(shared_daphne):
    own_host = f"127.0.0.1:{shared_daphne.port}"
    assert await handshake_status(shared_daphne, own_host, f"http://{own_host}") == 101
    assert await handshake_status(shared_daphne, own_host, f"https://{own_host}") == 403


async def test_rebinding_origin_equal_to_the_host_header_is_refused(shared_daphne):
    # A page of the attacker's name, which now resolves to this server, sends that name twice.
    host = f"rebind.attacker.example:{shared_daphne.port}"
    assert await handshake_status(shared_daphne, host, f"http://{host}") == 403


# Several processes, restarts


async def test_session_ended_from_the_command_line_reaches_sockets_without_redis(daphne):
    # The command's broadcast stays in its own process's in-memory layer; the server's sweep notices.
    server = await asyncio.to_thread(daphne, COLLAB_SWEEP_INTERVAL="1")
    session = await new_session(server)
    async with joined(server, session, "client") as viewer:
        await asyncio.to_thread(server.manage, "end_session", session["id"])
        seen = await viewer.receive_until(lambda m: m.get("Action") == "end-session", timeout=15)
        assert seen[-1]["Content"] == "Session ended successfully."
        with pytest.raises(ConnectionClosed) as closed:
            while True:  # session-closed comes before the close frame
                await viewer.websocket.recv()
        assert closed.value.rcvd.code == 1000


@pytest.mark.redis
async def test_update_reaches_viewer_on_another_server_through_redis(redis_servers):
    first, second = redis_servers
    session = await new_session(first)
    text = "Sent to one process, shown by another"
    async with joined(second, session, "client") as viewer, joined(first, session, "word") as word:
        await word.send(update(session, flat_opc(text)))
        await word.published(1)
        await viewer.receive_until(html_with(text, version=1))


@pytest.mark.redis
async def test_presence_counts_viewers_on_every_server(redis_servers):
    first, second = redis_servers
    session = await new_session(first)
    async with joined(second, session, "client"), joined(first, session, "word") as word:
        assert word.init["Viewers"] == 1


@pytest.mark.parametrize("halt", ["stop", "kill"], ids=["sigterm", "sigkill"])
async def test_restart_loses_nothing(daphne, halt):
    server = await asyncio.to_thread(daphne)
    session = await new_session(server)
    async with joined(server, session, "word") as word:
        for version, text in enumerate(["Draft one", "Draft two"], start=1):
            await word.send(update(session, flat_opc(text)))
            await word.published(version)
        await asyncio.to_thread(getattr(server, halt))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(word.websocket.recv(), WAIT)

    await asyncio.to_thread(server.start)
    async with joined(server, session, "client") as viewer:
        assert viewer.init["Version"] == 2
        await viewer.receive_until(html_with("Draft two", version=2))
    async with joined(server, session, "word") as word:
        await word.send(update(session, flat_opc("Draft three")))
        await word.published(3)


# manage.py publish


async def test_publish_command_reaches_viewer(shared_daphne):
    session = await new_session(shared_daphne)
    document = corpus_file("docx/mammoth-single-paragraph.docx")
    async with joined(shared_daphne, session, "client") as viewer:
        # No --url: the command finds the server from COLLAB_PUBLIC_URL, as on the server's own host.
        async with publishing(
            shared_daphne, session["id"], document, "--token", session["word_token"]
        ) as process:
            code, stdout, stderr = await finish(process)
        await viewer.receive_until(html_with("Walking on imported air", version=1))
    assert code == 0, stderr
    assert "Published version 1" in stdout
    assert session["word_token"] not in stdout + stderr


@pytest.mark.parametrize("source", ["environment", "file"])
async def test_publish_command_reads_the_token_from_the_environment_or_a_file(
    shared_daphne, tmp_path, source
):
    session = await new_session(shared_daphne)
    document = corpus_file("docx/mammoth-single-paragraph.docx")
    token_file = tmp_path / "word-token"
    token_file.write_text(session["word_token"] + "\n", encoding="utf-8")
    args, env = (
        (["--token-file", token_file], {})
        if source == "file"
        else ([], {"COLLAB_TOKEN": session["word_token"]})
    )
    async with joined(shared_daphne, session, "client") as viewer:
        async with publishing(shared_daphne, session["id"], document, *args, env=env) as process:
            code, stdout, stderr = await finish(process)
        await viewer.receive_until(html_with("Walking on imported air", version=1))
    assert code == 0, stderr
    assert "Published version 1" in stdout
    assert session["word_token"] not in stdout + stderr


@pytest.mark.parametrize("watch", [False, True], ids=["once", "watch"])
async def test_publish_command_fails_on_invalid_token(shared_daphne, tmp_path, watch):
    session = await new_session(shared_daphne)
    document = tmp_path / "document.xml"
    document.write_text(flat_opc("Never shown"), encoding="utf-8")
    token = f"forged-{secrets.token_urlsafe(16)}"
    args = [session["id"], document, "--token", token, "--url", shared_daphne.ws_url] + ["--watch"] * watch
    async with publishing(shared_daphne, *args) as process:
        code, stdout, stderr = await finish(process)
    assert code != 0
    assert "E1003" in stderr
    assert token not in stdout + stderr


@pytest.mark.parametrize("watch", [False, True], ids=["once", "watch"])
async def test_publish_command_names_a_viewer_token(shared_daphne, tmp_path, watch):
    session = await new_session(shared_daphne)
    document = tmp_path / "document.xml"
    document.write_text(flat_opc("Never shown"), encoding="utf-8")
    args = [session["id"], document, "--token", session["client_token"], "--url", shared_daphne.ws_url]
    async with publishing(shared_daphne, *args + ["--watch"] * watch) as process:
        code, stdout, stderr = await finish(process)
    assert code != 0
    # The server's Reason, which the command asks for (refusal-reasons), after the contract's text.
    assert f"E1003: Invalid token: {VIEWER_TOKEN_FOR_PUBLISHING}" in stderr
    assert session["client_token"] not in stdout + stderr


@pytest.mark.parametrize("known", [False, True], ids=["unknown", "ended"])
async def test_publish_command_says_the_session_has_ended_or_does_not_exist(shared_daphne, tmp_path, known):
    session = await new_session(shared_daphne)
    if known:
        async with joined(shared_daphne, session, "word") as word:
            await word.send({"Action": "end-session"})
            await word.receive_until(lambda message: message.get("Action") == "session-closed")
    document = tmp_path / "document.xml"
    document.write_text(flat_opc("Never shown"), encoding="utf-8")
    session_id = session["id"] if known else "no-such-session"
    args = [session_id, document, "--token", session["word_token"], "--url", shared_daphne.ws_url]
    async with publishing(shared_daphne, *args) as process:
        code, stdout, stderr = await finish(process)
    assert code != 0
    # The one wording of collab's own surfaces, not the socket's "Session not found".
    assert f"E1001: {SESSION_ENDED}" in stderr
    assert "Session not found" not in stderr


async def test_publish_watch_resends_when_the_file_changes(shared_daphne, tmp_path):
    session = await new_session(shared_daphne)
    document = tmp_path / "document.xml"
    # Word writes Flat OPC with a byte order mark.
    document.write_bytes(b"\xef\xbb\xbf" + flat_opc("First draft").encode())
    args = watch_args(shared_daphne, session, document)
    async with (
        joined(shared_daphne, session, "client") as viewer,
        publishing(shared_daphne, *args) as process,
    ):
        await viewer.receive_until(html_with("First draft", version=1))
        # A new modification time with the same content must not be sent again.
        os.utime(document)
        await asyncio.sleep(1.5)
        document.write_text(flat_opc("Second draft"), encoding="utf-8")
        assert (await viewer.receive_until(html_with("Second draft")))[-1]["Version"] == 2
        printed = await read_until(process.stdout, "Published version 2")
        process.send_signal(signal.SIGINT)
        code, stdout, stderr = await finish(process)
    assert code == 0, stderr
    assert "Published version 1" in printed
    assert session["word_token"] not in printed + stdout + stderr


async def test_publish_watch_stops_when_the_session_ends(shared_daphne, tmp_path):
    session = await new_session(shared_daphne)
    document = tmp_path / "document.xml"
    document.write_text(flat_opc("The last word"), encoding="utf-8")
    args = watch_args(shared_daphne, session, document)
    async with (
        joined(shared_daphne, session, "client") as viewer,
        publishing(shared_daphne, *args) as process,
    ):
        await viewer.receive_until(html_with("The last word", version=1))
        # Ended from a socket: the in-memory channel layer would not carry manage.py end_session's news.
        async with joined(shared_daphne, session, "word") as word:
            await word.send({"Action": "end-session"})
        code, stdout, stderr = await finish(process)
    assert code == 0, stderr
    assert "ended" in stdout


async def test_publish_watch_names_whose_versions_it_sees(shared_daphne, tmp_path):
    session = await new_session(shared_daphne)
    document = tmp_path / "document.xml"
    document.write_text(flat_opc("My draft"), encoding="utf-8")
    args = watch_args(shared_daphne, session, document)
    async with joined(shared_daphne, session, "word") as other:
        await other.send(update(session, flat_opc("Theirs first")))
        await other.published(1)
        async with publishing(shared_daphne, *args) as process:
            printed = await read_until(process.stdout, "Published version 2")
            await other.published(2)
            await other.send(update(session, flat_opc("Theirs again")))
            await other.published(3)
            printed += await read_until(process.stdout, "Version 3 was published by someone else")
            document.write_text(flat_opc("My second draft"), encoding="utf-8")
            printed += await read_until(process.stdout, "Published version 4")
            await other.receive_until(html_with("My second draft", version=4))
            process.send_signal(signal.SIGINT)
            code, stdout, stderr = await finish(process)
    assert code == 0, stderr
    assert printed.splitlines() == [
        "Publishing over version 1",
        "Published version 2",
        "Version 3 was published by someone else",
        "Replacing version 3 by someone else",
        "Published version 4",
    ]


async def test_publish_watch_after_a_restart_leaves_a_newer_version_alone_until_its_file_changes(
    daphne, tmp_path
):
    server = await asyncio.to_thread(daphne)
    session = await new_session(server)
    document = tmp_path / "document.xml"
    document.write_text(flat_opc("Before the restart"), encoding="utf-8")
    args = watch_args(server, session, document)
    async with publishing(server, *args) as process:
        printed = await read_until(process.stdout, "Published version 1")
        await asyncio.to_thread(server.stop)
        # While the publisher's server is down, someone publishes through another server process.
        other_server = await asyncio.to_thread(daphne)
        async with joined(other_server, session, "word") as other:
            await other.send(update(session, flat_opc("Published meanwhile")))
            await other.published(2)
        await asyncio.to_thread(server.start)
        printed += await read_until(process.stdout, "newer than yours")
        async with joined(server, session, "client") as viewer:
            # The unchanged file was not sent again: the next version is the changed file's.
            await viewer.receive_until(html_with("Published meanwhile", version=2))
            document.write_text(flat_opc("After the restart"), encoding="utf-8")
            await viewer.receive_until(html_with("After the restart", version=3))
        printed += await read_until(process.stdout, "Published version 3")
        process.send_signal(signal.SIGINT)
        code, stdout, stderr = await finish(process)
    assert code == 0, stderr
    assert "Connection lost" in stderr
    assert printed.splitlines() == [
        "Published version 1",
        "Version 2 by someone else is newer than yours; your file will be published when it changes",
        "Replacing version 2 by someone else",
        "Published version 3",
    ]
