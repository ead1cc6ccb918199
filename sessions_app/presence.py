"""Who is connected to each session, per role, counted across every server process.

With REDIS_URL each process keeps its sockets in one sorted set per session and role,
scored by an expiry time it refreshes while it lives, so a crashed process's sockets
drop out of the counts by themselves. Without Redis there is one process to count.
"""

import asyncio
import logging
import time
from collections import Counter, defaultdict

from django.conf import settings

from .redis_tasks import Refresher, WaitingClient

log = logging.getLogger(__name__)

# A process refreshes its entries every REFRESH seconds; they lapse after TTL, so a dead
# process's sockets leave the counts within TTL + REFRESH seconds.
REFRESH = 2
TTL = 6


class LocalPresence:
    """Connection counts of this server process (in-memory channel layer)."""

    def __init__(self):
        self._counts = defaultdict(Counter)

    async def join(self, session_id, role, channel_name):
        """Count a socket that joined a session."""
        self._counts[session_id][role] += 1

    async def leave(self, session_id, role, channel_name):
        """Stop counting a socket that left a session."""
        counts = self._counts.get(session_id)
        if counts is None:
            return
        counts[role] -= 1
        if not +counts:
            del self._counts[session_id]

    async def counts(self, session_id):
        """(viewers, publishers) connected to a session."""
        return self.counts_sync(session_id)

    def counts_sync(self, session_id):
        """(viewers, publishers), for synchronous callers such as the admin."""
        counts = self._counts.get(session_id, Counter())
        return counts["client"], counts["word"]


class RedisPresence:
    """Connection counts shared by all processes through Redis sorted sets."""

    def __init__(self, url, prefix):
        self.url = url
        self.prefix = prefix
        self._members = {}  # channel name -> (session id, role), this process's sockets
        # A crowd joining at once waits for one of a few connections instead of failing.
        self._client = WaitingClient(url, timeout=10)
        self._refresher = Refresher(
            REFRESH, self.refresh_and_announce, lambda: bool(self._members), "presence"
        )
        # Joins and leaves not written yet, and the write that will carry them: a crowd of
        # sockets arriving together costs one round trip, not one each.
        self._joining = {}
        self._leaving = {}
        self._write = None
        self._counting = {}  # session id -> counts being read, shared by concurrent callers

    def key(self, session_id, role):
        return f"{self.prefix}:presence:{session_id}:{role}"

    async def join(self, session_id, role, channel_name):
        """Count a socket that joined a session."""
        self._members[channel_name] = (session_id, role)
        self._leaving.pop(channel_name, None)
        self._joining[channel_name] = (session_id, role)
        await self._written()
        self._refresher.ensure_running()

    async def leave(self, session_id, role, channel_name):
        """Stop counting a socket that left a session."""
        self._members.pop(channel_name, None)
        self._joining.pop(channel_name, None)
        self._leaving[channel_name] = (session_id, role)
        await self._written()

    async def _written(self):
        """Wait until the pending joins and leaves are in Redis."""
        if self._write is None:
            self._write = asyncio.ensure_future(self._write_pending())
        await asyncio.shield(self._write)

    async def _write_pending(self):
        await asyncio.sleep(0)  # let the other sockets woken in this turn add theirs
        self._write = None
        joining, self._joining = self._joining, {}
        leaving, self._leaving = self._leaving, {}
        expiry = time.time() + TTL
        async with self._client().pipeline(transaction=False) as pipe:
            for (session_id, role), names in group_by_key(joining).items():
                pipe.zadd(self.key(session_id, role), dict.fromkeys(names, expiry))
            for (session_id, role), names in group_by_key(leaving).items():
                pipe.zrem(self.key(session_id, role), *names)
            await pipe.execute()

    async def counts(self, session_id):
        """(viewers, publishers) connected to a session, in every process."""
        pending = self._counting.get(session_id)
        if pending is None:
            pending = asyncio.ensure_future(self._read_counts(session_id))
            self._counting[session_id] = pending
            pending.add_done_callback(lambda _: self._counting.pop(session_id, None))
        return await asyncio.shield(pending)

    async def _read_counts(self, session_id):
        now = time.time()
        async with self._client().pipeline(transaction=False) as pipe:
            pipe.zcount(self.key(session_id, "client"), now, "+inf")
            pipe.zcount(self.key(session_id, "word"), now, "+inf")
            viewers, publishers = await pipe.execute()
        return viewers, publishers

    def counts_sync(self, session_id):
        """(viewers, publishers), for synchronous callers such as the admin and the API."""
        import redis

        now = time.time()
        with redis.Redis.from_url(self.url) as client, client.pipeline(transaction=False) as pipe:
            pipe.zcount(self.key(session_id, "client"), now, "+inf")
            pipe.zcount(self.key(session_id, "word"), now, "+inf")
            viewers, publishers = pipe.execute()
        return viewers, publishers

    async def refresh_and_announce(self):
        """Refresh, then announce counts that changed with nobody joining or leaving here."""
        for session_id, counts in (await self.refresh()).items():
            announcer.counted(session_id, counts)

    async def refresh(self):
        """Extend this process's entries, drop lapsed ones; the counts of its sessions. One round trip."""
        now = time.time()
        members = defaultdict(dict)
        for channel_name, (session_id, role) in list(self._members.items()):
            members[session_id, role][channel_name] = now + TTL
        sessions = sorted({session_id for session_id, _ in members})
        async with self._client().pipeline(transaction=False) as pipe:
            for (session_id, role), entries in members.items():
                key = self.key(session_id, role)
                pipe.zadd(key, entries)
                pipe.zremrangebyscore(key, "-inf", now)
                pipe.expire(key, TTL * 2)
            for session_id in sessions:
                pipe.zcount(self.key(session_id, "client"), now, "+inf")
                pipe.zcount(self.key(session_id, "word"), now, "+inf")
            results = await pipe.execute()
        counted = results[3 * len(members) :]
        return {session_id: tuple(counted[2 * n : 2 * n + 2]) for n, session_id in enumerate(sessions)}


def group_by_key(members):
    """{channel name: (session id, role)} as {(session id, role): [channel names]}."""
    grouped = defaultdict(list)
    for channel_name, key in members.items():
        grouped[key].append(channel_name)
    return grouped


def make_presence():
    """The presence registry that fits the channel layer in use."""
    if settings.REDIS_URL:
        return RedisPresence(settings.REDIS_URL, settings.COLLAB_REDIS_PREFIX)
    return LocalPresence()


presence = make_presence()


class PresenceAnnouncer:
    """Tells a session's sockets the new counts after joins and leaves, at most a few times a second.

    Counts that change with nobody joining or leaving here (another process died and its
    entries lapsed) are noticed by the refresh and announced through `counted`.
    """

    DELAY = 0.25
    # A crowd's counts change with every arrival, and each announcement is a frame to every
    # socket: past CROWD viewers the announcements come that much less often, at most every
    # MAX_DELAY seconds (one second at 1,000 viewers).
    CROWD = 250
    MAX_DELAY = 2.0

    def __init__(self):
        self._pending = set()
        self._last = {}  # session id -> (channel layer, group, counts last announced)

    def changed(self, session_id, channel_layer, group):
        """Note a join or leave; one announcement covers every change within DELAY."""
        if session_id in self._pending:
            return
        self._pending.add(session_id)
        asyncio.get_running_loop().create_task(self._announce(session_id, channel_layer, group))

    def delay(self, session_id):
        """Seconds an announcement waits for more changes: longer, the more viewers were last announced."""
        last = self._last.get(session_id)
        viewers = last[2][0] if last is not None else 0
        return min(self.MAX_DELAY, self.DELAY * max(1.0, viewers / self.CROWD))

    async def _announce(self, session_id, channel_layer, group):
        try:
            await asyncio.sleep(self.delay(session_id))
        finally:
            self._pending.discard(session_id)
        try:
            counts = await presence.counts(session_id)
            await self._send(session_id, channel_layer, group, counts)
        except Exception:
            # Counts are a courtesy: the next join or leave announces again.
            log.warning("presence announcement for session %s failed", session_id, exc_info=True)

    def counted(self, session_id, counts):
        """Counts seen by the refresh: announce them if they differ from the last announced."""
        last = self._last.get(session_id)
        if last is None or last[2] == counts or session_id in self._pending:
            return
        channel_layer, group, _ = last
        asyncio.get_running_loop().create_task(self._send(session_id, channel_layer, group, counts))

    async def _send(self, session_id, channel_layer, group, counts):
        if len(self._last) >= 10000 and session_id not in self._last:
            self._last.clear()
        self._last[session_id] = (channel_layer, group, counts)
        message = {"type": "session.presence", "viewers": counts[0], "publishers": counts[1]}
        try:
            await channel_layer.group_send(group, message)
        except Exception:
            # Counts are a courtesy: the next change announces again.
            log.warning("presence announcement for session %s failed", session_id, exc_info=True)


announcer = PresenceAnnouncer()
