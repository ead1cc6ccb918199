"""Runs of a Word paragraph: how a run looks (Format), its properties, bookmarks, the runs as XML."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from .sanitise import ID_PREFIX

TEXT_START = '<w:t xml:space="preserve">'
_BOOKMARK_LENGTH = 40  # Word's longest bookmark name
_BOOKMARK_INVALID = re.compile(r"\W")  # Word's names hold letters, digits and underscores
_CODE_FONT = '<w:rFonts w:ascii="Courier New" w:hAnsi="Courier New" w:cs="Courier New"/>'


@dataclass(frozen=True)
class Format:
    """How a run looks, as its enclosing inline elements say."""

    bold: bool = False
    italic: bool = False
    underline: bool = False
    strike: bool = False
    vertical: str = ""  # superscript or subscript
    code: bool = False
    highlight: bool = False
    right_to_left: bool = False
    link: str = ""  # relationship id of a hyperlink, or "#" and a bookmark name


def runs_xml(runs: list[tuple[str, str, str]]) -> str:
    """The runs, neighbours of equal properties joined, each link's runs in one w:hyperlink."""
    out: list[str] = []
    link = ""
    previous = None
    for properties, run_link, content in runs:
        if run_link != link:
            if previous is not None:
                out.append("</w:r>")
                previous = None
            if link:
                out.append("</w:hyperlink>")
            link = run_link
            if link.startswith("#"):
                out.append(f"<w:hyperlink w:anchor={quoteattr(link[1:])}>")
            elif link:
                out.append(f'<w:hyperlink r:id="{link}">')
        if content.startswith("<w:bookmark"):
            if previous is not None:
                out.append("</w:r>")
                previous = None
            out.append(content)
            continue
        if properties != previous:
            if previous is not None:
                out.append("</w:r>")
            out.append(f"<w:r>{properties}")
            previous = properties
        out.append(content)
    if previous is not None:
        out.append("</w:r>")
    if link:
        out.append("</w:hyperlink>")
    return "".join(out)


def run_properties(format: Format) -> str:
    # In the schema's order.
    parts = []
    if format.link:
        parts.append('<w:rStyle w:val="Hyperlink"/>')
    if format.code:
        parts.append(_CODE_FONT)
    if format.bold:
        parts.append("<w:b/><w:bCs/>")
    if format.italic:
        parts.append("<w:i/><w:iCs/>")
    if format.strike:
        parts.append("<w:strike/>")
    if format.highlight:
        parts.append('<w:highlight w:val="yellow"/>')
    if format.underline:
        parts.append('<w:u w:val="single"/>')
    if format.vertical:
        parts.append(f'<w:vertAlign w:val="{format.vertical}"/>')
    if format.right_to_left:
        parts.append("<w:rtl/>")
    return f"<w:rPr>{''.join(parts)}</w:rPr>" if parts else ""


def bookmark_name(identifier: str) -> str:
    """The Word bookmark of an HTML id (as the sanitiser prefixed it); links to it name the same."""
    name = identifier.removeprefix(ID_PREFIX)
    cleaned = _BOOKMARK_INVALID.sub("_", name)
    if cleaned != name or len(cleaned) > _BOOKMARK_LENGTH or not cleaned[:1].isalpha():
        # Still one name per id, within Word's rules.
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        cleaned = f"b{cleaned[: _BOOKMARK_LENGTH - 10]}_{digest}"
    return cleaned


def bookmark_xml(number: int, name: str) -> str:
    """A bookmark of no length, where a link within the document leads."""
    return f'<w:bookmarkStart w:id="{number}" w:name={quoteattr(name)}/><w:bookmarkEnd w:id="{number}"/>'
