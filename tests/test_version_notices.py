"""Version notices between processes (sessions_app/version_notices.py), on the real Redis.

Two RedisNotices in one test stand for two server processes: each has its own origin and its
own subscription connection.
"""

import asyncio
import logging

import pytest
import redis.asyncio

from sessions_app.version_notices import LocalNotices, RedisNotices, encode_notice

pytestmark = pytest.mark.redis

HTML = "<p>Hello</p>"
PUBLISHED_AT = "2026-12-01T11:00:00Z"


class Hub:
    """A listener as a session hub is one: what it heard, in order."""

    def __init__(self, session_id="s1"):
        self.loop = asyncio.get_running_loop()
        self.session_id = session_id
        self.heard = []
        self.changed = asyncio.Event()

    async def version_heard(self, version, html, published_at):
        self.heard.append((version, html, published_at))
        self.changed.set()

    async def notices_missed(self):
        self.heard.append("missed")
        self.changed.set()

    async def hears(self, count, seconds=10):
        """Wait until `count` things were heard; then what they were."""
        async with asyncio.timeout(seconds):
            while len(self.heard) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.heard


@pytest.fixture
async def processes(redis_url, redis_prefix):
    """Two processes' notices on the real Redis, and a plain client to it."""
    first, second = RedisNotices(redis_url, redis_prefix), RedisNotices(redis_url, redis_prefix)
    client = redis.asyncio.Redis.from_url(redis_url)
    yield first, second, client
    for notices in (first, second):
        if notices._reader is not None:
            notices._reader.cancel()
    await client.aclose()


async def test_a_notice_reaches_the_other_process_with_its_html(processes):
    here, elsewhere, _ = processes
    hub = Hub()
    await here.subscribe("s1", hub)
    await elsewhere.announce("s1", 1, HTML, PUBLISHED_AT, served_here=True)
    assert await hub.hears(1) == [(1, HTML, PUBLISHED_AT)]


async def test_the_publishing_process_skips_its_notice_only_when_it_served_its_sockets(processes):
    here, _, _ = processes
    hub = Hub()
    await here.subscribe("s1", hub)
    await here.announce("s1", 1, HTML, PUBLISHED_AT, served_here=True)
    # Not served here (the REST API's do_publish_document): this process hears it too.
    await here.announce("s1", 2, HTML, PUBLISHED_AT)
    assert await hub.hears(1) == [(2, HTML, PUBLISHED_AT)]


async def test_long_html_stays_behind(processes, settings):
    settings.COLLAB_NOTICE_HTML_BYTES = 10
    here, elsewhere, _ = processes
    hub = Hub()
    await here.subscribe("s1", hub)
    await elsewhere.announce("s1", 1, "<p>" + "é" * 4 + "</p>", PUBLISHED_AT)  # 15 bytes, 11 characters
    await elsewhere.announce("s1", 2, "<p>ok</p>", PUBLISHED_AT)
    assert await hub.hears(2) == [(1, None, PUBLISHED_AT), (2, "<p>ok</p>", PUBLISHED_AT)]


async def test_a_notice_not_signed_by_this_deployment_is_dropped(processes, settings, caplog):
    here, elsewhere, client = processes
    hub = Hub()
    await here.subscribe("s1", hub)
    channel = here.channel("s1")
    forged = encode_notice(7, PUBLISHED_AT, "<script>alert(1)</script>")
    settings.SECRET_KEY = "another deployment's key"
    with caplog.at_level(logging.WARNING, "sessions_app.version_notices"):
        await client.publish(channel, forged)
        await client.publish(channel, b"x" * 40)  # not even a notice
        await client.publish(channel, b"\xff" * 32 + b'{"origin":"\xff\xfe"}\n')
        await elsewhere.announce("s1", 8, HTML, PUBLISHED_AT)
        assert await hub.hears(1) == [(8, HTML, PUBLISHED_AT)]
    assert [r.message for r in caplog.records].count(
        f"version notice on {channel} dropped: not signed by this deployment, or malformed"
    ) == 3
    assert here.failures == 0


async def test_a_lost_subscription_comes_back_and_its_hubs_catch_up(processes):
    here, elsewhere, client = processes
    hub = Hub()
    await here.subscribe("s1", hub)
    host, port = here._connection._writer.get_extra_info("sockname")[:2]
    await client.execute_command("CLIENT", "KILL", "ADDR", f"{host}:{port}")
    assert await hub.hears(1) == ["missed"]
    assert here.failures == 1
    await elsewhere.announce("s1", 3, HTML, PUBLISHED_AT)
    assert await hub.hears(2) == ["missed", (3, HTML, PUBLISHED_AT)]


async def test_a_session_listened_to_again_at_once_stays_subscribed(processes, redis_url):
    here, elsewhere, client = processes
    first, second = Hub(), Hub()
    await here.subscribe("s1", first)
    # The last listener leaves and a new one comes before Redis has answered the UNSUBSCRIBE:
    # the new one is not told it listens until the SUBSCRIBE after it is confirmed.
    await here.unsubscribe("s1", first)
    await here.subscribe("s1", second)
    await elsewhere.announce("s1", 1, HTML, PUBLISHED_AT)
    assert await second.hears(1) == [(1, HTML, PUBLISHED_AT)]
    assert first.heard == []
    assert dict(await client.pubsub_numsub(here.channel("s1"))) == {here.channel("s1").encode(): 1}


async def test_the_last_listener_gone_the_channel_is_left(processes):
    here, _, client = processes
    hubs = [Hub(), Hub()]
    for hub in hubs:
        await here.subscribe("s1", hub)
    await here.unsubscribe("s1", hubs[0])
    channel = here.channel("s1")
    assert dict(await client.pubsub_numsub(channel)) == {channel.encode(): 1}
    await here.unsubscribe("s1", hubs[1])
    async with asyncio.timeout(5):
        while dict(await client.pubsub_numsub(channel)) != {channel.encode(): 0}:
            await asyncio.sleep(0.01)


async def test_subscribing_without_redis_fails_at_once(redis_prefix):
    unreachable = RedisNotices("redis://127.0.0.1:1/0", redis_prefix)
    hub = Hub()
    with pytest.raises(ConnectionError):
        await unreachable.subscribe("s1", hub)
    assert unreachable.listeners.of("s1") == []
    unreachable._reader.cancel()


async def test_one_process_tells_its_own_hubs_unless_they_were_served(settings):
    settings.COLLAB_NOTICE_HTML_BYTES = 10
    notices, hub = LocalNotices(), Hub()
    await notices.subscribe("s1", hub)
    await notices.announce("s1", 1, HTML, PUBLISHED_AT, served_here=True)
    await notices.announce("s1", 2, "<p>ok</p>", PUBLISHED_AT)
    await notices.announce("s1", 3, HTML, PUBLISHED_AT)  # longer than 10 bytes: read it
    assert await hub.hears(2) == [(2, "<p>ok</p>", PUBLISHED_AT), (3, None, PUBLISHED_AT)]
    await notices.unsubscribe("s1", hub)
    await notices.announce("s1", 4, HTML, PUBLISHED_AT)
    await asyncio.sleep(0.05)
    assert len(hub.heard) == 2
