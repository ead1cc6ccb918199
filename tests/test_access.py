"""Token checks for sockets (one read per check, identical checks waiting together share it) and origins."""

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sessions_app.access import (
    AccessDenied,
    access_session_by_token,
    access_session_by_token_shared,
    origin_allowed,
)
from sessions_app.models import SessionToken, digest_secret
from sessions_app.services import do_create_session, do_end_session, do_revoke_token

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 30  # seconds a test waits for the database thread before it gives up


async def check(session_id, secret, role):
    """The token the shared check grants, or the code it refuses with."""
    try:
        return await access_session_by_token_shared(session_id, secret, role)
    except AccessDenied as denied:
        return denied.code


def test_a_valid_token_is_checked_with_one_read(session):
    with CaptureQueriesContext(connection) as queries:
        token = access_session_by_token(session["id"], session["client"], "client")
    reads = [query["sql"] for query in queries if query["sql"].lstrip().upper().startswith("SELECT")]
    assert len(reads) == 1, reads
    assert token.role == "client" and token.session.id == session["id"]
    assert token.last_used_at is not None


async def test_identical_checks_arriving_together_share_one_query(session):
    tokens = await asyncio.gather(*(check(session["id"], session["client"], "client") for _ in range(20)))
    assert all(token is tokens[0] for token in tokens)
    assert tokens[0].role == "client"
    # Nothing is kept once the query has answered: a later check reads again.
    later = await check(session["id"], session["client"], "client")
    assert later is not tokens[0] and later.pk == tokens[0].pk


async def test_shared_checks_keep_each_refusal_code(session):
    other_id = (await sync_to_async(do_create_session)("Other"))[0].id
    cases = [
        ("no-such-session", session["client"], "client", "E1001"),
        (session["id"], None, "client", "E1002"),
        (session["id"], "", "client", "E1002"),
        (session["id"], "not-a-real-token", "client", "E1003"),
        (session["id"], session["word"], "client", "E1003"),  # a word token cannot join as a viewer
        (other_id, session["client"], "client", "E1003"),  # a token of another session
        (session["id"], ["a", "list"], "client", "E1003"),
        (session["id"], session["client"], "client", "client"),
        (session["id"], session["word"], "word", "word"),
    ]
    results = await asyncio.gather(*(check(*case[:3]) for case in cases for _ in range(3)))
    outcomes = [result if isinstance(result, str) else result.role for result in results]
    assert outcomes == [case[3] for case in cases for _ in range(3)]


async def test_a_refusal_for_the_role_alone_names_the_tokens_role(session):
    other_client = (await sync_to_async(do_create_session)("Other"))[2]

    async def refusal(secret, role):
        with pytest.raises(AccessDenied) as shared:
            await access_session_by_token_shared(session["id"], secret, role)
        return shared.value.code, shared.value.token_role

    assert await refusal(session["client"], "word") == ("E1003", "client")
    assert await refusal(session["word"], "client") == ("E1003", "word")
    # Nothing is said of a token that could not be used anyway.
    assert await refusal("not-a-real-token", "word") == ("E1003", None)
    assert await refusal(other_client, "word") == ("E1003", None)
    revoked = await sync_to_async(SessionToken.objects.get)(digest=digest_secret(session["client"]))
    await sync_to_async(do_revoke_token)(revoked)
    assert await refusal(session["client"], "word") == ("E1003", None)


async def test_a_valid_token_of_an_ended_session_is_refused(session):
    await sync_to_async(do_end_session)(session["id"])
    assert (
        await asyncio.gather(*(check(session["id"], session["client"], "client") for _ in range(3)))
        == ["E1001"] * 3
    )


async def test_a_socket_that_stops_waiting_does_not_cancel_the_others(session):
    waiting = [asyncio.ensure_future(check(session["id"], session["client"], "client")) for _ in range(3)]
    await asyncio.sleep(0)  # all three are queued on one check
    waiting[0].cancel()
    first, second = await asyncio.gather(*waiting[1:])
    assert first is second and first.role == "client"
    with pytest.raises(asyncio.CancelledError):
        await waiting[0]


async def test_a_check_arriving_after_revocation_is_refused_while_an_earlier_one_is_in_flight(session):
    token = await sync_to_async(SessionToken.objects.get)(digest=digest_secret(session["client"]))
    read = threading.Event()
    release = threading.Event()

    def hold_after_reading(execute, sql, params, many, context):
        # The check's reads are done when it notes the token as used: hold it there.
        if sql.lstrip().upper().startswith("UPDATE") and "last_used_at" in sql and not read.is_set():
            read.set()
            release.wait(WAIT)
        return execute(sql, params, many, context)

    # Installed on the connection of the database thread, where the checks run.
    await database_sync_to_async(lambda: connection.execute_wrappers.append(hold_after_reading))()
    try:
        earlier = asyncio.ensure_future(check(session["id"], session["client"], "client"))
        assert await asyncio.to_thread(read.wait, WAIT)
        await sync_to_async(do_revoke_token, thread_sensitive=False)(token)
        later = asyncio.ensure_future(check(session["id"], session["client"], "client"))
        await asyncio.sleep(0)  # the later check arrives while the earlier one is in flight
        release.set()
        # The earlier check read before the revocation; the later one must not take its answer.
        assert (await earlier).pk == token.pk
        assert await later == "E1003"
    finally:
        release.set()
        await database_sync_to_async(lambda: connection.execute_wrappers.remove(hold_after_reading))()


# Origins (PROTOCOL.md section 2): scheme, host and port of the server's own pages


@pytest.fixture
def served_on_plain_http(settings):
    """`make run` at its defaults, also reachable through the machine's address 192.0.2.7."""
    settings.COLLAB_PUBLIC_URL = "http://127.0.0.1:8000"
    settings.COLLAB_ALLOWED_ORIGINS = []
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "192.0.2.7"]


@pytest.mark.django_db(transaction=False)
def test_an_origin_with_the_wrong_scheme_is_refused(served_on_plain_http):
    assert origin_allowed(b"http://127.0.0.1:8000", b"127.0.0.1:8000")
    assert not origin_allowed(b"https://127.0.0.1:8000", b"127.0.0.1:8000")
    assert not origin_allowed(b"https://127.0.0.1:8000")
    assert not origin_allowed(b"https://192.0.2.7:8000", b"192.0.2.7:8000")


@pytest.mark.django_db(transaction=False)
def test_an_origin_equal_to_the_host_header_is_refused_unless_the_host_is_the_servers(
    served_on_plain_http, settings
):
    # DNS rebinding: the attacker's name resolves to this server, so Origin and Host both carry it.
    assert not origin_allowed(b"http://rebind.attacker.example:8000", b"rebind.attacker.example:8000")
    assert not origin_allowed(b"http://rebind.attacker.example", b"rebind.attacker.example")
    # A wildcard in DJANGO_ALLOWED_HOSTS does not make every name the server's own.
    settings.ALLOWED_HOSTS = ["*"]
    assert not origin_allowed(b"http://rebind.attacker.example:8000", b"rebind.attacker.example:8000")


@pytest.mark.django_db(transaction=False)
def test_pages_served_under_another_name_of_the_server_may_connect(served_on_plain_http):
    assert origin_allowed(b"http://192.0.2.7:8000", b"192.0.2.7:8000")
    assert origin_allowed(b"http://localhost:8000", b"localhost:8000")
    assert origin_allowed(b"http://[::1]:8000", b"[::1]:8000")
    # Under its other name, but not the name this socket was opened to.
    assert not origin_allowed(b"http://192.0.2.7:8000", b"127.0.0.1:8000")
    assert not origin_allowed(b"http://192.0.2.7:9000", b"192.0.2.7:8000")
    # A server that knows its socket is TLS (a "wss" scope) serves its pages over https.
    assert origin_allowed(b"https://192.0.2.7:8000", b"192.0.2.7:8000", "wss")
    assert not origin_allowed(b"http://192.0.2.7:8000", b"192.0.2.7:8000", "wss")


@pytest.mark.django_db(transaction=False)
def test_an_https_server_refuses_its_own_host_over_plain_http(settings):
    settings.COLLAB_PUBLIC_URL = "https://collab.example.org"
    settings.COLLAB_ALLOWED_ORIGINS = ["https://editor.example.com"]
    settings.ALLOWED_HOSTS = ["collab.example.org"]
    assert origin_allowed(b"https://collab.example.org", b"collab.example.org")
    assert origin_allowed(b"https://collab.example.org:443", b"collab.example.org")
    assert origin_allowed(b"https://editor.example.com", b"collab.example.org")
    assert not origin_allowed(b"http://collab.example.org", b"collab.example.org")
    assert not origin_allowed(b"http://editor.example.com", b"collab.example.org")
    assert origin_allowed(None, b"collab.example.org")  # scripts send no Origin
