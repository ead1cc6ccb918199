"""Word content (Flat OPC, .docx or HTML) in, sanitised HTML out. No Django in here."""

from __future__ import annotations

from .converting import PAYLOAD_TYPES, Converted, convert_payload
from .errors import ConversionError
from .kept_conversions import ConversionStates, IncrementalConverter
from .limits import Limits
from .pool import ConversionPool
from .sanitise import sanitise_html

__all__ = [
    "ConversionError",
    "ConversionPool",
    "ConversionStates",
    "Converted",
    "IncrementalConverter",
    "Limits",
    "PAYLOAD_TYPES",
    "convert_payload",
    "sanitise_html",
]
