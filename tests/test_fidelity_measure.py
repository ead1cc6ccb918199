"""bench/fidelity.py counts what Word shows of a document, and finds it in the HTML as a reader does."""

import io
import zipfile
from collections import Counter

import pytest

from bench.fidelity import BODY, EQUATIONS, TEXT_BOXES, coverage, read_source, words

NAMESPACES = (
    'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    ' xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    ' xmlns:m="http://schemas.openxmlformats.org/officeDocument/2006/math"'
    ' xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"'
    ' xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape"'
    ' xmlns:v="urn:schemas-microsoft-com:vml"'
)
RELATIONSHIP = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
ROOTS = {
    "header": "hdr",
    "footer": "ftr",
    "settings": "settings",
    "styles": "styles",
    "footnotes": "footnotes",
}


def docx(body: str, **parts: str) -> bytes:
    """A .docx with this body; each keyword names a part (header1=..., settings=...) with its content.

    A part's relationship id is its name, its type the name without digits."""
    relationships = "".join(
        f'<Relationship Id="{name}" Type="{RELATIONSHIP}{name.rstrip("0123456789")}" Target="{name}.xml"/>'
        for name in parts
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "_rels/.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{RELATIONSHIP}officeDocument" Target="word/document.xml"/>'
            "</Relationships>",
        )
        archive.writestr(
            "word/_rels/document.xml.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f"{relationships}</Relationships>",
        )
        archive.writestr(
            "word/document.xml", f"<w:document {NAMESPACES}><w:body>{body}</w:body></w:document>"
        )
        for name, content in parts.items():
            root = ROOTS[name.rstrip("0123456789")]
            archive.writestr(f"word/{name}.xml", f"<w:{root} {NAMESPACES}>{content}</w:{root}>")
    return buffer.getvalue()


def paragraph(text: str) -> str:
    return f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>"


def section(*properties: str) -> str:
    return f"<w:sectPr>{''.join(properties)}</w:sectPr>"


def reference(kind: str, kind_of_page: str, name: str) -> str:
    return f'<w:{kind}Reference w:type="{kind_of_page}" r:id="{name}"/>'


def counted(source) -> Counter:
    """Every counted word of the source, with how often it is counted."""
    return Counter(word for text in source.texts().values() for word in words(text))


def test_every_section_shows_its_own_headers_and_footers_each_part_once():
    # Section 1 has a title page: its first-page and default header and footer all show.
    # Section 2 names its own default header and shows section 1's default footer again.
    first_section = section(
        reference("header", "default", "header1"),
        reference("header", "first", "header2"),
        reference("footer", "default", "footer1"),
        reference("footer", "first", "footer2"),
        "<w:titlePg/>",
    )
    body = (
        f"<w:p><w:pPr>{first_section}</w:pPr><w:r><w:t>one</w:t></w:r></w:p>"
        + paragraph("two")
        + section(reference("header", "default", "header3"))
    )
    source = read_source(
        docx(
            body,
            header1=paragraph("alpha"),
            header2=paragraph("bravo"),
            header3=paragraph("charlie"),
            footer1=paragraph("delta"),
            footer2=paragraph("echo"),
        )
    )
    assert counted(source) == Counter(["one", "two", "alpha", "bravo", "charlie", "delta", "echo"])
    assert "header (word/header3.xml)" in source.texts()
    assert {"header", "footer"} <= source.features


def test_a_section_without_a_header_shows_the_previous_ones_counted_once():
    # Section 1 names a first-page header it does not show (no title page); the third
    # section, with a title page and no references, shows it and section 1's default one.
    first_section = section(
        reference("header", "default", "header1"), reference("header", "first", "header2")
    )
    body = f"<w:p><w:pPr>{first_section}</w:pPr></w:p><w:p><w:pPr>{section()}</w:pPr></w:p>" + section(
        "<w:titlePg/>"
    )
    parts = {"header1": paragraph("alpha"), "header2": paragraph("bravo"), "header3": paragraph("unused")}
    assert counted(read_source(docx(body, **parts))) == Counter(["alpha", "bravo"])


@pytest.mark.parametrize(
    ("title_page", "shown"),
    [
        ("", False),
        ('<w:titlePg w:val="0"/>', False),
        ("<w:titlePg/>", True),
        ('<w:titlePg w:val="1"/>', True),
    ],
)
def test_first_page_header_counts_only_with_a_title_page(title_page, shown):
    body = section(reference("header", "first", "header1"), title_page)
    source = read_source(docx(paragraph("text") + body, header1=paragraph("cover")))
    assert ("cover" in counted(source)) is shown


@pytest.mark.parametrize(
    ("settings_part", "shown"),
    [
        (None, False),
        ("", False),
        ('<w:evenAndOddHeaders w:val="0"/>', False),
        ("<w:evenAndOddHeaders/>", True),
    ],
)
def test_even_page_headers_count_only_with_even_and_odd_headers(settings_part, shown):
    body = paragraph("text") + section(
        reference("header", "default", "header1"), reference("footer", "even", "footer1")
    )
    parts = {"header1": paragraph("odd"), "footer1": paragraph("even")}
    if settings_part is not None:
        parts["settings"] = settings_part
    source = read_source(docx(body, **parts))
    assert counted(source) == Counter(["text", "odd"] + (["even"] if shown else []))


def text_box(choice: str, fallback: str) -> str:
    return (
        "<w:p><w:r><w:t>Before</w:t></w:r><w:r><mc:AlternateContent>"
        f'<mc:Choice Requires="wps"><w:drawing><wps:txbx><w:txbxContent>{choice}'
        "</w:txbxContent></wps:txbx></w:drawing></mc:Choice>"
        f"<mc:Fallback><w:pict><v:textbox><w:txbxContent>{fallback}</w:txbxContent></v:textbox>"
        "</w:pict></mc:Fallback></mc:AlternateContent></w:r><w:r><w:t>after</w:t></w:r></w:p>"
    )


def test_a_text_box_with_its_fallback_copy_counts_once():
    source = read_source(docx(text_box(paragraph("Boxed words"), paragraph("Boxed words"))))
    assert counted(source) == Counter(["beforeafter", "boxed", "words"])
    assert source.texts()[TEXT_BOXES] == "Boxed words"


def test_the_fallback_counts_when_only_it_holds_text():
    source = read_source(docx(text_box("<w:p/>", paragraph("Fallback words"))))
    assert counted(source) == Counter(["beforeafter", "fallback", "words"])


def test_a_word_split_over_runs_counts_once_and_is_found_across_inline_elements():
    body = (
        "<w:p><w:r><w:t>Hel</w:t></w:r><w:proofErr w:type='spellStart'/>"
        "<w:bookmarkStart w:id='0' w:name='here'/><w:r><w:rPr><w:b/></w:rPr><w:t>l</w:t></w:r>"
        "<w:bookmarkEnd w:id='0'/><w:ins w:id='1' w:author='a'><w:r><w:t>o</w:t></w:r></w:ins>"
        "<w:r><w:tab/><w:t>world</w:t></w:r></w:p>"
    )
    texts = read_source(docx(body)).texts()
    assert words(texts[BODY]) == ["hello", "world"]
    assert coverage(texts, "<p>Hel<strong>l</strong><ins>o</ins>\tworld</p>").share == 1.0
    # Block elements part what they hold: "Hel" and "lo" are not the word "Hello".
    assert coverage(texts, "<p>Hel</p><p>lo world</p>").share == 0.5


def test_deleted_hidden_text_and_field_codes_are_not_counted_field_results_are():
    styles = (
        '<w:style w:type="character" w:styleId="Secret"><w:rPr><w:vanish/></w:rPr></w:style>'
        '<w:style w:type="character" w:styleId="Inherited"><w:basedOn w:val="Secret"/></w:style>'
        '<w:style w:type="paragraph" w:styleId="Hidden"><w:rPr><w:vanish/></w:rPr></w:style>'
    )
    body = (
        "<w:p><w:r><w:t>kept </w:t></w:r>"
        "<w:del w:id='1' w:author='a'><w:r><w:delText>deleted</w:delText></w:r></w:del>"
        "<w:moveFrom w:id='2' w:author='a'><w:r><w:t>moved</w:t></w:r></w:moveFrom>"
        "<w:r><w:rPr><w:vanish/></w:rPr><w:t>vanished</w:t></w:r>"
        "<w:r><w:rPr><w:vanish w:val='0'/></w:rPr><w:t> shown</w:t></w:r>"
        "<w:r><w:rPr><w:rStyle w:val='Inherited'/></w:rPr><w:t>styled</w:t></w:r>"
        "<w:r><w:fldChar w:fldCharType='begin'/></w:r><w:r><w:instrText>PAGE</w:instrText></w:r>"
        "<w:r><w:t>code</w:t></w:r><w:r><w:fldChar w:fldCharType='separate'/></w:r>"
        "<w:r><w:t> result</w:t></w:r><w:r><w:fldChar w:fldCharType='end'/></w:r>"
        # A field whose code ends and result begins inside one tracked insertion.
        "<w:r><w:fldChar w:fldCharType='begin'/></w:r><w:ins w:id='3' w:author='a'>"
        "<w:r><w:instrText>DATE</w:instrText></w:r><w:r><w:fldChar w:fldCharType='separate'/></w:r>"
        "<w:r><w:t> today</w:t></w:r></w:ins><w:r><w:fldChar w:fldCharType='end'/></w:r></w:p>"
        "<w:p><w:pPr><w:pStyle w:val='Hidden'/></w:pPr><w:r><w:t>paragraph</w:t></w:r></w:p>"
    )
    source = read_source(docx(body, styles=styles))
    assert counted(source) == Counter(["kept", "shown", "result", "today"])
    assert {"deletions hidden", "hidden text hidden"} <= source.features


def test_equation_text_counts_letter_by_letter_and_is_found_in_mathml():
    equation = (
        "<m:oMath><m:sSup><m:e><m:d><m:e><m:r><m:t>x+a</m:t></m:r></m:e></m:d></m:e>"
        "<m:sup><m:r><m:t>n</m:t></m:r></m:sup></m:sSup></m:oMath>"
    )
    texts = read_source(
        docx(f"<w:p><w:r><w:t>Take</w:t></w:r>{equation}<w:r><w:t>now</w:t></w:r></w:p>")
    ).texts()
    assert words(texts[BODY]) == ["take", "now"]
    assert texts[EQUATIONS] == "x+an"
    mathml = (
        "<p>Take<math><msup><mrow><mo>(</mo><mi>x</mi><mo>+</mo><mi>a</mi><mo>)</mo></mrow><mi>n</mi>"
        "</msup><annotation>not shown</annotation></math>now</p>"
    )
    found = coverage(texts, mathml)
    assert (found.kept, found.total, found.lost) == (5, 5, {})
    # An annotation's letters are not shown; the same letters outside MathML are the body's words.
    assert coverage(texts, "<p>Take<math><annotation>x+a n</annotation></math>now</p>").lost == {
        EQUATIONS: (3, 3)
    }
    assert coverage(texts, "<p>Take x + a n now</p>").lost == {EQUATIONS: (3, 3)}


def test_only_footnotes_the_shown_text_refers_to_count():
    footnotes = "".join(
        f'<w:footnote w:id="{number}"><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:footnote>'
        for number, text in ((1, "cited"), (2, "uncited"))
    )
    body = "<w:p><w:r><w:t>text</w:t></w:r><w:r><w:footnoteReference w:id='1'/></w:r></w:p>"
    assert counted(read_source(docx(body, footnotes=footnotes))) == Counter(["text", "cited"])


def test_missing_words_are_laid_to_the_part_they_come_from():
    body = paragraph("page words") + section(reference("header", "default", "header1"))
    texts = read_source(docx(body, header1=paragraph("page title"))).texts()
    found = coverage(texts, "<p>page words</p>")
    assert (found.kept, found.total) == (2, 4)
    assert found.lost == {"header (word/header1.xml)": (2, 2)}
    assert (
        coverage(texts, '<header class="doc-header"><p>page title</p></header><p>page words</p>').share == 1
    )
