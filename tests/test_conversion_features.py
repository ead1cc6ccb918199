"""What readers notice survives: formatting, alignment, merges, notes, comments, revisions, headers."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from mammoth import documents

from conversion import convert_payload, sanitise_html
from conversion.word_features import WordPackage, alignment_transform

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_NS = "http://schemas.microsoft.com/office/2006/xmlPackage"
RELS_TYPE = "application/vnd.openxmlformats-package.relationships+xml"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
STYLES = (
    f'<w:styles xmlns:w="{W_NS}">'
    '<w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/>'
    '<w:pPr><w:jc w:val="center"/></w:pPr></w:style>'
    '<w:style w:type="paragraph" w:styleId="Subtitle"><w:name w:val="Subtitle"/>'
    '<w:basedOn w:val="Title"/></w:style>'
    '<w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/></w:style>'
    '<w:style w:type="paragraph" w:styleId="berschrift1"><w:name w:val="heading 1"/></w:style>'
    "</w:styles>"
)


def package(
    body: str,
    header: str | None = None,
    footer: str | None = None,
    header_image: bool = False,
    styles_name: str = "styles.xml",
) -> str:
    """A Flat OPC package as getOoxml() gives it, with styles and optional first-section header/footer."""
    references = ""
    relations = f'<Relationship Id="rIdS" Type="{R_NS}/styles" Target="{styles_name}"/>'
    parts = [(f"/word/{styles_name}", "application/xml", STYLES)]
    for kind, content in (("header", header), ("footer", footer)):
        if content is None:
            continue
        tag = "hdr" if kind == "header" else "ftr"
        references += f'<w:{kind}Reference w:type="default" r:id="rId{kind}"/>'
        relations += f'<Relationship Id="rId{kind}" Type="{R_NS}/{kind}" Target="{kind}1.xml"/>'
        parts.append(
            (
                f"/word/{kind}1.xml",
                "application/xml",
                f'<w:{tag} xmlns:w="{W_NS}" xmlns:r="{R_NS}">{content}</w:{tag}>',
            )
        )
    if header_image:
        parts.append(
            (
                "/word/_rels/header1.xml.rels",
                RELS_TYPE,
                '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                f'<Relationship Id="rIdP" Type="{R_NS}/image" Target="media/logo.png"/></Relationships>',
            )
        )
    document = (
        f'<w:document xmlns:w="{W_NS}" xmlns:r="{R_NS}"><w:body>{body}'
        f"<w:sectPr>{references}</w:sectPr></w:body></w:document>"
    )
    parts += [
        (
            "/_rels/.rels",
            RELS_TYPE,
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{R_NS}/officeDocument" Target="word/document.xml"/>'
            "</Relationships>",
        ),
        (
            "/word/_rels/document.xml.rels",
            RELS_TYPE,
            f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{relations}'
            "</Relationships>",
        ),
        (
            "/word/document.xml",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
            document,
        ),
    ]
    xml_parts = "".join(
        f'<pkg:part pkg:name="{name}" pkg:contentType="{kind}"><pkg:xmlData>{xml}</pkg:xmlData></pkg:part>'
        for name, kind, xml in parts
    )
    binary = (
        '<pkg:part pkg:name="/word/media/logo.png" pkg:contentType="image/png">'
        f"<pkg:binaryData>{base64.b64encode(PNG).decode()}</pkg:binaryData></pkg:part>"
        if header_image
        else ""
    )
    return f'<pkg:package xmlns:pkg="{PKG_NS}">{xml_parts}{binary}</pkg:package>'


def run(text: str, properties: str = "") -> str:
    return f'<w:r><w:rPr>{properties}</w:rPr><w:t xml:space="preserve">{text}</w:t></w:r>'


def paragraph(content: str, properties: str = "") -> str:
    return f"<w:p><w:pPr>{properties}</w:pPr>{content}</w:p>"


def convert(body: str, **parts) -> str:
    return convert_payload(package(body, **parts), "ooxml").html


def corpus_html(name: str) -> str:
    return convert_payload(base64.b64encode((CORPUS / "docx" / name).read_bytes()).decode(), "docx").html


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ('<w:u w:val="single"/>', "<p><u>marked</u></p>"),
        ('<w:u w:val="double"/>', "<p><u>marked</u></p>"),
        ("<w:strike/>", "<p><s>marked</s></p>"),
        ('<w:vertAlign w:val="superscript"/>', "<p><sup>marked</sup></p>"),
        ('<w:vertAlign w:val="subscript"/>', "<p><sub>marked</sub></p>"),
        ('<w:highlight w:val="yellow"/>', "<p><mark>marked</mark></p>"),
        ("<w:b/><w:i/>", "<p><strong><em>marked</em></strong></p>"),
    ],
)
def test_run_formatting_is_kept(properties, expected):
    assert convert(paragraph(run("marked", properties))) == expected


def test_paragraph_alignment_becomes_a_class():
    body = (
        paragraph(run("Centred"), '<w:jc w:val="center"/>')
        + paragraph(run("1 May 2025"), '<w:jc w:val="right"/>')
        + paragraph(run("Even"), '<w:jc w:val="both"/>')
        + paragraph(run("Left"), '<w:jc w:val="left"/>')
        + paragraph(run("Plain"))
    )
    assert convert(body) == (
        '<p class="align-center">Centred</p><p class="align-right">1 May 2025</p>'
        '<p class="align-justify">Even</p><p>Left</p><p>Plain</p>'
    )


def test_alignment_comes_from_the_style_and_what_it_is_based_on():
    body = (
        paragraph(run("A title"), '<w:pStyle w:val="Title"/>')
        + paragraph(run("A subtitle"), '<w:pStyle w:val="Subtitle"/>')
        + paragraph(run("Right after all"), '<w:pStyle w:val="Title"/><w:jc w:val="right"/>')
    )
    assert convert(body) == (
        '<p class="align-center">A title</p><p class="align-center">A subtitle</p>'
        '<p class="align-right">Right after all</p>'
    )


def test_aligned_heading_stays_a_heading():
    body = paragraph(run("Chapter one"), '<w:pStyle w:val="Heading1"/><w:jc w:val="center"/>')
    assert convert(body) == '<h1 class="align-center">Chapter one</h1>'


def test_table_cell_merges_become_colspan_and_rowspan():
    def cell(properties: str, text: str) -> str:
        return f"<w:tc><w:tcPr>{properties}</w:tcPr>{paragraph(run(text))}</w:tc>"

    span, restart, merged = '<w:gridSpan w:val="2"/>', '<w:vMerge w:val="restart"/>', "<w:vMerge/>"
    body = (
        f"<w:tbl><w:tr>{cell(span, 'wide')}{cell(restart, 'tall')}</w:tr>"
        f"<w:tr>{cell('', 'a')}{cell('', 'b')}{cell(merged, '')}</w:tr></w:tbl>"
    )
    html = convert(body)
    assert '<td colspan="2"><p>wide</p></td>' in html
    assert '<td rowspan="2"><p>tall</p></td>' in html
    assert html.count("<td") == 4


def test_first_section_header_and_footer_are_shown_around_the_body():
    html = convert(
        paragraph(run("Body text")),
        header=paragraph(run("Quarterly report"), '<w:jc w:val="right"/>'),
        footer=paragraph(run("Confidential")),
    )
    assert html == (
        '<header class="doc-header"><p class="align-right">Quarterly report</p></header>'
        "<p>Body text</p>"
        '<footer class="doc-footer"><p>Confidential</p></footer>'
    )


def test_header_uses_the_documents_styles_wherever_they_are_kept():
    # A German Word names its heading style "berschrift1"; only its name says heading 1.
    html = convert(
        paragraph(run("Body")),
        header=paragraph(run("Titel"), '<w:pStyle w:val="berschrift1"/>'),
        styles_name="customStyles.xml",
    )
    assert html == '<header class="doc-header"><h1>Titel</h1></header><p>Body</p>'


def test_header_picture_is_embedded_safely():
    picture = (
        '<w:r><w:drawing><wp:inline xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/'
        'wordprocessingDrawing"><wp:docPr id="1" name="Logo" descr="logo"/>'
        '<a:graphic xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">'
        '<a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/picture">'
        '<pic:pic xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture"><pic:blipFill>'
        '<a:blip r:embed="rIdP"/></pic:blipFill></pic:pic></a:graphicData></a:graphic></wp:inline>'
        "</w:drawing></w:r>"
    )
    html = convert(paragraph(run("Body")), header=f"<w:p>{picture}</w:p>", header_image=True)
    encoded = base64.b64encode(PNG).decode()
    assert html.startswith(
        f'<header class="doc-header"><p><img alt="logo" src="data:image/png;base64,{encoded}">'
    )


def test_footnotes_and_endnotes_are_kept_as_linked_notes():
    html = corpus_html("pandoc-notes.docx")
    assert 'href="#doc-footnote-1"' in html and 'id="doc-footnote-1"' in html
    assert 'href="#doc-endnote-' in html and 'id="doc-endnote-' in html


def test_comments_are_shown_as_marked_notes():
    html = corpus_html("mammoth-comments.docx")
    assert '<sup><a href="#doc-comment-0" id="doc-comment-ref-0"' in html
    assert '<dt id="doc-comment-0">Comment [MW1]</dt><dd><p>' in html


def test_tracked_insertions_are_shown_and_deletions_hidden():
    # "two exciting " is a tracked insertion; "n excessively modified" a tracked deletion.
    assert corpus_html("pandoc-track-insertion.docx") == "<p>This is a text with two exciting insertions.</p>"
    assert corpus_html("pandoc-track-deletion.docx") == "<p>This is a text with a deletion.</p>"
    body = paragraph(
        run("Kept ")
        + '<w:ins w:id="1" w:author="a">'
        + run("added")
        + '</w:ins><w:del w:id="2" w:author="a"><w:r><w:delText>removed</w:delText></w:r></w:del>'
    )
    assert convert(body) == "<p>Kept added</p>"


def test_list_items_keep_their_list_markup_when_aligned():
    # A centred list item stays a list item: the list markup matters more than the alignment.
    item = documents.paragraph(
        [], numbering=documents.numbering_level(0, is_ordered=False), alignment="center"
    )
    plain = documents.paragraph([], alignment="center")
    transformed = alignment_transform(WordPackage())(documents.document([item, plain]))
    assert transformed.children[0] == item
    assert transformed.children[1].style_name == "collab-aligned:p:center"


def test_only_collabs_own_classes_pass_the_sanitiser():
    html = '<p class="align-center evil-overlay">x</p><div class="login-form">y</div><mark>z</mark>'
    assert sanitise_html(html) == '<p class="align-center">x</p><div>y</div><mark>z</mark>'
    kept = '<header class="doc-header"><p>h</p></header><footer class="doc-footer"><p>f</p></footer>'
    assert sanitise_html(kept) == kept
