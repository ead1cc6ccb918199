"""The html-patch extension: a new version as changes to the previous one's top-level blocks.

A document is split into blocks, each a top-level element (paragraph, heading, table, list…)
with the text that follows it, so joining the blocks gives back the HTML exactly. A patch
is a list of operations that turn the blocks of version n-1 into those of version n:

    ["keep", k]              the next k old blocks, unchanged
    ["delete", k]            skip the next k old blocks
    ["insert", [b, …]]       these new blocks
    ["replace", k, [b, …]]   skip the next k old blocks and put these in their place

The operations consume every old block, in order. The checksum is the SHA-256 of the new
version's full HTML in UTF-8, so a client can tell its result is exactly what the server holds.
"""

import hashlib
from difflib import SequenceMatcher
from html.parser import HTMLParser

# Elements that never have content or an end tag (HTML's void elements).
VOID_ELEMENTS = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    }
)


class PatchError(ValueError):
    """A patch that does not fit the blocks it is applied to."""


class _TopLevelStarts(HTMLParser):
    """Collects the offsets in the source where top-level elements start."""

    def __init__(self, source):
        super().__init__(convert_charrefs=False)
        self.starts = []
        self.open = []
        # html.parser reports (line, column); line_starts turns them into offsets.
        self.line_starts = [0]
        position = source.find("\n")
        while position != -1:
            self.line_starts.append(position + 1)
            position = source.find("\n", position + 1)

    def source_offset(self):
        line, column = self.getpos()
        return self.line_starts[line - 1] + column

    def handle_starttag(self, tag, attrs):
        if not self.open:
            self.starts.append(self.source_offset())
        if tag not in VOID_ELEMENTS:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        if not self.open:
            self.starts.append(self.source_offset())

    def handle_endtag(self, tag):
        # Close up to the matching open element; a stray end tag changes nothing.
        if tag in self.open:
            while self.open.pop() != tag:
                pass


def split_blocks(html):
    """The top-level blocks of an HTML fragment; "".join(blocks) == html."""
    if not html:
        return []
    parser = _TopLevelStarts(html)
    parser.feed(html)
    parser.close()
    cuts = sorted({0, *parser.starts, len(html)})
    return [html[start:end] for start, end in zip(cuts, cuts[1:], strict=False) if end > start]


def diff_blocks(old, new):
    """The operations that turn block list `old` into `new`."""
    # Edits are usually local: match the common ends cheaply, diff only the middle.
    prefix = 0
    limit = min(len(old), len(new))
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    old_middle = old[prefix : len(old) - suffix]
    new_middle = new[prefix : len(new) - suffix]
    ops = []
    if prefix:
        _append(ops, ["keep", prefix])
    matcher = SequenceMatcher(None, old_middle, new_middle, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            _append(ops, ["keep", i2 - i1])
        elif tag == "delete":
            _append(ops, ["delete", i2 - i1])
        elif tag == "insert":
            _append(ops, ["insert", new_middle[j1:j2]])
        else:
            _append(ops, ["replace", i2 - i1, new_middle[j1:j2]])
    if suffix:
        _append(ops, ["keep", suffix])
    return ops


def _append(ops, op):
    """Add an operation, merging it into the previous one of the same kind."""
    if ops and ops[-1][0] == op[0]:
        last = ops[-1]
        if op[0] in ("keep", "delete"):
            last[1] += op[1]
            return
        if op[0] == "insert":
            last[1] = last[1] + op[1]
            return
    ops.append(op)


def apply_patch(old, ops):
    """The new block list from the old one and a patch; PatchError if they do not fit."""
    new = []
    cursor = 0
    for op in ops:
        if not isinstance(op, list) or not op:
            raise PatchError(f"not an operation: {op!r}")
        kind = op[0]
        if kind in ("keep", "delete", "replace"):
            count = op[1] if len(op) > 1 else None
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise PatchError(f"bad count in {kind}")
            if cursor + count > len(old):
                raise PatchError(f"{kind} runs past the old blocks")
            if kind == "keep":
                new.extend(old[cursor : cursor + count])
            cursor += count
        if kind in ("insert", "replace"):
            blocks = op[-1] if len(op) == (2 if kind == "insert" else 3) else None
            if not isinstance(blocks, list) or not all(isinstance(block, str) for block in blocks):
                raise PatchError(f"bad blocks in {kind}")
            new.extend(blocks)
        elif kind not in ("keep", "delete"):
            raise PatchError(f"unknown operation {kind!r}")
    if cursor != len(old):
        raise PatchError("the patch leaves old blocks unaccounted for")
    return new


def checksum(html):
    """SHA-256 hex digest of the HTML's UTF-8 bytes, as the html-patch message carries it."""
    return hashlib.sha256(html.encode("utf-8", "surrogatepass")).hexdigest()


def utf16_lengths(blocks):
    """Each block's length in UTF-16 code units, the unit JavaScript strings are sliced in."""
    return [len(block.encode("utf-16-le", "surrogatepass")) // 2 for block in blocks]
