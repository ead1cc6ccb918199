"""Each session's current document as ready-to-send frames, read and encoded once per process per version.

A broadcast in the channel layer carries only the new version number: each process reads
the HTML from the database once, encodes each frame once (full get-html per protocol, and
the html-patch from the version before) and hands the same string to every socket.
"""

import asyncio
import json
import logging

from channels.db import database_sync_to_async
from django.conf import settings

from .models import Revision
from .patches import checksum, diff_blocks, split_blocks, utf16_lengths
from .services import current_document

log = logging.getLogger(__name__)

HTML_PATCH = "html-patch"

# A patch bigger than this share of the full frame is not worth it: the full document goes instead.
PATCH_MAX_SHARE = 0.5


def html_frame(session_id, version, html, protocol, blocks=None):
    """The get-html message for a version of a session, as JSON text.

    `blocks`, for clients granted html-patch, lists the top-level blocks' lengths in UTF-16
    code units, so the client can apply the next patch without splitting HTML itself.
    """
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
    if blocks is not None:
        message["Blocks"] = blocks
    return json.dumps(message)


def patch_message(session_id, version, ops, new_html):
    """The html-patch message turning version-1 into version, as JSON text."""
    return json.dumps(
        {
            "Origin": "server",
            "SessionId": session_id,
            "Action": HTML_PATCH,
            "Version": version,
            "BaseVersion": version - 1,
            "Ops": ops,
            "Checksum": checksum(new_html),
            "Success": True,
        }
    )


def build_patch(session_id, version, old_html, new_html, full_frame_size):
    """The html-patch frame from old_html to new_html, or None when sending it saves too little."""
    ops = diff_blocks(split_blocks(old_html), split_blocks(new_html))
    frame = patch_message(session_id, version, ops, new_html)
    return frame if len(frame) <= full_frame_size * PATCH_MAX_SHARE else None


def revision_html(session_id, version):
    """The stored HTML of one version of a session, or None if it was pruned."""
    return (
        Revision.objects.filter(session_id=session_id, version=version).values_list("html", flat=True).first()
    )


class DocumentCache:
    """Latest (version, frames) per session, so a broadcast to many viewers costs one read and one encode.

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
        """(version, frame) of the newest stored version, reading the database only when needed."""
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
            lengths = utf16_lengths(split_blocks(entry["html"])) if blocks else None
            frames[key] = html_frame(session_id, entry["version"], entry["html"], protocol, lengths)
            self.encodes += 1
            self._count(session_id, entry, len(frames[key]))
        return entry["version"], frames[key]

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
        previous = entry["previous"]
        if previous is None:
            previous = await database_sync_to_async(revision_html)(session_id, version - 1)
            if previous is None:
                return None
        _, full = await self.frame(session_id, 2, at_least=version, blocks=True)
        # Diffing a long document takes a while: it runs beside the event loop, not in it.
        frame = await asyncio.to_thread(build_patch, session_id, version, previous, entry["html"], len(full))
        if self._latest.get(session_id) is entry:
            self._count(session_id, entry, (len(frame) if frame else 0) - len(entry["previous"] or ""))
        entry["previous"] = None  # the patch is built; the older HTML is no longer needed
        self.encodes += 1
        return frame

    async def _read(self, session_id):
        # Viewers woken by the same broadcast share one database read.
        pending = self._reads.get(session_id)
        if pending is None:
            self.reads += 1
            pending = asyncio.ensure_future(database_sync_to_async(current_document)(session_id))
            self._reads[session_id] = pending
            pending.add_done_callback(lambda _: self._reads.pop(session_id, None))
        row = await asyncio.shield(pending)
        if row is None:
            return None
        version, html = row
        entry = self._latest.get(session_id)
        if entry is None or entry["version"] < version:
            # The version before, kept when this process has html-patch clients for the session,
            # spares a database read for the patch.
            previous = None
            if entry is not None and entry["version"] == version - 1 and any(k[1] for k in entry["frames"]):
                previous = entry["html"]
            self.forget(session_id)
            entry = {
                "version": version,
                "html": html,
                "frames": {},
                "previous": previous,
                "patch": None,
                "bytes": 0,
            }
            self._latest[session_id] = entry
            self._count(session_id, entry, len(html) + len(previous or ""))
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


documents = DocumentCache()
