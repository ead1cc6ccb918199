"""JSON text read with a bound on its values and their nesting, long strings decoded a slice at a time.

`json.loads` builds every value of a text before anyone can look at it: 32 MB of
`[{},{},…]` become ten million dicts, 800 MiB, in one call that holds the GIL for seconds.
`loads` here gives the same values as `json.loads` for any text within its bounds (its
strings, numbers and literals come from the json module's own C scanner), refuses one
with more values or deeper nesting before building them, and decodes a long string in
slices of `SLICE` characters, so a thread reading a large frame lets the event loop run
between two slices. Its cost is linear in the text: the only loop in Python runs once per
value or string slice, and both are bounded.
"""

import json
import re
from json.decoder import scanstring
from json.scanner import make_scanner

SLICE = 1 << 20  # characters of a long string decoded by one call of the C scanner
# A slice may end only where none of the 11 characters before it is a backslash: then it
# cuts no escape (at most 6 characters, `\uXXXX`) and no surrogate pair of escapes (12).
_CUT = re.compile(r"[^\\]{11}")
# The rest of a string that ends within one slice: such a string is decoded in one call.
_ENDS_IN_A_SLICE = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"')
_CUT_SEARCH = 4096  # how far past a slice's end a cut is looked for before the rest is decoded at once
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_scan_scalar = make_scanner(json.JSONDecoder())  # json's C scan_once: numbers, literals (never containers)
_SCALAR_STARTS = frozenset("-0123456789tfnNI")


class TooComplex(ValueError):
    """A JSON text with more values or deeper nesting than allowed; the message says which bound."""


def loads(text, max_values, max_depth):
    """The value of a JSON text, as json.loads gives it; TooComplex past the bounds, ValueError if invalid."""
    reader = _Reader(text, max_values, max_depth)
    value, end = reader.value(_skip_whitespace(text, 0), 0)
    if _skip_whitespace(text, end) != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def _skip_whitespace(text, position):
    return _WHITESPACE.match(text, position).end()


class _Reader:
    def __init__(self, text, max_values, max_depth):
        self.text = text
        self.values_left = max_values
        self.max_values = max_values
        self.max_depth = max_depth

    def value(self, position, depth):
        """(value, end) of the value at `position`."""
        self.values_left -= 1
        if self.values_left < 0:
            raise TooComplex(f"more than {self.max_values} values")
        first = self.text[position : position + 1]
        if first == '"':
            return decode_string(self.text, position + 1)
        if first == "{":
            return self.object(position + 1, depth + 1)
        if first == "[":
            return self.array(position + 1, depth + 1)
        if first in _SCALAR_STARTS:
            try:
                return _scan_scalar(self.text, position)
            except StopIteration:
                pass
        raise json.JSONDecodeError("Expecting value", self.text, position)

    def check_depth(self, depth):
        if depth > self.max_depth:
            raise TooComplex(f"nested deeper than {self.max_depth} levels")

    def object(self, position, depth):
        self.check_depth(depth)
        text = self.text
        members = {}
        position = _skip_whitespace(text, position)
        if text[position : position + 1] == "}":
            return members, position + 1
        while True:
            if text[position : position + 1] != '"':
                raise json.JSONDecodeError(
                    "Expecting property name enclosed in double quotes", text, position
                )
            key, position = decode_string(text, position + 1)
            position = _skip_whitespace(text, position)
            if text[position : position + 1] != ":":
                raise json.JSONDecodeError("Expecting ':' delimiter", text, position)
            # The last of several equal keys wins, as in json.loads.
            members[key], position = self.value(_skip_whitespace(text, position + 1), depth)
            position = _skip_whitespace(text, position)
            if text[position : position + 1] == "}":
                return members, position + 1
            if text[position : position + 1] != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", text, position)
            position = _skip_whitespace(text, position + 1)

    def array(self, position, depth):
        self.check_depth(depth)
        text = self.text
        items = []
        position = _skip_whitespace(text, position)
        if text[position : position + 1] == "]":
            return items, position + 1
        while True:
            item, position = self.value(position, depth)
            items.append(item)
            position = _skip_whitespace(text, position)
            if text[position : position + 1] == "]":
                return items, position + 1
            if text[position : position + 1] != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", text, position)
            position = _skip_whitespace(text, position + 1)


def decode_string(text, start):
    """(string, end) of the JSON string whose first character is at `start`, a slice at a time."""
    if len(text) - start <= SLICE or _ENDS_IN_A_SLICE.match(text, start, start + SLICE):
        return scanstring(text, start)  # short: no slices copied out of a long frame
    slices = []
    while len(text) - start > SLICE:
        cut = _CUT.search(text, start + SLICE - 11, start + SLICE + _CUT_SEARCH)
        if cut is None:
            break  # backslashes all along: the rest in one call, still linear
        piece = text[start : cut.end()]
        # The closing quote added here ends the slice, unless the string ends inside it.
        decoded, end = scanstring(piece + '"', 0)
        slices.append(decoded)
        if end <= len(piece):
            return "".join(slices), start + end
        start = cut.end()
    decoded, end = scanstring(text, start)
    if not slices:
        return decoded, end
    slices.append(decoded)
    return "".join(slices), end
