"""Shared fixtures; the integration ones are opt-in, so plain pytest-django tests keep their own database."""

import asyncio
import os
import secrets
from urllib.parse import urlsplit

import pytest

from tests.servers import Server, child_env, run_manage

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(autouse=True, scope="session")
def database_connections_closed_after_use():
    """In-process tests close connections after each use, as COLLAB_DB_CONN_MAX_AGE=0 does.

    Tests flush the database between tests; a connection kept open by the consumers'
    database thread could hold a lock that the flush waits on. Servers started by the
    integration tests keep the deployed default.
    """
    from django.db import connections

    for alias in connections:
        connections.settings[alias]["CONN_MAX_AGE"] = 0


@pytest.fixture
def make_session():
    """`make_session(title)`: a new active session with its two plain-text tokens.

    A dict: "id", the "word" and "client" secrets (so `tests.sockets.join(session, role)` can use
    it), and the "model". The test needs database access, as for any other query.
    """
    from sessions_app.services import do_create_session

    def make(title="Test session"):
        created, word, client = do_create_session(title)
        return {"id": created.id, "word": word, "client": client, "model": created}

    return make


@pytest.fixture
def session(request, make_session):
    """An active session with its two plain-text tokens, as `make_session` gives it.

    Titled by the test's `session_title` mark when a test checks the title, e.g. a module's
    `pytestmark = pytest.mark.session_title("Quarterly report")`.
    """
    marker = request.node.get_closest_marker("session_title")
    return make_session(*marker.args) if marker else make_session()


@pytest.fixture
def fast_password_hashing(settings):
    """MD5 for passwords: logins and HTTP Basic check them, and the real hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def own_cache_keys(settings):
    """Cache keys of this test alone: failed sign-ins and API throttles never carry over to the next test."""
    settings.CACHES = {
        name: {**config, "KEY_PREFIX": f"collab-test-{secrets.token_hex(6)}"}
        for name, config in settings.CACHES.items()
    }


@pytest.fixture
def own_redis_prefix(settings):
    """Channel-layer and connection-count keys of this test alone, when the suite runs with REDIS_URL."""
    settings.COLLAB_REDIS_PREFIX = f"collab-test-{secrets.token_hex(6)}"


@pytest.fixture(scope="module")
def integration_database_url(tmp_path_factory):
    """A migrated database the daphne processes and this test module share, dropped afterwards.

    SQLite by default; a throwaway database on the same server when DATABASE_URL names PostgreSQL.
    """
    main_url = os.environ.get("DATABASE_URL", "")
    if not main_url.startswith("postgres"):
        url = f"sqlite:///{tmp_path_factory.mktemp('integration-db') / 'db.sqlite3'}"
        migrate(url)
        yield url
        return
    import psycopg

    name = f"collab_it_{secrets.token_hex(6)}"
    with psycopg.connect(main_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        url = urlsplit(main_url)._replace(path=f"/{name}").geturl()
        migrate(url)
        yield url
    finally:
        with psycopg.connect(main_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(database_url):
    run_manage(child_env({"DATABASE_URL": database_url}), "migrate", "--no-input", timeout=300)


@pytest.fixture
def daphne(integration_database_url):
    """Start daphne processes on the module's database: `daphne(REDIS_URL=…)`; all stopped afterwards."""
    servers = []

    def start(**env):
        server = Server({"DATABASE_URL": integration_database_url, **env})
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
async def redis_servers(redis_url, redis_prefix, daphne):
    """Two daphne processes sharing one database and the real Redis."""
    env = {"REDIS_URL": redis_url, "COLLAB_REDIS_PREFIX": redis_prefix}
    return await asyncio.to_thread(daphne, **env), await asyncio.to_thread(daphne, **env)


@pytest.fixture(scope="module")
def shared_daphne(integration_database_url):
    """One daphne process for the tests of a module that need nothing special from their server."""
    server = Server({"DATABASE_URL": integration_database_url})
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def redis_url():
    """The real Redis (REDIS_URL, or the local default); a test that needs it fails when it is not there."""
    import redis

    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(
            f"Redis at {url} does not answer PING ({error}); start it or set REDIS_URL", pytrace=False
        )
    finally:
        client.close()
    return url


@pytest.fixture
def redis_prefix():
    """A channel-layer prefix of this test alone, so concurrent runs never hear each other."""
    return f"collab-test-{secrets.token_hex(6)}"


# Debian's Chromium: Playwright cannot download its own browsers here.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-features=LocalNetworkAccessChecks",
]


@pytest.fixture(scope="module")
def chromium():
    """A headless Chromium for one test module, driven by Playwright's sync API."""
    import shutil

    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium (`make test` does it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
