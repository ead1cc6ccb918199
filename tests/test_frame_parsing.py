"""Client frames read with bounds (bounded_json.py, protocol.parse_frame): json.loads's values, less cost."""

import json
import threading
import time
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessions_app import bounded_json, protocol
from sessions_app.protocol import ProtocolError
from tests.documents import corpus_file

LIMIT = 64 * 1024 * 1024

# Strings with everything JSON escapes: quotes, backslashes, controls, astral characters, lone surrogates.
AWKWARD_TEXT = st.text(
    alphabet=st.sampled_from(['"', "\\", "\n", "\t", "\x00", "\x1f", "é", "€", "😀", "\ud800", "\udfff", "/"])
    | st.characters(),
    max_size=80,
)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | AWKWARD_TEXT,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(AWKWARD_TEXT, children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(value=VALUES, ascii_only=st.booleans(), spaced=st.booleans())
def test_values_are_those_of_json_loads(value, ascii_only, spaced):
    text = json.dumps(value, ensure_ascii=ascii_only, indent=1 if spaced else None)
    assert bounded_json.loads(text, 1000, 32) == json.loads(text)


@settings(max_examples=300, deadline=None)
@given(value=VALUES, ascii_only=st.booleans())
def test_strings_decoded_in_small_slices_are_the_same(value, ascii_only):
    # Slices of a few characters cut between escapes, never inside one or a surrogate pair.
    text = json.dumps(value, ensure_ascii=ascii_only)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bounded_json, "SLICE", 13)
        patch.setattr(bounded_json, "_CUT_SEARCH", 7)
        assert bounded_json.loads(text, 1000, 32) == json.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "{",
        '{"a":1,}',
        "[1,]",
        '{"a" 1}',
        '{"a":1}x',
        "[1 2]",
        '"unterminated',
        '"bad escape \\x"',
        '"control \x01 character"',
        "01",
        "+1",
        "nul",
        "\ufeff{}",
        "1" * 5000,  # more digits than Python converts
        '{"a":[}',
        "{'a': 1}",
    ],
)
def test_invalid_texts_are_refused_as_json_loads_refuses_them(text):
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        bounded_json.loads(text, 1000, 32)


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("{}[]\",:0123456789.eE-+ \\tfrueanlsNIiy\nu'x"), max_size=30))
def test_any_text_reads_as_json_loads_reads_it(text):
    try:
        expected = json.loads(text)
    except ValueError:
        with pytest.raises(ValueError):
            bounded_json.loads(text, 1000, 32)
    else:
        assert repr(bounded_json.loads(text, 1000, 32)) == repr(expected)  # NaN is not NaN


def test_nan_and_infinity_read_as_json_loads_reads_them():
    text = "[NaN, Infinity, -Infinity, 1e400, -0.0, 12345678901234567890]"
    read = bounded_json.loads(text, 1000, 32)
    assert repr(read) == repr(json.loads(text))


def test_more_values_than_allowed_are_refused():
    assert bounded_json.loads(json.dumps(list(range(999))), 1000, 32) == list(range(999))
    with pytest.raises(bounded_json.TooComplex, match="more than 1000 values"):
        bounded_json.loads(json.dumps(list(range(1000))), 1000, 32)
    with pytest.raises(bounded_json.TooComplex):
        bounded_json.loads(json.dumps({str(n): n for n in range(1000)}), 1000, 32)


def test_deeper_nesting_than_allowed_is_refused():
    assert bounded_json.loads("[" * 32 + "]" * 32, 1000, 32) == json.loads("[" * 32 + "]" * 32)
    with pytest.raises(bounded_json.TooComplex, match="deeper than 32"):
        bounded_json.loads("[" * 33 + "]" * 33, 1000, 32)
    with pytest.raises(bounded_json.TooComplex):
        bounded_json.loads('{"a":' * 100_000 + "1" + "}" * 100_000, 1000, 32)


def hostile_first_frame(size):
    """The first frame of the finding: an init with a long array of empty objects, `size` bytes."""
    head, tail = '{"Action":"init","x":[', "{}]}"
    return head + "{}," * ((size - len(head) - len(tail)) // 3) + tail


def test_many_element_frame_is_refused_before_it_is_built():
    frame = hostile_first_frame(32_000_000)
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError) as refused:
            protocol.parse_frame(frame, LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (refused.value.code, refused.value.detail) == ("E1010", "more than 1000 values")
    # json.loads built ten million dicts here: 800 MiB.
    assert peak < 16 * 1024 * 1024, peak


def whole_document_first_frame(size):
    """The field add-in's first frame: sign-in fields and a whole Flat OPC document of about `size` bytes."""
    document = corpus_file("flatopc/docx4j-sample-docx.xml").read_text(encoding="utf-8-sig")
    content = document * (size // len(document) + 1)
    message = {"Origin": "word", "SessionId": "s", "Token": "t", "Action": "update-ooxml", "Content": content}
    return json.dumps(message)


def test_whole_document_frame_reads_as_json_loads_reads_it():
    frame = whole_document_first_frame(30_000_000)
    message, action = protocol.parse_frame(frame, LIMIT)
    assert action == "update-ooxml"
    assert message == json.loads(frame)


def test_reading_a_long_frame_in_a_thread_leaves_other_threads_running():
    """Its long string is decoded a slice at a time: the event loop's thread gets the GIL between slices."""
    frame = whole_document_first_frame(30_000_000)
    json.loads(frame)  # the memory both need is there already: page faults are not the point here
    reader = threading.Thread(target=lambda: [bounded_json.loads(frame, 1000, 32) for _ in range(5)])
    gaps = []
    reader.start()
    last = time.perf_counter()
    while reader.is_alive():
        time.sleep(0.001)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    gaps.sort()
    # A slice costs about a millisecond, and the GIL changes hands every 5 ms at most between two;
    # json.loads holds it for the whole frame (25 ms and more).
    assert gaps[len(gaps) // 2] < 0.015, gaps
