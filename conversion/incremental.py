"""Converting a session's next version in proportion to what changed.

Word's add-in sends the whole document on every change. The previous version's
conversion (a ``ConvertedDocument``) lends the next what still holds: when everything but
the main part's body is byte for byte the same (the other parts of a Flat OPC package, or
every other entry of a .docx), only the body blocks that changed are read and converted
again (document_html.py), and the HTML equals a full conversion's. Any other change
(styles, numbering, notes, relationships, section properties), another payload type or
other limits convert the whole document again, which is always right.

``ConversionStates`` keeps the last conversion of many sessions in one process (a
conversion worker), the least recently used forgotten first beyond a byte budget.
"""

from __future__ import annotations

import io
import zipfile
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from .archive import zip_entries
from .document_html import ConvertedDocument
from .limits import DEFAULT_LIMITS, Limits
from .mammoth_html import convert_docx_changed
from .payloads import decode_docx, flat_opc_bytes

if TYPE_CHECKING:
    from . import Converted


def reconvert_word(
    previous: ConvertedDocument, content: str | bytes, kind: str, limits: Limits
) -> ConvertedDocument | None:
    """The new version converted from previous where only its body changed; None: convert it whole."""
    if previous.kind != kind or previous.limits != limits:
        return None
    try:
        if kind == "ooxml":
            data = flat_opc_bytes(content)
        else:
            docx = decode_docx(content)
            context = previous.context
            with zipfile.ZipFile(io.BytesIO(docx)) as archive:
                entries = zip_entries(archive)
                if _without(entries, context.main_part) != _without(context.entries, context.main_part):
                    return None
                data = archive.read(context.main_part)
        document = convert_docx_changed(previous, data, limits)
    except Exception:  # noqa: BLE001  (the full conversion gives the right answer, or the right error)
        return None
    if document is not None:
        document.kind, document.limits = kind, limits
    return document


def _without(entries: dict, name: str) -> dict:
    return {entry: value for entry, value in entries.items() if entry != name}


def kept_bytes(document: ConvertedDocument) -> int:
    """About how much memory a kept conversion holds."""
    return (
        len(document.data or b"")
        + document.context.archive_bytes
        + 2 * len(document.html)
        + 300 * len(document.units)
    )


class IncrementalConverter:
    """One session's conversions, each reusing what it can of the one before."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS):
        self.limits = limits
        self.previous: ConvertedDocument | None = None

    def convert(self, content: str | bytes, payload_type: str = "ooxml") -> Converted:
        """As convert_payload; on an error the previous version is forgotten (the next converts whole)."""
        from . import convert_payload  # noqa: PLC0415  (the package imports this module)

        previous, self.previous = self.previous, None
        converted = convert_payload(content, payload_type, self.limits, previous=previous)
        self.previous = converted.document
        return converted


class ConversionStates:
    """The last conversion of each session converted in this process, within a byte budget."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._kept: OrderedDict[Any, ConvertedDocument] = OrderedDict()

    def convert(self, owner: Any, content: str | bytes, payload_type: str, limits: Limits) -> Converted:
        from . import convert_payload  # noqa: PLC0415

        previous = self._kept.pop(owner, None) if owner is not None else None
        converted = convert_payload(content, payload_type, limits, previous=previous)
        if owner is not None and converted.document is not None and self.max_bytes > 0:
            self._kept[owner] = converted.document
            self._shrink()
        return converted

    def __len__(self) -> int:
        return len(self._kept)

    def _shrink(self) -> None:
        total = sum(kept_bytes(document) for document in self._kept.values())
        while total > self.max_bytes and self._kept:
            _, oldest = self._kept.popitem(last=False)
            total -= kept_bytes(oldest)
