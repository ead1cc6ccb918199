"""A Word document's default language, as the conversion endpoint reports it (PROTOCOL.md section 11).

It is the ``w:lang`` of the document's default run properties (``w:docDefaults`` in the
styles part), else of its theme fonts (``w:themeFontLang`` in the settings part). A document
with right-to-left text gives the language of its right-to-left script first (``w:bidi``, as
Persian and Arabic documents set it); others give their main language (``w:val``): Word writes
``w:bidi="ar-SA"`` into nearly every document's defaults, English ones included. The parts are
read as a stream, stopping at the element sought, so the cost stays small whatever their size.
"""

from __future__ import annotations

import contextlib
import io
import posixpath
import zipfile
import zlib

from .archive import check_docx_archive
from .errors import ConversionError
from .limits import DEFAULT_LIMITS, DepthLimitedHandler, Limits, parse_xml_within_limits

_DEFAULT_RUN_LANGUAGE = ("styles", "docDefaults", "rPrDefault", "rPr", "lang")
_THEME_FONT_LANGUAGE = ("settings", "themeFontLang")
_RELATIONSHIP = ("Relationships", "Relationship")


def document_language(docx: bytes, right_to_left: bool, limits: Limits = DEFAULT_LIMITS) -> str:
    """The document's default language tag (such as fa-IR), or "" if it names none."""
    try:
        check_docx_archive(docx, limits)
        with zipfile.ZipFile(io.BytesIO(docx)) as archive:
            package = _Package(archive, limits)
            main = package.target("", "_rels/.rels", "officeDocument")
            if main is None:
                return ""
            base, name = posixpath.split(main)
            rels = posixpath.join(base, "_rels", f"{name}.rels")
            found = [
                package.first(package.target(base, rels, kind), path)
                for kind, path in (("styles", _DEFAULT_RUN_LANGUAGE), ("settings", _THEME_FONT_LANGUAGE))
            ]
    except (
        ConversionError,
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        OSError,
        NotImplementedError,
        RuntimeError,
    ):
        return ""  # it was converted already, so a part that cannot be read only hides the language
    wanted = ("bidi", "val") if right_to_left else ("val",)
    return next((languages[name] for name in wanted for languages in found if languages.get(name)), "")


class _Stop(Exception):
    """The element sought was found: the rest of the part is not read."""


class _PathHandler(DepthLimitedHandler):
    """Collects the attributes (by local name) of the elements at a path of local names."""

    def __init__(self, path: tuple[str, ...], max_depth: int, first_only: bool):
        super().__init__(max_depth)
        self.path = path
        self.first_only = first_only
        self.open: list[str] = []
        self.found: list[dict[str, str]] = []

    def startElement(self, name, attrs):
        super().startElement(name, attrs)
        self.open.append(name.rpartition(":")[2])
        if tuple(self.open) == self.path:
            self.found.append({key.rpartition(":")[2]: value for key, value in attrs.items()})
            if self.first_only:
                raise _Stop

    def endElement(self, name):
        super().endElement(name)
        self.open.pop()


class _Package:
    """The parts of an opened .docx, found by name whatever their case, read as streams."""

    def __init__(self, archive: zipfile.ZipFile, limits: Limits):
        self.archive = archive
        self.limits = limits
        self.names = {name.lower(): name for name in archive.namelist()}

    def read(self, part: str | None, path: tuple[str, ...], first_only: bool) -> list[dict[str, str]]:
        if part is None or part.lower() not in self.names:
            return []
        handler = _PathHandler(path, self.limits.max_xml_depth, first_only)
        with self.archive.open(self.names[part.lower()]) as stream, contextlib.suppress(_Stop):
            parse_xml_within_limits(stream, handler)
        return handler.found

    def first(self, part: str | None, path: tuple[str, ...]) -> dict[str, str]:
        found = self.read(part, path, first_only=True)
        return found[0] if found else {}

    def target(self, base: str, rels: str, kind: str) -> str | None:
        """The part named by the first internal relationship of this kind in a .rels part."""
        for relationship in self.read(rels, _RELATIONSHIP, first_only=False):
            if (
                relationship.get("Type", "").rsplit("/", 1)[-1] != kind
                or relationship.get("TargetMode") == "External"
            ):
                continue
            target = relationship.get("Target", "")
            # Absolute part names are valid targets too ("/word/styles.xml").
            return (
                target.lstrip("/")
                if target.startswith("/")
                else posixpath.normpath(posixpath.join(base, target))
            )
        return None
