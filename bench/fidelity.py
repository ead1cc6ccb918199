"""How much of each corpus document reaches the HTML; writes docs/FIDELITY.md.

    .venv/bin/python -m bench.fidelity [--no-write]

For every valid document of ../shared/corpus: the share of its visible words (body with
its tables, footnotes, endnotes, and the first section's header and footer, the ones
collab shows) found in collab's HTML, counting repeats; and which features readers
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

W = {
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "http://purl.oclc.org/ooxml/wordprocessingml/main",
}
R = {
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "http://purl.oclc.org/ooxml/officeDocument/relationships",
}
MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
# Text Word does not show: deletions (moveFrom is a move's deleted end) and field codes.
HIDDEN = {"del", "delText", "moveFrom", "instrText"}
_BLOCK_TAGS = (
    r"p|h[1-6]|li|td|th|tr|table|thead|tbody|ul|ol|br|div|blockquote|pre|dl|dt|dd|hr|img|header|footer"
)

# Notes on odd documents, and why any document stays under the target.
REASONS = {
    "poi-multiple-body.docx": "three w:body elements; Word and mammoth read only the first, counted here",
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
    ("header", '<header class="doc-header">'),
    ("footer", '<footer class="doc-footer">'),
    ("images", '<img [^>]*src="data:image/'),
)


@dataclass
class Source:
    """What the source document holds, as Word shows it."""

    texts: list[str] = field(default_factory=list)
    features: set[str] = field(default_factory=set)
    inserted: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    pictures: int = 0


def local(tag: str) -> tuple[bool, str]:
    namespace, _, name = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    return namespace in W, name


def attribute(element, name: str) -> str | None:
    for key, value in element.attrib.items():
        if key.rpartition("}")[2] == name:
            return value
    return None


def visible_text(element, source: Source, style_alignment: dict[str, str]) -> str:
    pieces: list[str] = []

    def walk(node, inserted: bool):
        if node.tag == MC_FALLBACK:
            return
        is_w, name = local(node.tag)
        if is_w and name in HIDDEN:
            if name == "del":
                source.deleted.append(
                    "".join(t.text or "" for t in node.iter() if local(t.tag)[1] == "delText")
                )
                source.features.add("deletions hidden")
            return
        if is_w or name == "blip":  # a:blip is DrawingML's picture reference
            note_features(node, name, source, style_alignment)
        if is_w and name == "t":
            pieces.append(node.text or "")
            if inserted:
                source.inserted.append(node.text or "")
            return
        if is_w and name in {"tab", "ptab", "br", "cr"}:
            pieces.append(" ")
        if is_w and name == "p":
            pieces.append(" ")
        for child in node:
            walk(child, inserted or (is_w and name == "ins"))
        if is_w and name == "p":
            pieces.append(" ")

    walk(element, False)
    return " ".join("".join(pieces).split())


def note_features(node, name: str, source: Source, style_alignment: dict[str, str]) -> None:
    if name == "r":
        note_run_features(node, source)
    elif name == "gridSpan" and attribute(node, "val") not in {"1", None} or name == "vMerge":
        source.features.add("cell merge")
    elif name in {"footnoteReference", "endnoteReference", "commentReference"}:
        source.features.add({"f": "footnotes", "e": "endnotes", "c": "comments"}[name[0]])
    elif name == "ins" and any(local(t.tag)[1] == "t" for t in node.iter()):
        source.features.add("insertions")
    elif name == "blip" and any(key.rpartition("}")[2] == "embed" for key in node.attrib):
        source.pictures += 1
        source.features.add("images")
    elif name == "p":
        properties = next((child for child in node if local(child.tag)[1] == "pPr"), None)
        if properties is None or not any(
            local(t.tag)[1] == "t" and (t.text or "").strip() for t in node.iter()
        ):
            return
        own = next((attribute(child, "val") for child in properties if local(child.tag)[1] == "jc"), None)
        style = next(
            (attribute(child, "val") for child in properties if local(child.tag)[1] == "pStyle"), None
        )
        listed = any(local(child.tag)[1] == "numPr" for child in properties)
        if not listed and (own or style_alignment.get(style or "")) in {"center", "right", "end", "both"}:
            source.features.add("alignment")


def note_run_features(run, source: Source) -> None:
    """Formatting of a run that shows text (a paragraph mark's or an empty run's does not show)."""
    if not any(local(child.tag)[1] == "t" and (child.text or "").strip() for child in run):
        return
    properties = next((child for child in run if local(child.tag)[1] == "rPr"), None)
    for prop in properties if properties is not None else []:
        name, value = local(prop.tag)[1], attribute(prop, "val")
        if name == "u" and value != "none":
            source.features.add("underline")
        elif name in {"strike", "dstrike"} and value not in {"false", "0", "off"}:
            source.features.add("strike")
        elif name == "vertAlign" and value in {"superscript", "subscript"}:
            source.features.add("sup/sub")
        elif name == "highlight" and value not in {"none", None}:
            source.features.add("highlight")


def read_source(docx: bytes) -> Source:
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
        alignments = style_alignments(
            part(next((t for k, t in rels.values() if k == "styles"), "word/styles.xml"))
        )
        document = part(main)
        bodies = [child for child in document if local(child.tag)[1] == "body"]
        source.texts.append(visible_text(bodies[0], source, alignments))
        for kind in ("footnotes", "endnotes"):
            notes = part(next((t for k, t in rels.values() if k == kind), f"word/{kind}.xml"))
            for note in notes if notes is not None else []:
                if attribute(note, "type") in {None, "normal"}:
                    source.texts.append(visible_text(note, Source(), alignments))
        section = next((node for node in bodies[0].iter() if local(node.tag)[1] == "sectPr"), None)
        for kind in ("header", "footer"):
            references = {
                attribute(node, "type") or "default": attribute(node, "id")
                for node in (section if section is not None else [])
                if local(node.tag)[1] == f"{kind}Reference"
            }
            chosen = references.get("default") or references.get("first")
            if chosen in rels:
                content = part(rels[chosen][1])
                if content is not None:
                    text = visible_text(content, source, alignments)
                    source.texts.append(text)
                    if words(text):
                        source.features.add(kind)
    return source


def style_alignments(styles) -> dict[str, str]:
    own, based_on = {}, {}
    for style in styles if styles is not None else []:
        style_id = attribute(style, "styleId")
        for node in style.iter():
            name = local(node.tag)[1]
            if name == "jc" and style_id:
                own[style_id] = attribute(node, "val")
            elif name == "basedOn" and style_id:
                based_on[style_id] = attribute(node, "val")
    resolved = {}
    for style_id in set(own) | set(based_on):
        current, seen = style_id, set()
        while current and current not in own and current not in seen:
            seen.add(current)
            current = based_on.get(current)
        if current in own:
            resolved[style_id] = own[current]
    return resolved


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def html_text(converted: str) -> str:
    return html.unescape(re.sub(r"<[^>]*>", "", re.sub(rf"</?(?:{_BLOCK_TAGS})\b[^>]*>", " ", converted)))


def coverage(wanted_text: str, converted: str) -> tuple[float, int]:
    wanted = Counter(words(wanted_text))
    found = Counter(words(html_text(converted)))
    total = wanted.total()
    kept = sum(min(count, found[word]) for word, count in wanted.items())
    return (kept / total if total else 1.0), total


def kept_features(source: Source, converted: str) -> dict[str, bool]:
    result = {}
    shown = " ".join(words(html_text(converted)))
    for name, pattern in FEATURES:
        if name not in source.features:
            continue
        if name == "insertions":
            result[name] = all(" ".join(words(text)) in shown for text in source.inserted if words(text))
        elif name == "deletions hidden":
            # A deleted phrase of several words appears no more often than the visible text
            # has it (boilerplate may say the same thing elsewhere).
            visible = " ".join(words(" ".join(source.texts)))
            phrases = [" ".join(words(text)) for text in source.deleted if len(words(text)) > 2]
            result[name] = all(shown.count(phrase) <= visible.count(phrase) for phrase in phrases)
        else:
            result[name] = re.search(pattern, converted) is not None
    return result


@dataclass
class Row:
    name: str
    share: float | None
    words: int
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
        return Row(path.name, None, 0, {}, f"refused: {error.reason}")
    docx = flat_opc_to_docx(content, Limits()) if payload_type == "ooxml" else path.read_bytes()
    source = read_source(docx)
    share, total = coverage(" ".join(source.texts), converted)
    note = REASONS.get(path.name, "")
    shown = len(re.findall(r"<img [^>]*src=\"data:image/", converted))
    if source.pictures and shown < source.pictures:
        # EMF/WMF/SVG pictures are left out on purpose (see below), with a warning.
        note = (note + "; " if note else "") + f"{shown} of {source.pictures} embedded pictures shown"
    return Row(path.name, share, total, kept_features(source, converted), note)


def render(rows: list[Row]) -> str:
    valid = [row for row in rows if row.share is not None]
    below = [row for row in valid if row.share < TARGET]
    kept_total = sum(1 for row in valid for kept in row.features.values() if kept)
    found_total = sum(len(row.features) for row in valid)
    lines = [
        "# Conversion fidelity",
        "",
        "Written by `bench/fidelity.py` from the documents of `../shared/corpus/` (see its SOURCES.md).",
        "",
        "**Text kept**: the share of the document's visible words (body and tables, footnotes, endnotes,",
        "the first section's header and footer) found in collab's HTML, counting repeats. Deleted",
        "revisions, field codes and mc:Fallback copies are not visible text. Comments are shown too but",
        "not counted. Documents with no visible words count as 100%.",
        "",
        "**Features**: found in the source and kept in the HTML (✓) or not (✗): underline, strikethrough,",
        "superscript/subscript, highlight, paragraph alignment (direct or from the style), table cell",
        "merges, footnotes, endnotes, comments (as marked notes), tracked insertions shown, tracked",
        "deletions hidden, header and footer of the first section, embedded pictures.",
        "",
        f"Summary: {len(valid)} valid documents; {len(valid) - len(below)} keep at least {TARGET:.0%}",
        f"of their visible text; features kept {kept_total} of {found_total} times found.",
        "",
        "| document | words | text kept | features (found: kept?) | note |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        share = "refused" if row.share is None else f"{row.share:.1%}"
        features = ", ".join(f"{name} {'✓' if kept else '✗'}" for name, kept in row.features.items())
        lines.append(f"| `{row.name}` | {row.words} | {share} | {features} | {row.note} |")
    lines += ["", "## Below the target", ""]
    if below:
        lines += [f"- `{row.name}` ({row.share:.1%}): {row.note or 'NO REASON GIVEN'}" for row in below]
    else:
        lines.append(f"None: every valid document keeps at least {TARGET:.0%} of its visible text.")
    missing = [(row.name, name) for row in valid for name, kept in row.features.items() if not kept]
    lines += ["", "## Features found but not kept", ""]
    lines += [f"- `{name}`: {feature}" for name, feature in missing] or ["None."]
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
        "## What is not carried (and so not counted above)",
        "",
        "- Equations (OMML `m:t` text, e.g. `oxpt-equation.docx`), charts and SmartArt: mammoth drops",
        "  them, with a warning for equations.",
        "- EMF/WMF and SVG pictures: left out with a warning (browsers do not show EMF/WMF; SVG can",
        "  carry script). Linked (not embedded) pictures are never fetched.",
        "- Headers and footers of sections after the first, and even-page ones; VML watermarks.",
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
        print(f"{path.name}: {rows[-1].share}", file=sys.stderr)
    text = render(rows)
    print(text)
    if not arguments.no_write:
        REPORT.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
