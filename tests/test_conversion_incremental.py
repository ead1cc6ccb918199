"""Incremental conversion: after every edit, the HTML is byte for byte that of a full conversion.

Documents come from tests/word_markup.py (Word's usual markup, edited as a writer edits) and
from the corpus (edited by text surgery on the main part). That unchanged blocks are not
converted again is shown by ``reused_blocks``, not by timing.
"""

import base64
import random
import re

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from conversion import ConversionError, IncrementalConverter, Limits, convert_payload
from tests.documents import corpus_file
from tests.word_markup import (
    STYLE_CHANGES,
    WORDS,
    Edit,
    apply_edit,
    body_blocks,
    changed_parts,
    comment_indexes,
    docx_document_part,
    docx_with_document_part,
    edit_sequences,
    generated_document,
    list_item_indexes,
    note_reference_indexes,
    text_paragraph_indexes,
    with_footnote_added,
    with_numbering_changed,
    with_paragraph_inserted,
    with_span_text,
    with_style_changed,
)

# Repeatable in CI: the same examples every run, nothing remembered between runs.
PROPERTY = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def first_difference(got, expected):
    at = next(
        (i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b),
        min(len(got), len(expected)),
    )
    window = slice(max(0, at - 120), at + 120)
    return f"HTML differs at {at}:\n incremental: {got[window]!r}\n full:        {expected[window]!r}"


def assert_converts_as_full(state, content, payload_type):
    """The converter's result for content, checked against a full conversion (or refused alike)."""
    try:
        full = convert_payload(content, payload_type)
    except ConversionError as error:
        with pytest.raises(ConversionError) as refused:
            state.convert(content, payload_type)
        assert refused.value.reason == error.reason
        return None
    converted = state.convert(content, payload_type)
    assert converted.html == full.html, first_difference(converted.html, full.html)
    assert converted.warnings == full.warnings
    assert (converted.input_bytes, converted.html_bytes) == (full.input_bytes, full.html_bytes)
    return converted


def content_of(document, payload_type):
    return document.flat_opc() if payload_type == "ooxml" else document.docx_base64()


def block_count(document):
    """Top-level children of the body, the final w:sectPr included."""
    return len(document.blocks) + 1


# Generated documents, long edit sequences


# Edits of the body alone that a sound incremental conversion reuses blocks for.
BODY_EDITS = {"edit_text", "edit_cell", "edit_list_item", "insert_paragraph", "insert_list_item", "add_table"}
# Parts whose change converts the whole document again.
SHARED_PARTS = {"/word/styles.xml", "/word/numbering.xml", "/word/footnotes.xml", "/word/endnotes.xml"}


def run_session(document, edits, payload_type):
    state = IncrementalConverter()
    assert_converts_as_full(state, content_of(document, payload_type), payload_type)
    body_edits = reusing = 0
    for step, edit in enumerate(edits):
        edited = apply_edit(document, edit)
        changed = changed_parts(document, edited)
        document = edited
        note(f"step {step}: {edit}, changing {sorted(changed)}")
        converted = assert_converts_as_full(state, content_of(document, payload_type), payload_type)
        if changed & SHARED_PARTS:
            assert converted.reused_blocks == 0
        elif changed == {"/word/document.xml"} and edit.kind in BODY_EDITS:
            body_edits += 1
            reusing += converted.reused_blocks > 0
    # The session went through incremental conversions, not through full ones alone.
    assert reusing > 0 or body_edits < 3


@settings(PROPERTY, max_examples=15)
@given(seed=st.integers(0, 10_000), pages=st.sampled_from((0, 1, 2.5)), edits=edit_sequences())
def test_flat_opc_edits_convert_as_a_full_conversion_after_every_step(seed, pages, edits):
    run_session(generated_document(seed, pages), edits, "ooxml")


@settings(PROPERTY, max_examples=12)
@given(seed=st.integers(0, 10_000), pages=st.sampled_from((0, 1, 2.5)), edits=edit_sequences())
def test_docx_edits_convert_as_a_full_conversion_after_every_step(seed, pages, edits):
    run_session(generated_document(seed, pages), edits, "docx")


# Corpus documents, edited by text surgery on the main part

CORPUS_DOCUMENTS = (
    "flatopc/docx4j-numbering-restart.xml",
    "flatopc/docx4j-table-spans.xml",
    "flatopc/docx4j-endnotes.xml",
    "flatopc/snippets-watermark.xml",
    "flatopc/docx4j-sample-docx.xml",
    "docx/mammoth-footnotes.docx",
    "docx/mammoth-embedded-style-map.docx",
    "docx/pandoc-lists.docx",
    "docx/pandoc-notes.docx",
    "docx/oxpt-merged-cells.docx",
    "docx/oxpt-toc.docx",
    "docx/poi-header-footer.docx",
    "docx/pydocx-comments-rich.docx",
    "docx/gaddin-sample-nda.docx",
)
_TEXT = re.compile(r"(<w:t(?:\s[^>]*)?>)([^<]+)(</w:t>)")


def surgery(text, kind, at, seed):
    """The main part's text after duplicating or deleting a top-level block, or changing a word of a w:t."""
    blocks = [(start, end) for start, end, name in body_blocks(text) if not name.endswith(":sectPr")]
    if not blocks:
        return text
    start, end = blocks[at % len(blocks)]
    if kind == "duplicate":
        return text[:end] + text[start:end] + text[end:]
    if kind == "delete":
        return text[:start] + text[end:]
    body_start, body_end = blocks[0][0], blocks[-1][1]
    runs = list(_TEXT.finditer(text, body_start, body_end))
    if not runs:
        return text
    run = runs[(at // len(blocks)) % len(runs)]
    rng = random.Random(seed)
    old = run.group(2).split(" ")
    old[rng.randrange(len(old))] = (
        rng.choice(WORDS).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    )
    return text[: run.start(2)] + " ".join(old) + text[run.end(2) :]


class CorpusDocument:
    """A corpus document whose main part can be rewritten, in the form it is stored in."""

    def __init__(self, relative):
        path = corpus_file(relative)
        self.payload_type = "ooxml" if relative.endswith(".xml") else "docx"
        if self.payload_type == "ooxml":
            self.text = path.read_text(encoding="utf-8")
        else:
            self.docx = path.read_bytes()
            _, self.text = docx_document_part(self.docx)

    def content(self, text=None):
        text = self.text if text is None else text
        if self.payload_type == "ooxml":
            return text
        return base64.b64encode(docx_with_document_part(self.docx, text)).decode("ascii")


CORPUS_EDITS = st.lists(
    st.tuples(
        st.sampled_from(("duplicate", "delete", "change_word", "change_word")),
        st.integers(0, 10_000),
        st.integers(0, 2**16),
    ),
    min_size=20,
    max_size=30,
)


@pytest.mark.parametrize("relative", CORPUS_DOCUMENTS)
@settings(PROPERTY, max_examples=3)
@given(edits=CORPUS_EDITS)
def test_corpus_document_edits_convert_as_a_full_conversion_after_every_step(relative, edits):
    document = CorpusDocument(relative)
    state = IncrementalConverter()
    text = document.text
    assert_converts_as_full(state, document.content(text), document.payload_type)
    for step, (kind, at, seed) in enumerate(edits):
        text = surgery(text, kind, at, seed)
        note(f"step {step}: {kind} {at} {seed}")
        assert_converts_as_full(state, document.content(text), document.payload_type)


def test_paragraphs_merged_by_an_embedded_style_map_stay_right():
    # Its style map says "p => h1": not fresh, so neighbouring paragraphs make one heading.
    document = CorpusDocument("docx/mammoth-embedded-style-map.docx")
    state = IncrementalConverter()
    text = document.text
    for _ in range(3):
        text = surgery(text, "duplicate", 0, 0)
    converted = assert_converts_as_full(state, document.content(text), "docx")
    assert converted.html.count("<h1>") == 1
    for at in (1, 2, 0, 3):
        text = surgery(text, "change_word", at, at)
        assert_converts_as_full(state, document.content(text), "docx")
    text = surgery(text, "delete", 2, 0)
    assert_converts_as_full(state, document.content(text), "docx")


# Targeted cases


@pytest.fixture(scope="module")
def long_document():
    return generated_document(2024, pages=10)


def middle(indexes):
    return indexes[len(indexes) // 2]


def test_first_conversion_reuses_nothing(long_document):
    converted = assert_converts_as_full(IncrementalConverter(), long_document.flat_opc(), "ooxml")
    assert converted.reused_blocks == 0


@pytest.mark.parametrize("payload_type", ["ooxml", "docx"])
def test_one_paragraph_edit_in_a_long_document_reuses_every_other_block(long_document, payload_type):
    state = IncrementalConverter()
    assert_converts_as_full(state, content_of(long_document, payload_type), payload_type)
    edited = with_span_text(long_document, middle(text_paragraph_indexes(long_document)), "Changed words ")
    converted = assert_converts_as_full(state, content_of(edited, payload_type), payload_type)
    blocks = block_count(edited)
    assert blocks > 150
    assert blocks - 3 <= converted.reused_blocks <= blocks - 1


def test_edits_one_after_another_each_reuse_the_rest(long_document):
    state = IncrementalConverter()
    document = long_document
    assert_converts_as_full(state, document.flat_opc(), "ooxml")
    for number, index in enumerate(text_paragraph_indexes(document)[::15]):
        document = with_span_text(document, index, f"Edit number {number} ")
        converted = assert_converts_as_full(state, document.flat_opc(), "ooxml")
        assert converted.reused_blocks >= block_count(document) - 3


def part_edits():
    document = generated_document(2024, pages=10)
    paragraph = text_paragraph_indexes(document)[3]
    return {
        "style renamed": lambda d: with_style_changed(d, ("Heading2", "name", "Heading Two")),
        "style aligned": lambda d: with_style_changed(d, ("Heading1", "jc", "center")),
        "style colour": lambda d: with_style_changed(d, STYLE_CHANGES[-1]),
        "numbering format": lambda d: with_numbering_changed(d, 1, 0),
        "numbering restart": lambda d: apply_edit(d, Edit("change_numbering", to=2)),
        "footnote text": lambda d: apply_edit(d, Edit("edit_footnote", at=1, seed=5)),
        "endnote text": lambda d: apply_edit(d, Edit("edit_endnote", at=0, seed=5)),
        "footnote added": lambda d: with_footnote_added(d, paragraph, "A new note."),
        "footnote removed": lambda d: apply_edit(d, Edit("remove_footnote", at=2)),
    }


@pytest.mark.parametrize("edit", sorted(part_edits()))
def test_edit_of_styles_numbering_or_notes_falls_back_to_a_full_conversion(long_document, edit):
    state = IncrementalConverter()
    assert_converts_as_full(state, long_document.flat_opc(), "ooxml")
    edited = part_edits()[edit](long_document)
    assert edited.flat_opc() != long_document.flat_opc()
    converted = assert_converts_as_full(state, edited.flat_opc(), "ooxml")
    assert converted.reused_blocks == 0
    # Back to where it was: right again.
    assert_converts_as_full(state, long_document.flat_opc(), "ooxml")


def test_edit_next_to_a_footnote_reference(long_document):
    state = IncrementalConverter()
    assert_converts_as_full(state, long_document.flat_opc(), "ooxml")
    index = middle(note_reference_indexes(long_document))
    edited = with_span_text(long_document, index, "words just before the note", before_note=True)
    converted = assert_converts_as_full(state, edited.flat_opc(), "ooxml")
    assert "words just before the note<sup>" in converted.html
    assert converted.reused_blocks >= block_count(edited) - 3


def test_new_paragraph_at_the_top_reuses_the_blocks_that_moved_down(long_document):
    state = IncrementalConverter()
    assert_converts_as_full(state, long_document.flat_opc(), "ooxml")
    edited = with_paragraph_inserted(long_document, 0, "A new first paragraph.")
    converted = assert_converts_as_full(state, edited.flat_opc(), "ooxml")
    assert (
        converted.html.startswith('<header class="doc-header">')
        and "<p>A new first paragraph.</p>" in converted.html
    )
    assert converted.reused_blocks >= block_count(long_document) - 3


def test_deleting_a_paragraph_reuses_the_other_blocks(long_document):
    state = IncrementalConverter()
    assert_converts_as_full(state, long_document.flat_opc(), "ooxml")
    index = middle(text_paragraph_indexes(long_document))
    edited = apply_edit(long_document, Edit("delete_block", at=index))
    assert changed_parts(long_document, edited) == {"/word/document.xml"}
    converted = assert_converts_as_full(state, edited.flat_opc(), "ooxml")
    assert converted.reused_blocks >= block_count(edited) - 2


@pytest.mark.parametrize("kind", ["footnote", "endnote"])
def test_note_references_renumber_when_a_paragraph_with_a_note_moves_to_the_top(long_document, kind):
    # Only the body changes: the notes part is the same, every reference's number is not.
    state = IncrementalConverter()
    assert_converts_as_full(state, long_document.flat_opc(), "ooxml")
    last = note_reference_indexes(long_document, kind)[-1]
    moved = apply_edit(long_document, Edit("move_block", at=last, to=0))
    converted = assert_converts_as_full(state, moved.flat_opc(), "ooxml")
    assert f'href="#doc-{kind}-' in converted.html
    # And a new note at the top: the notes part changes too.
    with_note = with_footnote_added(moved, 0, "The first note now.")
    assert_converts_as_full(state, with_note.flat_opc(), "ooxml")
    assert_converts_as_full(state, long_document.flat_opc(), "ooxml")


def test_comment_labels_renumber_when_a_commented_paragraph_moves_to_the_top(long_document):
    state = IncrementalConverter()
    document = apply_edit(
        long_document, Edit("add_comment", at=len(text_paragraph_indexes(long_document)) - 1)
    )
    assert_converts_as_full(state, document.flat_opc(), "ooxml")
    moved = apply_edit(document, Edit("move_block", at=comment_indexes(document)[-1], to=0))
    converted = assert_converts_as_full(state, moved.flat_opc(), "ooxml")
    assert "<dl>" in converted.html


def test_list_item_edits_in_the_middle_of_a_list():
    document = generated_document(77, pages=3)
    state = IncrementalConverter()
    assert_converts_as_full(state, document.flat_opc(), "ooxml")
    items = list_item_indexes(document)
    index = middle(items)
    position = items.index(index)
    steps = [
        Edit("edit_list_item", at=position, seed=1),
        Edit("list_level", at=position, to=2),
        Edit("list_level", at=position, to=0),
        Edit("list_type", at=0, to=0),  # to the bulleted list
        Edit("insert_list_item", at=position, seed=2),
        Edit("delete_block", at=index),
        Edit("change_numbering", at=1, to=1),  # numbering.xml: level 2 of the numbered lists
    ]
    for edit in steps:
        document = apply_edit(document, edit)
        converted = assert_converts_as_full(state, document.flat_opc(), "ooxml")
    assert "<ol>" in converted.html and "<ul>" in converted.html


def test_list_item_text_edit_reuses_most_blocks():
    document = generated_document(77, pages=10)
    state = IncrementalConverter()
    assert_converts_as_full(state, document.flat_opc(), "ooxml")
    items = list_item_indexes(document)
    edited = apply_edit(document, Edit("edit_list_item", at=len(items) // 2, seed=3))
    converted = assert_converts_as_full(state, edited.flat_opc(), "ooxml")
    # The whole list may be converted again; the rest of the document is not.
    assert converted.reused_blocks >= block_count(edited) - 10


def test_one_converter_fed_two_sessions_documents_in_turn():
    first, second = generated_document(1, pages=2), generated_document(2, pages=2)
    state = IncrementalConverter()
    for step in range(8):
        first = apply_edit(first, Edit("edit_text", at=step, seed=step))
        assert_converts_as_full(state, first.flat_opc(), "ooxml")
        assert_converts_as_full(state, second.flat_opc(), "ooxml")
        second = apply_edit(second, Edit("insert_paragraph", at=step * 3, seed=step))
    third = generated_document(3, pages=1)
    for document in (first, third, first, second, third, third):
        assert_converts_as_full(state, document.flat_opc(), "ooxml")


def test_payload_type_may_change_between_updates():
    document = generated_document(5, pages=2)
    state = IncrementalConverter()
    assert_converts_as_full(state, document.flat_opc(), "ooxml")
    assert_converts_as_full(state, document.docx_base64(), "docx")
    edited = apply_edit(document, Edit("edit_text", at=3, seed=1))
    assert_converts_as_full(state, edited.flat_opc(), "ooxml")
    assert_converts_as_full(state, edited.docx(), "docx")  # the file itself, as the REST API may send it
    assert_converts_as_full(state, document.docx(), "docx")


def malformed_block(document, text=None):
    """The document's text (or its main part's) with one paragraph's markup broken."""
    text = document.flat_opc() if text is None else text
    start, end, _ = body_blocks(text)[text_paragraph_indexes(document)[2]]
    block = text[start:end]
    return text[:start] + block.replace("</w:t>", "</w:tt>", 1) + text[end:]


@pytest.mark.parametrize(
    "bad",
    [
        lambda document: "<not-word/>",
        lambda document: document.flat_opc()[: len(document.flat_opc()) // 2],
        malformed_block,
        lambda document: document.flat_opc().replace('w:numId w:val="2"', 'w:numId w:val="2" w:val="3"', 1),
    ],
    ids=["not word", "cut short", "malformed block", "duplicate attribute"],
)
def test_bad_document_in_the_middle_leaves_the_converter_usable(bad):
    document = generated_document(9, pages=3)
    state = IncrementalConverter()
    assert_converts_as_full(state, document.flat_opc(), "ooxml")
    with pytest.raises(ConversionError) as refused:
        state.convert(bad(document), "ooxml")
    with pytest.raises(ConversionError) as full:
        convert_payload(bad(document), "ooxml")
    assert refused.value.reason == full.value.reason
    edited = apply_edit(document, Edit("edit_text", at=4, seed=4))
    assert_converts_as_full(state, edited.flat_opc(), "ooxml")
    assert_converts_as_full(state, document.flat_opc(), "ooxml")


def test_bad_docx_in_the_middle_leaves_the_converter_usable():
    document = generated_document(9, pages=2)
    state = IncrementalConverter()
    assert_converts_as_full(state, document.docx_base64(), "docx")
    _, main_part = docx_document_part(document.docx())
    broken_block = docx_with_document_part(document.docx(), malformed_block(document, main_part))
    for bad in (
        "not base64!",
        base64.b64encode(document.docx()[:500]).decode(),
        base64.b64encode(broken_block).decode(),
    ):
        with pytest.raises(ConversionError) as refused:
            state.convert(bad, "docx")
        with pytest.raises(ConversionError) as full:
            convert_payload(bad, "docx")
        assert refused.value.reason == full.value.reason
    edited = apply_edit(document, Edit("edit_cell", at=0, to=2, seed=4))
    assert_converts_as_full(state, edited.docx_base64(), "docx")


def test_section_break_before_the_first_section_changes_the_header():
    document = generated_document(4, pages=3)
    state = IncrementalConverter()
    first = assert_converts_as_full(state, document.flat_opc(), "ooxml")
    edited = apply_edit(document, Edit("add_section_break", at=1, to=1, seed=8))
    converted = assert_converts_as_full(state, edited.flat_opc(), "ooxml")
    assert converted.html.split("</header>")[0] != first.html.split("</header>")[0]
    assert "Section header" in converted.html
    # And back: the section break taken out again.
    assert_converts_as_full(state, document.flat_opc(), "ooxml")


def test_hyperlink_added_with_its_relationship():
    document = generated_document(6, pages=2)
    state = IncrementalConverter()
    assert_converts_as_full(state, document.flat_opc(), "ooxml")
    edited = apply_edit(document, Edit("add_link", at=2, seed=1))
    converted = assert_converts_as_full(state, edited.flat_opc(), "ooxml")
    assert 'href="https://example.com/page/' in converted.html


def test_new_editing_session_and_an_edit_together():
    document = generated_document(6, pages=2)
    state = IncrementalConverter()
    assert_converts_as_full(state, document.flat_opc(), "ooxml")
    edited = apply_edit(
        apply_edit(document, Edit("new_editing_session", seed=3)), Edit("edit_text", at=5, seed=3)
    )
    assert_converts_as_full(state, edited.flat_opc(), "ooxml")


def test_body_emptied_and_filled_again():
    document = generated_document(6, pages=0)
    state = IncrementalConverter()
    assert_converts_as_full(state, document.flat_opc(), "ooxml")
    empty = apply_edit(document, Edit("delete_block"))
    assert empty.blocks == []
    assert_converts_as_full(state, empty.flat_opc(), "ooxml")
    assert_converts_as_full(state, with_paragraph_inserted(empty, 0, "Back again.").flat_opc(), "ooxml")


def test_limits_hold_for_an_incremental_conversion():
    document = generated_document(10, pages=3)
    fits = len(convert_payload(document.flat_opc()).html.encode())
    limits = Limits(max_html_bytes=fits + 100)
    state = IncrementalConverter(limits=limits)
    assert (
        state.convert(document.flat_opc(), "ooxml").html
        == convert_payload(document.flat_opc(), limits=limits).html
    )
    grown = with_span_text(document, text_paragraph_indexes(document)[1], "longer " * 200)
    with pytest.raises(ConversionError) as refused:
        state.convert(grown.flat_opc(), "ooxml")
    with pytest.raises(ConversionError) as full:
        convert_payload(grown.flat_opc(), limits=limits)
    assert refused.value.reason == full.value.reason
    assert (
        state.convert(document.flat_opc(), "ooxml").html
        == convert_payload(document.flat_opc(), limits=limits).html
    )
