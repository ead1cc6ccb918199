"""Adaptations of daphne's WebSocket layer, applied when the application is imported.

The size cap follows COLLAB_MAX_MESSAGE_BYTES, however daphne is started.

Daphne 4.2.2+ caps messages at 1 MiB unless started with flags; deployers type
`daphne collab.asgi:application`, so the cap is raised here, when the application
is imported, and an oversized message is refused the protocol's way (E1009).
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


def pending_write_bytes(transport):
    """Bytes handed to a Twisted transport that the kernel has not taken yet."""
    # TLS and policy wrappers keep the TCP transport underneath.
    while transport is not None and not hasattr(transport, "dataBuffer"):
        transport = getattr(transport, "transport", None)
    if transport is None:
        return 0
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


class DocumentOutbox:
    """One socket's outgoing documents: written at once while its buffer is small, else only the newest.

    Twisted buffers writes without bound, so a viewer that reads slower than versions come
    would grow the server's memory. Above COLLAB_SEND_BUFFER_BYTES pending, a new document
    frame waits here, replacing any older one that waits; a patch whose base the client never
    got is swapped for the full document. A socket that stays backed up for
    COLLAB_SLOW_VIEWER_SECONDS gets session-closed and close code 4408, and reconnects.
    """

    def __init__(self, protocol, limit, patience):
        self.protocol = protocol
        self.limit = limit
        self.patience = patience
        self.written_version = None
        self.waiting = None  # (text, version, session id) of the newest unsent document
        self.backed_up_since = None
        self.timer = None

    def send(self, text, document):
        """Write a document frame now, or keep it as the newest to write once the buffer drains."""
        if self.waiting is None and pending_write_bytes(self.protocol.transport) < self.limit:
            self._write(text, document["version"])
            return
        if document.get("base") is not None and document["base"] != self.written_version:
            text = document["full"]
        self.waiting = (text, document["version"], document.get("session"))
        if self.timer is None:
            self.backed_up_since = time.monotonic()
            self.timer = self._reactor().callLater(DRAIN_POLL_SECONDS, self._check)

    def _write(self, text, version):
        self.written_version = version
        self.protocol.serverSend(text, False)

    def _check(self):
        self.timer = None
        if self.protocol.state != self.protocol.STATE_OPEN or self.waiting is None:
            self.waiting = None
            return
        if pending_write_bytes(self.protocol.transport) < self.limit:
            text, version, _ = self.waiting
            self.waiting = None
            self._write(text, version)
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


def apply_slow_viewer_limit():
    """Route document frames through a per-socket DocumentOutbox under daphne (see its docstring)."""
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:  # not running under daphne
        return
    if getattr(WebSocketProtocol, "collab_outbox_applied", False):
        return
    limit = settings.COLLAB_SEND_BUFFER_BYTES
    patience = settings.COLLAB_SLOW_VIEWER_SECONDS
    handle_reply = WebSocketProtocol.handle_reply
    on_close = WebSocketProtocol.onClose

    def handle_document_reply(self, message):
        document = message.get("collab.document")
        if document is None or message.get("type") != "websocket.send" or self.state != self.STATE_OPEN:
            handle_reply(self, message)
            return
        outbox = self.__dict__.get("collab_outbox")
        if outbox is None:
            outbox = self.collab_outbox = DocumentOutbox(self, limit, patience)
        outbox.send(message["text"], document)

    def close_outbox(self, was_clean, code, reason):
        outbox = self.__dict__.get("collab_outbox")
        if outbox is not None:
            outbox.cancel()
        on_close(self, was_clean, code, reason)

    WebSocketProtocol.handle_reply = handle_document_reply
    WebSocketProtocol.onClose = close_outbox
    WebSocketProtocol.collab_outbox_applied = True
