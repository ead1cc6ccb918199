"""Sessions' last conversions kept, so that each next version converts in proportion to its change.

``IncrementalConverter`` converts one session's versions, each reusing what it can of the
one before (incremental.py); ``ConversionStates`` keeps the last conversion of many sessions
in one process (a conversion worker), the least recently used forgotten first beyond a
byte budget.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from .converting import Converted, convert_payload
from .document_html import ConvertedDocument
from .incremental import kept_bytes
from .limits import DEFAULT_LIMITS, Limits


class IncrementalConverter:
    """One session's conversions, each reusing what it can of the one before."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS):
        self.limits = limits
        self.previous: ConvertedDocument | None = None

    def convert(self, content: str | bytes, payload_type: str = "ooxml") -> Converted:
        """As convert_payload; on an error the previous version is forgotten (the next converts whole)."""
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
