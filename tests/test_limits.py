"""Per-socket message rates (access.py) and per-address and per-token connection limits."""

import asyncio
import secrets

import pytest

from sessions_app.access import MessageRate
from sessions_app.connection_limits import LocalConnections, RedisConnections, client_address
from tests.documents import flat_opc
from tests.sockets import TIMEOUT, join, open_socket, receive, send

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("own_redis_prefix"),  # connection counts of this test alone, with REDIS_URL
]


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def some_address():
    """An address no other test uses, so its connection count starts at zero."""
    return f"198.51.100.{secrets.randbelow(250) + 1}"


async def assert_refused_for_too_many(communicator, reason):
    message = await receive(communicator)
    assert message["Action"] == "session-closed" and message["Success"] is True, message
    assert message["Content"] == reason
    output = await communicator.receive_output(timeout=TIMEOUT)
    assert output == {"type": "websocket.close", "code": 4429}


# The token bucket


def test_bucket_allows_a_burst_then_refuses():
    clock = FakeClock()
    rate = MessageRate(messages=10, window=10, burst=5, clock=clock)
    assert all(rate.allow() for _ in range(5))
    assert not rate.allow()
    clock.now += 1  # one token per second comes back
    assert rate.allow()
    assert not rate.allow()


def test_bucket_with_zero_messages_never_refuses():
    rate = MessageRate(messages=0, window=10, burst=1, clock=FakeClock())
    assert all(rate.allow() for _ in range(10_000))


def test_default_rate_passes_the_word_addin_pace(settings):
    """The add-in captures 100 ms after every selection change: 10 frames a second, for minutes."""
    clock = FakeClock()
    rate = MessageRate(
        settings.COLLAB_RATE_LIMIT_MESSAGES,
        settings.COLLAB_RATE_LIMIT_WINDOW,
        settings.COLLAB_RATE_LIMIT_BURST,
        clock=clock,
    )
    for _ in range(10 * 600):
        clock.now += 0.1
        # An update plus a ping and a get-html now and then.
        assert rate.allow() and rate.allow()


def test_default_connection_limits_let_one_link_serve_thousands(settings):
    assert settings.COLLAB_MAX_CONNECTIONS_PER_ADDRESS >= 5000
    assert settings.COLLAB_MAX_CONNECTIONS_PER_TOKEN >= 5000
    assert settings.COLLAB_MAX_CONNECTIONS_PER_WORD_TOKEN >= 10


# Rates on a live socket


async def test_flood_gets_e1011_and_the_socket_stays_open(session, settings):
    settings.COLLAB_RATE_LIMIT_MESSAGES = 2
    settings.COLLAB_RATE_LIMIT_WINDOW = 1
    settings.COLLAB_RATE_LIMIT_BURST = 5
    word = await join(session, "word")
    assert (await receive(word))["Action"] == "init"
    for _ in range(10):
        await send(word, Action="ping")
    replies = [await receive(word) for _ in range(10)]
    refused = [reply for reply in replies if reply.get("ErrorCode") == "E1011"]
    # The init message took one token of the burst of five.
    assert len(refused) == 6
    assert refused[0] == {
        "Origin": "server",
        "SessionId": session["id"],
        "Action": "Unknown",
        "Content": "Too many messages: slow down",
        "Success": False,
        "ErrorCode": "E1011",
    }
    await asyncio.sleep(0.6)
    await send(word, Action="ping")
    assert (await receive(word))["Action"] == "pong"
    await word.disconnect()


async def test_word_updates_at_the_addin_pace_are_never_limited(session):
    word = await join(session, "word")
    assert (await receive(word))["Action"] == "init"
    for number in range(30):
        await send(word, Action="update-ooxml", Content=flat_opc(f"Edit {number}"))
        await asyncio.sleep(0.1)
    seen = []
    while True:
        message = await receive(word)
        seen.append(message)
        assert message["Success"] is True, message
        if message["Action"] == "get-html" and message["Content"] == "<p>Edit 29</p>":
            break
    await word.disconnect()


# Connections


async def test_connections_over_the_address_limit_are_closed_with_4429(session, settings):
    settings.COLLAB_MAX_CONNECTIONS_PER_ADDRESS = 2
    address = some_address()
    first = await open_socket(address=address)
    second = await open_socket(address=address)
    third = await open_socket(address=address)
    await assert_refused_for_too_many(third, "Too many connections from this address")
    # Another address is not affected; a freed place is taken again at once.
    elsewhere = await open_socket(address="203.0.113.9")
    await first.disconnect()
    again = await join(session, "client", address=address)
    assert (await receive(again))["Action"] == "init"
    for communicator in (second, elsewhere, again):
        await communicator.disconnect()


async def test_word_token_connections_are_limited_but_viewers_are_not(session, settings):
    settings.COLLAB_MAX_CONNECTIONS_PER_WORD_TOKEN = 1
    settings.COLLAB_MAX_CONNECTIONS_PER_TOKEN = 3
    word = await join(session, "word")
    assert (await receive(word))["Action"] == "init"
    second_word = await join(session, "word")
    await assert_refused_for_too_many(second_word, "Too many connections with this token")
    viewers = [await join(session, "client") for _ in range(3)]
    for viewer in viewers:
        assert (await receive(viewer))["Action"] == "init"
    fourth = await join(session, "client")
    await assert_refused_for_too_many(fourth, "Too many connections with this token")
    # The refused sockets were not counted: one viewer leaves, the next one gets in.
    await viewers.pop().disconnect()
    late = await join(session, "client")
    assert (await receive(late))["Action"] == "init"
    for communicator in (word, late, *viewers):
        await communicator.disconnect()


async def test_local_counts_release_and_reacquire():
    registry = LocalConnections()
    assert await registry.acquire("address:x", "a", 2)
    assert await registry.acquire("address:x", "b", 2)
    assert not await registry.acquire("address:x", "c", 2)
    await registry.release("address:x", "a")
    assert await registry.acquire("address:x", "c", 2)


@pytest.mark.redis
async def test_redis_counts_are_shared_by_processes(redis_url, redis_prefix):
    # Two registries on one Redis prefix stand for two server processes.
    first, second = RedisConnections(redis_url, redis_prefix), RedisConnections(redis_url, redis_prefix)
    assert await first.acquire("token:s:1", "process-1.a", 2)
    assert await second.acquire("token:s:1", "process-2.a", 2)
    assert not await second.acquire("token:s:1", "process-2.b", 2)
    assert not await first.acquire("token:s:1", "process-1.b", 2)
    await first.release("token:s:1", "process-1.a")
    assert await second.acquire("token:s:1", "process-2.b", 2)
    for registry, member in ((second, "process-2.a"), (second, "process-2.b")):
        await registry.release("token:s:1", member)


@pytest.mark.redis
async def test_a_crowd_checked_at_once_is_counted_not_let_through(redis_url, redis_prefix, caplog):
    # Far more checks at once than the pool has connections: none may fail open, and exactly
    # the first `limit` are let in, as if they had come one by one.
    registry = RedisConnections(redis_url, redis_prefix)
    members = [f"socket-{n}" for n in range(3000)]
    allowed = await asyncio.gather(*(registry.acquire("token:s:crowd", member, 2500) for member in members))
    assert "not checked" not in caplog.text
    assert allowed == [True] * 2500 + [False] * 500
    await asyncio.gather(
        *(registry.release("token:s:crowd", m) for m, ok in zip(members, allowed, strict=True) if ok)
    )


@pytest.mark.redis
async def test_crowds_on_two_processes_share_one_limit_exactly(redis_url, redis_prefix):
    first, second = RedisConnections(redis_url, redis_prefix), RedisConnections(redis_url, redis_prefix)
    assert await first.acquire("address:crowd", "early", 300)
    checks = [
        registry.acquire("address:crowd", f"{name}-{n}", 300)
        for n in range(250)
        for registry, name in ((first, "one"), (second, "two"))
    ]
    allowed = await asyncio.gather(*checks)
    assert sum(allowed) == 299  # one place was taken before
    # Places freed in a turn are there for the next arrivals.
    await asyncio.gather(first.release("address:crowd", "early"), second.release("address:crowd", "two-0"))
    assert await second.acquire("address:crowd", "late-1", 300)
    assert await first.acquire("address:crowd", "late-2", 300)
    assert not await first.acquire("address:crowd", "late-3", 300)


async def test_redis_outage_lets_connections_in():
    # Nothing listens on port 1: the limits must not turn a Redis outage into refused viewers.
    registry = RedisConnections("redis://127.0.0.1:1/0", "collab-test-outage")
    assert await registry.acquire("address:x", "a", 1)
    assert await registry.acquire("address:x", "b", 1)
    await registry.release("address:x", "a")


# The client's address


def scope(peer, forwarded=None):
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return {"client": (peer, 5000), "headers": headers}


def test_forwarded_for_is_ignored_without_trusted_proxies(settings):
    settings.COLLAB_TRUSTED_PROXIES = []
    assert client_address(scope("10.0.0.5", "1.2.3.4")) == "10.0.0.5"


def test_forwarded_for_names_the_client_behind_a_trusted_proxy(settings):
    settings.COLLAB_TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_address(scope("10.0.0.5", "1.2.3.4")) == "1.2.3.4"
    # A client cannot pose as another by sending its own X-Forwarded-For: the rightmost untrusted hop counts.
    assert client_address(scope("10.0.0.5", "6.6.6.6, 1.2.3.4, 10.0.0.7")) == "1.2.3.4"
    # Only the proxy's own word counts: a direct client's header is ignored.
    assert client_address(scope("192.0.2.1", "1.2.3.4")) == "192.0.2.1"
    assert client_address(scope("10.0.0.5", "not-an-address")) == "10.0.0.5"
    assert client_address(scope("10.0.0.5")) == "10.0.0.5"
    assert client_address({"headers": []}) is None
