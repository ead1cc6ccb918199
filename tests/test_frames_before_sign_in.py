"""What a stranger's frames cost a real daphne before sign-in: memory (RSS) and event-loop time (pings)."""

import asyncio
import base64
import contextlib
import json
import os
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from sessions_app.protocol import TOO_MANY_BEFORE_SIGN_IN
from tests.servers import child_env, run_manage
from tests.test_frame_parsing import hostile_first_frame
from tests.test_integration_daphne import (
    WAIT,
    first_message,
    flat_opc_with_image,
    html_with,
    joined,
    new_session,
    noise_png,
    summary,
)

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
FRAME_BYTES = 32_000_000  # just under the default COLLAB_MAX_MESSAGE_BYTES (32 MiB)


class Memory:
    """A server process's resident memory, from /proc: now, and at its peak since `reset`."""

    def __init__(self, server):
        self.status = Path(f"/proc/{server.process.pid}/status")
        self.clear_refs = Path(f"/proc/{server.process.pid}/clear_refs")

    def read(self, field):
        for line in self.status.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in {self.status}")

    def reset(self):
        """Start counting the peak afresh ("5" resets VmHWM to the current RSS); the RSS now."""
        self.clear_refs.write_text("5")
        return self.read("VmRSS")

    def peak(self):
        return self.read("VmHWM")


async def outcome(websocket, timeout=WAIT * 2):
    """(messages, close code): the messages up to an E1010 (the socket stays open) or up to the close."""
    received = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                received.append(json.loads(await websocket.recv()))
                if received[-1].get("ErrorCode") == "E1010":
                    return received, None
    except ConnectionClosed as closed:
        return received, closed.rcvd.code if closed.rcvd else None


async def first_answer(websocket, timeout=WAIT * 2):
    async with asyncio.timeout(timeout):
        return json.loads(await websocket.recv())


async def warm_up(server):
    """One small refused frame, so the process has loaded what a socket needs before memory is measured."""
    async with connect(server.ws_url, proxy=None, open_timeout=WAIT) as websocket:
        await websocket.send(hostile_first_frame(10_000))
        await first_answer(websocket)


async def test_32_mb_frame_before_sign_in_costs_little_memory(daphne):
    server = await asyncio.to_thread(daphne)
    frame = hostile_first_frame(FRAME_BYTES)
    await warm_up(server)
    memory = Memory(server)
    before = memory.reset()
    async with connect(server.ws_url, proxy=None, open_timeout=WAIT, max_size=None) as websocket:
        await websocket.send(frame)
        answer = await first_answer(websocket)
    grown = memory.peak() - before
    # json.loads of it built ten million dicts: 800 MiB. Now the frame's bytes and its text, about 3 × 32 MB.
    assert grown < 150 * MIB, f"the process grew by {grown / MIB:.0f} MiB"
    assert answer["Success"] is False and answer["ErrorCode"] == "E1010", summary(answer)
    assert answer["Content"] == "Malformed message: more than 1000 values"


async def test_parallel_frames_before_sign_in_from_one_address_are_bounded(daphne):
    server = await asyncio.to_thread(daphne)  # the default budget: two full-size first messages
    frame = hostile_first_frame(FRAME_BYTES)
    await warm_up(server)
    memory = Memory(server)
    before = memory.reset()

    async def stranger():
        async with connect(server.ws_url, proxy=None, open_timeout=WAIT, max_size=None) as websocket:
            # A refused frame's socket may be closed before all of it is sent.
            with contextlib.suppress(ConnectionClosed):
                await websocket.send(frame)
            return await outcome(websocket)

    outcomes = await asyncio.gather(*(stranger() for _ in range(20)))
    grown = memory.peak() - before
    assert grown < 400 * MIB, f"the process grew by {grown / MIB:.0f} MiB"
    refused = [messages for messages, code in outcomes if code == 4429]
    read = [messages for messages, _ in outcomes if messages and messages[0].get("ErrorCode") == "E1010"]
    for messages in refused:
        assert [m["Action"] for m in messages] == ["session-closed"], [summary(m) for m in messages]
        assert messages[0]["Content"] == TOO_MANY_BEFORE_SIGN_IN
    assert len(refused) + len(read) == 20, [(len(messages), code) for messages, code in outcomes]
    # At most two 32 MB frames are read at a time; every other one is refused when its header comes.
    assert len(refused) >= 10, len(refused)


async def test_ping_round_trips_stay_short_while_strangers_send_32_mb_frames(daphne):
    # No budget here: every stranger's frame is read, so this measures what reading them costs.
    server = await asyncio.to_thread(daphne, COLLAB_MAX_PRE_SIGN_IN_BYTES_PER_ADDRESS="0")
    session = await new_session(server)
    frame = hostile_first_frame(FRAME_BYTES)
    round_trips = []
    strangers_done = asyncio.Event()

    async def stranger():
        for _ in range(3):
            async with connect(server.ws_url, proxy=None, open_timeout=WAIT, max_size=None) as websocket:
                await websocket.send(frame)
                assert (await first_answer(websocket))["Success"] is False

    async with joined(server, session, "client") as viewer:
        await viewer.receive_until(lambda m: m.get("Action") == "get-html")

        async def ping_until_strangers_are_done():
            while not strangers_done.is_set():
                started = time.perf_counter()
                await viewer.send({"Action": "ping"})
                await viewer.receive_until(lambda m: m.get("Action") == "pong")
                round_trips.append(time.perf_counter() - started)
                await asyncio.sleep(0.01)

        pinger = asyncio.ensure_future(ping_until_strangers_are_done())
        try:
            await asyncio.gather(*(stranger() for _ in range(4)))
        finally:
            strangers_done.set()
            await pinger
    round_trips.sort()
    p90 = round_trips[len(round_trips) * 9 // 10]
    # Parsed on the event loop, four such frames took other viewers' round trips from 1 ms to 600 ms.
    assert p90 < 0.2, f"p90 {p90 * 1000:.0f} ms over {len(round_trips)} pings; slowest {round_trips[-5:]}"


def full_size_document(size):
    """A Flat OPC document of about `size` characters: a picture, and an unreferenced part filling it up."""
    document = flat_opc_with_image(noise_png(400, 300))
    padding = base64.encodebytes(os.urandom((size - len(document)) * 3 // 4)).decode("ascii")
    part = (
        '<pkg:part pkg:name="/customXml/padding.bin" pkg:contentType="application/octet-stream">'
        f"<pkg:binaryData>{padding}</pkg:binaryData></pkg:part>"
    )
    return document.replace("</pkg:package>", part + "</pkg:package>")


async def test_field_addin_full_size_first_update_is_published(daphne):
    """The field add-in's first message is a whole document: version 1, up to COLLAB_MAX_MESSAGE_BYTES."""
    server = await asyncio.to_thread(daphne)
    session = await new_session(server)
    hello = first_message(session, "word", "update-ooxml", protocol=None, PayloadType="ooxml")
    frame = json.dumps({**hello, "Content": full_size_document(31_500_000)})
    assert 31_000_000 < len(frame.encode()) < 32 * MIB
    async with joined(server, session, "client") as viewer:
        async with connect(server.ws_url, proxy=None, open_timeout=WAIT, max_size=None) as websocket:
            await websocket.send(frame)
            published = await first_answer(websocket, timeout=180)
        assert published["Action"] == "get-html" and published["Success"] is True, summary(published)
        assert "<img" in published["Content"]
        await viewer.receive_until(html_with("<img", version=1), timeout=180)


def test_a_budget_smaller_than_one_message_stops_the_server_at_start():
    env = child_env(
        {"COLLAB_MAX_MESSAGE_BYTES": "2000000", "COLLAB_MAX_PRE_SIGN_IN_BYTES_PER_ADDRESS": "1000000"}
    )
    with pytest.raises(AssertionError, match="must be 0 or at least COLLAB_MAX_MESSAGE_BYTES"):
        run_manage(env, "check")
    run_manage({**env, "COLLAB_MAX_PRE_SIGN_IN_BYTES_PER_ADDRESS": "0"}, "check")


async def test_sockets_that_sign_in_give_their_bytes_back(daphne):
    """Three add-ins of one office send whole documents as first messages and stay: none is refused."""
    server = await asyncio.to_thread(daphne, COLLAB_MAX_MESSAGE_BYTES="3000000")  # a budget of 6 MB
    session = await new_session(server)
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(3):
            websocket = await stack.enter_async_context(
                connect(server.ws_url, proxy=None, open_timeout=WAIT, max_size=None)
            )
            hello = first_message(session, "word", "update-ooxml", protocol=None, PayloadType="ooxml")
            frame = json.dumps({**hello, "Content": full_size_document(2_800_000)})
            assert len(frame.encode()) > 2_800_000
            await websocket.send(frame)
            # Each socket stays, signed in, while the next one sends its 2.8 MB.
            async with asyncio.timeout(WAIT):
                while (answer := json.loads(await websocket.recv()))["Action"] != "get-html":
                    assert answer["Success"] is True, summary(answer)
            assert answer["Success"] is True
