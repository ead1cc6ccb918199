"""Twisted's TCP writes sent to the kernel at once when nothing waits before them.

Twisted never sends from `write()`: it registers the socket with the event loop for writing,
sends on a later turn of the loop, and unregisters it. Under daphne, on asyncio, that is two
changes to the selector and one more turn for every frame a socket is written: the
handshake's response, its greeting, its document, its close, and one broadcast written to a
thousand sockets paid for it a thousand times. asyncio's own transports try the send first.
So does `write()` here, once `write_at_once` is applied, when nothing waits to be sent before
the data: what the kernel takes is sent, and the rest, like every write while something
waits, is buffered and sent Twisted's way. The bytes keep their order, a producer is paused
as before when the buffer fills, and a closing connection is left to Twisted's own path.
"""


def write_at_once(connection_class):
    """Make `connection_class` (twisted.internet.tcp.Connection) send at once what it can."""
    write = connection_class.write

    def write_now(self, data):
        if type(data) is bytes and data and is_idle(self):
            sent = send_now(self, data)
            if sent == len(data):
                return
            data = data[sent:]
        write(self, data)

    connection_class.write = write_now


def is_idle(connection):
    """Whether a TCP connection is open for writing with nothing waiting to be sent."""
    return (
        connection.connected
        and not connection.disconnecting
        and not connection._writeDisconnecting
        and not connection._writeDisconnected
        and pending_write_bytes(connection) == 0
    )


def send_now(connection, data):
    """Send what the kernel takes now; the number of bytes sent.

    A full socket (0) or a lost connection stops it: the usual write finds out and closes.
    """
    view = memoryview(data)
    sent = 0
    while sent < len(data):
        count = connection.writeSomeData(view[sent:])
        if not isinstance(count, int) or count <= 0:
            break
        sent += count
    return sent


def pending_write_bytes(transport):
    """Bytes handed to a Twisted transport that the kernel has not taken yet."""
    # TLS and policy wrappers keep the TCP transport underneath.
    while transport is not None and not hasattr(transport, "dataBuffer"):
        transport = getattr(transport, "transport", None)
    if transport is None:
        return 0
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
