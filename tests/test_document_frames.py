"""The per-process cache of current documents (sessions_app/hub.py): bounded, oldest use first."""

import json
from datetime import datetime

import pytest
from asgiref.sync import sync_to_async

from conversion import Converted
from sessions_app.hub import DocumentFrames
from sessions_app.models import CollabSession
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
    return json.loads(frame.text)["Content"]


async def test_the_least_recently_used_document_makes_room_and_is_read_again(settings):
    # Room for about two documents with their frames (each text and its framed bytes), not three.
    settings.COLLAB_DOCUMENT_CACHE_BYTES = 13_000
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


def stored_published_at(session_id):
    return CollabSession.objects.get(pk=session_id).updated_at


async def test_version_2_frames_say_when_the_version_was_published_and_version_1_frames_do_not():
    session_id = await session_with(PARAGRAPH * 3)
    published = await sync_to_async(stored_published_at)(session_id)
    cache = DocumentFrames()
    _, frame = await cache.frame(session_id, 2)
    published_at = json.loads(frame.text)["PublishedAt"]
    assert published_at.endswith("Z")
    assert datetime.fromisoformat(published_at) == published.replace(microsecond=0)
    _, frame = await cache.frame(session_id, 1)
    assert "PublishedAt" not in json.loads(frame.text)  # version 1 clients see what they always saw


async def test_a_patch_says_when_its_version_was_published():
    session_id = await session_with(PARAGRAPH * 3)
    converted = Converted(
        html=PARAGRAPH * 2 + "<p>changed</p>", warnings=[], input_bytes=1, html_bytes=1, seconds=0.0
    )
    version = await sync_to_async(do_publish_document)(session_id, converted)
    published = await sync_to_async(stored_published_at)(session_id)
    cache = DocumentFrames()
    await cache.frame(session_id, 2, blocks=True)
    patch = json.loads(await cache.patch(session_id, version))
    assert patch["Action"] == "html-patch"
    assert datetime.fromisoformat(patch["PublishedAt"]) == published.replace(microsecond=0)


async def test_nothing_published_has_no_published_time():
    session, _, _ = await sync_to_async(do_create_session)("Empty")
    _, frame = await DocumentFrames().frame(session.id, 2)
    assert "PublishedAt" not in json.loads(frame.text)
