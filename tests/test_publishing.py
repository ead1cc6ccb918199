"""The per-process conversion queue: one conversion per session at a time, latest update wins."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from conversion import ConversionError
from sessions_app.models import CollabSession
from sessions_app.protocol import ProtocolError
from sessions_app.publishing import SUPERSEDED, UpdateQueue
from sessions_app.services import SessionUnavailable, do_create_session
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


# The sender's token check, under way while its update converts


async def stored_session(session_id):
    return await sync_to_async(CollabSession.objects.get)(pk=session_id)


async def test_an_update_whose_check_passes_meanwhile_is_stored(session_id):
    allowed = asyncio.get_running_loop().create_future()
    storing = asyncio.ensure_future(
        UpdateQueue().convert_and_store(session_id, flat_opc("Mine"), "ooxml", allowed)
    )
    await asyncio.sleep(0.05)
    assert (
        await stored_session(session_id)
    ).version == 0  # converted, perhaps, but not stored before the check
    allowed.set_result(None)
    assert await storing == 1
    assert (await stored_session(session_id)).html == "<p>Mine</p>"


async def test_an_update_whose_check_fails_is_converted_for_nothing_and_stores_nothing(session_id):
    denied = asyncio.get_running_loop().create_future()
    storing = asyncio.ensure_future(
        UpdateQueue().convert_and_store(session_id, flat_opc("Theirs"), "ooxml", denied)
    )
    await asyncio.sleep(0.05)
    denied.set_exception(ProtocolError("E1003", "update-ooxml"))
    with pytest.raises(ProtocolError):
        await storing
    stored = await stored_session(session_id)
    assert (stored.version, stored.html) == (0, "")


async def test_no_waiting_update_is_dropped_for_one_whose_check_then_fails(session_id):
    queue = UpdateQueue()
    denied = asyncio.get_running_loop().create_future()
    # In one turn of the loop: the first update waits (its conversion has not begun) when the
    # second, unchecked, arrives; the second must not replace it before its check has passed.
    waiting = asyncio.ensure_future(queue.convert_and_store(session_id, flat_opc("Kept"), "ooxml"))
    refused = asyncio.ensure_future(queue.convert_and_store(session_id, flat_opc("Refused"), "ooxml", denied))
    await asyncio.sleep(0)
    denied.set_exception(ProtocolError("E1003", "update-ooxml"))
    assert await waiting == 1
    with pytest.raises(ProtocolError):
        await refused
    assert (await stored_session(session_id)).html == "<p>Kept</p>"


async def test_the_latest_update_still_wins_when_its_check_passes(session_id):
    queue = UpdateQueue()
    allowed = asyncio.get_running_loop().create_future()
    older = asyncio.ensure_future(queue.convert_and_store(session_id, flat_opc("Old"), "ooxml"))
    newer = asyncio.ensure_future(queue.convert_and_store(session_id, flat_opc("New"), "ooxml", allowed))
    await asyncio.sleep(0)
    allowed.set_result(None)
    # The older one is replaced if it still waited when the check passed, else stored first.
    outcome = await older
    assert await newer == (1 if outcome is SUPERSEDED else 2)
    assert (await stored_session(session_id)).html == "<p>New</p>"
