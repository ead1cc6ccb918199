"""Word content (Flat OPC, .docx or HTML) in, sanitised HTML out. No Django in here."""

from __future__ import annotations

import base64
import binascii
import re
import time
from dataclasses import dataclass

from .archive import check_docx_archive
from .errors import ConversionError
from .flat_opc import flat_opc_to_docx
from .html_scan import scan_html
from .limits import DEFAULT_LIMITS, Limits, check_html_size, check_input_size, html_too_large
from .mammoth_html import docx_to_html
from .pool import ConversionPool
from .sanitise import sanitise_html

__all__ = [
    "ConversionError",
    "ConversionPool",
    "Converted",
    "Limits",
    "PAYLOAD_TYPES",
    "convert_payload",
    "sanitise_html",
]

PAYLOAD_TYPES = ("ooxml", "docx", "html")  # what the converter takes: PROTOCOL.md's PayloadType values
_DATA_URL_PREFIX = re.compile(r"\s*data:[^,]*;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Converted:
    """One successful conversion."""

    html: str  # sanitised
    warnings: list[str]  # mammoth's messages as text
    input_bytes: int
    html_bytes: int  # len(html.encode())
    seconds: float  # conversion wall time


def convert_payload(content: str, payload_type: str = "ooxml", limits: Limits = DEFAULT_LIMITS) -> Converted:
    """Convert one update's Content to sanitised HTML in this process; ConversionError on bad input."""
    started = time.perf_counter()
    if not isinstance(content, str | bytes):
        raise ConversionError("content must be text")
    kind = payload_type.strip().lower() if isinstance(payload_type, str) else ""
    if kind not in PAYLOAD_TYPES:
        raise ConversionError("unsupported payload type")
    # Measured in UTF-8 bytes, as received on the wire.
    input_bytes = len(content) if isinstance(content, bytes) else _utf8_length(content, limits)
    check_input_size(input_bytes, limits)

    if kind == "html":
        text = _as_text(content)
        # Nesting and elements are checked before nh3 spends time and memory on them.
        scan_html(text, limits)
        html, warnings = sanitise_html(text), []
    else:
        if kind == "docx":
            docx = _decode_docx(content)
        else:
            if not content.strip():
                raise ConversionError("empty document")
            docx = flat_opc_to_docx(content, limits)
        check_docx_archive(docx, limits)
        raw_html, warnings = docx_to_html(docx, limits)
        # Sanitising keeps mammoth's HTML about as large: refused here, nh3 never reads it.
        if len(raw_html) > limits.max_html_bytes:
            raise ConversionError(html_too_large(limits))
        html = sanitise_html(raw_html)
    return Converted(
        html=html,
        warnings=warnings,
        input_bytes=input_bytes,
        html_bytes=check_html_size(html, limits),
        seconds=time.perf_counter() - started,
    )


def _utf8_length(content: str, limits: Limits) -> int:
    # Too many characters is too many bytes: no need to encode a huge text to refuse it.
    if len(content) > limits.max_input_bytes:
        return len(content)
    try:
        return len(content.encode("utf-8"))
    except UnicodeEncodeError as error:
        raise ConversionError("content is not valid Unicode text") from error


def _as_text(content: str | bytes) -> str:
    if isinstance(content, str):
        return content
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConversionError("content is not valid UTF-8 text") from error


def _decode_docx(content: str | bytes) -> bytes:
    # The REST API may hand over the file itself rather than its base64.
    if isinstance(content, bytes) and content.startswith(b"PK"):
        return content
    text = _as_text(content)
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
    except (binascii.Error, ValueError) as error:
        raise ConversionError("content is not valid base64") from error
