"""One channel-layer member per process and session, writing each broadcast to the local sockets.

A broadcast reaches a process once, however many of the session's viewers it serves: the
session's hub reads and encodes the document once (documents.py) and writes the same
framed bytes to every local socket (collab/transport.py's DirectSocket), instead of waking
one consumer per viewer. Consumers join and leave their session's hub; the hub joins and
leaves the channel-layer group.
"""

import asyncio
import contextlib
import json
import logging

from channels.consumer import get_handler_name
from channels.layers import get_channel_layer

from collab.transport import OutgoingFrame

from .cancellation import cancellable, stopping
from .documents import documents
from .services import session_group

log = logging.getLogger(__name__)

# channels' layers drop a group member after `group_expiry` (a day by default): renew well before.
RENEW_MEMBERSHIP_SECONDS = 3600
# After the channel layer fails (Redis restarted), rejoining is retried this often, up to the cap.
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 5.0


def presence_text(session_id, counts):
    """The version 2 presence message for a session's counts, as JSON text."""
    return json.dumps(
        {
            "Origin": "server",
            "SessionId": session_id,
            "Action": "presence",
            "Viewers": counts[0],
            "Publishers": counts[1],
            "Success": True,
        }
    )


class SessionHub:
    """The sockets of one session in this process, fed by one channel-layer member."""

    def __init__(self, session_id, layer):
        self.session_id = session_id
        self.layer = layer
        self.group = session_group(session_id)
        self.loop = asyncio.get_running_loop()
        self.members = {}  # consumer -> None, in the order they joined
        self.channel = None
        self.counts = None  # the presence counts last heard
        self.tasks = []
        self.stopped = False
        self.started = asyncio.ensure_future(self._start())

    async def _start(self):
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(self.group, self.channel)
        if not self.stopped:
            self.tasks = [asyncio.ensure_future(self._listen()), asyncio.ensure_future(self._renew())]

    def stop(self):
        """Stop listening at once (a pending receive holds the layer's lock), then leave the group."""
        self.stopped = True
        for task in self.tasks:
            task.cancel()
        asyncio.ensure_future(self._leave_group())

    async def _leave_group(self):
        with contextlib.suppress(Exception):
            await self.started
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
        """Deliver a group message: documents and counts here, anything else by each socket's handler."""
        kind = message["type"]
        if kind == "session.html":
            await self.deliver_html(message["version"])
        elif kind == "session.presence":
            await self.deliver_presence((message["viewers"], message["publishers"]))
        else:
            if kind == "session.ended":
                documents.forget(self.session_id)
            for member in list(self.members):
                await member.handle_group_message(get_handler_name(message), message)

    async def deliver_html(self, version, members=None, catching_up=False):
        """Send the newest document (at least `version`) to the sockets that lack it, encoded once.

        Catching up (broadcasts may have been lost), the database is read afresh and sockets get
        it only if it is newer than any version they have had or heard of.
        """
        waiting = []
        for member in members or list(self.members):
            if not member.listening:
                member.missed_version = max(member.missed_version, version)
            elif member.sent_version < version or catching_up:
                waiting.append(member)
        if not waiting:
            return
        frames = {}  # (protocol, patches) -> (version, frame): one encoding per kind of socket
        for member in waiting:
            key = (member.protocol, member.takes_patches)
            if key not in frames:
                found = await documents.frame(
                    self.session_id, key[0], at_least=version, fresh=catching_up and not frames, blocks=key[1]
                )
                if found is None:
                    return
                frames[key] = (found[0], OutgoingFrame(found[1]))
        patches = {}
        for member in waiting:
            current, frame = frames[member.protocol, member.takes_patches]
            if catching_up and current <= member.version_heard:
                continue
            # A socket granted html-patch that holds the version before gets only the changes.
            if member.takes_patches and member.sent_version == current - 1:
                if current not in patches:
                    patches[current] = await self._patch(current)
                if patches[current] is not None:
                    await member.push_document(current, patches[current], full=frame)
                    continue
            await member.push_document(current, frame)

    async def _patch(self, version):
        """The html-patch from the version before to `version`, or None when there is none."""
        text = await documents.patch(self.session_id, version)
        return OutgoingFrame(text) if text is not None else None

    async def deliver_presence(self, counts, members=None):
        """Tell version 2 sockets the session's counts, if they differ from what each was told."""
        if members is None:
            self.counts = counts
        frame = None
        for member in members or list(self.members):
            if not member.listening or member.protocol < 2 or member.sent_presence == counts:
                continue
            if frame is None:
                frame = OutgoingFrame(presence_text(self.session_id, counts))
            await member.push_frame(frame, counts)

    async def catch_up(self, member):
        """A socket starts listening: send what it missed while it joined."""
        member.listening = True
        if member.missed_version > member.sent_version:
            await self.deliver_html(member.missed_version, [member])
        if self.counts is not None:
            await self.deliver_presence(self.counts, [member])


class SessionHubs:
    """This process's hubs, one per session with sockets here."""

    def __init__(self):
        self._hubs = {}

    async def join(self, member):
        """Add a socket to its session's hub, starting the hub (and its group membership) if needed."""
        hub = self._hubs.get(member.session_id)
        if hub is None or hub.loop is not asyncio.get_running_loop():
            hub = self._hubs[member.session_id] = SessionHub(member.session_id, get_channel_layer())
        hub.members[member] = None
        try:
            await asyncio.shield(hub.started)
        except Exception:
            self.leave(member, hub)
            raise
        return hub

    def leave(self, member, hub):
        """Remove a socket; the hub leaves the group with the session's last socket here."""
        hub.members.pop(member, None)
        if not hub.members and self._hubs.get(hub.session_id) is hub:
            del self._hubs[hub.session_id]
            hub.stop()

    def local_sessions(self):
        """The ids of sessions with sockets in this process."""
        return list(self._hubs)

    async def end_session_here(self, session_id, reason):
        """Close this process's sockets of a session that ended, as its broadcast would have."""
        hub = self._hubs.get(session_id)
        if hub is not None:
            await hub.handle({"type": "session.ended", "reason": reason})


hubs = SessionHubs()
