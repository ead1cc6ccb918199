"""Word documents with Word's usual markup, made from a small model, and the edits a writer makes to them.

A ``WordDocument`` is a list of top-level body blocks (paragraphs, tables, a stray
``w:bookmarkEnd``) and the parts Word keeps beside the body: styles, numbering, footnotes,
endnotes, comments, headers and footers, and the settings' rsids. It renders to Flat OPC
text, as ``Word.Body.getOoxml()`` returns it, and to .docx bytes with the same parts, marked
up as Word writes them: ``w:rsidR``/``w14:paraId`` on paragraphs, runs split by formatting
and ``w:proofErr``, headings by ``w:pStyle``, lists by ``w:numPr``, merged table cells, note
and comment references, bookmarks, hyperlinks through relationships, section breaks with
header and footer references. Everything is deterministic: a seed gives one document, and
an edit (``Edit``, drawn by the Hypothesis strategies at the end) gives one new document.

An unchanged block renders to the same bytes after any edit elsewhere, as Word keeps a
paragraph's ids and rsids until it is edited: that is what lets a converter reuse it.

Also here, for documents that were not made by the model: the top-level blocks of a main
document part, and reading and replacing the main part of a Flat OPC text or a .docx.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import random
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from hypothesis import strategies as st

# Namespaces

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_RELATIONSHIPS = "http://schemas.openxmlformats.org/package/2006/relationships"
_PACKAGE = "http://schemas.microsoft.com/office/2006/xmlPackage"
# What Word 2016 and later declare on the root of document.xml, footnotes.xml, comments.xml,
# header and footer parts alike (from a Word-produced Flat OPC file).
_ROOT_NAMESPACES = (
    ' xmlns:wpc="http://schemas.microsoft.com/office/word/2010/wordprocessingCanvas"'
    ' xmlns:cx="http://schemas.microsoft.com/office/drawing/2014/chartex"'
    ' xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"'
    ' xmlns:o="urn:schemas-microsoft-com:office:office"'
    f' xmlns:r="{_R}"'
    ' xmlns:m="http://schemas.openxmlformats.org/officeDocument/2006/math"'
    ' xmlns:v="urn:schemas-microsoft-com:vml"'
    ' xmlns:wp14="http://schemas.microsoft.com/office/word/2010/wordprocessingDrawing"'
    ' xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"'
    ' xmlns:w10="urn:schemas-microsoft-com:office:word"'
    f' xmlns:w="{_W}"'
    ' xmlns:w14="http://schemas.microsoft.com/office/word/2010/wordml"'
    ' xmlns:w15="http://schemas.microsoft.com/office/word/2012/wordml"'
    ' xmlns:w16se="http://schemas.microsoft.com/office/word/2015/wordml/symex"'
    ' xmlns:wpg="http://schemas.microsoft.com/office/word/2010/wordprocessingGroup"'
    ' xmlns:wpi="http://schemas.microsoft.com/office/word/2010/wordprocessingInk"'
    ' xmlns:wne="http://schemas.microsoft.com/office/word/2006/wordml"'
    ' xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape"'
    ' mc:Ignorable="w14 w15 w16se wp14"'
)
_SHORT_NAMESPACES = (
    ' xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"'
    f' xmlns:r="{_R}" xmlns:w="{_W}"'
    ' xmlns:w14="http://schemas.microsoft.com/office/word/2010/wordml"'
    ' xmlns:w15="http://schemas.microsoft.com/office/word/2012/wordml"'
    ' mc:Ignorable="w14 w15"'
)
_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
_TYPES = "application/vnd.openxmlformats-officedocument.wordprocessingml."
_RELATIONSHIP_TYPES = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"

# Text

# Plain words, and a few that need escaping or are not ASCII, as real documents have them.
WORDS = (
    "the",
    "committee",
    "reviewed",
    "each",
    "proposal",
    "against",
    "budget",
    "and",
    "agreed",
    "that",
    "further",
    "work",
    "on",
    "draft",
    "should",
    "continue",
    "before",
    "next",
    "meeting",
    "while",
    "members",
    "collect",
    "comments",
    "from",
    "their",
    "teams",
    "report",
    "shows",
    "growth",
    "in",
    "every",
    "region",
    "although",
    "costs",
    "rose",
    "faster",
    "than",
    "expected",
    "during",
    "second",
    "quarter",
    "naïve",
    "café",
    "résumé",
    "R&D",
    "<draft>",
    "“quoted”",
    "—",
    "½",
    "Ωmega",
    "東京",
    "señor",
)
_MISSPELLINGS = ("teh", "recieve", "seperate", "occured", "definately", "goverment")


def words(rng: random.Random, count: int) -> str:
    """`count` words drawn from WORDS."""
    return " ".join(rng.choice(WORDS) for _ in range(count))


def _rsid(rng: random.Random) -> str:
    return f"00{rng.randrange(0x100000, 0xFFFFFF):06X}"


# The model


@dataclass(frozen=True)
class Span:
    """A stretch of text in one run, as Word splits a paragraph where formatting or marks change."""

    text: str  # "\t" is a tab, "\n" a line break (w:br)
    rsid: str
    bold: bool = False
    italic: bool = False
    underline: bool = False
    strong: bool = False  # the Strong character style
    misspelt: bool = False  # wrapped in w:proofErr spellStart/spellEnd


@dataclass(frozen=True)
class NoteReference:
    kind: str  # "footnote" or "endnote"
    note: int  # the note's w:id
    rsid: str


@dataclass(frozen=True)
class CommentAnchor:
    """commentRangeStart, the commented text, commentRangeEnd and the reference run."""

    comment: int
    text: str
    rsid: str


@dataclass(frozen=True)
class Link:
    """A hyperlink: external through a relationship (rId from uid), or to a bookmark (anchor)."""

    uid: int
    text: str
    rsid: str
    url: str | None = None
    anchor: str | None = None


@dataclass(frozen=True)
class Bookmark:
    """A bookmark start; its end follows at once unless ``open`` (then a BookmarkEnd block ends it)."""

    id: int
    name: str
    open: bool = False


Inline = Span | NoteReference | CommentAnchor | Link | Bookmark


@dataclass(frozen=True)
class Section:
    """Section properties: in a paragraph's w:pPr (a section break) or the body's last child."""

    rsid: str
    header: int | None = None  # uid of a header part
    footer: int | None = None
    landscape: bool = False


@dataclass(frozen=True)
class Paragraph:
    uid: int
    rsid: str
    inlines: tuple[Inline, ...] = ()
    style: str | None = None  # a paragraph style id
    list_item: tuple[int, int] | None = None  # (numId, ilvl)
    alignment: str | None = None  # direct w:jc
    section: Section | None = None  # a section break after this paragraph


@dataclass(frozen=True)
class Cell:
    text: str
    rsid: str
    span: int = 1  # w:gridSpan
    merge: str | None = None  # w:vMerge: "restart" or "continue"


@dataclass(frozen=True)
class Table:
    uid: int
    rsid: str
    rows: tuple[tuple[Cell, ...], ...]
    columns: int


@dataclass(frozen=True)
class BookmarkEnd:
    """A w:bookmarkEnd standing in the body between blocks, as Word leaves one after a table."""

    uid: int
    id: int


Block = Paragraph | Table | BookmarkEnd


@dataclass(frozen=True)
class Comment:
    author: str
    initials: str
    text: str


# Paragraph styles: id -> (name, based on); every document defines them all.
PARAGRAPH_STYLES = {
    "Normal": ("Normal", None),
    "Heading1": ("heading 1", "Normal"),
    "Heading2": ("heading 2", "Normal"),
    "Heading3": ("heading 3", "Normal"),
    "Title": ("Title", "Normal"),
    "Quote": ("Quote", "Normal"),
    "ListParagraph": ("List Paragraph", "Normal"),
    "FootnoteText": ("footnote text", "Normal"),
    "EndnoteText": ("endnote text", "Normal"),
    "CommentText": ("annotation text", "Normal"),
    "Header": ("header", "Normal"),
    "Footer": ("footer", "Normal"),
}
CHARACTER_STYLES = {
    "DefaultParagraphFont": "Default Paragraph Font",
    "Heading1Char": "Heading 1 Char",
    "FootnoteReference": "footnote reference",
    "EndnoteReference": "endnote reference",
    "CommentReference": "annotation reference",
    "Hyperlink": "Hyperlink",
    "Strong": "Strong",
}
# Edits of styles.xml: a style's new name or alignment, each changing what mammoth writes.
STYLE_CHANGES = (
    ("Heading2", "name", "Heading Two"),
    ("Heading1", "jc", "center"),
    ("Quote", "jc", "right"),
    ("Quote", "name", "Intense Quote"),
    ("Normal", "jc", "both"),
    ("Title", "name", "heading 1"),
    ("Heading3", "color", "C00000"),  # run formatting mammoth does not show: bytes change, HTML not
)
# Level formats: abstractNum 0 is bulleted, 1 numbered (1., a., i., ...).
_BULLET_LEVELS = ("bullet",) * 9
_NUMBER_LEVELS = ("decimal", "lowerLetter", "lowerRoman") * 3
_BULLET_TEXT = ("\uf0b7", "o", "\uf0a7")
_BULLET_FONTS = ("Symbol", "Courier New", "Wingdings")


@dataclass
class WordDocument:
    """A Word document: body blocks and the parts beside them. Edits copy it (see ``apply_edit``)."""

    blocks: list[Block]
    final_section: Section
    footnotes: dict[int, str] = field(default_factory=dict)
    endnotes: dict[int, str] = field(default_factory=dict)
    comments: dict[int, Comment] = field(default_factory=dict)
    headers: dict[int, str] = field(default_factory=dict)  # header part uid -> its text
    footers: dict[int, str] = field(default_factory=dict)
    links: dict[int, str] = field(default_factory=dict)  # external hyperlink uid -> URL
    style_changes: dict[tuple[str, str], str] = field(default_factory=dict)
    numbering: dict[int, tuple[str, ...]] = field(default_factory=dict)  # abstractNumId -> formats
    nums: dict[int, tuple[int, int | None]] = field(default_factory=dict)  # numId -> (abstract, restart)
    rsids: list[str] = field(default_factory=list)  # the settings' rsids; the last is this session's
    next_uid: int = 1

    def copy(self) -> WordDocument:
        """A copy whose lists and dicts may be changed without touching this one."""
        copied = dataclasses.replace(self)
        for name in ("blocks", "rsids"):
            setattr(copied, name, list(getattr(self, name)))
        for name in (
            "footnotes",
            "endnotes",
            "comments",
            "headers",
            "footers",
            "links",
            "style_changes",
            "numbering",
            "nums",
        ):
            setattr(copied, name, dict(getattr(self, name)))
        return copied

    def new_uid(self) -> int:
        uid = self.next_uid
        self.next_uid += 1
        return uid

    @property
    def rsid(self) -> str:
        """The rsid of the current editing session: what Word marks new and edited text with."""
        return self.rsids[-1]

    def flat_opc(self) -> str:
        """The document as Flat OPC text, as Word.Body.getOoxml() returns it."""
        return render_flat_opc(self)

    def docx(self) -> bytes:
        """The document as .docx bytes with the same parts."""
        return render_docx(self)

    def docx_base64(self) -> str:
        """The .docx as base64 text, as the Word add-in sends it."""
        return base64.b64encode(self.docx()).decode("ascii")


# Making documents


def generated_document(seed: int, pages: float = 1.0) -> WordDocument:
    """A report of about `pages` pages (500 words a page) with every kind of markup, from a seed.

    Past its title each page has a heading, body paragraphs (runs in several formats,
    spelling marks, tabs and line breaks, footnotes, endnotes, comments and hyperlinks now
    and then), a bulleted or numbered list of several levels, and every other page a table
    with merged cells; some pages add a quote, a bookmark ending between blocks with a link
    to it, or a section break with a header of its own. ``pages=0`` is the title alone.
    """
    rng = random.Random(seed)
    document = WordDocument(
        blocks=[],
        final_section=Section(rsid=_rsid(rng)),
        numbering={0: _BULLET_LEVELS, 1: _NUMBER_LEVELS},
        nums={1: (0, None), 2: (1, None), 3: (1, 1)},  # numId 3 restarts the numbered list at 1
        rsids=[_rsid(rng) for _ in range(3)],
    )
    header, footer = document.new_uid(), document.new_uid()
    document.headers[header] = f"Report {seed}: {words(rng, 3)}"
    document.footers[footer] = f"Confidential {words(rng, 2)}"
    document.final_section = Section(rsid=document.rsid, header=header, footer=footer)
    target = round(pages * 500)
    written = 0
    document.blocks.append(_paragraph(document, rng, words(rng, 5), style="Title"))
    page = 0
    while written < target:
        written += _add_page(document, rng, page)
        page += 1
    return document


def _add_page(document: WordDocument, rng: random.Random, page: int) -> int:
    """One page's worth of blocks; the number of words written."""
    blocks = document.blocks
    written = 0
    heading_level = 1 if page % 3 == 0 else 2
    blocks.append(_paragraph(document, rng, f"{page + 1}. {words(rng, 4)}", style=f"Heading{heading_level}"))
    if page == 1:
        # Word's own "_GoBack" bookmark, where the cursor last was, and a named one with a link to it.
        blocks.append(
            dataclasses.replace(
                _paragraph(document, rng, words(rng, 12)),
                inlines=(Bookmark(document.new_uid(), "_GoBack"), Span(words(rng, 12), document.rsid)),
            )
        )
    for _ in range(rng.randint(2, 3)):
        count = rng.randint(70, 110)
        blocks.append(_body_paragraph(document, rng, count))
        written += count
    if page % 4 == 1:
        blocks.append(_paragraph(document, rng, words(rng, 25), style="Quote"))
        written += 25
    num_id = rng.choice((1, 2, 2, 3))
    for item in range(rng.randint(3, 6)):
        level = 0 if item == 0 else rng.choice((0, 0, 1, 1, 2))
        blocks.append(
            dataclasses.replace(
                _paragraph(document, rng, words(rng, rng.randint(4, 14)), style="ListParagraph"),
                list_item=(num_id, level),
            )
        )
        written += 9
    if page % 2 == 0:
        blocks.append(_table(document, rng))
        written += 40
    if page % 5 == 2:
        # A bookmark over a paragraph and the table after it ends between blocks.
        bookmark = document.new_uid()
        opened = _paragraph(document, rng, words(rng, 20))
        blocks.append(
            dataclasses.replace(
                opened, inlines=(Bookmark(bookmark, f"_Ref{bookmark:08d}", True), *opened.inlines)
            )
        )
        blocks.append(_table(document, rng))
        blocks.append(BookmarkEnd(document.new_uid(), bookmark))
        blocks.append(
            dataclasses.replace(
                _paragraph(document, rng, words(rng, 8)),
                inlines=(
                    Span("See ", document.rsid),
                    Link(document.new_uid(), "the table above", document.rsid, anchor=f"_Ref{bookmark:08d}"),
                    Span(". " + words(rng, 8), document.rsid),
                ),
            )
        )
        written += 60
    if page % 25 == 5:  # a new part of the report, as a chapter starts one: pages 6, 31, 56...
        header = document.new_uid()
        document.headers[header] = f"Part {page // 25 + 2}: {words(rng, 3)}"
        closing = _paragraph(document, rng, words(rng, 15))
        section = Section(document.rsid, header=header, footer=document.final_section.footer)
        blocks.append(dataclasses.replace(closing, section=section))
        written += 15
    blocks.append(_paragraph(document, rng, ""))  # Word's empty paragraph before a new heading
    return written


def _paragraph(document: WordDocument, rng: random.Random, text: str, style: str | None = None) -> Paragraph:
    spans = (Span(text, document.rsid),) if text else ()
    return Paragraph(document.new_uid(), rng.choice(document.rsids), spans, style=style)


def _body_paragraph(document: WordDocument, rng: random.Random, count: int) -> Paragraph:
    """A paragraph in runs of several formats, with a note, comment or link now and then."""
    rsid = rng.choice(document.rsids)
    inlines: list[Inline] = []
    remaining = count
    while remaining > 0:
        length = min(remaining, rng.randint(3, 30))
        remaining -= length
        inlines.append(_span(rng, length, rsid, last=remaining == 0))
        roll = rng.random()
        if roll < 0.08:
            note = _new_note_id(document, "footnote")
            document.footnotes[note] = words(rng, rng.randint(5, 15))
            inlines.append(NoteReference("footnote", note, rsid))
        elif roll < 0.11:
            note = _new_note_id(document, "endnote")
            document.endnotes[note] = words(rng, rng.randint(5, 15))
            inlines.append(NoteReference("endnote", note, rsid))
        elif roll < 0.14:
            comment = _new_comment_id(document)
            document.comments[comment] = _comment(rng)
            inlines.append(CommentAnchor(comment, words(rng, 3), rsid))
        elif roll < 0.18:
            link = document.new_uid()
            document.links[link] = f"https://example.org/{link}?q=a&b={rng.randint(0, 99)}"
            inlines.append(Link(link, words(rng, 2), rsid, url=document.links[link]))
    return Paragraph(document.new_uid(), rsid, tuple(inlines), alignment=rng.choice((None,) * 8 + ("both",)))


def _span(rng: random.Random, length: int, rsid: str, last: bool = True) -> Span:
    roll = rng.random()
    if roll < 0.1:
        return Span(rng.choice(_MISSPELLINGS) + ("" if last else " "), rsid, misspelt=True)
    text = words(rng, length)
    if roll < 0.13:
        text = text.replace(" ", "\t", 1)
    elif roll < 0.15:
        text = text.replace(" ", "\n", 1)
    return Span(
        text + ("" if last else " "),
        rsid,
        bold=0.15 <= roll < 0.25,
        italic=0.22 <= roll < 0.32,
        underline=0.32 <= roll < 0.36,
        strong=0.36 <= roll < 0.40,
    )


def _table(document: WordDocument, rng: random.Random) -> Table:
    """A table with a heading cell spanning two columns and a first column merged down two rows."""
    rsid = rng.choice(document.rsids)
    columns = rng.randint(3, 4)
    rows: list[tuple[Cell, ...]] = [
        (Cell(words(rng, 2), rsid, span=2), *(Cell(words(rng, 2), rsid) for _ in range(columns - 2)))
    ]
    for row in range(rng.randint(2, 4)):
        merge = "restart" if row == 0 else "continue" if row == 1 else None
        first = Cell("" if merge == "continue" else words(rng, 2), rsid, merge=merge)
        rows.append((first, *(Cell(words(rng, rng.randint(1, 6)), rsid) for _ in range(columns - 1))))
    return Table(document.new_uid(), rsid, tuple(rows), columns)


def _comment(rng: random.Random) -> Comment:
    author, initials = rng.choice((("Ann Author", "AA"), ("Bo Reviewer", "BR"), ("Cy", "")))
    return Comment(author, initials, words(rng, rng.randint(3, 10)))


def _new_note_id(document: WordDocument, kind: str) -> int:
    # Ids 0 and -1 are the separators; Word gives a new note the next free id.
    notes = document.footnotes if kind == "footnote" else document.endnotes
    return max(notes, default=0) + 1


def _new_comment_id(document: WordDocument) -> int:
    return max(document.comments, default=-1) + 1


# Rendering


def _text_runs(text: str) -> str:
    """A run's content: w:t pieces with w:tab and w:br where the text has tabs and line breaks."""
    pieces: list[str] = []
    for chunk in re.split(r"([\t\n])", text):
        if chunk == "\t":
            pieces.append("<w:tab/>")
        elif chunk == "\n":
            pieces.append("<w:br/>")
        elif chunk:
            preserve = ' xml:space="preserve"' if chunk != chunk.strip() else ""
            pieces.append(f"<w:t{preserve}>{escape(chunk)}</w:t>")
    return "".join(pieces)


def _run(text: str, rsid: str, properties: str = "") -> str:
    rpr = f"<w:rPr>{properties}</w:rPr>" if properties else ""
    return f'<w:r w:rsidR="{rsid}">{rpr}{_text_runs(text)}</w:r>'


def _span_xml(span: Span) -> str:
    properties = ""
    if span.strong:
        properties += '<w:rStyle w:val="Strong"/>'
    if span.bold:
        properties += "<w:b/><w:bCs/>"
    if span.italic:
        properties += "<w:i/><w:iCs/>"
    if span.underline:
        properties += '<w:u w:val="single"/>'
    run = _run(span.text, span.rsid, properties)
    if span.misspelt:
        return f'<w:proofErr w:type="spellStart"/>{run}<w:proofErr w:type="spellEnd"/>'
    return run


def _inline_xml(inline: Inline) -> str:
    if isinstance(inline, Span):
        return _span_xml(inline)
    if isinstance(inline, NoteReference):
        style = "FootnoteReference" if inline.kind == "footnote" else "EndnoteReference"
        return (
            f'<w:r w:rsidR="{inline.rsid}"><w:rPr><w:rStyle w:val="{style}"/></w:rPr>'
            f'<w:{inline.kind}Reference w:id="{inline.note}"/></w:r>'
        )
    if isinstance(inline, CommentAnchor):
        return (
            f'<w:commentRangeStart w:id="{inline.comment}"/>{_run(inline.text, inline.rsid)}'
            f'<w:commentRangeEnd w:id="{inline.comment}"/><w:r w:rsidR="{inline.rsid}"><w:rPr>'
            f'<w:rStyle w:val="CommentReference"/></w:rPr><w:commentReference w:id="{inline.comment}"/></w:r>'
        )
    if isinstance(inline, Link):
        target = (
            f'r:id="{_relationship_id(inline.uid)}"'
            if inline.url is not None
            else f"w:anchor={quoteattr(inline.anchor)}"
        )
        run = _run(inline.text, inline.rsid, '<w:rStyle w:val="Hyperlink"/>')
        return f'<w:hyperlink {target} w:history="1">{run}</w:hyperlink>'
    start = f'<w:bookmarkStart w:id="{inline.id}" w:name={quoteattr(inline.name)}/>'
    return start if inline.open else f'{start}<w:bookmarkEnd w:id="{inline.id}"/>'


def _section_xml(section: Section) -> str:
    references = ""
    if section.header is not None:
        references += f'<w:headerReference w:type="default" r:id="{_relationship_id(section.header)}"/>'
    if section.footer is not None:
        references += f'<w:footerReference w:type="default" r:id="{_relationship_id(section.footer)}"/>'
    size = (
        '<w:pgSz w:w="15840" w:h="12240" w:orient="landscape"/>'
        if section.landscape
        else ('<w:pgSz w:w="12240" w:h="15840"/>')
    )
    return (
        f'<w:sectPr w:rsidR="{section.rsid}" w:rsidSect="{section.rsid}">{references}{size}'
        '<w:pgMar w:top="1440" w:right="1440" w:bottom="1440" w:left="1440" w:header="720"'
        ' w:footer="720" w:gutter="0"/><w:cols w:space="720"/><w:docGrid w:linePitch="360"/></w:sectPr>'
    )


def _ids(uid: int, content: str) -> str:
    # w14:paraId stays with a paragraph; w14:textId changes with its text. Both below 0x80000000.
    para_id = (uid * 2654435761) & 0x7FFFFFFF
    text_id = zlib.crc32(content.encode()) & 0x7FFFFFFF
    return f'w14:paraId="{para_id:08X}" w14:textId="{text_id:08X}"'


def _paragraph_xml(paragraph: Paragraph) -> str:
    properties = ""
    if paragraph.style is not None:
        properties += f'<w:pStyle w:val="{paragraph.style}"/>'
    if paragraph.list_item is not None:
        num_id, level = paragraph.list_item
        properties += f'<w:numPr><w:ilvl w:val="{level}"/><w:numId w:val="{num_id}"/></w:numPr>'
    if paragraph.alignment is not None:
        properties += f'<w:jc w:val="{paragraph.alignment}"/>'
    if paragraph.section is not None:
        properties += _section_xml(paragraph.section)
    content = "".join(_inline_xml(inline) for inline in paragraph.inlines)
    attributes = (
        f'{_ids(paragraph.uid, content)} w:rsidR="{paragraph.rsid}" w:rsidRDefault="{paragraph.rsid}"'
    )
    if not properties and not content:
        return f"<w:p {attributes}/>"
    if properties:
        attributes += f' w:rsidP="{paragraph.rsid}"'
        content = f"<w:pPr>{properties}</w:pPr>{content}"
    return f"<w:p {attributes}>{content}</w:p>"


def _table_xml(table: Table) -> str:
    width = 9016 // table.columns
    grid = "".join(f'<w:gridCol w:w="{width}"/>' for _ in range(table.columns))
    rows = []
    for number, row in enumerate(table.rows):
        cells = []
        for column, cell in enumerate(row):
            properties = f'<w:tcW w:w="{width * cell.span}" w:type="dxa"/>'
            if cell.span > 1:
                properties += f'<w:gridSpan w:val="{cell.span}"/>'
            if cell.merge == "restart":
                properties += '<w:vMerge w:val="restart"/>'
            elif cell.merge == "continue":
                properties += "<w:vMerge/>"
            inner = Paragraph(
                table.uid * 1000 + number * 10 + column, cell.rsid, (Span(cell.text, cell.rsid),)
            )
            if not cell.text:
                inner = dataclasses.replace(inner, inlines=())
            cells.append(f"<w:tc><w:tcPr>{properties}</w:tcPr>{_paragraph_xml(inner)}</w:tc>")
        row_ids = _ids(table.uid * 1000 + number, "")
        rows.append(f'<w:tr w:rsidR="{table.rsid}" {row_ids}>{"".join(cells)}</w:tr>')
    return (
        '<w:tbl><w:tblPr><w:tblStyle w:val="TableGrid"/><w:tblW w:w="0" w:type="auto"/>'
        '<w:tblLook w:val="04A0" w:firstRow="1" w:lastRow="0" w:firstColumn="1" w:lastColumn="0"'
        f' w:noHBand="0" w:noVBand="1"/></w:tblPr><w:tblGrid>{grid}</w:tblGrid>{"".join(rows)}</w:tbl>'
    )


def block_xml(block: Block) -> str:
    """One top-level body block as Word writes it."""
    if isinstance(block, Paragraph):
        return _paragraph_xml(block)
    if isinstance(block, Table):
        return _table_xml(block)
    return f'<w:bookmarkEnd w:id="{block.id}"/>'


def _document_xml(document: WordDocument) -> str:
    body = "".join(block_xml(block) for block in document.blocks)
    section = _section_xml(document.final_section)
    return f"<w:document{_ROOT_NAMESPACES}><w:body>{body}{section}</w:body></w:document>"


def _note_paragraph(kind: str, note: int, text: str) -> str:
    style = "FootnoteText" if kind == "footnote" else "EndnoteText"
    reference = "FootnoteReference" if kind == "footnote" else "EndnoteReference"
    content = (
        f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr><w:r><w:rPr><w:rStyle w:val="{reference}"/></w:rPr>'
        f"<w:{kind}Ref/></w:r>{_run(' ' + text, '00A11B2C')}"
    )
    return (
        f'<w:p {_ids(note + 7_000_000, content)} w:rsidR="00A11B2C" w:rsidRDefault="00A11B2C">{content}</w:p>'
    )


def _notes_xml(kind: str, notes: dict[int, str]) -> str:
    separator = (
        '<w:p w:rsidR="00A11B2C" w:rsidRDefault="00A11B2C" w:rsidP="00A11B2C"><w:pPr><w:spacing w:after="0"'
        ' w:line="240" w:lineRule="auto"/></w:pPr><w:r><w:{}/></w:r></w:p>'
    )
    own = "".join(
        f'<w:{kind} w:id="{note}">{_note_paragraph(kind, note, text)}</w:{kind}>'
        for note, text in notes.items()
    )
    return (
        f"<w:{kind}s{_ROOT_NAMESPACES}>"
        f'<w:{kind} w:type="separator" w:id="-1">{separator.format("separator")}</w:{kind}>'
        f'<w:{kind} w:type="continuationSeparator" w:id="0">{separator.format("continuationSeparator")}'
        f"</w:{kind}>{own}</w:{kind}s>"
    )


def _comments_xml(comments: dict[int, Comment]) -> str:
    own = []
    for comment_id, comment in comments.items():
        content = (
            '<w:pPr><w:pStyle w:val="CommentText"/></w:pPr><w:r><w:rPr><w:rStyle w:val="CommentReference"/>'
            f"</w:rPr><w:annotationRef/></w:r>{_run(comment.text, '00C0FFEE')}"
        )
        own.append(
            f'<w:comment w:id="{comment_id}" w:author={quoteattr(comment.author)}'
            f' w:date="2024-03-0{comment_id % 9 + 1}T10:{comment_id % 60:02d}:00Z"'
            f" w:initials={quoteattr(comment.initials)}>"
            f'<w:p {_ids(comment_id + 9_000_000, content)} w:rsidR="00C0FFEE" w:rsidRDefault="00C0FFEE">'
            f"{content}</w:p></w:comment>"
        )
    return f"<w:comments{_ROOT_NAMESPACES}>{''.join(own)}</w:comments>"


def _header_xml(kind: str, uid: int, text: str) -> str:
    element = "hdr" if kind == "header" else "ftr"
    style = "Header" if kind == "header" else "Footer"
    content = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>{_run(text, "00D1E2F3")}'
    paragraph = f'<w:p {_ids(uid, content)} w:rsidR="00D1E2F3" w:rsidRDefault="00D1E2F3">{content}</w:p>'
    return f"<w:{element}{_ROOT_NAMESPACES}>{paragraph}</w:{element}>"


def _style_xml(style_id: str, changes: dict[tuple[str, str], str]) -> str:
    if style_id in CHARACTER_STYLES:
        name = changes.get((style_id, "name"), CHARACTER_STYLES[style_id])
        default = ' w:default="1"' if style_id == "DefaultParagraphFont" else ""
        properties = "<w:rPr><w:b/><w:bCs/></w:rPr>" if style_id == "Strong" else ""
        if style_id == "Hyperlink":
            properties = (
                '<w:rPr><w:color w:val="0563C1" w:themeColor="hyperlink"/><w:u w:val="single"/></w:rPr>'
            )
        return (
            f'<w:style w:type="character"{default} w:styleId="{style_id}"><w:name w:val={quoteattr(name)}/>'
            f'<w:uiPriority w:val="1"/>{properties}</w:style>'
        )
    name, based_on = PARAGRAPH_STYLES[style_id]
    name = changes.get((style_id, "name"), name)
    default = ' w:default="1"' if style_id == "Normal" else ""
    inherits = f'<w:basedOn w:val="{based_on}"/><w:next w:val="Normal"/>' if based_on else ""
    paragraph = ""
    if style_id.startswith("Heading"):
        outline = int(style_id[-1]) - 1
        paragraph += (
            '<w:keepNext/><w:keepLines/><w:spacing w:before="240" w:after="0"/>'
            f'<w:outlineLvl w:val="{outline}"/>'
        )
    if (style_id, "jc") in changes:
        paragraph += f'<w:jc w:val="{changes[(style_id, "jc")]}"/>'
    color = changes.get((style_id, "color"), "2F5496" if style_id.startswith("Heading") else None)
    properties = f"<w:pPr>{paragraph}</w:pPr>" if paragraph else ""
    if color:
        properties += f'<w:rPr><w:color w:val="{color}"/></w:rPr>'
    return (
        f'<w:style w:type="paragraph"{default} w:styleId="{style_id}"><w:name w:val={quoteattr(name)}/>'
        f"{inherits}<w:qFormat/>{properties}</w:style>"
    )


def _styles_xml(document: WordDocument) -> str:
    latent = "".join(
        f'<w:lsdException w:name="{name}" w:uiPriority="9" w:qFormat="1"/>'
        for name in ("heading 1", "heading 2", "heading 3", "Title", "Quote", "Strong")
    )
    styles = "".join(
        _style_xml(style_id, document.style_changes) for style_id in (*PARAGRAPH_STYLES, *CHARACTER_STYLES)
    )
    return (
        f"<w:styles{_SHORT_NAMESPACES}><w:docDefaults><w:rPrDefault><w:rPr>"
        '<w:rFonts w:asciiTheme="minorHAnsi" w:eastAsiaTheme="minorHAnsi" w:hAnsiTheme="minorHAnsi"'
        ' w:cstheme="minorBidi"/><w:sz w:val="22"/><w:szCs w:val="22"/>'
        '<w:lang w:val="en-US" w:eastAsia="en-US" w:bidi="ar-SA"/></w:rPr></w:rPrDefault>'
        '<w:pPrDefault><w:pPr><w:spacing w:after="160" w:line="259" w:lineRule="auto"/></w:pPr>'
        '</w:pPrDefault></w:docDefaults><w:latentStyles w:defLockedState="0" w:defUIPriority="99"'
        ' w:defSemiHidden="0" w:defUnhideWhenUsed="0" w:defQFormat="0" w:count="376">'
        f"{latent}</w:latentStyles>{styles}"
        '<w:style w:type="table" w:default="1" w:styleId="TableNormal"><w:name w:val="Normal Table"/>'
        '<w:tblPr><w:tblInd w:w="0" w:type="dxa"/><w:tblCellMar><w:top w:w="0" w:type="dxa"/>'
        '<w:left w:w="108" w:type="dxa"/><w:bottom w:w="0" w:type="dxa"/><w:right w:w="108" w:type="dxa"/>'
        '</w:tblCellMar></w:tblPr></w:style><w:style w:type="table" w:styleId="TableGrid">'
        '<w:name w:val="Table Grid"/><w:basedOn w:val="TableNormal"/><w:tblPr><w:tblBorders>'
        '<w:top w:val="single" w:sz="4" w:space="0" w:color="auto"/></w:tblBorders></w:tblPr></w:style>'
        '<w:style w:type="numbering" w:default="1" w:styleId="NoList"><w:name w:val="No List"/></w:style>'
        "</w:styles>"
    )


def _level_xml(level: int, number_format: str) -> str:
    if number_format == "bullet":
        text, font = _BULLET_TEXT[level % 3], _BULLET_FONTS[level % 3]
        run = f'<w:rPr><w:rFonts w:ascii="{font}" w:hAnsi="{font}" w:hint="default"/></w:rPr>'
    else:
        text, run = f"%{level + 1}.", ""
    return (
        f'<w:lvl w:ilvl="{level}" w:tplc="0409000{level + 1}"><w:start w:val="1"/>'
        f'<w:numFmt w:val="{number_format}"/><w:lvlText w:val={quoteattr(text)}/><w:lvlJc w:val="left"/>'
        f'<w:pPr><w:ind w:left="{720 * (level + 1)}" w:hanging="360"/></w:pPr>{run}</w:lvl>'
    )


def _numbering_xml(document: WordDocument) -> str:
    abstracts = "".join(
        f'<w:abstractNum w:abstractNumId="{abstract}" w15:restartNumberingAfterBreak="0">'
        f'<w:nsid w:val="{0x1A2B3C00 + abstract:08X}"/><w:multiLevelType w:val="hybridMultilevel"/>'
        f'<w:tmpl w:val="{0x0409000F + abstract:08X}"/>'
        + "".join(_level_xml(level, number_format) for level, number_format in enumerate(formats))
        + "</w:abstractNum>"
        for abstract, formats in document.numbering.items()
    )
    nums = "".join(
        f'<w:num w:numId="{num_id}"><w:abstractNumId w:val="{abstract}"/>'
        + (
            f'<w:lvlOverride w:ilvl="0"><w:startOverride w:val="{restart}"/></w:lvlOverride>'
            if restart is not None
            else ""
        )
        + "</w:num>"
        for num_id, (abstract, restart) in document.nums.items()
    )
    return f"<w:numbering{_ROOT_NAMESPACES}>{abstracts}{nums}</w:numbering>"


def _settings_xml(document: WordDocument) -> str:
    rsids = "".join(f'<w:rsid w:val="{rsid}"/>' for rsid in sorted(set(document.rsids)))
    return (
        f"<w:settings{_SHORT_NAMESPACES}>"
        '<w:zoom w:percent="100"/><w:proofState w:spelling="clean" w:grammar="clean"/>'
        '<w:defaultTabStop w:val="720"/><w:characterSpacingControl w:val="doNotCompress"/>'
        '<w:footnotePr><w:footnote w:id="-1"/><w:footnote w:id="0"/></w:footnotePr>'
        '<w:endnotePr><w:endnote w:id="-1"/><w:endnote w:id="0"/></w:endnotePr><w:compat>'
        '<w:compatSetting w:name="compatibilityMode" w:uri="http://schemas.microsoft.com/office/word"'
        ' w:val="15"/>'
        f'</w:compat><w:rsids><w:rsidRoot w:val="{document.rsids[0]}"/>{rsids}</w:rsids>'
        '<w:themeFontLang w:val="en-US"/><w:decimalSymbol w:val="."/><w:listSeparator w:val=","/>'
        '<w15:docId w15:val="{D0161BAC-3FCF-462D-B2A2-5D0C7DF47D8B}"/></w:settings>'
    )


_FONT_TABLE = (
    f"<w:fonts{_SHORT_NAMESPACES}>"
    '<w:font w:name="Calibri"><w:panose1 w:val="020F0502020204030204"/><w:charset w:val="00"/>'
    '<w:family w:val="swiss"/><w:pitch w:val="variable"/></w:font>'
    '<w:font w:name="Symbol"><w:panose1 w:val="05050102010706020507"/><w:charset w:val="02"/>'
    '<w:family w:val="roman"/><w:pitch w:val="variable"/></w:font></w:fonts>'
)


def _relationship_id(uid: int) -> str:
    # Header, footer and hyperlink relationships are named after the model's uid: stable across edits.
    return f"rId{100 + uid}"


def document_parts(document: WordDocument) -> list[tuple[str, str, str]]:
    """(part name, content type, XML) of every part, in the order Word writes them."""
    relationships = [
        ("rId1", "styles", "styles.xml", False),
        ("rId2", "settings", "settings.xml", False),
        ("rId3", "numbering", "numbering.xml", False),
        ("rId4", "footnotes", "footnotes.xml", False),
        ("rId5", "endnotes", "endnotes.xml", False),
        ("rId6", "fontTable", "fontTable.xml", False),
    ]
    parts = [
        ("/word/document.xml", _TYPES + "document.main+xml", _document_xml(document)),
        ("/word/styles.xml", _TYPES + "styles+xml", _styles_xml(document)),
        ("/word/settings.xml", _TYPES + "settings+xml", _settings_xml(document)),
        ("/word/numbering.xml", _TYPES + "numbering+xml", _numbering_xml(document)),
        ("/word/footnotes.xml", _TYPES + "footnotes+xml", _notes_xml("footnote", document.footnotes)),
        ("/word/endnotes.xml", _TYPES + "endnotes+xml", _notes_xml("endnote", document.endnotes)),
        ("/word/fontTable.xml", _TYPES + "fontTable+xml", _FONT_TABLE),
    ]
    if document.comments:
        relationships.append(("rId7", "comments", "comments.xml", False))
        parts.append(("/word/comments.xml", _TYPES + "comments+xml", _comments_xml(document.comments)))
    for kind, texts in (("header", document.headers), ("footer", document.footers)):
        for uid, text in texts.items():
            relationships.append((_relationship_id(uid), kind, f"{kind}{uid}.xml", False))
            parts.append((f"/word/{kind}{uid}.xml", _TYPES + f"{kind}+xml", _header_xml(kind, uid, text)))
    for uid, url in document.links.items():
        relationships.append((_relationship_id(uid), "hyperlink", url, True))
    rels = "".join(
        f'<Relationship Id="{rid}" Type="{_RELATIONSHIP_TYPES}{kind}" Target={quoteattr(target)}'
        + (' TargetMode="External"' if external else "")
        + "/>"
        for rid, kind, target, external in relationships
    )
    package_rels = (
        f'<Relationships xmlns="{_RELATIONSHIPS}"><Relationship Id="rId1"'
        f' Type="{_RELATIONSHIP_TYPES}officeDocument" Target="word/document.xml"/></Relationships>'
    )
    rels_type = "application/vnd.openxmlformats-package.relationships+xml"
    return [
        ("/_rels/.rels", rels_type, package_rels),
        (
            "/word/_rels/document.xml.rels",
            rels_type,
            f'<Relationships xmlns="{_RELATIONSHIPS}">{rels}</Relationships>',
        ),
        *parts,
    ]


def changed_parts(before: WordDocument, after: WordDocument) -> set[str]:
    """Names of the parts whose XML differs between two versions (or that only one has)."""
    old = {name: xml for name, _, xml in document_parts(before)}
    new = {name: xml for name, _, xml in document_parts(after)}
    return {name for name in old.keys() | new.keys() if old.get(name) != new.get(name)}


def render_flat_opc(document: WordDocument) -> str:
    """Flat OPC text, as Word.Body.getOoxml() returns it."""
    parts = []
    for name, content_type, xml in document_parts(document):
        padding = {
            "/_rels/.rels": ' pkg:padding="512"',
            "/word/_rels/document.xml.rels": ' pkg:padding="256"',
        }
        parts.append(
            f'<pkg:part pkg:name="{name}" pkg:contentType="{content_type}"{padding.get(name, "")}>'
            f"<pkg:xmlData>{xml}</pkg:xmlData></pkg:part>"
        )
    return (
        '<?xml version="1.0" standalone="yes"?>\n<?mso-application progid="Word.Document"?>\n'
        f'<pkg:package xmlns:pkg="{_PACKAGE}">{"".join(parts)}</pkg:package>'
    )


def render_docx(document: WordDocument) -> bytes:
    """.docx bytes with the same parts; deflated, dated 1980 so the same document gives the same bytes."""
    parts = document_parts(document)
    overrides = "".join(
        f'<Override PartName="{name}" ContentType="{content_type}"/>'
        for name, content_type, _ in parts
        if not name.endswith(".rels")
    )
    content_types = (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        f'<Default Extension="xml" ContentType="application/xml"/>{overrides}</Types>'
    )
    entries = [("[Content_Types].xml", content_types)] + [(name[1:], xml) for name, _, xml in parts]
    return zip_entries((name, (_DECLARATION + xml).encode()) for name, xml in entries)


def zip_entries(entries) -> bytes:
    """A zip of (name, bytes) entries, deflated, with fixed dates: the same entries give the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


# Edits


@dataclass(frozen=True)
class Edit:
    """One change a writer makes: `at` and `to` pick places (modulo what there is), `seed` new text."""

    kind: str
    at: int = 0
    to: int = 0
    seed: int = 0


def _indexes(document: WordDocument, wanted) -> list[int]:
    return [index for index, block in enumerate(document.blocks) if wanted(block)]


def text_paragraph_indexes(document: WordDocument) -> list[int]:
    """Indexes of paragraphs with text that are not list items."""
    return _indexes(
        document,
        lambda block: (
            isinstance(block, Paragraph)
            and block.list_item is None
            and any(isinstance(inline, Span) for inline in block.inlines)
        ),
    )


def list_item_indexes(document: WordDocument) -> list[int]:
    return _indexes(document, lambda block: isinstance(block, Paragraph) and block.list_item is not None)


def note_reference_indexes(document: WordDocument, kind: str = "footnote") -> list[int]:
    """Indexes of paragraphs holding a reference to a note of this kind."""
    return _indexes(
        document,
        lambda block: (
            isinstance(block, Paragraph)
            and any(isinstance(inline, NoteReference) and inline.kind == kind for inline in block.inlines)
        ),
    )


def comment_indexes(document: WordDocument) -> list[int]:
    """Indexes of paragraphs holding a comment."""
    return _indexes(
        document,
        lambda block: (
            isinstance(block, Paragraph)
            and any(isinstance(inline, CommentAnchor) for inline in block.inlines)
        ),
    )


def with_span_text(document: WordDocument, index: int, text: str, before_note: bool = False) -> WordDocument:
    """The paragraph at `index` with one span's text replaced (the one before its first note reference)."""
    edited = document.copy()
    paragraph = edited.blocks[index]
    inlines = list(paragraph.inlines)
    spans = [number for number, inline in enumerate(inlines) if isinstance(inline, Span)]
    chosen = spans[0]
    if before_note:
        note = next(number for number, inline in enumerate(inlines) if isinstance(inline, NoteReference))
        chosen = max((number for number in spans if number < note), default=chosen)
    inlines[chosen] = dataclasses.replace(inlines[chosen], text=text, rsid=edited.rsid, misspelt=False)
    edited.blocks[index] = dataclasses.replace(paragraph, inlines=tuple(inlines))
    return edited


def with_paragraph_inserted(document: WordDocument, index: int, text: str, **properties) -> WordDocument:
    """A new paragraph of this text inserted before block `index`."""
    edited = document.copy()
    paragraph = Paragraph(edited.new_uid(), edited.rsid, (Span(text, edited.rsid),), **properties)
    edited.blocks.insert(index, paragraph)
    return edited


def with_footnote_added(document: WordDocument, index: int, text: str) -> WordDocument:
    """A new footnote referenced at the end of the paragraph at `index` (body and footnotes.xml change)."""
    edited = document.copy()
    note = _new_note_id(edited, "footnote")
    edited.footnotes[note] = text
    paragraph = edited.blocks[index]
    reference = NoteReference("footnote", note, edited.rsid)
    edited.blocks[index] = dataclasses.replace(paragraph, inlines=(*paragraph.inlines, reference))
    return edited


def with_style_changed(document: WordDocument, change: tuple[str, str, str]) -> WordDocument:
    """styles.xml with one of STYLE_CHANGES applied, or taken back if it already was."""
    edited = document.copy()
    style_id, what, value = change
    if edited.style_changes.get((style_id, what)) == value:
        del edited.style_changes[(style_id, what)]
    else:
        edited.style_changes[(style_id, what)] = value
    return edited


def with_numbering_changed(document: WordDocument, abstract: int, level: int) -> WordDocument:
    """numbering.xml with one level of an abstract numbering turned from bullets to numbers or back."""
    edited = document.copy()
    formats = list(edited.numbering[abstract])
    formats[level] = "decimal" if formats[level] == "bullet" else "bullet"
    edited.numbering[abstract] = tuple(formats)
    return edited


def _pick(candidates: list[int], at: int) -> int | None:
    return candidates[at % len(candidates)] if candidates else None


def _edit_text(document: WordDocument, edit: Edit, rng: random.Random) -> WordDocument:
    index = _pick(text_paragraph_indexes(document), edit.at)
    if index is None:
        return document
    return with_span_text(document, index, words(rng, rng.randint(1, 20)) + " ")


def _format_text(document: WordDocument, edit: Edit, rng: random.Random) -> WordDocument:
    index = _pick(text_paragraph_indexes(document), edit.at)
    if index is None:
        return document
    edited = document.copy()
    paragraph = edited.blocks[index]
    spans = [number for number, inline in enumerate(paragraph.inlines) if isinstance(inline, Span)]
    chosen = spans[edit.to % len(spans)]
    inlines = list(paragraph.inlines)
    span = inlines[chosen]
    what = rng.choice(("bold", "italic", "underline", "strong", "misspelt"))
    inlines[chosen] = dataclasses.replace(span, **{what: not getattr(span, what)})
    edited.blocks[index] = dataclasses.replace(paragraph, inlines=tuple(inlines))
    return edited


def _insert_paragraph(document: WordDocument, edit: Edit, rng: random.Random) -> WordDocument:
    index = edit.at % (len(document.blocks) + 1)
    style = rng.choice((None, None, None, "Heading2", "Heading3", "Quote"))
    return with_paragraph_inserted(document, index, words(rng, rng.randint(3, 40)), style=style)


def _delete_block(document: WordDocument, edit: Edit, rng: random.Random) -> WordDocument:
    if not document.blocks:
        return document
    edited = document.copy()
    del edited.blocks[edit.at % len(edited.blocks)]
    return edited


def _move_block(document: WordDocument, edit: Edit, rng: random.Random) -> WordDocument:
    if not document.blocks:
        return document
    edited = document.copy()
    block = edited.blocks.pop(edit.at % len(edited.blocks))
    edited.blocks.insert(edit.to % (len(edited.blocks) + 1), block)
    return edited


def _edit_list_item(document: WordDocument, edit: Edit, rng: random.Random) -> WordDocument:
    index = _pick(list_item_indexes(document), edit.at)
    if index is None:
        return document
    edited = document.copy()
    item = edited.blocks[index]
    edited.blocks[index] = dataclasses.replace(
        item, inlines=(Span(words(rng, rng.randint(1, 12)), edited.rsid),)
    )
    return edited


def _list_level(document: WordDocument, edit: Edit, rng: random.Random) -> WordDocument:
    index = _pick(list_item_indexes(document), edit.at)
    if index is None:
        return document
    edited = document.copy()
    item = edited.blocks[index]
    edited.blocks[index] = dataclasses.replace(item, list_item=(item.list_item[0], edit.to % 4))
    return edited


def _list_type(document: WordDocument, edit: Edit, rng: random.Random) -> WordDocument:
    """A list item moved to another list (bulleted, numbered, restarted), or into or out of a list."""
    candidates = [
        index
        for index, block in enumerate(document.blocks)
        if isinstance(block, Paragraph) and block.section is None and block.style in (None, "ListParagraph")
    ]
    index = _pick(candidates, edit.at)
    if index is None:
        return document
    edited = document.copy()
    paragraph = edited.blocks[index]
    choice = edit.to % (len(edited.nums) + 1)
    if choice == len(edited.nums):
        edited.blocks[index] = dataclasses.replace(paragraph, list_item=None, style=None)
    else:
        num_id = sorted(edited.nums)[choice]
        level = paragraph.list_item[1] if paragraph.list_item else 0
        edited.blocks[index] = dataclasses.replace(
            paragraph, list_item=(num_id, level), style="ListParagraph"
        )
    return edited


def _insert_list_item(document: WordDocument, edit: Edit, rng: random.Random) -> WordDocument:
    index = _pick(list_item_indexes(document), edit.at)
    if index is None:
        return document
    item = document.blocks[index]
    return with_paragraph_inserted(
        document, index + 1, words(rng, rng.randint(2, 10)), style="ListParagraph", list_item=item.list_item
    )


def _edit_cell(document: WordDocument, edit: Edit, rng: random.Random) -> WordDocument:
    index = _pick(_indexes(document, lambda block: isinstance(block, Table)), edit.at)
    if index is None:
        return document
    edited = document.copy()
    table = edited.blocks[index]
    cells = [
        (row, column)
        for row, cells in enumerate(table.rows)
        for column, cell in enumerate(cells)
        if cell.merge != "continue"
    ]
    row, column = cells[edit.to % len(cells)]
    rows = [list(cells) for cells in table.rows]
    rows[row][column] = dataclasses.replace(
        rows[row][column], text=words(rng, rng.randint(1, 6)), rsid=edited.rsid
    )
    edited.blocks[index] = dataclasses.replace(table, rows=tuple(tuple(cells) for cells in rows))
    return edited


def _add_table(document: WordDocument, edit: Edit, rng: random.Random) -> WordDocument:
    edited = document.copy()
    edited.blocks.insert(edit.at % (len(edited.blocks) + 1), _table(edited, rng))
    return edited


def _add_note(kind: str):
    def add(document: WordDocument, edit: Edit, rng: random.Random) -> WordDocument:
        index = _pick(text_paragraph_indexes(document), edit.at)
        if index is None:
            return document
        edited = document.copy()
        note = _new_note_id(edited, kind)
        (edited.footnotes if kind == "footnote" else edited.endnotes)[note] = words(rng, rng.randint(3, 12))
        paragraph = edited.blocks[index]
        inlines = list(paragraph.inlines)
        inlines.insert(edit.to % (len(inlines) + 1), NoteReference(kind, note, edited.rsid))
        edited.blocks[index] = dataclasses.replace(paragraph, inlines=tuple(inlines))
        return edited

    return add


def _remove_inline(wanted):
    """An edit that deletes one inline of this sort from the body (Word deletes its note or comment too)."""

    def remove(document: WordDocument, edit: Edit, rng: random.Random) -> WordDocument:
        places = [
            (index, number)
            for index, block in enumerate(document.blocks)
            if isinstance(block, Paragraph)
            for number, inline in enumerate(block.inlines)
            if wanted(inline)
        ]
        if not places:
            return document
        index, number = places[edit.at % len(places)]
        edited = document.copy()
        paragraph = edited.blocks[index]
        edited.blocks[index] = dataclasses.replace(
            paragraph, inlines=paragraph.inlines[:number] + paragraph.inlines[number + 1 :]
        )
        return edited

    return remove


def _edit_note(kind: str):
    def edit_note(document: WordDocument, edit: Edit, rng: random.Random) -> WordDocument:
        notes = document.footnotes if kind == "footnote" else document.endnotes
        if not notes:
            return document
        edited = document.copy()
        own = edited.footnotes if kind == "footnote" else edited.endnotes
        own[sorted(notes)[edit.at % len(notes)]] = words(rng, rng.randint(2, 12))
        return edited

    return edit_note


def _add_comment(document: WordDocument, edit: Edit, rng: random.Random) -> WordDocument:
    index = _pick(text_paragraph_indexes(document), edit.at)
    if index is None:
        return document
    edited = document.copy()
    comment = _new_comment_id(edited)
    edited.comments[comment] = _comment(rng)
    paragraph = edited.blocks[index]
    inlines = list(paragraph.inlines)
    inlines.insert(edit.to % (len(inlines) + 1), CommentAnchor(comment, words(rng, 2), edited.rsid))
    edited.blocks[index] = dataclasses.replace(paragraph, inlines=tuple(inlines))
    return edited


def _add_link(document: WordDocument, edit: Edit, rng: random.Random) -> WordDocument:
    index = _pick(text_paragraph_indexes(document), edit.at)
    if index is None:
        return document
    edited = document.copy()
    link = edited.new_uid()
    edited.links[link] = f"https://example.com/page/{link}#{rng.randint(0, 9)}"
    paragraph = edited.blocks[index]
    inlines = (*paragraph.inlines, Link(link, words(rng, 2), edited.rsid, url=edited.links[link]))
    edited.blocks[index] = dataclasses.replace(paragraph, inlines=inlines)
    return edited


def _change_style(document: WordDocument, edit: Edit, rng: random.Random) -> WordDocument:
    return with_style_changed(document, STYLE_CHANGES[edit.at % len(STYLE_CHANGES)])


def _change_numbering(document: WordDocument, edit: Edit, rng: random.Random) -> WordDocument:
    if edit.to % 3 == 2:
        # The restarted list starts somewhere else.
        edited = document.copy()
        abstract, restart = edited.nums[3]
        edited.nums[3] = (abstract, None if restart == 5 else 5)
        return edited
    return with_numbering_changed(document, edit.at % len(document.numbering), edit.to % 3)


def _paragraph_style(document: WordDocument, edit: Edit, rng: random.Random) -> WordDocument:
    index = _pick(text_paragraph_indexes(document), edit.at)
    if index is None:
        return document
    edited = document.copy()
    style = (None, "Heading1", "Heading2", "Heading3", "Title", "Quote")[edit.to % 6]
    alignment = (None, "center", "right")[edit.seed % 3]
    edited.blocks[index] = dataclasses.replace(edited.blocks[index], style=style, alignment=alignment)
    return edited


def _add_section_break(document: WordDocument, edit: Edit, rng: random.Random) -> WordDocument:
    """A section break after a paragraph, its section with a header part of its own."""
    index = _pick(text_paragraph_indexes(document), edit.at)
    if index is None:
        return document
    edited = document.copy()
    header = edited.new_uid()
    edited.headers[header] = f"Section header {words(rng, 3)}"
    footer = None
    if edit.to % 2:
        footer = edited.new_uid()
        edited.footers[footer] = f"Section footer {words(rng, 2)}"
    section = Section(edited.rsid, header=header, footer=footer, landscape=edit.to % 3 == 0)
    edited.blocks[index] = dataclasses.replace(edited.blocks[index], section=section)
    return edited


def _new_editing_session(document: WordDocument, edit: Edit, rng: random.Random) -> WordDocument:
    """Word opened again: new text gets a new rsid, and settings.xml lists it."""
    edited = document.copy()
    edited.rsids.append(_rsid(rng))
    return edited


EDITS = {
    "edit_text": _edit_text,
    "format_text": _format_text,
    "insert_paragraph": _insert_paragraph,
    "delete_block": _delete_block,
    "move_block": _move_block,
    "edit_list_item": _edit_list_item,
    "list_level": _list_level,
    "list_type": _list_type,
    "insert_list_item": _insert_list_item,
    "edit_cell": _edit_cell,
    "add_table": _add_table,
    "add_footnote": _add_note("footnote"),
    "remove_footnote": _remove_inline(
        lambda inline: isinstance(inline, NoteReference) and inline.kind == "footnote"
    ),
    "edit_footnote": _edit_note("footnote"),
    "add_endnote": _add_note("endnote"),
    "remove_endnote": _remove_inline(
        lambda inline: isinstance(inline, NoteReference) and inline.kind == "endnote"
    ),
    "edit_endnote": _edit_note("endnote"),
    "add_comment": _add_comment,
    "remove_comment": _remove_inline(lambda inline: isinstance(inline, CommentAnchor)),
    "add_link": _add_link,
    "remove_link": _remove_inline(lambda inline: isinstance(inline, Link) and inline.url is not None),
    "paragraph_style": _paragraph_style,
    "change_style": _change_style,
    "change_numbering": _change_numbering,
    "add_section_break": _add_section_break,
    "new_editing_session": _new_editing_session,
}


def apply_edit(document: WordDocument, edit: Edit) -> WordDocument:
    """The document after this edit; notes, comments, links and headers no longer referred to are dropped."""
    edited = EDITS[edit.kind](document, edit, random.Random(edit.seed))
    return _without_orphans(edited) if edited is not document else document


def _without_orphans(document: WordDocument) -> WordDocument:
    """Word keeps a note, comment or header part only while the body refers to it."""
    inlines = [
        inline for block in document.blocks if isinstance(block, Paragraph) for inline in block.inlines
    ]
    footnotes = {
        inline.note for inline in inlines if isinstance(inline, NoteReference) and inline.kind == "footnote"
    }
    endnotes = {
        inline.note for inline in inlines if isinstance(inline, NoteReference) and inline.kind == "endnote"
    }
    comments = {inline.comment for inline in inlines if isinstance(inline, CommentAnchor)}
    links = {inline.uid for inline in inlines if isinstance(inline, Link)}
    sections = [block.section for block in document.blocks if isinstance(block, Paragraph) and block.section]
    sections.append(document.final_section)
    headers = {section.header for section in sections}
    footers = {section.footer for section in sections}
    document.footnotes = {key: value for key, value in document.footnotes.items() if key in footnotes}
    document.endnotes = {key: value for key, value in document.endnotes.items() if key in endnotes}
    document.comments = {key: value for key, value in document.comments.items() if key in comments}
    document.links = {key: value for key, value in document.links.items() if key in links}
    document.headers = {key: value for key, value in document.headers.items() if key in headers}
    document.footers = {key: value for key, value in document.footers.items() if key in footers}
    return document


def edits() -> st.SearchStrategy[Edit]:
    """One edit of any kind."""
    return st.builds(
        Edit,
        kind=st.sampled_from(sorted(EDITS)),
        at=st.integers(0, 10_000),
        to=st.integers(0, 10_000),
        seed=st.integers(0, 2**16),
    )


def edit_sequences(min_size: int = 20, max_size: int = 50) -> st.SearchStrategy[list[Edit]]:
    """A writer's session: a long sequence of edits."""
    return st.lists(edits(), min_size=min_size, max_size=max_size)


# Documents not made by the model

# A tag as Word writes one (quoted attribute values may hold ">"), a comment, or a processing instruction.
_TAG = re.compile(
    r"""<(/?)([^\s/>!?]+)(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*(/?)>|<!--.*?-->|<\?.*?\?>""", re.S
)


def body_blocks(document_xml: str) -> list[tuple[int, int, str]]:
    """(start, end, element name) of each top-level child of the w:body in a main document part's text."""
    blocks: list[tuple[int, int, str]] = []
    depth = 0
    body_depth = None
    start = 0
    for tag in _TAG.finditer(document_xml):
        closing, name, empty = tag.group(1), tag.group(2), tag.group(3)
        if name is None:
            continue
        if closing:
            depth -= 1
            if body_depth is not None and depth == body_depth:
                blocks.append((start, tag.end(), name))
            elif body_depth is not None and depth == body_depth - 1:
                return blocks
            continue
        depth += 1
        if body_depth is None:
            if name.endswith(":body") or name == "body":
                body_depth = depth
            elif empty:
                depth -= 1
            continue
        if depth == body_depth + 1:
            start = tag.start()
        if empty:
            depth -= 1
            if depth == body_depth:
                blocks.append((start, tag.end(), name))
    return blocks


def docx_document_part(docx: bytes) -> tuple[str, str]:
    """(entry name, text) of a .docx's main document part, named by its package relationships."""
    with zipfile.ZipFile(io.BytesIO(docx)) as archive:
        rels = archive.read("_rels/.rels").decode("utf-8")
        target = re.search(
            r'Type="[^"]*/officeDocument"[^>]*Target="/?([^"]+)"|Target="/?([^"]+)"[^>]*Type="[^"]*/officeDocument"',
            rels,
        )
        name = target.group(1) or target.group(2)
        return name, archive.read(name).decode("utf-8-sig")


def docx_with_document_part(docx: bytes, text: str) -> bytes:
    """The same .docx with its main document part replaced by this text."""
    name, _ = docx_document_part(docx)
    with zipfile.ZipFile(io.BytesIO(docx)) as archive:
        entries = [
            (entry.filename, text.encode("utf-8") if entry.filename == name else archive.read(entry.filename))
            for entry in archive.infolist()
        ]
    return zip_entries(entries)
