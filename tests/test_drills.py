"""Failure drills: real daphne processes, real Redis and PostgreSQL, broken on purpose under live sessions.

Each drill checks the two promises of docs/RELIABILITY.md: no acknowledged update is lost, and
every viewer (which reconnects with LastVersion, as the viewer page does) ends on the latest
stored version once the broken part is back.
"""

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.clients import Publisher, Viewer
from tests.documents import flat_opc
from tests.servers import Server, child_env, free_port, run_manage

pytestmark = [pytest.mark.drill, pytest.mark.integration]

POSTGRES_URL = os.environ.get("COLLAB_DRILL_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
CONVERGE = 30  # seconds viewers may take to catch up once everything is back


# Parts the drills break


class RedisServer:
    """A redis-server of the drill's own on a free port, so the machine's Redis is never touched."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis(port=self.port, socket_connect_timeout=0.5).ping():
                    return self
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


class TcpProxy:
    """A TCP relay the drill can cut (every connection dropped, new ones refused) and restore."""

    def __init__(self, upstream_host, upstream_port):
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.server = None
        self.pipes = set()

    async def start(self):
        self.server = await asyncio.start_server(self.relay, "127.0.0.1", self.port)
        return self

    async def relay(self, reader, writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.ensure_future(self.pipe(source, sink, (writer, upstream_writer)))
            self.pipes.add(task)
            task.add_done_callback(self.pipes.discard)

    async def pipe(self, source, sink, writers):
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for writer in writers:
                writer.close()

    async def cut(self):
        self.server.close()
        await self.server.wait_closed()
        for task in list(self.pipes):
            task.cancel()
        await asyncio.sleep(0.1)

    async def restore(self):
        await self.start()


# Fixtures


@pytest.fixture(scope="module")
def drill_database():
    """A migrated throwaway PostgreSQL database of this module, dropped afterwards."""
    name = f"collab_drill_{secrets.token_hex(6)}"
    try:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is not reachable: {error}", pytrace=False)
    url = urlsplit(POSTGRES_URL)._replace(path=f"/{name}").geturl()
    try:
        run_manage(child_env({"DATABASE_URL": url}), "migrate", "--no-input", timeout=300)
        yield url
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def servers(drill_database):
    """Start daphne processes on the drill database: `await servers(REDIS_URL=…)`; all stopped afterwards."""
    started = []

    async def start(**env):
        server = Server({"DATABASE_URL": drill_database, "COLLAB_MAX_REVISIONS": "0", **env})
        started.append(server)
        # In a thread: a TCP proxy of the drill may have to relay the server's start-up queries.
        return await asyncio.to_thread(server.start)

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def own_redis():
    server = RedisServer().start()
    yield server
    server.stop()


# Checks


def stored_state(database_url, session_id):
    """(session version, session html, newest revision version, that revision's html)."""
    with psycopg.connect(database_url) as connection:
        version, html = connection.execute(
            "SELECT version, html FROM sessions_app_collabsession WHERE id = %s", [session_id]
        ).fetchone()
        revision = connection.execute(
            "SELECT version, html FROM sessions_app_revision WHERE session_id = %s"
            " ORDER BY version DESC LIMIT 1",
            [session_id],
        ).fetchone()
        versions = [
            row[0]
            for row in connection.execute(
                "SELECT version FROM sessions_app_revision WHERE session_id = %s ORDER BY version",
                [session_id],
            )
        ]
    return version, html, revision, versions


def assert_consistent(database_url, session_id, publisher):
    """Not half-written, and every acknowledged version is stored with its text; the newest version."""
    version, html, revision, versions = stored_state(database_url, session_id)
    assert revision is not None and revision == (version, html)
    assert versions == list(range(1, version + 1))
    for outcome in publisher.acknowledged:
        assert outcome.version in versions
    return version


async def converge(viewers, version):
    """Every viewer reaches `version`; a helpful failure names those that did not."""
    reached = await asyncio.gather(*(viewer.wait_for_version(version, CONVERGE) for viewer in viewers))
    behind = [
        (viewer.version, viewer.closes[-5:]) for viewer, ok in zip(viewers, reached, strict=True) if not ok
    ]
    assert not behind, f"viewers behind version {version}: {behind}"
    for viewer in viewers:
        assert not viewer.problems, viewer.problems


async def publish_until_acknowledged(publisher, label, seconds):
    """Keep sending updates, as the add-in does on each change, until one is confirmed; that Outcome."""
    deadline = time.monotonic() + seconds
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        text = f"{label} {attempt}"
        outcome = await publisher.publish(flat_opc(text), text)
        if outcome.version is not None:
            return outcome
        await asyncio.sleep(0.3)
    pytest.fail(f"no update acknowledged within {seconds} s: {publisher.outcomes[-5:]}")


def health(server):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{server.url}/healthz", timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


async def live_session_on_two_servers(first, second, title, publisher_timeout):
    """A session made on `first`, three viewers preferring each server and a publisher preferring
    `first`, all on its first acknowledged update: (session, viewers, publisher, that Outcome)."""
    session = await asyncio.to_thread(first.create_session, title)
    viewers = [Viewer([first.ws_url, second.ws_url], session).start() for _ in range(3)]
    viewers += [Viewer([second.ws_url, first.ws_url], session).start() for _ in range(3)]
    publisher = Publisher([first.ws_url, second.ws_url], session, timeout=publisher_timeout)
    before = await publish_until_acknowledged(publisher, "before", 20)
    await converge(viewers, before.version)
    return session, viewers, publisher, before


async def stop_all(viewers, publisher):
    await asyncio.gather(*(viewer.stop() for viewer in viewers))
    await publisher.disconnect()


# The drills


async def test_redis_restart_publishing_resumes_and_viewers_catch_up(servers, own_redis, drill_database):
    env = {"REDIS_URL": own_redis.url, "COLLAB_REDIS_PREFIX": f"drill-{secrets.token_hex(4)}"}
    first, second = await servers(**env), await servers(**env)
    session, viewers, publisher, before = await live_session_on_two_servers(
        first, second, "redis drill", publisher_timeout=5
    )

    await asyncio.to_thread(own_redis.stop)
    outage = await publisher.publish(flat_opc("during the outage"), "during the outage")
    # Stored, and told to the sockets of the publisher's own process, which need no Redis for
    # it; the other process's hear of it once Redis is back, with no further update: their
    # hub subscribes to the version notices again and catches up from the database.
    assert outage.version == before.version + 1
    assert health(first) == 503
    await asyncio.sleep(1)
    await asyncio.to_thread(own_redis.start)
    await converge(viewers, outage.version)

    after = await publish_until_acknowledged(publisher, "after", 30)
    assert after.version > before.version
    await converge(viewers, after.version)
    assert assert_consistent(drill_database, session["id"], publisher) == after.version
    assert all(viewer.html == "<p>" + after.text + "</p>" for viewer in viewers)
    # Viewers' sockets do not depend on Redis: each process's session hub rejoins the group by
    # itself and sends what they missed, so none was closed.
    assert [viewer.closes for viewer in viewers] == [[]] * len(viewers)
    await stop_all(viewers, publisher)


async def test_daphne_killed_during_a_conversion(servers, redis_url, redis_prefix, drill_database):
    env = {"REDIS_URL": redis_url, "COLLAB_REDIS_PREFIX": redis_prefix, "COLLAB_CONVERSION_WORKERS": "1"}
    doomed, survivor = await servers(**env), await servers(**env)
    session, viewers, publisher, before = await live_session_on_two_servers(
        doomed, survivor, "kill drill", publisher_timeout=10
    )

    # The process dies while the update converts: its worker is held still so the kill lands mid-way.
    workers = conversion_workers(doomed.process.pid)
    for worker in workers:
        os.kill(worker, signal.SIGSTOP)
    in_flight = asyncio.ensure_future(publisher.publish(flat_opc("never stored"), "never stored"))
    await asyncio.sleep(0.5)
    await asyncio.to_thread(doomed.kill)
    for worker in workers:
        os.kill(worker, signal.SIGKILL)  # orphans of the dead process
    assert (await in_flight).error == "disconnected"

    after = await publish_until_acknowledged(publisher, "after the kill", 30)
    await converge(viewers, after.version)
    assert assert_consistent(drill_database, session["id"], publisher) == after.version
    _, html, _, _ = stored_state(drill_database, session["id"])
    assert "never stored" not in html
    await stop_all(viewers, publisher)


async def test_database_outage_refuses_updates_then_recovers(servers, drill_database):
    database = urlsplit(drill_database)
    proxy = await TcpProxy(database.hostname, database.port or 5432).start()
    proxied = database._replace(netloc=f"{database.username}@127.0.0.1:{proxy.port}").geturl()
    server = await servers(DATABASE_URL=proxied)
    session = await asyncio.to_thread(server.create_session, "database drill")
    viewers = [Viewer([server.ws_url], session).start() for _ in range(3)]
    publisher = Publisher([server.ws_url], session, timeout=15)
    before = await publish_until_acknowledged(publisher, "before", 20)
    await converge(viewers, before.version)

    await proxy.cut()
    refused = await publisher.publish(flat_opc("while the database is away"), "while the database is away")
    assert refused.error == "E2001", refused
    assert refused.detail == "Error processing message: database unavailable, update not saved"
    assert await asyncio.to_thread(health, server) == 503
    late_viewer = Viewer([server.ws_url], session).start()
    await asyncio.sleep(1)
    assert late_viewer.version == -1 and 4500 in late_viewer.closes

    await proxy.restore()
    after = await publish_until_acknowledged(publisher, "after", 20)
    assert after.version == before.version + 1  # the refused update was not stored
    await converge([*viewers, late_viewer], after.version)
    assert await asyncio.to_thread(health, server) == 200
    assert assert_consistent(drill_database, session["id"], publisher) == after.version
    await stop_all([*viewers, late_viewer], publisher)
    await proxy.cut()


def conversion_workers(pid):
    """The pids of a daphne process's conversion workers (multiprocessing spawn children)."""
    children = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            children.update(int(child) for child in (task / "children").read_text().split())
    workers = []
    for child in children:
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
            if b"spawn_main" in command and b"resource_tracker" not in command:
                workers.append(child)
    return sorted(workers)


@pytest.mark.parametrize("fault", ["hung", "killed"])
async def test_conversion_worker_hung_or_killed(servers, fault):
    server = await servers(COLLAB_CONVERSION_WORKERS="1", COLLAB_CONVERSION_TIMEOUT="3")
    session = await asyncio.to_thread(server.create_session, "worker drill")
    viewer = Viewer([server.ws_url], session).start()
    publisher = Publisher([server.ws_url], session, timeout=20)
    first = await publisher.publish(flat_opc("first"), "first")
    assert first.version == 1
    [worker] = conversion_workers(server.process.pid)

    # A stopped worker takes the next job and never answers.
    os.kill(worker, signal.SIGSTOP)
    pending = asyncio.ensure_future(publisher.publish(flat_opc("lost"), "lost"))
    if fault == "killed":
        await asyncio.sleep(0.5)
        os.kill(worker, signal.SIGKILL)
    outcome = await pending
    assert outcome.error == "E2002", outcome
    assert outcome.seconds < (2 if fault == "killed" else 10)

    second = await publisher.publish(flat_opc("second"), "second")
    assert second.version == 2
    replacement = conversion_workers(server.process.pid)
    assert replacement and worker not in replacement
    assert await viewer.wait_for_version(2, CONVERGE) and viewer.html == "<p>second</p>"
    await stop_all([viewer], publisher)
