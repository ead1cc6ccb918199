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

from conversion import ConversionPool, Limits

from .hub import document_frames
from .protocol import published_at_text
from .services import broadcast_html, store_document

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
    permission: asyncio.Future | None = field(default=None, repr=False)  # the sender's token check


class UpdateQueue:
    """Runs each session's conversions in order; a waiting update is replaced by a newer one."""

    def __init__(self):
        self._waiting = {}
        self._running = {}

    async def convert_and_store(self, session_id, content, payload_type, permission=None):
        """Convert and store an update; the new version, or SUPERSEDED if a newer update replaced it.

        `permission` is the sender's token check still under way (a future that raises the
        refusal): the update is converted meanwhile, and nothing of it is stored unless it
        passes. An update that would replace a waiting one waits for its check first, so no
        update is ever dropped for one that is then refused.
        """
        if permission is not None and session_id in self._waiting:
            await permission
            permission = None
        future = asyncio.get_running_loop().create_future()
        replaced = self._waiting.get(session_id)
        if replaced is not None and not replaced.future.done():
            replaced.future.set_result(SUPERSEDED)
        self._waiting[session_id] = _Job(content, payload_type, future, permission)
        if session_id not in self._running:
            self._running[session_id] = asyncio.ensure_future(self._drain(session_id))
        # The update is published even if the sender goes away meanwhile.
        return await asyncio.shield(future)

    async def _drain(self, session_id):
        try:
            while (job := self._waiting.pop(session_id, None)) is not None:
                try:
                    # The session is the pool's owner: its workers are shared fairly between sessions.
                    try:
                        converted = await conversion_pool().convert(job.content, job.payload_type, session_id)
                    finally:
                        if job.permission is not None:
                            await job.permission  # a refused sender hears of its token, not its document
                    version, stored_at = await database_sync_to_async(store_document)(session_id, converted)
                except Exception as exc:
                    if not job.future.done():
                        job.future.set_exception(exc)
                else:
                    # This process's sockets are served the HTML in hand; other processes read it once.
                    document_frames.hold(session_id, version, converted.html, published_at_text(stored_at))
                    await broadcast_html(session_id, version)
                    if not job.future.done():
                        job.future.set_result(version)
        finally:
            self._running.pop(session_id, None)


update_queue = UpdateQueue()
