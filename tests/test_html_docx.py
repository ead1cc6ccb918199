"""HTML to Word: each construct in the .docx's XML, the properties, safety, the pool, the round trip."""

from __future__ import annotations

import asyncio
import base64
import html.parser
import http.server
import io
import re
import threading
import time
import urllib.request
import zipfile
from pathlib import Path

import defusedxml.ElementTree as SafeET
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.round_trip import EDITOR_DOCUMENTS, measure, read_figures, shortfalls
from conversion import ConversionError, ConversionPool, Limits, convert_payload
from conversion.html_docx import first_heading, html_to_docx
from conversion.html_scan import TEMPLATE_REFUSED
from conversion.sanitise import sanitise_html_for_word
from conversion.sanitised_html import END, START, TEXT, tokens
from tests import documents

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
WP = "{http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing}"
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
PACKAGE_RELATIONSHIPS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
CONTENT_TYPES = "{http://schemas.openxmlformats.org/package/2006/content-types}"
CUSTOM = "{http://schemas.openxmlformats.org/officeDocument/2006/custom-properties}"
VT = "{http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes}"
DC = "{http://purl.org/dc/elements/1.1/}"
PROPERTIES = {"sessionId": "3f2a9c", "token": "wt_secret-token"}
# 2x1 pixels, of each kind (made once with Pillow).
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAIAAAB7QOjdAAAAEElEQVR4nGP4z8DAwMDAAAAHBAEAw5U6EwAAAABJRU5ErkJggg=="
GIF = "R0lGODlhAgABAIEAAP8AAAAA/wAAAAAAACwAAAAAAgABAAAIBAABBAQAOw=="
JPEG = (
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0"
    "Hyc5PTgyPC4zNDL/wAALCAABAAIBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEA"
    "AD8AKp//2Q=="
)


def docx_of(html: str, properties: dict[str, str] | None = None, **options) -> zipfile.ZipFile:
    data = html_to_docx(html, PROPERTIES if properties is None else properties, **options)
    return zipfile.ZipFile(io.BytesIO(data))


def part(archive: zipfile.ZipFile, name: str):
    return SafeET.fromstring(archive.read(name))


def body(html: str):
    return part(docx_of(html), "word/document.xml").find(f"{W}body")


def paragraphs(html: str) -> list:
    return list(body(html).iter(f"{W}p"))


def text(element) -> str:
    return "".join(node.text or "" for node in element.iter(f"{W}t"))


def value(element, path: str) -> str | None:
    found = element.find(path)
    return None if found is None else found.get(f"{W}val", "")


def document_relationships(archive: zipfile.ZipFile) -> dict[str, dict[str, str]]:
    root = part(archive, "word/_rels/document.xml.rels")
    return {item.get("Id"): item.attrib for item in root.iter(f"{PACKAGE_RELATIONSHIPS}Relationship")}


def round_trip(html: str) -> str:
    data = html_to_docx(html, PROPERTIES)
    return convert_payload(base64.b64encode(data).decode("ascii"), "docx").html


# Reading the sanitiser's HTML


class _Events(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.events = []

    def handle_starttag(self, tag, attrs):
        self.events.append((START, tag, {name: value or "" for name, value in attrs}))

    def handle_endtag(self, tag):
        self.events.append((END, tag, ""))

    def handle_data(self, data):
        if self.events and self.events[-1][0] == TEXT:
            data = self.events.pop()[2] + data
        self.events.append((TEXT, "", data))


def parsed(sanitised: str) -> list:
    events = _Events()
    events.feed(sanitised)
    events.close()
    return events.events


MARKUP = st.lists(
    st.sampled_from(
        [
            "<p>",
            "</p>",
            "<b>",
            "</b>",
            "<i>",
            "<ul>",
            "<ol>",
            "<li>",
            "</li>",
            "</ul>",
            "<table>",
            "<tr>",
            "<td>",
            "<th>",
            "</td>",
            "</table>",
            '<td rowspan="3">',
            '<td colspan="2">',
            "<br>",
            "<h2>",
            "</h2>",
            "<a href=",
            '"https://x.example/?a=<b>&c">',
            '<span dir="rtl">',
            '<div dir="rtl">',
            "</div>",
            "<pre>",
            "\n",
            "\t",
            " ",
            "&",
            "<",
            ">",
            '"',
            "&nbsp;",
            "text",
            "متن",
            "<blockquote>",
            "<hr>",
            "<img alt='a > b'>",
            "<sup>",
            "<!--",
            "-->",
            "<s>",
            '<p style="text-align: center; color: red">',
            "<math><mi>x</mi></math>",
        ]
    ),  # fmt: skip
    max_size=40,
).map("".join)


def test_the_sanitisers_output_is_read_as_a_parser_reads_it():
    for path in EDITOR_DOCUMENTS.glob("*.html"):
        sanitised = sanitise_html_for_word(path.read_text(encoding="utf-8"))
        assert list(tokens(sanitised)) == parsed(sanitised)
    assert joined(tokens("a < b <3 </ >")) == [(TEXT, "", "a < b <3 </ >")]


def joined(events) -> list:
    """Events with neighbouring texts joined (a stray "<" starts a piece of text of its own)."""
    found = []
    for event in events:
        if found and event[0] == TEXT == found[-1][0]:
            event = (TEXT, "", found.pop()[2] + event[2])
        found.append(event)
    return found


@settings(max_examples=200, deadline=None)
@given(MARKUP)
def test_any_sanitised_markup_is_read_as_a_parser_reads_it(markup):
    sanitised = sanitise_html_for_word(markup)
    assert joined(tokens(sanitised)) == parsed(sanitised)


def test_the_word_sanitiser_keeps_only_what_word_shows():
    assert (
        sanitise_html_for_word(
            '<p style="color:red;background:url(http://x.example/a.png)" onclick="x()">x</p>'
            '<p style="text-align: center; behavior: url(x.htc)" dir="sideways">y</p>'
            '<img src="data:image/png;base64,AA==" width="100%" height="javascript:x()">'
        )
        == '<p style="">x</p><p style="text-align:center">y</p><img src="data:image/png;base64,AA==">'
    )


# Headings, paragraphs, formatting


def test_headings_take_words_built_in_heading_styles():
    html = "".join(f"<h{level}>Level {level}</h{level}>" for level in range(1, 7))
    archive = docx_of(html)
    found = [value(p, f"{W}pPr/{W}pStyle") for p in part(archive, "word/document.xml").iter(f"{W}p")]
    assert found == [f"Heading{level}" for level in range(1, 7)]
    styles = {
        style.get(f"{W}styleId"): value(style, f"{W}name")
        for style in part(archive, "word/styles.xml").iter(f"{W}style")
    }
    assert all(styles[f"Heading{level}"] == f"heading {level}" for level in range(1, 7))
    assert round_trip(html) == html


def test_text_is_laid_out_as_a_browser_shows_it():
    found = paragraphs(
        "<p>  two \n  spaces\tcollapse  </p><p>a&nbsp;&nbsp;b<br>next line<br></p>\n<div>loose text</div>"
    )
    assert [text(p) for p in found] == ["two spaces collapse", "a\xa0\xa0bnext line", "loose text"]
    assert len(found[1].findall(f".//{W}br")) == 1  # a block's last line break shows nothing


@pytest.mark.parametrize(
    ("html", "property", "expected"),
    [
        ("<b>x</b>", "b", ""),
        ("<strong>x</strong>", "b", ""),
        ("<i>x</i>", "i", ""),
        ("<em>x</em>", "i", ""),
        ("<u>x</u>", "u", "single"),
        ("<s>x</s>", "strike", ""),
        ("<strike>x</strike>", "strike", ""),
        ("<del>x</del>", "strike", ""),
        ("<sub>x</sub>", "vertAlign", "subscript"),
        ("<sup>x</sup>", "vertAlign", "superscript"),
        ('<span style="text-decoration: underline;">x</span>', "u", "single"),
        ('<span style="text-decoration: line-through;">x</span>', "strike", ""),
        ('<span style="font-weight: bold">x</span>', "b", ""),
        ('<span style="font-style: italic">x</span>', "i", ""),
    ],
)
def test_inline_formatting_becomes_run_properties(html, property, expected):
    (run,) = body(f"<p>{html}</p>").iter(f"{W}r")
    assert value(run, f"{W}rPr/{W}{property}") == expected
    assert text(run) == "x"


def test_a_blocks_styles_format_its_text():
    runs = list(body('<p style="font-weight: 700; text-decoration: underline">a<em>b</em></p>').iter(f"{W}r"))
    assert [
        (value(run, f"{W}rPr/{W}b"), value(run, f"{W}rPr/{W}u"), value(run, f"{W}rPr/{W}i")) for run in runs
    ] == [
        ("", "single", None),
        ("", "single", ""),
    ]


def test_bold_and_italic_are_set_for_right_to_left_scripts_too():
    (run,) = body("<p><strong><em>متن</em></strong></p>").iter(f"{W}r")
    names = [child.tag.removeprefix(W) for child in run.find(f"{W}rPr")]
    assert names == ["b", "bCs", "i", "iCs"]


def test_alignment_from_styles_and_classes():
    found = paragraphs(
        '<p style="text-align: center">c</p><p align="right">r</p><p class="align-justify">j</p><p>plain</p>'
    )
    assert [value(p, f"{W}pPr/{W}jc") for p in found] == ["center", "right", "both", None]


# Lists


def numbering_formats(archive: zipfile.ZipFile) -> dict[str, list[str]]:
    """numId: the numFmt of each level of its abstract numbering."""
    root = part(archive, "word/numbering.xml")
    abstract = {
        item.get(f"{W}abstractNumId"): [value(level, f"{W}numFmt") for level in item.iter(f"{W}lvl")]
        for item in root.iter(f"{W}abstractNum")
    }
    return {
        item.get(f"{W}numId"): abstract[value(item, f"{W}abstractNumId")] for item in root.iter(f"{W}num")
    }


def test_nested_lists_use_word_numbering():
    html = (
        "<ul><li>a<ul><li>a1</li><li>a2<ol><li>deep</li></ol></li></ul></li><li>b</li></ul>"
        '<ol start="4" type="a"><li>four</li></ol>'
    )
    archive = docx_of(html)
    root = part(archive, "word/document.xml")
    items = [
        (text(p), value(p, f"{W}pPr/{W}numPr/{W}ilvl"), value(p, f"{W}pPr/{W}numPr/{W}numId"))
        for p in root.iter(f"{W}p")
    ]
    assert [(name, level) for name, level, _ in items] == [
        ("a", "0"), ("a1", "1"), ("a2", "1"), ("deep", "2"), ("b", "0"), ("four", "0")
    ]  # fmt: skip
    numbers = {name: number for name, _, number in items}
    assert numbers["a"] == numbers["b"] != numbers["a1"] == numbers["a2"]
    formats = numbering_formats(archive)
    assert formats[numbers["a"]][0] == formats[numbers["a1"]][1] == "bullet"
    assert formats[numbers["deep"]][2] == "decimal"
    assert formats[numbers["four"]][0] == "lowerLetter"
    numbering = part(archive, "word/numbering.xml")
    (four,) = [item for item in numbering.iter(f"{W}num") if item.get(f"{W}numId") == numbers["four"]]
    assert value(four, f"{W}lvlOverride/{W}startOverride") == "4"
    types = part(archive, "[Content_Types].xml")
    assert any(item.get("PartName") == "/word/numbering.xml" for item in types)
    assert "numbering.xml" in {item["Target"] for item in document_relationships(archive).values()}


def test_an_item_of_several_paragraphs_is_numbered_once():
    found = paragraphs("<ol><li><p>first</p><p>second</p></li><li></li></ol>")
    assert [p.find(f"{W}pPr/{W}numPr") is not None for p in found] == [True, False, True]
    assert found[1].find(f"{W}pPr/{W}ind").get(f"{W}left") == "720"  # under its item's text


def test_a_document_without_lists_has_no_numbering_part():
    assert "word/numbering.xml" not in docx_of("<p>plain</p>").namelist()


# Tables


def grid(table) -> list[list[tuple[str, str | None, str | None]]]:
    """Each row's cells: text, gridSpan and vMerge."""
    return [
        [
            (text(cell), value(cell, f"{W}tcPr/{W}gridSpan"), value(cell, f"{W}tcPr/{W}vMerge"))
            for cell in row.findall(f"{W}tc")
        ]
        for row in table.findall(f"{W}tr")
    ]


def test_merged_cells_become_grid_spans_and_vertical_merges():
    (table,) = body(
        "<table><tbody>"
        '<tr><td rowspan="2">tall</td><td colspan="2">wide</td></tr>'
        "<tr><td>b</td><td>c</td></tr>"
        '<tr><td>d</td><td colspan="2" rowspan="9">rest</td></tr>'
        "<tr><td>e</td></tr>"
        "</tbody></table>"
    ).iter(f"{W}tbl")
    assert grid(table) == [
        [("tall", None, "restart"), ("wide", "2", None)],
        [("", None, ""), ("b", None, None), ("c", None, None)],
        [("d", None, None), ("rest", "2", "restart")],  # the rowspan ends with its row group
        [("e", None, None), ("", "2", "")],
    ]
    assert len(table.findall(f"{W}tblGrid/{W}gridCol")) == 3


def test_header_rows_repeat_and_nested_tables_keep_their_cells():
    root = body(
        "<table><thead><tr><th>H1</th><th>H2</th></tr></thead>"
        "<tbody><tr><td>x</td><td><table><tr><td>inner</td></tr></table></td></tr></tbody></table>"
    )
    outer = root.find(f"{W}tbl")
    rows = outer.findall(f"{W}tr")
    assert [row.find(f"{W}trPr/{W}tblHeader") is not None for row in rows] == [True, False]
    assert outer.find(f"{W}tblPr/{W}tblLook").get(f"{W}firstRow") == "1"
    inner_cell = rows[1].findall(f"{W}tc")[1]
    assert text(inner_cell.find(f"{W}tbl")) == "inner"
    assert inner_cell[-1].tag == f"{W}p"  # a cell ends with a paragraph
    html = round_trip("<table><thead><tr><th>H1</th></tr></thead><tbody><tr><td>x</td></tr></tbody></table>")
    assert html == (
        "<table><thead><tr><th><p>H1</p></th></tr></thead><tbody><tr><td><p>x</p></td></tr></tbody></table>"
    )


def test_a_table_whose_merges_make_too_many_cells_is_refused():
    html = (
        "<table><tr>"
        + '<td rowspan="65534">x</td>' * 50
        + "</tr>"
        + "<tr><td>y</td></tr>" * 5000
        + "</table>"
    )
    with pytest.raises(ConversionError) as refused:
        html_to_docx(html, PROPERTIES, limits=Limits(max_html_elements=100_000))
    assert refused.value.reason == "a table has too many cells"


# Links


def test_links_become_hyperlink_relationships():
    archive = docx_of(
        '<p><a href="https://example.com/a?x=1&amp;y=2">web</a> <a href="mailto:office@example.com">mail</a>'
        ' <a href="http://example.org/">plain</a> <a href="https://example.com/a?x=1&amp;y=2">again</a></p>'
    )
    root = part(archive, "word/document.xml")
    relationships = document_relationships(archive)
    links = [(text(link), relationships[link.get(f"{R}id")]) for link in root.iter(f"{W}hyperlink")]
    assert [(name, item["Target"], item["TargetMode"]) for name, item in links] == [
        ("web", "https://example.com/a?x=1&y=2", "External"),
        ("mail", "mailto:office@example.com", "External"),
        ("plain", "http://example.org/", "External"),
        ("again", "https://example.com/a?x=1&y=2", "External"),
    ]
    assert links[0][1]["Type"].endswith("/hyperlink")


@pytest.mark.parametrize(
    "href",
    ["javascript:alert(1)", "JaVaScRiPt:alert(1)", "java\tscript:alert(1)", "vbscript:x", "data:text/html,x"],
)
def test_a_link_that_would_run_script_keeps_only_its_text(href):
    archive = docx_of(f'<p>see <a href="{href}">this</a></p>')
    root = part(archive, "word/document.xml")
    assert root.find(f".//{W}hyperlink") is None
    assert text(root) == "see this"
    assert b"script" not in archive.read("word/_rels/document.xml.rels")


def test_links_within_the_document_point_at_bookmarks():
    root = body('<h2 id="part-two">Two</h2><p><a href="#part-two">to two</a> <a href="#nowhere">x</a></p>')
    (mark,) = root.iter(f"{W}bookmarkStart")
    anchors = [link.get(f"{W}anchor") for link in root.iter(f"{W}hyperlink")]
    assert anchors[0] == mark.get(f"{W}name")
    assert len(anchors) == 2 and len(set(anchors)) == 2
    html = round_trip('<h2 id="part-two">Two</h2><p><a href="#part-two">to two</a></p>')
    assert html.count('href="#') == 1 and read_figures(html).links == 1


# Pictures


@pytest.mark.parametrize(
    ("kind", "data", "extension"), [("png", PNG, "png"), ("jpeg", JPEG, "jpeg"), ("gif", GIF, "gif")]
)
def test_data_uri_pictures_are_stored_in_the_package(kind, data, extension):
    src = f"data:image/{kind};base64,{data}"
    html = f'<p><img src="{src}" alt="A {kind}" width="200"><img src="{src}"></p>'
    archive = docx_of(html)
    assert [name for name in archive.namelist() if name.startswith("word/media/")] == [
        f"word/media/image1.{extension}"
    ]
    assert archive.read(f"word/media/image1.{extension}") == base64.b64decode(data)
    root = part(archive, "word/document.xml")
    drawings = list(root.iter(f"{WP}inline"))
    assert [d.find(f"{WP}docPr").get("descr") for d in drawings] == [f"A {kind}", ""]
    # 200 pixels wide as the HTML says, high in the picture's proportion (2x1); the second its own size.
    assert [(d.find(f"{WP}extent").get("cx"), d.find(f"{WP}extent").get("cy")) for d in drawings] == [
        (str(200 * 9525), str(100 * 9525)),
        (str(2 * 9525), str(1 * 9525)),
    ]
    (target,) = {
        item["Target"] for item in document_relationships(archive).values() if item["Type"].endswith("/image")
    }
    assert target == f"media/image1.{extension}"
    types = {item.get("Extension"): item.get("ContentType") for item in part(archive, "[Content_Types].xml")}
    assert types[extension] == f"image/{kind}"
    assert "<img " in round_trip(html)


def test_a_picture_is_kept_within_the_page():
    (extent,) = body(f'<img src="data:image/png;base64,{PNG}" width="20000" height="10000">').iter(
        f"{WP}extent"
    )
    assert int(extent.get("cx")) <= (11906 - 2 * 1440) * 635
    assert int(extent.get("cx")) == 2 * int(extent.get("cy"))


def test_a_picture_from_elsewhere_is_replaced_by_its_alt_text():
    archive = docx_of(
        '<p>Logo: <img src="https://example.com/logo.png" alt="Our logo"> <img src="/x.png"></p>'
    )
    assert not [name for name in archive.namelist() if name.startswith("word/media/")]
    assert text(part(archive, "word/document.xml")) == "Logo: Our logo"
    assert b"example.com" not in archive.read("word/_rels/document.xml.rels")


@pytest.mark.parametrize(
    "src",
    [
        "data:image/png;base64,bm90IGEgcGljdHVyZQ==",  # not a PNG
        f"data:image/png;base64,{GIF}",  # a GIF called a PNG
        "data:image/jpeg;base64,/9j/AAAA",  # a JPEG with no frame
        "data:image/png;base64,!!!",
        f"data:image/svg+xml;base64,{PNG}",
    ],
)
def test_a_damaged_or_mislabelled_picture_is_left_out(src):
    archive = docx_of(f'<p>before<img src="{src}">after</p>')
    assert not [name for name in archive.namelist() if name.startswith("word/media/")]
    assert text(part(archive, "word/document.xml")) == "beforeafter"


def test_pictures_over_the_limits_are_refused():
    picture = f'<img src="data:image/png;base64,{PNG}">'
    with pytest.raises(ConversionError) as refused:
        html_to_docx(picture * 3, PROPERTIES, limits=Limits(max_images=2))
    assert refused.value.reason == "too many images (the limit is 2)"
    big = "data:image/png;base64," + base64.b64encode(base64.b64decode(PNG) + bytes(2 * 1024 * 1024)).decode()
    with pytest.raises(ConversionError) as refused:
        html_to_docx(f'<img src="{big}">', PROPERTIES, limits=Limits(max_image_bytes=1024 * 1024))
    assert refused.value.reason == "an image is too large (the limit is 1 MB per image)"


# Direction


def test_right_to_left_paragraphs_tables_and_runs():
    root = body(
        '<p dir="rtl">سلام</p><div dir="rtl"><h2>عنوان</h2><ul><li>یک</li></ul></div>'
        '<table dir="rtl"><tr><td>خانه</td></tr></table>'
        '<p>English with <span dir="rtl">فارسی</span> inside</p><p>left</p>'
    )
    found = [(text(p), p.find(f"{W}pPr/{W}bidi") is not None) for p in body_paragraphs(root)]
    assert found == [
        ("سلام", True),
        ("عنوان", True),
        ("یک", True),
        ("English with فارسی inside", False),
        ("left", False),
    ]
    assert root.find(f"{W}tbl/{W}tblPr/{W}bidiVisual") is not None
    assert root.find(f"{W}tbl//{W}p/{W}pPr/{W}bidi") is not None
    rtl_runs = [text(run) for run in root.iter(f"{W}r") if run.find(f"{W}rPr/{W}rtl") is not None]
    assert rtl_runs == ["فارسی"]


def body_paragraphs(root) -> list:
    return [child for child in root if child.tag == f"{W}p"]


def test_alignment_is_read_in_the_paragraphs_direction():
    found = paragraphs(
        '<p dir="rtl" style="text-align: right">start</p><p dir="rtl" style="text-align: left">end</p>'
        '<p style="text-align: left">start</p>'
    )
    # Word's "left" and "right" are the start and the end of a paragraph's direction.
    assert [value(p, f"{W}pPr/{W}jc") for p in found] == [None, "right", None]


def test_right_to_left_comes_back_from_word():
    html = round_trip('<p dir="rtl">سلام دنیا</p><table dir="rtl"><tr><td>خانه</td></tr></table>')
    assert html.startswith('<p dir="rtl">سلام دنیا</p><table dir="rtl">')


# Properties and title


def test_custom_properties_and_title_are_readable():
    archive = docx_of("<h1>Report</h1>", title="Quarterly report")
    custom = part(archive, "docProps/custom.xml")
    found = {item.get("name"): item.find(f"{VT}lpwstr").text for item in custom.iter(f"{CUSTOM}property")}
    assert found == PROPERTIES
    assert {item.get("fmtid") for item in custom} == {"{D5CDD505-2E9C-101B-9397-08002B2CF9AE}"}
    assert sorted(int(item.get("pid")) for item in custom) == [2, 3]
    types = {item.get("PartName"): item.get("ContentType") for item in part(archive, "[Content_Types].xml")}
    assert (
        types["/docProps/custom.xml"] == "application/vnd.openxmlformats-officedocument.custom-properties+xml"
    )
    package = {
        item.get("Target"): item.get("Type")
        for item in part(archive, "_rels/.rels").iter(f"{PACKAGE_RELATIONSHIPS}Relationship")
    }
    assert package["docProps/custom.xml"] == (
        "http://schemas.openxmlformats.org/officeDocument/2006/relationships/custom-properties"
    )
    assert package["word/document.xml"].endswith("/officeDocument")
    assert part(archive, "docProps/core.xml").find(f"{DC}title").text == "Quarterly report"


def test_property_text_is_escaped():
    archive = docx_of("<p>x</p>", {"sessionId": 'a<b>&"c"', "token": "t"})
    custom = part(archive, "docProps/custom.xml")
    assert [item.find(f"{VT}lpwstr").text for item in custom] == ['a<b>&"c"', "t"]


@pytest.mark.parametrize(
    "properties",
    [{"": "x"}, {"name": "x" * 256}, {"a": "1", "A": "2"}, {"name": "bad\x00"}, {"name": 7}],
)
def test_properties_word_cannot_keep_are_refused(properties):
    with pytest.raises(ValueError):
        html_to_docx("<p>x</p>", properties)


def test_first_heading_gives_the_title():
    assert first_heading("<p>intro</p><h2>  The \n <b>plan</b> </h2><h1>later</h1>") == "The plan"
    assert first_heading("<h1> </h1><h3>second</h3>") == "second"
    assert first_heading("<script><h1>not this</h1></script><p>no heading</p>") is None
    assert first_heading("<h1>A &amp; B</h1>") == "A & B"


# Safety


class Listener:
    """A real HTTP server on 127.0.0.1 that notes every request it gets."""

    def __init__(self):
        requests = self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the standard library's name
                requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()
                self.wfile.write(base64.b64decode(PNG))

            do_POST = do_HEAD = do_GET  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener():
    listener = Listener()
    yield listener
    listener.close()


def pointing_at(url: str) -> str:
    """A page whose every way of loading something names the listener."""
    return (
        f'<html><head><base href="{url}/base/"><link rel="stylesheet" href="{url}/style.css">'
        f'<meta http-equiv="refresh" content="0;url={url}/refresh">'
        f'<style>@import url("{url}/import.css"); p {{ background: url({url}/style-bg.png) }}</style>'
        f'<script src="{url}/script.js"></script></head><body background="{url}/body.png">'
        f'<p><img src="{url}/img.png" alt="remote picture">'
        f' <img srcset="{url}/srcset.png 2x" src="relative.png"></p>'
        f'<picture><source srcset="{url}/source.png"><img src="{url}/picture.png"></picture>'
        f"<p style=\"background-image: url('{url}/inline-bg.png')\">styled</p>"
        f'<table background="{url}/table.png"><tr><td background="{url}/cell.png">cell</td></tr></table>'
        f'<video poster="{url}/poster.png" src="{url}/video.mp4"></video>'
        f'<audio src="{url}/audio.mp3"></audio>'
        f'<iframe src="{url}/frame.html"></iframe><object data="{url}/object.swf"></object>'
        f'<embed src="{url}/embed.swf"><input type="image" src="{url}/input.png">'
        f'<svg><image href="{url}/svg.png"></image><use href="{url}/use.svg#x"></use></svg>'
        f'<p><a href="{url}/link.html">a link</a></p><form action="{url}/form"><button>send</button></form>'
        "</body></html>"
    )


def test_the_listener_sees_a_request_when_one_is_made(listener):
    with urllib.request.urlopen(f"{listener.url}/control.png", timeout=5) as answer:  # noqa: S310 - loopback
        assert answer.read() == base64.b64decode(PNG)
    assert listener.requests == ["/control.png"]


def test_making_a_document_never_reaches_the_network(listener):
    archive = docx_of(pointing_at(listener.url))
    time.sleep(0.2)  # a request made in the background would have arrived by now
    assert listener.requests == []
    assert not [name for name in archive.namelist() if name.startswith("word/media/")]
    # The link is a link in the document, never fetched; nothing else names the listener.
    targets = [item["Target"] for item in document_relationships(archive).values()]
    assert [target for target in targets if target.startswith(listener.url)] == [f"{listener.url}/link.html"]
    assert listener.url.encode() not in archive.read("word/document.xml")
    shown = [text(p) for p in part(archive, "word/document.xml").iter(f"{W}p")]
    assert shown == ["remote picture", "styled", "cell", "a link", "send"]


async def test_the_pool_never_reaches_the_network(listener):
    pool = ConversionPool(workers=1)
    try:
        data = await pool.html_to_docx(pointing_at(listener.url), PROPERTIES, owner="session")
    finally:
        pool.close()
    time.sleep(0.2)
    assert listener.requests == []
    assert zipfile.ZipFile(io.BytesIO(data)).read("docProps/custom.xml").count(b"<property ") == 2


def test_scripts_and_event_handlers_never_reach_the_document():
    hostile = (
        "<script>alert('script')</script><p onclick=\"alert('click')\">text"
        "<img src=x onerror=\"alert('error')\"><svg onload=alert('svg')></svg></p>"
        '<a href="javascript:alert(\'link\')">link</a><iframe srcdoc="<script>alert(1)</script>"></iframe>'
        "<style>body{}</style><noscript><p>alert('noscript')</p></noscript>"
        "<template><p>alert('template')</p></template>"
    )
    with pytest.raises(ConversionError) as refused:
        html_to_docx(hostile, PROPERTIES)
    assert refused.value.reason == TEMPLATE_REFUSED
    archive = docx_of(hostile.replace("<template><p>alert('template')</p></template>", ""))
    for name in archive.namelist():
        content = archive.read(name)
        assert b"alert" not in content and b"script" not in content.lower(), name
    assert text(part(archive, "word/document.xml")) == "textlink"


def test_deep_nesting_is_refused_clearly_and_nesting_within_the_limit_converts():
    with pytest.raises(ConversionError) as refused:
        html_to_docx("<div>" * 5000 + "deep" + "</div>" * 5000, PROPERTIES)
    assert refused.value.reason == "HTML is nested too deeply (the limit is 512 levels)"
    nested = "<blockquote>" * 100 + "<ul><li>" * 150 + "<b><i>deep</i></b>" + "</li></ul>" * 150
    found = paragraphs(nested + "</blockquote>" * 100)
    assert [text(p) for p in found][-1] == "deep"
    assert value(found[-1], f"{W}pPr/{W}numPr/{W}ilvl") == "8"  # Word's deepest level


def test_html_over_the_input_limit_is_refused():
    with pytest.raises(ConversionError) as refused:
        html_to_docx("<p>" + "x" * (33 * 1024 * 1024) + "</p>", PROPERTIES)
    assert refused.value.reason.startswith("document too large")
    with pytest.raises(ConversionError) as refused:
        html_to_docx("\ud800 lone surrogate", PROPERTIES)
    assert refused.value.reason == "the HTML is not valid Unicode text"


def test_thirty_megabytes_of_html_get_an_answer():
    with pytest.raises(ConversionError) as refused:
        html_to_docx("<p>some words here</p>" * (30 * 1024 * 1024 // 22), PROPERTIES)
    assert refused.value.reason == "HTML has too many elements (the limit is 500000)"
    archive = docx_of("<p>" + "word " * (30 * 1024 * 1024 // 5) + "</p>")
    assert part(archive, "word/document.xml").find(f".//{W}t").text.count("word") == 30 * 1024 * 1024 // 5


@pytest.mark.parametrize(
    "broken",
    [
        "<p><b>unclosed <i>formatting <table><td>cell</p></i>",
        "</div></p></li>stray end tags<li>item",
        "<table><tr><td>a<td>b</tr><caption>late caption</caption><td>c",
        "<ul><li>one<ol><li>two</ul>three",
        "<p>&#0;&#xD800;&#x1F600; &unknown; &amp &lt</p>\x01\x0b",
        '<img src="data:image/png;base64,' + PNG[:20],
        "<h1><h2>nested headings</h1></h2>",
        "<td>cell outside a table</td><tr><th>row outside</th></tr>",
    ],
)
def test_broken_markup_gives_a_valid_document(broken):
    assert_valid(html_to_docx(broken, PROPERTIES))


def assert_valid(data: bytes) -> None:
    """Every part is well-formed XML, every part has a content type, and our converter reads it."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    types = part(archive, "[Content_Types].xml")
    overrides = {item.get("PartName") for item in types.iter(f"{CONTENT_TYPES}Override")}
    defaults = {item.get("Extension") for item in types.iter(f"{CONTENT_TYPES}Default")}
    for name in archive.namelist():
        assert f"/{name}" in overrides or name.rsplit(".", 1)[-1] in defaults, name
        if name.endswith((".xml", ".rels")):
            SafeET.fromstring(archive.read(name))
    convert_payload(base64.b64encode(data).decode("ascii"), "docx")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MARKUP)
def test_any_mix_of_markup_gives_a_valid_document(html):
    try:
        data = html_to_docx(html, PROPERTIES)
    except ConversionError as error:
        assert error.reason  # a clear reason, never a crash
        return
    assert_valid(data)


# In the pool


@pytest.fixture
def pool():
    pool = ConversionPool(workers=2)
    yield pool
    pool.close()


async def test_the_pool_makes_a_docx_in_a_worker(pool):
    data = await pool.html_to_docx("<h1>Title</h1><p>text</p>", PROPERTIES, title="Title", owner="s1")
    assert data.startswith(b"PK")
    assert convert_payload(base64.b64encode(data).decode("ascii"), "docx").html == "<h1>Title</h1><p>text</p>"
    # Conversions go on as before in the same workers.
    assert (await pool.convert("<p>fine</p>", "html", owner="s1")).html == "<p>fine</p>"


async def test_the_pool_refuses_hostile_html_clearly_and_serves_on(pool):
    with pytest.raises(ConversionError) as refused:
        await pool.html_to_docx("<div>" * 5000, PROPERTIES)
    assert refused.value.reason == "HTML is nested too deeply (the limit is 512 levels)"
    with pytest.raises(ValueError):
        await pool.html_to_docx("<p>x</p>", {"": "no name"})
    assert (await pool.html_to_docx("<p>next</p>", PROPERTIES)).startswith(b"PK")


async def test_a_long_html_to_docx_does_not_stall_other_sessions(pool):
    # 400,000 elements (8 MB): within the limits, seconds of work in one worker while the
    # other keeps serving another session's updates.
    big = "<p>some <b>words</b> here</p>" * 200_000
    job = asyncio.ensure_future(pool.html_to_docx(big, PROPERTIES, owner="big"))
    served = 0
    while not job.done():
        small = await pool.convert(documents.flat_opc(f"small update {served}"), "ooxml", owner="other")
        assert small.html == f"<p>small update {served}</p>"
        served += 1
        await asyncio.sleep(0.1)
    assert served >= 3
    archive = zipfile.ZipFile(io.BytesIO(job.result()))
    assert archive.read("word/document.xml").count(b"<w:p>") == 200_000


async def test_a_long_html_to_docx_makes_way_for_another_session_on_one_worker():
    pool = ConversionPool(workers=1, share_seconds=0.5)
    try:
        await pool.convert(documents.flat_opc("warm up"), "ooxml")
        big = asyncio.ensure_future(
            pool.html_to_docx("<p>some <b>words</b> here</p>" * 200_000, PROPERTIES, owner="big")
        )
        await asyncio.sleep(0.2)  # the big one has the worker
        small = await pool.convert(documents.flat_opc("small"), "ooxml", owner="other")
        assert small.html == "<p>small</p>"
        with pytest.raises(ConversionError) as refused:
            await big
        assert refused.value.reason.startswith("conversion stopped: it took too long while other documents")
    finally:
        pool.close()


async def test_html_to_docx_in_the_pool_times_out():
    pool = ConversionPool(workers=1, limits=Limits(timeout_seconds=1.0))
    try:
        with pytest.raises(ConversionError) as refused:
            await pool.html_to_docx("<p>some <b>words</b> here</p>" * 200_000, PROPERTIES)
        assert refused.value.reason == "conversion timed out"
        assert (await pool.html_to_docx("<p>after</p>", PROPERTIES)).startswith(b"PK")
    finally:
        pool.close()


# The round trip (issue 14, point 7)


@pytest.mark.parametrize("path", sorted(EDITOR_DOCUMENTS.glob("*.html")), ids=lambda path: path.stem)
def test_round_trip_keeps_the_editor_documents(path: Path):
    result = measure(
        path.name, path.read_text(encoding="utf-8"), lambda html: html_to_docx(html, PROPERTIES), 1
    )
    assert result.after is not None, result.note
    assert shortfalls(result.before, result.after) == []
    assert sum(result.before.words.values()) > 20


@pytest.mark.parametrize("path", sorted(EDITOR_DOCUMENTS.glob("*.html")), ids=lambda path: path.stem)
def test_a_second_round_trip_changes_nothing(path: Path):
    # What Word gave back goes to Word again (the editor's next "Edit in Word"): the same
    # HTML returns, but for white space (a pre's indentation comes back as a paragraph's).
    once = round_trip(path.read_text(encoding="utf-8"))
    assert re.sub(r"\s+", "", round_trip(once)) == re.sub(r"\s+", "", once)


def test_the_field_plugins_wrapper_makes_every_paragraph_right_to_left_but_those_marked_otherwise():
    html = round_trip((EDITOR_DOCUMENTS / "field-plugin.html").read_text(encoding="utf-8"))
    assert html.startswith('<h2 dir="rtl">') and '<ol dir="rtl">' in html and '<table dir="rtl">' in html
    assert html.count("<p>") == 1  # the one marked left-to-right
    assert html.endswith("<p>The English summary of the minutes follows the Persian text.</p>")


def test_the_editor_documents_hold_what_the_round_trip_must_keep():
    figures = [read_figures(path.read_text(encoding="utf-8")) for path in EDITOR_DOCUMENTS.glob("*.html")]
    assert all(
        sum(getattr(item, name) for item in figures) > 0
        for name in ("headings", "list_items", "cells", "links")
    )
    assert sum(item.pictures for item in figures) >= 3
    assert sum(count for item in figures for (rtl, _), count in item.directed.items() if rtl) > 50
    assert any(
        "rowspan" in path.read_text() and "colspan" in path.read_text()
        for path in EDITOR_DOCUMENTS.glob("*.html")
    )
