"""Twisted TCP writes sent at once when nothing waits (sessions_app/tcp_writes.py), on a real socket pair."""

import socket

import pytest
from twisted.internet import tcp
from twisted.internet.protocol import Protocol

from sessions_app.tcp_writes import pending_write_bytes, write_at_once


class Connection(tcp.Connection):
    pass


write_at_once(Connection)


class RecordingReactor:
    """What the connection asks of its reactor: here, only whether it wants to write later."""

    def __init__(self):
        self.writers = []

    def addWriter(self, selectable):  # noqa: N802 - Twisted's name
        self.writers.append(selectable)

    def removeWriter(self, selectable):  # noqa: N802
        self.writers.remove(selectable)

    def addReader(self, selectable):  # noqa: N802
        pass

    def removeReader(self, selectable):  # noqa: N802
        pass


@pytest.fixture
def pair():
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.setblocking(False)
    reactor = RecordingReactor()
    connection = Connection(ours, Protocol(), reactor)
    connection.connected = True  # as tcp.Server sets it once accepted
    yield connection, theirs, reactor
    ours.close()
    theirs.close()


def received(peer):
    chunks = []
    while True:
        try:
            chunk = peer.recv(1 << 20)
        except BlockingIOError:
            return b"".join(chunks)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def test_a_write_with_nothing_waiting_is_sent_at_once(pair):
    connection, peer, reactor = pair
    connection.write(b"hello")
    assert received(peer) == b"hello"
    assert reactor.writers == []  # no later turn of the loop was asked for
    assert pending_write_bytes(connection) == 0


def test_what_the_kernel_does_not_take_is_sent_later_in_order(pair):
    connection, peer, reactor = pair
    big = bytes(range(256)) * 40_000  # 10 MB: more than a socket buffer holds
    connection.write(big)
    assert reactor.writers == [connection]
    waiting = pending_write_bytes(connection)
    assert 0 < waiting < len(big)
    connection.write(b"after")  # something waits: buffered behind it, not sent first
    assert pending_write_bytes(connection) == waiting + 5
    got = received(peer)
    while pending_write_bytes(connection):
        connection.doWrite()
        got += received(peer)
    assert got == big + b"after"


def test_a_closing_connection_writes_the_usual_way(pair):
    connection, peer, reactor = pair
    connection.disconnecting = True
    connection.write(b"late")
    assert received(peer) == b""
    assert pending_write_bytes(connection) == 4
    assert reactor.writers == [connection]


def test_a_lost_connection_is_left_to_twisted_to_find(pair):
    connection, peer, reactor = pair
    peer.close()
    connection.write(b"x" * 100_000)  # the send fails: buffered, and the next doWrite reports it
    assert reactor.writers == [connection]
    assert connection.doWrite() is not None
