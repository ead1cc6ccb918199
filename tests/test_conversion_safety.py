"""Hostile input: each gives a ConversionError with a safe reason, or HTML with nothing active."""

from __future__ import annotations

import base64
import io
import os
import re
import socket
import zipfile
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest

from conversion import ConversionError, Limits, convert_payload, sanitise_html

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_NS = "http://schemas.microsoft.com/office/2006/xmlPackage"
MAIN_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
RELS_TYPE = "application/vnd.openxmlformats-package.relationships+xml"
OFFICE_DOCUMENT = f"{R_NS}/officeDocument"
HYPERLINK = f"{R_NS}/hyperlink"
MiB = 1024 * 1024
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

DTD_REFUSED = "document contains a DTD or entities, which are not allowed"
BILLION_LAUGHS_DTD = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">' for i in range(1, 10))
    + "]>"
)
PASSWD_DTD = '<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


def document_xml(body: str) -> str:
    return f'<w:document xmlns:w="{W_NS}" xmlns:r="{R_NS}"><w:body>{body}</w:body></w:document>'


def paragraph(text: str) -> str:
    return f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>"


def relationships(*relations: tuple[str, str, str, str | None]) -> str:
    items = "".join(
        f"<Relationship Id={quoteattr(rid)} Type={quoteattr(kind)} Target={quoteattr(target)}"
        + (f" TargetMode={quoteattr(mode)}" if mode else "")
        + "/>"
        for rid, kind, target, mode in relations
    )
    return f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{items}</Relationships>'


def flat_opc(document: str, document_rels: str | None = None, prolog: str = "") -> str:
    """A Flat OPC package holding document (and its relationships) as xmlData."""
    parts = [
        ("/_rels/.rels", RELS_TYPE, relationships(("rId1", OFFICE_DOCUMENT, "word/document.xml", None))),
        ("/word/document.xml", MAIN_TYPE, document),
    ]
    if document_rels is not None:
        parts.append(("/word/_rels/document.xml.rels", RELS_TYPE, document_rels))
    body = "".join(
        f'<pkg:part pkg:name="{name}" pkg:contentType="{kind}"><pkg:xmlData>{xml}</pkg:xmlData></pkg:part>'
        for name, kind, xml in parts
    )
    return f'{prolog}<pkg:package xmlns:pkg="{PKG_NS}">{body}</pkg:package>'


def docx(
    document: str | bytes,
    document_rels: str | None = None,
    extra: dict | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    """A .docx zip around document, with whatever extra entries a test needs."""
    entries = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'<Default Extension="rels" ContentType="{RELS_TYPE}"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/word/document.xml" ContentType="{MAIN_TYPE}"/></Types>'
        ),
        "_rels/.rels": relationships(("rId1", OFFICE_DOCUMENT, "word/document.xml", None)),
        "word/document.xml": document,
    }
    if document_rels is not None:
        entries["word/_rels/document.xml.rels"] = document_rels
    entries.update(extra or {})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def as_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def refusal(content, payload_type="ooxml", limits: Limits | None = None) -> str:
    """Convert content expecting a ConversionError; return its reason after checking it is safe."""
    with pytest.raises(ConversionError) as refused:
        convert_payload(content, payload_type, limits or Limits())
    reason = refused.value.reason
    assert 0 < len(reason) < 120
    assert "Traceback" not in reason and "/etc" not in reason and os.getcwd() not in reason
    return reason


def assert_inactive(html: str) -> None:
    lowered = html.lower()
    assert "<script" not in lowered and "javascript:" not in lowered and "vbscript:" not in lowered
    assert not re.search(r"\son[a-z]+\s*=", lowered)
    assert not re.search(r"data:(?!image/(png|jpeg|gif|bmp|webp);base64,)", lowered)


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if anything opens a socket."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access in a conversion test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield attempts
    assert attempts == []


# Entity attacks


def test_billion_laughs_in_flat_opc_is_refused(no_network):
    hostile = flat_opc(document_xml(paragraph("&lol9;")), prolog=BILLION_LAUGHS_DTD)
    assert refusal(hostile) == DTD_REFUSED


def test_billion_laughs_in_a_docx_part_is_refused(no_network):
    hostile = docx(BILLION_LAUGHS_DTD + document_xml(paragraph("&lol9;")))
    assert refusal(as_base64(hostile), "docx") == DTD_REFUSED


def test_external_entity_in_flat_opc_is_refused(no_network):
    hostile = flat_opc(document_xml(paragraph("&xxe;")), prolog=PASSWD_DTD)
    assert refusal(hostile) == DTD_REFUSED


def test_external_entity_in_a_docx_part_is_refused(no_network):
    hostile = docx(PASSWD_DTD + document_xml(paragraph("&xxe;")))
    assert refusal(as_base64(hostile), "docx") == DTD_REFUSED


def test_external_entity_in_a_relationships_part_is_refused(no_network):
    rels = PASSWD_DTD + relationships(("rId5", HYPERLINK, "&xxe;", "External"))
    hostile = docx(document_xml(paragraph("hello")), document_rels=rels)
    assert refusal(as_base64(hostile), "docx") == DTD_REFUSED


def test_dtd_in_a_main_part_with_an_unusual_name_is_refused(no_network):
    # mammoth follows _rels/.rels to any name, so the scan cannot go by extension.
    hostile = docx(
        document_xml(paragraph("decoy")),
        extra={
            "_rels/.rels": relationships(("rId1", OFFICE_DOCUMENT, "word/body.bin", None)),
            "word/body.bin": PASSWD_DTD + document_xml(paragraph("&xxe;")),
        },
    )
    assert refusal(as_base64(hostile), "docx") == DTD_REFUSED


def test_dtd_hidden_behind_leading_whitespace_is_refused(no_network):
    hostile = docx(" " * 5000 + PASSWD_DTD + document_xml(paragraph("&xxe;")))
    assert refusal(as_base64(hostile), "docx") == DTD_REFUSED


# Archive attacks


def test_zip_bomb_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("_rels/.rels", relationships(("rId1", OFFICE_DOCUMENT, "word/document.xml", None)))
        with archive.open("word/document.xml", "w") as entry:
            zeros = bytes(MiB)
            for _ in range(200):
                entry.write(zeros)
    assert len(buffer.getvalue()) < 1 * MiB
    assert "zip bomb" in refusal(as_base64(buffer.getvalue()), "docx")


def test_archive_unpacking_beyond_the_limit_is_refused():
    noise = os.urandom(2 * MiB)  # incompressible: no ratio alarm, only the total
    hostile = docx(document_xml(paragraph("hi")), extra={"word/media/noise.bin": noise})
    reason = refusal(as_base64(hostile), "docx", Limits(max_uncompressed_bytes=1 * MiB))
    assert reason.startswith("document too large when unpacked")


def test_too_many_parts_in_a_docx_is_refused():
    extra = {f"customXml/item{i}.xml": "<a/>" for i in range(2001)}
    hostile = docx(document_xml(paragraph("hi")), extra=extra)
    assert refusal(as_base64(hostile), "docx").startswith("too many parts")


def test_too_many_parts_in_flat_opc_is_refused():
    many = "".join(
        f'<pkg:part pkg:name="/customXml/item{i}.xml" pkg:contentType="application/xml">'
        "<pkg:xmlData><a/></pkg:xmlData></pkg:part>"
        for i in range(2001)
    )
    hostile = flat_opc(document_xml(paragraph("hi"))).replace("</pkg:package>", many + "</pkg:package>")
    assert refusal(hostile).startswith("too many parts")


def test_encrypted_zip_entry_is_refused():
    hostile = bytearray(docx(document_xml(paragraph("secret"))))
    # Set the "encrypted" flag on every entry, in local and central headers alike.
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        for match in re.finditer(re.escape(signature), bytes(hostile)):
            hostile[match.start() + flag_offset] |= 0x01
    assert refusal(as_base64(bytes(hostile)), "docx") == "encrypted documents are not supported"


@pytest.mark.parametrize("name", ["../evil.xml", "/etc/evil.xml", "word\\..\\evil.xml", "C:/evil.xml"])
def test_zip_entry_with_an_unsafe_name_is_refused(name):
    hostile = docx(document_xml(paragraph("hi")), extra={name: "<a/>"})
    assert refusal(as_base64(hostile), "docx") == "damaged archive: a part has an invalid name"


@pytest.mark.parametrize("name", ["/../evil.xml", "/word/./document.xml", "word/no-slash.xml", "/a//b.xml"])
def test_flat_opc_part_with_an_unsafe_name_is_refused(name):
    part = (
        f'<pkg:part pkg:name="{name}" pkg:contentType="application/xml">'
        "<pkg:xmlData><a/></pkg:xmlData></pkg:part>"
    )
    hostile = flat_opc(document_xml(paragraph("hi"))).replace("</pkg:package>", part + "</pkg:package>")
    assert "invalid name" in refusal(hostile)


# Depth


def test_deep_nesting_in_flat_opc_is_refused():
    deep = "<w:smartTag>" * 100_000 + "<w:r><w:t>x</w:t></w:r>" + "</w:smartTag>" * 100_000
    hostile = flat_opc(document_xml(f"<w:p>{deep}</w:p>"))
    assert refusal(hostile) == "document is nested too deeply"


def test_deep_nesting_in_a_docx_part_is_refused():
    deep = "<w:smartTag>" * 100_000 + "</w:smartTag>" * 100_000
    # Stored, so that the zip bomb check (this compresses 300:1) does not answer first.
    hostile = docx(document_xml(f"<w:p>{deep}</w:p>"), compression=zipfile.ZIP_STORED)
    assert refusal(as_base64(hostile), "docx") == "document is nested too deeply"


def test_nesting_within_the_depth_limit_converts_or_is_refused_cleanly():
    # 60 nested tables are 180 levels: within the limit, but deep enough that mammoth's
    # recursion may run out in-process. Either way the caller sees no RecursionError.
    inner = paragraph("deepest")
    for _ in range(60):
        inner = f"<w:tbl><w:tr><w:tc>{inner}</w:tc></w:tr></w:tbl>"
    try:
        result = convert_payload(flat_opc(document_xml(inner)))
    except ConversionError as error:
        assert error.reason == "document is nested too deeply"
    else:
        assert "deepest" in result.html


# Links and markup


def test_javascript_hyperlink_in_flat_opc_loses_its_target():
    body = (
        '<w:p><w:hyperlink r:id="rId9"><w:r><w:t>click me</w:t></w:r></w:hyperlink>'
        '<w:hyperlink r:id="rId10"><w:r><w:t>safe</w:t></w:r></w:hyperlink></w:p>'
    )
    rels = relationships(
        ("rId9", HYPERLINK, "javascript:alert(1)", "External"),
        ("rId10", HYPERLINK, "https://example.com/", "External"),
    )
    result = convert_payload(flat_opc(document_xml(body), document_rels=rels))
    assert_inactive(result.html)
    assert "click me" in result.html
    assert '<a href="https://example.com/" rel="noopener noreferrer">safe</a>' in result.html


@pytest.mark.parametrize(
    "target",
    ["javascript:alert(1)", " JaVaScRiPt:alert(1)", "java\tscript:alert(1)", "data:text/html,<b>x</b>"],
)
def test_hostile_hyperlink_in_docx_loses_its_target(target):
    body = '<w:p><w:hyperlink r:id="rId9"><w:r><w:t>click me</w:t></w:r></w:hyperlink></w:p>'
    rels = relationships(("rId9", HYPERLINK, target, "External"))
    result = convert_payload(as_base64(docx(document_xml(body), document_rels=rels)), "docx")
    assert_inactive(result.html)
    assert result.html == '<p><a rel="noopener noreferrer">click me</a></p>'


@pytest.mark.parametrize(
    ("hostile", "expected"),
    [
        ("<img src=x onerror=alert(1)>", "<img>"),
        ("<p onclick='alert(1)'>hi</p>", "<p>hi</p>"),
        ("<script>alert(1)</script><p>after</p>", "<p>after</p>"),
        ("<style>p{}</style><iframe src='https://evil'></iframe>x", "x"),
        ('<a href="javascript:alert(1)">a</a>', '<a rel="noopener noreferrer">a</a>'),
        ('<a href="vbscript:msgbox">a</a>', '<a rel="noopener noreferrer">a</a>'),
        ('<a href="data:text/html;base64,PHNjcmlwdD4=">a</a>', '<a rel="noopener noreferrer">a</a>'),
        ('<img src="data:text/html;base64,PHNjcmlwdD4=">', "<img>"),
        ('<img src="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=">', "<img>"),
        ('<img src="https://tracker.example/pixel.png">', "<img>"),
        ('<svg><a href="javascript:alert(1)">x</a></svg>y', "y"),
        ('<object data="x.swf"></object><embed src="x.swf">z', "z"),
    ],
)
def test_hostile_html_payload_is_disarmed(hostile, expected):
    result = convert_payload(hostile, "html")
    assert result.html == expected
    assert_inactive(result.html)
    assert result.warnings == []


def test_document_markup_survives_sanitising():
    png = "data:image/png;base64,iVBORw0KGgo="
    html = (
        "<h1>T</h1><p><strong>b</strong><em>i</em><u>u</u><s>s</s><sub>1</sub><sup>2</sup></p>"
        f'<p><img src="{png}" alt="a"></p><ul><li>x</li></ul><ol><li>y</li></ol>'
        '<table><thead><tr><th colspan="2">h</th></tr></thead>'
        '<tbody><tr><td rowspan="2">c</td></tr></tbody></table>'
        '<p><a href="https://example.com/">l</a> <a href="mailto:a@example.com">m</a></p>'
        '<p><a id="footnote-ref-1" href="#footnote-1">[1]</a></p><ol><li id="footnote-1">n</li></ol>'
    )
    clean = sanitise_html(html)
    for kept in ("<h1>", "<strong>", "<em>", "<u>", "<s>", "<sub>", "<sup>", "<thead>", 'colspan="2"'):
        assert kept in clean
    assert f'<img src="{png}" alt="a">' in clean
    assert 'rowspan="2"' in clean
    assert '<a href="https://example.com/" rel="noopener noreferrer">l</a>' in clean
    assert '<a href="mailto:a@example.com" rel="noopener noreferrer">m</a>' in clean
    # ids are prefixed, and the links to them with them, so a document cannot take a page's ids
    assert '<a id="doc-footnote-ref-1" href="#doc-footnote-1" rel="noopener noreferrer">' in clean
    assert '<li id="doc-footnote-1">' in clean


def test_svg_picture_is_left_out_with_a_warning():
    # The corpus's one-PNG document, its picture relabelled as SVG, which can carry script.
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(CORPUS / "docx" / "mammoth-tiny-picture.docx") as original,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as relabelled,
    ):
        for entry in original.infolist():
            data = original.read(entry)
            if entry.filename == "[Content_Types].xml":
                data = data.replace(b'ContentType="image/png"', b'ContentType="image/svg+xml"')
            relabelled.writestr(entry.filename, data)
    result = convert_payload(as_base64(buffer.getvalue()), "docx")
    assert "<img" not in result.html
    assert any("image/svg+xml was left out" in warning for warning in result.warnings)


# Input that is not what it claims to be


def test_garbage_base64_is_refused():
    assert refusal("this is %% not base64 !!", "docx") == (
        "this is plain text, not a Word document (expected a .docx file or its base64)"
    )


def test_base64_of_something_else_is_refused():
    assert refusal(as_base64(b"GIF89a not a zip"), "docx") == "this is a GIF image, not a Word document"


def test_text_that_is_not_xml_is_refused():
    assert refusal("Hello, this is plain text.") == (
        "this is plain text, not a Word document (expected a Flat OPC package or a w:document)"
    )


def test_xml_that_is_not_a_word_document_is_refused():
    assert refusal("<html><body>hi</body></html>").startswith("not a Word document")


def test_flat_opc_without_a_main_document_is_refused():
    package = f'<pkg:package xmlns:pkg="{PKG_NS}"></pkg:package>'
    assert refusal(package).startswith("not a Word document")


def test_flat_opc_with_bad_binary_data_is_refused():
    part = (
        '<pkg:part pkg:name="/word/media/a.png" pkg:contentType="image/png">'
        "<pkg:binaryData>@@@</pkg:binaryData></pkg:part>"
    )
    hostile = flat_opc(document_xml(paragraph("hi"))).replace("</pkg:package>", part + "</pkg:package>")
    assert "not valid base64" in refusal(hostile)


def test_empty_content_is_refused():
    assert refusal("") == "empty document"
    assert refusal("  \n", "docx") == "empty document"


def test_input_over_the_size_limit_is_refused():
    assert refusal("x" * 2000, "html", Limits(max_input_bytes=1000)).startswith("document too large")
    # Counted in UTF-8 bytes: 400 characters of 3 bytes each are over 1000.
    assert refusal("€" * 400, "html", Limits(max_input_bytes=1000)).startswith("document too large")
    huge = "A" * (32 * MiB + 4)
    assert refusal(huge, "docx").startswith("document too large")


def test_archive_over_the_size_limit_is_refused():
    data = docx(document_xml(paragraph("hi")), extra={"word/media/noise.bin": os.urandom(4096)})
    assert refusal(as_base64(data), "docx", Limits(max_archive_bytes=2048)).startswith("document too large")


def test_unsupported_payload_type_is_refused():
    assert refusal("<p>x</p>", "pdf") == "unsupported payload type"


def test_lone_surrogates_are_refused():
    assert refusal("<p>\ud800</p>", "html") == "content is not valid Unicode text"


# Pictures, and text that looks like markup

WP_NS = "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"
A_NS = "http://schemas.openxmlformats.org/drawingml/2006/main"
PIC_NS = "http://schemas.openxmlformats.org/drawingml/2006/picture"
IMAGE = f"{R_NS}/image"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def picture(relationship_id: str, attribute: str = "embed") -> str:
    """A DrawingML picture whose blip points at relationship_id (r:embed, or r:link for linked files)."""
    return (
        f'<w:p><w:r><w:drawing><wp:inline xmlns:wp="{WP_NS}"><wp:docPr id="1" name="P" descr="pic"/>'
        f'<a:graphic xmlns:a="{A_NS}"><a:graphicData uri="{PIC_NS}"><pic:pic xmlns:pic="{PIC_NS}">'
        f'<pic:blipFill><a:blip r:{attribute}="{relationship_id}"/></pic:blipFill>'
        "</pic:pic></a:graphicData></a:graphic></wp:inline></w:drawing></w:r></w:p>"
    )


def pictures_docx(images: list[bytes]) -> bytes:
    """A .docx with one embedded PNG picture per item of images."""
    body = "".join(picture(f"rId{n}") for n in range(len(images)))
    rels = relationships(*((f"rId{n}", IMAGE, f"media/image{n}.png", None) for n in range(len(images))))
    content_types = (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        f'<Default Extension="rels" ContentType="{RELS_TYPE}"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Default Extension="png" ContentType="image/png"/>'
        f'<Override PartName="/word/document.xml" ContentType="{MAIN_TYPE}"/></Types>'
    )
    extra = {"[Content_Types].xml": content_types}
    extra.update({f"word/media/image{n}.png": data for n, data in enumerate(images)})
    return docx(document_xml(body), document_rels=rels, extra=extra)


def test_script_typed_as_text_comes_out_as_text():
    typed = '&lt;script&gt;alert("x")&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt;'
    result = convert_payload(flat_opc(document_xml(paragraph(typed))))
    assert result.html == (
        '<p>&lt;script&gt;alert("x")&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt;</p>'
    )
    assert "<script" not in result.html and "<img" not in result.html


def test_embedded_pictures_within_the_limits_are_shown():
    result = convert_payload(as_base64(pictures_docx([PNG, PNG])), "docx")
    assert result.html.count('<img alt="pic" src="data:image/png;base64,') == 2
    assert_inactive(result.html)


def test_too_many_pictures_are_refused():
    hostile = as_base64(pictures_docx([PNG] * 4))
    assert refusal(hostile, "docx", Limits(max_images=3)) == "too many images (the limit is 3)"


def test_fifty_megabyte_picture_is_refused_by_the_image_size_limit():
    # Mostly zeros with a random byte every 64: compresses about 40:1, under the zip bomb
    # ratio, so that the image limit is what answers.
    huge = bytearray(50 * MiB)
    huge[::64] = os.urandom(len(huge[::64]))
    hostile = pictures_docx([PNG[:16] + bytes(huge)])
    assert len(hostile) < 24 * MiB
    reason = refusal(as_base64(hostile), "docx")
    assert reason == "an image is too large (the limit is 16 MB per image)"


@pytest.mark.parametrize("kind", ["https", "file-url", "absolute-path", "unc"])
def test_linked_pictures_are_never_fetched(no_network, tmp_path, kind):
    # A real picture sits at the local targets: it must still not be read.
    local = tmp_path / "secret.png"
    local.write_bytes(PNG)
    target = {
        "https": "https://tracker.example/pixel.png",
        "file-url": local.as_uri(),
        "absolute-path": str(local),
        "unc": "\\\\attacker\\share\\pixel.png",
    }[kind]
    body = picture("rId7", attribute="link")
    rels = relationships(("rId7", IMAGE, target, "External"))
    for content, payload_type in (
        (as_base64(docx(document_xml(body), document_rels=rels)), "docx"),
        (flat_opc(document_xml(body), document_rels=rels), "ooxml"),
    ):
        result = convert_payload(content, payload_type)
        assert "<img" not in result.html
        assert any("external file access is disabled" in warning for warning in result.warnings)


def test_file_and_remote_template_references_are_not_followed(no_network):
    # A file: hyperlink loses its target; an attached remote template is never opened.
    body = '<w:p><w:hyperlink r:id="rId3"><w:r><w:t>local file</w:t></w:r></w:hyperlink></w:p>'
    rels = relationships(
        ("rId3", HYPERLINK, "file:///etc/passwd", "External"),
        ("rId4", f"{R_NS}/attachedTemplate", "https://evil.example/t.dotm", "External"),
    )
    result = convert_payload(as_base64(docx(document_xml(body), document_rels=rels)), "docx")
    assert result.html == '<p><a rel="noopener noreferrer">local file</a></p>'


def test_a_part_too_large_to_parse_in_the_memory_allowed_is_refused_before_parsing():
    # The parsed tree takes about 11 times a part's bytes: 1 MiB of XML under a 8 MiB cap.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("_rels/.rels", relationships(("rId1", OFFICE_DOCUMENT, "word/document.xml", None)))
        paragraphs = "<w:p><w:r><w:t>text</w:t></w:r></w:p>" * (MiB // 36)
        archive.writestr(
            "word/document.xml", f'<w:document xmlns:w="{W_NS}"><w:body>{paragraphs}</w:body></w:document>'
        )
    document = as_base64(buffer.getvalue())
    assert convert_payload(document, "docx").html.startswith("<p>text</p>")
    with pytest.raises(ConversionError) as refused:
        convert_payload(document, "docx", Limits(max_memory_bytes=8 * MiB))
    assert refused.value.reason == "document needs too much memory"
