"""This process's side of each session: its current document framed once, and its sockets fed by one member.

A new version reaches a process once, however many of the session's viewers it serves: the
session's hub hears its notice (version_notices.py), takes the HTML the notice carried or
reads it from the database once, encodes each kind of frame once (full get-html per
protocol, and the html-patch from the version before) and writes the same framed bytes to
every Subscriber (delivery.py), instead of waking one consumer per viewer. The hub is also
the session's one channel-layer member here, for its other messages (presence, its end, a
revoked token). Consumers join and leave their session's hub; the hub subscribes to the
notices and joins the group, and leaves both with the session's last socket here.

A hub also closes its sockets whose token lapses: one timer, set for the earliest token
expiry among its subscribers, refuses each expired one (E1003, close code 4401) when it
comes, whether or not the socket sends anything.
"""

import asyncio
import contextlib
import logging
import time

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from .access import token_standings
from .delivery import OutgoingFrame
from .html_patch import checksum, diff_blocks, split_blocks, utf16_lengths
from .models import CollabSession, Revision
from .protocol import html_message, patch_message, presence_message, published_at_text
from .redis_tasks import RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS, cancellable, stopping
from .services import session_group
from .version_notices import version_notices

log = logging.getLogger(__name__)

# channels' layers drop a group member after `group_expiry` (a day by default): renew well before.
RENEW_MEMBERSHIP_SECONDS = 3600


# A patch bigger than this share of the full frame is not worth it: the full document goes instead.
PATCH_MAX_SHARE = 0.5


def build_patch(session_id, version, old_blocks, new_blocks, new_html, full_frame_size, published_at=None):
    """The html-patch frame from old_blocks to new_blocks, or None when sending it saves too little."""
    ops = diff_blocks(old_blocks, new_blocks)
    frame = patch_message(session_id, version, ops, checksum(new_html), published_at)
    return frame if len(frame) <= full_frame_size * PATCH_MAX_SHARE else None


def finished_result(future):
    """The result of a future that has finished well, else None."""
    if future is None or not future.done() or future.cancelled() or future.exception() is not None:
        return None
    return future.result()


def stored_document(session_id):
    """(version, html, published_at) of a session as stored, or None if it does not exist."""
    row = CollabSession.objects.filter(pk=session_id).values_list("version", "html", "updated_at").first()
    if row is None:
        return None
    version, html, updated_at = row
    return version, html, published_at_text(updated_at) if updated_at else None


def revision_html(session_id, version):
    """The stored HTML of one version of a session, or None if it was pruned."""
    return (
        Revision.objects.filter(session_id=session_id, version=version).values_list("html", flat=True).first()
    )


class DocumentFrames:
    """Latest (version, frames) per session, so a broadcast to many viewers costs one read and one encode.

    `blocks`, for clients granted html-patch, adds the top-level blocks' lengths in UTF-16
    code units, so the client can apply the next patch without splitting HTML itself. The
    blocks are split once per version, beside the event loop, and kept for the next patch.

    Bounded by COLLAB_DOCUMENT_CACHE_BYTES (the HTML and its encoded frames) and MAX_SESSIONS;
    the least recently used sessions go first, and are read again when next needed.
    """

    MAX_SESSIONS = 256

    def __init__(self):
        self._latest = {}
        self._bytes = 0
        self._reads = {}
        self.reads = 0  # database reads of a current document, for tests and benchmarks
        self.encodes = 0  # frames encoded (full or patch)

    async def frame(self, session_id, protocol, at_least=0, fresh=False, blocks=False):
        """(version, OutgoingFrame) of the newest stored version, reading the database only when needed."""
        entry = self._latest.get(session_id)
        if fresh or entry is None or entry["version"] < at_least:
            entry = await self._read(session_id)
            if entry is None:
                return None
        elif next(reversed(self._latest)) != session_id:
            self._latest[session_id] = self._latest.pop(session_id)  # the most recently used goes last
        key = (protocol, blocks)
        frames = entry["frames"]
        if key not in frames:
            lengths = utf16_lengths(await self._blocks(session_id, entry)) if blocks else None
            if key not in frames:  # unless another caller encoded it meanwhile
                text = html_message(
                    session_id, entry["version"], entry["html"], protocol, lengths, entry["published_at"]
                )
                # Framed once too: every socket that joins later is written the same bytes.
                frames[key] = OutgoingFrame(text)
                self.encodes += 1
                if self._latest.get(session_id) is entry:
                    self._count(session_id, entry, 2 * len(text))  # the text and its framed bytes
        return entry["version"], frames[key]

    async def _blocks(self, session_id, entry):
        """The top-level blocks of an entry's HTML, split once (a long document takes a while)."""
        if entry["blocks"] is None:
            entry["blocks"] = asyncio.ensure_future(self._split(session_id, entry))
        return await asyncio.shield(entry["blocks"])

    async def _split(self, session_id, entry):
        blocks = await asyncio.to_thread(split_blocks, entry["html"])
        if self._latest.get(session_id) is entry:
            self._count(session_id, entry, len(entry["html"]))
        return blocks

    async def patch(self, session_id, version):
        """The html-patch frame from version-1 to `version` (computed once), or None if there is none."""
        entry = self._latest.get(session_id)
        if entry is None or entry["version"] != version or version < 2:
            return None
        if entry["patch"] is None:
            entry["patch"] = asyncio.ensure_future(self._build_patch(session_id, entry))
        return await asyncio.shield(entry["patch"])

    async def _build_patch(self, session_id, entry):
        try:
            return await self._diff_versions(session_id, entry)
        except Exception:
            # A patch is an optimisation: clients get the full document instead.
            log.exception("html-patch of session %s version %s failed", session_id, entry["version"])
            return None

    async def _diff_versions(self, session_id, entry):
        version = entry["version"]
        # Versions of more blocks than this are not diffed: the full document goes.
        max_blocks = settings.COLLAB_PATCH_MAX_BLOCKS
        blocks = await self._blocks(session_id, entry)
        if len(blocks) > max_blocks:
            return None
        previous = entry["previous"]
        if previous is None:
            html = await database_sync_to_async(revision_html)(session_id, version - 1)
            if html is None:
                return None
            previous = await asyncio.to_thread(split_blocks, html)
        if len(previous) > max_blocks:
            return None
        _, full = await self.frame(session_id, 2, at_least=version, blocks=True)
        # The diff's work is bounded (html_patch.py), and it runs beside the event loop.
        frame = await asyncio.to_thread(
            build_patch,
            session_id,
            version,
            previous,
            blocks,
            entry["html"],
            len(full.text),
            entry["published_at"],
        )
        if self._latest.get(session_id) is entry:
            self._count(session_id, entry, (len(frame) if frame else 0) - entry["previous_size"])
        entry["previous"] = None  # the patch is built; the older blocks are no longer needed
        entry["previous_size"] = 0
        self.encodes += 1
        return frame

    def hold(self, session_id, version, html, published_at):
        """Keep a version this process has just stored, so its hub need not read it back."""
        entry = self._latest.get(session_id)
        if entry is None or entry["version"] < version:
            self._keep(session_id, entry, version, html, published_at)

    async def _read(self, session_id):
        # Viewers woken by the same broadcast share one database read.
        pending = self._reads.get(session_id)
        if pending is None:
            self.reads += 1
            pending = asyncio.ensure_future(database_sync_to_async(stored_document)(session_id))
            self._reads[session_id] = pending
            pending.add_done_callback(lambda _: self._reads.pop(session_id, None))
        row = await asyncio.shield(pending)
        if row is None:
            return None
        version, html, published_at = row
        entry = self._latest.get(session_id)
        if entry is None or entry["version"] < version:
            entry = self._keep(session_id, entry, version, html, published_at)
        return entry

    def _keep(self, session_id, entry, version, html, published_at):
        """Make (version, html) the session's cached document in place of `entry`, the one before."""
        # The blocks of the version before, split when this process has html-patch clients
        # for the session, spare a database read and a split for the patch.
        previous = None
        if entry is not None and entry["version"] == version - 1:
            previous = finished_result(entry["blocks"])
        previous_size = len(entry["html"]) if previous is not None else 0
        self.forget(session_id)
        entry = {
            "version": version,
            "html": html,
            "published_at": published_at,  # PublishedAt of version 2 frames, or None before any
            "frames": {},
            "blocks": None,  # a future of the HTML's top-level blocks, once a client needs them
            "previous": previous,
            "previous_size": previous_size,
            "patch": None,
            "bytes": 0,
        }
        self._latest[session_id] = entry
        self._count(session_id, entry, len(html) + previous_size)
        return entry

    def _count(self, session_id, entry, size):
        """Add `size` to an entry's bytes, then drop the least recently used others beyond the bounds."""
        entry["bytes"] += size
        self._bytes += size
        budget = settings.COLLAB_DOCUMENT_CACHE_BYTES
        while len(self._latest) > 1 and (self._bytes > budget or len(self._latest) > self.MAX_SESSIONS):
            oldest = next(iter(self._latest))
            if oldest == session_id:
                break
            self.forget(oldest)

    def forget(self, session_id):
        """Drop a session's cached document (it ended, or room is needed)."""
        entry = self._latest.pop(session_id, None)
        if entry is not None:
            self._bytes -= entry["bytes"]


document_frames = DocumentFrames()


class SessionHub:
    """The subscribers of one session in this process, fed by one channel-layer member."""

    def __init__(self, session_id, layer):
        self.session_id = session_id
        self.layer = layer
        self.group = session_group(session_id)
        self.loop = asyncio.get_running_loop()
        self.subscribers = {}  # subscriber -> None, in the order they joined
        self.channel = None
        self.counts = None  # the presence counts last heard
        self._presence = (None, None)  # the last counts sent, and their frame
        self.tasks = []
        self.stopped = False
        self.expiry_timer = None  # fires at `expiry_due`, the earliest token expiry of the subscribers
        self.expiry_due = None
        self.started = asyncio.ensure_future(self._start())

    async def _start(self):
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(self.group, self.channel)
        await version_notices.subscribe(self.session_id, self)
        if not self.stopped:
            self.tasks = [asyncio.ensure_future(self._listen()), asyncio.ensure_future(self._renew())]

    def stop(self):
        """Stop listening at once (a pending receive holds the layer's lock), then leave the group."""
        self.stopped = True
        for task in self.tasks:
            task.cancel()
        if self.expiry_timer is not None:
            self.expiry_timer.cancel()
        asyncio.ensure_future(self._leave_group())

    async def _leave_group(self):
        with contextlib.suppress(Exception):
            await self.started
        with contextlib.suppress(Exception):
            await version_notices.unsubscribe(self.session_id, self)
        with contextlib.suppress(Exception):
            await self.layer.group_discard(self.group, self.channel)

    async def _listen(self):
        while not stopping():
            try:
                message = await cancellable(self.layer.receive(self.channel))
            except Exception:
                if stopping():
                    return
                log.warning("session %s: channel layer failed, rejoining", self.session_id, exc_info=True)
                await self._rejoin()
                continue
            try:
                await self.handle(message)
            except Exception:
                log.exception("session %s: %s not delivered", self.session_id, message.get("type"))

    async def _rejoin(self):
        """Join the group again (a restarted Redis forgot it), then send what was missed meanwhile."""
        delay = RETRY_FIRST_SECONDS
        while True:
            await asyncio.sleep(delay)
            try:
                await self.layer.group_add(self.group, self.channel)
                break
            except Exception:
                if stopping():
                    return
                delay = min(delay * 2, RETRY_MAX_SECONDS)
        try:
            await self.deliver_html(0, catching_up=True)
        except Exception:
            log.warning("session %s: catching up after rejoining failed", self.session_id, exc_info=True)

    async def _renew(self):
        while not stopping():
            await asyncio.sleep(RENEW_MEMBERSHIP_SECONDS)
            try:
                await self.layer.group_add(self.group, self.channel)
            except Exception:
                if stopping():
                    return
                # The listener notices a failed layer itself.

    async def handle(self, message):
        """Deliver one group message; the types are those services.py broadcasts."""
        kind = message["type"]
        if kind == "session.presence":
            await self.deliver_presence((message["viewers"], message["publishers"]))
        elif kind == "session.ended":
            document_frames.forget(self.session_id)
            for subscriber in list(self.subscribers):
                await subscriber.session_ended(message["reason"])
        elif kind == "token.revoked":
            for subscriber in list(self.subscribers):
                await subscriber.token_revoked(message["token_id"])
        else:
            log.warning("session %s: group message %r ignored", self.session_id, kind)

    async def version_heard(self, version, html=None, published_at=None):
        """A version notice (version_notices.py): keep the HTML if it came along, then deliver."""
        if html is not None:
            document_frames.hold(self.session_id, version, html, published_at)
        await self.deliver_html(version)

    async def notices_missed(self):
        """The version notices' subscription was lost for a while: send what the database holds."""
        await self.deliver_html(0, catching_up=True)

    async def current_document(self, subscriber, at_least=0, fresh=False):
        """(version, frame) of the newest stored document as this subscriber takes it, or None if gone."""
        return await document_frames.frame(
            self.session_id,
            subscriber.protocol,
            at_least=at_least,
            fresh=fresh,
            blocks=subscriber.takes_patches,
        )

    async def deliver_html(self, version, subscribers=None, catching_up=False):
        """Send the newest document (at least `version`) to the subscribers that lack it, encoded once.

        Catching up (broadcasts may have been lost), the database is read afresh and subscribers
        get it only if it is newer than any version they have had or heard of.
        """
        waiting = []
        now = time.time()
        for subscriber in subscribers or list(self.subscribers):
            if not subscriber.listening:
                subscriber.missed(version)
            elif subscriber.token_lapsed(now):
                continue  # the expiry timer is about to close it
            elif subscriber.lacks(version) or catching_up:
                waiting.append(subscriber)
        if not waiting:
            return
        frames = {}  # (protocol, patches) -> (version, frame): one encoding per kind of socket
        for subscriber in waiting:
            key = (subscriber.protocol, subscriber.takes_patches)
            if key not in frames:
                found = await self.current_document(
                    subscriber, at_least=version, fresh=catching_up and not frames
                )
                if found is None:
                    return
                frames[key] = found
        patches = {}
        for subscriber in waiting:
            current, frame = frames[subscriber.protocol, subscriber.takes_patches]
            if catching_up and current <= subscriber.version_heard:
                continue
            # A subscriber granted html-patch that holds the version before gets only the changes.
            if subscriber.patches_to(current):
                if current not in patches:
                    patches[current] = await self._patch(current)
                if patches[current] is not None:
                    await subscriber.send_document(current, patches[current], full=frame)
                    continue
            await subscriber.send_document(current, frame)

    async def _patch(self, version):
        """The html-patch from the version before to `version`, or None when there is none."""
        text = await document_frames.patch(self.session_id, version)
        return OutgoingFrame(text) if text is not None else None

    async def deliver_presence(self, counts, subscribers=None):
        """Tell version 2 subscribers the session's counts, if they differ from what each was told."""
        if subscribers is None:
            self.counts = counts
        for subscriber in subscribers or list(self.subscribers):
            if subscriber.takes_presence(counts):
                await subscriber.send_presence(self.presence_frame(counts), counts)

    def presence_frame(self, counts):
        """The presence frame of `counts`, encoded once for every socket that joins while they hold."""
        if self._presence[0] != counts:
            self._presence = (counts, OutgoingFrame(presence_message(self.session_id, *counts)))
        return self._presence[1]

    def watch_expiry(self, expires):
        """Make sure the expiry timer fires by `expires` (a POSIX timestamp; None: never)."""
        if expires is None or self.stopped or (self.expiry_due is not None and self.expiry_due <= expires):
            return
        if self.expiry_timer is not None:
            self.expiry_timer.cancel()
        self.expiry_due = expires
        delay = max(0.0, expires - time.time())
        self.expiry_timer = self.loop.call_later(delay, self._expiry_due)

    def _expiry_due(self):
        self.expiry_timer = self.expiry_due = None
        asyncio.ensure_future(self.refuse_lapsed_tokens())

    async def refuse_lapsed_tokens(self):
        """Refuse the subscribers whose token expired (E1003), then wait for the next expiry."""
        now = time.time()
        later = []
        for subscriber in list(self.subscribers):
            if subscriber.token_lapsed(now):
                await subscriber.token_refused("E1003")
            elif subscriber.token_expires is not None:
                later.append(subscriber.token_expires)
        self.watch_expiry(min(later, default=None))

    async def apply_token_standings(self, standings):
        """Refuse the subscribers whose token may no longer act, as the database says; take up new expiries.

        `standings` maps token ids to (refusal or None, expiry), as access.token_standings gives them.
        """
        for subscriber in list(self.subscribers):
            refusal, expires = standings.get(subscriber.token_id, (None, subscriber.token_expires))
            if refusal is not None:
                await subscriber.token_refused(refusal)
            else:
                subscriber.token_expires = expires
        if self.expiry_timer is not None:
            self.expiry_timer.cancel()
        self.expiry_timer = self.expiry_due = None
        await self.refuse_lapsed_tokens()

    async def start_listening(self, subscriber):
        """A greeted subscriber starts listening: send what it missed while it joined."""
        missed = subscriber.start_listening()
        if missed is not None:
            await self.deliver_html(missed, [subscriber])
        if self.counts is not None:
            await self.deliver_presence(self.counts, [subscriber])


class SessionHubs:
    """This process's hubs, one per session with sockets here."""

    def __init__(self):
        self._hubs = {}
        self._unconfirmed = []  # subscribers whose token is read again once they are in their hub
        self._confirming = None

    async def join(self, subscriber):
        """Add a subscriber to its session's hub, starting the hub (and its group membership) if needed."""
        session_id = subscriber.session_id
        hub = self._hubs.get(session_id)
        if hub is None or hub.loop is not asyncio.get_running_loop():
            hub = self._hubs[session_id] = SessionHub(session_id, get_channel_layer())
        hub.subscribers[subscriber] = None
        hub.watch_expiry(subscriber.token_expires)
        try:
            await asyncio.shield(hub.started)
        except Exception:
            self.leave(subscriber, hub)
            raise
        return hub

    def confirm(self, subscriber):
        """Read a new subscriber's token again, with those of every socket that joined meanwhile.

        A token revoked after the sign-in read it, but before the subscriber was in its hub, was
        announced to a hub without it, or to none in this process: one query for the batch, once
        the subscriber hears every later announcement, refuses it (E1003).
        """
        self._unconfirmed.append(subscriber)
        if self._confirming is None or self._confirming.done():
            self._confirming = asyncio.ensure_future(self._confirm_batches())

    async def _confirm_batches(self):
        await asyncio.sleep(0)  # let the other sockets signing in this turn add theirs
        while self._unconfirmed:
            batch, self._unconfirmed = self._unconfirmed, []
            try:
                standings = await database_sync_to_async(token_standings)({s.token_id for s in batch})
            except Exception:
                log.warning(
                    "tokens of %d new sockets not read again; the sweep will", len(batch), exc_info=True
                )
                continue
            for subscriber in batch:
                # A session that ended meanwhile is the ended check's (sweeper.py): its sockets
                # are told the end in the session's own words.
                if standings[subscriber.token_id][0] == "E1003":
                    await subscriber.token_refused("E1003")

    async def deliver_here(self, session_id, version):
        """Send a version this process has just stored to its own sockets, before other processes hear of it.

        This process skips its own notice of the version (version_notices.py).
        """
        hub = self._hubs.get(session_id)
        if hub is None or hub.loop is not asyncio.get_running_loop():
            return
        try:
            await hub.deliver_html(version)
        except Exception:
            log.exception("session %s: version %s not delivered here", session_id, version)

    def leave(self, subscriber, hub):
        """Remove a subscriber; the hub leaves the group with the session's last socket here."""
        hub.subscribers.pop(subscriber, None)
        if not hub.subscribers and self._hubs.get(hub.session_id) is hub:
            del self._hubs[hub.session_id]
            hub.stop()

    def local_sessions(self):
        """The ids of sessions with sockets in this process."""
        return list(self._hubs)

    def local_token_ids(self):
        """The ids of the tokens this event loop's sockets signed in with."""
        return {subscriber.token_id for hub in self._running_here() for subscriber in hub.subscribers}

    async def apply_token_standings(self, standings):
        """Refuse this event loop's sockets whose token may no longer act (access.token_standings)."""
        for hub in self._running_here():
            await hub.apply_token_standings(standings)

    def _running_here(self):
        # Hubs of another event loop (a test's, long closed) are left to theirs.
        loop = asyncio.get_running_loop()
        return [hub for hub in self._hubs.values() if hub.loop is loop]

    async def end_session_here(self, session_id, reason):
        """Close this process's sockets of a session that ended, as its broadcast would have."""
        hub = self._hubs.get(session_id)
        if hub is not None:
            await hub.handle({"type": "session.ended", "reason": reason})


hubs = SessionHubs()
