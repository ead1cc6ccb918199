"""python manage.py publish <session id> <file.docx | flat-opc.xml> [--token-file F] [--url …] [--watch]

The word token comes from --token-file, else --token, else the environment variable COLLAB_TOKEN:
a --token on the command line is visible to every user of the machine in the process list.
"""

import asyncio
import base64
import hashlib
import json
import os
import random
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from sessions_app import protocol
from sessions_app.links import ws_url

POLL_SECONDS = 0.5
FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 10
ENVIRONMENT_VARIABLE = "COLLAB_TOKEN"  # the word token, when neither --token-file nor --token is given
ENDED_CODES = ("E1001", "E1006")  # the session is unknown or has ended


class ServerError(Exception):
    """An error message (or an unannounced session-closed) from the server, with its Reason if any."""

    def __init__(self, code, text, reason=None):
        if code in ENDED_CODES:
            text = protocol.SESSION_ENDED  # the one wording collab's commands and pages use
        super().__init__(f"{code}: {text}: {reason}" if reason else f"{code}: {text}")
        # Errors after which the socket stays open concern one update only: watching goes on.
        self.fatal = code not in protocol.ERROR_TEXTS or code in protocol.CLOSING_ERRORS


class SessionEnded(Exception):
    """The server ended the session."""


class Command(BaseCommand):
    help = "Publish a .docx or Flat OPC file to a session as the Word add-in would, and again on changes."

    def add_arguments(self, parser):
        parser.add_argument("session_id")
        parser.add_argument("path", help="a .docx file or a Flat OPC .xml file")
        token = parser.add_mutually_exclusive_group()
        token.add_argument(
            "--token-file", help="a file holding a word token of the session (or set COLLAB_TOKEN)"
        )
        token.add_argument(
            "--token",
            help="a word token of the session; visible to every user of this machine in the process list, "
            "so prefer --token-file or the environment variable COLLAB_TOKEN",
        )
        parser.add_argument("--url", help="the server's WebSocket URL (default: from COLLAB_PUBLIC_URL)")
        parser.add_argument("--watch", action="store_true", help="publish again whenever the file changes")
        parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for each answer")

    def handle(self, *args, session_id, path, token, token_file, url, watch, timeout, **options):
        token = read_token(token, token_file)
        publisher = Publisher(self, session_id, token, url or ws_url(), Path(path), timeout)
        try:
            asyncio.run(publisher.watch() if watch else publisher.publish_once())
        except KeyboardInterrupt:
            self.stdout.write("Stopped.")
        except SessionEnded as ended:
            self.stdout.write(f"The session has ended: {ended}")


class Publisher:
    """One `word` client of a session, publishing one file.

    It asks for publish-receipts, so every update it sends is answered once: stored as
    version n, superseded by a newer update of the session, or refused. A version heard of
    while an update is unanswered may be anyone's; it is named once the answers settle it
    (receipts come in the order versions are stored).
    """

    def __init__(self, command, session_id, token, url, path, timeout):
        self.command = command
        self.session_id = session_id
        self.token = token
        self.url = url
        self.path = path
        self.timeout = timeout
        self.file_state = None
        self.sent_digest = None  # of the content sent last; None before, or when the server may not hold it
        self.heard_version = 0  # the newest version the server has named
        self.own_version = 0  # the newest version stored from this publisher's updates
        self.unanswered = 0  # updates sent and not answered yet
        self.unattributed = []  # versions heard while updates were unanswered: whose is not known yet
        self.receipts = False  # whether the server grants publish-receipts
        self.unconfirmed_since = None

    async def publish_once(self):
        """Send the file once and wait until the server has stored it."""
        document = self.read_document()
        try:
            async with self.connect() as websocket, asyncio.timeout(self.timeout):
                await self.open_session(websocket)
                await self.publish(websocket, document)
                while self.unanswered:
                    await self.next_message(websocket)
        except ServerError as error:
            raise CommandError(f"the server refused the update: {error}") from None
        except SessionEnded as ended:
            raise CommandError(f"the session ended before the update was stored: {ended}") from None
        except TimeoutError:
            raise CommandError(f"no answer from {self.url} within {self.timeout:g} s") from None
        except (OSError, ConnectionClosed, InvalidHandshake, InvalidURI) as error:
            raise CommandError(f"cannot publish to {self.url}: {describe(error)}") from None
        if not self.own_version:
            raise CommandError("the update was not stored: a newer one replaced it before it was converted")

    async def watch(self):
        """Publish now and on every change of the file, reconnecting whenever the connection drops."""
        self.read_document()  # a missing or unreadable file fails at once, not after retries
        delay = FIRST_RETRY_SECONDS
        while True:
            try:
                async with self.connect() as websocket:
                    async with asyncio.timeout(self.timeout):
                        await self.open_session(websocket)
                        await self.catch_up(websocket)
                    delay = FIRST_RETRY_SECONDS
                    await self.follow(websocket)
            except ServerError as error:
                raise CommandError(f"the server refused the connection: {error}") from None
            except InvalidStatus as error:
                # A 4xx (wrong URL, refused origin) will not heal by itself; a 5xx from a proxy may.
                if 400 <= error.response.status_code < 500:
                    raise CommandError(f"cannot connect to {self.url}: {describe(error)}") from None
                self.warn(f"Cannot connect: {describe(error)}")
            except InvalidURI as error:
                raise CommandError(describe(error)) from None
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake) as error:
                self.warn(f"Connection lost: {describe(error)}")
            # Jitter keeps many publishers from hitting a restarted server in lockstep.
            wait = random.uniform(delay / 2, delay)  # noqa: S311
            self.warn(f"Reconnecting in {wait:.1f} s")
            await asyncio.sleep(wait)
            delay = min(delay * 2, MAX_RETRY_SECONDS)

    async def follow(self, websocket):
        """Read the server's messages and send the file whenever it changes, until the connection ends."""
        loop = asyncio.get_running_loop()
        next_poll = loop.time() + POLL_SECONDS
        while True:
            try:
                # Cancelling recv() loses no data, so the socket is read in slices between polls;
                # asyncio.timeout, unlike 3.11's wait_for, never swallows a Ctrl-C that meets a message.
                async with asyncio.timeout_at(next_poll):
                    await self.next_message(websocket)
            except TimeoutError:
                document = self.changed_document()
                if document is not None:
                    await self.publish(websocket, document)
                next_poll = loop.time() + POLL_SECONDS
            except ServerError as error:
                if error.fatal:
                    raise
                self.warn(f"The server refused the update: {error}")
                self.update_answered()
            if self.unconfirmed_since is not None and loop.time() - self.unconfirmed_since > self.timeout:
                raise TimeoutError(f"the update was not confirmed within {self.timeout:g} s")

    def tell(self, text):
        """A line of progress, flushed at once: a watching publisher may run for hours behind a pipe."""
        self.command.stdout.write(text)
        self.command.stdout.flush()

    def warn(self, text):
        """A line about a problem, on stderr."""
        self.command.stderr.write(text)
        self.command.stderr.flush()

    def connect(self):
        # The server's get-html broadcasts are as large as the documents.
        return connect(self.url, max_size=None, open_timeout=self.timeout, close_timeout=5)

    async def open_session(self, websocket):
        """Sign in without an update, learning the stored version from the init reply."""
        if self.unanswered:
            self.sent_digest = None  # the last connection ended before its update was answered
        self.unanswered = 0
        self.unattributed = []
        self.unconfirmed_since = None
        first = {
            "Origin": "word",
            "SessionId": self.session_id,
            "Token": self.token,
            "Action": protocol.INIT,
            "Protocol": 2,
            "Features": [protocol.PUBLISH_RECEIPTS, protocol.REFUSAL_REASONS],
        }
        await websocket.send(json.dumps(first))
        while (message := await self.next_message(websocket)).get("Action") != protocol.INIT:
            pass
        features = message.get("Features")
        self.receipts = isinstance(features, list) and protocol.PUBLISH_RECEIPTS in features
        self.heard_version = message.get("Version", 0)

    async def catch_up(self, websocket):
        """On (re)connecting: send the file only if it changed, or if the server lost what was sent last."""
        document = self.read_document()
        stored = self.heard_version
        if self.sent_digest is None or digest(document[1]) != self.sent_digest:
            await self.publish(websocket, document)
        elif stored > self.own_version:
            self.tell(
                f"Version {stored} by someone else is newer than yours; "
                "your file will be published when it changes"
            )
        elif stored < self.own_version:
            self.tell(f"The session is back at version {stored}, older than yours: publishing again")
            await self.send_update(websocket, document)

    async def publish(self, websocket, document):
        """Send the file, first saying whose version it replaces when that is known."""
        if self.sent_digest is None:
            if self.heard_version:
                self.tell(f"Publishing over version {self.heard_version}")
        elif self.heard_version > self.own_version and not self.unanswered:
            self.tell(f"Replacing version {self.heard_version} by someone else")
        await self.send_update(websocket, document)

    async def send_update(self, websocket, document):
        """Send an update-ooxml, as the Word add-in does."""
        payload_type, content = document
        message = {
            "Origin": "word",
            "SessionId": self.session_id,
            "Action": protocol.UPDATE,
            "PayloadType": payload_type,
            "Content": content,
        }
        await websocket.send(json.dumps(message))
        self.sent_digest = digest(content)
        self.unanswered += 1
        if self.unconfirmed_since is None:
            self.unconfirmed_since = asyncio.get_running_loop().time()

    def version_heard(self, version):
        """A document of `version` came: say whose it is, now or once the unanswered updates settle it."""
        if version <= self.heard_version:
            return
        self.heard_version = version
        if not self.unanswered:
            self.tell(f"Version {version} was published by someone else")
        elif self.receipts:
            self.unattributed.append(version)
        else:
            # A server without publish-receipts: a new version is taken as the unanswered updates' answer.
            self.unanswered = 1
            self.update_answered(version)

    def update_answered(self, version=None, superseded=False):
        """One update answered: stored as `version`, superseded by a newer update, or (neither) refused."""
        self.unanswered = max(self.unanswered - 1, 0)
        self.unconfirmed_since = asyncio.get_running_loop().time() if self.unanswered else None
        lines = {}
        if version is not None:
            self.own_version = version
            self.heard_version = max(self.heard_version, version)
            lines[version] = f"Published version {version}"
        elif superseded and not self.unanswered:
            self.tell("Your update was replaced by someone else's newer one before it was converted")
        # Receipts come in the order versions are stored: a version older than this receipt's is not ours.
        settled = [v for v in self.unattributed if not self.unanswered or v < (version or 0)]
        self.unattributed = [v for v in self.unattributed if v not in settled and v != version]
        for other in settled:
            lines.setdefault(other, f"Version {other} was published by someone else")
        for number in sorted(lines):
            self.tell(lines[number])

    async def next_message(self, websocket):
        """The next message from the server; errors and the end of the session are raised."""
        while True:
            try:
                message = json.loads(await websocket.recv())
            except ValueError:
                continue
            if isinstance(message, dict):
                break
        action = str(message.get("Action", "")).lower()
        if message.get("Success") is False:
            raise ServerError(message.get("ErrorCode"), message.get("Content"), message.get("Reason"))
        if action == protocol.END_SESSION:
            raise SessionEnded(message.get("Content"))
        if action == protocol.SESSION_CLOSED:
            raise ServerError("closed", message.get("Content"))
        version = message.get("Version")
        if action == protocol.UPDATE:
            stored = version if isinstance(version, int) else None
            self.update_answered(stored, superseded=message.get("Superseded") is True)
        elif action == protocol.GET_HTML and isinstance(version, int):
            self.version_heard(version)
        return message

    def changed_document(self):
        """The file's payload if the file changed since the last look and differs from what was sent last."""
        try:
            stat = self.path.stat()
        except OSError:
            return None  # an editor is replacing the file; look again next time
        state = (stat.st_mtime_ns, stat.st_size)
        if state == self.file_state:
            return None
        try:
            document = self.read_document()
        except CommandError as error:
            self.warn(str(error))
            return None
        return None if digest(document[1]) == self.sent_digest else document

    def read_document(self):
        """(PayloadType, Content) of the file: base64 for a .docx, the text for Flat OPC."""
        try:
            stat = self.path.stat()
            data = self.path.read_bytes()
        except OSError as error:
            raise CommandError(f"cannot read {self.path}: {error.strerror}") from None
        self.file_state = (stat.st_mtime_ns, stat.st_size)
        if data.startswith(b"PK\x03\x04"):
            return "docx", base64.b64encode(data).decode("ascii")
        try:
            return "ooxml", data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise CommandError(f"{self.path} is neither a .docx nor UTF-8 Flat OPC XML") from None


def read_token(token, token_file):
    """The word token from --token-file, --token or COLLAB_TOKEN, in that order; CommandError if none."""
    if token_file is not None:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise CommandError(f"cannot read the token file {token_file}: {error.strerror}") from None
        except UnicodeDecodeError:
            raise CommandError(f"the token file {token_file} is not UTF-8 text") from None
        if not token:
            raise CommandError(f"the token file {token_file} is empty")
        return token
    token = token or os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if not token:
        raise CommandError(
            f"no word token: give --token-file FILE or set {ENVIRONMENT_VARIABLE} "
            "(--token works too, but shows the token in the process list)"
        )
    return token


def digest(content):
    """A fingerprint of a payload, to never send the same content twice in a row."""
    return hashlib.sha256(content.encode()).digest()


def describe(error):
    """A short description of a connection failure (they never contain the token)."""
    return str(error) or type(error).__name__
