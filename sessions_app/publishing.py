"""Each process's queue of updates to convert and store: one conversion per session at a time, latest wins.

The conversion pool shares its workers between sessions (conversion/pool.py): the session that
used the least worker time lately goes first, and while another session waits, no conversion
keeps a worker longer than COLLAB_CONVERSION_SHARE_SECONDS.
"""

import asyncio
import logging
import sys
from dataclasses import dataclass, field

from channels.db import database_sync_to_async
from django.conf import settings

from conversion import ConversionError, ConversionPool, Limits

from .access import AccessDenied, refusal_for_socket
from .hub import document_frames, hubs
from .protocol import published_at_text
from .services import prune_revisions, store_document
from .version_notices import version_notices

log = logging.getLogger(__name__)

SUPERSEDED = None  # result of an update replaced by a newer one before it was converted

_pool = None


def conversion_limits():
    """The conversion limits from settings."""
    return Limits(
        max_input_bytes=settings.COLLAB_MAX_MESSAGE_BYTES,
        max_archive_bytes=settings.COLLAB_MAX_MESSAGE_BYTES,
        max_uncompressed_bytes=settings.COLLAB_MAX_UNCOMPRESSED_BYTES,
        max_parts=settings.COLLAB_MAX_PARTS,
        max_compression_ratio=settings.COLLAB_MAX_COMPRESSION_RATIO,
        max_xml_depth=settings.COLLAB_MAX_XML_DEPTH,
        max_images=settings.COLLAB_MAX_IMAGES,
        max_image_bytes=settings.COLLAB_MAX_IMAGE_BYTES,
        max_total_image_bytes=settings.COLLAB_MAX_TOTAL_IMAGE_BYTES,
        max_html_bytes=settings.COLLAB_MAX_HTML_BYTES,
        max_html_depth=settings.COLLAB_MAX_HTML_DEPTH,
        max_html_elements=settings.COLLAB_MAX_HTML_ELEMENTS,
        timeout_seconds=settings.COLLAB_CONVERSION_TIMEOUT,
        max_memory_bytes=settings.COLLAB_CONVERSION_MEMORY_BYTES,
        kept_conversion_bytes=settings.COLLAB_CONVERSION_KEPT_BYTES,
    )


def conversion_pool():
    """This process's pool of conversion workers, started on first use."""
    global _pool
    if _pool is None:
        _pool = ConversionPool(
            workers=settings.COLLAB_CONVERSION_WORKERS,
            limits=conversion_limits(),
            share_seconds=settings.COLLAB_CONVERSION_SHARE_SECONDS,
        )
        close_on_server_shutdown(_pool)
    return _pool


def close_on_server_shutdown(pool):
    """Stop the workers when daphne shuts down, so a running conversion cannot delay the exit."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is not None:
        reactor.addSystemEventTrigger("before", "shutdown", pool.close)


@dataclass
class _Job:
    content: str
    payload_type: str
    future: asyncio.Future = field(repr=False)
    publisher: int | None = None  # the id of the sender's token, if it has yet to be checked


class UpdateQueue:
    """Runs each session's conversions in order; a waiting update is replaced by a newer one."""

    def __init__(self):
        self._waiting = {}
        self._running = {}
        self._announcing = {}  # session id -> its latest announcement, which follows the one before

    async def convert_and_store(self, session_id, content, payload_type, publisher=None):
        """Convert and store an update; the new version, or SUPERSEDED if a newer update replaced it.

        `publisher` is the id of the sender's token when it has yet to be checked: the store
        checks it in the statement that takes the version, so nothing of the update is stored
        unless it may publish (AccessDenied, E1003). It is checked on its own first where the
        update would replace a waiting one, so that no update is ever dropped for one that is
        then refused, and also where the update is not stored (a failed conversion, a newer
        update replacing it), so that a refused sender hears of its token, not its document.
        """
        if publisher is not None and session_id in self._waiting:
            await check_publisher(publisher)
            publisher = None
        future = asyncio.get_running_loop().create_future()
        replaced = self._waiting.get(session_id)
        if replaced is not None and not replaced.future.done():
            replaced.future.set_result(SUPERSEDED)
        self._waiting[session_id] = _Job(content, payload_type, future, publisher)
        if session_id not in self._running:
            self._running[session_id] = asyncio.ensure_future(self._drain(session_id))
        # The update is published even if the sender goes away meanwhile.
        version = await asyncio.shield(future)
        if version is SUPERSEDED and publisher is not None:
            await check_publisher(publisher)
        return version

    async def _drain(self, session_id):
        try:
            while (job := self._waiting.pop(session_id, None)) is not None:
                try:
                    await self._publish(session_id, job)
                except Exception as exc:
                    if not job.future.done():
                        job.future.set_exception(exc)
        finally:
            self._running.pop(session_id, None)

    async def _publish(self, session_id, job):
        # The session is the pool's owner: its workers are shared fairly between sessions.
        try:
            converted = await conversion_pool().convert(job.content, job.payload_type, session_id)
        except ConversionError:
            if job.publisher is not None:
                await check_publisher(job.publisher)
            raise
        store = database_sync_to_async(store_document)
        version, stored_at = await store(session_id, converted, job.publisher)
        # This process's sockets are served the HTML in hand, before other processes hear of
        # it; the notice carries it to them too, unless it is long (then they read it once).
        published_at = published_at_text(stored_at)
        document_frames.hold(session_id, version, converted.html, published_at)
        await hubs.deliver_here(session_id, version)
        # The session's next update converts meanwhile: it need not wait for the notice's
        # round trip to Redis or the pruning.
        previous = self._announcing.get(session_id)
        notice = (version, converted.html, published_at)
        announcing = asyncio.ensure_future(self._announce(session_id, notice, job.future, previous))
        self._announcing[session_id] = announcing
        announcing.add_done_callback(lambda done: self._announced(session_id, done))

    async def _announce(self, session_id, notice, future, previous=None):
        """Tell other processes of a stored version, trim the session's revisions, then answer its sender.

        `notice` is (version, html, published_at). After the session's previous announcement:
        processes and senders hear of versions in order.
        """
        if previous is not None:
            await asyncio.wait({previous})
        version = notice[0]
        await version_notices.announce(session_id, *notice, served_here=True)
        try:
            await database_sync_to_async(prune_revisions)(session_id, version)
        except Exception:
            # The version is stored and told; the next update prunes what this one left.
            log.warning("revisions of session %s not pruned", session_id, exc_info=True)
        if not future.done():
            future.set_result(version)

    def _announced(self, session_id, announcement):
        if self._announcing.get(session_id) is announcement:
            del self._announcing[session_id]


async def check_publisher(token_id):
    """AccessDenied (E1003, E1006) unless the token may still publish in its session."""
    refusal = await database_sync_to_async(refusal_for_socket)(token_id)
    if refusal:
        raise AccessDenied(refusal)


update_queue = UpdateQueue()
