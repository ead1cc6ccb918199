"""The per-process cache of current documents (sessions_app/hub.py): bounded, oldest use first."""

import json

import pytest
from asgiref.sync import sync_to_async

from conversion import Converted
from sessions_app.hub import DocumentFrames
from sessions_app.services import do_create_session, do_publish_document

pytestmark = pytest.mark.django_db(transaction=True)

PARAGRAPH = "<p>" + "word " * 400 + "</p>"  # about 2,000 characters


@sync_to_async
def session_with(html):
    session, _, _ = do_create_session("Cache test")
    converted = Converted(html=html, warnings=[], input_bytes=1, html_bytes=len(html), seconds=0.0)
    do_publish_document(session.id, converted)
    return session.id


async def content(cache, session_id):
    _, frame = await cache.frame(session_id, 2)
    return json.loads(frame)["Content"]


async def test_the_least_recently_used_document_makes_room_and_is_read_again(settings):
    # Room for about two documents with their frames, not three.
    settings.COLLAB_DOCUMENT_CACHE_BYTES = 9_000
    cache = DocumentFrames()
    first, second, third = [await session_with(PARAGRAPH + f"<p>{n}</p>") for n in range(3)]
    assert await content(cache, first) == PARAGRAPH + "<p>0</p>"
    assert await content(cache, second) == PARAGRAPH + "<p>1</p>"
    assert await content(cache, first) == PARAGRAPH + "<p>0</p>"  # used again: now the most recent
    assert cache.reads == 2
    assert await content(cache, third) == PARAGRAPH + "<p>2</p>"  # the second goes
    assert cache.reads == 3
    assert await content(cache, first) == PARAGRAPH + "<p>0</p>"
    assert cache.reads == 3  # still cached
    assert await content(cache, second) == PARAGRAPH + "<p>1</p>"
    assert cache.reads == 4  # read again


async def test_a_document_larger_than_the_budget_is_still_served(settings):
    settings.COLLAB_DOCUMENT_CACHE_BYTES = 1_000
    cache = DocumentFrames()
    big = await session_with(PARAGRAPH * 3)
    other = await session_with(PARAGRAPH)
    assert await content(cache, big) == PARAGRAPH * 3
    assert await content(cache, big) == PARAGRAPH * 3
    assert cache.reads == 1  # kept while it is the only one
    assert await content(cache, other) == PARAGRAPH
    assert await content(cache, big) == PARAGRAPH * 3
    assert cache.reads == 3
