"""Writing to signed-in sockets: each one's Subscriber, and under daphne its DirectSocket and DocumentOutbox.

A session's hub (hub.py) talks to Subscribers only: each knows the version its socket holds,
its protocol and features, whether it listens yet, and how to write to it. Under daphne a
write is the same pre-framed bytes handed to the socket's transport (DirectSocket), held
back by the socket's DocumentOutbox while a slow viewer's buffer is full; without daphne
(the WebsocketCommunicator tests) it is the ASGI send.
"""

import time

from .protocol import (
    CLOSING_ERRORS,
    HTML_PATCH,
    NORMAL_CLOSURE,
    TOO_SLOW,
    TOO_SLOW_REASON,
    end_session_message,
    refusal_frames,
    session_closed_message,
)
from .tcp_writes import pending_write_bytes

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


def write_frame(protocol, frame):
    """Write a prepared frame to an open autobahn socket (to the kernel at once when nothing waits)."""
    if protocol._perMessageCompress is not None or protocol.send_queue:
        protocol.sendPreparedMessage(frame.prepared)
        return
    # What sendPreparedMessage does, without the debug line autobahn formats on every write.
    protocol.transport.write(frame.prepared.payloadHybi)


class DirectSocket:
    """One daphne socket, written from the event loop without the ASGI send round trip.

    A session's hub (hub.py) writes one broadcast to thousands of these: each
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
        self.protocol.serverSend(session_closed_message(session_id, TOO_SLOW_REASON), False)
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


class Subscriber:
    """One signed-in socket as its session's hub sees it: what it holds and takes, and how to write to it.

    The consumer makes one after sign-in and hands it the two ways it writes: `send_text`,
    the ASGI send of one text frame, and `close`, which sends frames, then closes the socket
    with a code and stops the consumer. `token_expires` is when the socket's token expires
    (a POSIX timestamp, None for never): from then on it gets no document, and its hub closes it.
    """

    __slots__ = (
        "session_id",
        "token_id",
        "token_expires",
        "protocol",
        "features",
        "takes_patches",
        "version_at_sign_in",
        "direct",
        "send_text",
        "close",
        "listening",
        "missed_version",
        "sent_version",
        "sent_presence",
        "stopped",
    )

    def __init__(
        self,
        session_id,
        token_id,
        protocol,
        features,
        version_at_sign_in,
        direct,
        send_text,
        close,
        token_expires=None,
    ):
        self.session_id = session_id
        self.token_id = token_id
        self.token_expires = token_expires
        self.protocol = protocol
        self.features = features
        self.takes_patches = HTML_PATCH in features
        self.version_at_sign_in = version_at_sign_in
        self.direct = direct  # the socket's DirectSocket under daphne, else None
        self.send_text = send_text
        self.close = close
        self.listening = False  # the hub writes to the socket only once it is greeted
        self.missed_version = -1  # a version broadcast while the socket was being greeted
        self.sent_version = -1
        self.sent_presence = None
        self.stopped = False

    @property
    def version_heard(self):
        """The newest version this socket has had, or was current when it signed in."""
        return max(self.sent_version, self.version_at_sign_in)

    def stop(self):
        """Write nothing more: the socket is closing."""
        self.stopped = True

    def holds(self, version):
        """The client already shows this version (its LastVersion): the next one can reach it as a patch."""
        self.sent_version = version

    def told_presence(self, counts):
        """The client has these counts (the init reply carried them)."""
        self.sent_presence = counts

    def missed(self, version):
        """A version broadcast while the socket was being greeted: it is sent once the socket listens."""
        self.missed_version = max(self.missed_version, version)

    def start_listening(self):
        """Take deliveries from now on; the newest version missed meanwhile, or None."""
        self.listening = True
        return self.missed_version if self.missed_version > self.sent_version else None

    def lacks(self, version):
        """Whether the socket has not been sent this version (or a newer one) yet."""
        return self.sent_version < version

    def patches_to(self, version):
        """Whether an html-patch brings this socket to `version`: it takes them and holds the one before."""
        return self.takes_patches and self.sent_version == version - 1

    def token_lapsed(self, now=None):
        """Whether the socket's token has expired."""
        return self.token_expires is not None and (now or time.time()) >= self.token_expires

    def takes_presence(self, counts):
        """Whether these counts are news to a listening version 2 socket."""
        return self.listening and self.protocol >= 2 and self.sent_presence != counts

    async def send_document(self, version, frame, full=None, force=False):
        """Send a get-html (or, with `full`, html-patch) frame; versions never go down for one socket.

        Under daphne the frame goes straight to the socket's DocumentOutbox, which holds it
        back for a newer one while the socket is backed up, and which needs the full frame
        in place of a patch whose base the socket never got.
        """
        if self.stopped or version < self.sent_version or (version == self.sent_version and not force):
            return
        self.sent_version = version
        if self.direct is None:
            await self.send_text(frame.text)
            return
        self.direct.send_document(frame, version, self.session_id, full)

    async def send_presence(self, frame, counts):
        """Send presence counts, encoded once for the whole session by the hub."""
        if self.stopped:
            return
        self.sent_presence = counts
        if self.direct is None:
            await self.send_text(frame.text)
        else:
            self.direct.send_frame(frame)

    async def session_ended(self, reason):
        """The session ended: say so, then close normally."""
        if not self.stopped:
            frames = [
                end_session_message(self.session_id, reason),
                session_closed_message(self.session_id, reason),
            ]
            await self.close(frames, NORMAL_CLOSURE)

    async def token_revoked(self, token_id):
        """A token was revoked: a socket using it is refused at once."""
        if token_id == self.token_id:
            await self.token_refused("E1003")

    async def token_refused(self, code):
        """The socket's token may no longer act (E1003: expired or revoked; E1006: its session is gone)."""
        if not self.stopped:
            await self.close(refusal_frames(self.session_id, code), CLOSING_ERRORS[code])
