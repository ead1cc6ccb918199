"""A document body as units of top-level blocks, each read and converted by mammoth on its own.

mammoth's reader keeps state from one body element to the next in two cases: a complex
field (``w:fldChar`` begin … end) open across paragraphs, and a paragraph whose mark is
deleted (its content joins the next paragraph). A unit is a run of top-level blocks at
whose end neither is pending, so that reading units one after the other with one reader
gives what reading the whole body gives. Most units are one paragraph or one table.

Converting a unit depends on the document only through how many note and comment
references came before it (their numbers); a unit remembers those counts, the references
it made, its messages and its pictures, so a later version of the document can reuse it.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, replace
from typing import Any

from mammoth import conversion, html
from mammoth.docx import office_xml
from mammoth.docx.xmlparser import XmlElement

from .sections import section_break

_FIELD_CHARACTER = re.compile(rb"""fldCharType\s*=\s*["'](begin|end)["']""")
# Where a field character may sit in markup the reader skips, so the count above cannot be trusted.
_SKIPPED_MARKUP = re.compile(rb"<(?:[\w.-]+:)?(?:del|moveFrom|AlternateContent|Choice)[\s>/]")
_DELETION = re.compile(rb"<(?:[\w.-]+:)?del[\s>/]")
_serials = itertools.count(1)


class Untrackable(Exception):
    """The reader's state across these blocks cannot be told from their bytes."""


@dataclass(frozen=True, eq=False)
class Unit:
    """One unit's place in the source and what converting it gave (not its HTML nodes)."""

    serial: int  # the same serial: the same conversion result
    start: int
    end: int
    section_break: Any  # the w:sectPr the unit ends its section with, or None
    note_start: int  # note references before it when it was converted
    comment_start: int
    note_references: tuple  # the references it made, in order
    comments: tuple  # the comments it referenced, as mammoth's (label, comment)
    read_messages: tuple
    messages: tuple
    other_warnings: tuple
    images: int
    image_bytes: int
    opens_run: bool | None  # its first node cannot join what came before; None: no nodes


@dataclass
class Block:
    """A top-level block's parsed XML and its byte range, before grouping into units."""

    elements: list
    start: int
    end: int
    fields: tuple = ()  # its complex field characters in order: b"begin" and b"end"
    joins_next: bool = False  # a deleted paragraph mark: its content joins the next paragraph


@dataclass
class Converting:
    """The running state of one conversion pass over the body."""

    context: Any  # WordContext
    images: Any  # the ImageBudget the context's convert_image spends
    note_references: list = field(default_factory=list)
    comments: list = field(default_factory=list)
    nodes: dict = field(default_factory=dict)  # unit serial: HTML nodes, for units converted now

    def convert(self, block: Block) -> Unit:
        """Read and convert one unit with the state so far."""
        context = self.context
        elements = [
            node for element in block.elements for node in office_xml._collapse_alternate_content(element)
        ]
        read = context.body_reader.read_all(elements)
        messages: list = []
        converter = context.converter(messages, self.note_references)
        converter._referenced_comments = self.comments
        note_start, comment_start = len(self.note_references), len(self.comments)
        images_before, bytes_before, warnings_before = self.images.snapshot()
        state = conversion._ConversionContext(is_table_header=False)
        nodes = []
        for element in read.value:
            nodes += converter.visit(context.transform(element), state)
        nodes = html.strip_empty(nodes)
        images, image_bytes, warnings = self.images.snapshot()
        unit = Unit(
            serial=next(_serials),
            start=block.start,
            end=block.end,
            section_break=next(
                (found for element in block.elements if (found := section_break(element)) is not None), None
            ),
            note_start=note_start,
            comment_start=comment_start,
            note_references=tuple(self.note_references[note_start:]),
            comments=tuple(self.comments[comment_start:]),
            read_messages=tuple(read.messages),
            messages=tuple(messages),
            other_warnings=tuple(self.images.warnings[warnings_before:warnings]),
            images=images - images_before,
            image_bytes=image_bytes - bytes_before,
            opens_run=_opens_run(nodes),
        )
        self.nodes[unit.serial] = nodes
        return unit

    def reuse(self, unit: Unit) -> Unit | None:
        """Take a unit's earlier result if it still holds here, else None."""
        counts_moved = unit.note_start != len(self.note_references) or unit.comment_start != len(
            self.comments
        )
        if counts_moved and (unit.note_references or unit.comments):
            return None  # its numbers would change
        self.images.spend(unit.images, unit.image_bytes)
        self.note_references.extend(unit.note_references)
        self.comments.extend(unit.comments)
        if counts_moved:
            # Without references of its own, a unit converts alike whatever came before it.
            unit = replace(unit, note_start=len(self.note_references), comment_start=len(self.comments))
        return unit

    def nodes_again(self, unit: Unit, block: Block) -> list:
        """A reused unit's HTML nodes, converted again from its block as it was converted before."""
        context = self.context
        elements = [
            node for element in block.elements for node in office_xml._collapse_alternate_content(element)
        ]
        read = context.body_reader.read_all(elements)
        converter = context.converter([], [None] * unit.note_start)
        converter._referenced_comments = [None] * unit.comment_start
        state = conversion._ConversionContext(is_table_header=False)
        with self.images.not_counting():
            nodes = [
                node for element in read.value for node in converter.visit(context.transform(element), state)
            ]
        return html.strip_empty(nodes)


def _opens_run(nodes: list) -> bool | None:
    if not nodes:
        return None
    first = nodes[0]
    return not (isinstance(first, html.Element) and first.collapsible)


def blocks_of(elements: list, ranges: list[tuple[int, int]], data: bytes) -> list[Block]:
    """Each top-level element with its byte range and what it leaves pending in the reader."""
    blocks = []
    for element, (start, end) in zip(elements, ranges, strict=True):
        block = Block([element], start, end)
        _note_state(block, data[start:end])
        blocks.append(block)
    return blocks


def _note_state(block: Block, raw: bytes) -> None:
    if b"fldCharType" in raw:
        if _SKIPPED_MARKUP.search(raw):
            raise Untrackable
        block.fields = tuple(_FIELD_CHARACTER.findall(raw))
    if _DELETION.search(raw) and any(_deleted_mark(element) for element in block.elements):
        block.joins_next = True


def _deleted_mark(element) -> bool:
    """Whether a paragraph in element has its mark deleted."""
    if element.name == "w:pPr":
        return element.find_child_or_null("w:rPr").find_child("w:del") is not None
    return any(_deleted_mark(child) for child in element.children if isinstance(child, XmlElement))


def units_of(blocks: list[Block]) -> list[Block]:
    """Blocks joined into units: each ends where no field is open and no content is carried."""
    units: list[Block] = []
    current: Block | None = None
    depth = 0
    for block in blocks:
        if current is None:
            current = Block(list(block.elements), block.start, block.end)
        else:
            current.elements += block.elements
            current.end = block.end
        for kind in block.fields:
            # mammoth ignores an end without a begin.
            depth = depth + 1 if kind == b"begin" else max(0, depth - 1)
        if depth == 0 and not block.joins_next:
            units.append(current)
            current = None
    if current is not None:
        current.joins_next = True  # the body ends with a field open or a mark deleted
        units.append(current)
    return units
