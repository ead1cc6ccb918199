"""The WebSocket endpoint: Word publishes, viewers receive (PROTOCOL.md sections 2-5)."""

import asyncio
import contextlib
import json
import logging
import secrets

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError

from collab.transport import DIRECT_SOCKET, OutgoingFrame
from conversion import ConversionError

from .access import AccessDenied, access_session_by_token_shared, refusal_for_socket
from .documents import HTML_PATCH, documents
from .hub import hubs
from .limits import ConnectionHolds, MessageRate, client_address, connection_limit
from .origins import origin_allowed
from .presence import announcer, presence
from .publishing import publisher
from .services import SessionUnavailable, do_end_session
from .sweeper import ensure_sweeper

log = logging.getLogger(__name__)

ERROR_TEXTS = {
    "E1001": "Session not found",
    "E1002": "Missing authentication token",
    "E1003": "Invalid token",
    "E1004": "Invalid action",
    "E1006": "Session expired or removed",
    "E1007": "Socket not authenticated",
    "E1008": "Action not allowed for this token",
    "E1009": "Message too large",
    "E1010": "Malformed message",
    "E1011": "Too many messages",
    "E1012": "Authentication timeout",
    "E2001": "Error processing message",
    "E2002": "Conversion error",
}

# Errors after which the server closes the socket, with the close code it uses.
CLOSING_ERRORS = {
    "E1001": 4401,
    "E1002": 4401,
    "E1003": 4401,
    "E1006": 4410,
    "E1007": 4401,
    "E1009": 4413,
    "E1012": 4401,
}

# Close code for a connection over a connection limit (README "Limits"), after a session-closed reason.
TOO_MANY_CONNECTIONS = 4429
SERVER_FAULT = 4500
DATABASE_UNAVAILABLE = "database unavailable"
SERVER_ERROR = "Server error, reconnect later"

ROLES = ("word", "client")
PAYLOAD_TYPES = ("ooxml", "docx", "html")


class CollabConsumer(AsyncWebsocketConsumer):
    """One socket of a session: authenticates on its first message, then serves its actions.

    Broadcasts do not come to the socket through the channel layer: its session's hub in this
    process (hub.py) receives them once and writes them to each of its sockets.
    """

    channel_layer_alias = None  # no channel of its own: the hub is the session's member here
    features = frozenset()  # version 2 extensions granted to this socket

    async def __call__(self, scope, receive, send):
        """Serve the socket; a fault outside any handler (the channel layer's Redis gone) closes with 4500."""
        try:
            await super().__call__(scope, receive, send)
        except Exception:
            log.warning("socket ended by a server fault", exc_info=True)
            with contextlib.suppress(Exception):
                if getattr(self, "closing", True) is False:
                    reason = {"Action": "session-closed", "Content": SERVER_ERROR, "Success": True}
                    await self.send_json(reason)
                await send({"type": "websocket.close", "code": SERVER_FAULT})
            with contextlib.suppress(Exception):
                await self.disconnect(SERVER_FAULT)

    async def connect(self):
        """Accept the handshake unless it comes from a page of a foreign origin."""
        self.socket_id = f"socket.{secrets.token_urlsafe(12)}"
        self.session_id = None
        self.hub = None
        self.listening = False  # the hub writes to the socket only once it is greeted
        self.missed_version = -1  # a version broadcast while the socket was being greeted
        self.direct = self.scope.get("extensions", {}).get(DIRECT_SOCKET, {}).get("socket")
        self.token_id = None
        self.role = None
        self.can_end = False
        self.protocol = 1
        self.sent_version = -1
        self.sent_presence = None
        self.closing = False
        self.tasks = set()
        self.rate = MessageRate.from_settings()
        self.holds = ConnectionHolds(self.socket_id)
        headers = dict(self.scope.get("headers", ()))
        if not origin_allowed(headers.get(b"origin"), headers.get(b"host")):
            await self.close()
            return
        # Counted before the handshake completes, so connections are counted in the order they open.
        address = client_address(self.scope)
        allowed = address is None or await self.holds.take(f"address:{address}", connection_limit("address"))
        await self.accept()
        if not allowed:
            await self.close_with_reason("Too many connections from this address", TOO_MANY_CONNECTIONS)
            return
        ensure_sweeper()
        self.auth_timer = asyncio.ensure_future(self.expire_unauthenticated())

    async def disconnect(self, code):
        """Forget the socket at once so the same client can reconnect straight away."""
        self.closing = True
        if getattr(self, "auth_timer", None):
            self.auth_timer.cancel()
        if getattr(self, "holds", None):
            await self.holds.release_all()
        if self.hub is not None:
            hubs.leave(self, self.hub)
            try:
                await presence.leave(self.session_id, self.role, self.socket_id)
            except Exception:
                # Redis is down: the presence entry lapses by itself.
                log.warning("socket of session %s left without unregistering", self.session_id, exc_info=True)
            announcer.changed(self.session_id, self.hub.layer, self.hub.group)

    async def expire_unauthenticated(self):
        await asyncio.sleep(settings.COLLAB_AUTH_TIMEOUT)
        if self.session_id is None and not self.closing:
            await self.fail("E1012", "Unknown")

    async def dispatch(self, message):
        """Run a message's handler, without channels' thread hop to close database connections.

        channels does that hop for every message, so a crowd of sockets queued one call each on
        the one database thread; every database call here goes through database_sync_to_async,
        which closes stale connections itself.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # Incoming messages

    async def receive(self, text_data=None, bytes_data=None):
        """Check, parse and dispatch one frame."""
        if self.closing:
            return
        if not self.rate.allow():
            await self.send_error("E1011", "Unknown", "slow down")
            return
        if text_data is None:
            await self.send_error("E1010", "Unknown", "binary frames are not accepted")
            return
        if message_too_large(text_data):
            await self.fail("E1009", "Unknown", f"limit {settings.COLLAB_MAX_MESSAGE_BYTES} bytes")
            return
        try:
            message = json.loads(text_data)
        except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than Python's stack
            message = None
        if not isinstance(message, dict):
            await self.send_error("E1010", "Unknown", "expected one JSON object")
            return
        action = message.get("Action")
        if not isinstance(action, str) or not action:
            await self.send_error("E1010", "Unknown", "Action is missing")
            return
        action = action.lower()
        if self.session_id is None:
            if not await self.authenticate_or_close(message, action):
                return
        elif "SessionId" in message and message["SessionId"] != self.session_id:
            await self.fail("E1007", action)
            return
        await self.dispatch_action(message, action)

    async def authenticate_or_close(self, message, action):
        """Authenticate; a fault of the database or the channel layer closes with 4500, to reconnect later."""
        try:
            return await self.authenticate(message, action)
        except DatabaseError:
            log.warning("authentication failed: database unavailable", exc_info=True)
            reason = f"Server error: {DATABASE_UNAVAILABLE}, reconnect later"
        except Exception:
            log.exception("authentication failed")
            reason = SERVER_ERROR
        await self.close_with_reason(reason, SERVER_FAULT)
        return False

    async def authenticate(self, message, action):
        """Check the first message's session and token, join the session and greet version 2 clients."""
        role = message.get("Origin")
        session_id = message.get("SessionId")
        try:
            token = await access_session_by_token_shared(
                session_id, message.get("Token"), role if role in ROLES else None
            )
        except AccessDenied as denied:
            await self.fail(denied.code, action, echo_session=session_id)
            return False
        if not await self.holds.take(
            f"token:{token.session_id}:{token.pk}", connection_limit("token", token.role)
        ):
            await self.close_with_reason("Too many connections with this token", TOO_MANY_CONNECTIONS)
            return False
        self.auth_timer.cancel()
        self.session_id = token.session_id
        self.token_id = token.pk
        self.role = token.role
        self.can_end = token.can_end_session
        self.version_at_sign_in = token.session.version
        protocol = message.get("Protocol")
        self.protocol = (
            2 if isinstance(protocol, int) and not isinstance(protocol, bool) and protocol >= 2 else 1
        )
        self.hub = await hubs.join(self)
        await presence.join(self.session_id, self.role, self.socket_id)
        announcer.changed(self.session_id, self.hub.layer, self.hub.group)
        if self.protocol >= 2:
            await self.greet(message, action)
        await self.hub.catch_up(self)
        return True

    async def greet(self, message, action):
        """The version 2 init reply, then the document for a viewer that does not have it yet."""
        self.features = granted_features(message.get("Features"))
        # The version read with the token: the cached frame serves a crowd of new viewers.
        version, frame = await documents.frame(
            self.session_id, self.protocol, at_least=self.version_at_sign_in, blocks=self.takes_patches
        )
        viewers, publishers = await presence.counts(self.session_id)
        self.sent_presence = (viewers, publishers)
        await self.send_json(
            {
                "Action": "init",
                "Success": True,
                "Role": self.role,
                "Version": version,
                "Viewers": viewers,
                "Protocol": 2,
                "Features": sorted(self.features),
            }
        )
        last_version = message.get("LastVersion")
        if self.role == "client" and action != "get-html" and last_version != version:
            await self.push_document(version, OutgoingFrame(frame))
        elif last_version == version:
            # The client holds this version: the next one can reach it as a patch.
            self.sent_version = version

    async def dispatch_action(self, message, action):
        handler = {
            "init": self.action_init,
            "update-ooxml": self.action_update,
            "get-html": self.action_get_html,
            "end-session": self.action_end_session,
            "ping": self.action_ping if self.protocol >= 2 else None,
        }.get(action)
        if handler is None:
            await self.send_error("E1004", action)
            return
        try:
            await handler(message)
        except DatabaseError:
            log.warning("action %s of session %s: no database", action, self.session_id, exc_info=True)
            await self.send_error("E2001", action, database_unavailable_detail(action))
        except Exception:
            log.exception("action %s failed in session %s", action, self.session_id)
            await self.send_error("E2001", action)

    async def action_init(self, message):
        """The handshake itself; nothing more to do."""

    async def action_ping(self, message):
        """Answer a version 2 keep-alive."""
        await self.send_json({"Action": "pong", "Success": True})

    async def action_get_html(self, message):
        """Send the current HTML to this socket."""
        current = await documents.frame(self.session_id, self.protocol, fresh=True, blocks=self.takes_patches)
        if current is None:
            await self.fail("E1006", "get-html")
            return
        await self.push_document(current[0], OutgoingFrame(current[1]), force=True)

    async def action_update(self, message):
        """Start converting a Word update; the result reaches every socket through the group."""
        if self.role != "word":
            await self.send_error("E1008", "update-ooxml")
            return
        refusal = await database_sync_to_async(refusal_for_socket)(self.token_id)
        if refusal:
            await self.fail(refusal, "update-ooxml")
            return
        content = message.get("Content")
        payload_type = message.get("PayloadType") or "ooxml"
        if not isinstance(content, str) or not isinstance(payload_type, str):
            await self.send_error("E1010", "update-ooxml", "Content must be a string")
            return
        if payload_type.lower() not in PAYLOAD_TYPES:
            await self.send_error("E2002", "update-ooxml", "unsupported PayloadType")
            return
        if not content.strip():
            await self.send_error("E2002", "update-ooxml", "the document is empty")
            return
        # Converting runs beside the socket, so pings and newer updates are read meanwhile.
        task = asyncio.ensure_future(self.publish(content, payload_type.lower()))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def publish(self, content, payload_type):
        try:
            await publisher.publish(self.session_id, content, payload_type)
        except ConversionError as error:
            await self.send_error("E2002", "update-ooxml", error.reason)
        except SessionUnavailable:
            await self.fail("E1006", "update-ooxml")
        except DatabaseError:
            log.warning("update of session %s not saved: no database", self.session_id, exc_info=True)
            await self.send_error("E2001", "update-ooxml", database_unavailable_detail("update-ooxml"))
        except Exception:
            log.exception("update of session %s failed", self.session_id)
            await self.send_error("E2001", "update-ooxml")

    async def action_end_session(self, message):
        """End the session for everyone, if this token may."""
        if not self.can_end:
            await self.send_error("E1008", "end-session")
            return
        if not await database_sync_to_async(do_end_session)(self.session_id):
            await self.fail("E1006", "end-session")

    # Group messages, from the hub: handler names match the message types sent by services.py.

    async def handle_group_message(self, handler_name, message):
        """Run this socket's handler for a group message other than documents and counts."""
        handler = getattr(self, handler_name, None)
        if handler is not None and not self.closing:
            await handler(message)

    async def session_ended(self, event):
        """The session ended: say so, then close normally."""
        await self.send_json({"Action": "end-session", "Content": event["reason"], "Success": True})
        await self.close_with_reason(event["reason"], 1000)

    async def token_revoked(self, event):
        """A token was revoked: a socket using it is refused at once."""
        if event["token_id"] == self.token_id:
            await self.fail("E1003", "Unknown")

    # Sending

    async def send_json(self, message):
        if self.closing:
            return
        message = {"Origin": "server", "SessionId": self.session_id, **message}
        await self.send(text_data=json.dumps(message))

    @property
    def takes_patches(self):
        return HTML_PATCH in self.features

    @property
    def version_heard(self):
        """The newest version this socket has had, or was current when it signed in."""
        return max(self.sent_version, self.version_at_sign_in)

    async def push_document(self, version, frame, full=None, force=False):
        """Send a get-html (or, with `full`, html-patch) frame; versions never go down for one socket.

        Under daphne the frame goes straight to the socket's DocumentOutbox (collab/transport.py),
        which holds it back for a newer one while the socket is backed up, and which needs the
        full frame in place of a patch whose base the socket never got.
        """
        if self.closing or version < self.sent_version or (version == self.sent_version and not force):
            return
        self.sent_version = version
        if self.direct is None:
            await self.base_send({"type": "websocket.send", "text": frame.text})
            return
        self.direct.send_document(frame, version, self.session_id, full)

    async def push_frame(self, frame, counts):
        """Send presence counts, encoded once for the whole session by the hub."""
        if self.closing:
            return
        self.sent_presence = counts
        if self.direct is None:
            await self.base_send({"type": "websocket.send", "text": frame.text})
        else:
            self.direct.send_frame(frame)

    async def send_error(self, code, action, detail=None, echo_session=None):
        text = ERROR_TEXTS[code]
        if detail:
            text = f"{text}: {detail}"
        message = {"Action": action, "Content": text, "Success": False, "ErrorCode": code}
        if self.session_id is None and isinstance(echo_session, str) and len(echo_session) <= 64:
            message["SessionId"] = echo_session
        await self.send_json(message)

    async def fail(self, code, action, detail=None, echo_session=None):
        """Send an error that ends the socket, then close it."""
        await self.send_error(code, action, detail, echo_session)
        await self.close_with_reason(ERROR_TEXTS[code], CLOSING_ERRORS[code])

    async def close_with_reason(self, reason, code):
        """session-closed, then the close frame (PROTOCOL.md section 3)."""
        await self.send_json({"Action": "session-closed", "Content": reason, "Success": True})
        self.closing = True
        await self.close(code)


def database_unavailable_detail(action):
    """The E2001 detail when the database does not answer; an update says it was not saved."""
    if action == "update-ooxml":
        return f"{DATABASE_UNAVAILABLE}, update not saved"
    return DATABASE_UNAVAILABLE


def granted_features(requested):
    """The extensions of a first message's "Features" this server grants."""
    if not isinstance(requested, list):
        return frozenset()
    return frozenset(feature for feature in requested if feature == HTML_PATCH)


def message_too_large(text):
    """Whether a frame exceeds COLLAB_MAX_MESSAGE_BYTES in UTF-8, without encoding small frames."""
    limit = settings.COLLAB_MAX_MESSAGE_BYTES
    if len(text) * 4 <= limit:
        return False
    return len(text) > limit or len(text.encode("utf-8", "surrogatepass")) > limit
