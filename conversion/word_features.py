"""What readers notice beyond mammoth's defaults, through mammoth's own extension points.

- A style map: underline as <u>, highlight as <mark>, comments as marked notes, and
  aligned paragraphs as classes (``align-center``, ``align-right``, ``align-justify``,
  and ``align-left`` for a right-to-left paragraph aligned to its end).
- A document transform that gives each aligned paragraph (direct formatting, or its
  style's, following basedOn) a style name the style map recognises, in the body, notes
  and comments. List items keep their list markup and so their alignment is not carried.
- Right-to-left paragraphs, lists, tables and runs as ``dir="rtl"`` (direction.py).
- What the sections need to find their headers and footers (sections.py): the main part's
  relationships and whether the settings ask for even-page headers.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field

from mammoth import documents

from . import direction
from .direction import StyleDirections
from .sections import is_on
from .xml_parser import parse_xml

ALIGNMENTS = {
    "center": "center",
    "right": "right",
    "end": "right",
    "both": "justify",
    "distribute": "justify",
}
ALIGNMENT_CLASSES = frozenset(
    f"align-{name}" for name in {*ALIGNMENTS.values(), *direction.RIGHT_TO_LEFT_ALIGNMENTS.values()}
)
_ALIGNED_STYLE = direction.OWN_STYLE_PREFIX + "aligned:{kind}:{alignment}"
_HEADING_ID = re.compile(r"Heading([1-6])")
_HEADING_NAME = re.compile(r"heading ([1-6])", re.IGNORECASE)

STYLE_MAP = "\n".join(
    [
        "u => u",
        "highlight => mark",
        "comment-reference => sup",
        *(
            f"p[style-name='{_ALIGNED_STYLE.format(kind=f'h{level}', alignment=alignment)}']"
            f" => h{level}.align-{alignment}:fresh"
            for level in range(1, 7)
            for alignment in sorted(set(ALIGNMENTS.values()))
        ),
        *(
            f"p[style-name='{_ALIGNED_STYLE.format(kind='p', alignment=alignment)}']"
            f" => p.align-{alignment}:fresh"
            for alignment in sorted(set(ALIGNMENTS.values()))
        ),
        *direction.STYLE_MAP_RULES,
        # Word's own styles for header and footer paragraphs: plain paragraphs, no warning.
        # After the alignment lines, which match first.
        "p.Header => p:fresh",
        "p.Footer => p:fresh",
    ]
)


_NAMESPACES = [
    ("w", "http://schemas.openxmlformats.org/wordprocessingml/2006/main"),
    ("w", "http://purl.oclc.org/ooxml/wordprocessingml/main"),
    ("r", "http://schemas.openxmlformats.org/officeDocument/2006/relationships"),
    ("r", "http://purl.oclc.org/ooxml/officeDocument/relationships"),
    ("relationships", "http://schemas.openxmlformats.org/package/2006/relationships"),
]


@dataclass
class WordPackage:
    """What the features need from a .docx, read once."""

    style_alignments: dict[str, str] = field(default_factory=dict)
    style_directions: StyleDirections = field(default_factory=StyleDirections)
    styles_part: str | None = None
    part_by_id: dict[str, str] = field(default_factory=dict)  # the main part's internal relationships
    even_and_odd_headers: bool = False


def read_package(archive: zipfile.ZipFile) -> WordPackage:
    """Find the main part's styles and first-section header and footer in an opened .docx."""
    package = WordPackage()
    names = {name.lower(): name for name in archive.namelist()}
    main = next(
        (
            target
            for _, kind, target, external in _relationships(archive, names, "", "_rels/.rels")
            if kind == "officeDocument" and not external
        ),
        None,
    )
    if main is None or main.lower() not in names:
        return package
    base = posixpath.dirname(main)
    relationships = _relationships(archive, names, base, _rels_path(main))
    styles = next(
        (target for _, kind, target, external in relationships if kind == "styles" and not external),
        posixpath.join(base, "styles.xml"),
    )
    if styles.lower() in names:
        package.styles_part = names[styles.lower()]
        with archive.open(names[styles.lower()]) as stream:
            styles_root = parse_xml(stream, _NAMESPACES)
        package.style_alignments = _along_based_on(styles_root, _own_alignment)
        package.style_directions = direction.style_directions(
            styles_root, _along_based_on(styles_root, direction.own_bidi)
        )
    package.part_by_id = {
        rid: names[target.lower()]
        for rid, _, target, external in relationships
        if not external and target.lower() in names
    }
    settings = next(
        (target for _, kind, target, external in relationships if kind == "settings" and not external), None
    )
    if settings is not None and settings.lower() in names:
        with archive.open(names[settings.lower()]) as stream:
            flag = parse_xml(stream, _NAMESPACES).find_child("w:evenAndOddHeaders")
        package.even_and_odd_headers = is_on(flag)
    return package


def alignment_transform(package: WordPackage) -> Callable:
    """A mammoth document transform naming aligned and right-to-left blocks (and runs) for STYLE_MAP."""
    transform = element_transform(package)

    def transform_document(document):
        transformed = transform(document)
        return transformed.copy(
            notes=TransformedNotes(document.notes, transform),
            comments=transformed_comments(document.comments, transform),
        )

    return transform_document


def transformed_comments(comments: list, transform: Callable) -> list:
    return [
        documents.comment(
            comment_id=comment.comment_id,
            body=[transform(element) for element in comment.body],
            author_name=comment.author_name,
            author_initials=comment.author_initials,
        )
        for comment in comments
    ]


def element_transform(package: WordPackage) -> Callable:
    """The transform of alignment_transform for one element of a document and its descendants."""

    def name(paragraph):
        jc, direct = direction.carried_alignment(paragraph.alignment)
        rtl = package.style_directions.right_to_left(paragraph.style_id) if direct is None else direct
        style_name = None if direction.is_own_style(paragraph.style_name) else paragraph.style_name
        kind = _block_kind(paragraph.style_id, style_name)
        if paragraph.numbering is not None:
            if rtl:
                listed = direction.list_style(paragraph.numbering) if kind == "p" else None
                style_name = listed or direction.paragraph_style(kind, None)
        else:
            own = jc or package.style_alignments.get(paragraph.style_id, "")
            if rtl:
                style_name = direction.paragraph_style(kind, direction.RIGHT_TO_LEFT_ALIGNMENTS.get(own))
            elif own in ALIGNMENTS:
                style_name = _ALIGNED_STYLE.format(kind=kind, alignment=ALIGNMENTS[own])
        children = direction.inline_content(paragraph.children, rtl)
        if children is paragraph.children and (jc, style_name) == (paragraph.alignment, paragraph.style_name):
            return paragraph
        return paragraph.copy(alignment=jc, children=children, style_name=style_name)

    def transform(element):
        # Tables before their content (the direction marker is their last row), paragraphs after.
        if isinstance(element, documents.Table):
            element = direction.unmark_table(element)
        if isinstance(element, documents.HasChildren | documents.TableCellUnmerged):
            children = [transform(child) for child in element.children]
            if any(new is not old for new, old in zip(children, element.children, strict=True)):
                element = element.copy(children=children)
        if isinstance(element, documents.Paragraph):
            element = name(element)
        return element

    return transform


class TransformedNotes:
    """A document's notes, each transformed when mammoth's converter looks it up (all it asks of them)."""

    def __init__(self, notes: documents.Notes, transform: Callable):
        self._notes = notes
        self._transform = transform

    def resolve(self, reference):
        note = self._notes.resolve(reference)
        return note.copy(body=[self._transform(element) for element in note.body])


def _block_kind(style_id: str | None, style_name: str | None) -> str:
    """The element mammoth's default style map makes of a paragraph: h1-h6 for headings, else p."""
    heading = _HEADING_ID.fullmatch(style_id or "") or _HEADING_NAME.fullmatch(style_name or "")
    if heading:
        return f"h{heading.group(1)}"
    if style_id == "Heading" or _is_named_heading(style_name):
        return "h1"  # Apple Pages, as mammoth's default style map has it
    return "p"


def _is_named_heading(style_name: str | None) -> bool:
    # Length first: one long style name shared by many paragraphs must not be lowered for each.
    return style_name is not None and len(style_name) == 7 and style_name.lower() == "heading"


def _rels_path(part: str) -> str:
    return posixpath.join(posixpath.dirname(part), "_rels", posixpath.basename(part) + ".rels")


def _own_alignment(style) -> str | None:
    return style.find_child_or_null("w:pPr").find_child_or_null("w:jc").attributes.get("w:val")


def _along_based_on(styles, own_value: Callable) -> dict:
    """Each paragraph style's own_value, or that of the nearest style it is based on that has one."""
    own: dict[str, object] = {}
    based_on: dict[str, str] = {}
    for style in styles.find_children("w:style"):
        style_id = style.attributes.get("w:styleId")
        if style_id is None or style.attributes.get("w:type", "paragraph") != "paragraph":
            continue
        value = own_value(style)
        if value is not None:
            own[style_id] = value
        parent = style.find_child_or_null("w:basedOn").attributes.get("w:val")
        if parent is not None:
            based_on[style_id] = parent
    # Each style's chain is walked once: every style met on a walk gets its answer, so a
    # long basedOn chain costs its length, not its length squared.
    resolved: dict[str, object] = {}
    for style_id in set(own) | set(based_on):
        chain: list[str] = []
        on_chain: set[str] = set()
        current: str | None = style_id
        while current is not None and current not in resolved and current not in own:
            if current in on_chain:  # a basedOn loop without a value
                current = None
                break
            chain.append(current)
            on_chain.add(current)
            current = based_on.get(current)
        if current is None:
            answer = None
        elif current in resolved:
            answer = resolved[current]
        else:
            answer = resolved[current] = own[current]
        for name in chain:
            resolved[name] = answer
    return {style_id: value for style_id, value in resolved.items() if value is not None}


def _relationships(archive, names, base: str, rels_path: str) -> list[tuple[str, str, str, bool]]:
    """(id, type's last segment, target part resolved against base, external?) of a .rels part."""
    if rels_path.lower() not in names:
        return []
    with archive.open(names[rels_path.lower()]) as stream:
        root = parse_xml(stream, _NAMESPACES)
    found = []
    for relation in root.find_children("relationships:Relationship"):
        target = relation.attributes.get("Target", "")
        # Absolute part names are valid targets too ("/word/media/image1.png").
        resolved = (
            target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(base, target))
        )
        found.append(
            (
                relation.attributes.get("Id", ""),
                relation.attributes.get("Type", "").rsplit("/", 1)[-1],
                resolved,
                relation.attributes.get("TargetMode") == "External",
            )
        )
    return found
