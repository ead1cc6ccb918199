"""HTTP under a real daphne: oversized bodies, slow heads, waiting connections (daphne_adaptations.py)."""

import json
import select
import socket
import time
import urllib.request
from pathlib import Path

import pytest
from django.urls import reverse

from sessions_app.daphne_adaptations import DOCUMENT_UPLOADS
from sessions_app.protocol import (
    ERROR_TEXTS,
    HEAD_TOO_SLOW,
    TOO_MANY_FROM_ADDRESS,
    api_error_body,
    conversion_refusal_body,
    launch_link_error_body,
    too_large_text,
)
from tests.documents import flat_opc

pytestmark = pytest.mark.integration

WAIT = 30
# Long enough for any machine to answer a request that arrived; the servers before the limits kept waiting.
ANSWER_WAIT = 10
MIB = 1024 * 1024
DOCUMENT_LIMIT = 32 * MIB
REQUEST_LIMIT = MIB
FLAT_OPC = "application/xml"


def head(method, path, *headers):
    """A request's line and headers, closing the connection after the answer."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers, "", ""]
    return "\r\n".join(lines).encode()


def chunked(*pieces):
    """Pieces of a body in chunked transfer coding, without the last chunk."""
    return [b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces]


LAST_CHUNK = b"0\r\n\r\n"


def answered(connection, seconds):
    """Whether the server has written anything (or closed) within `seconds`."""
    return bool(select.select([connection], [], [], seconds)[0])


def read_all(connection, seconds=ANSWER_WAIT):
    """Everything the server writes until it closes, or until `seconds` pass without a byte."""
    connection.settimeout(seconds)
    received = b""
    try:
        while data := connection.recv(65536):
            received += data
    except (TimeoutError, ConnectionResetError):
        pass
    return received


def exchange(port, request_head, body=(), pause=0.0):
    """Send a head, then body pieces while the server has not answered; (its answer, body bytes sent)."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as connection:
        connection.sendall(request_head)
        for piece in body:
            if answered(connection, pause):
                break
            try:
                connection.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        return read_all(connection), sent


def parsed(answer):
    """(status, headers, body) of one HTTP response."""
    assert answer, "no answer"
    head_bytes, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {name.lower(): value for name, value in headers.items()}, body


def resident_bytes(server):
    """The daphne process's resident memory (VmRSS)."""
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def get_healthz(server):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{server.url}/healthz", timeout=WAIT) as response:
        return response.status


def too_large(limit):
    return api_error_body("E1009", f"{ERROR_TEXTS['E1009']} (limit {limit} bytes).")


# Bodies


def test_a_declared_2_gib_document_is_refused_before_the_server_grows(shared_daphne):
    get_healthz(shared_daphne)
    before = resident_bytes(shared_daphne)
    request_head = head(
        "PUT", "/api/sessions/nosuch/document", f"Content-Type: {FLAT_OPC}", f"Content-Length: {2 * 1024**3}"
    )
    # Sent slowly: a server that waits for the whole body has been sent 32 MiB and still says nothing.
    answer, sent = exchange(shared_daphne.port, request_head, [b"x" * MIB] * 32, pause=0.05)
    grown = resident_bytes(shared_daphne) - before
    status, headers, body = parsed(answer)
    assert status == 413
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == too_large(DOCUMENT_LIMIT)
    assert sent < 8 * MIB
    assert grown < 8 * MIB, f"daphne grew by {grown} bytes"


def test_a_chunked_document_is_refused_once_its_total_passes_the_limit(shared_daphne):
    get_healthz(shared_daphne)
    before = resident_bytes(shared_daphne)
    request_head = head(
        "PUT", "/api/sessions/nosuch/document", f"Content-Type: {FLAT_OPC}", "Transfer-Encoding: chunked"
    )
    answer, sent = exchange(shared_daphne.port, request_head, chunked(*[b"x" * MIB] * 48), pause=0.05)
    grown = resident_bytes(shared_daphne) - before
    status, _, body = parsed(answer)
    assert status == 413
    assert json.loads(body) == too_large(DOCUMENT_LIMIT)
    # Not before the limit, and soon after it.
    assert DOCUMENT_LIMIT < sent < DOCUMENT_LIMIT + 8 * MIB
    assert grown < 8 * MIB, f"daphne grew by {grown} bytes"


def test_bodies_over_the_request_limit_are_refused_on_other_paths(shared_daphne):
    port = shared_daphne.port
    declared = head("POST", "/api/sessions/", "Content-Type: application/json", f"Content-Length: {2 * MIB}")
    answer, sent = exchange(port, declared, [b" " * MIB] * 2, pause=0.5)
    status, _, body = parsed(answer)
    assert (status, json.loads(body)) == (413, too_large(REQUEST_LIMIT))
    assert sent < MIB

    form = "Content-Type: application/x-www-form-urlencoded"
    login = head("POST", "/admin/login/", form, "Transfer-Encoding: chunked")
    answer, sent = exchange(port, login, chunked(*[b"a" * (MIB // 4)] * 8), pause=0.05)
    status, headers, body = parsed(answer)
    assert status == 413
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert body.decode() == f"{ERROR_TEXTS['E1009']} (limit {REQUEST_LIMIT} bytes).\n"
    assert REQUEST_LIMIT < sent < REQUEST_LIMIT + MIB

    # A document upload's limit is for its own URL and method alone.
    answer, _ = exchange(port, head("POST", "/api/sessions/nosuch/document", f"Content-Length: {2 * MIB}"))
    assert parsed(answer)[0] == 413


def test_bodies_under_their_limit_still_reach_the_application(shared_daphne):
    port = shared_daphne.port
    # No credentials: the application's own refusal, after it has the whole body.
    answer, _ = exchange(port, head("POST", "/api/sessions/", f"Content-Length: {MIB}"), [b" " * MIB])
    assert parsed(answer)[0] in (401, 403)
    answer, _ = exchange(
        port, head("POST", "/api/sessions/", "Transfer-Encoding: chunked"), [*chunked(b" " * MIB), LAST_CHUNK]
    )
    assert parsed(answer)[0] in (401, 403)


def test_a_document_over_the_request_limit_still_uploads(shared_daphne):
    session = shared_daphne.create_session()
    document = flat_opc("Large " * (REQUEST_LIMIT // 5)).encode()
    assert REQUEST_LIMIT < len(document) < DOCUMENT_LIMIT
    path = f"/api/sessions/{session['id']}/document"
    credentials = f"Authorization: Bearer {session['word_token']}"
    length = f"Content-Length: {len(document)}"
    request_head = head("PUT", path, credentials, f"Content-Type: {FLAT_OPC}", length)
    answer, _ = exchange(shared_daphne.port, request_head, [document])
    status, _, body = parsed(answer)
    assert (status, json.loads(body)) == (200, {"version": 1})


def test_the_document_limit_follows_the_api_route():
    path = reverse("api:document", args=["Session_id-1"])
    assert [method for method, pattern in DOCUMENT_UPLOADS if pattern.fullmatch(path)] == [b"PUT"]


def test_the_document_limit_follows_the_edit_in_word_and_conversion_routes():
    for path in (
        reverse("generate-word-launch-link"),
        reverse("api:convert-html-docx"),
        reverse("api:convert-docx-html"),
    ):
        assert [method for method, pattern in DOCUMENT_UPLOADS if pattern.fullmatch(path)] == [b"POST"], path


def test_a_launch_link_request_too_large_is_refused_in_its_own_shape_readable_by_the_host(daphne):
    host = "https://intranet.example"
    server = daphne(COLLAB_ALLOWED_ORIGINS=host)
    declared = f"Content-Length: {DOCUMENT_LIMIT + 1}"
    launch = head("POST", "/edit-in-word/generate-word-launch-link", f"Origin: {host}", "Token: k", declared)
    answer, sent = exchange(server.port, launch, [b" " * MIB] * 2, pause=0.5)
    status, headers, body = parsed(answer)
    assert (status, headers["access-control-allow-origin"]) == (413, host)
    assert json.loads(body) == launch_link_error_body("H1001", too_large_text(DOCUMENT_LIMIT))
    assert sent < MIB
    convert = head("POST", "/api/convert/html-docx", "Origin: https://attacker.example", declared)
    status, headers, body = parsed(exchange(server.port, convert)[0])
    assert status == 413 and "access-control-allow-origin" not in headers
    assert json.loads(body) == conversion_refusal_body(too_large_text(DOCUMENT_LIMIT))
    # The application's own refusals reach the host's page too.
    refused = head("POST", "/edit-in-word/generate-word-launch-link", f"Origin: {host}", "Content-Length: 0")
    status, headers, body = parsed(exchange(server.port, refused)[0])
    assert (status, headers["access-control-allow-origin"], json.loads(body)["errorCode"]) == (
        401,
        host,
        "H1002",
    )


# Slow heads

HEAD_TIMEOUT = 2


def one_line_at_a_time(connection):
    """A request line, then header lines without end."""
    yield b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    for number in range(1000):
        yield f"X-Slow-{number}: still coming\r\n".encode()


def request_line_byte_by_byte(connection):
    return (bytes([byte]) for byte in b"GET /healthz" * 100)


def nothing(connection):
    return iter(lambda: b"", None)


def after_a_kept_alive_request(connection):
    """One request answered, the connection idle past the deadline, then a slow next request."""
    connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert read_one_response(connection)[0] == 200
    # Idle is not slow: only the next request's first byte starts its deadline.
    time.sleep(HEAD_TIMEOUT * 1.5)
    return one_line_at_a_time(connection)


def read_one_response(connection):
    """(status, headers, body) of the next response on a kept-alive connection."""
    connection.settimeout(WAIT)
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += connection.recv(65536)
    status, headers, body = parsed(answer)
    while len(body) < int(headers["content-length"]):
        body += connection.recv(65536)
    return status, headers, body


@pytest.mark.parametrize(
    "sender", [one_line_at_a_time, request_line_byte_by_byte, nothing, after_a_kept_alive_request]
)
def test_a_slow_request_head_is_cut_off_at_the_deadline(daphne, sender):
    server = daphne(COLLAB_HTTP_HEADER_TIMEOUT=str(HEAD_TIMEOUT))
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as connection:
        pieces = sender(connection)
        started = time.monotonic()
        # One piece every half second keeps any idle timeout from firing; a server without a deadline
        # keeps the connection open for these 20 s.
        while time.monotonic() - started < 20 and not answered(connection, 0.5):
            connection.sendall(next(pieces))
        elapsed = time.monotonic() - started
        answer = read_all(connection)
    status, _, body = parsed(answer)
    assert (status, body.decode()) == (408, f"{HEAD_TOO_SLOW}.\n")
    assert HEAD_TIMEOUT * 0.9 < elapsed < HEAD_TIMEOUT + 5


def test_a_head_sent_within_the_deadline_is_answered(daphne):
    server = daphne(COLLAB_HTTP_HEADER_TIMEOUT=str(HEAD_TIMEOUT))
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as connection:
        for line in head("GET", "/healthz").splitlines(keepends=True):
            connection.sendall(line)
            time.sleep(HEAD_TIMEOUT / 10)
        assert parsed(read_all(connection))[0] == 200


# Connections waiting for a request, per address

ADDRESS_LIMIT = 3


def open_waiting(server, count):
    """Connections that started a request and are still sending its head."""
    connections = []
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
        connection.sendall(b"GET /healthz HTTP/1.1\r\n")
        connections.append(connection)
    return connections


def healthz_answer(server):
    answer, _ = exchange(server.port, head("GET", "/healthz"))
    return parsed(answer)


def test_connections_waiting_for_a_request_count_against_the_address_limit(daphne):
    server = daphne(COLLAB_MAX_CONNECTIONS_PER_ADDRESS=str(ADDRESS_LIMIT), COLLAB_HTTP_HEADER_TIMEOUT="60")
    waiting = open_waiting(server, ADDRESS_LIMIT)
    try:
        status, _, body = healthz_answer(server)
        assert (status, body.decode()) == (429, f"{TOO_MANY_FROM_ADDRESS}.\n")
        # One of them finishes its request: its place is free again.
        waiting[0].sendall(b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert parsed(read_all(waiting[0]))[0] == 200
        assert healthz_answer(server)[0] == 200
        # One gives up: so is its place.
        waiting[1].close()
        deadline = time.monotonic() + ANSWER_WAIT
        while (status := healthz_answer(server)[0]) == 429 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status == 200
        assert healthz_answer(server)[0] == 200
    finally:
        for connection in waiting:
            connection.close()


def test_connections_from_a_trusted_proxy_are_not_counted(daphne):
    server = daphne(
        COLLAB_MAX_CONNECTIONS_PER_ADDRESS=str(ADDRESS_LIMIT),
        COLLAB_HTTP_HEADER_TIMEOUT="60",
        COLLAB_TRUSTED_PROXIES="127.0.0.1",
    )
    waiting = open_waiting(server, ADDRESS_LIMIT * 2)
    try:
        assert healthz_answer(server)[0] == 200
    finally:
        for connection in waiting:
            connection.close()
