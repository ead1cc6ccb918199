"""Converting a session's next version in proportion to what changed.

Word's add-in sends the whole document on every change. The previous version's
conversion (a ``ConvertedDocument``) lends the next what still holds: when everything but
the main part's body is byte for byte the same (the other parts of a Flat OPC package, or
every other entry of a .docx), only the body blocks that changed are read and converted
again (document_html.py), and the HTML equals a full conversion's. Any other change
(styles, numbering, notes, relationships, section properties), another payload type or
other limits convert the whole document again, which is always right.

kept_conversions.py keeps the conversions a next version reuses.
"""

from __future__ import annotations

import io
import zipfile

from .archive import zip_entries
from .document_html import ConvertedDocument
from .limits import Limits
from .mammoth_html import convert_docx_changed
from .payloads import decode_docx, flat_opc_bytes


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
