"""What the converter accepts: sizes, counts and a safe, depth-limited XML parse."""

from __future__ import annotations

import xml.sax
import xml.sax.handler
from dataclasses import dataclass
from typing import IO
from xml.sax.expatreader import ExpatLocator

from defusedxml import DefusedXmlException
from defusedxml.expatreader import DefusedExpatParser

from .errors import ConversionError

MiB = 1024 * 1024

DTD_REFUSED = "document contains a DTD or entities, which are not allowed"
TOO_DEEP = "document is nested too deeply"
NOT_WELL_FORMED = "document is not well-formed XML"
TOO_MUCH_MEMORY = "document needs too much memory"

# Feeding the parser in chunks keeps memory flat while scanning big parts.
_CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True)
class Limits:
    """Upper bounds on one conversion; the defaults suit Word documents up to a few hundred pages."""

    max_input_bytes: int = 32 * MiB  # size of the payload as received (base64 or XML text)
    max_archive_bytes: int = 32 * MiB  # compressed .docx size
    max_uncompressed_bytes: int = 256 * MiB  # sum of entry sizes declared in the zip
    max_parts: int = 2000  # zip entries / pkg:part elements
    max_compression_ratio: int = 200  # per entry uncompressed/compressed (zip bombs)
    max_xml_depth: int = 512  # element nesting depth in any XML part
    max_images: int = 500  # pictures converted into the HTML
    max_image_bytes: int = 16 * MiB  # decoded size of one picture
    # Decoded bytes of all pictures put into the HTML, each time one is shown: a picture
    # shown 100 times costs 100 times its size.
    max_total_image_bytes: int = 32 * MiB
    max_html_bytes: int = 64 * MiB  # the converted (sanitised) HTML, in UTF-8 bytes
    max_html_depth: int = 512  # element nesting of an HTML payload, as a browser would build it
    max_html_elements: int = 500_000  # elements of an HTML payload, as a browser would build them
    timeout_seconds: float = 60.0  # hard timeout in the pool
    max_memory_bytes: int = 2048 * MiB  # address space of a pool worker (RLIMIT_AS); 0: no limit
    # What a pool worker keeps of sessions' last conversions, to convert their next versions
    # in proportion to the change (incremental.py); the least recent go first. 0: keep none.
    kept_conversion_bytes: int = 256 * MiB


DEFAULT_LIMITS = Limits()


def check_input_size(size: int, limits: Limits) -> None:
    """Refuse a payload bigger than max_input_bytes."""
    if size > limits.max_input_bytes:
        raise ConversionError(
            f"document too large ({_megabytes(size)} MB, the limit is "
            f"{_megabytes(limits.max_input_bytes)} MB)"
        )


def check_html_size(html: str, limits: Limits) -> int:
    """The UTF-8 size of converted HTML; ConversionError if it is over max_html_bytes."""
    # Characters first: more characters than the limit is more bytes, without encoding.
    size = len(html) if len(html) > limits.max_html_bytes else len(html.encode("utf-8"))
    if size > limits.max_html_bytes:
        raise ConversionError(html_too_large(limits))
    return size


def html_too_large(limits: Limits) -> str:
    """The reason given for HTML over max_html_bytes."""
    return f"the converted HTML is too large (the limit is {_megabytes(limits.max_html_bytes)} MB)"


def _megabytes(size: int) -> str:
    return f"{size / MiB:.1f}"


class DepthLimitedHandler(xml.sax.handler.ContentHandler):
    """SAX handler that refuses documents nested deeper than the limit.

    mammoth turns XML into its own tree recursively, so an absurdly deep part would end
    in a RecursionError (or worse) inside it; stopping it here is cheap and certain.
    """

    def __init__(self, max_depth: int):
        super().__init__()
        self.max_depth = max_depth
        self.depth = 0

    def startElement(self, name, attrs):
        self.depth += 1
        if self.depth > self.max_depth:
            raise ConversionError(TOO_DEEP)

    def endElement(self, name):
        self.depth -= 1


def parse_xml_within_limits(source: str | bytes | IO[bytes], handler: xml.sax.handler.ContentHandler) -> None:
    """Run handler over XML, raising ConversionError on DTDs, entities, external references, bad XML."""
    # Namespace processing stays off so that handlers see prefixes as written.
    parser = DefusedExpatParser(forbid_dtd=True, forbid_entities=True, forbid_external=True)
    parser.setContentHandler(handler)
    # feed() does not give the handler a locator as parse() does; it may need one.
    handler.setDocumentLocator(ExpatLocator(parser))
    try:
        if isinstance(source, str | bytes):
            parser.feed(source)
        else:
            while chunk := source.read(_CHUNK_BYTES):
                parser.feed(chunk)
        parser.close()
    except DefusedXmlException as error:
        raise ConversionError(DTD_REFUSED) from error
    except xml.sax.SAXParseException as error:
        raise ConversionError(NOT_WELL_FORMED) from error
