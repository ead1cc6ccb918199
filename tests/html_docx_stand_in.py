"""TEMPORARY stand-in for conversion/html_docx.py, built in its own branch: delete it once that is merged.

Only the Edit in Word tests use it (the `html_docx_converter` fixture), and only while the real
module is missing. It keeps the real module's interface: a .docx with one paragraph of text per
block of the HTML, the properties as custom document properties, and the first heading.
"""

import io
import re
import zipfile
from html import escape, unescape

from conversion import ConversionError

HtmlDocxError = ConversionError

_BLOCK = re.compile(r"<(h[1-6]|p|li|td|th)\b[^>]*>(.*?)</\1>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_HEADING = re.compile(r"<(h[1-6])\b[^>]*>(.*?)</\1>", re.IGNORECASE | re.DOTALL)

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    '<Override PartName="/docProps/custom.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.custom-properties+xml"/>'
    "</Types>"
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="word/document.xml"/>'
    '<Relationship Id="rId2" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/custom-properties" '
    'Target="docProps/custom.xml"/>'
    "</Relationships>"
)
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_PROPERTY_FORMAT = "{D5CDD505-2E9C-101B-9397-08002B2CF9AE}"


def _text(fragment):
    return " ".join(unescape(_TAG.sub(" ", fragment)).split())


def first_heading(html):
    match = _HEADING.search(html)
    return _text(match.group(2)) if match else None


def html_to_docx(html, properties, title=None, limits=None):
    if "<!-- cannot be made -->" in html:
        raise ConversionError("this HTML cannot be made into a Word document")
    paragraphs = "".join(
        f'<w:p><w:r><w:t xml:space="preserve">{escape(_text(match.group(2)))}</w:t></w:r></w:p>'
        for match in _BLOCK.finditer(html)
    )
    document = f'<w:document xmlns:w="{_W}"><w:body>{paragraphs}</w:body></w:document>'
    custom = "".join(
        f'<property fmtid="{_PROPERTY_FORMAT}" pid="{pid}" name="{escape(name)}">'
        f"<vt:lpwstr>{escape(value)}</vt:lpwstr></property>"
        for pid, (name, value) in enumerate(properties.items(), start=2)
    )
    custom = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties" '
        'xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
        f"{custom}</Properties>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("word/document.xml", document)
        archive.writestr("docProps/custom.xml", custom)
    return buffer.getvalue()
