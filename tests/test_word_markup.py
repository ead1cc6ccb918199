"""Generated Word documents: Word's markup, deterministic, alike in both forms, edits touch what they say."""

import io
import re
import zipfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversion import convert_payload
from tests.word_markup import (
    EDITS,
    STYLE_CHANGES,
    Edit,
    apply_edit,
    block_xml,
    body_blocks,
    changed_parts,
    document_parts,
    docx_document_part,
    docx_with_document_part,
    edit_sequences,
    generated_document,
    text_paragraph_indexes,
    with_footnote_added,
    with_span_text,
    with_style_changed,
)


def parts_of(document):
    return {name: xml for name, _, xml in document_parts(document)}


def changed_blocks(before, after):
    old = [block_xml(block) for block in before.blocks]
    new = [block_xml(block) for block in after.blocks]
    return len(set(new) - set(old)), len(set(old) - set(new))


def test_same_seed_gives_the_same_document():
    assert generated_document(11, pages=2).flat_opc() == generated_document(11, pages=2).flat_opc()
    assert generated_document(11, pages=2).docx() == generated_document(11, pages=2).docx()
    assert generated_document(11, pages=2).flat_opc() != generated_document(12, pages=2).flat_opc()


def test_document_carries_words_usual_markup():
    text = generated_document(3, pages=7).flat_opc()
    for markup in (
        "<pkg:package",
        'pkg:name="/word/_rels/document.xml.rels"',
        'pkg:name="/word/numbering.xml"',
        'pkg:name="/word/footnotes.xml"',
        'pkg:name="/word/endnotes.xml"',
        'pkg:name="/word/comments.xml"',
        "<w:rsids>",
        "w:rsidR=",
        "w:rsidRDefault=",
        "w14:paraId=",
        '<w:proofErr w:type="spellStart"/>',
        "<w:b/>",
        '<w:pStyle w:val="Heading1"/>',
        "<w:numPr>",
        "<w:startOverride",
        "<w:gridSpan",
        '<w:vMerge w:val="restart"/>',
        "<w:footnoteReference",
        "<w:endnoteReference",
        "<w:commentRangeStart",
        "<w:commentReference",
        "<w:bookmarkStart",
        "<w:hyperlink r:id=",
        "<w:hyperlink w:anchor=",
    ):
        assert markup in text, markup
    # A section break inside the body (in a paragraph's properties), with a header of its own.
    assert re.search(r"<w:pPr>(?:(?!</w:pPr>).)*<w:sectPr", text)
    assert text.count("<w:headerReference") >= 2


def test_document_converts_with_every_feature_in_both_forms():
    document = generated_document(3, pages=7)
    flat = convert_payload(document.flat_opc(), "ooxml")
    packed = convert_payload(document.docx_base64(), "docx")
    assert flat.html == packed.html
    assert flat.warnings == packed.warnings
    for html in (
        "<h1>",
        "<h2>",
        "<ul>",
        "<ol>",
        'colspan="2"',
        'rowspan="2"',
        "<table>",
        "doc-footnote-1",
        "doc-endnote-1",
        "<dl>",
        '<header class="doc-header">',
        '<footer class="doc-footer">',
        "<strong>",
        "<em>",
        "<u>",
        'href="https://example.org/',
    ):
        assert html in flat.html, html


def test_body_blocks_are_the_top_level_children_of_the_body():
    document = generated_document(5, pages=3)
    text = parts_of(document)["/word/document.xml"]
    blocks = body_blocks(text)
    assert [text[start:end] for start, end, _ in blocks[:-1]] == [
        block_xml(block) for block in document.blocks
    ]
    assert blocks[-1][2] == "w:sectPr"


def test_body_blocks_of_a_flat_opc_text_are_those_of_its_main_part():
    document = generated_document(5, pages=1)
    text = document.flat_opc()
    assert [text[start:end] for start, end, _ in body_blocks(text)[:-1]] == [
        block_xml(block) for block in document.blocks
    ]


def test_docx_main_part_can_be_replaced():
    document = generated_document(5, pages=1)
    name, text = docx_document_part(document.docx())
    assert name == "word/document.xml"
    replaced = docx_with_document_part(document.docx(), text.replace("<w:body>", "<w:body><w:p/>"))
    with zipfile.ZipFile(io.BytesIO(replaced)) as archive:
        assert "<w:body><w:p/>" in archive.read("word/document.xml").decode()
        assert archive.read("word/styles.xml") == zipfile.ZipFile(io.BytesIO(document.docx())).read(
            "word/styles.xml"
        )


def test_text_edit_changes_one_block_and_nothing_beside_the_body():
    document = generated_document(8, pages=4)
    index = text_paragraph_indexes(document)[5]
    edited = with_span_text(document, index, "a new sentence ")
    assert changed_parts(document, edited) == {"/word/document.xml"}
    assert changed_blocks(document, edited) == (1, 1)


def test_style_edit_changes_only_the_styles_part():
    document = generated_document(8, pages=1)
    for change in STYLE_CHANGES:
        assert changed_parts(document, with_style_changed(document, change)) == {"/word/styles.xml"}


def test_footnote_edit_changes_one_block_and_the_footnotes():
    document = generated_document(8, pages=2)
    edited = with_footnote_added(document, text_paragraph_indexes(document)[2], "a new note")
    assert changed_parts(document, edited) == {"/word/document.xml", "/word/footnotes.xml"}
    assert changed_blocks(document, edited) == (1, 1)


def test_deleting_the_only_reference_to_a_note_drops_the_note():
    document = generated_document(8, pages=2)
    assert document.footnotes
    edited = document
    for _ in range(len(document.footnotes)):
        edited = apply_edit(edited, Edit("remove_footnote"))
    assert edited.footnotes == {}
    assert "<w:footnoteReference" not in edited.flat_opc()


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(seed=st.integers(0, 1000), edits=edit_sequences(min_size=len(EDITS), max_size=len(EDITS) + 10))
def test_every_edit_leaves_a_document_that_converts_alike_in_both_forms(seed, edits):
    document = generated_document(seed, pages=1)
    for edit in edits:
        document = apply_edit(document, edit)
        flat = convert_payload(document.flat_opc(), "ooxml")
        packed = convert_payload(document.docx(), "docx")
        assert (flat.html, flat.warnings) == (packed.html, packed.warnings), edit
