"""Hostile frames against the live consumer: it never crashes, leaks nothing, and answers as PROTOCOL.md says.

Hypothesis drives sockets that send random JSON, wrong types in every field, huge strings, deep
nesting, binary frames, lone surrogates and actions out of order, while a well-behaved Word
client and viewer in the same session keep publishing and receiving throughout.
"""

import json
import re
from dataclasses import dataclass

import pytest
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collab.asgi import application
from sessions_app.protocol import CLOSING_ERRORS, ERROR_TEXTS
from sessions_app.services import do_create_session
from tests.documents import flat_opc

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("own_redis_prefix")]

TIMEOUT = 20
# The documented close codes (PROTOCOL.md section 3, README "Limits").
CLOSE_CODES = {1000, 4401, 4410, 4413, 4429, 4500}
LEAK = re.compile(r"Traceback|File \"|\.py\b|/work/|site-packages|Exception|Error\(")


@dataclass(frozen=True)
class Ref:
    """A value known only at run time: a session id or token of the fixtures."""

    name: str


def resolve(value, refs):
    if isinstance(value, Ref):
        return refs[value.name]
    if isinstance(value, list):
        return [resolve(item, refs) for item in value]
    if isinstance(value, dict):
        return {key: resolve(item, refs) for key, item in value.items()}
    return value


# Strategies

SURROGATES = st.sampled_from(["\ud800", "abc\udfffdef", "\udbff\udc00\ud800"])
HUGE = st.sampled_from(["x" * 300_000, "é" * 100_000, "<w:p>" * 50_000])
SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40) | SURROGATES
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
ANY_VALUE = JSON_VALUES | HUGE
ACTIONS = st.sampled_from(
    ["init", "update-ooxml", "get-html", "end-session", "ping", "GET-HTML", "Init", "presence", "pong", ""]
)
SESSION_IDS = st.sampled_from([Ref("victim"), Ref("scratch")]) | ANY_VALUE
TOKENS = (
    st.sampled_from([Ref("victim_client"), Ref("scratch_word"), Ref("victim_client_wrong_case")]) | ANY_VALUE
)
FIELDS = {
    "Origin": st.sampled_from(["word", "client", "server", "WORD"]) | ANY_VALUE,
    "SessionId": SESSION_IDS,
    "Token": TOKENS,
    "Action": ACTIONS | ANY_VALUE,
    "Content": st.sampled_from(["", "<w:document/>", "not xml"]) | ANY_VALUE,
    "PayloadType": st.sampled_from(["ooxml", "docx", "html", "DOCX", "pdf"]) | ANY_VALUE,
    "Protocol": st.sampled_from([1, 2, 3, "2", True]) | ANY_VALUE,
    "LastVersion": st.integers() | ANY_VALUE,
    "Features": st.lists(st.text(max_size=10), max_size=3) | ANY_VALUE,
}
MESSAGES = st.fixed_dictionaries({}, optional=FIELDS)


def deep(depth, opener, closer):
    return opener * depth + closer * depth


MALFORMED = st.one_of(
    st.tuples(st.just("binary"), st.binary(max_size=64)),
    st.tuples(st.just("text"), st.text(max_size=60).filter(lambda t: not t.strip().startswith("{"))),
    st.tuples(st.just("text"), SURROGATES),
    st.tuples(st.just("json"), JSON_VALUES.filter(lambda v: not isinstance(v, dict))),
    st.tuples(
        st.just("text"),
        st.sampled_from([deep(100_000, "[", "]"), deep(50_000, '{"a":', "}"), '{"Action": ' + "[" * 5000]),
    ),
    st.tuples(st.just("json"), st.dictionaries(st.sampled_from(["Origin", "Token"]), JSON_VALUES)),
)
WELL_FORMED = st.tuples(st.just("json"), MESSAGES.map(lambda m: {**m, "Action": m.get("Action", "ping")}))
RAW_SURROGATE_MESSAGE = st.tuples(st.just("raw-json"), MESSAGES)
FRAMES = st.lists(st.one_of(MALFORMED, WELL_FORMED, RAW_SURROGATE_MESSAGE), min_size=1, max_size=6)
# How a hostile socket starts: straight away, or after joining as a viewer (v1 or v2) or as a word client.
OPENINGS = st.sampled_from(["none", "victim-client-v1", "victim-client-v2", "scratch-word-v2"])


# The checks


def is_malformed(kind, value):
    """Frames the server must answer at once with E1010 (or E1011 when over the rate)."""
    if kind == "binary":
        return True
    if kind == "text":
        try:
            message = json.loads(value)
        except (ValueError, RecursionError):
            return True
        return not isinstance(message, dict) or not isinstance(message.get("Action"), str)
    if kind == "json":
        return not isinstance(value, dict) or not isinstance(value.get("Action"), str) or not value["Action"]
    return False


def check_message(text, secrets_):
    """A server message: one JSON object of the protocol's shape, with nothing leaked."""
    message = json.loads(text)
    assert isinstance(message, dict), text[:200]
    assert message["Origin"] == "server"
    assert isinstance(message["Success"], bool), message
    assert isinstance(message["Action"], str)
    if message["Success"]:
        assert "ErrorCode" not in message
    else:
        code = message["ErrorCode"]
        assert code in ERROR_TEXTS, message
        content = message["Content"]
        assert content == ERROR_TEXTS[code] or content.startswith(ERROR_TEXTS[code] + ": "), message
        assert len(content) < 300 and not LEAK.search(content), content
    for secret in secrets_:
        assert secret not in text
    return message


class Hostile:
    """A hostile socket and the checks on everything it receives."""

    def __init__(self, communicator, secrets_):
        self.communicator = communicator
        self.secrets = secrets_
        self.closed = None
        self.refused = None  # an error after which the server closes the socket, once read

    async def output(self, timeout=TIMEOUT):
        """The next output; a crash of the consumer is raised here by the communicator."""
        output = await self.communicator.receive_output(timeout)
        if output["type"] == "websocket.close":
            assert output.get("code") in CLOSE_CODES, output
            self.closed = output["code"]
            return None
        assert output["type"] == "websocket.send" and output.get("text") is not None, output
        message = check_message(output["text"], self.secrets)
        if message is not None and message.get("ErrorCode") in CLOSING_ERRORS:
            self.refused = message["ErrorCode"]
        return message

    async def drain(self, seconds=0.02):
        while self.closed is None and not await self.communicator.receive_nothing(seconds):
            await self.output()

    async def expect_error(self, codes):
        """Messages up to an error with one of these codes, for a frame the server must refuse at once.

        An earlier frame may have been refused with an error that closes the socket, its answer
        still on the way when this frame was sent: the server then reads no further frames.
        """
        while self.closed is None:
            message = await self.output()
            if message is not None and message.get("ErrorCode") in codes:
                return message
        if self.refused is not None and self.closed == CLOSING_ERRORS[self.refused]:
            return None
        pytest.fail(f"socket closed with {self.closed} instead of answering {codes}")


async def open_hostile(refs, secrets_, opening):
    communicator = WebsocketCommunicator(application, "/ws")
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    hostile = Hostile(communicator, secrets_)
    if opening != "none":
        name, role, version = opening.split("-")
        token = refs[f"{name}_{role}"]
        message = {"Origin": role, "SessionId": refs[name], "Token": token, "Action": "init"}
        if version == "v2":
            message["Protocol"] = 2
        await communicator.send_to(text_data=json.dumps(message))
        if version == "v2":
            while (await hostile.output())["Action"] != "init":
                pass
    return hostile


async def send_frame(hostile, kind, value, refs):
    """One frame, empty ones included (send_to refuses those)."""
    value = resolve(value, refs)
    if kind == "binary":
        frame = {"bytes": value}
    elif kind == "text":
        frame = {"text": value}
    elif kind == "raw-json":
        # Lone surrogates and other characters as they are, not \u-escaped.
        frame = {"text": json.dumps(value, ensure_ascii=False)}
    else:
        frame = {"text": json.dumps(value)}
    await hostile.communicator.send_input({"type": "websocket.receive", **frame})


class GoodClients:
    """A Word client and a viewer of the victim session that must keep working."""

    def __init__(self, session):
        self.session = session
        self.edits = 0

    async def open(self):
        self.word = await self.join("word")
        self.viewer = await self.join("client")
        await self.until(self.viewer, lambda m: m["Action"] == "get-html")
        return self

    async def join(self, role):
        communicator = WebsocketCommunicator(application, "/ws")
        assert (await communicator.connect(timeout=TIMEOUT))[0]
        message = {
            "Origin": role,
            "SessionId": self.session["id"],
            "Token": self.session[role],
            "Action": "init",
            "Protocol": 2,
        }
        await communicator.send_to(text_data=json.dumps(message))
        await self.until(communicator, lambda m: m["Action"] == "init")
        return communicator

    async def until(self, communicator, accept):
        while True:
            message = json.loads(await communicator.receive_from(timeout=TIMEOUT))
            assert message["Success"] is True, message
            if accept(message):
                return message

    async def still_work(self):
        """The word client publishes an edit and the viewer sees it."""
        self.edits += 1
        text = f"Good edit {self.edits}"
        await self.word.send_to(text_data=json.dumps({"Action": "update-ooxml", "Content": flat_opc(text)}))
        await self.until(self.viewer, lambda m: m["Action"] == "get-html" and text in m["Content"])
        await self.viewer.send_to(text_data=json.dumps({"Action": "ping"}))
        await self.until(self.viewer, lambda m: m["Action"] == "pong")

    async def close(self):
        await self.word.disconnect()
        await self.viewer.disconnect()


@pytest.fixture
def victim(make_session):
    return make_session("Fuzz victim")


@pytest.fixture
def refs(victim):
    scratch, scratch_word, _ = do_create_session("Fuzz scratch")
    return {
        "victim": victim["id"],
        "victim_client": victim["client"],
        "victim_client_wrong_case": victim["client"].swapcase(),
        "scratch": scratch.id,
        "scratch_word": scratch_word,
    }


@pytest.fixture
async def good_clients(victim):
    clients = await GoodClients(victim).open()
    yield clients
    await clients.close()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(opening=OPENINGS, frames=FRAMES)
async def test_hostile_frames_never_break_the_server(refs, victim, good_clients, opening, frames):
    secrets_ = [victim["word"], victim["client"], refs["scratch_word"]]
    hostile = await open_hostile(refs, secrets_, opening)
    try:
        for kind, value in frames:
            if hostile.closed is not None:
                break
            await send_frame(hostile, kind, value, refs)
            if is_malformed(kind, value):
                await hostile.expect_error({"E1010", "E1011"})
            else:
                await hostile.drain()
        await hostile.drain(0.05)
    finally:
        if hostile.closed is None:
            await hostile.communicator.disconnect()
    await good_clients.still_work()


async def test_flood_is_answered_frame_by_frame_and_the_socket_stays_open(refs, victim, good_clients):
    secrets_ = [victim["word"], victim["client"]]
    hostile = await open_hostile(refs, secrets_, "victim-client-v2")
    await hostile.drain(0.1)
    for _ in range(500):
        await hostile.communicator.send_to(text_data='{"Action": "ping"}')
    answers = [await hostile.output() for _ in range(500)]
    answers = [a for a in answers if a is not None and a["Action"] != "presence"]
    pongs = sum(1 for answer in answers if answer["Action"] == "pong")
    limited = sum(1 for answer in answers if answer.get("ErrorCode") == "E1011")
    assert hostile.closed is None
    assert limited > 0 and pongs + limited >= len(answers) - 5
    await good_clients.still_work()
    await hostile.communicator.disconnect()


@pytest.mark.parametrize(
    "frame",
    [
        b"\x00\xff binary",
        deep(100_000, "[", "]"),
        deep(50_000, '{"a":', "}"),
        '{"Action": "init", "SessionId": "\ud800", "Token": "\udfff", "Origin": "client"}',
        '{"Action": "ping", "Token": "\ud800"}',
    ],
    ids=["binary", "deep-list", "deep-object", "surrogate-auth", "surrogate-token"],
)
async def test_awkward_first_frames_get_an_answer(refs, victim, good_clients, frame):
    hostile = await open_hostile(refs, [victim["client"]], "none")
    if isinstance(frame, bytes):
        await hostile.communicator.send_to(bytes_data=frame)
    else:
        await hostile.communicator.send_to(text_data=frame)
    message = await hostile.output()
    assert message["Success"] is False and message["ErrorCode"] in {"E1010", "E1001", "E1003"}, message
    if hostile.closed is None and message["ErrorCode"] != "E1010":
        assert await hostile.output() is not None  # session-closed
        assert await hostile.output() is None and hostile.closed == 4401
    if hostile.closed is None:
        await hostile.communicator.disconnect()
    await good_clients.still_work()
