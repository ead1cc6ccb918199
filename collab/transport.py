"""Adaptations of daphne's WebSocket layer, applied when the application is imported.

- The size cap follows COLLAB_MAX_MESSAGE_BYTES, however daphne is started. Daphne 4.2.2+
  caps messages at 1 MiB unless started with flags; deployers type
  `daphne collab.asgi:application`, so the cap is raised here, and an oversized message is
  refused the protocol's way (E1009).
- Each socket's application finds a DirectSocket in its scope's extensions: the session
  hub writes one pre-framed broadcast to thousands of them, and each one's DocumentOutbox
  keeps a slow viewer from holding up the others or growing the server's memory.
"""

import json
import time

from django.conf import settings


def oversized_refusal(limit):
    """The E1009 error and session-closed frames sent before closing an oversized socket."""
    error = {
        "Origin": "server",
        "SessionId": None,
        "Action": "Unknown",
        "Content": f"Message too large: limit {limit} bytes",
        "Success": False,
        "ErrorCode": "E1009",
    }
    closed = {**error, "Action": "session-closed", "Content": "Message too large", "Success": True}
    del closed["ErrorCode"]
    return json.dumps(error).encode(), json.dumps(closed).encode()


def apply_message_limit():
    """Make daphne's WebSocket factory use collab's limit and answer E1009 above it."""
    try:
        from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
    except ImportError:  # not running under daphne
        return
    if getattr(WebSocketFactory, "collab_limit_applied", False):
        return
    limit = settings.COLLAB_MAX_MESSAGE_BYTES
    set_options = WebSocketFactory.setProtocolOptions

    def set_protocol_options(self, *args, **kwargs):
        if "maxMessagePayloadSize" in kwargs or "maxFramePayloadSize" in kwargs:
            kwargs["maxMessagePayloadSize"] = limit
            kwargs["maxFramePayloadSize"] = limit
        set_options(self, *args, **kwargs)

    def refuse_oversized(self, size, max_size, reason):
        if self.state == self.STATE_OPEN:
            for frame in oversized_refusal(limit):
                self.sendMessage(frame, isBinary=False)
        # A clean close instead of autobahn's default drop, so the frames above arrive;
        # failedByMe makes autobahn ignore the rest of the oversized message.
        self.failedByMe = True
        self.sendCloseFrame(code=4413, reasonUtf8=b"Message too large", isReply=False)

    WebSocketFactory.setProtocolOptions = set_protocol_options
    WebSocketProtocol._max_message_size_exceeded = refuse_oversized
    WebSocketFactory.collab_limit_applied = True


# Close code for a viewer that cannot keep up (4000 + HTTP 408), after a session-closed reason.
TOO_SLOW = 4408
TOO_SLOW_REASON = "Connection too slow: reconnect to get the current version"
# How often a socket holding back a document checks whether its buffer has drained.
DRAIN_POLL_SECONDS = 0.2
# The ASGI scope extension through which a consumer reaches its daphne socket directly.
DIRECT_SOCKET = "collab.direct-socket"


class OutgoingFrame:
    """A text message encoded and framed once, then written to any number of sockets."""

    __slots__ = ("text", "_prepared")

    def __init__(self, text):
        self.text = text
        self._prepared = None

    @property
    def prepared(self):
        if self._prepared is None:
            from autobahn.websocket.protocol import PreparedMessage

            # collab's JSON is ASCII (json.dumps escapes the rest), so encoding cannot fail.
            payload = self.text.encode("utf-8")
            self._prepared = PreparedMessage(payload, isBinary=False, applyMask=False, doNotCompress=False)
        return self._prepared


def pending_write_bytes(transport):
    """Bytes handed to a Twisted transport that the kernel has not taken yet."""
    # TLS and policy wrappers keep the TCP transport underneath.
    while transport is not None and not hasattr(transport, "dataBuffer"):
        transport = getattr(transport, "transport", None)
    if transport is None:
        return 0
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


def write_frame(protocol, frame):
    """Write a prepared frame to an open autobahn socket: to the kernel at once when nothing waits."""
    if protocol._perMessageCompress is not None or protocol.send_queue:
        protocol.sendPreparedMessage(frame.prepared)
        return
    # What sendPreparedMessage does, without the debug line autobahn formats on every write.
    data = frame.prepared.payloadHybi
    transport = protocol.transport
    sent = send_now(transport, data) if is_idle_tcp(transport) else 0
    if sent < len(data):
        transport.write(data[sent:] if sent else data)


def is_idle_tcp(transport):
    """Whether this is a plain TCP connection, open, with nothing waiting to be sent."""
    from twisted.internet.tcp import Connection

    return (
        isinstance(transport, Connection)
        and transport.connected
        and not transport.disconnecting
        and pending_write_bytes(transport) == 0
    )


def send_now(transport, data):
    """Send what the kernel takes now; the number of bytes sent.

    Twisted never sends from write(): it registers the socket with the event loop and sends on
    a later turn, which for one broadcast to a thousand sockets costs as much again as the
    sends themselves. With nothing waiting before it, a frame can go to the kernel straight
    away, as asyncio's own transports do; the rest, if any, is written the usual way.
    """
    view = memoryview(data)
    sent = 0
    while sent < len(data):
        count = transport.writeSomeData(view[sent:])
        if not isinstance(count, int) or count <= 0:
            # Full (0), or the connection is lost: the usual write finds out and closes it.
            break
        sent += count
    return sent


class DirectSocket:
    """One daphne socket, written from the event loop without the ASGI send round trip.

    A session's hub (sessions_app/hub.py) writes one broadcast to thousands of these: each
    write is the same pre-framed bytes handed to the socket's transport, as a relay written
    on the websockets library does. Daphne runs Twisted on the asyncio loop, so this is the
    same thread that daphne's own send path writes from.
    """

    __slots__ = ("protocol", "outbox")

    def __init__(self, protocol, limit, patience):
        self.protocol = protocol
        self.outbox = DocumentOutbox(protocol, limit, patience)

    @property
    def is_open(self):
        return self.protocol.state == self.protocol.STATE_OPEN

    def send_document(self, frame, version, session_id, full=None):
        """Write a document frame now, or as the newest waiting one while the socket is backed up.

        A patch (to `version` from the version before) comes with `full`, the whole document,
        which replaces it if the socket's base version was never written.
        """
        if self.is_open:
            self.outbox.send(frame, version, session_id, full)

    def send_frame(self, frame):
        """Write any other frame (presence counts) at once."""
        if self.is_open:
            write_frame(self.protocol, frame)


class DocumentOutbox:
    """One socket's outgoing documents: written at once while its buffer is small, else only the newest.

    Twisted buffers writes without bound, so a viewer that reads slower than versions come
    would grow the server's memory. Above COLLAB_SEND_BUFFER_BYTES pending, a new document
    frame waits here, replacing any older one that waits; a patch whose base the client never
    got is swapped for the full document. A socket that stays backed up for
    COLLAB_SLOW_VIEWER_SECONDS gets session-closed and close code 4408, and reconnects.
    """

    __slots__ = ("protocol", "limit", "patience", "written_version", "waiting", "backed_up_since", "timer")

    def __init__(self, protocol, limit, patience):
        self.protocol = protocol
        self.limit = limit
        self.patience = patience
        self.written_version = None
        self.waiting = None  # (frame, version, session id) of the newest unsent document
        self.backed_up_since = None
        self.timer = None

    def send(self, frame, version, session_id, full=None):
        """Write a document frame now, or keep it as the newest to write once the buffer drains."""
        if self.waiting is None and pending_write_bytes(self.protocol.transport) < self.limit:
            self._write(frame, version)
            return
        if full is not None and self.written_version != version - 1:
            frame = full
        self.waiting = (frame, version, session_id)
        if self.timer is None:
            self.backed_up_since = time.monotonic()
            self.timer = self._reactor().callLater(DRAIN_POLL_SECONDS, self._check)

    def _write(self, frame, version):
        self.written_version = version
        write_frame(self.protocol, frame)

    def _check(self):
        self.timer = None
        if self.protocol.state != self.protocol.STATE_OPEN or self.waiting is None:
            self.waiting = None
            return
        if pending_write_bytes(self.protocol.transport) < self.limit:
            frame, version, _ = self.waiting
            self.waiting = None
            self._write(frame, version)
        elif time.monotonic() - self.backed_up_since > self.patience:
            self._close_too_slow()
        else:
            self.timer = self._reactor().callLater(DRAIN_POLL_SECONDS, self._check)

    def _close_too_slow(self):
        session_id = self.waiting[2]
        self.waiting = None
        closed = {
            "Origin": "server",
            "SessionId": session_id,
            "Action": "session-closed",
            "Content": TOO_SLOW_REASON,
            "Success": True,
        }
        self.protocol.serverSend(json.dumps(closed), False)
        # Behind the backlog these may never be read: autobahn then drops the TCP connection
        # when its close handshake times out, which frees the buffer either way.
        self.protocol.serverClose(code=TOO_SLOW)

    def cancel(self):
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        self.waiting = None

    @staticmethod
    def _reactor():
        from twisted.internet import reactor

        return reactor


def offer_direct_sockets():
    """Give each WebSocket's application a DirectSocket, in its scope's extensions, under daphne."""
    try:
        from daphne.server import Server
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:  # not running under daphne
        return
    if getattr(Server, "collab_direct_sockets", False):
        return
    limit = settings.COLLAB_SEND_BUFFER_BYTES
    patience = settings.COLLAB_SLOW_VIEWER_SECONDS
    create_application = Server.create_application
    on_close = WebSocketProtocol.onClose

    def create_application_with_socket(self, protocol, scope):
        if scope.get("type") == "websocket":
            direct = protocol.collab_direct = DirectSocket(protocol, limit, patience)
            scope.setdefault("extensions", {})[DIRECT_SOCKET] = {"socket": direct}
        return create_application(self, protocol, scope)

    def close_outbox(self, was_clean, code, reason):
        direct = self.__dict__.get("collab_direct")
        if direct is not None:
            direct.outbox.cancel()
        on_close(self, was_clean, code, reason)

    Server.create_application = create_application_with_socket
    WebSocketProtocol.onClose = close_outbox
    Server.collab_direct_sockets = True
