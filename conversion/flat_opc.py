"""Flat OPC (what Word's Body.getOoxml() returns) unpacked into an in-memory .docx."""

from __future__ import annotations

import base64
import binascii
import io
import re
import zipfile
from xml.sax.saxutils import escape, quoteattr

from .errors import ConversionError
from .limits import DepthLimitedHandler, Limits, parse_xml_within_limits
from .xml_parser import BodyLayout

PACKAGE_NS = "http://schemas.microsoft.com/office/2006/xmlPackage"
WORDPROCESSINGML_NAMESPACES = frozenset(
    {
        "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
        "http://purl.oclc.org/ooxml/wordprocessingml/main",  # ISO 29500 Strict
    }
)
MAIN_DOCUMENT_CONTENT_TYPE = (
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
)
# Lower case: content types compare case-insensitively.
MAIN_DOCUMENT_CONTENT_TYPES = frozenset(
    {
        MAIN_DOCUMENT_CONTENT_TYPE,
        "application/vnd.ms-word.document.macroenabled.main+xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml",
        "application/vnd.ms-word.template.macroenabledtemplate.main+xml",
    }
)
DEFAULT_DOCUMENT_PART = "/word/document.xml"
_RELATIONSHIPS_CONTENT_TYPE = "application/vnd.openxmlformats-package.relationships+xml"
_OFFICE_DOCUMENT_RELATIONSHIP = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
)
_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
NOT_WORD_XML = "not a Word document (expected a Flat OPC package or a w:document)"
_DAMAGED = "damaged Flat OPC package"
_XML_NAMESPACE = "http://www.w3.org/XML/1998/namespace"
# pkg:package, pkg:part, pkg:xmlData or pkg:binaryData: the only levels whose names matter here.
_PACKAGE_LEVELS = 3
# Part names as OPC allows them: absolute, no empty, "." or ".." segments, no backslashes.
_PART_NAME = re.compile(r"(/[^/\\\x00-\x1f]+)+")
# XML 1.0 whitespace is all a base64 body may carry besides the alphabet.
_XML_WHITESPACE = re.compile(r"[ \t\r\n]+")


def flat_opc_to_docx(xml_text: str | bytes, limits: Limits) -> bytes:
    """Repackage a Flat OPC package (or a bare w:document) as .docx bytes."""
    return read_flat_opc(without_bom(xml_text), limits)[0]


def without_bom(xml_text: str | bytes) -> str | bytes:
    if isinstance(xml_text, str) and xml_text.startswith("\ufeff"):
        return xml_text[1:]
    return xml_text


def read_flat_opc(xml_text: str | bytes, limits: Limits) -> tuple[bytes, dict[str, BodyLayout]]:
    """The .docx bytes, and where each part's body blocks lie in xml_text (as UTF-8 if it is text).

    The layouts are keyed by part name without the leading slash, as in the .docx.
    """
    reader = _FlatOpcReader(limits)
    parse_xml_within_limits(xml_text, reader)
    if reader.root is None:
        raise ConversionError(NOT_WORD_XML)
    return _zip_parts(reader.parts), reader.layouts


class _FlatOpcReader(DepthLimitedHandler):
    """Collects the parts of a Flat OPC package in one streaming pass.

    The parser runs without namespace processing so that each xmlData child can be
    written back with the prefixes it was written with (mc:Ignorable and friends name
    prefixes in attribute values); namespaces are resolved here only to recognise the
    pkg: elements and the root.
    """

    def __init__(self, limits: Limits):
        super().__init__(limits.max_xml_depth)
        self.limits = limits
        self.root: str | None = None  # "package" or "document"
        self.parts: dict[str, tuple[str | None, bytes]] = {}
        self._seen_names: set[str] = set()
        self._total_bytes = 0
        # The namespace declarations of each open element; prefixes are resolved through
        # them only for the few pkg: levels, so no element copies its parent's scope.
        self._declarations: list[dict[str, str]] = [{}]
        self._part: tuple[str, str | None] | None = None
        self._part_done = False
        self._binary: list[str] | None = None
        self._in_xml_data = False
        self._out: list[str] | None = None
        self._out_root_depth = 0
        self.layouts: dict[str, BodyLayout] = {}
        self._layout: BodyLayout | None = None  # of the body being read

    def startElement(self, name, attrs):
        super().startElement(name, attrs)
        declarations = {
            key[6:]: value for key, value in attrs.items() if key == "xmlns" or key[:6] == "xmlns:"
        }
        self._declarations.append(declarations)

        if self._out is not None:
            self._write_start(name, attrs)
            if self.depth == self._out_root_depth + 2 and self._layout is not None:
                self._layout.starts.append(self._byte_index())
            elif self.depth == self._out_root_depth + 1:
                self._start_body(name)
            return

        element = self._resolve(name) if self.depth <= _PACKAGE_LEVELS else None
        if self.depth == 1:
            self._start_root(name, attrs, element)
        elif self.root != "package":
            return
        elif self.depth == 2 and element == (PACKAGE_NS, "part"):
            self._start_part(attrs)
        elif self.depth == 3 and self._part is not None:
            if element == (PACKAGE_NS, "xmlData"):
                self._in_xml_data = True
            elif element == (PACKAGE_NS, "binaryData"):
                self._binary = []
        elif self.depth == 4 and self._in_xml_data:
            if self._part_done:
                raise ConversionError(_DAMAGED)
            self._start_output(name, attrs)

    def endElement(self, name):
        if self._out is not None:
            self._out.append(f"</{name}>")
            if self.depth == self._out_root_depth + 1 and self._layout is not None:
                self._layout.body_end = self._byte_index()
                self.layouts[self._part[0][1:]] = self._layout
                self._layout = None
            if self.depth == self._out_root_depth:
                self._finish_xml_part()
        elif self.root == "package" and self.depth <= _PACKAGE_LEVELS:
            element = self._resolve(name)
            if self.depth == 3 and element == (PACKAGE_NS, "xmlData"):
                self._in_xml_data = False
            elif self.depth == 3 and element == (PACKAGE_NS, "binaryData"):
                self._finish_binary_part()
            elif self.depth == 2 and element == (PACKAGE_NS, "part"):
                if not self._part_done:
                    raise ConversionError(f"{_DAMAGED}: a part has no content")
                self._part = None
        self._declarations.pop()
        super().endElement(name)

    def characters(self, content):
        if self._out is not None:
            # A carriage return survives parsing only as a character reference.
            self._out.append(escape(content, {"\r": "&#13;"}))
        elif self._binary is not None:
            self._binary.append(content)

    def _byte_index(self) -> int:
        # Where the current event starts in the bytes parsed (text is parsed as UTF-8).
        return self._locator._ref._parser.CurrentByteIndex

    def _start_body(self, name: str) -> None:
        """Start noting where the blocks lie, if this is a main part's w:body."""
        namespace, local = self._resolve(name)
        if (
            local != "body"
            or namespace not in WORDPROCESSINGML_NAMESPACES
            or self._part[0][1:] in self.layouts
        ):
            return  # Word reads a document's first body only
        in_scope: dict[str, str] = {}
        for declarations in self._declarations:
            in_scope.update(declarations)
        self._layout = BodyLayout(
            body_namespace=namespace, namespaces=list(in_scope.items()), body_depth=self.depth
        )

    def _resolve(self, qualified_name: str) -> tuple[str | None, str]:
        prefix, _, local = qualified_name.rpartition(":")
        return self._namespace(prefix), local

    def _namespace(self, prefix: str) -> str | None:
        if prefix == "xml":
            return _XML_NAMESPACE
        for declarations in reversed(self._declarations):
            if prefix in declarations:
                return declarations[prefix]
        return None

    def _attribute(self, attrs, namespace: str, local: str) -> str | None:
        for key, value in attrs.items():
            prefix, _, name = key.rpartition(":")
            # Unprefixed attributes are in no namespace, but Flat OPC writers do use them.
            if name == local and (not prefix or self._namespace(prefix) == namespace):
                return value
        return None

    def _start_root(self, name, attrs, element) -> None:
        if element == (PACKAGE_NS, "package"):
            self.root = "package"
        elif element[1] == "document" and element[0] in WORDPROCESSINGML_NAMESPACES:
            # A bare WordprocessingML document becomes the package's only part.
            self.root = "document"
            self._part = (DEFAULT_DOCUMENT_PART, MAIN_DOCUMENT_CONTENT_TYPE)
            self._start_output(name, attrs)
        else:
            raise ConversionError(NOT_WORD_XML)

    def _start_part(self, attrs) -> None:
        if len(self._seen_names) >= self.limits.max_parts:
            raise ConversionError(f"too many parts (the limit is {self.limits.max_parts})")
        part_name = self._attribute(attrs, PACKAGE_NS, "name")
        if part_name is None or not _PART_NAME.fullmatch(part_name):
            raise ConversionError(f"{_DAMAGED}: a part has a missing or invalid name")
        if any(segment in {".", ".."} for segment in part_name.split("/")):
            raise ConversionError(f"{_DAMAGED}: a part has a missing or invalid name")
        # OPC part names compare case-insensitively; two spellings would be one zip entry.
        if part_name.lower() in self._seen_names:
            raise ConversionError(f"{_DAMAGED}: a part name is used twice")
        self._seen_names.add(part_name.lower())
        self._part = (part_name, self._attribute(attrs, PACKAGE_NS, "contentType"))
        self._part_done = False

    def _start_output(self, name, attrs) -> None:
        self._out = [_XML_DECLARATION]
        self._out_root_depth = self.depth
        # Namespaces declared on pkg:package or pkg:part must travel with the part.
        inherited: dict[str, str] = {}
        for declarations in self._declarations[:-1]:
            inherited.update(declarations)
        extra = {
            ("xmlns" if not prefix else f"xmlns:{prefix}"): uri
            for prefix, uri in inherited.items()
            if prefix not in self._declarations[-1]
        }
        self._write_start(name, attrs, extra)

    def _write_start(self, name, attrs, extra: dict[str, str] | None = None) -> None:
        out = self._out
        out.append(f"<{name}")
        for key, value in (extra or {}).items():
            out.append(f" {key}={_attribute_value(value)}")
        for key, value in attrs.items():
            out.append(f" {key}={_attribute_value(value)}")
        out.append(">")

    def _finish_xml_part(self) -> None:
        data = "".join(self._out).encode("utf-8")
        self._out = None
        self._store(data)

    def _finish_binary_part(self) -> None:
        text = _XML_WHITESPACE.sub("", "".join(self._binary))
        self._binary = None
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as error:
            raise ConversionError(f"{_DAMAGED}: a binary part is not valid base64") from error
        if self._part_done:
            raise ConversionError(_DAMAGED)
        self._store(data)

    def _store(self, data: bytes) -> None:
        self._total_bytes += len(data)
        if self._total_bytes > self.limits.max_uncompressed_bytes:
            raise ConversionError("document too large when unpacked")
        part_name, content_type = self._part
        self.parts[part_name] = (content_type, data)
        self._part_done = True


def _attribute_value(value: str) -> str:
    # Tabs and line breaks must stay character references or a parser turns them into spaces.
    return quoteattr(value, {"\t": "&#9;", "\n": "&#10;", "\r": "&#13;"})


def _zip_parts(parts: dict[str, tuple[str | None, bytes]]) -> bytes:
    # [Content_Types].xml is written from the parts' own content types below.
    parts = {name: part for name, part in parts.items() if name.lower() != "/[content_types].xml"}
    if not any(name.lower() == "/_rels/.rels" for name in parts):
        main_part = _find_main_part(parts)
        if main_part is None:
            raise ConversionError("not a Word document (the package has no main document part)")
        parts["/_rels/.rels"] = (_RELATIONSHIPS_CONTENT_TYPE, _package_relationships(main_part))
    buffer = io.BytesIO()
    # Stored, not deflated: the zip lives for one conversion and compressing costs time.
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("[Content_Types].xml", _content_types(parts))
        for name, (_, data) in parts.items():
            archive.writestr(name[1:], data)
    return buffer.getvalue()


def _find_main_part(parts: dict[str, tuple[str | None, bytes]]) -> str | None:
    for name, (content_type, _) in parts.items():
        if content_type and content_type.strip().lower() in MAIN_DOCUMENT_CONTENT_TYPES:
            return name
    for name in parts:
        if name.lower() == DEFAULT_DOCUMENT_PART:
            return name
    return None


def _package_relationships(main_part: str) -> bytes:
    return (
        _XML_DECLARATION
        + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + f'<Relationship Id="rId1" Type="{_OFFICE_DOCUMENT_RELATIONSHIP}"'
        + f" Target={_attribute_value(main_part[1:])}/>"
        + "</Relationships>"
    ).encode("utf-8")


def _content_types(parts: dict[str, tuple[str | None, bytes]]) -> bytes:
    entries = [
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>',
        '<Default Extension="xml" ContentType="application/xml"/>',
    ]
    for name, (content_type, _) in parts.items():
        if content_type:
            entries.append(
                f"<Override PartName={_attribute_value(name)} ContentType={_attribute_value(content_type)}/>"
            )
    return (
        _XML_DECLARATION
        + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        + "".join(entries)
        + "</Types>"
    ).encode("utf-8")
