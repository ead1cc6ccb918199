"""Every document of ../shared/corpus converts, shows its body text, and carries no script."""

from __future__ import annotations

import base64
import html
import io
import re
import zipfile
from collections import Counter
from functools import cache
from pathlib import Path

import defusedxml.ElementTree as SafeET
import pytest

from conversion import ConversionError, Converted, convert_payload
from tests.documents import CORPUS

DOCX_FILES = sorted((CORPUS / "docx").glob("*.doc[xm]"))
FLAT_OPC_FILES = sorted((CORPUS / "flatopc").glob("*.xml"))
# With the corpus missing, these stand in so that the parametrised tests fail, not skip.
_MISSING = [CORPUS / "corpus-is-missing"]

# SOURCES.md marks these BROKEN; each must be refused, with the reason given here.
BROKEN = {
    "mammothjs-empty-zip.docx": "this is a zip archive without a Word document",
    "mammothjs-hello-zip.docx": "this is a zip archive without a Word document",
    "poi-truncated.docx": "damaged archive",
    "poi-encrypted-password-pass.docx": (
        "this is a password-protected Word document: remove the password in Word first"
    ),
    "poi-fuzz-bad-central-dir.docx": "damaged archive",
}
# The XXE test document is refused outright: OPC forbids DTDs in packages (ISO/IEC
# 29500-2, M1.17), Word never writes one, and refusing means no parser ever sees it.
REFUSED = {
    "poi-external-entity.docx": "document contains a DTD or entities, which are not allowed",
}

PKG_NS = "http://schemas.microsoft.com/office/2006/xmlPackage"
W_NAMESPACES = {
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "http://purl.oclc.org/ooxml/wordprocessingml/main",
}
MC_NS = "http://schemas.openxmlformats.org/markup-compatibility/2006"
# Text Word does not show: deletions (a moveFrom is the deleted end of a move) and
# field codes. mc:Fallback repeats what mc:Choice holds, for older readers.
HIDDEN_W_ELEMENTS = {"del", "delText", "moveFrom", "instrText"}
_BLOCK_TAGS = r"p|h[1-6]|li|td|th|tr|table|thead|tbody|ul|ol|br|div|blockquote|pre|dl|dt|dd|hr|img"


def _no_text(result: Converted) -> bool:
    return not _words(_html_text(result.html))


def _only_images(result: Converted) -> bool:
    return _no_text(result) and bool(re.search(r'<img [^>]*src="data:image/(png|jpeg|gif)', result.html))


# Documents whose body has no w:t text, with what the HTML honestly is for each.
NO_BODY_TEXT = {
    "docx4j-chart.docx": ("the body is one DrawingML chart, which mammoth drops", lambda r: r.html == ""),
    "oasamples-chart.xml": ("the body is one DrawingML chart, which mammoth drops", lambda r: r.html == ""),
    "oasamples-smartart.xml": (
        "the body is one SmartArt diagram; its text lives in the diagram parts",
        lambda r: r.html == "",
    ),
    "oxpt-equation.docx": (
        "the body is one OMML equation (m:t, not w:t), shown as a display equation in MathML",
        lambda r: r.html.startswith('<p><math display="block">') and not r.warnings,
    ),
    "mammoth-empty.docx": ("empty body", lambda r: r.html == ""),
    "oxpt-watermark.docx": (
        "empty body; the header holds only the watermark, a VML shape mammoth drops",
        lambda r: r.html == "",
    ),
    "poi-header-footer.docx": (
        "empty body; the first section's header and footer carry the text",
        lambda r: (
            r.html
            == (
                '<header class="doc-header"><p>This is a simple header\u2026</p></header>'
                '<footer class="doc-footer"><p>\u2026 and this is a simple footer.</p></footer>'
            )
        ),
    ),
    "poi-no-styles-footer-only.docx": (
        "empty body; the text is in the footer (a page-number field's last shown value)",
        lambda r: r.html == '<footer class="doc-footer"><p class="align-right">Page 2of 2</p></footer>',
    ),
    "pydocx-no-styles-part.docx": ("empty body", lambda r: r.html == ""),
    "pydocx-tables.docx": (
        "three tables with empty cells",
        lambda r: r.html.count("<table>") == 3 and _no_text(r),
    ),
    "mammoth-external-picture.docx": (
        "one picture linked to an outside file, which is never opened",
        lambda r: r.html == "" and any("external file access is disabled" in w for w in r.warnings),
    ),
    "mammoth-footnote-hyperlink.docx": (
        "the body is a footnote reference; the footnote holds a link",
        lambda r: '<a href="http://www.example.com"' in r.html and "Example" in r.html,
    ),
    "docx4j-images.docx": ("pictures only", _only_images),
    "mammoth-tiny-picture.docx": ("one picture", _only_images),
    "mammoth-tiny-picture-base-relative.docx": ("one picture", _only_images),
    "oxpt-image-hyperlink.docx": (
        "one picture inside a hyperlink",
        lambda r: _only_images(r) and '<a href="http://www.ericwhite.com"' in r.html,
    ),
    "pydocx-having-images.docx": ("pictures only", _only_images),
    "oasamples-simple-image.xml": ("one picture", _only_images),
    "oasamples-formatted-image.xml": ("one picture", _only_images),
}
# ODD: three w:body elements. mammoth, like Word, reads the first one only.
FIRST_BODY_ONLY = {"poi-multiple-body.docx"}


def _ids(paths: list[Path]) -> list[str]:
    return [path.name for path in paths]


def test_corpus_is_present():
    assert len(DOCX_FILES) == 80, f"expected the 80 documents of {CORPUS / 'docx'}"
    assert len(FLAT_OPC_FILES) == 15, f"expected the 15 packages of {CORPUS / 'flatopc'}"
    assert set(BROKEN) | set(REFUSED) | set(FIRST_BODY_ONLY) <= set(_ids(DOCX_FILES))
    assert set(NO_BODY_TEXT) <= set(_ids(DOCX_FILES + FLAT_OPC_FILES))


BROKEN_FILES = [path for path in DOCX_FILES if path.name in BROKEN] or _MISSING
CONVERTIBLE_FILES = [
    path for path in DOCX_FILES + FLAT_OPC_FILES if path.name not in BROKEN | REFUSED.keys()
] or _MISSING


@pytest.mark.parametrize("path", BROKEN_FILES, ids=_ids(BROKEN_FILES))
def test_broken_document_is_refused(path):
    with pytest.raises(ConversionError) as refused:
        _convert(path)
    assert refused.value.reason == BROKEN[path.name]


def test_external_entity_document_is_refused():
    path = CORPUS / "docx" / "poi-external-entity.docx"
    with pytest.raises(ConversionError) as refused:
        _convert(path)
    assert refused.value.reason == REFUSED[path.name]


@pytest.mark.parametrize("path", CONVERTIBLE_FILES, ids=_ids(CONVERTIBLE_FILES))
def test_document_converts_with_its_body_text(path):
    result = _convert(path)
    bodies = _body_texts(path)
    if path.name in FIRST_BODY_ONLY:
        assert len(bodies) > 1
        bodies = bodies[:1]
        assert _coverage(bodies[0], result.html) == 1.0
        return
    words = _words(" ".join(bodies))
    if path.name in NO_BODY_TEXT:
        reason, expected = NO_BODY_TEXT[path.name]
        assert not words, f"{path.name} has body text after all; drop it from NO_BODY_TEXT"
        assert expected(result), f"{path.name}: {reason}; got {result.html[:300]!r}"
        return
    assert words, f"{path.name} has no body text; say what its HTML should be in NO_BODY_TEXT"
    assert _coverage(" ".join(bodies), result.html) >= 0.95


@pytest.mark.parametrize("path", CONVERTIBLE_FILES, ids=_ids(CONVERTIBLE_FILES))
def test_converted_html_carries_no_script(path):
    result = _convert(path)
    lowered = result.html.lower()
    assert "<script" not in lowered
    assert "javascript:" not in lowered
    assert not re.search(r"\son[a-z]+\s*=", lowered)
    assert not re.search(r'src="(?!data:image/(png|jpeg|gif|bmp|webp);base64,)', lowered)
    assert result.html_bytes == len(result.html.encode())
    assert result.input_bytes == len(_payload(path)[0].encode())
    assert all(isinstance(warning, str) for warning in result.warnings)


def test_emf_and_wmf_pictures_are_left_out_with_a_warning():
    result = _convert(CORPUS / "docx" / "poi-various-pictures.docx")
    assert "image/x-emf" not in result.html and "image/x-wmf" not in result.html
    assert "data:image/png;base64," in result.html or "data:image/jpeg;base64," in result.html
    assert any("image/x-emf was left out" in warning for warning in result.warnings)


def test_docx_given_as_base64_data_url_with_line_breaks_converts():
    data = (CORPUS / "docx" / "mammoth-single-paragraph.docx").read_bytes()
    encoded = base64.encodebytes(data).decode()  # 76-character lines
    result = convert_payload(
        "data:application/vnd.openxmlformats-officedocument.wordprocessingml.document;base64," + encoded,
        "docx",
    )
    assert result.html == "<p>Walking on imported air</p>"


def test_flat_opc_with_bom_and_declarations_converts():
    text = (CORPUS / "flatopc" / "oasamples-text-with-style.xml").read_text(encoding="utf-8")
    assert text.startswith("\ufeff<pkg:package")
    # A JavaScript string keeps the declaration Word wrote, even one naming UTF-16.
    declared = (
        '\ufeff<?xml version="1.0" encoding="UTF-16" standalone="yes"?>\n'
        '<?mso-application progid="Word.Document"?>\n' + text[1:]
    )
    result = convert_payload(declared, "ooxml")
    assert result.html == "<h1>This text is formatted using the Heading 1 paragraph style.</h1>"


def test_flat_opc_without_package_relationships_still_finds_the_document():
    text = (CORPUS / "flatopc" / "docx4j-table-spans.xml").read_text(encoding="utf-8")
    without_rels, removed = re.subn(
        r'<pkg:part pkg:name="/_rels/\.rels".*?</pkg:part>', "", text, flags=re.DOTALL
    )
    assert removed == 1
    assert convert_payload(without_rels).html == convert_payload(text).html


def test_bare_wordprocessingml_document_converts():
    text = (CORPUS / "flatopc" / "snippets-insert-body.xml").read_text(encoding="utf-8")
    document = SafeET.tostring(_flat_opc_part(text, "/word/document.xml"), encoding="unicode")
    result = convert_payload(document, "ooxml")
    assert "This text has formatting directly applied" in result.html


def test_large_document_converts_completely():
    path = CORPUS / "docx" / "poi-large-bug65649.docx"
    result = _convert(path)
    assert result.html_bytes > 500_000
    assert _coverage(" ".join(_body_texts(path)), result.html) >= 0.95


def _payload(path: Path) -> tuple[str, str]:
    """The document as an update's Content and PayloadType carry it."""
    if path.suffix == ".xml":
        return path.read_text(encoding="utf-8"), "ooxml"
    return base64.b64encode(path.read_bytes()).decode("ascii"), "docx"


@cache
def _cached_conversion(path: Path) -> Converted | ConversionError:
    try:
        return convert_payload(*_payload(path))
    except ConversionError as error:
        return error


def _convert(path: Path) -> Converted:
    # Each document is converted once for all the tests that look at it.
    result = _cached_conversion(path)
    if isinstance(result, ConversionError):
        raise result
    return result


def _body_texts(path: Path) -> list[str]:
    """The visible text of each w:body of the main document part."""
    if path.suffix == ".xml":
        document = _flat_opc_part(path.read_text(encoding="utf-8"), "/word/document.xml")
    else:
        with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
            relationships = SafeET.fromstring(archive.read("_rels/.rels"))
            target = next(
                rel.get("Target") for rel in relationships if rel.get("Type", "").endswith("/officeDocument")
            )
            document = SafeET.fromstring(archive.read(target.lstrip("/")))
    return [_visible_text(body) for body in document if _local_name(body) == "body"]


def _flat_opc_part(text: str, name: str):
    package = SafeET.fromstring(text.lstrip("\ufeff").encode("utf-8"))
    for part in package:
        if part.get(f"{{{PKG_NS}}}name") == name:
            return part.find(f"{{{PKG_NS}}}xmlData")[0]
    raise AssertionError(f"no part {name}")


def _visible_text(body) -> str:
    pieces: list[str] = []

    def walk(element):
        namespace, local = _split(element.tag)
        is_w = namespace in W_NAMESPACES
        if (is_w and local in HIDDEN_W_ELEMENTS) or (namespace == MC_NS and local == "Fallback"):
            return
        if is_w and local == "t":
            pieces.append(element.text or "")
            return
        if is_w and local in {"tab", "ptab", "br", "cr"}:
            pieces.append(" ")
        elif is_w and local == "noBreakHyphen":
            pieces.append("-")
        # Runs join without spaces; paragraphs (also nested, in text boxes) are separate.
        if is_w and local == "p":
            pieces.append(" ")
        for child in element:
            walk(child)
        if is_w and local == "p":
            pieces.append(" ")

    walk(body)
    return " ".join("".join(pieces).split())


def _coverage(text: str, converted_html: str) -> float:
    """Share of the text's words found in the HTML's text, counting repeats."""
    wanted = Counter(_words(text))
    found = Counter(_words(_html_text(converted_html)))
    return sum(min(count, found[word]) for word, count in wanted.items()) / max(wanted.total(), 1)


def _html_text(converted_html: str) -> str:
    spaced = re.sub(rf"</?(?:{_BLOCK_TAGS})\b[^>]*>", " ", converted_html)
    return html.unescape(re.sub(r"<[^>]*>", "", spaced))


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _split(tag: str) -> tuple[str, str]:
    namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    return namespace, local


def _local_name(element) -> str:
    return _split(element.tag)[1]
