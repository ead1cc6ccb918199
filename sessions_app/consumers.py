"""The WebSocket endpoint: Word publishes, viewers receive (PROTOCOL.md sections 2-5).

The consumer parses each frame (protocol.py), checks access (access.py), calls the update
queue (publishing.py) or a service, and replies. Once signed in, its socket is a Subscriber
(delivery.py) of the session's hub in this process (hub.py), which writes every broadcast.
"""

import asyncio
import contextlib
import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError

from conversion import ConversionError

from . import protocol
from .access import (
    AccessDenied,
    MessageRate,
    access_session_by_token_shared,
    origin_allowed,
    refusal_for_socket,
)
from .connection_limits import BEFORE_SIGN_IN, ConnectionHolds, client_address, connection_limit
from .delivery import DIRECT_SOCKET, Subscriber
from .hub import hubs
from .presence import announcer, presence
from .protocol import ProtocolError
from .publishing import SUPERSEDED, update_queue
from .services import SessionUnavailable, do_end_session
from .sweeper import ensure_sweeper

log = logging.getLogger(__name__)

# A frame this long is parsed beside the event loop, by one of two threads: its long strings
# are decoded a slice at a time, so other sockets are served meanwhile.
PARSE_BESIDE_LOOP_CHARS = 1 << 20
frame_parsers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="collab-frame-parser")


async def parse_frame(text):
    """protocol.parse_frame with the message limit; in a thread for a long frame."""
    limit = settings.COLLAB_MAX_MESSAGE_BYTES
    if text is None or len(text) < PARSE_BESIDE_LOOP_CHARS:
        return protocol.parse_frame(text, limit)
    return await asyncio.get_running_loop().run_in_executor(frame_parsers, protocol.parse_frame, text, limit)


class CollabConsumer(AsyncWebsocketConsumer):
    """One socket of a session: signs in on its first message, then serves its actions.

    Broadcasts do not come to the socket through the channel layer: its session's hub in this
    process receives them once and writes them to each of its subscribers.
    """

    async def __call__(self, scope, receive, send):
        """Serve the socket; a fault outside any handler (the channel layer's Redis gone) closes with 4500."""
        try:
            await self.serve(scope, receive, send)
        except Exception:
            log.warning("socket ended by a server fault", exc_info=True)
            with contextlib.suppress(Exception):
                if getattr(self, "closing", True) is False:
                    await self.send_text(
                        protocol.session_closed_message(self.session_id, protocol.SERVER_ERROR)
                    )
                await send({"type": "websocket.close", "code": protocol.SERVER_FAULT})
            with contextlib.suppress(Exception):
                await self.disconnect(protocol.SERVER_FAULT)

    async def serve(self, scope, receive, send):
        """Handle the socket's messages one after another until it is done.

        channels' own loop also reads a channel of the consumer's from the channel layer, and
        runs every read as a task awaited with asyncio.wait; this consumer has no channel (its
        session's hub is the group member), so it reads the socket alone, directly.
        """
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        with contextlib.suppress(StopConsumer):
            while True:
                await self.dispatch(await receive())

    async def connect(self):
        """Accept the handshake unless it comes from a page of a foreign origin."""
        self.socket_id = f"socket.{secrets.token_urlsafe(12)}"
        self.session_id = None
        self.subscriber = None
        self.hub = None
        self.role = None
        self.can_end = False
        self.closing = False
        self.tasks = set()
        self.rate = MessageRate.from_settings()
        self.holds = ConnectionHolds(self.socket_id)
        # Under daphne, what the socket sends before it signs in counts against its address.
        self.before_sign_in = self.scope.get("extensions", {}).get(BEFORE_SIGN_IN, {}).get("count")
        headers = dict(self.scope.get("headers", ()))
        if not origin_allowed(headers.get(b"origin"), headers.get(b"host"), self.scope.get("scheme")):
            await self.close()
            return
        # Counted before the handshake completes, so connections are counted in the order they open.
        address = client_address(self.scope)
        allowed = address is None or await self.holds.take(f"address:{address}", connection_limit("address"))
        await self.accept()
        if not allowed:
            await self.close_with(
                [self.closed_frame(protocol.TOO_MANY_FROM_ADDRESS)], protocol.TOO_MANY_CONNECTIONS
            )
            return
        ensure_sweeper()
        # A timer, not a task: a crowd of sockets signs in long before it would fire.
        self.auth_timer = asyncio.get_running_loop().call_later(
            settings.COLLAB_AUTH_TIMEOUT, self.auth_timed_out
        )

    async def disconnect(self, code):
        """Forget the socket at once so the same client can reconnect straight away."""
        self.stop_writing()
        if getattr(self, "auth_timer", None):
            self.auth_timer.cancel()
        if getattr(self, "holds", None):
            await self.holds.release_all()
        if self.hub is not None:
            hubs.leave(self.subscriber, self.hub)
            try:
                await presence.leave(self.session_id, self.role, self.socket_id)
            except Exception:
                # Redis is down: the presence entry lapses by itself.
                log.warning("socket of session %s left without unregistering", self.session_id, exc_info=True)
            announcer.changed(self.session_id, self.hub.layer, self.hub.group)

    async def websocket_disconnect(self, message):
        """Forget the socket and stop, without channels' thread hop to close database connections.

        The socket is in no group of its own to leave (the hub is the session's member), and the
        hop would queue one call per closing socket on the one database thread, as in dispatch.
        """
        await self.disconnect(message["code"])
        raise StopConsumer

    def auth_timed_out(self):
        """No valid first message within COLLAB_AUTH_TIMEOUT: E1012, and the socket is closed."""
        if self.session_id is None and not self.closing:
            task = asyncio.ensure_future(self.refuse(ProtocolError("E1012")))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

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

    # Incoming frames

    async def receive(self, text_data=None, bytes_data=None):
        """Check, parse and dispatch one frame."""
        if self.closing:
            return
        try:
            if not self.rate.allow():
                raise ProtocolError("E1011", detail="slow down")
            message, action = await parse_frame(text_data)
            if self.closing:
                return
            signing_in = self.session_id is None
            if signing_in:
                if not await self.sign_in_or_close(message, action):
                    return
            elif "SessionId" in message and message["SessionId"] != self.session_id:
                raise ProtocolError("E1007", action)
        except ProtocolError as error:
            await self.refuse(error)
            return
        await self.dispatch_action(message, action, token_checked=signing_in)

    async def sign_in_or_close(self, message, action):
        """Sign in; a fault of the database or the channel layer closes with 4500, to reconnect later."""
        try:
            return await self.sign_in(message, action)
        except DatabaseError:
            log.warning("sign-in failed: database unavailable", exc_info=True)
            reason = protocol.DATABASE_ERROR
        except Exception:
            log.exception("sign-in failed")
            reason = protocol.SERVER_ERROR
        await self.close_with([self.closed_frame(reason)], protocol.SERVER_FAULT)
        return False

    async def sign_in(self, message, action):
        """Check the first message's session and token, join the session's hub and greet version 2 clients."""
        session_id = message.get("SessionId")
        role = protocol.requested_role(message)
        version = protocol.protocol_version(message)
        features = protocol.granted_features(message, version)
        try:
            token = await access_session_by_token_shared(session_id, message.get("Token"), role)
        except AccessDenied as denied:
            reason = protocol.refusal_reason(features, denied.token_role, role)
            await self.refuse(ProtocolError(denied.code, action, reason=reason), echo_session=session_id)
            return False
        if not await self.holds.take(
            f"token:{token.session_id}:{token.pk}", connection_limit("token", token.role)
        ):
            await self.close_with(
                [self.closed_frame(protocol.TOO_MANY_WITH_TOKEN)], protocol.TOO_MANY_CONNECTIONS
            )
            return False
        self.auth_timer.cancel()
        if self.before_sign_in is not None:
            self.before_sign_in.finish()
        self.session_id = token.session_id
        self.role = token.role
        self.can_end = token.can_end_session
        self.subscriber = Subscriber(
            session_id=token.session_id,
            token_id=token.pk,
            protocol=version,
            features=features,
            version_at_sign_in=token.session.version,
            direct=self.scope.get("extensions", {}).get(DIRECT_SOCKET, {}).get("socket"),
            send_text=self.send_text,
            close=self.close_with,
            token_expires=token.expires_at.timestamp() if token.expires_at else None,
        )
        self.hub = await hubs.join(self.subscriber)
        hubs.confirm(self.subscriber)
        await presence.join(self.session_id, self.role, self.socket_id)
        announcer.changed(self.session_id, self.hub.layer, self.hub.group)
        if version >= 2:
            await self.greet(message, action, token.session.title)
        await self.hub.start_listening(self.subscriber)
        return True

    async def greet(self, message, action, title):
        """The version 2 init reply, then the document for a viewer that does not have it yet."""
        subscriber = self.subscriber
        # The version read with the token: the cached frame serves a crowd of new viewers.
        version, frame = await self.hub.current_document(subscriber, at_least=subscriber.version_at_sign_in)
        viewers, publishers = await presence.counts(self.session_id)
        subscriber.told_presence((viewers, publishers))
        await self.send_text(
            protocol.init_message(self.session_id, self.role, version, viewers, subscriber.features, title)
        )
        last_version = message.get("LastVersion")
        if self.role == "client" and action != protocol.GET_HTML and last_version != version:
            await subscriber.send_document(version, frame)
        elif last_version == version:
            subscriber.holds(version)

    async def dispatch_action(self, message, action, token_checked=False):
        """Carry out an action; the socket's token is checked first, unless sign-in has just checked it."""
        handler = {
            protocol.INIT: self.action_init,
            protocol.UPDATE: self.action_update,
            protocol.GET_HTML: self.action_get_html,
            protocol.END_SESSION: self.action_end_session,
            protocol.PING: self.action_ping if self.subscriber.protocol >= 2 else None,
        }.get(action)
        try:
            if handler is None:
                raise ProtocolError("E1004", action)
            if action == protocol.UPDATE and self.role == "word" and not token_checked:
                # A publisher's token is checked where its update is stored (action_update).
                await self.action_update(message, token_checked=False)
                return
            if not token_checked:
                await self.check_token(action)
            await handler(message)
        except ProtocolError as error:
            await self.refuse(error)
        except DatabaseError:
            log.warning("action %s of session %s: no database", action, self.session_id, exc_info=True)
            await self.refuse(ProtocolError("E2001", action, protocol.database_unavailable_detail(action)))
        except Exception:
            log.exception("action %s failed in session %s", action, self.session_id)
            await self.refuse(ProtocolError("E2001", action))

    async def check_token(self, action):
        """Refuse an action if the socket's token expired or was revoked (E1003) or its session ended (E1006).

        Viewers ping every 20 seconds: a ping is checked against the expiry read at sign-in only,
        and a revocation that never reached the socket is caught by the next sweep.
        """
        if action == protocol.PING:
            refusal = "E1003" if self.subscriber.token_lapsed(time.time()) else None
        else:
            refusal = await database_sync_to_async(refusal_for_socket)(self.subscriber.token_id)
        if refusal:
            raise ProtocolError(refusal, action)

    async def action_init(self, message):
        """The handshake itself; nothing more to do."""

    async def action_ping(self, message):
        """Answer a version 2 keep-alive."""
        await self.send_text(protocol.pong_message(self.session_id))

    async def action_get_html(self, message):
        """Send the current HTML to this socket."""
        current = await self.hub.current_document(self.subscriber, fresh=True)
        if current is None:
            raise ProtocolError("E1006", protocol.GET_HTML)
        await self.subscriber.send_document(*current, force=True)

    async def action_update(self, message, token_checked=True):
        """Start converting a Word update; the result reaches every socket through the group.

        Unless sign-in has just checked the token, the store checks it in the statement that
        takes the version: nothing of the update is stored, and no waiting update of the
        session is replaced by it, unless it may publish (UpdateQueue.convert_and_store).
        """
        if self.role != "word":
            reason = protocol.refusal_reason(self.subscriber.features, self.role, "word")
            raise ProtocolError("E1008", protocol.UPDATE, reason=reason)
        try:
            content, payload_type = protocol.update_payload(message)
        except ProtocolError:
            if not token_checked:
                await self.check_token(protocol.UPDATE)  # a refused token is told so first
            raise
        publisher = None if token_checked else self.subscriber.token_id
        # Converting runs beside the socket, so pings and newer updates are read meanwhile.
        task = asyncio.ensure_future(self.convert_update(content, payload_type, publisher))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def convert_update(self, content, payload_type, publisher=None):
        """Convert and store an update in its session's queue; refusals and receipts go to this socket."""
        action = protocol.UPDATE
        try:
            version = await update_queue.convert_and_store(self.session_id, content, payload_type, publisher)
        except AccessDenied as denied:
            await self.refuse(ProtocolError(denied.code, action))
        except ConversionError as error:
            await self.refuse(ProtocolError("E2002", action, error.reason))
        except SessionUnavailable:
            await self.refuse(ProtocolError("E1006", action))
        except DatabaseError:
            log.warning("update of session %s not saved: no database", self.session_id, exc_info=True)
            await self.refuse(ProtocolError("E2001", action, protocol.database_unavailable_detail(action)))
        except Exception:
            log.exception("update of session %s failed", self.session_id)
            await self.refuse(ProtocolError("E2001", action))
        else:
            if protocol.PUBLISH_RECEIPTS in self.subscriber.features:
                await self.send_text(
                    protocol.update_superseded_message(self.session_id)
                    if version is SUPERSEDED
                    else protocol.update_stored_message(self.session_id, version)
                )

    async def action_end_session(self, message):
        """End the session for everyone, if this token may."""
        if not self.can_end:
            raise ProtocolError("E1008", protocol.END_SESSION)
        if not await database_sync_to_async(do_end_session)(self.session_id):
            raise ProtocolError("E1006", protocol.END_SESSION)

    # Replies

    async def send_text(self, text):
        """Send one frame unless the socket is closing."""
        if not self.closing:
            await self.send(text_data=text)

    def closed_frame(self, reason):
        return protocol.session_closed_message(self.session_id, reason)

    async def refuse(self, error, echo_session=None):
        """Answer a refused frame with its error; after a closing error, session-closed and the close code."""
        # Before sign-in the error names the session the client asked for, if it could be one.
        session_id = self.session_id or protocol.echoed_session_id(echo_session)
        frame = protocol.error_message(session_id, error.code, error.action, error.detail, error.reason)
        if not error.closes:
            await self.send_text(frame)
            return
        closed = self.closed_frame(protocol.ERROR_TEXTS[error.code])
        await self.close_with([frame, closed], protocol.CLOSING_ERRORS[error.code])

    async def close_with(self, frames, code):
        """Send these frames (the last one session-closed), then close the socket with `code`."""
        for frame in frames:
            await self.send_text(frame)
        self.stop_writing()
        await self.close(code)

    def stop_writing(self):
        self.closing = True
        if self.subscriber is not None:
            self.subscriber.stop()


async def refuse_unknown_path(scope, receive, send):
    """A WebSocket to a path collab does not serve: HTTP 404 at the handshake where the server can send one.

    Elsewhere (a server without the ASGI WebSocket denial response) the handshake is refused, as 403.
    """
    await receive()  # websocket.connect
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close"})
        return
    body = b"No WebSocket is served at this path.\n"
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "websocket.http.response.start", "status": 404, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})
