"""Right-to-left text keeps its direction: paragraphs, headings, lists, tables and runs get dir="rtl"."""

from __future__ import annotations

import base64
import io
import re

import pytest
from mammoth.docx import office_xml

from conversion import ConversionError, convert_payload, direction, sanitise_html, xml_parser
from tests.documents import corpus_file
from tests.test_conversion_features import convert as convert_with_header
from tests.test_conversion_safety import PKG_NS, R_NS, W_NS, as_base64, document_xml, docx, relationships

PERSIAN = "سلام دنیا"
ARABIC = "مرحبا بالعالم"
HEBREW = "שלום עולם"
BIDI = "<w:bidi/>"
RTL = "<w:rtl/>"


def run(text: str, properties: str = "") -> str:
    return f'<w:r><w:rPr>{properties}</w:rPr><w:t xml:space="preserve">{text}</w:t></w:r>'


def paragraph(content: str, properties: str = "") -> str:
    return f"<w:p><w:pPr>{properties}</w:pPr>{content}</w:p>"


def item(text: str, list_id: int, level: int = 0, properties: str = BIDI) -> str:
    numbering = f'<w:numPr><w:ilvl w:val="{level}"/><w:numId w:val="{list_id}"/></w:numPr>'
    return paragraph(run(text, RTL if properties else ""), numbering + properties)


def style(style_id: str, properties: str = "", based_on: str | None = None, kind: str = "paragraph") -> str:
    parent = f'<w:basedOn w:val="{based_on}"/>' if based_on else ""
    tag = "pPr" if kind != "character" else "rPr"
    return (
        f'<w:style w:type="{kind}" w:styleId="{style_id}"><w:name w:val="{style_id}"/>{parent}'
        f"<w:{tag}>{properties}</w:{tag}></w:style>"
    )


NUMBERING = (
    f'<w:numbering xmlns:w="{W_NS}">'
    '<w:abstractNum w:abstractNumId="0"><w:lvl w:ilvl="0"><w:numFmt w:val="decimal"/></w:lvl>'
    '<w:lvl w:ilvl="1"><w:numFmt w:val="decimal"/></w:lvl></w:abstractNum>'
    '<w:abstractNum w:abstractNumId="1"><w:lvl w:ilvl="0"><w:numFmt w:val="bullet"/></w:lvl>'
    '<w:lvl w:ilvl="1"><w:numFmt w:val="bullet"/></w:lvl></w:abstractNum>'
    '<w:num w:numId="1"><w:abstractNumId w:val="0"/></w:num>'
    '<w:num w:numId="2"><w:abstractNumId w:val="1"/></w:num>'
    "</w:numbering>"
)
NUMBERED, BULLETED = 1, 2


def parts(body: str, styles: str = "", defaults: str = "", footnotes: str = "") -> dict[str, str]:
    """The XML parts of a document with this body, styles and document defaults, and a numbering part."""
    styles_xml = (
        f'<w:styles xmlns:w="{W_NS}"><w:docDefaults><w:pPrDefault><w:pPr>{defaults}</w:pPr></w:pPrDefault>'
        f"</w:docDefaults>{styles}</w:styles>"
    )
    relations = [
        ("rIdS", f"{R_NS}/styles", "styles.xml", None),
        ("rIdN", f"{R_NS}/numbering", "numbering.xml", None),
    ]
    found = {"word/styles.xml": styles_xml, "word/numbering.xml": NUMBERING}
    if footnotes:
        found["word/footnotes.xml"] = f'<w:footnotes xmlns:w="{W_NS}">{footnotes}</w:footnotes>'
        relations.append(("rIdF", f"{R_NS}/footnotes", "footnotes.xml", None))
    found["_rels/.rels"] = relationships(("rId1", f"{R_NS}/officeDocument", "word/document.xml", None))
    found["word/_rels/document.xml.rels"] = relationships(*relations)
    found["word/document.xml"] = document_xml(body)
    return found


def as_flat_opc(found: dict[str, str]) -> str:
    """These parts as a Flat OPC package, as Word's getOoxml() gives a document."""
    packed = "".join(
        f'<pkg:part pkg:name="/{name}" pkg:contentType="application/xml">'
        f"<pkg:xmlData>{xml}</pkg:xmlData></pkg:part>"
        for name, xml in found.items()
    )
    return f'<pkg:package xmlns:pkg="{PKG_NS}">{packed}</pkg:package>'


def convert(body: str, styles: str = "", defaults: str = "", footnotes: str = "", style_map: str = "") -> str:
    """Sanitised HTML of a .docx with this body, these paragraph styles and document defaults."""
    found = parts(body, styles, defaults, footnotes)
    document = found.pop("word/document.xml")
    rels = found.pop("word/_rels/document.xml.rels")
    del found["_rels/.rels"]
    if style_map:
        found["mammoth/style-map"] = style_map
    return convert_payload(as_base64(docx(document, document_rels=rels, extra=found)), "docx").html


def test_flat_opc_and_docx_convert_alike():
    body = paragraph(run(HEBREW, RTL), BIDI) + item(ARABIC, BULLETED)
    assert convert_payload(as_flat_opc(parts(body)), "ooxml").html == convert(body)


# Paragraphs


def test_persian_arabic_and_hebrew_paragraphs_are_right_to_left():
    body = "".join(paragraph(run(text, RTL), BIDI) for text in (PERSIAN, ARABIC, HEBREW))
    assert convert(body) == f'<p dir="rtl">{PERSIAN}</p><p dir="rtl">{ARABIC}</p><p dir="rtl">{HEBREW}</p>'


def test_left_to_right_paragraphs_have_no_direction():
    assert convert(paragraph(run("Plain English")) + paragraph(run("Marked"), '<w:bidi w:val="0"/>')) == (
        "<p>Plain English</p><p>Marked</p>"
    )


@pytest.mark.parametrize("off", ["0", "false", "off"])
def test_bidi_switched_off_keeps_a_paragraph_left_to_right_in_a_right_to_left_document(off):
    styles = style("Normal", BIDI).replace('w:type="paragraph"', 'w:type="paragraph" w:default="1"')
    body = paragraph(run("Left to right"), f'<w:bidi w:val="{off}"/>') + paragraph(run(HEBREW))
    assert convert(body, styles) == f'<p>Left to right</p><p dir="rtl">{HEBREW}</p>'


def test_direction_comes_from_the_paragraph_style_and_what_it_is_based_on():
    styles = (
        style("Arabic", BIDI)
        + style("ArabicQuote", based_on="Arabic")
        + style("ArabicQuoteInLatin", '<w:bidi w:val="false"/>', based_on="ArabicQuote")
        + style("Latin")
    )
    body = (
        paragraph(run(ARABIC), '<w:pStyle w:val="Arabic"/>')
        + paragraph(run(PERSIAN), '<w:pStyle w:val="ArabicQuote"/>')
        + paragraph(run("Latin after all"), '<w:pStyle w:val="ArabicQuoteInLatin"/>')
        + paragraph(run("Latin"), '<w:pStyle w:val="Latin"/>')
        + paragraph(run("Direct wins"), '<w:pStyle w:val="Arabic"/><w:bidi w:val="0"/>')
    )
    assert convert(body, styles) == (
        f'<p dir="rtl">{ARABIC}</p><p dir="rtl">{PERSIAN}</p>'
        "<p>Latin after all</p><p>Latin</p><p>Direct wins</p>"
    )


def test_document_defaults_make_paragraphs_right_to_left_unless_their_style_says_otherwise():
    styles = style("Latin", '<w:bidi w:val="0"/>') + style("Plain")
    body = (
        paragraph(run(HEBREW))
        + paragraph(run(HEBREW), '<w:pStyle w:val="Plain"/>')
        + paragraph(run("Latin"), '<w:pStyle w:val="Latin"/>')
    )
    assert (
        convert(body, styles, defaults=BIDI)
        == f'<p dir="rtl">{HEBREW}</p><p dir="rtl">{HEBREW}</p><p>Latin</p>'
    )


def test_alignment_of_a_right_to_left_paragraph_is_relative_to_its_direction():
    # Word reads "left" and "right" as the start and the end of the paragraph's direction.
    aligned = [("left", ""), ("start", ""), ("right", "align-left"), ("end", "align-left")]
    aligned += [("center", "align-center"), ("both", "align-justify"), ("distribute", "align-justify")]
    body = "".join(paragraph(run(HEBREW), f'{BIDI}<w:jc w:val="{jc}"/>') for jc, _ in aligned)
    body += paragraph(run("Right"), '<w:jc w:val="right"/>')
    expected = "".join(
        f'<p class="{css}" dir="rtl">{HEBREW}</p>' if css else f'<p dir="rtl">{HEBREW}</p>'
        for _, css in aligned
    )
    assert convert(body) == expected + '<p class="align-right">Right</p>'


def test_alignment_from_the_style_follows_the_direction_too():
    styles = style("Closing", f'{BIDI}<w:jc w:val="right"/>') + style("Signature", based_on="Closing")
    body = paragraph(run(ARABIC), '<w:pStyle w:val="Signature"/>')
    assert convert(body, styles) == f'<p class="align-left" dir="rtl">{ARABIC}</p>'


def test_right_to_left_headings_stay_headings():
    styles = style("Heading1").replace('w:name w:val="Heading1"', 'w:name w:val="heading 1"')
    body = paragraph(run(HEBREW), f'<w:pStyle w:val="Heading1"/>{BIDI}') + paragraph(
        run(ARABIC), f'<w:pStyle w:val="Heading1"/>{BIDI}<w:jc w:val="center"/>'
    )
    assert (
        convert(body, styles)
        == f'<h1 dir="rtl">{HEBREW}</h1><h1 class="align-center" dir="rtl">{ARABIC}</h1>'
    )


def test_header_and_footnotes_keep_their_direction():
    assert convert_with_header(paragraph(run("Body")), header=paragraph(run(HEBREW), BIDI)).startswith(
        f'<header class="doc-header"><p dir="rtl">{HEBREW}</p></header>'
    )
    note = (
        f'<w:footnote w:id="1">{paragraph(run(ARABIC, RTL), BIDI)}'
        f"<w:tbl><w:tblPr><w:bidiVisual/></w:tblPr><w:tr><w:tc>{paragraph(run('cell'))}</w:tc></w:tr></w:tbl>"
        "</w:footnote>"
    )
    html = convert(paragraph(run("Body") + '<w:r><w:footnoteReference w:id="1"/></w:r>'), footnotes=note)
    assert (
        f'<li id="doc-footnote-1"><p dir="rtl">{ARABIC}</p>'
        '<table dir="rtl"><tbody><tr><td><p>cell</p></td></tr></tbody></table>' in html
    )


# Runs


def test_right_to_left_runs_in_a_left_to_right_paragraph_are_spans():
    body = paragraph(
        run("Marked ")
        + run(HEBREW, RTL)
        + run(", unmarked ")
        + run(ARABIC)
        + run(", and Persian: ")
        + run(PERSIAN)
    )
    assert convert(body) == (
        f'<p>Marked <span dir="rtl">{HEBREW}</span>, unmarked <span dir="rtl">{ARABIC}</span>, '
        f'and Persian: <span dir="rtl">{PERSIAN}</span></p>'
    )


def test_runs_in_a_right_to_left_paragraph_get_no_span():
    body = paragraph(run(HEBREW, RTL) + run(" (HTML) ") + run(ARABIC), BIDI)
    assert convert(body) == f'<p dir="rtl">{HEBREW} (HTML) {ARABIC}</p>'


def test_neighbouring_right_to_left_runs_share_one_span():
    # Separate spans would each be isolated, and the words of one sentence would come out
    # left to right; the space and the digits between them belong to the sentence.
    body = paragraph(
        run("Say ") + run("سلام") + run(" ") + run("عليكم", "<w:b/>") + run(" 2") + run("!") + run(" and go")
    )
    assert convert(body) == '<p>Say <span dir="rtl">سلام <strong>عليكم</strong></span> 2! and go</p>'


def test_mixed_runs_and_runs_switched_off_are_left_to_the_bidi_algorithm():
    body = paragraph(run(f"Latin and {ARABIC} in one run, ") + run(ARABIC, '<w:rtl w:val="0"/>'))
    assert convert(body) == f"<p>Latin and {ARABIC} in one run, {ARABIC}</p>"


def test_a_marked_run_that_shows_nothing_gets_no_span():
    body = paragraph(run("  ", RTL) + run("Latin") + "<w:r><w:rPr><w:rtl/></w:rPr><w:tab/></w:r>")
    assert convert(body) == "<p>  Latin\t</p>"


def test_right_to_left_link_text_is_in_the_span():
    body = paragraph(
        run("See ") + f'<w:hyperlink w:anchor="target">{run(HEBREW, RTL)}</w:hyperlink>' + run(ARABIC, RTL)
    )
    assert convert(body) == (
        '<p>See <span dir="rtl"><a href="#doc-target" rel="noopener noreferrer">'
        f"{HEBREW}</a>{ARABIC}</span></p>"
    )


# Tables and lists


def test_right_to_left_table_keeps_its_rows():
    def table(properties: str) -> str:
        cells = "".join(f"<w:tc>{paragraph(run(text, RTL), BIDI)}</w:tc>" for text in ("א", "ב"))
        return f"<w:tbl><w:tblPr>{properties}</w:tblPr><w:tr>{cells}</w:tr><w:tr>{cells}</w:tr></w:tbl>"

    html = convert(table("<w:bidiVisual/>") + table('<w:bidiVisual w:val="0"/>'))
    row = '<tr><td><p dir="rtl">א</p></td><td><p dir="rtl">ב</p></td></tr>'
    assert (
        html == f'<table dir="rtl"><tbody>{row}{row}</tbody></table><table><tbody>{row}{row}</tbody></table>'
    )


def test_right_to_left_numbered_and_bulleted_lists():
    body = item("אחת", NUMBERED) + item("שתיים", NUMBERED) + paragraph(run("gap")) + item("واحد", BULLETED)
    body += item("اثنان", BULLETED, level=1) + item("ثلاثة", BULLETED)
    assert convert(body) == (
        '<ol dir="rtl"><li dir="rtl">אחת</li><li dir="rtl">שתיים</li></ol><p>gap</p>'
        '<ul dir="rtl"><li dir="rtl">واحد<ul dir="rtl"><li dir="rtl">اثنان</li></ul></li>'
        '<li dir="rtl">ثلاثة</li></ul>'
    )


def test_a_list_that_changes_direction_starts_a_new_list():
    body = item("one", NUMBERED, properties="") + item("two", NUMBERED, properties="")
    body += item("שלוש", NUMBERED) + item("ארבע", NUMBERED) + item("five", NUMBERED, properties="")
    assert convert(body) == (
        "<ol><li>one</li><li>two</li></ol>"
        '<ol dir="rtl"><li dir="rtl">שלוש</li><li dir="rtl">ארבע</li></ol>'
        "<ol><li>five</li></ol>"
    )


def test_list_items_take_their_direction_from_the_style():
    styles = style("ListArabic", BIDI)
    body = item(ARABIC, BULLETED, properties='<w:pStyle w:val="ListArabic"/>')
    assert convert(body, styles) == f'<ul dir="rtl"><li dir="rtl">{ARABIC}</li></ul>'


# The corpus


def test_hebrew_corpus_document_is_right_to_left_where_word_shows_it():
    html = convert_payload(
        base64.b64encode(corpus_file("docx/oxpt-hebrew.docx").read_bytes()).decode(), "docx"
    ).html
    paragraphs = re.findall(r"<p\b[^>]*>", html)
    # Every paragraph takes w:bidi from the Normal style but one, which switches it off
    # (w:bidi w:val="0"): the centred picture with a few marked blanks before it.
    assert len(paragraphs) == 44
    assert sum('dir="rtl"' in tag for tag in paragraphs) == 43
    assert html.count('dir="rtl"') == 43  # inside right-to-left paragraphs, no spans
    assert re.search(r'<p class="align-center">\s*<img alt="ib2225"', html)
    assert '<p class="align-center" dir="rtl">טיול ליפן אפריל 2014</p>' in html
    assert '<p dir="rtl">שלום רב,</p>' in html
    # w:jc="right" in a right-to-left paragraph is its end: Word shows it at the left.
    assert re.search(r'<p class="align-left" dir="rtl">מרגע נחיתתכם', html)
    assert re.search(r'<p class="align-justify" dir="rtl">ההתרגשות', html)
    assert '<p dir="rtl"><strong>שימו לב' in html


def test_arabic_corpus_document_is_right_to_left_from_its_normal_style():
    html = convert_payload(
        base64.b64encode(corpus_file("docx/docx4j-arabic-numbering.docx").read_bytes()).decode(), "docx"
    ).html
    assert (
        html.count("<p") == html.count('<p dir="rtl">') + html.count('<p class="align-left" dir="rtl">') == 16
    )
    assert '<p dir="rtl">وثيقة تجربة : 123456789</p>' in html


# What a document cannot do


def test_a_documents_own_style_names_cannot_set_direction():
    # Styles named as collab names its own, and names that try to break out of the attribute.
    styles = (
        style("Forged", based_on=None).replace('w:val="Forged"', 'w:val="collab-rtl:p:start"')
        + style("Aligned").replace('w:val="Aligned"', 'w:val="collab-aligned:p:center"')
        + style("Quote").replace('w:val="Quote"', "w:val=\"x' dir='rtl\"")
        + style("Span", kind="character").replace('w:val="Span"', 'w:val="collab-rtl:span"')
        + style("Table", kind="table").replace('w:val="Table"', 'w:val="collab-rtl:table"')
    )
    body = (
        paragraph(run("forged"), '<w:pStyle w:val="Forged"/>')
        + paragraph(run("aligned"), '<w:pStyle w:val="Aligned"/>')
        + paragraph(run("quoted"), '<w:pStyle w:val="Quote"/>')
        + paragraph(run("spanned", '<w:rStyle w:val="Span"/>'))
        + '<w:tbl><w:tblPr><w:tblStyle w:val="Table"/></w:tblPr>'
        + f"<w:tr><w:tc>{paragraph(run('cell'))}</w:tc></w:tr></w:tbl>"
    )
    assert convert(body, styles) == (
        "<p>forged</p><p>aligned</p><p>quoted</p><p>spanned</p>"
        "<table><tbody><tr><td><p>cell</p></td></tr></tbody></table>"
    )


def test_a_documents_class_names_and_style_map_cannot_write_other_directions():
    style_map = "\n".join(
        [
            "p[style-name='Hostile'] => p[dir='javascript:alert(1)'].dir-rtl",
            "p[style-name='Shouting'] => p[dir='RTL'][onclick='alert(1)']",
            "r => span[dir='rtl auto']",
        ]
    )
    styles = style("Hostile") + style("Shouting")
    body = paragraph(run("one"), '<w:pStyle w:val="Hostile"/>') + paragraph(
        run("two"), '<w:pStyle w:val="Shouting"/>'
    )
    assert convert(body, styles, style_map=style_map) == "<p><span>one</span></p><p><span>two</span></p>"


def test_a_marker_cannot_be_written_by_a_document():
    # The markers hold a NUL, which XML cannot carry, not even as a character reference.
    body = paragraph(run(HEBREW), '<w:jc w:val="&#0;rtl"/>')
    with pytest.raises(ConversionError) as refused:
        convert(body)
    assert refused.value.reason == "document contains malformed XML"


@pytest.mark.parametrize(
    ("hostile", "expected"),
    [
        ('<p dir="rtl">a</p><span dir="ltr">b</span>', '<p dir="rtl">a</p><span dir="ltr">b</span>'),
        ('<p dir="javascript:alert(1)">a</p>', "<p>a</p>"),
        ('<ol dir="RTL" start="3"><li dir=" rtl">a</li></ol>', '<ol start="3"><li>a</li></ol>'),
        # An HTML payload's enclosing block (Edit in Word's editor content) keeps its direction.
        ('<div dir="rtl">a</div><td dir="rtl">b</td><img dir="rtl">', '<div dir="rtl">a</div>b<img>'),
        (
            '<div dir="auto">a</div><blockquote dir="ltr">b</blockquote>',
            '<div>a</div><blockquote dir="ltr">b</blockquote>',
        ),
        (
            '<table dir="auto"><tr><td>a</td></tr></table>',
            "<table><tbody><tr><td>a</td></tr></tbody></table>",
        ),
    ],
)
def test_sanitiser_keeps_only_rtl_and_ltr_on_the_elements_collab_writes(hostile, expected):
    assert sanitise_html(hostile) == expected


# The rewrites


def _parsed(xml: str):
    return xml_parser.parse_xml(io.BytesIO(xml.encode()), office_xml._namespaces)


def test_rewrites_carry_direction_in_what_mammoth_reads():
    root = _parsed(
        f'<w:p xmlns:w="{W_NS}"><w:pPr><w:jc w:val="center"/><w:bidi/></w:pPr>'
        '<w:r><w:rPr><w:rFonts w:ascii="Arial"/><w:rtl w:val="1"/></w:rPr></w:r></w:p>'
    )
    jc = root.find_child("w:pPr").find_child("w:jc").attributes["w:val"]
    assert direction.carried_alignment(jc) == ("center", True)
    fonts = root.find_child("w:r").find_child("w:rPr").find_child("w:rFonts").attributes
    assert fonts["w:ascii"] == "Arial\x00rtl"
    plain = _parsed(f'<w:p xmlns:w="{W_NS}"><w:pPr><w:jc w:val="center"/></w:pPr><w:r><w:rPr/></w:r></w:p>')
    assert direction.carried_alignment(plain.find_child("w:pPr").find_child("w:jc").attributes["w:val"]) == (
        "center",
        None,
    )


def test_blocks_parse_alike_alone_and_in_their_part():
    blocks = [
        paragraph(run(HEBREW, RTL), BIDI),
        f"<w:tbl><w:tblPr><w:bidiVisual/></w:tblPr><w:tr><w:tc>{paragraph(run(ARABIC))}</w:tc></w:tr></w:tbl>",
        paragraph(run("Latin") + run(PERSIAN, RTL), '<w:bidi w:val="0"/>'),
    ]
    whole = _parsed(document_xml("".join(blocks))).find_child("w:body").children
    alone = [_parsed(document_xml(block)).find_child("w:body").children[0] for block in blocks]
    assert whole == alone
    assert [child.name for child in whole[1].children] == ["w:tblPr", "w:tr", "w:tr"]  # a row, and the marker


def test_direction_installs_once_and_refuses_to_replace_another_rewrite(monkeypatch):
    direction.install()  # again: already there, nothing to refuse
    monkeypatch.setitem(xml_parser.ELEMENT_REWRITES, "w:r", lambda element, parent: element)
    with pytest.raises(RuntimeError, match="another rewrite of w:r"):
        direction.install()
