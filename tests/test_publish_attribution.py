"""How `manage.py publish` tells its own versions from another publisher's, in whatever order answers come.

The server here is a script behind a real WebSocket: it answers in orders a real server may
choose but seldom does (a version's get-html before its receipt, another publisher's version
between the two), so every order is tried on every run. The flows against a real server are
in tests/test_integration_daphne.py.
"""

import json
from io import StringIO

import pytest
from django.core.management import CommandError
from websockets.asyncio.server import serve

from sessions_app.management.commands.publish import Command, Publisher
from tests.documents import flat_opc

SESSION = "scripted-session"


def server_message(action, **fields):
    return json.dumps({"Origin": "server", "SessionId": SESSION, "Action": action, "Success": True, **fields})


def init(version, features=("publish-receipts",)):
    """The init reply to a word socket, with the stored version and the features granted."""
    fields = {"Role": "word", "Version": version, "Viewers": 0, "Protocol": 2, "Features": list(features)}
    return server_message("init", **fields, Title="")


def html(version):
    return server_message("get-html", PayloadType="html", Content=f"<p>{version}</p>", Version=version)


def stored(version):
    return server_message("update-ooxml", Version=version)


SUPERSEDED = server_message("update-ooxml", Superseded=True)


async def publish_once(tmp_path, greeting, answers):
    """(lines printed, CommandError text or None, messages received) of one publish to a scripted server.

    The server greets the first message with `greeting`, then sends `answers` after the update.
    """
    received = []

    async def script(websocket):
        received.append(json.loads(await websocket.recv()))
        await websocket.send(greeting)
        received.append(json.loads(await websocket.recv()))
        for answer in answers:
            await websocket.send(answer)
        await websocket.wait_closed()

    document = tmp_path / "document.xml"
    document.write_text(flat_opc("Mine"), encoding="utf-8")
    command = Command(stdout=StringIO(), stderr=StringIO())
    error = None
    async with serve(script, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws"
        try:
            await Publisher(command, SESSION, "a-token", url, document, timeout=30).publish_once()
        except CommandError as refused:
            error = str(refused)
    return command.stdout.getvalue().splitlines(), error, received


@pytest.mark.parametrize(
    ("greeting", "answers", "printed"),
    [
        (init(0), [stored(1), html(1)], ["Published version 1"]),
        (init(0), [html(1), stored(1)], ["Published version 1"]),
        (
            init(0),
            [html(1), html(2), stored(2)],
            ["Version 1 was published by someone else", "Published version 2"],
        ),
        (
            init(0),
            [html(1), html(2), stored(1)],
            ["Published version 1", "Version 2 was published by someone else"],
        ),
        (init(4), [html(5), stored(5)], ["Publishing over version 4", "Published version 5"]),
        # A server without publish-receipts: the next version is taken as the update's.
        (init(0, features=()), [html(1)], ["Published version 1"]),
    ],
    ids=[
        "receipt-first",
        "document-first",
        "someone-else-before",
        "someone-else-after",
        "over-a-version",
        "no-receipts",
    ],
)
async def test_publish_names_its_own_versions_and_others(tmp_path, greeting, answers, printed):
    lines, error, received = await publish_once(tmp_path, greeting, answers)
    assert error is None
    assert lines == printed
    # The first message only signs in; the file goes in the second.
    first, update = received
    assert (first["Action"], first["Protocol"], first["Features"]) == (
        "init",
        2,
        ["publish-receipts", "refusal-reasons"],
    )
    assert "Content" not in first
    assert update["Action"] == "update-ooxml" and "Mine" in update["Content"]


async def test_publish_fails_when_its_update_was_superseded_by_someone_elses(tmp_path):
    lines, error, _ = await publish_once(tmp_path, init(0), [SUPERSEDED, html(1)])
    assert lines == ["Your update was replaced by someone else's newer one before it was converted"]
    assert error == "the update was not stored: a newer one replaced it before it was converted"
