"""Every refusal still happens in a crowd (issue 16), through real daphne processes.

A crowd of a few hundred sockets arrives at once, mixed with those that must be refused: a
foreign origin, more sockets than an address or a token may hold, a token revoked and a
session ended while the crowd signs in. Each socket's course (what the server sent it and how
it closed) is told in a few words by `Arrival.course`, so each test says which courses it
allows and how many of each, whatever the interleaving.
"""

import asyncio
import base64
import contextlib
import json
import secrets
import time
import urllib.request
from collections import Counter

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.clients import first_message
from tests.servers import child_env, create_superuser

pytestmark = pytest.mark.integration

WAIT = 60  # seconds one socket may wait for an answer on a loaded machine
STAFF_PASSWORD = secrets.token_urlsafe(16)
# A crowd's sign-ins queue on one database thread: no socket may time out (E1012) waiting its turn.
PATIENT = {"COLLAB_AUTH_TIMEOUT": "300"}

SERVED = ("init", "get-html", "open")
REFUSED_FOR_ADDRESS = ("session-closed: Too many connections from this address", "close 4429")
# The HTTP connection limit (daphne_adaptations.py) counts a handshake from its accept to its head:
# a crowd from one address can reach it before the sockets are counted.
REFUSED_FOR_ADDRESS_AT_HANDSHAKE = ("HTTP 429",)
REFUSED_FOR_TOKEN = ("session-closed: Too many connections with this token", "close 4429")
REVOKED_AT_SIGN_IN = ("E1003 init", "session-closed: Invalid token", "close 4401")
ENDED_AT_SIGN_IN = ("E1001 init", "session-closed: Session not found", "close 4401")
ENDED = "Session ended successfully."


class Arrival:
    """One socket of a crowd and what the server did with it."""

    def __init__(self, url, message, origin=None):
        self.url = url
        self.message = message
        self.origin = origin
        self.status = None  # the HTTP status of a refused handshake
        self.messages = []  # what the server sent, presence left out
        self.websocket = None
        self.closed = False

    async def arrive(self):
        """Open the socket and sign in; return once signed in (the document read) or closed."""
        try:
            self.websocket = await connect(
                self.url, origin=self.origin, proxy=None, max_size=None, open_timeout=WAIT
            )
        except InvalidStatus as refused:
            self.status = refused.response.status_code
            self.closed = True
            return self
        # Refused before it could speak, what it was told is still there to read.
        with contextlib.suppress(ConnectionClosed):
            await self.websocket.send(json.dumps(self.message))
        await self.read_until(lambda message: message.get("Action") == "get-html")
        return self

    async def read_until(self, accept, timeout=WAIT):
        """Record messages up to the first `accept` takes, or to the close; fail if neither comes in time."""
        try:
            async with asyncio.timeout(timeout):
                while not self.closed:
                    try:
                        message = json.loads(await self.websocket.recv())
                    except ConnectionClosed:
                        self.closed = True
                        return
                    if message.get("Action") != "presence":
                        self.messages.append(message)
                        if accept(message):
                            return
        except TimeoutError:
            pytest.fail(f"no answer within {timeout} s: {self.course}")

    async def until_closed(self, timeout=WAIT):
        """Record everything up to the server's close."""
        await self.read_until(lambda message: False, timeout)

    async def answers_ping(self):
        """Whether the socket is still served: a ping gets its pong."""
        await self.websocket.send(json.dumps({"Action": "ping"}))
        await self.read_until(lambda message: message.get("Action") == "pong")
        return not self.closed and self.messages.pop()["Action"] == "pong"

    async def close(self):
        if self.websocket is not None:
            await self.websocket.close()

    @property
    def signed_in(self):
        return any(message.get("Action") == "init" for message in self.messages)

    @property
    def course(self):
        """What happened, in a few words: ("init", "get-html", "open"), ("E1003 init", …, "close 4401")."""
        if self.status is not None:
            return (f"HTTP {self.status}",)
        steps = []
        for message in self.messages:
            action = message.get("Action")
            if message.get("Success") is False:
                steps.append(f"{message.get('ErrorCode')} {action}")
            elif action in ("session-closed", "end-session"):
                steps.append(f"{action}: {message.get('Content')}")
            else:
                steps.append(action)
        steps.append(f"close {self.websocket.close_code}" if self.closed else "open")
        return tuple(steps)


def viewer(server, session, token, origin=None):
    """An arrival signing in as a version 2 viewer with this token."""
    return Arrival(server.ws_url, first_message({**session, "client_token": token}, "client"), origin)


async def crowd(arrivals):
    """Let these sockets arrive all at once; them, once each is signed in or closed."""
    await asyncio.gather(*(arrival.arrive() for arrival in arrivals))
    return arrivals


def courses(arrivals):
    return Counter(arrival.course for arrival in arrivals)


def or_reset(allowed):
    """These courses, and each one the server ends, cut short by a reset.

    autobahn aborts a socket whose client has not answered the server's close frame within a
    second (its closeHandshakeTimeout, which daphne leaves as it is), and the client's kernel then
    drops what the client had not read yet: a test process driving hundreds of sockets on a
    loaded machine can be that slow. Such a socket was closed all the same; only its last words
    are lost.
    """
    cut_short = set()
    for course in allowed:
        *steps, end = course
        if end.startswith("close "):
            cut_short.update((*steps[:kept], "close 1006") for kept in range(len(steps) + 1))
    return {*allowed, *cut_short}


def assert_only(arrivals, *allowed):
    """Every socket took one of the `allowed` courses (or one cut short by a reset); how many took each."""
    seen = courses(arrivals)
    assert set(seen) <= or_reset(allowed), seen
    return seen


async def close_all(arrivals):
    await asyncio.gather(*(arrival.close() for arrival in arrivals), return_exceptions=True)


async def wait_for(condition, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def start(daphne, count, redis, **env):
    """`count` daphne processes, on the real Redis (shared limits and broadcasts) if `redis` names it."""
    env = {**PATIENT, **env, **(redis or {})}
    return await asyncio.gather(*(asyncio.to_thread(daphne, **env) for _ in range(count)))


@pytest.fixture(params=["one process", "two processes on Redis"])
def layout(request):
    """(number of daphne processes, their Redis settings or None)."""
    if request.param == "one process":
        return 1, None
    url = request.getfixturevalue("redis_url")
    return 2, {"REDIS_URL": url, "COLLAB_REDIS_PREFIX": request.getfixturevalue("redis_prefix")}


@pytest.fixture(scope="module")
def staff(integration_database_url):
    """A superuser in the database the module's daphne processes share, for the REST API."""
    create_superuser(child_env({"DATABASE_URL": integration_database_url}), STAFF_PASSWORD)


def api(server, method, path, body=None, bearer=None):
    """Call the REST API as a script does (staff's Basic credentials unless a `bearer` token); the JSON."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{server.url}/api/{path}", data=data, method=method)  # noqa: S310
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if bearer is not None:
        request.add_header("Authorization", f"Bearer {bearer}")
    else:
        credentials = base64.b64encode(f"staff:{STAFF_PASSWORD}".encode()).decode()
        request.add_header("Authorization", f"Basic {credentials}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=WAIT) as response:
        text = response.read()
    return json.loads(text) if text else None


async def issue_viewer_token(server, session):
    """A second viewer token of the session, through the API: (its id, its secret)."""
    issued = await asyncio.to_thread(
        api, server, "POST", f"sessions/{session['id']}/tokens/", {"role": "client", "expires_in": 0}
    )
    return issued["id"], issued["token"]


# A foreign origin


async def test_foreign_origins_in_a_crowd_are_refused_at_the_handshake(daphne):
    (server,) = await start(daphne, 1, None)
    session = await asyncio.to_thread(server.create_session)
    token = session["client_token"]
    foreign = ["http://evil.example", f"https://127.0.0.1:{server.port}"]  # another site; another scheme
    arrivals = [viewer(server, session, token, foreign[n % 2]) for n in range(40)]
    arrivals += [viewer(server, session, token, server.url if n % 2 else None) for n in range(260)]
    await crowd(arrivals)
    try:
        assert courses(arrivals[:40]) == {("HTTP 403",): 40}
        assert courses(arrivals[40:]) == {SERVED: 260}
    finally:
        await close_all(arrivals)


# The limits


async def refill(make, places, refused):
    """Fill `places` freed places one socket at a time (a close is released soon, not at once); the new ones.

    A socket that comes before its place is free must be `refused` so (or cut short by a reset).
    """
    filled = []
    while len(filled) < places:
        deadline = time.monotonic() + WAIT
        while True:
            (arrival,) = await crowd([make()])
            if arrival.course == SERVED:
                filled.append(arrival)
                break
            assert arrival.course in or_reset({refused}), arrival.course
            assert time.monotonic() < deadline, "a freed place was never given back"
            await asyncio.sleep(0.1)
    return filled


async def test_an_address_holds_its_limit_in_a_crowd_and_no_more(daphne, layout):
    limit, extra = 100, 150
    servers = await start(daphne, *layout, COLLAB_MAX_CONNECTIONS_PER_ADDRESS=str(limit))
    session = await asyncio.to_thread(servers[0].create_session)

    def sockets(count):
        return [viewer(servers[n % len(servers)], session, session["client_token"]) for n in range(count)]

    arrivals, more, later = sockets(limit + extra), sockets(50), []
    try:
        await crowd(arrivals)
        seen = assert_only(arrivals, SERVED, REFUSED_FOR_ADDRESS, REFUSED_FOR_ADDRESS_AT_HANDSHAKE)
        assert seen[SERVED] == limit, seen
        served = [arrival for arrival in arrivals if arrival.course == SERVED]
        assert all(await asyncio.gather(*(arrival.answers_ping() for arrival in served)))
        # A crowd smaller than the limit passes the HTTP count and is refused by the sockets' own.
        await crowd(more)
        assert_only(more, REFUSED_FOR_ADDRESS)
        # Ten leave; ten others take their places, and then the address is full again.
        await close_all(served[:10])
        later = await refill(lambda: sockets(len(servers))[-1], 10, REFUSED_FOR_ADDRESS)
        later += await crowd(sockets(len(servers)))
        assert_only(later[10:], REFUSED_FOR_ADDRESS)
    finally:
        await close_all(arrivals + more + later)


async def test_a_token_holds_its_limit_in_a_crowd_and_no_more(daphne, layout, staff):
    limit, extra, others = 100, 150, 50
    servers = await start(daphne, *layout, COLLAB_MAX_CONNECTIONS_PER_TOKEN=str(limit))
    session = await asyncio.to_thread(servers[0].create_session)
    _, other_token = await issue_viewer_token(servers[0], session)
    token = session["client_token"]
    limited = [viewer(servers[n % len(servers)], session, token) for n in range(limit + extra)]
    unlimited = [viewer(servers[n % len(servers)], session, other_token) for n in range(others)]
    mixed = [*limited, *unlimited]
    secrets.SystemRandom().shuffle(mixed)
    later = []
    try:
        await crowd(mixed)
        assert assert_only(limited, SERVED, REFUSED_FOR_TOKEN)[SERVED] == limit
        # The other token of the same session is counted apart.
        assert courses(unlimited) == {SERVED: others}
        served = [arrival for arrival in limited if arrival.course == SERVED]
        assert all(await asyncio.gather(*(arrival.answers_ping() for arrival in served)))
        await close_all(served[:10])
        later = await refill(lambda: viewer(servers[-1], session, token), 10, REFUSED_FOR_TOKEN)
        later += await crowd([viewer(server, session, token) for server in servers])
        assert_only(later[10:], REFUSED_FOR_TOKEN)
    finally:
        await close_all(mixed + later)


# A storm interrupted

# Only the broadcast may close a socket of a revoked token here: the sweep, which repairs a
# missed one, comes far too late to pass for it.
NO_SWEEP = {"COLLAB_SWEEP_INTERVAL": "3600"}
CLOSED_WHEN_REVOKED = ("init", "get-html", "E1003 Unknown", "session-closed: Invalid token", "close 4401")
# Signed in before the revocation reached it: closed at once (its document perhaps not sent yet,
# or not even greeted, when it was still joining); checked after it: refused.
REVOKED_DURING_THE_STORM = {
    CLOSED_WHEN_REVOKED,
    CLOSED_WHEN_REVOKED[:1] + CLOSED_WHEN_REVOKED[2:],
    CLOSED_WHEN_REVOKED[2:],
    REVOKED_AT_SIGN_IN,
}
CLOSED_WHEN_ENDED = ("init", "get-html", f"end-session: {ENDED}", f"session-closed: {ENDED}", "close 1000")
ENDED_DURING_THE_STORM = {
    CLOSED_WHEN_ENDED,
    CLOSED_WHEN_ENDED[:1] + CLOSED_WHEN_ENDED[2:],
    CLOSED_WHEN_ENDED[2:],
    ENDED_AT_SIGN_IN,
}


async def storm(make, trigger, first=100, pace=2, most_early=250):
    """Sockets `make(n)` keep arriving while `trigger()` runs; them, once each is signed in or closed.

    `first` arrive at once, and the trigger fires as soon as one of them has signed in; `pace`
    more arrive every 10 ms until it returns (or `most_early` have come).
    """
    made, arriving = [], []

    def launch(count):
        batch = [make(len(made) + n) for n in range(count)]
        made.extend(batch)
        arriving.extend(asyncio.ensure_future(arrival.arrive()) for arrival in batch)
        return batch

    try:
        early = launch(first)
        await wait_for(lambda: any(arrival.signed_in for arrival in early))
        triggered = asyncio.ensure_future(trigger())
        while not triggered.done() and len(early) < most_early:
            early += launch(pace)
            await asyncio.sleep(0.01)  # a steady stream, however long the trigger takes
        await triggered
    finally:
        await asyncio.gather(*arriving)
    return early


def with_token(arrivals, token):
    return [arrival for arrival in arrivals if arrival.message["Token"] == token]


def revoke(server, session, token_id):
    """A coroutine function revoking a token through the API of `server`."""
    path = f"sessions/{session['id']}/tokens/{token_id}/"
    return lambda: asyncio.to_thread(api, server, "DELETE", path)


async def test_a_token_revoked_during_a_storm_closes_its_sockets_and_refuses_its_late_ones(
    daphne, layout, staff
):
    servers = await start(daphne, *layout, **NO_SWEEP)
    session = await asyncio.to_thread(servers[0].create_session)
    revoked_id, revoked = await issue_viewer_token(servers[0], session)
    kept = session["client_token"]
    # Signed in on every server before the storm: they hear of the revocation through the layer.
    before = await crowd([viewer(servers[n % len(servers)], session, revoked) for n in range(60)])
    assert courses(before) == {SERVED: len(before)}

    def make(n):
        # One in four with the session's other token, on every server. The storm of the token to
        # revoke stays on the server that revokes it: on another, a socket signing in just then
        # is missed (test_a_socket_signing_in_on_another_server_as_its_token_is_revoked_is_closed).
        if n % 4 == 3:
            return viewer(servers[n % len(servers)], session, kept)
        return viewer(servers[0], session, revoked)

    early = await storm(make, revoke(servers[0], session, revoked_id))
    late = [viewer(servers[n % len(servers)], session, revoked) for n in range(100)]
    late += [viewer(servers[n % len(servers)], session, kept) for n in range(40)]
    everyone = before + early + late
    try:
        await crowd(late)
        await asyncio.gather(*(arrival.until_closed() for arrival in with_token(everyone, revoked)))
        assert_only(before, CLOSED_WHEN_REVOKED)
        assert_only(with_token(early, revoked), *REVOKED_DURING_THE_STORM)
        assert_only(with_token(late, revoked), REVOKED_AT_SIGN_IN)
        # The session's other token is untouched.
        others = with_token(everyone, kept)
        assert courses(others) == {SERVED: len(others)}
        assert all(await asyncio.gather(*(arrival.answers_ping() for arrival in others)))
    finally:
        await close_all(everyone)


async def revoked_during_a_storm_elsewhere(revoking, signing_in, session):
    """Revoke a token through `revoking` while a dense storm signs in with it on `signing_in`; the courses.

    A socket the broadcast missed is found without waiting for it: once a second revocation has
    closed a witness on the same server, that server's hub has handled the first, so a socket of
    the first token still open there is asked for get-html, and the action's own check refuses it.
    """
    token_id, token = await issue_viewer_token(revoking, session)
    witness_id, witness_token = await issue_viewer_token(revoking, session)
    early = await storm(
        lambda n: viewer(signing_in, session, token),
        revoke(revoking, session, token_id),
        first=20,
        pace=10,
        most_early=2000,
    )
    (witness,) = await crowd([viewer(signing_in, session, witness_token)])
    try:
        await revoke(revoking, session, witness_id)()
        await witness.until_closed()
        assert witness.course in or_reset({CLOSED_WHEN_REVOKED}), witness.course
        for arrival in early:
            if not arrival.closed:
                with contextlib.suppress(ConnectionClosed):
                    await arrival.websocket.send(json.dumps({"Action": "get-html"}))
        await asyncio.gather(*(arrival.until_closed() for arrival in early))
        return courses(early)
    finally:
        await close_all([*early, witness])


@pytest.mark.redis
async def test_a_socket_signing_in_on_another_server_as_its_token_is_revoked_is_closed(
    daphne, redis_url, redis_prefix, staff
):
    redis = {"REDIS_URL": redis_url, "COLLAB_REDIS_PREFIX": redis_prefix}
    revoking, signing_in = await start(daphne, 2, redis, **NO_SWEEP)
    session = await asyncio.to_thread(revoking.create_session)
    # Whether a socket is signing in at that very moment is chance: three storms make it near certain.
    rounds = [await revoked_during_a_storm_elsewhere(revoking, signing_in, session) for _ in range(3)]
    # No reset allowed here: a missed socket cut short would look like one closed at once.
    missed = [
        {course: n for course, n in seen.items() if course not in REVOKED_DURING_THE_STORM} for seen in rounds
    ]
    assert missed == [{}, {}, {}]


async def test_a_session_ended_during_a_storm_closes_everyone_and_refuses_late_arrivals(daphne, layout):
    servers = await start(daphne, *layout)
    session = await asyncio.to_thread(servers[0].create_session)

    def make(n):
        return viewer(servers[n % len(servers)], session, session["client_token"])

    async def end():
        path = f"sessions/{session['id']}/end/"
        await asyncio.to_thread(api, servers[0], "POST", path, bearer=session["word_token"])

    early = await storm(make, end)
    late = [make(n) for n in range(150)]
    try:
        await crowd(late)
        # A socket that joins its hub after the news is closed by the ended check that follows
        # (COLLAB_ENDED_CHECK_INTERVAL), with the same frames.
        await asyncio.gather(*(arrival.until_closed() for arrival in early + late))
        assert_only(early, *ENDED_DURING_THE_STORM)
        assert_only(late, ENDED_AT_SIGN_IN)
    finally:
        await close_all(early + late)
