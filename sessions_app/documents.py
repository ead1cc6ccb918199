"""The current document of each session as a ready-to-send frame, read once per process per version."""

import asyncio
import json

from channels.db import database_sync_to_async

from .services import current_document


def html_frame(session_id, version, html, protocol):
    """The get-html message for a version of a session, as JSON text."""
    message = {
        "Origin": "server",
        "SessionId": session_id,
        "Action": "get-html",
        "PayloadType": "html",
        "Content": html,
        "Success": True,
    }
    if protocol >= 2:
        message["Version"] = version
    return json.dumps(message)


class DocumentCache:
    """Latest (version, frames) per session, so a broadcast to many viewers costs one read."""

    MAX_SESSIONS = 256

    def __init__(self):
        self._latest = {}
        self._reads = {}

    async def frame(self, session_id, protocol, at_least=0, fresh=False):
        """(version, frame) of the newest stored version, reading the database only when needed."""
        entry = self._latest.get(session_id)
        if fresh or entry is None or entry["version"] < at_least:
            entry = await self._read(session_id)
            if entry is None:
                return None
        frames = entry["frames"]
        if protocol not in frames:
            frames[protocol] = html_frame(session_id, entry["version"], entry["html"], protocol)
        return entry["version"], frames[protocol]

    async def _read(self, session_id):
        # Viewers woken by the same broadcast share one database read.
        pending = self._reads.get(session_id)
        if pending is None:
            pending = asyncio.ensure_future(database_sync_to_async(current_document)(session_id))
            self._reads[session_id] = pending
            pending.add_done_callback(lambda _: self._reads.pop(session_id, None))
        row = await asyncio.shield(pending)
        if row is None:
            return None
        version, html = row
        entry = self._latest.get(session_id)
        if entry is None or entry["version"] < version:
            if len(self._latest) >= self.MAX_SESSIONS:
                self._latest.pop(next(iter(self._latest)))
            entry = {"version": version, "html": html, "frames": {}}
            self._latest[session_id] = entry
        return entry

    def forget(self, session_id):
        """Drop a session's cached document (it ended)."""
        self._latest.pop(session_id, None)


documents = DocumentCache()
