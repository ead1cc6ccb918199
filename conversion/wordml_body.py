"""Sanitised HTML as the body of a Word document: paragraphs, runs, lists, links, pictures, tables.

One pass over the sanitiser's output (sanitised_html), which is well-formed and nested no
deeper than the limits allow. Nothing recurses: each open element is a frame on
a stack that carries what its content inherits (the run formatting, the block context),
worked out once when the element opens, so the cost is linear in the HTML. Paragraphs
start when content arrives and end at the next block boundary, as a browser lays them out:
white space collapsed, ``dir`` and ``text-align`` inherited, text outside paragraphs put
into paragraphs of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from xml.sax.saxutils import escape

from .docx_package import BULLET, LIST_INDENT, TEXT_HEIGHT, TEXT_WIDTH, Body, Numbering, xml_text
from .limits import Limits
from .sanitised_html import END, START, tokens
from .wordml_images import Pictures
from .wordml_runs import TEXT_START, Format, bookmark_name, bookmark_xml, run_properties, runs_xml
from .wordml_tables import (
    EMPTY_PARAGRAPH,
    TABLE_START,
    Cell,
    Row,
    Table,
    colspan,
    rowspan,
    table_xml,
)

ORDERED_FORMATS = {
    "1": "decimal",
    "a": "lowerLetter",
    "A": "upperLetter",
    "i": "lowerRoman",
    "I": "upperRoman",
}
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
# Elements (of those the sanitiser keeps) that lay out as blocks: they end the paragraph before them.
_BLOCKS = frozenset(
    {"p", "div", "blockquote", "pre", "li", "ul", "ol", "dl", "dt", "dd", "header", "footer"}
    | {"table", "thead", "tbody", "tfoot", "tr", "td", "th"}
    | set(_HEADINGS)
)
# Inline elements that format their text.
_INLINE = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "sub", "sup", "code", "mark"}
)
_NO_ATTRIBUTES: dict[str, str] = {}
_VOID = frozenset({"br", "img", "hr"})  # the void elements the sanitiser keeps
_COLLAPSIBLE = re.compile(r"[ \t\n\r\f]+")
_PRE_SPLIT = re.compile(r"(\r\n|[\r\n\t])")
_CSS_ALIGNMENTS = frozenset({"left", "right", "center", "justify", "start", "end"})
_MAX_LIST_LEVEL = 8  # Word numbers levels 0 to 8
_MAX_START = 32767
_QUOTE_INDENT = 720
_RULE = '<w:p><w:pPr><w:pBdr><w:bottom w:val="single" w:sz="6" w:space="1"/></w:pBdr></w:pPr></w:p>'


@dataclass
class _Item:
    """A list item: its list's numId and level; whether its number was given to a paragraph yet."""

    number: int
    level: int
    numbered: bool = False


@dataclass(frozen=True)
class _Block:
    """What the paragraphs of a block element inherit."""

    right_to_left: bool = False
    alignment: str = ""  # CSS text-align
    quote: int = 0  # blockquote and dd depth
    heading: int = 0
    pre: bool = False
    list_number: int = 0  # numId of the innermost list
    list_level: int = -1
    item: _Item | None = None


@dataclass
class _Frame:
    """An open element."""

    tag: str
    format: Format
    block: _Block
    target: list[str]  # where its finished blocks go
    right_to_left: bool  # the direction it inherits (CSS direction, inherited through inline elements too)
    table: Table | None = None  # the innermost open table
    row: Row | None = None
    header: bool = False  # in a thead's row
    opens: Table | None = None  # the table this element is


@dataclass
class _Paragraph:
    properties: str
    item: _Item | None
    target: list[str]  # where it goes when it ends
    runs: list[tuple[str, str, str]] = field(default_factory=list)  # run properties, link, run content
    ends_with_space: bool = True  # at the start, leading white space is dropped
    breaks: bool = False  # holds a line break: shown even when empty


def write_body(sanitised: str, limits: Limits) -> Body:
    """The Word body of the sanitiser's HTML."""
    writer = _BodyWriter(limits)
    for kind, name, value in tokens(sanitised):
        if kind == START:
            writer.start(name, value)
        elif kind == END:
            writer.end(name)
        else:
            writer.text(value)
    return writer.finish()


class _BodyWriter:
    """Writes a Word body from the tags and text of sanitised HTML, then ``finish()``."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.blocks: list[str] = []
        self.numbering = Numbering()
        self.hyperlinks: dict[str, str] = {}  # relationship id: URL
        self._link_ids: dict[str, str] = {}  # URL: relationship id
        self.media: dict[str, str] = {}
        self.pictures = Pictures(limits, TEXT_WIDTH, TEXT_HEIGHT)
        self._frames = [_Frame("", Format(), _Block(), self.blocks, False)]
        self._paragraph: _Paragraph | None = None
        self._bookmarks: list[str] = []  # waiting for the next content
        self._bookmark_ids = 0
        self._run_properties: dict[Format, str] = {}
        self._formats: dict[tuple, Format] = {}

    def finish(self) -> Body:
        """Close what is open and return the body."""
        while len(self._frames) > 1:
            self._pop()
        self._end_paragraph()
        if not self.blocks or self.blocks[-1].startswith(TABLE_START):
            self.blocks.append(EMPTY_PARAGRAPH)  # Word's body ends with a paragraph
        return Body(
            xml="".join(self.blocks),
            numbering=self.numbering,
            hyperlinks=self.hyperlinks,
            media=self.media,
            pictures=list(self.pictures.stored.values()),
        )

    # Tags and text

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        if tag in _VOID:
            self._void(tag, attributes)
            return
        parent = self._frames[-1]
        styles = _styles(attributes["style"]) if "style" in attributes else _NO_ATTRIBUTES
        direction = attributes.get("dir") or styles.get("direction", "")
        right_to_left = direction == "rtl" if direction in ("rtl", "ltr") else parent.right_to_left
        frame = _Frame(
            tag,
            parent.format,
            parent.block,
            parent.target,
            right_to_left,
            parent.table,
            parent.row,
            parent.header,
        )
        if tag in _BLOCKS:
            self._end_paragraph()
            item = parent.block.item
            if tag in ("ul", "ol", "table") and item is not None and not item.numbered:
                # An item that starts with a list or a table shows its number on a line of its own.
                self._start_paragraph(parent)
                self._end_paragraph()
            self._open_block(frame, parent, attributes, styles)
        if attributes or tag in _INLINE:
            # Most elements are alike: each new one is worked out once.
            key = (frame.format, tag, attributes.get("href"), attributes.get("style"), direction)
            known = self._formats.get(key)
            if known is None:
                known = frame.format
                if direction in ("rtl", "ltr"):
                    # A block's own direction is its paragraphs'; an inline element's, its runs'.
                    known = replace(known, right_to_left=right_to_left and tag not in _BLOCKS)
                known = self._formats[key] = self._inline_format(tag, known, attributes, styles)
            frame.format = known
        self._frames.append(frame)
        if attributes.get("id"):
            self._bookmarks.append(bookmark_name(attributes["id"]))

    def end(self, tag: str) -> None:
        frames = self._frames
        if frames[-1].tag == tag and len(frames) > 1:
            self._pop()
            return
        # The sanitiser's HTML is well-formed, so this is not reached from html_to_docx;
        # elsewhere an end tag closes what is open above its element; one of no open element is ignored.
        if tag in _VOID or not any(frame.tag == tag for frame in frames[1:]):
            return
        while self._pop() != tag:
            pass

    def text(self, data: str) -> None:
        frame = self._frames[-1]
        if frame.block.pre:
            for piece in _PRE_SPLIT.split(data):
                if piece == "\t":
                    self._add(frame.format, "<w:tab/>", space=False)
                elif piece in ("\n", "\r", "\r\n"):
                    self._add(frame.format, "<w:br/>", space=True)
                    self._paragraph.breaks = True
                elif piece:
                    self._add_text(frame.format, piece)
            return
        text = _COLLAPSIBLE.sub(" ", data)
        paragraph = self._paragraph
        if paragraph is None or paragraph.ends_with_space:
            text = text.lstrip(" ")
        if text:
            self._add_text(frame.format, text)

    # Elements

    def _open_block(
        self, frame: _Frame, parent: _Frame, attributes: dict[str, str], styles: dict[str, str]
    ) -> None:
        tag = frame.tag
        block = parent.block
        if block.right_to_left != frame.right_to_left:
            block = replace(block, right_to_left=frame.right_to_left)
        alignment = _alignment(attributes, styles) if attributes else ""
        if alignment:
            block = replace(block, alignment=alignment)
        if tag == "p":
            pass
        elif tag in _HEADINGS:
            block = replace(block, heading=_HEADINGS[tag])
        elif tag in ("blockquote", "dd"):
            block = replace(block, quote=block.quote + 1)
        elif tag == "pre":
            block = replace(block, pre=True)
            frame.format = replace(frame.format, code=True)
        elif tag in ("ul", "ol"):
            level = min(block.list_level + 1, _MAX_LIST_LEVEL)
            list_format, start = _list_format(tag, attributes)
            number = self.numbering.new_list(list_format, level, start)
            block = replace(block, list_number=number, list_level=level)
        elif tag == "li":
            item = _Item(block.list_number, block.list_level) if block.list_number else None
            block = replace(block, item=item)
        elif tag == "table":
            frame.opens = frame.table = Table(frame.right_to_left)
            frame.row, frame.header = None, False
            frame.target = frame.table.before
            block = _Block(right_to_left=frame.right_to_left)
        elif tag in ("thead", "tbody", "tfoot") and frame.table is not None:
            frame.table.group += 1
            frame.row = None
        elif tag == "tr" and frame.table is not None:
            frame.row = Row(frame.table.group, parent.tag == "thead")
            frame.header = parent.tag == "thead"
            frame.table.rows.append(frame.row)
        elif tag in ("td", "th") and frame.table is not None:
            if frame.row is None:  # a cell outside a row starts one
                frame.row = parent.row = Row(frame.table.group, False)
                frame.table.rows.append(frame.row)
            cell = Cell(colspan(attributes.get("colspan")), rowspan(attributes.get("rowspan")), tag == "th")
            frame.row.cells.append(cell)
            frame.target = cell.blocks
            block = _Block(right_to_left=frame.right_to_left, alignment=alignment)
            if tag == "th" and not frame.header:
                # Bold as browsers show it; a header row's is the table style's.
                frame.format = replace(frame.format, bold=True)
        frame.block = block

    def _inline_format(
        self, tag: str, format: Format, attributes: dict[str, str], styles: dict[str, str]
    ) -> Format:
        changes: dict[str, object] = {}
        if tag in ("b", "strong"):
            changes["bold"] = True
        elif tag in ("i", "em"):
            changes["italic"] = True
        elif tag in ("u", "ins"):
            changes["underline"] = True
        elif tag in ("s", "strike", "del"):
            changes["strike"] = True
        elif tag in ("sub", "sup"):
            changes["vertical"] = "subscript" if tag == "sub" else "superscript"
        elif tag == "code":
            changes["code"] = True
        elif tag == "mark":
            changes["highlight"] = True
        elif tag == "a" and attributes.get("href"):
            changes["link"] = self._link(attributes["href"])
        weight = styles.get("font-weight", "")
        if weight:
            changes["bold"] = weight in ("bold", "bolder") or (weight.isdigit() and int(weight) >= 600)
        if styles.get("font-style"):
            changes["italic"] = styles["font-style"] in ("italic", "oblique")
        decoration = styles.get("text-decoration-line") or styles.get("text-decoration", "")
        if "underline" in decoration:
            changes["underline"] = True
        if "line-through" in decoration:
            changes["strike"] = True
        return replace(format, **changes) if changes else format

    def _link(self, href: str) -> str:
        if href.startswith("#"):
            return "#" + bookmark_name(href[1:])
        if href not in self._link_ids:
            self._link_ids[href] = self._new_relationship()
            self.hyperlinks[self._link_ids[href]] = href
        return self._link_ids[href]

    def _new_relationship(self, target: str | None = None) -> str:
        rid = f"rId{10 + len(self.hyperlinks) + len(self.media)}"
        if target is not None:
            self.media[rid] = target
        return rid

    def _void(self, tag: str, attributes: dict[str, str]) -> None:
        frame = self._frames[-1]
        if tag == "br":
            self._add(frame.format, "<w:br/>", space=True)
            self._paragraph.breaks = True
        elif tag == "hr":
            self._end_paragraph()
            self._append(frame.target, _RULE)
        elif tag == "img":
            alt = xml_text(attributes.get("alt", "")).strip()
            drawing = self.pictures.drawing(
                attributes.get("src", ""),
                alt,
                attributes.get("width"),
                attributes.get("height"),
                self._new_relationship,
            )
            if drawing is not None:
                self._add(frame.format, drawing, space=False)
            elif alt:
                # A picture Word cannot have (not inside the HTML): its text stands in for it.
                self.text(f" {alt} ")

    def _pop(self) -> str:
        frame = self._frames[-1]
        if frame.tag in _BLOCKS:
            self._end_paragraph()
            item = frame.block.item
            if frame.tag == "li" and item is not None and not item.numbered:
                # An empty item still shows its number.
                self._start_paragraph(frame)
                self._end_paragraph()
        self._frames.pop()
        if frame.opens is not None:
            parent = self._frames[-1].target
            parent.extend(frame.opens.before)
            table = table_xml(frame.opens, TEXT_WIDTH, self.limits.max_html_elements)
            if table:
                self._append(parent, table)
        return frame.tag

    # Paragraphs and runs

    def _add_text(self, format: Format, text: str) -> None:
        text = xml_text(text)
        if text:
            self._add(format, f"{TEXT_START}{escape(text)}</w:t>", space=text.endswith(" "))

    def _add(self, format: Format, content: str, space: bool) -> None:
        paragraph = self._paragraph or self._start_paragraph(self._frames[-1])
        if self._bookmarks:
            for name in self._bookmarks:
                self._bookmark_ids += 1
                paragraph.runs.append(("", "", bookmark_xml(self._bookmark_ids, name)))
            self._bookmarks.clear()
        paragraph.runs.append((self._properties(format), format.link, content))
        paragraph.ends_with_space = space

    def _start_paragraph(self, frame: _Frame) -> _Paragraph:
        block = frame.block
        properties = []
        if block.heading:
            properties.append(f'<w:pStyle w:val="Heading{block.heading}"/>')
        item = block.item
        indent = block.quote * _QUOTE_INDENT
        if item is not None and not item.numbered:
            item.numbered = True
            properties.append(
                f'<w:numPr><w:ilvl w:val="{item.level}"/><w:numId w:val="{item.number}"/></w:numPr>'
            )
            indent = 0  # the numbering level's
        elif item is not None:
            indent += LIST_INDENT * (item.level + 1)  # a later paragraph of an item: under its text
        if block.right_to_left:
            properties.append("<w:bidi/>")
        if block.pre:
            properties.append('<w:spacing w:line="240" w:lineRule="auto"/>')  # single lines
        if indent:
            properties.append(f'<w:ind w:left="{indent}"/>')
        justification = _justification(block.alignment, block.right_to_left)
        if justification:
            properties.append(f'<w:jc w:val="{justification}"/>')
        self._paragraph = _Paragraph(
            f"<w:pPr>{''.join(properties)}</w:pPr>" if properties else "", item, frame.target
        )
        return self._paragraph

    def _end_paragraph(self) -> None:
        paragraph, self._paragraph = self._paragraph, None
        if paragraph is None:
            return
        runs = paragraph.runs
        # A block's last line break and its trailing white space show nothing in a browser.
        if runs and runs[-1][2] == "<w:br/>":
            runs.pop()
        if runs and runs[-1][2].endswith(" </w:t>"):
            properties, link, content = runs.pop()
            text = content[: -len(" </w:t>")].rstrip(" ")
            if text != TEXT_START:
                runs.append((properties, link, text + "</w:t>"))
        if not runs and not paragraph.breaks and paragraph.item is None:
            return
        self._append(paragraph.target, f"<w:p>{paragraph.properties}{runs_xml(runs)}</w:p>")

    def _append(self, target: list[str], block: str) -> None:
        # Word joins two tables that touch into one: a paragraph keeps them apart.
        if block.startswith(TABLE_START) and target and target[-1].startswith(TABLE_START):
            target.append(EMPTY_PARAGRAPH)
        target.append(block)

    def _properties(self, format: Format) -> str:
        known = self._run_properties.get(format)
        if known is None:
            known = self._run_properties[format] = run_properties(format)
        return known


def _styles(style: str) -> dict[str, str]:
    """The declarations the sanitiser kept of a style attribute, names and values in lower case."""
    declarations = {}
    for declaration in style.split(";"):
        name, _, value = declaration.partition(":")
        if value:
            declarations[name.strip().lower()] = value.strip().lower()
    return declarations


def _alignment(attributes: dict[str, str], styles: dict[str, str]) -> str:
    for value in (
        styles.get("text-align", ""),
        attributes.get("align", "").lower(),
        *(name.removeprefix("align-") for name in attributes.get("class", "").split()),
    ):
        if value in _CSS_ALIGNMENTS:
            return value
    return ""


def _justification(alignment: str, right_to_left: bool) -> str:
    """Word's w:jc for a CSS text-align; "" for the natural one. Word's left and right are start and end."""
    if alignment in ("center", "justify"):
        return "center" if alignment == "center" else "both"
    if alignment == "end" or alignment == ("left" if right_to_left else "right"):
        return "right"
    return ""


def _list_format(tag: str, attributes: dict[str, str]) -> tuple[str, int]:
    if tag == "ul":
        return BULLET, 1
    start = attributes.get("start", "").strip()
    first = int(start) if start.isdigit() else 1
    return ORDERED_FORMATS.get(attributes.get("type", ""), "decimal"), min(first, _MAX_START)
