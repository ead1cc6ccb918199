"""How many WebSocket connections one client address or one token may hold, and how many bytes
an address's sockets may send before they sign in (README "Limits").

Connections are counted per client address and per token. With REDIS_URL the counts are
shared by every server process through one Redis sorted set per address or token, scored by
an expiry time each process refreshes while it lives (as sessions_app/presence.py does), so
the sockets of a crashed process drop out by themselves. Without Redis each process counts
its own sockets. When Redis does not answer, connections are let in: the limits guard
against abuse and must not turn a Redis outage into an outage of the viewers.

HTTP connections that wait for a request (just opened, still sending its head or body, or
kept alive between requests) are counted too, in each process (`WaitingHttpConnections`):
Twisted accepts them synchronously, before any header could name a forwarded address.

Bytes before sign-in are memory of this process, so each process counts its own: every
frame a socket receives before its sign-in succeeds is counted against its address when the
frame begins, from the length its header declares, and given back when the socket signs in
or closes. A frame that would take an address past COLLAB_MAX_PRE_SIGN_IN_BYTES_PER_ADDRESS is refused
before its payload is buffered (daphne_adaptations.py).
"""

import asyncio
import ipaddress
import logging
import time
from collections import Counter

from django.conf import settings

from .redis_tasks import Refresher, WaitingClient

log = logging.getLogger(__name__)

# A process refreshes its entries every REFRESH seconds; they lapse after TTL.
REFRESH = 20
TTL = 60
# A connection check must never hold a handshake long when Redis is slow or gone.
REDIS_TIMEOUT = 1.0


def client_address(scope):
    """The client's IP address; from X-Forwarded-For only when the peer is a trusted proxy."""
    peer = (scope.get("client") or (None,))[0]
    trusted = settings.COLLAB_TRUSTED_PROXIES
    if peer is None or not trusted or not is_trusted_proxy(peer, trusted):
        return peer
    forwarded = [
        value.decode("latin-1") for name, value in scope.get("headers", ()) if name == b"x-forwarded-for"
    ]
    hops = [hop.strip() for hop in ",".join(forwarded).split(",") if hop.strip()]
    # The rightmost hop a trusted proxy did not add is the client; anything left of it is hearsay.
    for hop in reversed(hops):
        if not is_trusted_proxy(hop, trusted):
            return hop if valid_ip(hop) else peer
    return peer


def is_trusted_proxy(address, trusted):
    """Whether an address is in COLLAB_TRUSTED_PROXIES (addresses or networks)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in trusted)


def valid_ip(value):
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def connection_limit(kind, role=None):
    """The most connections one address or one token of this role may hold; 0 means no limit."""
    if kind == "address":
        return settings.COLLAB_MAX_CONNECTIONS_PER_ADDRESS
    if role == "word":
        return settings.COLLAB_MAX_CONNECTIONS_PER_WORD_TOKEN
    return settings.COLLAB_MAX_CONNECTIONS_PER_TOKEN


class LocalConnections:
    """Connection counts of this server process."""

    def __init__(self):
        self._counts = Counter()

    async def acquire(self, key, member, limit):
        """Count a connection under `key` unless `limit` are already there; whether it was counted."""
        if self._counts[key] >= limit:
            return False
        self._counts[key] += 1
        return True

    async def release(self, key, member):
        """Stop counting a connection."""
        self._counts[key] -= 1
        if self._counts[key] <= 0:
            del self._counts[key]


def members_by_key(pairs):
    """(key, member) pairs as {key: [members, in the order they came]}."""
    grouped = {}
    for key, member in pairs:
        grouped.setdefault(key, []).append(member)
    return grouped


class RedisConnections:
    """Connection counts shared by every process through Redis sorted sets.

    The checks and releases of one event-loop turn go to Redis together, in one transaction,
    and are decided in the order they came: a crowd arriving at once costs a round trip per
    turn rather than one per socket, each waiting for a pooled connection (a thousand sockets
    at once outwaited the pool's timeout, and were let in unchecked).
    """

    def __init__(self, url, prefix):
        self.prefix = prefix
        self._members = {}  # (key, member) of this process's connections
        self._acquiring = []  # (key, member, limit, future) for the next batch
        self._releasing = []  # (key, member, future)
        self._writer = None
        self._client = WaitingClient(
            url, timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
        )
        self._refresher = Refresher(REFRESH, self.refresh, lambda: bool(self._members), "connection counts")

    def redis_key(self, key):
        return f"{self.prefix}:limits:{key}"

    async def acquire(self, key, member, limit):
        """Count a connection under `key` unless `limit` are already there, in any process."""
        future = asyncio.get_running_loop().create_future()
        self._acquiring.append((key, member, limit, future))
        self._write_soon()
        counted = await future
        if counted:
            self._members[(key, member)] = True
            self._refresher.ensure_running()
        return counted

    async def release(self, key, member):
        """Stop counting a connection."""
        self._members.pop((key, member), None)
        future = asyncio.get_running_loop().create_future()
        self._releasing.append((key, member, future))
        self._write_soon()
        await future

    def _write_soon(self):
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_batches())

    async def _write_batches(self):
        await asyncio.sleep(0)  # let the other sockets woken in this turn add theirs
        while self._acquiring or self._releasing:
            acquiring, self._acquiring = self._acquiring, []
            releasing, self._releasing = self._releasing, []
            try:
                refused = await self._write(acquiring, releasing)
            except Exception:
                # Let them in: the limits must not turn a Redis outage into an outage of the viewers.
                log.warning(
                    "connection limits not checked for %d connections: Redis unavailable",
                    len(acquiring),
                    exc_info=True,
                )
                refused = set()
            for key, member, _, future in acquiring:
                if not future.done():
                    future.set_result((key, member) not in refused)
            for *_, future in releasing:
                if not future.done():
                    future.set_result(None)

    async def _write(self, acquiring, releasing):
        """Apply one batch; the (key, member) pairs refused, in arrival order within each key."""
        now = time.time()
        leaving = members_by_key((key, member) for key, member, _ in releasing)
        arriving = members_by_key((key, member) for key, member, _, _ in acquiring)
        async with self._client().pipeline(transaction=True) as pipe:
            for key, members in leaving.items():
                pipe.zrem(self.redis_key(key), *members)
            for key, members in arriving.items():
                redis_key = self.redis_key(key)
                pipe.zremrangebyscore(redis_key, "-inf", now)
                pipe.zadd(redis_key, dict.fromkeys(members, now + TTL))
                pipe.expire(redis_key, TTL * 2)
                pipe.zcard(redis_key)
            results = await pipe.execute()
        totals = iter(results[len(leaving) + 3 :: 4])
        limits = {(key, member): limit for key, member, limit, _ in acquiring}
        refused = set()
        for key, members in arriving.items():
            # The set held `before` others; this batch's members fit in the order they came.
            before = next(totals) - len(members)
            room = max(0, limits[key, members[0]] - before)
            refused.update((key, member) for member in members[room:])
        if refused:
            async with self._client().pipeline(transaction=False) as pipe:
                for key, members in members_by_key(refused).items():
                    pipe.zrem(self.redis_key(key), *members)
                await pipe.execute()
        return refused

    async def refresh(self):
        """Extend this process's entries."""
        expiry = time.time() + TTL
        async with self._client().pipeline(transaction=False) as pipe:
            for key, member in list(self._members):
                pipe.zadd(self.redis_key(key), {member: expiry})
                pipe.expire(self.redis_key(key), TTL * 2)
            await pipe.execute()


class WaitingHttpConnections:
    """This process's HTTP connections that wait for a request, per client address.

    A connection counts from its accept, or the end of its last response, until its next
    request has arrived whole. It is counted under its peer's address, never a trusted
    proxy's: the proxy's own timeouts guard it, and its clients are not known yet.
    """

    def __init__(self):
        self._counts = Counter()

    def address_of(self, peer):
        """The address a connection from `peer` (a Twisted address) is counted under; None: not counted."""
        host = getattr(peer, "host", None)
        if host is None or not settings.COLLAB_MAX_CONNECTIONS_PER_ADDRESS:
            return None
        trusted = settings.COLLAB_TRUSTED_PROXIES
        if trusted and is_trusted_proxy(host, trusted):
            return None
        return host

    def admit(self, address):
        """Count a new connection unless its address already has the limit waiting; whether it may stay."""
        if address is not None and self._counts[address] >= settings.COLLAB_MAX_CONNECTIONS_PER_ADDRESS:
            return False
        self.add(address)
        return True

    def add(self, address):
        """Count a connection that waits again, kept alive after its response."""
        if address is not None:
            self._counts[address] += 1

    def remove(self, address):
        """Stop counting a connection: its request arrived, or it closed."""
        if address is None:
            return
        self._counts[address] -= 1
        if self._counts[address] <= 0:
            del self._counts[address]


waiting_http_connections = WaitingHttpConnections()

_registries = {}


def connections():
    """The connection registry that fits the settings: Redis-backed with REDIS_URL, else this process's."""
    key = (settings.REDIS_URL, settings.COLLAB_REDIS_PREFIX)
    registry = _registries.get(key)
    if registry is None:
        registry = RedisConnections(*key) if settings.REDIS_URL else LocalConnections()
        _registries[key] = registry
    return registry


class ConnectionHolds:
    """The connection counts one socket holds, released together when it goes."""

    def __init__(self, member):
        self.member = member
        self.held = []

    async def take(self, key, limit):
        """Count this socket under `key`; False if `limit` (0 = none) is reached."""
        if not limit:
            return True
        registry = connections()
        if not await registry.acquire(key, self.member, limit):
            return False
        self.held.append((registry, key))
        return True

    async def release_all(self):
        """Give back every count this socket holds."""
        held, self.held = self.held, []
        for registry, key in held:
            await registry.release(key, self.member)


# The ASGI scope extension through which a consumer under daphne finds its SocketBeforeSignIn.
BEFORE_SIGN_IN = "collab.before-sign-in"


class PreSignInBytes:
    """The bytes each client address's sockets have sent before signing in, in this process."""

    def __init__(self):
        self._held = Counter()

    def take(self, address, size, limit):
        """Count `size` more bytes for `address` unless that passes `limit` (0: none); whether it did."""
        if limit and self._held[address] + size > limit:
            return False
        self._held[address] += size
        return True

    def give_back(self, address, size):
        self._held[address] -= size
        if self._held[address] <= 0:
            del self._held[address]


pre_sign_in_bytes = PreSignInBytes()


class SocketBeforeSignIn:
    """What one socket sent before signing in, counted against its address until it signs in or closes."""

    __slots__ = ("address", "held", "done")

    def __init__(self, address):
        self.address = address
        self.held = 0
        self.done = address is None  # without an address there is nothing to count against

    def count(self, size):
        """Count a frame of `size` bytes; False when it would take the address past its budget."""
        if self.done:
            return True
        if not pre_sign_in_bytes.take(self.address, size, settings.COLLAB_MAX_PRE_SIGN_IN_BYTES_PER_ADDRESS):
            return False
        self.held += size
        return True

    def finish(self):
        """The socket signed in or closed: give its bytes back and count no more."""
        if not self.done:
            self.done = True
            pre_sign_in_bytes.give_back(self.address, self.held)
            self.held = 0
