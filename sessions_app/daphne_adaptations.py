"""collab's adaptations of daphne and autobahn: `install()` applies them when the application is imported.

- **Listen backlog.** Twisted listens with a backlog of 50: a crowd of viewers arriving at once
  (a link shared in a meeting, everyone reconnecting after a restart) overflows it, and the
  kernel's SYN retries (1 s, 3 s, 7 s…) keep the rest waiting. Every TCP or UNIX endpoint
  daphne is given without a `backlog` of its own listens with COLLAB_LISTEN_BACKLOG.
- **Garbage collection.** A crowd of connections is hundreds of thousands of long-lived
  objects (protocols, consumers, tasks), and Python's full collections walk every one of them:
  a storm of 5,000 viewers spent more CPU in them than in serving the sockets. When daphne
  starts serving, what the process has loaded is moved out of the collector's reach
  (`gc.freeze()`: it lives as long as the process), and young objects are collected after
  COLLAB_GC_THRESHOLD allocations instead of 700, so full collections come that much less
  often. Reference counting still frees what is not in a cycle at once.
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
- **Denial responses.** An application may refuse a WebSocket handshake with an HTTP status
  of its choice (the ASGI WebSocket Denial Response extension, offered in the scope), where
  daphne itself only answers 403: collab's routing answers 404 to a path it does not serve.
  autobahn writes the response's body itself, so the application's body is not sent.
- **WebSocket handshakes at once.** A connection whose first bytes are plainly a WebSocket
  handshake goes straight to daphne's WebSocket protocol (websocket_upgrade.py), without
  Twisted parsing it first and daphne writing it out again for autobahn to parse.
- **Writes at once.** Twisted sends what a connection is written on a later turn of the loop,
  registering the socket for it and unregistering it each time; a write with nothing waiting
  before it goes to the kernel at once instead (tcp_writes.py), as with asyncio's transports.
- **HTTP limits.** Twisted would write any request body to a temporary file and daphne copy
  all of it onto the application queue before Django could refuse it. Each HTTP/1.1
  connection now answers 413 as soon as a body's declared length, or the running total of a
  chunked one, passes the limit of its request: COLLAB_MAX_MESSAGE_BYTES for a document
  upload, COLLAB_MAX_REQUEST_BYTES for anything else. A request line and headers must arrive
  within COLLAB_HTTP_HEADER_TIMEOUT (from the accept, or from the first byte of a kept-alive
  connection's next request), else 408; those deadlines share one reactor timer
  (shared_deadlines.py), and Twisted's idle timeout starts with the first byte that is not a
  handshake handed over at once. A connection waiting for a request counts against
  COLLAB_MAX_CONNECTIONS_PER_ADDRESS in its process (connection_limits.py); over it, 429 at
  once. HTTP/2 is not offered, so every request takes this path.

`install()` leaves alone a process without daphne, and applies each adaptation once however
often it is called.
"""

import gc
import inspect
import json
import pprint
import re
from http import HTTPStatus
from urllib.parse import unquote

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .access import cors_allowed
from .connection_limits import BEFORE_SIGN_IN, SocketBeforeSignIn, client_address, waiting_http_connections
from .delivery import DIRECT_SOCKET, DirectSocket
from .protocol import (
    ERROR_TEXTS,
    HEAD_TOO_SLOW,
    TOO_LARGE,
    TOO_MANY_BEFORE_SIGN_IN,
    TOO_MANY_CONNECTIONS,
    TOO_MANY_FROM_ADDRESS,
    api_error_body,
    conversion_refusal_body,
    launch_link_error_body,
    refusal_frames,
    session_closed_message,
    too_large_text,
)
from .shared_deadlines import deadlines_of
from .tcp_writes import write_at_once
from .websocket_upgrade import hand_over, websocket_target

DENIAL_RESPONSE = "websocket.http.response"  # the ASGI extension's name in a scope

# The requests whose body is a document (api_urls.py, urls.py), allowed COLLAB_MAX_MESSAGE_BYTES.
DOCUMENT_UPLOADS = [
    (b"PUT", re.compile(r"/api/sessions/[^/]+/document")),
    (b"POST", re.compile(r"/api/convert/(?:html-docx|docx-html)")),
    (b"POST", re.compile(r"/edit-in-word/generate-word-launch-link")),
]
# A refused connection reads and drops what still arrives for this long (and at most as many
# bytes as the request's body could have held) before it is cut, so that a client still
# sending its body reads the answer rather than a connection reset.
LINGER_SECONDS = 2.0


def skip_twisted_form_parsing(http, WebRequest):
    """Twisted parses every form POST into request.args, which daphne never reads: not any more.

    A malformed multipart body got a bare 400 from Twisted before Django could answer it in
    the API's own shape, and a well-formed one was parsed twice.
    """
    if "parsePOSTFormSubmission" not in inspect.signature(http.Request.__init__).parameters:
        raise ImproperlyConfigured("collab's adaptations do not fit this Twisted: no parsePOSTFormSubmission")
    original = WebRequest.__init__

    def without_form_parsing(self, *args, **kwargs):
        original(self, *args, **{**kwargs, "parsePOSTFormSubmission": False})

    WebRequest.__init__ = without_form_parsing


def install():
    """Apply every adaptation once; a process without daphne is left as it is."""
    try:
        from autobahn import util
        from autobahn.twisted import websocket as twisted_websocket
        from autobahn.websocket import protocol
        from daphne.http_protocol import HTTPFactory, WebRequest
        from daphne.server import Server
        from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
        from twisted.internet import tcp
        from twisted.web import http
    except ImportError:  # not running under daphne
        return
    if getattr(Server, "collab_adaptations_installed", False):
        return
    replaced = {
        "WebSocketFactory.setProtocolOptions": WebSocketFactory,
        "WebSocketProtocol._max_message_size_exceeded": WebSocketProtocol,
        "WebSocketProtocol.onClose": WebSocketProtocol,
        "WebSocketProtocol.onMessageFrameBegin": WebSocketProtocol,
        "WebSocketProtocol.handle_reply": WebSocketProtocol,
        "Server.create_application": Server,
        "Server.run": Server,
        "Timings.__str__": protocol.Timings,
        "HTTPFactory.protocol": HTTPFactory,
        "HTTPFactory.acceptableProtocols": HTTPFactory,
        "WebRequest.handleContentChunk": WebRequest,
        "http._GenericHTTPChannelProtocol": http,
        "Connection.write": tcp.Connection,
        "Connection.writeSomeData": tcp.Connection,
        **{f"HTTPChannel.{name}": http.HTTPChannel for name in BoundedHTTPChannel.REPLACED},
    }
    missing = [name for name, owner in replaced.items() if not hasattr(owner, name.rsplit(".", 1)[1])]
    missing += unfit_http_channel(http, HTTPFactory)
    if missing:
        # A daphne or autobahn release that moved what is replaced here: refuse rather than half-apply.
        raise ImproperlyConfigured(f"collab's adaptations do not fit this daphne: {', '.join(missing)}")
    apply_listen_backlog(Server)
    tune_garbage_collection(Server)
    apply_message_limit(WebSocketFactory, WebSocketProtocol)
    offer_direct_sockets(Server, WebSocketProtocol)
    count_bytes_before_sign_in(Server, WebSocketProtocol)
    apply_lazy_debug_text(util, protocol, twisted_websocket)
    offer_denial_responses(Server, WebSocketProtocol, twisted_websocket.ConnectionDeny)
    apply_http_limits(http, HTTPFactory, WebRequest)
    skip_twisted_form_parsing(http, WebRequest)
    write_at_once(tcp.Connection)
    Server.collab_adaptations_installed = True


def apply_listen_backlog(server_class):
    """Make daphne listen with COLLAB_LISTEN_BACKLOG wherever its endpoint does not name a backlog."""
    backlog = settings.COLLAB_LISTEN_BACKLOG
    run = server_class.run

    def run_with_backlog(self):
        self.endpoints = [with_backlog(endpoint, backlog) for endpoint in self.endpoints]
        run(self)

    server_class.run = run_with_backlog


def tune_garbage_collection(server_class):
    """Freeze what is loaded when daphne starts serving, and collect young objects less often."""
    threshold = settings.COLLAB_GC_THRESHOLD
    run = server_class.run

    def run_tuned(self):
        gc.collect()
        gc.freeze()
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(threshold, older, oldest)
        run(self)

    server_class.run = run_tuned


def with_backlog(endpoint, backlog):
    """A Twisted endpoint description with this backlog, unless it is not TCP or UNIX or has its own."""
    kind = endpoint.split(":", 1)[0]
    # Twisted escapes a colon inside a value as "\:", so an unescaped ":backlog=" is the parameter.
    if kind not in ("tcp", "tcp6", "unix") or re.search(r"(?<!\\):backlog=", endpoint):
        return endpoint
    return f"{endpoint}:backlog={backlog}"


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

    reason_bytes = ERROR_TEXTS["E1009"].encode()

    def refuse_oversized(self, size, max_size, reason):
        refuse_at_transport(self, refusal, TOO_LARGE, reason_bytes)

    factory_class.setProtocolOptions = set_protocol_options
    protocol_class._max_message_size_exceeded = refuse_oversized


def refuse_at_transport(protocol, frames, code, reason):
    """Send these frames if the socket is open, then close it, reading and dropping the rest of the message.

    A clean close instead of autobahn's default drop, so the frames arrive; failedByMe makes
    autobahn ignore the rest of the message in hand, so it is never buffered.
    """
    if protocol.state == protocol.STATE_OPEN:
        for frame in frames:
            protocol.sendMessage(frame, isBinary=False)
    protocol.failedByMe = True
    protocol.sendCloseFrame(code=code, reasonUtf8=reason, isReply=False)


def offer_in_scope(server_class, protocol_class, attribute, extension, key, make, finish):
    """Offer each WebSocket's application `make(protocol, scope)` in its scope; `finish` it on close.

    The object is kept on daphne's protocol as `attribute`, offered as
    `scope["extensions"][extension][key]`, and `finish(object)` runs when the socket closes.
    """
    create_application = server_class.create_application
    on_close = protocol_class.onClose

    def create_application_offering(self, protocol, scope):
        if scope.get("type") == "websocket":
            offered = make(protocol, scope)
            setattr(protocol, attribute, offered)
            scope.setdefault("extensions", {})[extension] = {key: offered}
        return create_application(self, protocol, scope)

    def finish_on_close(self, was_clean, code, reason):
        offered = self.__dict__.get(attribute)
        if offered is not None:
            finish(offered)
        on_close(self, was_clean, code, reason)

    server_class.create_application = create_application_offering
    protocol_class.onClose = finish_on_close


def offer_direct_sockets(server_class, protocol_class):
    """Give each WebSocket's application a DirectSocket, in its scope's extensions."""
    limit = settings.COLLAB_SEND_BUFFER_BYTES
    patience = settings.COLLAB_SLOW_VIEWER_SECONDS
    offer_in_scope(
        server_class,
        protocol_class,
        "collab_direct",
        DIRECT_SOCKET,
        "socket",
        make=lambda protocol, scope: DirectSocket(protocol, limit, patience),
        finish=lambda direct: direct.outbox.cancel(),
    )


def count_bytes_before_sign_in(server_class, protocol_class):
    """Count each frame before sign-in against the socket's address when it begins; refuse past the budget."""
    offer_in_scope(
        server_class,
        protocol_class,
        "collab_before_sign_in",
        BEFORE_SIGN_IN,
        "count",
        make=lambda protocol, scope: SocketBeforeSignIn(client_address(scope)),
        finish=SocketBeforeSignIn.finish,
    )
    frame_begin = protocol_class.onMessageFrameBegin
    refusal = session_closed_message(None, TOO_MANY_BEFORE_SIGN_IN).encode()
    refusal_reason = TOO_MANY_BEFORE_SIGN_IN.encode()

    def count_frame(self, length):
        frame_begin(self, length)
        count = self.__dict__.get("collab_before_sign_in")
        if self.failedByMe or count is None or count.count(length):
            return
        refuse_at_transport(self, [refusal], TOO_MANY_CONNECTIONS, refusal_reason)

    protocol_class.onMessageFrameBegin = count_frame


def offer_denial_responses(server_class, protocol_class, connection_deny):
    """Let a WebSocket's application refuse its handshake with `websocket.http.response.start`'s status."""
    create_application = server_class.create_application
    handle_reply = protocol_class.handle_reply

    def create_application_offering(self, protocol, scope):
        if scope.get("type") == "websocket":
            scope.setdefault("extensions", {})[DENIAL_RESPONSE] = {}
        return create_application(self, protocol, scope)

    def handle_denial(self, message):
        kind = message.get("type")
        if kind == "websocket.http.response.start" and self.state == self.STATE_CONNECTING:
            status = message["status"]
            # As daphne's serverReject, with this status instead of its 403.
            self.handshake_deferred.errback(connection_deny(code=status, reason=HTTPStatus(status).phrase))
            del self.handshake_deferred
            self.server.protocol_disconnected(self)
            client = "%s:%s" % tuple(self.client_addr) if self.client_addr else None  # noqa: UP031 - daphne's form
            self.server.log_action("websocket", "rejected", {"path": self.request.path, "client": client})
        elif kind != "websocket.http.response.body":
            handle_reply(self, message)

    server_class.create_application = create_application_offering
    protocol_class.handle_reply = handle_denial


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


def unfit_http_channel(http, factory_class):
    """What apply_http_limits relies on and this Twisted or daphne does not have."""
    unfit = []
    if factory_class.protocol is not getattr(http, "_genericHTTPChannelProtocolFactory", None):
        unfit.append("HTTPFactory.protocol (not Twisted's own)")
    # The channel keeps the request line's method and target there until the request is whole.
    if not {"_command", "_path", "length"} <= set(http.HTTPChannel.lineReceived.__code__.co_names):
        unfit.append("HTTPChannel._command, _path, length")
    return unfit


def apply_http_limits(http, factory_class, request_class):
    """Make daphne's HTTP connections BoundedHTTPChannels, and count each request's body as it arrives."""
    channel_class = type(
        "BoundedHTTPChannelOfTwisted",
        (BoundedHTTPChannel, http.HTTPChannel),
        {
            "head_timeout": settings.COLLAB_HTTP_HEADER_TIMEOUT,
            "request_limit": settings.COLLAB_MAX_REQUEST_BYTES,
            "document_limit": settings.COLLAB_MAX_MESSAGE_BYTES,
        },
    )
    generic_protocol = http._GenericHTTPChannelProtocol
    handle_content_chunk = request_class.handleContentChunk

    def bounded_channel_protocol(factory):
        return generic_protocol(channel_class())

    def http_1_1_only(factory):
        return [b"http/1.1"]

    def handle_counted_chunk(self, data):
        if self.channel.body_fits(len(data)):
            handle_content_chunk(self, data)

    factory_class.protocol = bounded_channel_protocol
    factory_class.acceptableProtocols = http_1_1_only
    request_class.handleContentChunk = handle_counted_chunk


class BoundedHTTPChannel:
    """Twisted's HTTPChannel (mixed in by apply_http_limits) with a deadline, a body limit and a count.

    A connection is in one of these states: "head" (its request line and headers are on
    their way, against the deadline), "body", "busy" (the application has the request),
    "idle" (kept alive after a response, until the next byte) and "refused" (answered with
    an error, closing). It counts against its address's limit in every state but "busy" and
    "refused".
    """

    REPLACED = (
        "connectionMade",
        "dataReceived",
        "rawDataReceived",
        "allHeadersReceived",
        "allContentReceived",
        "requestDone",
        "connectionLost",
    )
    head_timeout = request_limit = document_limit = None  # set by apply_http_limits
    state = "head"
    fresh = True  # no byte has arrived yet
    address = None
    counted = False
    timer = None  # the linger of a refused connection
    body_limit = body_left = linger_left = 0
    target = b""

    def connectionMade(self):
        # Twisted's idle timeout starts with the first byte that is not a handshake handed
        # over at once (dataReceived): until then the head's deadline holds.
        idle_timeout, self.timeOut = self.timeOut, None
        super().connectionMade()
        self.timeOut = idle_timeout
        self.address = waiting_http_connections.address_of(self.transport.getPeer())
        if not waiting_http_connections.admit(self.address):
            self.refuse(too_many_connections_answer(), self.request_limit)
            return
        self.counted = True
        self.wait_for_head()

    def dataReceived(self, data):
        if self.state == "refused":
            self.linger_left -= len(data)
            if self.linger_left < 0:
                self.transport.abortConnection()
            return
        if self.state == "idle":
            self.wait_for_head()
        if self.fresh:
            self.fresh = False
            target = websocket_target(data)
            if target is not None and self.state == "head" and self.upgrade_at_once(data, target):
                return
            self.setTimeout(self.timeOut)
        super().dataReceived(data)

    def upgrade_at_once(self, data, target):
        """Hand a plain WebSocket handshake to daphne's WebSocket protocol without parsing it here."""
        if not hand_over(self, data, target):
            return False  # the usual way answers it
        self.stop_timer()
        self.uncount()
        self.state = "busy"
        return True

    def rawDataReceived(self, data):
        if self.state != "refused":
            super().rawDataReceived(data)

    def allHeadersReceived(self):
        self.stop_timer()
        self.state = "body"
        self.target = self._path
        self.body_limit = self.limit_for(self._command, self._path)
        if self.length is not None and self.length > self.body_limit:
            self.refuse(too_large_answer(self.target, self.body_limit, self.origin()), self.body_limit)
            return
        self.body_left = self.body_limit
        super().allHeadersReceived()

    def body_fits(self, size):
        """Count `size` more bytes of the request's body; False, and the request refused, past its limit."""
        if self.state == "refused":
            return False
        self.body_left -= size
        if self.body_left < 0:
            self.refuse(too_large_answer(self.target, self.body_limit, self.origin()), self.body_limit)
            return False
        return True

    def origin(self):
        """The Origin header of the request under way, or None."""
        values = self.requests[-1].requestHeaders.getRawHeaders(b"origin") if self.requests else None
        return values[0].decode("latin-1") if values else None

    def allContentReceived(self):
        if self.state == "refused":
            return
        self.state = "busy"
        self.uncount()
        super().allContentReceived()

    def requestDone(self, request):
        if self.persistent:
            # Before Twisted replays any pipelined bytes, which start the next request's deadline.
            self.state = "idle"
            if not self.counted:
                waiting_http_connections.add(self.address)
                self.counted = True
        super().requestDone(request)

    def connectionLost(self, reason):
        self.stop_timer()
        self.uncount()
        super().connectionLost(reason)

    def limit_for(self, method, target):
        """The most bytes the body of a request with this method and target may hold."""
        path = unquote(target.split(b"?", 1)[0].decode("ascii", "replace"))
        for upload_method, pattern in DOCUMENT_UPLOADS:
            if method == upload_method and pattern.fullmatch(path):
                return self.document_limit
        return self.request_limit

    def wait_for_head(self):
        self.state = "head"
        deadlines_of(self.head_timeout).set(self, self.head_too_slow)

    def head_too_slow(self):
        self.refuse(head_too_slow_answer(), self.request_limit)

    def refuse(self, answer, linger_bytes):
        """Answer and close, reading and dropping what still arrives for a moment."""
        self.state = "refused"
        self.linger_left = linger_bytes
        self.stop_timer()
        self.uncount()
        self.setTimeout(None)
        self.transport.write(answer)
        close_writing = getattr(self.transport, "loseWriteConnection", None)
        if close_writing is None:  # TLS: no half close
            self.loseConnection()
            return
        close_writing()
        self.timer = self.callLater(LINGER_SECONDS, self.transport.abortConnection)

    def stop_timer(self):
        deadlines_of(self.head_timeout).cancel(self)
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None

    def uncount(self):
        if self.counted:
            waiting_http_connections.remove(self.address)
            self.counted = False


def http_answer(status, content_type, text, headers=()):
    """A whole HTTP response that closes its connection."""
    body = text.encode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers)
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


def too_large_answer(target, limit, origin=None):
    """413 in the shape of the path's answers: section 10's, section 11's, the API's JSON, else plain text.

    An origin allowed to read the path's answers (CORS) may read this one too.
    """
    message = too_large_text(limit)
    path = target.decode("latin-1")
    headers = []
    if origin is not None and re.match(settings.CORS_URLS_REGEX, path) and cors_allowed(origin):
        headers = [("Access-Control-Allow-Origin", origin), ("Vary", "origin")]
    if path.startswith("/edit-in-word/"):
        body = launch_link_error_body("H1001", message)
    elif path.startswith("/api/convert/"):
        body = conversion_refusal_body(message)
    elif path.startswith("/api/"):
        body = api_error_body("E1009", message)
    else:
        return http_answer(413, "text/plain; charset=utf-8", f"{message}\n")
    return http_answer(413, "application/json", json.dumps(body), headers)


def head_too_slow_answer():
    return http_answer(408, "text/plain; charset=utf-8", f"{HEAD_TOO_SLOW}.\n")


def too_many_connections_answer():
    return http_answer(429, "text/plain; charset=utf-8", f"{TOO_MANY_FROM_ADDRESS}.\n")
