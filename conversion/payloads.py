"""A Word payload's bytes: a .docx decoded from base64, or a Flat OPC package's text."""

from __future__ import annotations

import base64
import binascii
import re

from .archive import check_docx_archive
from .document_html import ConvertedDocument
from .errors import ConversionError
from .file_types import (
    DOCX_AS_OOXML,
    DOCX_BASE64_AS_OOXML,
    DOCX_BASE64_START,
    PLAIN_TEXT,
    RAW_DOCX,
    ZIP_MAGIC,
    describe,
    describe_text,
)
from .flat_opc import read_flat_opc, without_bom
from .limits import Limits
from .mammoth_html import convert_docx

_DATA_URL_PREFIX = re.compile(r"\s*data:[^,]*;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
_HEAD_CHARS = 64
_ZIP_START = ZIP_MAGIC.decode("latin-1")


def convert_word(content: str | bytes, kind: str, limits: Limits) -> ConvertedDocument:
    """A Word payload ("docx" or "ooxml", checked for size) converted, with what a next version can reuse."""
    if kind == "docx":
        docx = decode_docx(content)
        check_docx_archive(docx, limits)
        document = convert_docx(docx, limits)
    else:
        if not content.strip():
            raise ConversionError("empty document")
        text = without_bom(content)
        check_flat_opc_start(text)
        docx, layouts = read_flat_opc(text, limits)
        check_docx_archive(docx, limits)
        document = convert_docx(docx, limits, layouts, flat_opc_bytes(text))
    document.kind, document.limits = kind, limits
    return document


def as_text(content: str | bytes) -> str:
    if isinstance(content, str):
        return content
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConversionError("content is not valid UTF-8 text") from error


def check_flat_opc_start(text: str | bytes) -> None:
    """Refuse a Flat OPC payload that is no XML at all, naming what it is."""
    head = text[:_HEAD_CHARS].lstrip()
    if isinstance(head, bytes):
        head = head.decode("latin-1")
    if head.startswith(("<", "\ufeff<", "\xef\xbb\xbf<")):
        return
    if head.startswith(_ZIP_START):
        raise ConversionError(DOCX_AS_OOXML)
    if head.startswith(DOCX_BASE64_START):
        raise ConversionError(DOCX_BASE64_AS_OOXML)
    reason = describe_text(text) if isinstance(text, str) else describe(text)
    if reason == PLAIN_TEXT:
        reason = f"{PLAIN_TEXT} (expected a Flat OPC package or a w:document)"
    if reason:
        raise ConversionError(reason)


def decode_docx(content: str | bytes) -> bytes:
    # The REST API may hand over the file itself rather than its base64.
    if isinstance(content, bytes) and content.startswith(b"PK"):
        return content
    try:
        text = as_text(content)
    except ConversionError:
        raise ConversionError(_not_base64(content)) from None
    prefix = _DATA_URL_PREFIX.match(text)
    if prefix:
        text = text[prefix.end() :]
    text = _WHITESPACE.sub("", text)
    if not text:
        raise ConversionError("empty document")
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")  # the URL-safe alphabet
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConversionError(_not_base64(content)) from None


def _not_base64(content: str | bytes) -> str:
    # Whatever was sent instead of base64 (a PDF, an image, a README), named.
    if isinstance(content, str) and content[:_HEAD_CHARS].lstrip().startswith(_ZIP_START):
        return RAW_DOCX
    reason = describe_text(content) if isinstance(content, str) else describe(content)
    if reason == PLAIN_TEXT:
        return f"{PLAIN_TEXT} (expected a .docx file or its base64)"
    return reason or "content is not valid base64"


def flat_opc_bytes(content: str | bytes) -> bytes:
    """A Flat OPC payload as the bytes its block offsets count in (text as UTF-8, no BOM)."""
    text = without_bom(content)
    return text.encode("utf-8") if isinstance(text, str) else text
