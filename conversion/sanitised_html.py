"""The sanitiser's HTML read back as tags and text, in one linear pass.

nh3 writes its tree out in one regular shape: lower-case names, every attribute as
``name="value"`` with ``&``, ``"`` and no-break spaces escaped, text with ``&``, ``<``, ``>``
and no-break spaces escaped, no comments, no raw-text elements. Reading that needs no
general HTML parser (Python's is four times slower on it). Anything else (a stray ``<``)
is read as text, so no input makes this fail or take longer than linear time.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

START, END, TEXT = "start", "end", "text"
_TOKEN = re.compile(
    r'<([a-z][a-z0-9-]*+)((?: [^\s="/>]++="[^"]*+")*+) ?/?>'  # a start tag and its attributes
    r"|</([a-z][a-z0-9-]*+)>"  # an end tag
    r"|([^<]++|<)"  # text (a "<" that starts no tag is text)
)
_ATTRIBUTE = re.compile(r' ([^\s="/>]++)="([^"]*+)"')


def tokens(sanitised: str) -> Iterator[tuple[str, str, dict[str, str] | str]]:
    """(START, name, attributes), (END, name, "") and (TEXT, "", text), in order, entities decoded."""
    for match in _TOKEN.finditer(sanitised):
        name, attributes, end, text = match.groups()
        if name is not None:
            found = {}
            if attributes:
                for attribute in _ATTRIBUTE.finditer(attributes):
                    value = attribute.group(2)
                    found[attribute.group(1)] = html.unescape(value) if "&" in value else value
            yield START, name, found
        elif end is not None:
            yield END, end, ""
        else:
            yield TEXT, "", html.unescape(text) if "&" in text else text
