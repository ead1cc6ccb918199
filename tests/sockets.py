"""WebSockets on the real ASGI application in the test process (channels' WebsocketCommunicator)."""

import json

from channels.testing import WebsocketCommunicator

from collab.asgi import application

TIMEOUT = 30  # conversions run in worker processes; generous so a busy machine does not fail tests


async def open_socket(headers=None, address=None):
    """A connected socket; `address` stands for the client's IP address."""
    communicator = WebsocketCommunicator(application, "/ws", headers=headers or [])
    if address is not None:
        communicator.scope["client"] = (address, 40000)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    return communicator


async def send(communicator, **message):
    await communicator.send_to(text_data=json.dumps(message))


async def receive(communicator, presence=False):
    """The next message; presence announcements are skipped unless asked for."""
    while True:
        message = json.loads(await communicator.receive_from(timeout=TIMEOUT))
        if presence or message.get("Action") != "presence":
            return message


async def join(session, role="client", protocol=2, address=None, **extra):
    """A socket that sent its init message with the session's token of this role (replies unread)."""
    communicator = await open_socket(address=address)
    message = {"Origin": role, "SessionId": session["id"], "Token": session[role], "Action": "init"}
    if protocol:
        message["Protocol"] = protocol
    await send(communicator, **message, **extra)
    return communicator


async def join_with_get_html(session_id, secret, role):
    """A version 1 socket signed in by asking for the HTML, its reply read."""
    communicator = await open_socket()
    await send(communicator, Origin=role, SessionId=session_id, Token=secret, Action="get-html")
    assert (await receive(communicator))["Action"] == "get-html"
    return communicator


async def assert_closed(communicator, code):
    assert await communicator.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": code}
