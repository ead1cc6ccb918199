"""Where a document's body blocks lie in the bytes it arrived as, for converting only what changed.

A ``DocumentSource`` is what a full conversion remembers of its input: the bytes the body
was read from (the Flat OPC text as UTF-8, or a .docx's ``word/document.xml``), where each
top-level child of ``w:body`` starts, where the body ends, and the namespaces in scope at
the body. The next version of the document is compared with it block by block, and a
changed block is parsed on its own inside a wrapper that gives it the same namespaces,
the same parent (``w:body``) and the same depth as in the whole part.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from mammoth.docx import office_xml
from mammoth.docx.xmlparser import XmlElement

from .xml_parser import BodyLayout, parse_xml, parsing_within

# The wrapper's own prefix: an NCName no writer of Word documents uses.
_WRAPPER_PREFIX = "_collab"


@dataclass(frozen=True)
class DocumentSource:
    data: bytes
    starts: tuple[int, ...]  # byte offset of each top-level body child's start tag
    body_end: int  # offset of the body's end tag
    namespaces: tuple[tuple[str, str], ...]  # (prefix, uri) in scope at the body; "" is the default
    body_namespace: str  # the WordprocessingML namespace the body is in
    body_depth: int  # the body element's depth in the bytes (1 is the root)

    def block_ranges(self) -> list[tuple[int, int]]:
        """Each block's (start, end): from its start tag to the next block's, the last to the body's end."""
        ends = (*self.starts[1:], self.body_end) if self.starts else ()
        return list(zip(self.starts, ends, strict=True))

    def head(self) -> bytes:
        """Everything before the first block (or before the body's end when it is empty)."""
        return self.data[: self.starts[0] if self.starts else self.body_end]

    def tail(self) -> bytes:
        return self.data[self.body_end :]

    def wrapper(self) -> tuple[bytes, bytes]:
        """The start and end of an XML document whose body holds blocks in the scope they had."""
        declarations = "".join(
            f" xmlns:{prefix}={quoteattr(uri)}" if prefix else f" xmlns={quoteattr(uri)}"
            for prefix, uri in self.namespaces
            if prefix != _WRAPPER_PREFIX
        )
        prefix = _WRAPPER_PREFIX
        own = f"xmlns:{prefix}={quoteattr(self.body_namespace)}"
        start = f"<{prefix}:document {own}{declarations}><{prefix}:body>"
        end = f"</{prefix}:body></{prefix}:document>"
        return start.encode(), end.encode()

    def parse(self, data: bytes, start: int, end: int, max_depth: int) -> tuple[list, list[tuple[int, int]]]:
        """The top-level elements of data[start:end] parsed as in the body, with their byte ranges.

        Nesting is limited as it would be in the whole document (its body at body_depth).
        """
        before, after = self.wrapper()
        wrapped = before + data[start:end] + after
        offset = start - len(before)
        layout = BodyLayout()
        with parsing_within(max_depth - (self.body_depth - 2)):
            root = parse_xml(io.BytesIO(wrapped), office_xml._namespaces, layout=layout)
        elements = [child for child in root.find_child("w:body").children if isinstance(child, XmlElement)]
        starts = [position + offset for position in layout.starts]
        return elements, list(zip(starts, [*starts[1:], end] if starts else [], strict=True))
