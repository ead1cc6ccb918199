"""HTML to Word: a .docx made of a web editor's HTML, carrying custom document properties.

The HTML is checked (html_scan) and sanitised first, so what reaches the writer is
well-formed and plain: no script, no event handler, no link but http, https and mailto, no
picture but the ones inside the HTML as ``data:`` URIs. Nothing here opens a URL or a
file. The writer (wordml_body) is ours, measured against pandoc and htmldocx in
docs/FIDELITY.md ("HTML to Word"); the package around it is docx_package.
"""

from __future__ import annotations

import re

from .docx_package import check_properties, package
from .errors import ConversionError
from .html_scan import scan_html
from .limits import DEFAULT_LIMITS, TOO_MUCH_MEMORY, Limits, check_input_size
from .sanitise import sanitise_html_for_word
from .sanitised_html import END, START, TEXT, tokens
from .wordml_body import write_body

NOT_TEXT = "the HTML must be text"
NOT_UNICODE = "the HTML is not valid Unicode text"
NO_DOCUMENT = "no Word document could be made of the HTML"
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_WHITE_SPACE = re.compile(r"\s+")


def html_to_docx(
    html: str, properties: dict[str, str], title: str | None = None, limits: Limits = DEFAULT_LIMITS
) -> bytes:
    """A .docx of the HTML (a document or a fragment) with these custom properties and title.

    Raises ConversionError for HTML over the limits (size, nesting, elements, pictures,
    table cells), ValueError for properties Word cannot keep.
    """
    check_properties(properties)
    if title is not None and not isinstance(title, str):
        raise ValueError("the title must be text")
    clean = _sanitised(html, limits)
    try:
        return package(write_body(clean, limits), properties, title)
    except ConversionError:
        raise
    except MemoryError as error:
        raise ConversionError(TOO_MUCH_MEMORY) from error
    except Exception as error:
        # Whatever went wrong, the client gets no internals.
        raise ConversionError(NO_DOCUMENT) from error


def first_heading(html: str, limits: Limits = DEFAULT_LIMITS) -> str | None:
    """The text of the HTML's first h1-h6 that has any, white space collapsed; None if none has.

    Read from the sanitised HTML, as the document shows it; ConversionError as html_to_docx.
    """
    depth = 0  # open headings: a heading in a heading is part of it
    text: list[str] = []
    for kind, name, value in tokens(_sanitised(html, limits)):
        if kind == TEXT:
            if depth:
                text.append(value)
        elif name in _HEADINGS:
            depth += 1 if kind == START else -1 if depth and kind == END else 0
            if kind == END and not depth:
                heading = _WHITE_SPACE.sub(" ", "".join(text)).strip()
                if heading:
                    return heading
                text.clear()
    return None


def _sanitised(html: str, limits: Limits) -> str:
    if not isinstance(html, str):
        raise ConversionError(NOT_TEXT)
    # More characters than the limit is more bytes: no need to encode a huge text to refuse it.
    if len(html) > limits.max_input_bytes:
        check_input_size(len(html), limits)
    try:
        check_input_size(len(html.encode("utf-8")), limits)
    except UnicodeEncodeError as error:
        raise ConversionError(NOT_UNICODE) from error
    # Nesting and elements are checked before nh3 spends time and memory on them.
    scan_html(html, limits)
    return sanitise_html_for_word(html)
