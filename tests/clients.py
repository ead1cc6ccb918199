"""WebSocket clients that behave like the real ones, for drills and the soak script.

A Viewer acts like the viewer page: it reconnects by itself when its socket closes, to the next
server in its list, with LastVersion so it gets only what it misses. A Publisher acts like
the Word add-in: one update in flight at a time, each waited for until the server confirms
it with the new version or refuses it with an error.
"""

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, WebSocketException

RECONNECT_DELAY = 0.3
OPEN_TIMEOUT = 5


def first_message(session, role, **fields):
    token = session["word_token" if role == "word" else "client_token"]
    return {
        "Origin": role,
        "SessionId": session["id"],
        "Token": token,
        "Action": "init",
        "Protocol": 2,
        **fields,
    }


def get_html_message(session):
    """A version 1 viewer's first message: sign in and ask for the HTML."""
    return {
        "Origin": "client",
        "SessionId": session["id"],
        "Token": session["client_token"],
        "Action": "get-html",
    }


class Viewer:
    """A viewer that always ends up on the newest version, however often its socket drops."""

    def __init__(self, urls, session):
        self.urls = list(urls)
        self.session = session
        self.version = -1
        self.html = None
        self.connections = 0
        self.closes = []  # close codes seen, None for a dropped connection
        self.problems = []  # anything the protocol says must not happen
        self.ended = False
        self._task = None
        self._websocket = None

    def start(self):
        self._task = asyncio.ensure_future(self.run())
        return self

    async def stop(self):
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self):
        index = 0
        while not self.ended:
            code = None
            try:
                url = self.urls[index % len(self.urls)]
                async with connect(url, proxy=None, max_size=None, open_timeout=OPEN_TIMEOUT) as websocket:
                    self._websocket = websocket
                    self.connections += 1
                    extra = {"LastVersion": self.version} if self.version >= 0 else {}
                    await websocket.send(json.dumps(first_message(self.session, "client", **extra)))
                    async for raw in websocket:
                        self.receive(json.loads(raw))
                code = websocket.close_code
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
            except (OSError, TimeoutError, WebSocketException):
                pass
            finally:
                self._websocket = None
            self.closes.append(code)
            if code in (None, 1006):
                index += 1  # that server is gone: try the next, as a load balancer would
            await asyncio.sleep(RECONNECT_DELAY)

    def receive(self, message):
        if message.get("Action") == "get-html":
            version = message.get("Version", -1)
            if version < self.version:
                self.problems.append(f"version went down from {self.version} to {version}")
            self.version, self.html = version, message.get("Content")
        elif message.get("Action") == "end-session":
            self.ended = True
        elif message.get("Success") is False and message.get("ErrorCode") not in ("E2001",):
            self.problems.append(f"error {message}")

    async def drop(self):
        """Close the socket from this side, as a reader closing the tab would (then it reconnects)."""
        if self._websocket is not None:
            await self._websocket.close()

    async def wait_for_version(self, version, timeout):
        deadline = time.monotonic() + timeout
        while self.version < version and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.version >= version


@dataclass
class Outcome:
    """What became of one update."""

    text: str
    version: int | None = None  # acknowledged with this version
    error: str | None = None  # refused with this error code (or "no answer", "disconnected")
    detail: str | None = None  # the error's text
    seconds: float = 0.0


@dataclass
class Publisher:
    """A Word client: sends an update, waits for its confirmation or refusal, reconnects when dropped."""

    urls: list
    session: dict
    timeout: float = 30
    outcomes: list = field(default_factory=list)
    _websocket: object = None
    _next_url: int = 0

    async def ensure_connected(self):
        if self._websocket is not None:
            return
        url = self.urls[self._next_url % len(self.urls)]
        self._next_url += 1
        websocket = await connect(url, proxy=None, max_size=None, open_timeout=OPEN_TIMEOUT)
        try:
            await websocket.send(json.dumps(first_message(self.session, "word")))
            async with asyncio.timeout(self.timeout):
                while True:
                    message = json.loads(await websocket.recv())
                    if message.get("Action") == "init":
                        break
                    if message.get("Action") == "session-closed":
                        raise ConnectionError(message.get("Content"))
        except BaseException:
            await websocket.close()
            raise
        self._websocket = websocket

    async def publish(self, document, text):
        """Send one update whose HTML contains `text`; its Outcome."""
        outcome = Outcome(text)
        started = time.monotonic()
        try:
            await self.ensure_connected()
            await self._websocket.send(
                json.dumps({"Action": "update-ooxml", "PayloadType": "ooxml", "Content": document})
            )
            async with asyncio.timeout(self.timeout):
                while True:
                    message = json.loads(await self._websocket.recv())
                    if message.get("Success") is False and message.get("Action") == "update-ooxml":
                        outcome.error = message["ErrorCode"]
                        outcome.detail = message.get("Content")
                        break
                    if message.get("Action") == "get-html" and text in message.get("Content", ""):
                        outcome.version = message["Version"]
                        break
        except TimeoutError:
            outcome.error = "no answer"
            await self.disconnect()
        except (OSError, WebSocketException, ConnectionError):
            outcome.error = "disconnected"
            await self.disconnect()
        outcome.seconds = time.monotonic() - started
        self.outcomes.append(outcome)
        return outcome

    async def disconnect(self):
        websocket, self._websocket = self._websocket, None
        if websocket is not None:
            with contextlib.suppress(Exception):  # it is gone either way
                await websocket.close()

    @property
    def acknowledged(self):
        return [outcome for outcome in self.outcomes if outcome.version is not None]
