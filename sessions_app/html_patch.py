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

The diff costs about as much as reading both versions, whatever they hold: blocks unique to
each side anchor the match (as patience diff does), only short stretches between anchors are
compared block by block, and a budget of steps in proportion to the blocks bounds the rest.
"""

import hashlib
from bisect import bisect_left
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


# The diff's budget: this many steps per block of both versions (each step is about a dict
# look-up); what the budget does not reach goes as one replace.
DIFF_STEPS_PER_BLOCK = 16
DIFF_MIN_STEPS = 100_000
# Stretches between anchors with at most this many pairs of blocks are matched pair by pair.
DIFF_MAX_PAIRS = 10_000


def diff_blocks(old, new, steps=None):
    """The operations that turn block list `old` into `new`, in time about linear in their length.

    `steps` is the budget (by default DIFF_STEPS_PER_BLOCK per block, at least DIFF_MIN_STEPS).
    """
    # Blocks become numbers (equal blocks, equal numbers): hashing reads each block once, and
    # no comparison later reads a block again.
    numbers = {}
    old_ids = [numbers.setdefault(block, len(numbers)) for block in old]
    new_ids = [numbers.setdefault(block, len(numbers)) for block in new]
    if steps is None:
        steps = max(DIFF_STEPS_PER_BLOCK * (len(old) + len(new)), DIFF_MIN_STEPS)
    kept = _kept_pairs(old_ids, new_ids, steps)
    ops = []
    old_at = new_at = 0
    for old_index, new_index in kept:
        _append_change(ops, old_index - old_at, new[new_at:new_index])
        _append(ops, ["keep", 1])
        old_at, new_at = old_index + 1, new_index + 1
    _append_change(ops, len(old) - old_at, new[new_at:])
    return ops


def _append_change(ops, deleted, inserted):
    """Add the operation that skips `deleted` old blocks and adds the `inserted` ones, if any."""
    if deleted and inserted:
        _append(ops, ["replace", deleted, inserted])
    elif deleted:
        _append(ops, ["delete", deleted])
    elif inserted:
        _append(ops, ["insert", inserted])


def _kept_pairs(old, new, budget):
    """(old index, new index) of blocks kept from old to new, in order of both, within `budget` steps."""
    kept = []
    stretches = [(0, len(old), 0, len(new))]
    while stretches:
        old_lo, old_hi, new_lo, new_hi = stretches.pop()
        # Edits are usually local: the common ends match at once.
        while old_lo < old_hi and new_lo < new_hi and old[old_lo] == new[new_lo]:
            kept.append((old_lo, new_lo))
            old_lo, new_lo = old_lo + 1, new_lo + 1
        while old_lo < old_hi and new_lo < new_hi and old[old_hi - 1] == new[new_hi - 1]:
            old_hi, new_hi = old_hi - 1, new_hi - 1
            kept.append((old_hi, new_hi))
        if old_lo == old_hi or new_lo == new_hi:
            continue
        pairs = (old_hi - old_lo) * (new_hi - new_lo)
        if pairs <= DIFF_MAX_PAIRS and pairs <= budget:
            budget -= pairs
            kept.extend(_common_subsequence(old, old_lo, old_hi, new, new_lo, new_hi))
            continue
        if (old_hi - old_lo) + (new_hi - new_lo) > budget:
            continue  # over the budget: this stretch is replaced whole
        budget -= (old_hi - old_lo) + (new_hi - new_lo)
        anchors = _unique_anchors(old, old_lo, old_hi, new, new_lo, new_hi)
        budget -= len(anchors)
        kept.extend(anchors)
        # The stretches between anchors are matched the same way.
        for old_index, new_index in [*anchors, (old_hi, new_hi)]:
            if old_index > old_lo and new_index > new_lo:
                stretches.append((old_lo, old_index, new_lo, new_index))
            old_lo, new_lo = old_index + 1, new_index + 1
    kept.sort()
    return kept


def _unique_anchors(old, old_lo, old_hi, new, new_lo, new_hi):
    """Pairs of blocks found once in each stretch, the longest run of them in the same order in both."""
    seen_old = {}
    for index in range(old_lo, old_hi):
        seen_old[old[index]] = -1 if old[index] in seen_old else index
    seen_new = {}
    for index in range(new_lo, new_hi):
        seen_new[new[index]] = -1 if new[index] in seen_new else index
    # In order of new index already: a unique block's one index is where it was first seen.
    candidates = [
        (seen_old[block], index)
        for block, index in seen_new.items()
        if index >= 0 and seen_old.get(block, -1) >= 0
    ]
    # The longest increasing run of old indices, by patience sorting: n·log n.
    tails, tail_indices, previous = [], [], [None] * len(candidates)
    for position, (old_index, _) in enumerate(candidates):
        length = bisect_left(tail_indices, old_index)
        if length:
            previous[position] = tails[length - 1]
        if length == len(tails):
            tails.append(position)
            tail_indices.append(old_index)
        else:
            tails[length] = position
            tail_indices[length] = old_index
    run = []
    position = tails[-1] if tails else None
    while position is not None:
        run.append(candidates[position])
        position = previous[position]
    return run[::-1]


def _common_subsequence(old, old_lo, old_hi, new, new_lo, new_hi):
    """(old index, new index) of a longest common subsequence of two short stretches."""
    old_length, new_length = old_hi - old_lo, new_hi - new_lo
    # after[i][j]: how long a common subsequence the stretches have from old_lo + i and new_lo + j on.
    after = [[0] * (new_length + 1) for _ in range(old_length + 1)]
    for i in range(old_length - 1, -1, -1):
        row, below, block = after[i], after[i + 1], old[old_lo + i]
        for j in range(new_length - 1, -1, -1):
            row[j] = below[j + 1] + 1 if block == new[new_lo + j] else max(below[j], row[j + 1])
    pairs = []
    i = j = 0
    while i < old_length and j < new_length:
        if old[old_lo + i] == new[new_lo + j]:
            pairs.append((old_lo + i, new_lo + j))
            i, j = i + 1, j + 1
        elif after[i + 1][j] >= after[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


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
