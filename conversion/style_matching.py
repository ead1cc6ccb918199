"""mammoth's style-map work, remembered: the same answers without the rescans and re-parsing.

mammoth 1.13 finds the style-map entry for every paragraph, run and run property (bold,
italic, ...) by testing each of the ~60 entries of the map in turn, about a quarter of
its conversion time. The answer depends only on a few fields of the element, so each
conversion keeps the answers it has found by those fields. Equal HTML on the whole
corpus is checked by tests/test_conversion_parser.py.
"""

from __future__ import annotations

import functools

from mammoth import conversion, options

original_find_style = conversion._DocumentConverter._find_style
original_read_style_map = options._read_style_map
# A parsed style map is a list of immutable mappings that mammoth only reads and copies.
read_style_map = functools.lru_cache(maxsize=16)(original_read_style_map)
_MISSING = object()


def find_style(self, element, element_type):
    """mammoth's _DocumentConverter._find_style, answered from a per-converter memo."""
    # The key is everything mammoth's _document_matcher_matches reads from an element.
    key = (
        element_type,
        getattr(element, "style_id", None),
        getattr(element, "style_name", None),
        getattr(element, "numbering", None),
        getattr(element, "color", None),
        getattr(element, "break_type", None),
    )
    try:
        memo = self._collab_style_memo
    except AttributeError:
        memo = self._collab_style_memo = {}
    try:
        style = memo.get(key, _MISSING)
    except TypeError:  # a field that cannot be hashed: ask mammoth itself
        return original_find_style(self, element, element_type)
    if style is _MISSING:
        style = memo[key] = original_find_style(self, element, element_type)
    return style


def install() -> None:
    """Make mammoth's converter use find_style, and its options reader read_style_map."""
    current = conversion._DocumentConverter._find_style
    if current is not original_find_style and current is not find_style:
        raise RuntimeError("mammoth's _DocumentConverter._find_style is not mammoth's own")
    conversion._DocumentConverter._find_style = find_style
    if options._read_style_map not in (original_read_style_map, read_style_map):
        raise RuntimeError("mammoth's options._read_style_map is not mammoth's own")
    options._read_style_map = read_style_map
