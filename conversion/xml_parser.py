"""mammoth's XML parser rebuilt on expat alone: the same trees as minidom gives it, faster and safer.

mammoth (pinned in requirements.txt) parses every XML part it reads through
``mammoth.docx.office_xml.parse_xml``, which builds a minidom DOM and then copies it into
its own ``XmlElement``/``XmlText`` tree. Most of a conversion's time went there. This
parser drives expat directly and builds the same tree in one pass: elements and
attributes named as mammoth names them, text merged exactly where minidom merges it
(comments, processing instructions and non-empty CDATA sections split text; CDATA is
dropped, as mammoth drops minidom's CDATA nodes). It also refuses DTDs and limits
nesting depth, so every part mammoth reads is checked while it is read.
tests/test_conversion_parser.py checks that both parsers give equal trees on the corpus.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.metadata
import xml.parsers.expat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

from mammoth.docx import office_xml, xmlparser
from mammoth.docx.xmlparser import XmlElement, XmlText

from .errors import ConversionError
from .limits import DEFAULT_LIMITS, DTD_REFUSED, TOO_DEEP

# The mammoth release this parser reproduces; an upgrade must be checked against it.
MAMMOTH_VERSION = "1.13.0"
original_parse_xml = xmlparser.parse_xml
_max_depth: contextvars.ContextVar[int] = contextvars.ContextVar(
    "max_xml_depth", default=DEFAULT_LIMITS.max_xml_depth
)
_BUFFER_BYTES = 64 * 1024
_HANDLERS = (
    "StartDoctypeDeclHandler",
    "EntityDeclHandler",
    "StartElementHandler",
    "EndElementHandler",
    "CharacterDataHandler",
    "CommentHandler",
    "ProcessingInstructionHandler",
    "StartNamespaceDeclHandler",
    "StartCdataSectionHandler",
    "EndCdataSectionHandler",
)
# Rewrites of finished elements, by the name mammoth gives them ("w:p", "{uri}oMath"):
# conversion features register here what mammoth's reader should see instead. A rewrite
# gets the finished element and the name of its parent, and returns the element (or a
# replacement); it must depend on nothing but that element's subtree and the parent's name,
# so that a part and any run of its top-level blocks parse to the same trees.
ELEMENT_REWRITES: dict[str, Callable[[XmlElement, str], XmlElement]] = {}


def parse_xml(fileobj: IO[bytes], namespace_mapping=None, *, layout: BodyLayout | None = None) -> XmlElement:
    """Parse an XML part into mammoth's tree, as mammoth.docx.xmlparser.parse_xml does.

    With ``layout``, also note where the body's top-level blocks start (a main part's).
    """
    if namespace_mapping is None:
        prefixes: dict[str, str] = {}
    else:
        prefixes = {uri: prefix for prefix, uri in namespace_mapping}  # later pairs win, as in mammoth
    max_depth = _max_depth.get()
    names: dict[str, str] = {}

    def convert_name(expat_name: str) -> str:
        uri, separator, local = expat_name.rpartition(" ")
        if not separator:
            name = expat_name
        else:
            prefix = prefixes.get(uri)
            name = f"{{{uri}}}{local}" if prefix is None else f"{prefix}:{local}"
        names[expat_name] = name
        return name

    rewrites = ELEMENT_REWRITES
    root = XmlElement("", {}, [])
    stack: list[list] = [root.children]
    names_open: list[str] = [""]
    children = root.children
    text: list[str] = []
    in_cdata = False

    def flush_text() -> None:
        children.append(XmlText("".join(text)))
        text.clear()

    def start_element(name, attributes):
        nonlocal children
        if text:
            flush_text()
        if len(stack) > max_depth:
            raise ConversionError(TOO_DEEP)
        converted = (
            {(names.get(key) or convert_name(key)): value for key, value in attributes.items()}
            if attributes
            else {}
        )
        element = XmlElement(names.get(name) or convert_name(name), converted, [])
        if layout is not None and len(stack) == 3 and names_open[-1] == "w:body" and layout.body_end < 0:
            layout.starts.append(parser.CurrentByteIndex)
        children.append(element)
        children = element.children
        stack.append(children)
        names_open.append(element.name)

    def end_element(name):
        nonlocal children
        if text:
            flush_text()
        stack.pop()
        children = stack[-1]
        finished = names_open.pop()
        if layout is not None and finished == "w:body" and len(stack) == 2 and layout.body_end < 0:
            layout.body_end = parser.CurrentByteIndex
            layout.body_namespace = name.rpartition(" ")[0]
        if finished in rewrites:
            children[-1] = rewrites[finished](children[-1], names_open[-1])

    def character_data(data):
        if in_cdata:
            # minidom keeps CDATA as its own node, which mammoth drops; it still splits text.
            if text:
                flush_text()
        else:
            text.append(data)

    def split_text(*args):
        if text:
            flush_text()

    def start_cdata():
        nonlocal in_cdata
        in_cdata = True

    def end_cdata():
        nonlocal in_cdata
        in_cdata = False

    def refuse_dtd(*args):
        raise ConversionError(DTD_REFUSED)

    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True
    parser.buffer_size = _BUFFER_BYTES
    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_dtd
    parser.StartElementHandler = start_element
    parser.EndElementHandler = end_element
    parser.CharacterDataHandler = character_data
    parser.CommentHandler = split_text
    parser.ProcessingInstructionHandler = split_text
    if layout is not None:

        def declare(prefix, uri):
            if len(stack) <= 2:  # on the document's or the body's start tag
                layout.namespaces.append((prefix or "", uri))

        parser.StartNamespaceDeclHandler = declare
    parser.StartCdataSectionHandler = start_cdata
    parser.EndCdataSectionHandler = end_cdata
    try:
        parser.ParseFile(fileobj)
    finally:
        # The handlers refer to the parser (its offsets), which refers to them: unless this
        # cycle is broken, the tree waits for the cyclic collector, paused during a
        # conversion, and a document that ran out of memory keeps it all until then.
        for handler in _HANDLERS:
            setattr(parser, handler, None)
    return root.children[0]


@dataclass
class BodyLayout:
    """Where a main part's body blocks start, filled in by parse_xml."""

    starts: list[int] = field(default_factory=list)
    body_end: int = -1
    body_namespace: str = ""
    namespaces: list[tuple[str, str]] = field(default_factory=list)
    body_depth: int = 2


@contextlib.contextmanager
def parsing_within(max_depth: int) -> Iterator[None]:
    """Within this block, XML parts nested deeper than max_depth are refused."""
    token = _max_depth.set(max_depth)
    try:
        yield
    finally:
        _max_depth.reset(token)


def install() -> None:
    """Make mammoth parse with parse_xml; refuses a mammoth release it was not checked against."""
    if importlib.metadata.version("mammoth") != MAMMOTH_VERSION:
        raise RuntimeError(f"conversion.xml_parser reproduces mammoth {MAMMOTH_VERSION}")
    if office_xml.parse_xml is not original_parse_xml and office_xml.parse_xml is not parse_xml:
        raise RuntimeError("mammoth.docx.office_xml.parse_xml is not mammoth's own parser")
    office_xml.parse_xml = parse_xml
