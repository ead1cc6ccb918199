"""Right-to-left text: Word's w:bidi paragraphs, w:bidiVisual tables and w:rtl runs as HTML ``dir``.

mammoth's document model has no direction, so it travels in what mammoth keeps:

- Rewrites of each finished ``w:p``, ``w:r`` and ``w:tbl`` (``xml_parser.ELEMENT_REWRITES``)
  append a marker after a NUL to the paragraph's ``w:jc`` value (mammoth's ``alignment``)
  and to the run's ``w:rFonts/@w:ascii`` (mammoth's ``font``, which it never writes out),
  and give a right-to-left table a last row whose only paragraph is marked. XML cannot
  hold a NUL, so no document can write a marker of its own.
- The document transform (``word_features.alignment_transform``) reads the markers back
  and removes them; a paragraph without a direct ``w:bidi`` takes its style's (along
  ``w:basedOn``, then the document defaults: ``StyleDirections``). It names right-to-left
  paragraphs, tables and groups of runs for the style map; a group is the runs of a
  left-to-right paragraph marked ``w:rtl`` or written in a right-to-left script only.
- The rules of ``STYLE_MAP_RULES`` write ``dir="rtl"`` on the p, h1-h6, li (and its ul/ol),
  table and span. mammoth merges adjacent list items into one list only when its
  attributes are equal, so a list that changes direction starts a new ul/ol.

Word reads ``w:jc`` "left" and "right" as the start and end of the paragraph's direction:
a right-to-left paragraph aligned "right" shows at the left (``align-left``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from mammoth import documents
from mammoth.docx.xmlparser import XmlElement

from . import xml_parser

# collab's own style names (here and in word_features) start with this; a document's
# own style of such a name is renamed, so that it never reaches collab's rules.
OWN_STYLE_PREFIX = "collab-"
# Tags the rules below write dir on: what the sanitiser lets keep it.
DIRECTED_TAGS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "table", "span"})
# The visual alignment of a right-to-left paragraph for each w:jc value; "left" and
# "start" are its natural alignment, to the right, and need no class.
RIGHT_TO_LEFT_ALIGNMENTS = {
    "center": "center",
    "right": "left",
    "end": "left",
    "both": "justify",
    "distribute": "justify",
}
_MARK = "\x00"  # never in XML (not even as a character reference)
_RTL, _LTR, _TABLE = "rtl", "ltr", "table"
_OFF = frozenset({"0", "false", "off"})
_PARAGRAPH_STYLE = OWN_STYLE_PREFIX + "rtl:{kind}:{alignment}"
_LIST_STYLE = OWN_STYLE_PREFIX + "rtl:{list}:{level}"
_TABLE_STYLE = OWN_STYLE_PREFIX + "rtl:table"
_RUN_STYLE = OWN_STYLE_PREFIX + "rtl:span"
_LIST_LEVELS = 5  # mammoth's default style map makes lists of levels 1 to 5
_DIRECTED = "[dir='rtl']"

# Characters of the right-to-left scripts (Hebrew, Arabic, Syriac, Thaana, NKo, Samaritan,
# Mandaic and their presentation forms, the RIGHT-TO-LEFT MARK, and the historic scripts
# of the planes above); a text holding one is looked at letter by letter.
_MAYBE_RIGHT_TO_LEFT = re.compile(
    "[\u0590-\u08ff\u200f\ufb1d-\ufdff\ufe70-\ufefc\U00010800-\U00010fff\U0001e800-\U0001efff]"
)
_LETTER = re.compile(r"[^\W\d_]")
_VISIBLE = re.compile(r"\S")
# How a piece of a paragraph takes part in grouping runs: right-to-left, neutral (digits
# and punctuation, no letters), blank (spaces, pictures, breaks, marks) or anything else.
_R, _N, _BLANK, _OTHER = "R", "N", "blank", "other"


def _rules() -> list[str]:
    rules = []
    for kind in ("p", "h1", "h2", "h3", "h4", "h5", "h6"):
        rules.append(f"p[style-name='{paragraph_style(kind, None)}'] => {kind}{_DIRECTED}:fresh")
        rules += [
            f"p[style-name='{paragraph_style(kind, alignment)}'] => {kind}{_DIRECTED}.align-{alignment}:fresh"
            for alignment in sorted(set(RIGHT_TO_LEFT_ALIGNMENTS.values()))
        ]
    for tag in ("ul", "ol"):
        for level in range(1, _LIST_LEVELS + 1):
            # Every element of the path carries dir: mammoth nests a level in the list
            # above it only when the two are equal, so the whole path must be right-to-left.
            outer = f"ul|ol{_DIRECTED} > li{_DIRECTED} > " * (level - 1)
            name = _LIST_STYLE.format(list=tag, level=level)
            rules.append(f"p[style-name='{name}'] => {outer}{tag}{_DIRECTED} > li{_DIRECTED}:fresh")
    rules.append(f"table[style-name='{_TABLE_STYLE}'] => table{_DIRECTED}:fresh")
    rules.append(f"r[style-name='{_RUN_STYLE}'] => span{_DIRECTED}")
    return rules


def paragraph_style(kind: str, alignment: str | None) -> str:
    """The style name of a right-to-left paragraph of a kind (p, h1-h6), with a visual alignment or none."""
    return _PARAGRAPH_STYLE.format(kind=kind, alignment=alignment or "start")


def list_style(numbering) -> str | None:
    """The style name of a right-to-left list item, or None beyond the levels mammoth makes lists of."""
    level = int(numbering.level_index) + 1 if numbering.level_index.isdigit() else 0
    if not 1 <= level <= _LIST_LEVELS:
        return None
    return _LIST_STYLE.format(list="ol" if numbering.is_ordered else "ul", level=level)


STYLE_MAP_RULES = _rules()


# Reading Word's direction


def _switch(element: XmlElement | None) -> bool | None:
    """An on/off property (ST_OnOff): None when absent."""
    if element is None:
        return None
    return element.attributes.get("w:val") not in _OFF


def own_bidi(style: XmlElement) -> bool | None:
    """A style's own w:bidi, or None when it does not set one."""
    return _switch(style.find_child_or_null("w:pPr").find_child("w:bidi"))


@dataclass(frozen=True)
class StyleDirections:
    """Whether a paragraph with no direct w:bidi is right-to-left: by its style, or the document defaults."""

    by_style: Mapping[str, bool] = field(default_factory=dict)  # along basedOn
    default_style: str | None = None  # what a paragraph without w:pStyle has
    document_default: bool = False  # w:docDefaults/w:pPrDefault

    def right_to_left(self, style_id: str | None) -> bool:
        """Whether a paragraph of this style (None: no w:pStyle) is right-to-left."""
        return self.by_style.get(style_id or self.default_style or "", self.document_default)


def style_directions(styles: XmlElement, by_style: Mapping[str, bool]) -> StyleDirections:
    """The StyleDirections of a styles part, given each style's w:bidi resolved along basedOn."""
    defaults = (
        styles.find_child_or_null("w:docDefaults")
        .find_child_or_null("w:pPrDefault")
        .find_child_or_null("w:pPr")
    )
    default_style = next(
        (
            style.attributes.get("w:styleId")
            for style in styles.find_children("w:style")
            if style.attributes.get("w:type", "paragraph") == "paragraph"
            and style.attributes.get("w:default", "0") not in _OFF
        ),
        None,
    )
    return StyleDirections(dict(by_style), default_style, bool(_switch(defaults.find_child("w:bidi"))))


# The rewrites: element-local, as ELEMENT_REWRITES requires


def _mark_paragraph(paragraph: XmlElement, parent_name: str) -> XmlElement:
    properties = paragraph.find_child("w:pPr")
    bidi = None if properties is None else _switch(properties.find_child("w:bidi"))
    if bidi is not None:
        _carry(properties, "w:jc", "w:val", _RTL if bidi else _LTR)
    return paragraph


def _mark_run(run: XmlElement, parent_name: str) -> XmlElement:
    properties = run.find_child("w:rPr")
    rtl = None if properties is None else _switch(properties.find_child("w:rtl"))
    if rtl is not None:
        _carry(properties, "w:rFonts", "w:ascii", _RTL if rtl else _LTR)
    return run


def _mark_table(table: XmlElement, parent_name: str) -> XmlElement:
    if _switch(table.find_child_or_null("w:tblPr").find_child("w:bidiVisual")):
        marked = XmlElement("w:pPr", {}, [XmlElement("w:jc", {"w:val": _MARK + _TABLE}, [])])
        row = XmlElement("w:tr", {}, [XmlElement("w:tc", {}, [XmlElement("w:p", {}, [marked])])])
        table.children.append(row)
    return table


def _carry(properties: XmlElement, name: str, attribute: str, marker: str) -> None:
    """Append the marker to an attribute of the first child `name` of properties (made if missing)."""
    index = next(
        (i for i, child in enumerate(properties.children) if getattr(child, "name", None) == name), None
    )
    if index is None:
        properties.children.append(XmlElement(name, {attribute: _MARK + marker}, []))
        return
    child = properties.children[index]
    value = child.attributes.get(attribute) or ""
    properties.children[index] = XmlElement(
        name, {**child.attributes, attribute: value + _MARK + marker}, child.children
    )


_REWRITES = {"w:p": _mark_paragraph, "w:r": _mark_run, "w:tbl": _mark_table}


def install() -> None:
    """Register the rewrites with the parser; refuses to replace another feature's rewrite."""
    for name, rewrite in _REWRITES.items():
        registered = xml_parser.ELEMENT_REWRITES.setdefault(name, rewrite)
        if registered is not rewrite:
            raise RuntimeError(f"conversion.direction: another rewrite of {name} is registered")


# Reading the markers back, in the document transform


def _split(value: str | None) -> tuple[str | None, str | None]:
    if value is None or _MARK not in value:
        return value, None
    own, _, marker = value.partition(_MARK)
    return own or None, marker


def carried_alignment(alignment: str | None) -> tuple[str | None, bool | None]:
    """A paragraph's own w:jc value, and its direct direction (True: right-to-left; None: not set)."""
    own, marker = _split(alignment)
    return own, None if marker not in (_RTL, _LTR) else marker == _RTL


def is_own_style(style_name: str | None) -> bool:
    """Whether a style name is one collab gives (a document's own such name is renamed)."""
    return style_name is not None and style_name.startswith(OWN_STYLE_PREFIX)


def unmark_table(table: documents.Table) -> documents.Table:
    """A table without the marker row, named for the style map when the marker said right-to-left."""
    rows = table.children
    last = rows[-1] if rows else None
    cell = last.children[0] if isinstance(last, documents.TableRow) and len(last.children) == 1 else None
    marker = cell.children[0] if cell is not None and len(cell.children) == 1 else None
    if isinstance(marker, documents.Paragraph) and _split(marker.alignment)[1] == _TABLE:
        return table.copy(children=rows[:-1], style_name=_TABLE_STYLE)
    if is_own_style(table.style_name):
        return table.copy(style_name=None)
    return table


def inline_content(children: list, right_to_left: bool) -> list:
    """A paragraph's content without markers; in a left-to-right one, right-to-left runs grouped in spans."""
    pieces = [_unmarked(child) for child in children]
    if right_to_left or all(kind != _R for _, kind in pieces):
        if all(element is child for (element, _), child in zip(pieces, children, strict=True)):
            return children
        return [element for element, _ in pieces]
    grouped = []
    index = 0
    while index < len(pieces):
        if pieces[index][1] != _R:
            grouped.append(pieces[index][0])
            index += 1
            continue
        # Neutral pieces between two right-to-left ones join them, as the bidi algorithm
        # would resolve them; at the ends they stay outside.
        end = scan = index + 1
        while scan < len(pieces) and pieces[scan][1] in (_R, _N, _BLANK):
            if pieces[scan][1] == _R:
                end = scan + 1
            scan += 1
        group = [element for element, _ in pieces[index:end]]
        grouped.append(documents.run(children=group, style_name=_RUN_STYLE))
        index = end
    return grouped


def _unmarked(element) -> tuple[object, str]:
    """An inline element with its runs' markers removed, and how it takes part in grouping."""
    if isinstance(element, documents.Text):
        return element, _text_kind(element.value)
    if not isinstance(element, documents.HasChildren):
        return element, _BLANK  # pictures, tabs, breaks, bookmarks, note and comment marks
    if isinstance(element, documents.Paragraph | documents.Table):
        return element, _OTHER  # a text box's content: its paragraphs have their own direction
    pieces = [_unmarked(child) for child in element.children]
    children = [child for child, _ in pieces]
    kind = _combined({kind for _, kind in pieces})
    changes = {}
    if any(new is not old for new, old in zip(children, element.children, strict=True)):
        changes["children"] = children
    if isinstance(element, documents.Run):
        font, marker = _split(element.font)
        if marker is not None:
            changes["font"] = font
            # A marked run that shows nothing needs no span of its own.
            kind = _BLANK if kind == _BLANK else _R if marker == _RTL else _OTHER
        if is_own_style(element.style_name):
            changes["style_name"] = None
    return (element.copy(**changes) if changes else element), kind


def _combined(kinds: set[str]) -> str:
    strong = kinds - {_N, _BLANK}
    if strong:
        return _R if strong == {_R} else _OTHER
    return _N if _N in kinds else _BLANK


def _text_kind(value: str) -> str:
    if _MAYBE_RIGHT_TO_LEFT.search(value) is None:
        return _OTHER if _LETTER.search(value) else _N if _VISIBLE.search(value) else _BLANK
    classes = {unicodedata.bidirectional(character) for character in value}
    if "L" in classes:
        return _OTHER  # mixed: the browser's bidi algorithm orders it as Word's does
    return _R if classes & {"R", "AL"} else _N
