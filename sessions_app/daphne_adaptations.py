"""collab's adaptations of daphne and autobahn: `install()` applies them when the application is imported.

- **Message cap.** Daphne 4.2.2+ caps WebSocket messages at 1 MiB unless started with flags;
  deployers type `daphne collab.asgi:application`, so the cap follows
  COLLAB_MAX_MESSAGE_BYTES however daphne is started, and an oversized message is refused
  the protocol's way (E1009, session-closed, close code 4413).
- **Direct sockets.** Each WebSocket's application finds a DirectSocket (delivery.py) in its
  scope's extensions: the session hub writes one pre-framed broadcast to thousands of them.
- **Bytes before sign-in.** Each frame a socket receives before it signs in is counted
  against its client address (connection_limits.py) as soon as its header declares its
  length; one that would pass COLLAB_MAX_PRE_SIGN_IN_BYTES_PER_ADDRESS is refused there,
  before its payload is buffered (session-closed, close code 4429). The consumer finds the
  socket's count in its scope's extensions and ends it when the socket signs in.
- **Lazy debug text.** autobahn builds the text of its debug log lines before calling the
  logger, even when debug logging is off: on every connection it pretty-prints its whole
  option set (`pformat`) and colours names for several lines (`hltype`, `hlval`), and two
  more for every chunk received or sent. Those three names, as autobahn's WebSocket modules
  see them, build their text only when a line is written, so lines read as before when
  debug logging is on.

`install()` leaves alone a process without daphne, and applies each adaptation once however
often it is called.
"""

import pprint

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .connection_limits import BEFORE_SIGN_IN, SocketBeforeSignIn, client_address
from .delivery import DIRECT_SOCKET, DirectSocket
from .protocol import (
    ERROR_TEXTS,
    TOO_LARGE,
    TOO_MANY_BEFORE_SIGN_IN,
    TOO_MANY_CONNECTIONS,
    refusal_frames,
    session_closed_message,
)


def install():
    """Apply every adaptation once; a process without daphne is left as it is."""
    try:
        from autobahn import util
        from autobahn.twisted import websocket as twisted_websocket
        from autobahn.websocket import protocol
        from daphne.server import Server
        from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
    except ImportError:  # not running under daphne
        return
    if getattr(Server, "collab_adaptations_installed", False):
        return
    replaced = {
        "WebSocketFactory.setProtocolOptions": WebSocketFactory,
        "WebSocketProtocol._max_message_size_exceeded": WebSocketProtocol,
        "WebSocketProtocol.onClose": WebSocketProtocol,
        "WebSocketProtocol.onMessageFrameBegin": WebSocketProtocol,
        "Server.create_application": Server,
        "Timings.__str__": protocol.Timings,
    }
    missing = [name for name, owner in replaced.items() if not hasattr(owner, name.rsplit(".", 1)[1])]
    if missing:
        # A daphne or autobahn release that moved what is replaced here: refuse rather than half-apply.
        raise ImproperlyConfigured(f"collab's adaptations do not fit this daphne: {', '.join(missing)}")
    apply_message_limit(WebSocketFactory, WebSocketProtocol)
    offer_direct_sockets(Server, WebSocketProtocol)
    count_bytes_before_sign_in(Server, WebSocketProtocol)
    apply_lazy_debug_text(util, protocol, twisted_websocket)
    Server.collab_adaptations_installed = True


def apply_message_limit(factory_class, protocol_class):
    """Make daphne's WebSocketFactory use collab's limit and answer E1009 above it."""
    limit = settings.COLLAB_MAX_MESSAGE_BYTES
    set_options = factory_class.setProtocolOptions

    def set_protocol_options(self, *args, **kwargs):
        if "maxMessagePayloadSize" in kwargs or "maxFramePayloadSize" in kwargs:
            kwargs["maxMessagePayloadSize"] = limit
            kwargs["maxFramePayloadSize"] = limit
        set_options(self, *args, **kwargs)

    # The transport does not know the socket's session: the refusal carries SessionId null.
    refusal = [frame.encode() for frame in refusal_frames(None, "E1009", detail=f"limit {limit} bytes")]

    def refuse_oversized(self, size, max_size, reason):
        if self.state == self.STATE_OPEN:
            for frame in refusal:
                self.sendMessage(frame, isBinary=False)
        # A clean close instead of autobahn's default drop, so the frames above arrive;
        # failedByMe makes autobahn ignore the rest of the oversized message.
        self.failedByMe = True
        self.sendCloseFrame(code=TOO_LARGE, reasonUtf8=ERROR_TEXTS["E1009"].encode(), isReply=False)

    factory_class.setProtocolOptions = set_protocol_options
    protocol_class._max_message_size_exceeded = refuse_oversized


def offer_direct_sockets(server_class, protocol_class):
    """Give each WebSocket's application a DirectSocket, in its scope's extensions."""
    limit = settings.COLLAB_SEND_BUFFER_BYTES
    patience = settings.COLLAB_SLOW_VIEWER_SECONDS
    create_application = server_class.create_application
    on_close = protocol_class.onClose

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

    server_class.create_application = create_application_with_socket
    protocol_class.onClose = close_outbox


def count_bytes_before_sign_in(server_class, protocol_class):
    """Count each frame before sign-in against the socket's address when it begins; refuse past the budget."""
    create_application = server_class.create_application
    on_close = protocol_class.onClose
    frame_begin = protocol_class.onMessageFrameBegin
    refusal = session_closed_message(None, TOO_MANY_BEFORE_SIGN_IN).encode()
    refusal_reason = TOO_MANY_BEFORE_SIGN_IN.encode()

    def create_application_with_count(self, protocol, scope):
        if scope.get("type") == "websocket":
            count = protocol.collab_before_sign_in = SocketBeforeSignIn(client_address(scope))
            scope.setdefault("extensions", {})[BEFORE_SIGN_IN] = {"count": count}
        return create_application(self, protocol, scope)

    def count_frame(self, length):
        frame_begin(self, length)
        count = self.__dict__.get("collab_before_sign_in")
        if self.failedByMe or count is None or count.count(length):
            return
        if self.state == self.STATE_OPEN:
            self.sendMessage(refusal, isBinary=False)
        # As for an oversized message: the rest of this one is read and dropped, never buffered.
        self.failedByMe = True
        self.sendCloseFrame(code=TOO_MANY_CONNECTIONS, reasonUtf8=refusal_reason, isReply=False)

    def finish_count(self, was_clean, code, reason):
        count = self.__dict__.get("collab_before_sign_in")
        if count is not None:
            count.finish()
        on_close(self, was_clean, code, reason)

    server_class.create_application = create_application_with_count
    protocol_class.onClose = finish_count
    protocol_class.onMessageFrameBegin = count_frame


class TextWhenLogged:
    """The text `function(*args, **kwargs)`, built only when a log line formats it."""

    __slots__ = ("function", "args", "kwargs")

    def __init__(self, function, args, kwargs):
        self.function = function
        self.args = args
        self.kwargs = kwargs

    def __str__(self):
        return self.function(*self.args, **self.kwargs)

    def __repr__(self):
        return repr(str(self))

    def __format__(self, spec):
        return format(str(self), spec)


def formatted_when_logged(function):
    """A stand-in for `function` whose text is built only when it is formatted."""

    def stand_in(*args, **kwargs):
        return TextWhenLogged(function, args, kwargs)

    stand_in.__name__ = function.__name__
    stand_in.__wrapped__ = function
    return stand_in


def timings_text(timings):
    """autobahn's Timings.__str__, the one use of pformat there outside a log line: it must stay a str."""
    return pprint.pformat(timings._timings)


def apply_lazy_debug_text(util, protocol, twisted_websocket):
    """Make autobahn's WebSocket modules build the text of their debug lines only when they are written."""
    protocol.Timings.__str__ = timings_text
    stand_ins = {
        "pformat": formatted_when_logged(pprint.pformat),
        "hltype": formatted_when_logged(util.hltype),
        "hlval": formatted_when_logged(util.hlval),
    }
    # Every other use of these names in the two modules is an argument of a log call.
    for module in (protocol, twisted_websocket):
        for name, stand_in in stand_ins.items():
            if hasattr(module, name):
                setattr(module, name, stand_in)
