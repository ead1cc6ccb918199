"""The expat parser gives mammoth the very trees minidom gave it, and the very same HTML."""

from __future__ import annotations

import base64
import importlib.metadata
import io
import xml.dom.minidom
import zipfile
from functools import cache
from pathlib import Path

import pytest
from mammoth import conversion as mammoth_conversion
from mammoth import options as mammoth_options
from mammoth.conversion import _DocumentConverter as DocumentConverter
from mammoth.docx import office_xml, xmlparser

from conversion import ConversionError, Limits, convert_payload, style_matching, xml_parser
from conversion.flat_opc import flat_opc_to_docx
from conversion.mammoth_html import docx_to_html, garbage_collection_paused
from tests.test_conversion_corpus import CONVERTIBLE_FILES

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
NAMESPACES = office_xml._namespaces


@pytest.fixture(autouse=True)
def rewrites_off(monkeypatch):
    """The parsers are compared as mammoth's reader would see them without collab's rewrites."""
    monkeypatch.setattr(xml_parser, "ELEMENT_REWRITES", {})


def test_mammoth_is_the_release_the_parser_was_checked_against():
    # An upgrade must re-run these tests and update MAMMOTH_VERSION deliberately.
    assert importlib.metadata.version("mammoth") == xml_parser.MAMMOTH_VERSION == "1.13.0"
    assert office_xml.parse_xml is xml_parser.parse_xml
    assert xmlparser.parse_xml is xml_parser.original_parse_xml
    assert office_xml.read.__code__.co_names.count("parse_xml") == 1
    assert DocumentConverter._find_style is style_matching.find_style
    assert mammoth_options._read_style_map is style_matching.read_style_map
    assert "_read_style_map" in mammoth_options.read_options.__code__.co_names
    # The memo's key must hold every field mammoth's matcher reads from an element.
    assert style_matching.original_find_style.__code__.co_names == (
        "_style_map",
        "document_matcher",
        "_document_matcher_matches",
    )
    read = set(mammoth_conversion._document_matcher_matches.__code__.co_names)
    assert read == {"element_type", "color", "break_type", "style_id", "style_name", "matches", "numbering"}


def test_conversion_never_falls_back_to_minidom(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("minidom was used")

    monkeypatch.setattr(xml.dom.minidom, "parse", refuse)
    monkeypatch.setattr(xml.dom.minidom, "parseString", refuse)
    for name in ("docx4j-sample-docx.docx", "pandoc-comments.docx", "pandoc-notes.docx"):
        data = (CORPUS / "docx" / name).read_bytes()
        assert convert_payload(base64.b64encode(data).decode(), "docx").html


@pytest.fixture
def without_rewrites(monkeypatch):
    """The parser as a plain replacement of mammoth's: no feature's rewrites (tested with each feature)."""
    monkeypatch.setattr(xml_parser, "ELEMENT_REWRITES", {})


@cache
def _docx_bytes(path: Path) -> bytes:
    if path.suffix == ".xml":
        return flat_opc_to_docx(path.read_text(encoding="utf-8"), Limits())
    return path.read_bytes()


def _xml_entries(data: bytes):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for entry in archive.infolist():
            if not entry.is_dir():
                yield entry.filename, archive.read(entry)


# 12.5 MB of document.xml: minidom needs seconds for it; the HTML test below covers it.
TREE_FILES = [path for path in CONVERTIBLE_FILES if path.name != "poi-large-bug65649.docx"]


@pytest.mark.parametrize("path", TREE_FILES, ids=[path.name for path in TREE_FILES])
def test_both_parsers_give_equal_trees_for_every_part(path, without_rewrites):
    compared = 0
    for name, data in _xml_entries(_docx_bytes(path)):
        with garbage_collection_paused():
            try:
                expected = xml_parser.original_parse_xml(io.BytesIO(data), NAMESPACES)
            except Exception:  # noqa: S112 - not XML (pictures and the like): mammoth never parses it
                continue
            assert xml_parser.parse_xml(io.BytesIO(data), NAMESPACES) == expected, name
        compared += 1
    assert compared >= 2


@pytest.mark.parametrize("path", CONVERTIBLE_FILES, ids=[path.name for path in CONVERTIBLE_FILES])
def test_html_before_sanitising_is_identical_to_mammoths(path, monkeypatch, without_rewrites):
    data = _docx_bytes(path)
    fast = docx_to_html(data)
    # mammoth as released: its own parser and style look-up.
    monkeypatch.setattr(office_xml, "parse_xml", xml_parser.original_parse_xml)
    monkeypatch.setattr(DocumentConverter, "_find_style", style_matching.original_find_style)
    monkeypatch.setattr(mammoth_options, "_read_style_map", style_matching.original_read_style_map)
    assert docx_to_html(data) == fast


@pytest.mark.parametrize(
    "document",
    [
        b'<a y="2"><b x="1">t<!--c-->u<![CDATA[]]>v<![CDATA[z]]>w<?pi x?>q</b></a>',
        b"\xef\xbb\xbf<?xml version='1.0'?><w:p xmlns:w='urn:w'><w:t xml:space='preserve'> a </w:t></w:p>",
        '<?xml version="1.0" encoding="UTF-16"?><a>caf\u00e9 &amp; &#233; &lt;x&gt;</a>'.encode("utf-16"),
        b'<w:document xmlns:w="http://purl.oclc.org/ooxml/wordprocessingml/main" xmlns:o="urn:other">'
        b'<w:body><o:x o:y="1" w:z="2">\r\n<w:t>a</w:t>\n</o:x></w:body></w:document>',
        b'<d xmlns="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><p a="1">x</p></d>',
        b"<a><b/>" + b"text " * 50_000 + b"<c/>tail</a>",
    ],
    ids=["splits", "bom-and-xml-space", "utf-16", "strict-and-foreign", "default-namespace", "long-text"],
)
def test_both_parsers_agree_on_awkward_xml(document):
    expected = xml_parser.original_parse_xml(io.BytesIO(document), NAMESPACES)
    assert xml_parser.parse_xml(io.BytesIO(document), NAMESPACES) == expected


def test_parser_refuses_a_dtd_and_deep_nesting():
    with pytest.raises(ConversionError) as refused:
        xml_parser.parse_xml(io.BytesIO(b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>'))
    assert refused.value.reason == "document contains a DTD or entities, which are not allowed"
    with xml_parser.parsing_within(10), pytest.raises(ConversionError) as refused:
        xml_parser.parse_xml(io.BytesIO(b"<a>" * 11 + b"</a>" * 11))
    assert refused.value.reason == "document is nested too deeply"
    with xml_parser.parsing_within(10):
        assert xml_parser.parse_xml(io.BytesIO(b"<a>" * 10 + b"</a>" * 10)).name == "a"
