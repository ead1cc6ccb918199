"""A document's HTML built from its units, section by section, and built again from what changed.

The HTML of a section is a row of *runs*: a run starts at the section's start or at a unit
whose first HTML element cannot join the one before it (a paragraph, a heading, a
table); list items can, and mammoth joins them into one list. Runs never join each other,
so each run's HTML (written, finished and sanitised) depends on its units alone and is
kept under their serials. A later version of the document reuses every unit whose bytes
and numbering are unchanged and every run whose units are all reused; only the rest is
read, converted and sanitised again. The result is the HTML a full conversion gives,
byte for byte: the full conversion is this same code with nothing to reuse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from mammoth import conversion, html, lists, writers

from .body_blocks import Block, Converting, Unit, Untrackable, blocks_of, units_of
from .errors import ConversionError
from .limits import Limits, html_too_large
from .sanitise import sanitise_html
from .sections import ShownPart, section_break, shown_parts
from .word_context import WordContext

# Post-passes of conversion features over mammoth's raw HTML, before sanitising; each must
# give the same on any split of its input between top-level elements.
HTML_FINISHERS: list[Callable[[str], str]] = []
PART_LEFT_OUT = "The document's {tag} could not be read and was left out"


@dataclass
class ConvertedDocument:
    """A conversion's HTML and warnings, and what the next version can reuse of it."""

    context: WordContext
    units: list[Unit]
    runs: dict  # unit serials: (raw HTML length, sanitised HTML)
    html: str
    warnings: list[str]
    reused_blocks: int
    data: bytes | None  # the bytes the units' ranges point into
    kind: str = ""  # the payload type it was converted from
    limits: Limits | None = None


def convert_document(context: WordContext, limits: Limits) -> ConvertedDocument:
    """Convert a whole document."""
    source = context.source
    converting = Converting(context, context.images)
    # Reading the blocks one after the other with one reader is reading the body; only
    # reusing them later needs to know where the reader's state is empty.
    if source is None:
        context.trackable = False
        pending = [Block([element], -1, -1) for element in context.body]
    else:
        try:
            pending = units_of(blocks_of(context.body, source.block_ranges(), source.data))
        except Untrackable:
            context.trackable = False
            pending = [
                Block([element], start, end)
                for element, (start, end) in zip(context.body, source.block_ranges(), strict=True)
            ]
    units = [converting.convert(block) for block in pending]
    context.body = []  # the parsed tree is not needed again; it is most of the memory
    return _assemble(context, units, converting, {}, limits, 0, source.data if source else None)


def convert_changed(previous: ConvertedDocument, data: bytes, limits: Limits) -> ConvertedDocument | None:
    """Convert a new version of previous's main part (same shared parts); None if it needs a full one."""
    context = previous.context
    source = context.source
    if not context.trackable or source is None or previous.data is None:
        return None
    old, units = previous.data, previous.units
    head, tail = source.head(), source.tail()
    if not (data.startswith(head) and data.endswith(tail)) or len(data) < len(head) + len(tail):
        return None
    delta = len(data) - len(old)
    kept_before = 0
    while kept_before < len(units) and _same(units[kept_before], old, data, 0):
        kept_before += 1
    middle_start = units[kept_before - 1].end if kept_before else len(head)
    kept_after = len(units)
    while kept_after > kept_before and units[kept_after - 1].start + delta >= middle_start:
        if not _same(units[kept_after - 1], old, data, delta):
            break
        kept_after -= 1
    middle_end = units[kept_after].start + delta if kept_after < len(units) else source.body_end + delta
    replaced = units[kept_before:kept_after]
    if middle_end < middle_start or any(unit.section_break is not None for unit in replaced):
        return None
    try:
        elements, ranges = source.parse(data, middle_start, middle_end, limits.max_xml_depth)
        middle = units_of(blocks_of(elements, ranges, data))
    except (Untrackable, ConversionError):
        return None
    except Exception:  # malformed XML and the like: a full conversion gives the right error
        return None
    if middle and middle[-1].joins_next:
        return None
    if any(section_break(element) is not None for block in middle for element in block.elements):
        return None  # the sections change: their headers and footers with them
    context.images.reset()
    converting = Converting(context, context.images)
    planned: list[Unit | Block] = [
        *units[:kept_before],
        *middle,
        *(replace(unit, start=unit.start + delta, end=unit.end + delta) for unit in units[kept_after:]),
    ]
    new_units = []
    for item in planned:
        if isinstance(item, Block):
            new_units.append(converting.convert(item))
            continue
        reused = converting.reuse(item)
        if reused is None:
            block_elements, _ = source.parse(data, item.start, item.end, limits.max_xml_depth)
            reused = converting.convert(Block(block_elements, item.start, item.end))
        new_units.append(reused)
    context.source = replace(
        source,
        data=data,
        starts=tuple(unit.start for unit in new_units),
        body_end=source.body_end + delta,
    )
    reused_count = sum(1 for unit in new_units if unit.serial not in converting.nodes)
    return _assemble(context, new_units, converting, previous.runs, limits, reused_count, data)


def _same(unit: Unit, old: bytes, data: bytes, delta: int) -> bool:
    return data.startswith(old[unit.start : unit.end], unit.start + delta)


def _assemble(
    context: WordContext,
    units: list[Unit],
    converting: Converting,
    known_runs: dict,
    limits: Limits,
    reused: int,
    data: bytes | None,
) -> ConvertedDocument:
    sections = _sections(units)
    placed = shown_parts(
        [section[-1].section_break if section else None for section in sections],
        context.package.part_by_id,
        context.package.even_and_odd_headers,
    )
    runs: dict = {}
    pieces: list[str] = []
    raw_length = 0
    part_messages: list = []
    part_warnings: list[str] = []
    tail = _tail(context, converting, limits)
    for number, (section, parts) in enumerate(zip(sections, placed, strict=True)):
        for shown in parts.headers:
            pieces.append(_part(context, shown, part_messages, part_warnings))
        for run in _runs(section):
            key = tuple(unit.serial for unit in run)
            found = known_runs.get(key) or runs.get(key)
            if found is None:
                found = _write_run(run, converting, context, data, limits)
            runs[key] = found
            raw_length += found[0]
            if raw_length > limits.max_html_bytes:
                raise ConversionError(html_too_large(limits))
            pieces.append(found[1])
        if number == len(sections) - 1:
            pieces.append(tail[1])
        for shown in parts.footers:
            pieces.append(_part(context, shown, part_messages, part_warnings))
    messages = lists.unique(
        [
            *context.messages,
            *(message for unit in units for message in unit.read_messages),
            *(message for unit in units for message in unit.messages),
            *tail[2],
            *part_messages,
        ]
    )
    warnings = [message.message for message in messages]
    warnings += context.other_warnings
    warnings += [warning for unit in units for warning in unit.other_warnings]
    warnings += [*tail[3], *part_warnings]
    return ConvertedDocument(context, units, runs, "".join(pieces), warnings, reused, data)


def _sections(units: list[Unit]) -> list[list[Unit]]:
    sections: list[list[Unit]] = [[]]
    for unit in units:
        sections[-1].append(unit)
        if unit.section_break is not None:
            sections.append([])
    if not sections[-1] and len(sections) > 1:
        sections.pop()  # the body's own w:sectPr ended the last section
    return sections


def _runs(section: list[Unit]) -> list[list[Unit]]:
    runs: list[list[Unit]] = []
    for unit in section:
        if not runs or unit.opens_run:
            runs.append([unit])
        else:
            runs[-1].append(unit)
    return runs


def _write_run(
    run: list[Unit], converting: Converting, context: WordContext, data, limits
) -> tuple[int, str]:
    nodes = []
    for unit in run:
        unit_nodes = converting.nodes.get(unit.serial)
        if unit_nodes is None:
            elements, _ = context.source.parse(data, unit.start, unit.end, limits.max_xml_depth)
            unit_nodes = converting.nodes_again(unit, Block(elements, unit.start, unit.end))
        nodes += unit_nodes
    return _finished(html.collapse(nodes), limits)


def _finished(nodes: list, limits: Limits) -> tuple[int, str]:
    writer = writers.writer("html")
    html.write(writer, nodes)
    raw = writer.as_string()
    if len(raw) > limits.max_html_bytes:
        raise ConversionError(html_too_large(limits))  # nh3 never reads it
    return len(raw), sanitise_html(finish_html(raw))


def finish_html(raw: str) -> str:
    for finisher in HTML_FINISHERS:
        raw = finisher(raw)
    return raw


def _tail(context: WordContext, converting: Converting, limits: Limits) -> tuple:
    """The notes and the referenced comments after the body: (raw length, HTML, messages, warnings)."""
    notes = tuple((reference.note_type, reference.note_id) for reference in converting.note_references)
    comments = tuple((label, comment.comment_id) for label, comment in converting.comments)
    key = (notes, comments)
    found = context.tail_html.get(key)
    if found is not None:
        context.images.spend(found[4], found[5])
        return found
    messages: list = []
    references = list(converting.note_references)
    converter = context.converter(messages, references)
    converter._referenced_comments = list(converting.comments)
    state = conversion._ConversionContext(is_table_header=False)
    images, image_bytes, warnings_before = context.images.snapshot()
    resolved = [context.notes.resolve(reference) for reference in converting.note_references]
    notes_list = html.element("ol", {}, converter._visit_all(resolved, state))
    described = html.element(
        "dl",
        {},
        [node for referenced in converting.comments for node in converter.visit_comment(referenced, state)],
    )
    if len(references) != len(converting.note_references) or len(converter._referenced_comments) != len(
        converting.comments
    ):
        context.trackable = False  # a note or comment refers to another: numbers cross the tail
    length, text = _finished(html.collapse(html.strip_empty([notes_list, described])), limits)
    after = context.images.snapshot()
    found = (
        length,
        text,
        tuple(messages),
        tuple(context.images.warnings[warnings_before : after[2]]),
        after[0] - images,
        after[1] - image_bytes,
    )
    context.tail_html[key] = found
    return found


def _part(context: WordContext, shown: ShownPart, messages: list, warnings: list[str]) -> str:
    """A shown header or footer's HTML, converted once per context."""
    key = (shown.tag, shown.kind, shown.part)
    if key not in context.part_html:
        result = context.convert_part(shown.part, shown.tag)
        if result is None:
            context.part_html[key] = ("", (), (PART_LEFT_OUT.format(tag=shown.tag),))
        elif not result.value:
            context.part_html[key] = ("", tuple(result.messages), ())
        else:
            raw = f'<{shown.tag} class="{shown.css_class}">{result.value}</{shown.tag}>'
            context.part_html[key] = (sanitise_html(finish_html(raw)), tuple(result.messages), ())
    text, part_messages, part_warnings = context.part_html[key]
    messages += part_messages
    warnings += part_warnings
    return text
