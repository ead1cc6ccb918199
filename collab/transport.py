"""Daphne's WebSocket size cap follows COLLAB_MAX_MESSAGE_BYTES, however daphne is started.

Daphne 4.2.2+ caps messages at 1 MiB unless started with flags; deployers type
`daphne collab.asgi:application`, so the cap is raised here, when the application
is imported, and an oversized message is refused the protocol's way (E1009).
"""

import json

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
