"""Which headers and footers Word shows for each section, and where they go in the HTML.

A section ends with a paragraph whose properties hold a ``w:sectPr``; the body's own
``w:sectPr`` is the last section's. A section names its headers and footers by kind
(``default``, ``first``, ``even``); a kind it does not name is the previous section's.
Word shows a section's first-page header and footer when it has ``w:titlePg``, its
even-page ones when the settings have ``w:evenAndOddHeaders``, and its default ones on
the other pages. Each is shown once, at the start (headers) and end (footers) of the
first section that shows it, in the order its pages come: the first page's, the second's
(even), then the default.
"""

from __future__ import annotations

from dataclasses import dataclass

HEADER_CLASS = "doc-header"
FOOTER_CLASS = "doc-footer"
# The kind is marked for the headers and footers of particular pages; the default is plain.
KIND_CLASSES = {"default": "", "first": "first-page", "even": "even-page"}
_FALSE = frozenset({"0", "false", "off"})


@dataclass(frozen=True)
class ShownPart:
    tag: str  # "header" or "footer"
    kind: str  # "default", "first" or "even"
    part: str  # the part's name in the package

    @property
    def css_class(self) -> str:
        base = HEADER_CLASS if self.tag == "header" else FOOTER_CLASS
        kind = KIND_CLASSES[self.kind]
        return f"{base} {kind}" if kind else base


@dataclass(frozen=True)
class SectionParts:
    headers: tuple[ShownPart, ...]  # at the section's start
    footers: tuple[ShownPart, ...]  # at its end


def is_on(element) -> bool:
    """A WordprocessingML on/off property present and not switched off."""
    return element is not None and element.attributes.get("w:val", "true").lower() not in _FALSE


def section_break(element):
    """The w:sectPr a top-level body element ends its section with, or None."""
    if element.name == "w:sectPr":
        return element
    if element.name == "w:p":
        return element.find_child_or_null("w:pPr").find_child("w:sectPr")
    return None


def shown_parts(sections: list, part_by_id: dict[str, str], even_and_odd: bool) -> list[SectionParts]:
    """For each section's w:sectPr (None: a section without one), the parts shown with it."""
    named: dict[str, dict[str, str]] = {"header": {}, "footer": {}}
    seen: set[str] = set()
    placed = []
    for properties in sections:
        title_page = False
        if properties is not None:
            title_page = is_on(properties.find_child("w:titlePg"))
            for tag in ("header", "footer"):
                for reference in properties.find_children(f"w:{tag}Reference"):
                    part = part_by_id.get(reference.attributes.get("r:id", ""))
                    if part is not None:
                        named[tag][reference.attributes.get("w:type", "default")] = part
        pages = ["first" if title_page else "default", "even" if even_and_odd else "default", "default"]
        kinds = list(dict.fromkeys(pages))
        found = {"header": [], "footer": []}
        for tag in ("header", "footer"):
            for kind in kinds:
                part = named[tag].get(kind)
                if part is not None and (tag, part) not in seen:
                    seen.add((tag, part))
                    found[tag].append(ShownPart(tag, kind, part))
        placed.append(SectionParts(tuple(found["header"]), tuple(found["footer"])))
    return placed
