"""How every process hears that a session has a new version: one Redis PUBLISH, small HTML included.

With REDIS_URL, the process that stored a version publishes a notice on the session's
channel; each process subscribes, on one connection of its own, to the channels of the
sessions it has sockets of (their hubs, hub.py). A notice carries the version, its
PublishedAt and, up to COLLAB_NOTICE_HTML_BYTES, the HTML itself: the processes that
receive it serve their sockets without reading the database. It is signed with a key
derived from SECRET_KEY, so whoever can write to Redis cannot put HTML before viewers; a
notice that fails the check is dropped and logged. The publisher's process has served its
own sockets already (hubs.deliver_here) and skips its own notices.

Pub/sub publishes and forgets. A process whose subscription connection fails (Redis
restarted, or cut off a subscriber too slow to read) connects again, subscribes again, and
then has every hub catch up from the database, as after losing the channel layer.

Without REDIS_URL there is one process: a notice goes straight to its hubs.

The other messages of a session (presence, its end, a revoked token) go through the
channel layer: they are rare, and its queues keep them for a process that is briefly away.
"""

import asyncio
import contextvars
import hmac
import json
import logging
import secrets
from collections import defaultdict, deque

from django.conf import settings
from django.utils.crypto import salted_hmac

from .redis_tasks import RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS, WaitingClient, stopping

log = logging.getLogger(__name__)

SIGNATURE_SALT = "collab.version_notices"
SIGNATURE_BYTES = 32  # SHA-256
SUBSCRIBE_TIMEOUT_SECONDS = 10


def encode_notice(version, published_at, html, origin=None):
    """The signed bytes of a notice: signature, a JSON line, then the HTML (when it comes along)."""
    header = {"version": version, "published_at": published_at, "html": html is not None}
    if origin is not None:
        header["origin"] = origin
    body = json.dumps(header, separators=(",", ":")).encode() + b"\n"
    if html is not None:
        body += html.encode()
    return signature(body) + body


def decode_notice(data):
    """(header, html or None) of a notice's bytes; ValueError if it is malformed or its signature fails."""
    mark, body = data[:SIGNATURE_BYTES], data[SIGNATURE_BYTES:]
    if not hmac.compare_digest(mark, signature(body)):
        raise ValueError("bad signature")
    line, _, html = body.partition(b"\n")
    header = json.loads(line)
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError("no version")
    return header, (html.decode() if header.get("html") else None)


def notice_origin(data):
    """The origin a notice names, as bytes, read without checking it (to skip one's own cheaply)."""
    line = data[SIGNATURE_BYTES : data.find(b"\n", SIGNATURE_BYTES)]
    start = line.find(b'"origin":"')
    return line[start + 10 : line.find(b'"', start + 10)] if start >= 0 else None


def signature(body):
    return salted_hmac(SIGNATURE_SALT, body, algorithm="sha256").digest()


def carried_html(html):
    """The HTML if a notice carries it (COLLAB_NOTICE_HTML_BYTES, 0 never), else None."""
    limit = settings.COLLAB_NOTICE_HTML_BYTES
    if html is None or not limit or len(html) > limit:
        return None
    # Characters are bytes in ASCII: only other HTML is encoded to be measured (the notice encodes it).
    if not html.isascii() and len(html.encode()) > limit:
        return None
    return html


class Listeners:
    """Who listens to which session's notices: hubs, each with the event loop it runs in.

    A listener has `version_heard(version, html, published_at)` (html and published_at may be
    None: read them from the database) and `notices_missed()` (catch up from the database).
    """

    def __init__(self):
        self._by_session = defaultdict(dict)  # session id -> {listener: None}

    def add(self, session_id, listener):
        self._by_session[session_id][listener] = None

    def discard(self, session_id, listener):
        """Stop a listener; True if it was the session's last."""
        listeners = self._by_session.get(session_id)
        if listeners is None:
            return False
        listeners.pop(listener, None)
        if listeners:
            return False
        del self._by_session[session_id]
        return True

    def of(self, session_id):
        return list(self._by_session.get(session_id, ()))

    def sessions(self):
        return list(self._by_session)

    def keep_only(self, loop):
        """Forget the listeners of every other event loop."""
        for session_id, listeners in list(self._by_session.items()):
            for listener in [listener for listener in listeners if listener.loop is not loop]:
                self.discard(session_id, listener)

    def everyone(self):
        return [listener for listeners in self._by_session.values() for listener in listeners]


def tell(listener, handler, *args):
    """Run a listener's handler in the listener's event loop, from this one or another thread's.

    In a context of its own: one inherited from a synchronous caller (the REST API's, through
    async_to_sync) would send the handler's database reads to that call's thread, long ended.
    """
    loop = listener.loop
    if loop.is_closed():
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        start_handling(listener, handler, args)
    else:
        loop.call_soon_threadsafe(start_handling, listener, handler, args, context=contextvars.Context())


def start_handling(listener, handler, args):
    task = listener.loop.create_task(handled(listener, handler, *args), context=contextvars.Context())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


_tasks = set()


async def handled(listener, coroutine_function, *args):
    try:
        await coroutine_function(*args)
    except Exception:
        log.exception("session %s: version notice not delivered", getattr(listener, "session_id", "?"))


class LocalNotices:
    """One process: a notice goes to its own listeners, unless they were served already."""

    def __init__(self):
        self.listeners = Listeners()

    async def subscribe(self, session_id, listener):
        self.listeners.add(session_id, listener)

    async def unsubscribe(self, session_id, listener):
        self.listeners.discard(session_id, listener)

    async def announce(self, session_id, version, html=None, published_at=None, served_here=False):
        """Tell the session's listeners of a stored version; with served_here, they have it already."""
        if served_here:
            return
        for listener in self.listeners.of(session_id):
            tell(listener, listener.version_heard, version, carried_html(html), published_at)


class RedisNotices:
    """Notices over Redis pub/sub, one subscription connection per event loop (a process has one)."""

    def __init__(self, url, prefix):
        self.url = url
        self.prefix = prefix
        self.origin = secrets.token_hex(8)  # this process: its notices are skipped by its own reader
        self.listeners = Listeners()
        self._client = WaitingClient(url, timeout=10)  # publishes
        self._loop = None
        self._reader = None  # the task that keeps the subscription and reads it
        self._attempt = None  # a future done once the reader's current connection attempt has ended
        self._connection = None  # the subscription's connection, while it is up
        # On the current connection: channel -> the future of its SUBSCRIBE's confirmation,
        # while listened to; and the confirmations each channel waits for, in the order its
        # SUBSCRIBEs (a future) and UNSUBSCRIBEs (None) were sent, as Redis answers them.
        self._subscribed = {}
        self._replies = defaultdict(deque)
        self.failures = 0  # subscription connections lost, for tests

    def channel(self, session_id):
        return f"{self.prefix}:versions:{session_id}"

    async def subscribe(self, session_id, listener):
        """Listen to a session's notices; returns once Redis has confirmed the subscription.

        ConnectionError when the subscription connection is down (as the channel layer's
        group_add would fail): the socket that needed it is told to come back later.
        """
        self._ensure_reader()
        self.listeners.add(session_id, listener)
        channel = self.channel(session_id)
        try:
            if self._connection is None:
                await asyncio.shield(self._attempt)  # the reader may be connecting right now
            confirmed = self._subscribed.get(channel)
            if confirmed is None:
                await self._send("SUBSCRIBE", channel)
                confirmed = self._subscribed[channel]
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_SECONDS):
                await asyncio.shield(confirmed)
        except BaseException:
            await self.unsubscribe(session_id, listener)
            raise

    async def unsubscribe(self, session_id, listener):
        channel = self.channel(session_id)
        if self.listeners.discard(session_id, listener) and self._subscribed.pop(channel, None) is not None:
            try:
                await self._send("UNSUBSCRIBE", channel)
            except Exception:
                # The connection is failing: its reader subscribes again to what is still listened to.
                log.debug("unsubscribing from %s failed", channel, exc_info=True)

    async def _send(self, command, *channels):
        """Send SUBSCRIBE or UNSUBSCRIBE, noting the confirmations to expect."""
        connection = self._connection
        if connection is None or not connection.is_connected:
            raise ConnectionError("the version notices' Redis subscription is down")
        for channel in channels:
            confirmed = None
            if command == "SUBSCRIBE":
                confirmed = self._subscribed[channel] = self._loop.create_future()
            self._replies[channel].append(confirmed)
        # Shielded: redis-py drops the connection when a send is cancelled half-way. No
        # health check either: its PING's answer would be read here, beside the reader.
        await asyncio.shield(connection.send_command(command, *channels, check_health=False))

    async def announce(self, session_id, version, html=None, published_at=None, served_here=False):
        """Publish a stored version; with served_here, this process's listeners have it already.

        A failure is logged, not raised: the database holds the version, and sockets catch up
        on their next get-html or reconnect.
        """
        origin = self.origin if served_here else None
        notice = encode_notice(version, published_at, carried_html(html), origin)
        try:
            await self._client().publish(self.channel(session_id), notice)
        except Exception:
            log.exception("version %s of session %s not announced", version, session_id)

    def _ensure_reader(self):
        loop = asyncio.get_running_loop()
        if self._reader is not None and self._loop is loop and not self._reader.done():
            return
        if self._loop is not loop:
            self.listeners.keep_only(loop)  # another loop's hubs (a test's, long closed) are gone
        self._loop = loop
        self._connection = None
        self._subscribed, self._replies = {}, defaultdict(deque)
        self._attempt = loop.create_future()
        self._reader = loop.create_task(self._keep_subscription())

    async def _keep_subscription(self):
        """Connect, subscribe to every listened session, read; after a failure, again, then catch up."""
        delay = RETRY_FIRST_SECONDS
        caught_up = True
        while not stopping():
            if self._attempt.done():
                self._attempt = self._loop.create_future()
            connection = None
            try:
                connection = await self._connect()
                self._connection = connection
                self._attempt.set_result(None)
                channels = [self.channel(session_id) for session_id in self.listeners.sessions()]
                if channels:
                    await self._send("SUBSCRIBE", *channels)
                delay = RETRY_FIRST_SECONDS
                if not caught_up:
                    caught_up = True
                    asyncio.ensure_future(self._catch_up(list(self._subscribed.values())))
                await self._read(connection)
            except asyncio.CancelledError:
                raise
            except Exception:
                if stopping():
                    return
                self.failures += 1
                caught_up = False
                log.warning("version notices: Redis subscription lost, subscribing again", exc_info=True)
            finally:
                self._lost(connection)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)

    async def _catch_up(self, confirmations):
        """Once subscribed again, have every hub send what the database holds: what was missed."""
        try:
            await asyncio.gather(*confirmations)
        except Exception:
            return  # lost again: the next connection catches up
        for listener in self.listeners.everyone():
            tell(listener, listener.notices_missed)

    async def _connect(self):
        import redis.asyncio

        pool = redis.asyncio.ConnectionPool.from_url(self.url, socket_timeout=None, socket_keepalive=True)
        connection = await pool.get_connection()
        await connection.connect()
        return connection

    def _lost(self, connection):
        """Forget a failed subscription connection; whoever awaits a confirmation on it is told."""
        if not self._attempt.done():
            self._attempt.set_result(None)
        self._connection = None
        for confirmed in self._subscribed.values():
            if not confirmed.done():
                confirmed.set_exception(ConnectionError("the version notices' Redis subscription failed"))
                confirmed.exception()  # nobody may be waiting: not an unretrieved exception
        self._subscribed, self._replies = {}, defaultdict(deque)
        if connection is not None:
            asyncio.ensure_future(connection.disconnect(nowait=True))

    async def _read(self, connection):
        while True:
            reply = await connection.read_response(timeout=None, disconnect_on_error=True, push_request=True)
            kind, channel = reply[0], reply[1].decode()
            if kind == b"message":
                try:
                    self._heard(channel, reply[2])
                except Exception:
                    # One notice, whatever it holds, never ends the subscription.
                    log.exception("version notice on %s not handled", channel)
            elif kind in (b"subscribe", b"unsubscribe") and self._replies.get(channel):
                confirmed = self._replies[channel].popleft()
                if not self._replies[channel]:
                    del self._replies[channel]
                if confirmed is not None and not confirmed.done():
                    confirmed.set_result(None)

    def _heard(self, channel, data):
        session_id = channel.rsplit(":", 1)[1]
        listeners = self.listeners.of(session_id)
        if not listeners or notice_origin(data) == self.origin.encode():
            return
        try:
            header, html = decode_notice(data)
        except ValueError:
            log.warning("version notice on %s dropped: not signed by this deployment, or malformed", channel)
            return
        for listener in listeners:
            tell(listener, listener.version_heard, header["version"], html, header.get("published_at"))


def make_version_notices():
    """The notices that fit the settings: over Redis with REDIS_URL, else this process's."""
    if settings.REDIS_URL:
        return RedisNotices(settings.REDIS_URL, settings.COLLAB_REDIS_PREFIX)
    return LocalNotices()


version_notices = make_version_notices()
