"""daphne and autobahn under collab (daphne_adaptations.py): lazy debug text, sign-in crowds, the backlog."""

import asyncio
import base64
import gc
import json
import os
import pprint
import shutil
import socket
import subprocess
import time
from pathlib import Path

import click
import pytest
import txaio
from autobahn import util
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.protocol import Timings
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.logger import formatEvent
from websockets.asyncio.client import connect

import collab.asgi  # noqa: F401 - applies the adaptations, as daphne's import of the application does
from sessions_app import daphne_adaptations
from sessions_app.websocket_upgrade import websocket_target

WAIT = 60

CLIENT_ADDRESS = IPv4Address("TCP", "127.0.0.1", 40000)


def upgrade_request():
    key = base64.b64encode(os.urandom(16))
    return (
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )


def masked_text_frame(text):
    """A client's text frame, masked as the protocol requires of clients."""
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


def open_socket(log=None):
    """autobahn's server protocol on an in-memory transport, through a real opening handshake."""
    factory = WebSocketServerFactory("ws://127.0.0.1:8000")
    factory.protocol = WebSocketServerProtocol
    # No timers on the global reactor, which these tests do not run.
    factory.setProtocolOptions(openHandshakeTimeout=0, closeHandshakeTimeout=0)
    protocol = factory.buildProtocol(CLIENT_ADDRESS)
    if log is not None:
        protocol.log = log
    transport = StringTransport(peerAddress=CLIENT_ADDRESS)
    protocol.makeConnection(transport)
    protocol.dataReceived(upgrade_request())
    assert transport.value().startswith(b"HTTP/1.1 101 Switching Protocols"), transport.value()
    return protocol, transport


@pytest.fixture
def formatting_calls(monkeypatch):
    """Counts of the formatting autobahn's debug lines need: pretty-printing and colouring."""
    calls = {"pformat": 0, "style": 0}
    pformat, style = pprint.PrettyPrinter.pformat, click.style

    def counted_pformat(self, *args, **kwargs):
        calls["pformat"] += 1
        return pformat(self, *args, **kwargs)

    def counted_style(*args, **kwargs):
        calls["style"] += 1
        return style(*args, **kwargs)

    monkeypatch.setattr(pprint.PrettyPrinter, "pformat", counted_pformat)
    monkeypatch.setattr(click, "style", counted_style)
    return calls


def test_connections_build_no_debug_text_when_debug_logging_is_off(formatting_calls):
    protocol, transport = open_socket()
    protocol.dataReceived(masked_text_frame("hello"))
    protocol.sendMessage(b"a frame", isBinary=False)
    assert transport.value().endswith(b"a frame")
    assert formatting_calls == {"pformat": 0, "style": 0}


def test_debug_lines_read_as_before_when_debug_logging_is_on(formatting_calls):
    events = []
    protocol, _ = open_socket(log=txaio.make_logger(level="debug", observer=events.append))
    protocol.sendMessage(b"a frame", isBinary=False)
    lines = [formatEvent(event) for event in events]
    # autobahn's own text: every option with its value and where it came from, pretty-printed.
    options = [(name, getattr(protocol, name), "WebSocketServerFactory") for name in protocol.CONFIG_ATTRS]
    assert "\n" + pprint.pformat(options) in lines
    # Coloured names and values, as autobahn's own helpers write them.
    peer = util.hlval(protocol.peer)
    assert f'{util.hltype(protocol.connectionMade)} connection established for peer="{peer}"' in lines
    assert f"{util.hltype(protocol.sendData)} sent {util.hlval(9)} bytes for peer {peer}" in lines
    assert formatting_calls["pformat"] > 0


def test_timings_still_print_as_text():
    timings = Timings()
    timings.track("opened")
    text = str(timings)
    assert isinstance(text, str)
    assert text == pprint.pformat(timings._timings)


# Through a real daphne process


async def sign_in(url, session, token):
    websocket = await connect(url, proxy=None, max_size=None, open_timeout=WAIT)
    await websocket.send(
        json.dumps(
            {"Origin": "client", "SessionId": session["id"], "Token": token, "Action": "init", "Protocol": 2}
        )
    )
    return websocket


async def next_action(websocket):
    while True:
        message = json.loads(await asyncio.wait_for(websocket.recv(), WAIT))
        if message.get("Action") != "presence":
            return message


@pytest.mark.integration
async def test_a_crowd_on_one_viewer_link_signs_in_through_daphne(daphne):
    server = daphne()
    session = server.create_session()
    crowd = [sign_in(server.ws_url, session, session["client_token"]) for _ in range(30)]
    strangers = [sign_in(server.ws_url, session, session["client_token"] + "x") for _ in range(3)]
    sockets = await asyncio.gather(*crowd, *strangers)
    try:
        for websocket in sockets[:30]:
            assert (await next_action(websocket))["Action"] == "init"
            assert (await next_action(websocket))["Action"] == "get-html"
        for websocket in sockets[30:]:
            assert (await next_action(websocket))["ErrorCode"] == "E1003"
    finally:
        await asyncio.gather(*(websocket.close() for websocket in sockets))


# The listen backlog


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("tcp:port=8001:interface=127.0.0.1", "tcp:port=8001:interface=127.0.0.1:backlog=4096"),
        (r"tcp:port=8001:interface=\:\:1", r"tcp:port=8001:interface=\:\:1:backlog=4096"),
        ("unix:/run/collab.sock", "unix:/run/collab.sock:backlog=4096"),
        ("tcp:port=8001:backlog=20", "tcp:port=8001:backlog=20"),
        ("fd:fileno=3", "fd:fileno=3"),
        ("ssl:port=8443:privateKey=key.pem", "ssl:port=8443:privateKey=key.pem"),
    ],
)
def test_an_endpoint_without_its_own_backlog_gets_collabs(endpoint, expected):
    assert daphne_adaptations.with_backlog(endpoint, 4096) == expected


def listen_backlog(port):
    """The backlog of the socket listening on this loopback port, as the kernel reports it (ss's Send-Q)."""
    ss = shutil.which("ss")
    assert ss, "ss (iproute2) is needed to read a listening socket's backlog"
    lines = subprocess.run(
        [ss, "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    listening = [line.split() for line in lines if line.startswith("LISTEN")]
    assert len(listening) == 1, lines
    return int(listening[0][2])


@pytest.mark.integration
@pytest.mark.parametrize(("setting", "expected"), [({}, 4096), ({"COLLAB_LISTEN_BACKLOG": "123"}, 123)])
def test_daphne_started_plainly_listens_with_collabs_backlog(daphne, setting, expected):
    server = daphne(**setting)
    assert server.listen_args() == ["-b", "127.0.0.1", "-p", str(server.port)]
    assert listen_backlog(server.port) == min(expected, int(Path("/proc/sys/net/core/somaxconn").read_text()))


# Garbage collection


def test_serving_freezes_what_is_loaded_and_collects_young_objects_less_often(settings):
    settings.COLLAB_GC_THRESHOLD = 12345
    seen = {}

    class FakeServer:
        def run(self):
            seen.update(threshold=gc.get_threshold(), frozen=gc.get_freeze_count())

    before = gc.get_threshold()
    daphne_adaptations.tune_garbage_collection(FakeServer)
    try:
        FakeServer().run()
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
    assert seen["threshold"] == (12345, *before[1:])
    assert seen["frozen"] > 1000  # Django, the application and the test run itself


def test_daphne_as_started_runs_the_tuned_loop():
    from daphne.server import Server

    assert Server.run.__qualname__.startswith("tune_garbage_collection")


# WebSocket handshakes at once (websocket_upgrade.py)

HANDSHAKE = (
    b"GET /ws?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def test_a_plain_handshake_is_recognised_with_its_target():
    assert websocket_target(HANDSHAKE) == b"/ws?x=1"
    assert websocket_target(HANDSHAKE.replace(b"Upgrade: websocket", b"upgrade:  WebSocket ")) == b"/ws?x=1"


@pytest.mark.parametrize(
    "data",
    [
        HANDSHAKE[:-2],  # the head is not complete
        HANDSHAKE + b"\x81\x80",  # bytes after it
        HANDSHAKE.replace(b"GET", b"POST"),
        HANDSHAKE.replace(b"HTTP/1.1", b"HTTP/1.0"),
        HANDSHAKE.replace(b"Upgrade: websocket", b"Upgrade: h2c"),
        HANDSHAKE.replace(b"Connection", b"Upgrade: websocket\r\nConnection"),  # two Upgrade headers
        HANDSHAKE.replace(b"Host:", b"Bad Name:"),
        HANDSHAKE.replace(b"127.0.0.1", b"127.0.0.1\x00"),
        HANDSHAKE.replace(b"127.0.0.1", b"127.0.0.1\x0b"),
        HANDSHAKE.replace(b"Connection", b"Content-Length: 3\r\nConnection"),
        HANDSHAKE.replace(b"/ws?x=1", "/ws/é".encode()),
        HANDSHAKE.replace(b"Host", b" Host"),  # a folded line
    ],
)
def test_anything_but_a_plain_handshake_takes_the_usual_way(data):
    assert websocket_target(data) is None


def raw_handshake(port, pieces):
    """Send a handshake in these pieces, a moment apart; the status line of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as connection:
        for piece in pieces:
            connection.sendall(piece)
            time.sleep(0.2)
        answer = b""
        while b"\r\n" not in answer:
            chunk = connection.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer.split(b"\r\n", 1)[0]


@pytest.mark.integration
def test_handshakes_upgrade_at_once_or_the_usual_way_alike(daphne):
    server = daphne()
    at_once = raw_handshake(server.port, [HANDSHAKE])
    in_two_reads = raw_handshake(server.port, [HANDSHAKE[:40], HANDSHAKE[40:]])
    with_a_second_upgrade = raw_handshake(
        server.port, [HANDSHAKE.replace(b"Connection", b"Upgrade: websocket\r\nConnection")]
    )
    assert at_once == in_two_reads == with_a_second_upgrade == b"HTTP/1.1 101 Switching Protocols"
    # An unknown path is refused the same way whichever way it came.
    wrong_path = HANDSHAKE.replace(b"/ws?x=1", b"/nowhere")
    assert raw_handshake(server.port, [wrong_path]) == raw_handshake(
        server.port, [wrong_path[:40], wrong_path[40:]]
    )
    assert raw_handshake(server.port, [wrong_path]).startswith(b"HTTP/1.1 404")
