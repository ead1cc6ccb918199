"""The per-process conversion queue: one conversion per session at a time, latest update wins."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from conversion import ConversionError, Converted
from sessions_app import publishing
from sessions_app.access import AccessDenied
from sessions_app.models import CollabSession, SessionToken
from sessions_app.publishing import SUPERSEDED, UpdateQueue, conversion_pool
from sessions_app.services import SessionUnavailable, do_create_session, do_issue_token, store_document
from tests.documents import flat_opc

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def session_id(session):
    return session["id"]


async def test_waiting_update_is_replaced_by_newer_one(session_id):
    queue = UpdateQueue()
    results = await asyncio.gather(
        *(queue.convert_and_store(session_id, flat_opc(f"Edit {n}"), "ooxml") for n in range(1, 4))
    )
    # The first starts converting at once; the second waits and is replaced by the third.
    assert results[-1] is not SUPERSEDED
    assert SUPERSEDED in results
    stored = await sync_to_async(CollabSession.objects.get)(pk=session_id)
    assert stored.html == "<p>Edit 3</p>"
    assert stored.version == len([r for r in results if r is not SUPERSEDED])


async def test_sequential_updates_each_get_a_version(session_id):
    queue = UpdateQueue()
    versions = [await queue.convert_and_store(session_id, flat_opc(f"Edit {n}"), "ooxml") for n in range(3)]
    assert versions == [1, 2, 3]


async def test_sessions_do_not_wait_for_each_other(session_id):
    other = (await sync_to_async(do_create_session)("Other"))[0].id
    queue = UpdateQueue()
    first, second = await asyncio.gather(
        queue.convert_and_store(session_id, flat_opc("One"), "ooxml"),
        queue.convert_and_store(other, flat_opc("Two"), "ooxml"),
    )
    assert (first, second) == (1, 1)


async def test_failed_conversion_changes_nothing(session_id):
    queue = UpdateQueue()
    await queue.convert_and_store(session_id, flat_opc("Good"), "ooxml")
    with pytest.raises(ConversionError):
        await queue.convert_and_store(session_id, "<not a package", "ooxml")
    stored = await sync_to_async(CollabSession.objects.get)(pk=session_id)
    assert (stored.version, stored.html) == (1, "<p>Good</p>")
    assert await sync_to_async(stored.revisions.count)() == 1


async def test_ended_session_cannot_publish(session_id):
    await sync_to_async(CollabSession.objects.filter(pk=session_id).update)(status="ended")
    with pytest.raises(SessionUnavailable):
        await UpdateQueue().convert_and_store(session_id, flat_opc("Late"), "ooxml")


async def test_revisions_are_capped(session_id, settings):
    settings.COLLAB_MAX_REVISIONS = 2
    queue = UpdateQueue()
    for n in range(4):
        await queue.convert_and_store(session_id, flat_opc(f"Edit {n}"), "ooxml")
    stored = await sync_to_async(CollabSession.objects.get)(pk=session_id)
    versions = await sync_to_async(list)(stored.revisions.values_list("version", flat=True))
    assert sorted(versions) == [3, 4]


async def test_revisions_are_capped_by_their_bytes_and_the_newest_stays(session_id, settings):
    settings.COLLAB_MAX_REVISION_BYTES = 2_500
    queue = UpdateQueue()
    for n in range(4):
        await queue.convert_and_store(session_id, flat_opc(f"Edit {n} " + "word " * 200), "ooxml")
    stored = await sync_to_async(CollabSession.objects.get)(pk=session_id)
    revisions = await sync_to_async(list)(stored.revisions.values_list("version", "html_bytes"))
    assert sorted(version for version, _ in revisions) == [3, 4]  # about 1,000 bytes each
    assert sum(size for _, size in revisions) <= 2_500
    settings.COLLAB_MAX_REVISION_BYTES = 10
    await queue.convert_and_store(session_id, flat_opc("One more " + "word " * 200), "ooxml")
    versions = await sync_to_async(list)(stored.revisions.values_list("version", flat=True))
    assert list(versions) == [5]  # over the budget alone, the newest is still kept


async def test_a_stored_version_is_read_back_whole(session_id):
    converted = Converted("<p>Kept</p>", ["a warning", "ünïcode"], 1234, 11, 0.0424)
    version, stored_at = await sync_to_async(store_document)(session_id, converted)
    session = await stored_session(session_id)
    revision = await sync_to_async(session.revisions.get)(version=version)
    assert (session.version, session.html, session.updated_at) == (1, "<p>Kept</p>", stored_at)
    assert (revision.html, revision.created_at) == ("<p>Kept</p>", stored_at)
    assert revision.warnings == ["a warning", "ünïcode"]
    assert (revision.input_bytes, revision.html_bytes, revision.conversion_ms) == (1234, 11, 42)


async def test_senders_and_other_processes_hear_of_versions_in_order(session_id, monkeypatch):
    told = []
    real = publishing.version_notices.announce

    async def slow_for_the_first(session_id, version, *notice, **options):
        if version == 1:
            await asyncio.sleep(0.3)  # Redis is slow to take version 1's notice
        told.append(version)
        await real(session_id, version, *notice, **options)

    monkeypatch.setattr(publishing.version_notices, "announce", slow_for_the_first)
    queue = UpdateQueue()
    first = asyncio.ensure_future(queue.convert_and_store(session_id, flat_opc("First"), "ooxml"))
    while (await stored_session(session_id)).version < 1:
        await asyncio.sleep(0.01)
    # Stored while version 1 is still being announced: it is answered after it, not before.
    assert await queue.convert_and_store(session_id, flat_opc("Second"), "ooxml") == 2
    assert first.done() and first.result() == 1
    assert told == [1, 2]


# The sender's token, checked where its update is stored


async def stored_session(session_id):
    return await sync_to_async(CollabSession.objects.get)(pk=session_id)


async def word_token_id(session_id):
    return await sync_to_async(
        SessionToken.objects.filter(session_id=session_id, role="word").values_list("pk", flat=True).get
    )()


async def revoke(token_id):
    await sync_to_async(SessionToken.objects.filter(pk=token_id).update)(revoked=True)


async def test_an_update_of_a_usable_token_is_stored(session_id):
    publisher = await word_token_id(session_id)
    assert await UpdateQueue().convert_and_store(session_id, flat_opc("Mine"), "ooxml", publisher) == 1
    assert (await stored_session(session_id)).html == "<p>Mine</p>"


@pytest.mark.parametrize("lapse", ["revoked", "expired"])
async def test_an_update_whose_token_lapsed_stores_nothing(session_id, lapse):
    publisher = await word_token_id(session_id)
    change = (
        {"revoked": True} if lapse == "revoked" else {"expires_at": timezone.now() - timedelta(seconds=1)}
    )
    await sync_to_async(SessionToken.objects.filter(pk=publisher).update)(**change)
    with pytest.raises(AccessDenied) as refused:
        await UpdateQueue().convert_and_store(session_id, flat_opc("Theirs"), "ooxml", publisher)
    assert refused.value.code == "E1003"
    stored = await stored_session(session_id)
    assert (stored.version, stored.html) == (0, "")
    assert await sync_to_async(stored.revisions.count)() == 0


async def test_a_token_revoked_while_its_update_converts_stores_nothing(session_id, monkeypatch):
    publisher = await word_token_id(session_id)
    pool = conversion_pool()
    convert = pool.convert

    async def revoked_meanwhile(*arguments):
        converted = await convert(*arguments)
        await revoke(publisher)
        return converted

    monkeypatch.setattr(pool, "convert", revoked_meanwhile)
    with pytest.raises(AccessDenied):
        await UpdateQueue().convert_and_store(session_id, flat_opc("Late"), "ooxml", publisher)
    assert (await stored_session(session_id)).version == 0


async def test_a_refused_token_hears_of_its_token_not_its_document(session_id):
    publisher = await word_token_id(session_id)
    await revoke(publisher)
    with pytest.raises(AccessDenied):
        await UpdateQueue().convert_and_store(session_id, "<not a package", "ooxml", publisher)


async def test_an_unchecked_update_of_an_ended_session_is_e1006(session_id):
    publisher = await word_token_id(session_id)
    await sync_to_async(CollabSession.objects.filter(pk=session_id).update)(status="ended")
    with pytest.raises(SessionUnavailable):
        await UpdateQueue().convert_and_store(session_id, flat_opc("Late"), "ooxml", publisher)


async def test_no_waiting_update_is_dropped_for_one_whose_token_is_refused(session_id):
    queue = UpdateQueue()
    publisher = await word_token_id(session_id)
    other, _ = await sync_to_async(do_issue_token)(await stored_session(session_id), "word")
    await revoke(other.pk)
    # In one turn of the loop: the first update waits (its conversion has not begun) when the
    # second, from a revoked token, arrives; it must not replace the first.
    waiting = asyncio.ensure_future(queue.convert_and_store(session_id, flat_opc("Kept"), "ooxml", publisher))
    refused = asyncio.ensure_future(
        queue.convert_and_store(session_id, flat_opc("Refused"), "ooxml", other.pk)
    )
    with pytest.raises(AccessDenied):
        await refused
    assert await waiting == 1
    assert (await stored_session(session_id)).html == "<p>Kept</p>"


async def test_a_replaced_update_of_a_revoked_token_is_still_refused(session_id):
    queue = UpdateQueue()
    publisher = await word_token_id(session_id)
    first = asyncio.ensure_future(queue.convert_and_store(session_id, flat_opc("First"), "ooxml"))
    await asyncio.sleep(0)  # converting
    replaced = asyncio.ensure_future(queue.convert_and_store(session_id, flat_opc("Old"), "ooxml", publisher))
    await asyncio.sleep(0)  # waiting behind the first
    await revoke(publisher)
    newer = asyncio.ensure_future(queue.convert_and_store(session_id, flat_opc("New"), "ooxml"))
    assert await first == 1
    assert await newer == 2
    with pytest.raises(AccessDenied):
        await replaced  # replaced unconverted, and its sender told of its token
    assert (await stored_session(session_id)).html == "<p>New</p>"


async def test_the_latest_update_still_wins_when_its_token_is_usable(session_id):
    queue = UpdateQueue()
    publisher = await word_token_id(session_id)
    older = asyncio.ensure_future(queue.convert_and_store(session_id, flat_opc("Old"), "ooxml"))
    newer = asyncio.ensure_future(queue.convert_and_store(session_id, flat_opc("New"), "ooxml", publisher))
    # The older one is replaced if it still waited when the check passed, else stored first.
    outcome = await older
    assert await newer == (1 if outcome is SUPERSEDED else 2)
    assert (await stored_session(session_id)).html == "<p>New</p>"
