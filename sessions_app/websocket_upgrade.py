"""A WebSocket handshake handed to autobahn as it arrives, without Twisted's HTTP parse in front.

Daphne lets Twisted parse every request into a Request, and for a WebSocket upgrade writes the
request out again for autobahn, which parses it once more (docs/PERFORMANCE.md, "A crowd
arriving at once", has what skipping that saves). A handshake that is plainly one (the whole
head in one read, a GET with one `Upgrade: websocket`, nothing after it, header names and
values as daphne accepts them) goes from the connection's first bytes straight to daphne's
WebSocket protocol, as daphne would hand it over; anything else takes the usual way and meets
the same checks.
"""

import re

from daphne.utils import HEADER_NAME_RE, INVALID_HEADER_VALUE_BYTES
from twisted.protocols.policies import ProtocolWrapper

HEAD_END = b"\r\n\r\n"
# Control characters but tab: whatever Twisted's parser would make of them, such a head takes its way.
CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def websocket_target(data):
    """The request target of a plain WebSocket upgrade that is all of `data`, or None."""
    if not data.startswith(b"GET ") or not data.endswith(HEAD_END) or data.count(HEAD_END) != 1:
        return None
    lines = data[: -len(HEAD_END)].split(b"\r\n")
    request_line = lines[0].split(b" ")
    if len(request_line) != 3 or request_line[2] != b"HTTP/1.1" or not request_line[1].isascii():
        return None
    upgrades = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not HEADER_NAME_RE.fullmatch(name) or CONTROL.search(value):
            return None
        if INVALID_HEADER_VALUE_BYTES.intersection(value):
            return None
        lowered = name.lower()
        if lowered in (b"content-length", b"transfer-encoding"):
            return None
        if lowered == b"upgrade":
            upgrades.append(value.strip().lower())
    return request_line[1] if upgrades == [b"websocket"] else None


def hand_over(channel, data, target):
    """Give the connection of an HTTP channel to a new daphne WebSocket protocol; False if none was made."""
    server = channel.factory.server
    protocol = server.ws_factory.buildProtocol(channel.transport.getPeer())
    if not protocol:
        return False
    protocol._raw_query_string = target.split(b"?", 1)[1] if b"?" in target else b""
    channel.setTimeout(None)
    transport, channel.transport = channel.transport, None
    if isinstance(transport, ProtocolWrapper):  # TLS wraps the protocol
        transport.wrappedProtocol = protocol
    else:
        transport.protocol = protocol
    protocol.makeConnection(transport)
    protocol.dataReceived(data)
    return True
