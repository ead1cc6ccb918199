"""How much of each corpus document reaches the HTML; writes docs/FIDELITY.md.

    .venv/bin/python -m bench.fidelity [--no-write]

For every valid corpus document: the share of the words Word shows (HOW_COUNTED below says
which) found in collab's HTML, where the missing ones come from, and which features readers
notice were found in the source and kept in the HTML.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import posixpath
import re
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import defusedxml.ElementTree as SafeET

from conversion import ConversionError, Limits, convert_payload
from conversion.flat_opc import flat_opc_to_docx

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
REPORT = ROOT / "docs" / "FIDELITY.md"
TARGET = 0.99
HTML_TO_WORD = "## HTML to Word"  # bench/round_trip.py's section of the report

# Element families by namespace (transitional and strict OOXML): WordprocessingML, OMML, markup compatibility.
_FAMILIES = {
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main": "w",
    "http://purl.oclc.org/ooxml/wordprocessingml/main": "w",
    "http://schemas.openxmlformats.org/officeDocument/2006/math": "m",
    "http://purl.oclc.org/ooxml/officeDocument/math": "m",
    "http://schemas.openxmlformats.org/markup-compatibility/2006": "mc",
}
# Text Word does not show: deletions (moveFrom is a move's deleted end) and field codes.
HIDDEN = {"del", "delText", "moveFrom", "instrText", "delInstrText"}
# Properties hold no shown text; features are read from their paragraph or run.
PROPERTIES = {"pPr", "rPr", "sdtPr"}
# What separates words inside a paragraph, as Word lays it out.
BREAKS = {"tab", "ptab", "br", "cr", "sym"}
OFF = {"0", "false", "off"}
_BLOCK_TAGS = (
    r"p|h[1-6]|li|td|th|tr|table|thead|tbody|ul|ol|br|div|blockquote|pre|dl|dt|dd|hr|img|header|footer"
)
_MATH = re.compile(r"<math\b.*?</math\s*>", re.DOTALL)
# Browsers show a MathML annotation's text nowhere: it is there for programs.
_ANNOTATION = re.compile(r"<(annotation(?:-xml)?)\b.*?</\1\s*>", re.DOTALL)
SOFT_HYPHEN = "\u00ad"

# Where visible words come from, in the order the HTML's words are given to them when
# the missing ones are attributed (see HOW_COUNTED).
BODY, TEXT_BOXES, FOOTNOTES, ENDNOTES, EQUATIONS = "body", "text boxes", "footnotes", "endnotes", "equations"
_RANK = {BODY: 0, TEXT_BOXES: 1, FOOTNOTES: 2, ENDNOTES: 3, EQUATIONS: 5}  # headers and footers: 4

# Notes on odd documents, and why any document stays under the target.
REASONS = {
    "poi-multiple-body.docx": "three w:body elements; Word and mammoth read only the first, counted here",
    "poi-large-bug59058.docx": "hidden text (w:vanish: Top of Form, Expand All...) is shown: mammoth"
    " reads no w:vanish",
}

FEATURES = (
    ("underline", "<u>"),
    ("strike", "<s>"),
    ("sup/sub", "<sup>|<sub>"),
    ("highlight", "<mark>"),
    ("alignment", 'class="align-'),
    ("cell merge", "colspan=|rowspan="),
    ("footnotes", 'id="doc-footnote-'),
    ("endnotes", 'id="doc-endnote-'),
    ("comments", 'id="doc-comment-'),
    ("insertions", None),
    ("deletions hidden", None),
    ("hidden text hidden", None),
    ("header", '<header class="doc-header[ "]'),
    ("footer", '<footer class="doc-footer[ "]'),
    ("images", '<img [^>]*src="data:image/'),
)


@dataclass
class Source:
    """What the source document holds, as Word shows it."""

    pieces: dict[str, list[str]] = field(default_factory=dict)
    references: dict[str, set[str]] = field(default_factory=lambda: {FOOTNOTES: set(), ENDNOTES: set()})
    features: set[str] = field(default_factory=set)
    inserted: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)
    pictures: int = 0

    def add(self, category: str, piece: str) -> None:
        self.pieces.setdefault(category, []).append(piece)

    def texts(self) -> dict[str, str]:
        """Each category's shown text, pieces joined (a word split over runs is whole again)."""
        return {category: " ".join("".join(pieces).split()) for category, pieces in self.pieces.items()}


@dataclass
class Styles:
    """What paragraph and character styles decide for the measure, resolved along basedOn."""

    alignments: dict[str, str] = field(default_factory=dict)
    hidden: dict[str, bool] = field(default_factory=dict)
    hidden_by_default: bool = False

    def run_hidden(self, run, paragraph_style: str | None) -> bool:
        """Whether a run is hidden text (w:vanish): its own, its character style's, its paragraph style's."""
        properties = child(run, "rPr")
        own = switched_on(child(properties, "vanish"))
        if own is not None:
            return own
        for style in (attribute(child(properties, "rStyle"), "val"), paragraph_style):
            if style in self.hidden:
                return self.hidden[style]
        return self.hidden_by_default


def local(tag: str) -> tuple[str, str]:
    """(family, local name) of an element's tag: family "w", "m" (OMML), "mc", or its namespace."""
    namespace, _, name = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    return _FAMILIES.get(namespace, namespace), name


def attribute(element, name: str) -> str | None:
    for key, value in element.attrib.items() if element is not None else ():
        if key.rpartition("}")[2] == name:
            return value
    return None


def child(element, name: str):
    """The first WordprocessingML child of element (which may be None) with this local name, or None."""
    return next(
        (node for node in (element if element is not None else ()) if local(node.tag) == ("w", name)), None
    )


def switched_on(element) -> bool | None:
    """An on/off property's value: None when it is absent, on unless w:val says off."""
    return None if element is None else attribute(element, "val") not in OFF


def holds_text(node) -> bool:
    return any(local(n.tag)[1] == "t" and (n.text or "").strip() for n in node.iter())


def shown_branch(alternate):
    """The branch of an mc:AlternateContent whose text is counted: its Choice, as Word shows it,
    unless only its Fallback holds text."""
    choice = next((node for node in alternate if local(node.tag) == ("mc", "Choice")), None)
    fallback = next((node for node in alternate if local(node.tag) == ("mc", "Fallback")), None)
    if choice is not None and (holds_text(choice) or fallback is None or not holds_text(fallback)):
        return choice
    return fallback


class ShownText:
    """One part's shown text, read in document order into its Source, by category."""

    def __init__(self, source: Source, styles: Styles, category: str):
        self.source = source
        self.styles = styles
        self.category = category
        # Each open complex field: True once its result (after fldChar "separate") began.
        self.fields: list[bool] = []
        self.paragraph_style: str | None = None

    def read(self, element) -> None:
        self.walk(element, self.category, shown=True, inserted=False)

    def walk(self, node, category: str, shown: bool, inserted: bool) -> None:
        family, name = local(node.tag)
        if family == "mc" and name == "AlternateContent":
            branch = shown_branch(node)
            for part in branch if branch is not None else ():
                self.walk(part, category, shown, inserted)
            return
        if family == "m":
            self.walk_math(node, name, category, shown, inserted)
            return
        if family != "w":
            if name == "blip":  # a:blip is DrawingML's picture reference
                note_features(node, name, self.source, self.styles)
            self.walk_children(node, category, shown, inserted)
            return
        if name in HIDDEN:
            if name == "del":
                self.source.deleted.append(
                    "".join(t.text or "" for t in node.iter() if local(t.tag)[1] == "delText")
                )
                self.source.features.add("deletions hidden")
            return
        if name in PROPERTIES:
            return
        note_features(node, name, self.source, self.styles)
        # Text between a field's begin and separate is its code; checked where text is, as one
        # element (a hyperlink, an insertion) may hold both the code's end and the result.
        if name == "fldChar":
            self.field_character(attribute(node, "fldCharType"))
        elif name == "t":
            if shown and all(self.fields):
                self.source.add(category, node.text or "")
                if inserted:
                    self.source.inserted.append(node.text or "")
        elif name in BREAKS:
            self.source.add(category, " ")
        elif name == "noBreakHyphen":
            self.source.add(category, "\u2011")
        elif name in {"footnoteReference", "endnoteReference"}:
            if shown and all(self.fields):
                self.source.references[FOOTNOTES if name[0] == "f" else ENDNOTES].add(attribute(node, "id"))
        elif name == "p":
            outer_style = self.paragraph_style
            self.paragraph_style = attribute(child(child(node, "pPr"), "pStyle"), "val")
            self.source.add(category, " ")
            self.walk_children(node, category, shown, inserted)
            self.source.add(category, " ")
            self.paragraph_style = outer_style
        elif name == "r":
            hidden = self.styles.run_hidden(node, self.paragraph_style)
            if shown and hidden and all(self.fields) and holds_text(node):
                self.source.hidden.append(
                    "".join(t.text or "" for t in node.iter() if local(t.tag)[1] == "t")
                )
                self.source.features.add("hidden text hidden")
            self.walk_children(node, category, shown and not hidden, inserted)
        else:
            # A text box floats beside its paragraph: its words are not the paragraph's.
            inner = TEXT_BOXES if name == "txbxContent" and category == BODY else category
            self.walk_children(node, inner, shown, inserted or name == "ins")

    def walk_math(self, node, name: str, category: str, shown: bool, inserted: bool) -> None:
        """OMML: an equation's m:t text is shown, as one stretch apart from the words around it."""
        if name in {"oMathPara", "oMath"} and category != EQUATIONS:
            self.source.add(category, " ")
            self.source.add(EQUATIONS, " ")
            self.walk_children(node, EQUATIONS, shown, inserted)
            self.source.add(EQUATIONS, " ")
            self.source.add(category, " ")
        elif name == "t":
            if shown and all(self.fields):
                self.source.add(category, node.text or "")
        else:
            self.walk_children(node, category, shown, inserted)

    def walk_children(self, node, category: str, shown: bool, inserted: bool) -> None:
        for part in node:
            self.walk(part, category, shown, inserted)

    def field_character(self, kind: str | None) -> None:
        if kind == "begin":
            self.fields.append(False)
        elif kind == "separate" and self.fields:
            self.fields[-1] = True
        elif kind == "end" and self.fields:
            self.fields.pop()


def note_features(node, name: str, source: Source, styles: Styles) -> None:
    if name == "r":
        note_run_features(node, source)
    elif name == "gridSpan" and attribute(node, "val") not in {"1", None} or name == "vMerge":
        source.features.add("cell merge")
    elif name in {"footnoteReference", "endnoteReference", "commentReference"}:
        source.features.add({"f": "footnotes", "e": "endnotes", "c": "comments"}[name[0]])
    elif name == "ins" and any(local(t.tag) == ("w", "t") for t in node.iter()):
        source.features.add("insertions")
    elif name == "blip" and any(key.rpartition("}")[2] == "embed" for key in node.attrib):
        source.pictures += 1
        source.features.add("images")
    elif name == "p":
        properties = child(node, "pPr")
        if properties is None or not any(
            local(t.tag) == ("w", "t") and (t.text or "").strip() for t in node.iter()
        ):
            return
        own = attribute(child(properties, "jc"), "val")
        style = attribute(child(properties, "pStyle"), "val")
        listed = child(properties, "numPr") is not None
        if not listed and (own or styles.alignments.get(style or "")) in {"center", "right", "end", "both"}:
            source.features.add("alignment")


def note_run_features(run, source: Source) -> None:
    """Formatting of a run that shows text (a paragraph mark's or an empty run's does not show)."""
    if not any(local(node.tag) == ("w", "t") and (node.text or "").strip() for node in run):
        return
    for prop in child(run, "rPr") if child(run, "rPr") is not None else ():
        name, value = local(prop.tag)[1], attribute(prop, "val")
        if name == "u" and value != "none":
            source.features.add("underline")
        elif name in {"strike", "dstrike"} and value not in OFF:
            source.features.add("strike")
        elif name == "vertAlign" and value in {"superscript", "subscript"}:
            source.features.add("sup/sub")
        elif name == "highlight" and value not in {"none", None}:
            source.features.add("highlight")


def read_styles(styles) -> Styles:
    """Paragraph styles' alignment (pPr/jc) and styles' hidden text (rPr/vanish), along basedOn."""
    alignment, hidden, based_on = {}, {}, {}
    for style in styles if styles is not None else ():
        style_id = attribute(style, "styleId")
        if local(style.tag) != ("w", "style") or not style_id:
            continue
        if child(style, "basedOn") is not None:
            based_on[style_id] = attribute(child(style, "basedOn"), "val")
        jc = attribute(child(child(style, "pPr"), "jc"), "val")
        if jc is not None:
            alignment[style_id] = jc
        vanish = switched_on(child(child(style, "rPr"), "vanish"))
        if vanish is not None:
            hidden[style_id] = vanish
    defaults = child(child(child(styles, "docDefaults"), "rPrDefault"), "rPr")
    return Styles(
        along_based_on(alignment, based_on),
        along_based_on(hidden, based_on),
        bool(switched_on(child(defaults, "vanish"))),
    )


def along_based_on(own: dict, based_on: dict[str, str]) -> dict:
    """Each style's value: its own, else the nearest one up its basedOn chain."""
    resolved = {}
    for style_id in set(own) | set(based_on):
        current, seen = style_id, set()
        while current and current not in own and current not in seen:
            seen.add(current)
            current = based_on.get(current)
        if current in own:
            resolved[style_id] = own[current]
    return resolved


def section_properties(body) -> list:
    """Each section's w:sectPr in order: those ending a paragraph, then the body's own (the last)."""
    found = []
    for node in body:
        family, name = local(node.tag)
        if family != "w":
            continue
        if name == "p":
            properties = child(child(node, "pPr"), "sectPr")
            if properties is not None:
                found.append(properties)
        elif name == "sectPr":
            found.append(node)
        elif name in {"sdt", "sdtContent", "customXml", "ins", "moveTo", "smartTag"}:
            found += section_properties(node)
    return found


def shown_headers_and_footers(sections: list, even_and_odd: bool) -> list[tuple[str, str]]:
    """(kind, relationship id) of every header and footer Word shows, in order.

    A section shows its default ones, its first-page ones with w:titlePg, its even-page ones
    when the settings have w:evenAndOddHeaders; a type a section does not name is the
    previous section's."""
    current: dict[tuple[str, str], str] = {}
    shown: list[tuple[str, str]] = []
    for section in sections:
        for node in section:
            kind = local(node.tag)[1].removesuffix("Reference")
            if local(node.tag)[0] == "w" and kind in {"header", "footer"}:
                current[(kind, attribute(node, "type") or "default")] = attribute(node, "id")
        types = ["default"]
        if switched_on(child(section, "titlePg")):
            types.append("first")
        if even_and_odd:
            types.append("even")
        for kind in ("header", "footer"):
            for shown_type in types:
                reference = current.get((kind, shown_type))
                if reference is not None:
                    shown.append((kind, reference))
    return shown


def read_source(docx: bytes) -> Source:
    """What Word shows of a .docx (see HOW_COUNTED), by category, with the features found."""
    source = Source()
    with zipfile.ZipFile(io.BytesIO(docx)) as archive:
        names = {name.lower(): name for name in archive.namelist()}

        def part(name):
            name = name.lstrip("/")
            return SafeET.fromstring(archive.read(names[name.lower()])) if name.lower() in names else None

        def relationships(part_name):
            rels = part(
                posixpath.join(posixpath.dirname(part_name), "_rels", posixpath.basename(part_name) + ".rels")
            )
            found = {}
            for relation in rels if rels is not None else []:
                target = relation.get("Target", "")
                if relation.get("TargetMode") != "External":
                    target = (
                        target
                        if target.startswith("/")
                        else posixpath.join(posixpath.dirname(part_name), target)
                    )
                found[relation.get("Id")] = (
                    relation.get("Type", "").rsplit("/", 1)[-1],
                    posixpath.normpath(target),
                )
            return found

        main = next(target for kind, target in relationships("").values() if kind == "officeDocument")
        rels = relationships(main)

        def related(kind):
            return part(next((t for k, t in rels.values() if k == kind), f"word/{kind}.xml"))

        styles = read_styles(related("styles"))
        bodies = [node for node in part(main) if local(node.tag) == ("w", "body")]
        ShownText(source, styles, BODY).read(bodies[0])
        for kind in (FOOTNOTES, ENDNOTES):
            notes = related(kind)
            for note in notes if notes is not None else ():
                referred_to = attribute(note, "id") in source.references[kind]
                if referred_to and attribute(note, "type") in {None, "normal"}:
                    ShownText(source, styles, kind).read(note)
        even_and_odd = switched_on(child(related("settings"), "evenAndOddHeaders"))
        counted = set()
        for kind, reference in shown_headers_and_footers(section_properties(bodies[0]), bool(even_and_odd)):
            target = rels.get(reference, ("", None))[1]
            content = part(target) if target is not None and target not in counted else None
            if content is not None:
                counted.add(target)
                category = f"{kind} ({target})"
                ShownText(source, styles, category).read(content)
                if words(source.texts().get(category, "")):
                    source.features.add(kind)
    return source


def words(text: str) -> list[str]:
    """The words of a text: runs of letters, digits or underscores, case-blind; a soft hyphen joins."""
    return re.findall(r"\w+", text.lower().replace(SOFT_HYPHEN, ""))


def symbols(text: str) -> list[str]:
    """An equation's letters and digits, one by one: how OMML and MathML split them into
    tokens and which brackets or operators each writes as text differ."""
    return re.findall(r"\w", text.lower())


def html_text(converted: str) -> str:
    """The HTML's text as a reader sees it: inline elements joined, block elements apart."""
    shown = _ANNOTATION.sub(" ", converted)
    return html.unescape(re.sub(r"<[^>]*>", "", re.sub(rf"</?(?:{_BLOCK_TAGS})\b[^>]*>", " ", shown)))


@dataclass
class Coverage:
    """How many of a document's visible words the HTML has, and, by category, those it has not."""

    kept: int
    total: int
    lost: dict[str, tuple[int, int]]  # category: (words missing, words)

    @property
    def share(self) -> float:
        return self.kept / self.total if self.total else 1.0


def category_rank(category: str) -> int:
    return _RANK.get(category, 4)


def coverage(texts: dict[str, str], converted: str) -> Coverage:
    """The visible words found in the HTML, counting repeats; each word the HTML has goes to
    the categories in _RANK's order, and what a category does not get is its loss. Equations'
    letters and digits are looked for in the HTML's MathML, other words outside it."""
    found = {
        BODY: Counter(words(html_text(_MATH.sub(" ", converted)))),
        EQUATIONS: Counter(symbols(html_text(" ".join(_MATH.findall(converted))))),
    }
    kept_total = total = 0
    lost = {}
    for category in sorted(texts, key=category_rank):
        pool = EQUATIONS if category == EQUATIONS else BODY
        wanted = Counter((symbols if pool == EQUATIONS else words)(texts[category]))
        kept = 0
        for word, count in wanted.items():
            given = min(count, found[pool][word])
            found[pool][word] -= given
            kept += given
        kept_total += kept
        total += wanted.total()
        if kept < wanted.total():
            lost[category] = (wanted.total() - kept, wanted.total())
    return Coverage(kept_total, total, lost)


def kept_features(source: Source, converted: str) -> dict[str, bool]:
    result = {}
    shown = " ".join(words(html_text(converted)))
    for name, pattern in FEATURES:
        if name not in source.features:
            continue
        if name == "insertions":
            result[name] = all(" ".join(words(text)) in shown for text in source.inserted if words(text))
        elif name in {"deletions hidden", "hidden text hidden"}:
            # A phrase of several words Word does not show appears no more often than the
            # visible text has it (boilerplate may say the same thing elsewhere).
            visible = " ".join(words(" ".join(source.texts().values())))
            unshown = source.deleted if name == "deletions hidden" else source.hidden
            phrases = [" ".join(words(text)) for text in unshown if len(words(text)) > 2]
            result[name] = all(shown.count(phrase) <= visible.count(phrase) for phrase in phrases)
        else:
            result[name] = re.search(pattern, converted) is not None
    return result


@dataclass
class Row:
    name: str
    coverage: Coverage | None
    features: dict[str, bool]
    note: str


def measure(path: Path) -> Row:
    if path.suffix == ".xml":
        content, payload_type = path.read_text(encoding="utf-8"), "ooxml"
    else:
        content, payload_type = base64.b64encode(path.read_bytes()).decode("ascii"), "docx"
    try:
        converted = convert_payload(content, payload_type).html
    except ConversionError as error:
        return Row(path.name, None, {}, f"refused: {error.reason}")
    docx = flat_opc_to_docx(content, Limits()) if payload_type == "ooxml" else path.read_bytes()
    source = read_source(docx)
    note = REASONS.get(path.name, "")
    shown = len(re.findall(r"<img [^>]*src=\"data:image/", converted))
    if source.pictures and shown < source.pictures:
        # EMF/WMF/SVG pictures are left out on purpose (see below), with a warning.
        note = (note + "; " if note else "") + f"{shown} of {source.pictures} embedded pictures shown"
    return Row(path.name, coverage(source.texts(), converted), kept_features(source, converted), note)


HOW_COUNTED = """\
## How it is counted

**Visible words** are the words Word shows of a document (print layout, final text without
markup, hidden text not shown):

- the body, with its tables, content controls, field results and text boxes;
- the footnotes and endnotes the shown text refers to;
- every header and footer a page can show. A section ends at a section break (a `w:sectPr`
  in a paragraph's properties); the body's own `w:sectPr` is the last section's. Each section
  shows its default header and footer, its first-page ones when it has a title page
  (`w:titlePg`), and its even-page ones when the document's settings have
  `w:evenAndOddHeaders`; a section that names no header or footer of a type shows the previous
  section's. Each header or footer part counts once, however many sections show it;
- the text of equations (OMML `m:t` inside `m:oMath`).

Not counted, as Word does not show it: tracked deletions and the old place of moved text
(`w:del`, `w:moveFrom`), field codes (`w:instrText`, and anything between a field's `begin`
and `separate`; the field's result is counted), hidden text (`w:vanish` on the run, its
character style or its paragraph style), and the copy of an `mc:AlternateContent` Word does
not show: its `mc:Choice` (such as a DrawingML text box) is counted, its `mc:Fallback` (such
as the VML copy of that text box) only when the Choice holds no text. Not counted either:
comments (collab shows them as notes), and the text of charts, SmartArt and VML watermarks
(`v:textpath`), which collab does not show.

**Words**: the text of a paragraph is joined before it is cut into words, so a word Word
stores in several runs (`Hel` + `lo`, around bookmarks, proofing marks or tracked insertions)
is one word. Paragraphs, table cells, tabs, line breaks and symbols (`w:sym`) separate words,
a soft hyphen does not. A word is a run of letters, digits or underscores (Python's `\\w`),
compared without case. An equation stands apart from the words around it and counts each
letter and digit it shows as one "word" (`(x+a)^n` counts `x`, `a`, `n`): OMML and MathML
split an equation into tokens differently, and write brackets and operators as text in
different places, so its words could not be cut alike in both.

**Text kept**: collab's HTML, as viewers get it, is read the same way: inline elements
joined, block elements (paragraphs, headings, list items, table cells, `br`, `header`,
`footer`) apart. Equations' letters and digits are looked for in the HTML's MathML (`<math>`
elements, without their annotations, which browsers do not show), the other words outside
it. Text kept is the share of the visible words the HTML has, counting repeats (a word three
times in the document must be there three times). Words the HTML has beyond these (note
numbers, comments) do not change it; text it should not show is checked by the features
"deletions hidden" and "hidden text hidden" below. Documents with no visible words count as 100%.
The target is at least 99% for every valid document.

**Not kept** says where the missing words come from: each word of the HTML goes first to the
body, then to text boxes, footnotes, endnotes, headers and footers, and equations; the words a
part does not get are its loss ("footer (word/footer2.xml): 4 of 4" means none of that
footer's four words is in the HTML).

**Features**: found in the source and kept in the HTML (✓) or not (✗): underline,
strikethrough, superscript/subscript, highlight, paragraph alignment (direct or from the
style), table cell merges, footnotes, endnotes, comments (as marked notes), tracked insertions
shown, tracked deletions hidden, hidden text (`w:vanish`) hidden, a shown header and footer,
embedded pictures.
"""


EQUATIONS_NOTE = [
    "## Equations",
    "",
    "Word equations (Office Math, `m:oMath`) become MathML, which browsers lay out themselves: an",
    'inline equation is a `<math>`, a display equation (`m:oMathPara`) one `<math display="block">`',
    "per equation, centred. Converted: fractions (stacked, without bar, linear, skewed), sub- and",
    "superscripts and prescripts, roots, n-ary operators (sums, products, integrals, their limits",
    "under and over or as scripts), delimiters and their separators, matrices, equation arrays",
    "(aligned at `&`), accents, bars, group characters (braces over or under), lower and upper",
    "limits, functions, boxes and border boxes, phantoms. A run's text is split into identifiers,",
    "numbers and operators in Word's style for it (plain, bold, italic, script, fraktur,",
    "double-struck, sans-serif, monospace); normal text, and Word runs inside an equation, stay text.",
    "An element the mapping does not know, and anything nested more than 64 levels deep, falls back",
    "to its text; deleted parts of an equation stay out. Not carried: an equation's own alignment",
    "(`m:jc`) and line breaks, spacing and size properties. Chromium shows bold but not the script,",
    "fraktur or double-struck styles (Firefox does), no border around a border box, and centres",
    "the columns of an aligned equation array. The conversion tests check that every `m:t` of the",
    "corpus reaches the MathML, in order.",
    "",
]


def render(rows: list[Row]) -> str:
    valid = [row for row in rows if row.coverage is not None]
    below = [row for row in valid if row.coverage.share < TARGET]
    kept_total = sum(1 for row in valid for kept in row.features.values() if kept)
    found_total = sum(len(row.features) for row in valid)
    kept_words = sum(row.coverage.kept for row in valid)
    all_words = sum(row.coverage.total for row in valid)
    lines = [
        "# Conversion fidelity",
        "",
        "Written by `bench/fidelity.py` from a corpus of about 95 real Word documents (.docx and",
        "Flat OPC) from public projects, kept outside this repository with a list of their sources.",
        "",
        HOW_COUNTED,
        "## Results",
        "",
        f"Summary: {len(valid)} valid documents; {len(valid) - len(below)} keep at least {TARGET:.0%}",
        f"of their visible words; in all {kept_words} of {all_words} visible words kept",
        f"({kept_words / all_words if all_words else 1:.2%}); features kept {kept_total} of {found_total}"
        " times found.",
        "",
        "| document | words | text kept | not kept (missing of words) | features (found: kept?) | note |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row.coverage is None:
            total, share, lost = 0, "refused", ""
        else:
            total, share = row.coverage.total, f"{row.coverage.share:.1%}"
            lost = ", ".join(
                f"{part}: {missing} of {count}" for part, (missing, count) in row.coverage.lost.items()
            )
        features = ", ".join(f"{name} {'✓' if kept else '✗'}" for name, kept in row.features.items())
        lines.append(f"| `{row.name}` | {total} | {share} | {lost} | {features} | {row.note} |")
    lines += ["", "## Below the target", ""]
    if below:
        lines += [
            f"- `{row.name}` ({row.coverage.share:.1%}): {row.note or 'NO REASON GIVEN'}" for row in below
        ]
    else:
        lines.append(f"None: every valid document keeps at least {TARGET:.0%} of its visible words.")
    missing = [(row.name, name) for row in valid for name, kept in row.features.items() if not kept]
    lines += ["", "## Features found but not kept", ""]
    lines += [f"- `{name}`: {feature}" for name, feature in missing] or ["None."]
    lines += ["", *EQUATIONS_NOTE]
    lines += [
        "",
        "## Text direction",
        "",
        "Right-to-left text keeps its direction (`conversion/direction.py`). A paragraph marked `w:bidi`",
        '(directly, by its style along `w:basedOn`, or by the document defaults; `w:val="0"` switches it',
        'off) becomes `<p dir="rtl">` (or `h1`-`h6`, or `li` in a `ul`/`ol` that carries `dir="rtl"` too:',
        "a list that changes direction starts a new list); a table with `w:bidiVisual` becomes",
        '`<table dir="rtl">`, its columns from the right. In a left-to-right paragraph, runs marked `w:rtl`',
        "or written only in a right-to-left script (Hebrew, Arabic, Syriac, Thaana, NKo...) become",
        '`<span dir="rtl">`, neighbouring ones in one span. Alignment follows the direction as Word\'s',
        'does: `w:jc="right"` in a right-to-left paragraph is its end, shown at the left (`align-left`).',
        "`oxpt-hebrew.docx`: 43 of its 44 paragraphs are right-to-left, the 44th switches it off.",
        "",
        "## What is not carried, and not counted above",
        "",
        "- Charts and SmartArt: mammoth drops them.",
        "- EMF/WMF and SVG pictures: left out with a warning (browsers do not show EMF/WMF; SVG can",
        "  carry script). Linked (not embedded) pictures are never fetched.",
        "- VML watermarks (their text is a `v:textpath` attribute).",
        "- Alignment of list items (the list markup is kept instead), and alignment of table cells.",
        "- Direction set by a list's numbering level, a table style or a character style; a numbered",
        "  list that changes direction midway starts its numbers again.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true")
    arguments = parser.parse_args()
    paths = sorted((CORPUS / "docx").glob("*.doc[xm]")) + sorted((CORPUS / "flatopc").glob("*.xml"))
    rows = []
    for path in paths:
        rows.append(measure(path))
        share = rows[-1].coverage.share if rows[-1].coverage else None
        print(f"{path.name}: {share}", file=sys.stderr)
    text = render(rows)
    print(text)
    if not arguments.no_write:
        # The section bench/round_trip.py writes stays as it is.
        kept = REPORT.read_text(encoding="utf-8").partition(HTML_TO_WORD)[1:] if REPORT.exists() else ()
        REPORT.write_text(text + ("\n" + "".join(kept) if kept and kept[0] else ""), encoding="utf-8")


if __name__ == "__main__":
    main()
