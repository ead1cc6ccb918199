"""Every section's headers and footers, as Word shows them: first page, even pages, default, each once."""

from __future__ import annotations

import re

from mammoth.docx.xmlparser import XmlElement

from conversion import convert_payload
from conversion.sections import shown_parts

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_NS = "http://schemas.microsoft.com/office/2006/xmlPackage"
RELS_TYPE = "application/vnd.openxmlformats-package.relationships+xml"


def paragraph(text: str, properties: str = "") -> str:
    return f"<w:p><w:pPr>{properties}</w:pPr><w:r><w:t>{text}</w:t></w:r></w:p>"


def section(references: dict[str, str], title_page: bool = False) -> str:
    """A w:sectPr naming parts by (tag, kind) -> part id, e.g. {"header-first": "h1"}."""
    written = "".join(
        f'<w:{key.split("-")[0]}Reference w:type="{key.split("-")[1]}" r:id="{part}"/>'
        for key, part in references.items()
    )
    return f"<w:sectPr>{written}{'<w:titlePg/>' if title_page else ''}</w:sectPr>"


def package(body: str, parts: dict[str, tuple[str, str]], even_and_odd: bool = False) -> str:
    """A Flat OPC package; parts: part id -> ("header"|"footer", its text)."""

    def part(name: str, content_type: str, xml: str) -> str:
        start = f'<pkg:part pkg:name="{name}" pkg:contentType="{content_type}">'
        return f"{start}<pkg:xmlData>{xml}</pkg:xmlData></pkg:part>"

    relations = [f'<Relationship Id="rIdSettings" Type="{R_NS}/settings" Target="settings.xml"/>']
    written = []
    for part_id, (tag, text) in parts.items():
        relations.append(f'<Relationship Id="{part_id}" Type="{R_NS}/{tag}" Target="{part_id}.xml"/>')
        root = "hdr" if tag == "header" else "ftr"
        xml = f'<w:{root} xmlns:w="{W_NS}">{paragraph(text)}</w:{root}>'
        written.append(part(f"/word/{part_id}.xml", "application/xml", xml))
    settings = f'<w:settings xmlns:w="{W_NS}">{"<w:evenAndOddHeaders/>" if even_and_odd else ""}</w:settings>'
    return (
        f'<pkg:package xmlns:pkg="{PKG_NS}">'
        + part(
            "/_rels/.rels",
            RELS_TYPE,
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{R_NS}/officeDocument" Target="word/document.xml"/>'
            "</Relationships>",
        )
        + part(
            "/word/_rels/document.xml.rels",
            RELS_TYPE,
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            + "".join(relations)
            + "</Relationships>",
        )
        + part(
            "/word/document.xml",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
            f'<w:document xmlns:w="{W_NS}" xmlns:r="{R_NS}"><w:body>{body}</w:body></w:document>',
        )
        + part("/word/settings.xml", "application/xml", settings)
        + "".join(written)
        + "</pkg:package>"
    )


def read(html: str) -> list[str]:
    """The document in reading order: headers and footers as tag.class:text, body paragraphs as text."""
    found = []
    for match in re.finditer(r'<(header|footer) class="([^"]*)"><p>([^<]*)</p></\1>|<p>([^<]*)</p>', html):
        if match.group(1):
            found.append(f"{match.group(1)}.{match.group(2)}:{match.group(3)}")
        else:
            found.append(match.group(4))
    return found


def test_two_sections_show_their_first_page_default_and_own_headers_once_in_order():
    body = (
        paragraph("one")
        + paragraph(
            "end of one",
            section({"header-first": "h1", "header-default": "h2", "footer-default": "f1"}, title_page=True),
        )
        + paragraph("two")
        + section({"header-default": "h3"})
    )
    parts = {
        "h1": ("header", "First page header"),
        "h2": ("header", "Default header"),
        "f1": ("footer", "Default footer"),
        "h3": ("header", "Second section header"),
    }
    html = convert_payload(package(body, parts)).html
    assert read(html) == [
        "header.doc-header first-page:First page header",
        "header.doc-header:Default header",
        "one",
        "end of one",
        "footer.doc-footer:Default footer",
        "header.doc-header:Second section header",
        "two",
    ]


def test_a_section_without_its_own_header_inherits_it_and_it_is_shown_once():
    body = paragraph("one", section({"header-default": "h1"})) + paragraph("two") + section({})
    html = convert_payload(package(body, {"h1": ("header", "Shared")})).html
    assert read(html) == ["header.doc-header:Shared", "one", "two"]


def test_even_page_headers_show_only_when_the_settings_ask_for_them():
    body = paragraph("text") + section({"header-default": "h1", "header-even": "h2"})
    parts = {"h1": ("header", "Odd"), "h2": ("header", "Even")}
    assert read(convert_payload(package(body, parts)).html) == ["header.doc-header:Odd", "text"]
    with_even = convert_payload(package(body, parts, even_and_odd=True)).html
    # Page 1 shows the default (odd) header, page 2 the even one.
    assert read(with_even) == ["header.doc-header:Odd", "header.doc-header even-page:Even", "text"]


def test_a_first_page_header_without_title_page_is_not_shown():
    body = paragraph("text") + section({"header-first": "h1"})
    assert read(convert_payload(package(body, {"h1": ("header", "Cover")})).html) == ["text"]


def test_title_page_switched_off_counts_as_absent():
    body = paragraph("text") + section({"header-first": "h1", "header-default": "h2"}).replace(
        "</w:sectPr>", '<w:titlePg w:val="0"/></w:sectPr>'
    )
    parts = {"h1": ("header", "Cover"), "h2": ("header", "Running")}
    assert read(convert_payload(package(body, parts)).html) == ["header.doc-header:Running", "text"]


def test_shown_parts_leaves_out_references_to_parts_that_are_not_there():
    properties = XmlElement(
        "w:sectPr",
        {},
        [XmlElement("w:headerReference", {"w:type": "default", "r:id": "missing"}, [])],
    )
    assert shown_parts([properties], {}, even_and_odd=False)[0].headers == ()
