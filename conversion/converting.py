"""One payload converted in this process: checked for type and size, then HTML or Word content."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .document_html import ConvertedDocument
from .errors import ConversionError
from .html_scan import scan_html
from .incremental import reconvert_word
from .limits import DEFAULT_LIMITS, Limits, check_html_size, check_input_size
from .payloads import as_text, convert_word
from .sanitise import sanitise_html

PAYLOAD_TYPES = ("ooxml", "docx", "html")  # what the converter takes: PROTOCOL.md's PayloadType values


@dataclass(frozen=True)
class Converted:
    """One successful conversion."""

    html: str  # sanitised
    warnings: list[str]  # mammoth's messages as text
    input_bytes: int
    html_bytes: int  # len(html.encode())
    seconds: float  # conversion wall time
    reused_blocks: int = 0  # top-level body blocks whose conversion came from the previous version
    # What the next version can reuse (kept where it was converted; never sent between processes).
    document: ConvertedDocument | None = field(default=None, repr=False, compare=False)


def convert_payload(
    content: str,
    payload_type: str = "ooxml",
    limits: Limits = DEFAULT_LIMITS,
    previous: ConvertedDocument | None = None,
) -> Converted:
    """Convert one update's Content to sanitised HTML in this process; ConversionError on bad input.

    ``previous``: the conversion of the same session's previous version, whose unchanged
    blocks are reused when only the body changed (incremental.py); the HTML is the same.
    """
    started = time.perf_counter()
    if not isinstance(content, str | bytes):
        raise ConversionError("content must be text")
    kind = payload_kind(payload_type)
    if kind not in PAYLOAD_TYPES:
        raise ConversionError("unsupported payload type")
    # Measured in UTF-8 bytes, as received on the wire.
    input_bytes = len(content) if isinstance(content, bytes) else _utf8_length(content, limits)
    check_input_size(input_bytes, limits)

    document = None
    if kind == "html":
        text = as_text(content)
        # Nesting and elements are checked before nh3 spends time and memory on them.
        scan_html(text, limits)
        html, warnings = sanitise_html(text), []
    else:
        if previous is not None:
            document = reconvert_word(previous, content, kind, limits)
        if document is None:
            document = convert_word(content, kind, limits)
        html, warnings = document.html, document.warnings
    return Converted(
        html=html,
        warnings=warnings,
        input_bytes=input_bytes,
        html_bytes=check_html_size(html, limits),
        seconds=time.perf_counter() - started,
        reused_blocks=document.reused_blocks if document is not None else 0,
        document=document,
    )


def payload_kind(payload_type: object) -> str:
    """A PayloadType as the converter reads it: trimmed, in lower case ("" if it is no text)."""
    return payload_type.strip().lower() if isinstance(payload_type, str) else ""


def _utf8_length(content: str, limits: Limits) -> int:
    # Too many characters is too many bytes: no need to encode a huge text to refuse it.
    if len(content) > limits.max_input_bytes:
        return len(content)
    try:
        return len(content.encode("utf-8"))
    except UnicodeEncodeError as error:
        raise ConversionError("content is not valid Unicode text") from error
