"""A linear look at an HTML payload before the sanitiser parses it: nesting, elements, re-opened formatting.

nh3 parses HTML as a browser does (html5ever), and two shapes cost that parser far more than
their size: deep nesting, because it looks through the open elements on every tag (100,000
nested ``<div>`` take it 13 s), and formatting elements left open, which the HTML rules
re-open in every following block (49 KB of ``<p>``, 2,000 ``<b id=…>`` and 3,000 short
paragraphs build 123 MB). This scan follows the HTML tokenizer exactly (tags, attributes,
comments, raw text, script escapes) and the tree-building rules as far as they deepen the
tree, close elements or re-open formatting. Where it simplifies, it keeps more elements open
than a browser would, never fewer, and counts at least as many elements, so a payload it
passes is within the limits as the sanitiser builds it. Each character is read a bounded
number of times, and the scan stops at the first limit passed.
"""

from __future__ import annotations

import re
from bisect import bisect_right

from .errors import ConversionError
from .limits import Limits, MiB


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_WS = "\t\n\f\r "
# A tag from "<": its name, its attributes exactly as the tokenizer splits them (a quote
# opens a value only after "="), an optional self-closing "/" and the ">" (absent when the
# input ends inside the tag). Possessive throughout: nothing is ever tried twice.
_TAG = re.compile(
    rf"""<(/?)([A-Za-z][^{_WS}/>]*+)((?:[{_WS}]++|/(?!>)|[^{_WS}/>][^{_WS}/>=]*+"""
    rf"""(?:[{_WS}]*+=[{_WS}]*+(?:"[^"]*+"|'[^']*+'|[^{_WS}>]*+))?+)*+)(/?)(>?)"""
)
_ATTRIBUTE = re.compile(
    rf"""[{_WS}/]*+([^{_WS}/>][^{_WS}/>=]*+)"""
    rf"""(?:[{_WS}]*+=[{_WS}]*+(?:"([^"]*+)"|'([^']*+)'|([^{_WS}>]*+)))?+"""
)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_COMMENT_END = re.compile(r"--!?>")
_SCRIPT_DATA = re.compile(rf"</script(?=[{_WS}/>])|<!--(-*+>)?", re.IGNORECASE)
_SCRIPT_ESCAPED = re.compile(rf"</script(?=[{_WS}/>])|<script(?=[{_WS}/>])|--++>", re.IGNORECASE)
_SCRIPT_DOUBLE_ESCAPED = re.compile(rf"</script(?=[{_WS}/>])|--++>", re.IGNORECASE)
# Elements whose content is text up to their own end tag (the sanitiser parses with
# scripting on, as browsers do, so noscript is one of them).
_RAW_TEXT = ("style", "xmp", "iframe", "noembed", "noframes", "noscript", "textarea", "title")
_RAW_TEXT_END = {name: re.compile(rf"</{name}(?=[{_WS}/>])", re.IGNORECASE) for name in _RAW_TEXT}

_VOID = _names(
    "area base basefont bgsound br col embed frame hr image img input keygen link meta param source track wbr"
)
_VOID_WITHOUT_REOPENING = _names("param source track base basefont bgsound link meta frame")
_IGNORED = _names("html head body frameset")
_FORMATTING = _names("a b big code em font i nobr s small strike strong tt u")
_CLOSES_P = _names(
    "address article aside blockquote center details dialog dir div dl fieldset figcaption figure footer "
    "header hgroup main menu nav ol p search section summary ul h1 h2 h3 h4 h5 h6 pre listing form hr xmp "
    "li dd dt plaintext"
)
_HEADINGS = _names("h1 h2 h3 h4 h5 h6")
_IMPLIED_END = _names("dd dt li option optgroup p rb rp rt rtc")
_MARKERS = _names("applet marquee object td th caption")
_SPECIAL = _names(
    "address applet area article aside base basefont bgsound blockquote body br button caption center col "
    "colgroup dd details dir div dl dt embed fieldset figcaption figure footer form frame frameset h1 h2 h3 "
    "h4 h5 h6 head header hgroup hr html iframe img input isindex keygen li link listing main marquee menu "
    "meta nav noembed noframes noscript object ol p param plaintext pre script section select source style "
    "summary table tbody td template textarea tfoot th thead title tr track ul wbr xmp"
)
# select too: the sanitiser's parser (the newer rules for select) ignores "</div>" inside one.
_SCOPE = _names("applet caption html table td th marquee object template select")
_TABLE_SCOPE = _names("html table template")
_TABLE_SECTIONS = _names("tbody thead tfoot")
_DEFAULT_SCOPE_ENDS = _names(
    "address article aside blockquote button center details dialog dir div dl fieldset figcaption figure "
    "footer header hgroup listing main menu nav ol pre search section summary ul applet marquee object dd dt "
    "select"
)
_TABLE_ENDS = _names("table tbody thead tfoot tr td th caption")
_TABLE_STARTS = _names("table caption colgroup col tbody thead tfoot tr td th")
_TABLE_CONTEXTS = ("table", "tbody", "thead", "tfoot", "tr", "td", "th", "caption", "colgroup")
# A template's content is parsed in modes of its own, and the sanitiser drops it: refused.
_ROW_GROUP_CONTEXTS = _names("table tbody thead tfoot tr")
# The adoption agency rules run at most eight times per end tag, each making at most four elements.
_MOST_CLONES = 8 * 4
_TABLE_TEXT = _names("table tbody thead tfoot tr colgroup")
TEMPLATE_REFUSED = "HTML with a template element is not accepted"
_NOT_REOPENING = _names("script style title template noframes noscript noembed iframe textarea rb rp rt rtc")
# In foreign content (svg, math) these start tags end it, closing the foreign elements.
_BREAKOUT = _names(
    "b big blockquote body br center code dd div dl dt em embed h1 h2 h3 h4 h5 h6 head hr i img li listing "
    "menu meta nobr ol p pre ruby s small span strong strike sub sup table tt u ul var"
)
_SVG_INTEGRATION = _names("foreignobject desc title")
_MATH_TEXT_INTEGRATION = _names("mi mo mn ms mtext")
_HTML_ENCODINGS = _names("text/html application/xhtml+xml")
# Categories of open elements whose topmost position the rules ask for.
# Each has a space, so that no tag name (which never has one) is taken for it.
_SPECIAL_CATEGORY = "special element"
_IN_SCOPE = "scope boundary"
_BUTTON_SCOPE = "button scope boundary"
_LIST_ITEM_SCOPE = "list item scope boundary"
_IN_TABLE_SCOPE = "table scope boundary"
_LIST_ITEM_STOP = "stops li"
_DESCRIPTION_STOP = "stops dd and dt"
_HEADING = "heading element"
# The sanitiser's parser makes no svg or MathML element special, and only these scope boundaries.
_FOREIGN_BOUNDARY_CATEGORIES = (_IN_SCOPE, _BUTTON_SCOPE, _LIST_ITEM_SCOPE)


def _html_categories(name: str) -> tuple[str, ...]:
    categories = []
    if name in _SPECIAL:
        categories.append(_SPECIAL_CATEGORY)
        if name not in ("address", "div", "p", "li"):
            categories.append(_LIST_ITEM_STOP)
        if name not in ("address", "div", "p", "dd", "dt"):
            categories.append(_DESCRIPTION_STOP)
    if name in _SCOPE:
        categories += [_IN_SCOPE, _BUTTON_SCOPE, _LIST_ITEM_SCOPE]
    elif name == "button":
        categories.append(_BUTTON_SCOPE)
    elif name in ("ol", "ul"):
        categories.append(_LIST_ITEM_SCOPE)
    if name in _TABLE_SCOPE:
        categories.append(_IN_TABLE_SCOPE)
    if name in _HEADINGS:
        categories.append(_HEADING)
    return tuple(categories)


# Computed once for the names that have any: a cache filled from payloads' own tag names
# would grow in a long-lived worker with every new name a client invents.
_CATEGORIES: dict[str, tuple[str, ...]] = {
    name: _html_categories(name)
    for name in _SPECIAL | _SCOPE | _TABLE_SCOPE | _HEADINGS | {"button", "ol", "ul"}
}


class _Open:
    """One element on the stack of open elements."""

    __slots__ = ("key", "name", "namespace", "integration", "categories", "entry", "html_at", "index")

    def __init__(self, name, namespace, integration, categories):
        self.key = name if namespace == "html" else "\0" + name  # end tags never match across
        self.name = name
        self.namespace = namespace  # "html", "svg" or "math"
        self.integration = integration  # an svg or MathML element whose content is HTML
        self.categories = categories
        self.entry = None  # its active formatting entry
        self.html_at = 0  # position of the topmost HTML element at or below it

    @property
    def foreign(self) -> bool:
        return self.namespace != "html"


class _Formatting:
    """An entry of the list of active formatting elements (None in that list is a marker)."""

    __slots__ = ("name", "size", "open", "order", "removed")

    def __init__(self, name, size, order):
        self.name = name
        self.size = size  # its start tag as written: what re-opening it costs
        self.open = None  # its element while on the stack
        self.order = order  # entries older than the last marker are out of reach
        self.removed = False  # taken out of the list; dropped from it when next passed


class _Tree:
    """The stack of open elements and the active formatting elements, as the HTML rules keep them."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.stack: list[_Open] = []
        self.positions: dict[str, list[int]] = {}  # of each key, and of each category
        self.active: list[_Formatting | None] = []
        self.by_name: dict[str, list[_Formatting]] = {}  # active entries of each name, newest last
        self.markers: list[int] = []  # the order of each marker in the list
        self.added = 0
        self.elements = 0
        self.reopened_bytes = 0
        self.deepest = 0  # the most elements open at once below the root
        self.form: _Open | None = None  # the parser's form element pointer
        self.work = 0  # elements passed over by misnested formatting end tags

    def count(self, elements: int, reopened: bool = False) -> None:
        self.elements += elements
        limit = self.limits.max_html_elements
        if self.elements > limit:
            if reopened:
                raise ConversionError(
                    "HTML leaves formatting elements open, which the HTML rules repeat in every "
                    f"following paragraph: more than {limit} elements"
                )
            raise ConversionError(f"HTML has too many elements (the limit is {limit})")

    # The stack of open elements

    def top(self, key: str) -> int:
        found = self.positions.get(key)
        return found[-1] if found else -1

    def current(self) -> _Open:
        return self.stack[-1]

    def push(self, name: str, namespace: str = "html", integration: bool = False) -> _Open:
        if namespace == "html":
            categories = _CATEGORIES.get(name, ())
        elif (namespace == "svg" and name in _SVG_INTEGRATION) or (
            namespace == "math" and name in _MATH_TEXT_INTEGRATION
        ):
            categories = _FOREIGN_BOUNDARY_CATEGORIES
        else:
            categories = ()
        element = _Open(name, namespace, integration, categories)
        index = len(self.stack)
        element.html_at = index if namespace == "html" or not index else self.stack[-1].html_at
        element.index = index
        self.stack.append(element)
        positions = self.positions
        positions.setdefault(element.key, []).append(index)
        for category in categories:
            positions.setdefault(category, []).append(index)
        if namespace == "html" and name in _MARKERS:
            self.active.append(None)  # a marker: stays until a rule clears it, as in the parser
            self.added += 1
            self.markers.append(self.added)
        if index > self.deepest:
            self.deepest = index
        if index >= self.limits.max_html_depth:
            raise ConversionError(
                f"HTML is nested too deeply (the limit is {self.limits.max_html_depth} levels)"
            )
        return element

    def touch(self) -> None:
        """An element made and closed at once (a void element, "<svg/>", "</p>" alone): its depth counts."""
        index = len(self.stack)
        if index > self.deepest:
            self.deepest = index
        if index >= self.limits.max_html_depth:
            raise ConversionError(
                f"HTML is nested too deeply (the limit is {self.limits.max_html_depth} levels)"
            )

    def pop_to(self, index: int) -> None:
        """Close the element at index and every element above it."""
        positions = self.positions
        while len(self.stack) > index:
            element = self.stack.pop()
            positions[element.key].pop()
            for category in element.categories:
                positions[category].pop()
            if element.entry is not None:
                element.entry.open = None  # still active: re-opened by the next content

    def clear_to_last_marker(self) -> None:
        """Drop the active formatting elements after the last marker, and the marker."""
        active = self.active
        while active:
            entry = active.pop()
            if entry is None:
                self.markers.pop()
                return
            if not entry.removed:
                self.by_name[entry.name].pop()
                if entry.open is not None:
                    entry.open.entry = None

    def close_to(self, index: int) -> None:
        """Close a cell, caption, applet, marquee or object: the rules clear the list to its marker."""
        self.pop_to(index)
        self.clear_to_last_marker()

    def make_inert(self, index: int) -> None:
        """Keep the element at index open but out of reach of every tag."""
        element = self.stack[index]
        self.positions[element.key].remove(index)
        for category in element.categories:
            self.positions[category].remove(index)
        element.categories = ()
        element.key = f"\1{index}"  # one of a kind: no tag name starts with a control character
        self.positions[element.key] = [index]

    def pop_current(self) -> None:
        self.pop_to(len(self.stack) - 1)

    def in_scope(self, key: str, boundary: str = _IN_SCOPE) -> int:
        """The position of the topmost open `key` when no boundary element is above it, else -1."""
        index = self.top(key)
        return index if index >= 0 and self.top(boundary) <= index else -1

    def close_p(self) -> None:
        index = self.in_scope("p", _BUTTON_SCOPE)
        if index >= 0:
            self.pop_to(index)

    def position_of(self, element: _Open) -> int:
        """Where an element is on the stack, or -1 once it is closed."""
        index = element.index
        return index if index < len(self.stack) and self.stack[index] is element else -1

    # The list of active formatting elements

    def reconstruct(self) -> None:
        """Re-open the active formatting elements that were closed without their end tags."""
        active = self.active
        first = len(active)
        while first > 0 and active[first - 1] is not None and active[first - 1].open is None:
            first -= 1
        if first == len(active):
            return
        # Entries taken out meanwhile are dropped here, so none is passed twice.
        reopened = [entry for entry in active[first:] if not entry.removed]
        active[first:] = reopened
        for entry in reopened:
            self.count(1, reopened=True)
            self.reopened_bytes += entry.size
            if self.reopened_bytes > self.limits.max_html_bytes:
                raise ConversionError(
                    "HTML leaves formatting elements open, which the HTML rules repeat in every "
                    f"following paragraph: more than {self.limits.max_html_bytes / MiB:.1f} MB"
                )
            element = self.push(entry.name)
            element.entry = entry
            entry.open = element

    def add_formatting(self, name: str, size: int) -> None:
        self.added += 1
        entry = _Formatting(name, size, self.added)
        element = self.push(name)
        element.entry = entry
        entry.open = element
        self.active.append(entry)
        self.by_name.setdefault(name, []).append(entry)

    def last_active(self, name: str) -> _Formatting | None:
        """The newest active entry of this name after the last marker."""
        entries = self.by_name.get(name)
        if not entries:
            return None
        entry = entries[-1]
        return entry if not self.markers or entry.order > self.markers[-1] else None

    def forget(self, entry: _Formatting) -> None:
        """Take an entry out of the list."""
        entry.removed = True
        entries = self.by_name[entry.name]
        if entries[-1] is entry:
            entries.pop()
        else:
            entries.remove(entry)
        if entry.open is not None:
            entry.open.entry = None
            entry.open = None
        if self.active and self.active[-1] is entry:
            self.active.pop()

    def end_formatting(self, name: str) -> None:
        """An end tag of a formatting element, as the adoption agency rules treat it."""
        entry = self.last_active(name)
        if entry is None:
            self.end_other(name)
            return
        if entry.open is None:
            self.forget(entry)  # no longer open: only forgotten
            return
        position = self.position_of(entry.open)
        if self.top(_IN_SCOPE) > position:
            return  # not in scope (a cell, a select, an object...): ignored
        specials = self.positions.get(_SPECIAL_CATEGORY, [])
        blocks_above = len(specials) - bisect_right(specials, position)
        if not blocks_above:
            self.forget(entry)
            self.pop_to(position)
        elif blocks_above < 8:
            # Block by block, the rules clone it with the three formatting elements nearest
            # the block below it, take everything else between out of the stack (and the list),
            # and finally close everything above the last block. The clones are counted; what
            # the rules take out stays open here, which keeps more open than the rules do,
            # but out of reach of every tag.
            blocks = set(specials[len(specials) - blocks_above :])
            kept = 0
            for index in range(specials[-1] - 1, position, -1):
                if index in blocks:
                    kept = 0
                    continue
                element = self.stack[index]
                if element.entry is not None and kept < 3:
                    kept += 1
                    continue
                if element.entry is not None:
                    self.forget(element.entry)
                if element.key[0] != "\1":
                    self.make_inert(index)
            self.work += specials[-1] - position
            if self.work > 8 * self.limits.max_html_elements:
                raise ConversionError("HTML misnests its formatting elements too often")
            self.count(_MOST_CLONES)
            self.forget(entry)
            self.make_inert(position)
            self.pop_to(specials[-1] + 1)
        else:
            self.count(_MOST_CLONES)  # the rules stop after eight rounds and close nothing more

    def end_other(self, key: str) -> None:
        """An end tag closes its element if no special element is above it."""
        index = self.top(key)
        if index >= 0 and self.top(_SPECIAL_CATEGORY) <= index:
            self.pop_to(index)


def scan_html(html: str, limits: Limits) -> _Tree:
    """Refuse an HTML payload that the sanitiser's parser would nest or multiply past the limits.

    Returns the scanned tree (its deepest nesting, its element count).
    """
    tree = _Tree(limits)
    tree.push("html")  # the fragment's root, as the sanitiser parses it
    find = html.find
    match_tag = _TAG.match
    length = len(html)
    position = 0
    while position < length:
        start = find("<", position)
        if start < 0:
            _text(tree, html, position, length)
            return tree
        if start > position:
            _text(tree, html, position, start)
        tag = match_tag(html, start)
        if tag is None:
            second = html[start + 1 : start + 2]
            if second == "!":
                position = _after_declaration(html, start, tree)
            elif second in ("?", "/"):
                position = _after(html, ">", start)  # a bogus comment ("</" without a letter too)
            else:
                _text(tree, html, start, start + 1)  # a "<" that opens nothing is text
                position = start + 1
            continue
        closing, name, attributes, self_closing, closed = tag.groups()
        if not closed:
            return tree  # the input ends inside a tag, which the tokenizer then drops
        position = tag.end()
        name = name.translate(_ASCII_LOWER)  # the tokenizer lowers ASCII letters only
        if closing:
            _end_tag(tree, name)
            continue
        raw = _start_tag(tree, name, attributes, bool(self_closing), position - start)
        if raw is None:
            continue
        if raw == "plaintext":
            return tree
        if raw == "script":
            position = _script_end(html, position)
        else:
            found = _RAW_TEXT_END[raw].search(html, position)
            if found is None:
                return tree
            position = found.start()
    return tree


def _after(html: str, text: str, start: int) -> int:
    found = html.find(text, start)
    return len(html) if found < 0 else found + len(text)


def _after_declaration(html: str, start: int, tree: _Tree) -> int:
    if html.startswith("<!--", start):
        found = _COMMENT_END.search(html, start + 2)  # "<!-->" and "<!--->" end at once
        return len(html) if found is None else found.end()
    if tree.current().foreign and html.startswith("<![CDATA[", start):
        end = _after(html, "]]>", start + 9)
        _text(tree, html, start + 9, end)  # text, read as text is where it stands
        return end
    return _after(html, ">", start)  # a doctype or a bogus comment


def _script_end(html: str, position: int) -> int:
    """Where a script element's text ends: the tokenizer's script data states, escapes and all."""
    state = _SCRIPT_DATA
    while True:
        found = state.search(html, position)
        if found is None:
            return len(html)
        token = found.group(0)
        position = found.end()
        if token.startswith("</"):
            if state is not _SCRIPT_DOUBLE_ESCAPED:
                return found.start()
            state = _SCRIPT_ESCAPED
        elif token.startswith("<!--"):
            state = _SCRIPT_DATA if found.group(1) else _SCRIPT_ESCAPED
        elif token.startswith("<"):
            state = _SCRIPT_DOUBLE_ESCAPED
        else:  # "-->" or more dashes
            state = _SCRIPT_DATA


def _text(tree: _Tree, html: str, start: int, end: int) -> None:
    current = tree.stack[-1]
    if current.name in _TABLE_TEXT and current.namespace == "html" and not html[start:end].strip(_WS):
        return  # white space directly in a table is kept as it is, re-opening nothing
    if current.name == "colgroup":
        _leave_column_group(tree)
    active = tree.active
    if not active or active[-1] is None or active[-1].open is not None:
        return  # nothing to re-open
    current = tree.current()
    if not current.foreign or current.integration or current.name in _MATH_TEXT_INTEGRATION:
        tree.reconstruct()


def _generate_implied_end_tags(tree: _Tree, keep: str = "") -> None:
    """Close the paragraphs, items, options and ruby parts open on top, as the rules do."""
    while (current := tree.current()).name in _IMPLIED_END and current.namespace == "html":
        if current.name == keep:
            return
        tree.pop_current()


def _leave_column_group(tree: _Tree) -> None:
    # In a column group anything but col ends it and is read again in the table.
    current = tree.current()
    if current.name == "colgroup" and current.namespace == "html":
        tree.pop_current()


def _foreign_rules_apply(tree: _Tree, name: str) -> bool:
    current = tree.current()
    if not current.foreign or current.integration:
        return False
    if current.namespace == "math":
        if current.name in _MATH_TEXT_INTEGRATION:
            return name in ("mglyph", "malignmark")
        if current.name == "annotation-xml":
            return name != "svg"
    return True


def _start_tag(tree: _Tree, name: str, attributes: str, self_closing: bool, size: int) -> str | None:
    """Apply a start tag; the kind of raw text that follows it, if any."""
    if tree.stack[-1].namespace != "html" and _foreign_rules_apply(tree, name):
        if name not in _BREAKOUT:
            tree.count(1)
            namespace = tree.current().namespace
            if self_closing:
                tree.touch()
            else:
                tree.push(name, namespace, _is_integration_point(namespace, name, attributes))
            return None
        while _foreign_rules_apply(tree, name):
            tree.pop_current()
    if name in _IGNORED:
        return None
    if name == "template":
        raise ConversionError(TEMPLATE_REFUSED)
    tree.count(1)
    if name != "col":
        _leave_column_group(tree)
    if name == "form":
        if tree.form is not None:
            tree.count(-1)  # a form in a form is ignored
            return None
        if _table_context(tree)[0] in _ROW_GROUP_CONTEXTS:
            tree.touch()  # directly in a table a form is made and closed at once
            tree.form = _Open("form", "html", False, ())
            tree.form.index = -1
            return None
    if name in _CLOSES_P:
        if name == "li":
            _close_list_item(tree, ("li",), _LIST_ITEM_STOP)
        elif name in ("dd", "dt"):
            _close_list_item(tree, ("dd", "dt"), _DESCRIPTION_STOP)
        tree.close_p()
        if name in _HEADINGS and tree.current().name in _HEADINGS:
            tree.pop_current()
        if name == "hr":
            if tree.in_scope("select") >= 0:
                _generate_implied_end_tags(tree)
            tree.touch()
            return None
        if name == "xmp":
            tree.reconstruct()
        element = tree.push(name)
        if name == "form":
            tree.form = element
        return name if name in ("plaintext", "xmp") else None
    if name in ("svg", "math"):
        tree.reconstruct()
        if self_closing:
            tree.touch()
        else:
            tree.push(name, name, False)
        return None
    if name in _FORMATTING:
        if name == "a" and tree.last_active("a") is not None:
            tree.end_formatting("a")  # an open link ends at the next one
            entry = tree.last_active("a")
            if entry is not None and entry.open is None:
                tree.forget(entry)
        tree.reconstruct()
        if name == "nobr" and tree.in_scope("nobr") >= 0:
            tree.end_formatting("nobr")
            tree.reconstruct()
        tree.add_formatting(name, size)
        return None
    if name in _TABLE_STARTS:
        _start_table_part(tree, name)
        return None
    if name in ("input", "keygen"):
        index = tree.in_scope("select")
        if index >= 0:
            tree.pop_to(index)  # these end a select
    if name in _VOID:
        if name not in _VOID_WITHOUT_REOPENING:
            tree.reconstruct()
        tree.touch()
        return None
    if name in ("button", "select"):
        index = tree.in_scope(name)
        if index >= 0:
            tree.pop_to(index)
            if name == "select":
                tree.count(-1)  # a select in a select only ends the first
                return None
    elif name in ("rb", "rp", "rt", "rtc"):
        if tree.in_scope("ruby") >= 0:
            # In a ruby these end the open paragraphs, items, options and annotations above them.
            _generate_implied_end_tags(tree, keep="rtc" if name in ("rp", "rt") else "")
    elif name in ("option", "optgroup"):
        if tree.in_scope("select") >= 0:
            # In a select these end the open paragraphs, items and options above them.
            _generate_implied_end_tags(tree, keep="optgroup")
        elif tree.current().name == "option":
            tree.pop_current()
    if name not in _NOT_REOPENING:
        tree.reconstruct()
    tree.push(name)
    if name == "script":
        return "script"
    return name if name in _RAW_TEXT_END else None


def _close_list_item(tree: _Tree, names: tuple[str, ...], stop: str) -> None:
    index = max(tree.top(name) for name in names)
    if index >= 0 and tree.top(stop) < index:
        tree.pop_to(index)


def _table_context(tree: _Tree) -> tuple[str | None, int]:
    """The innermost table element that decides how table tags are read, and its position."""
    best, where = None, -1
    for name in _TABLE_CONTEXTS:
        index = tree.top(name)
        if index > where:
            best, where = name, index
    return best, where


def _start_table_part(tree: _Tree, name: str) -> None:
    """A table tag, read as the table element it is in (or not) decides."""
    while True:
        context, where = _table_context(tree)
        if context is None:
            if name == "table":
                tree.close_p()
                tree.push("table")
            else:
                tree.count(-1)  # outside a table these are ignored
            return
        if context in ("td", "th", "caption"):
            if name == "table":
                tree.close_p()
                tree.push("table")
                return
            tree.close_to(where)  # the cell or caption ends, and the tag is read again
            continue
        if name == "table":
            table = tree.top("table")
            if table >= 0:
                tree.pop_to(table)  # a table directly in a table ends the first
            tree.push("table")
            return
        if context == "tr":
            if name in ("td", "th"):
                tree.pop_to(where + 1)
                tree.push(name)
                return
            tree.pop_to(where)
            continue
        if context in _TABLE_SECTIONS:
            if name in ("tr", "td", "th"):
                tree.pop_to(where + 1)
                if name != "tr":
                    tree.count(1)
                tree.push("tr")
                if name != "tr":
                    tree.push(name)
                return
            tree.pop_to(where)
            continue
        if context == "colgroup":
            if name == "col":
                return
            tree.pop_to(where)
            continue
        tree.pop_to(where + 1)  # in the table itself: what was put before it is closed
        if name == "col":
            tree.count(1)
            tree.push("colgroup")
            return
        if name in ("tr", "td", "th"):
            tree.count(1)
            tree.push("tbody")
            continue
        tree.push(name)
        return


def _is_integration_point(namespace: str, name: str, attributes: str) -> bool:
    if namespace == "svg":
        return name in _SVG_INTEGRATION
    if name != "annotation-xml":
        return False
    for attribute in _ATTRIBUTE.finditer(attributes):
        if attribute.group(1).translate(_ASCII_LOWER) == "encoding":
            value = next((group for group in attribute.groups()[1:] if group is not None), "")
            return value.translate(_ASCII_LOWER) in _HTML_ENCODINGS
    return False


def _end_tag(tree: _Tree, name: str) -> None:
    current = tree.current()
    if current.foreign:
        if name in ("br", "p"):
            while (top := tree.current()).foreign and not (
                top.integration or (top.namespace == "math" and top.name in _MATH_TEXT_INTEGRATION)
            ):
                tree.pop_current()
        else:
            index = tree.top("\0" + name)
            if index > current.html_at:
                tree.pop_to(index)
                return
    if name in _IGNORED:
        return
    if name not in ("colgroup", "col"):
        _leave_column_group(tree)
    if name in _FORMATTING:
        tree.end_formatting(name)
    elif name == "p":
        index = tree.in_scope("p", _BUTTON_SCOPE)
        if index >= 0:
            tree.pop_to(index)
        else:
            tree.count(1)  # "</p>" alone makes an empty paragraph
            tree.touch()
    elif name == "br":
        tree.reconstruct()  # "</br>" is read as "<br>"
        tree.count(1)
        tree.touch()
    elif name == "li":
        index = tree.in_scope("li", _LIST_ITEM_SCOPE)
        if index >= 0:
            tree.pop_to(index)
    elif name in _HEADINGS:
        index = tree.in_scope(_HEADING)
        if index >= 0:
            tree.pop_to(index)
    elif name in _DEFAULT_SCOPE_ENDS:
        index = tree.in_scope(name)
        if index >= 0:
            if name in _MARKERS:
                tree.close_to(index)
            else:
                tree.pop_to(index)
    elif name in _TABLE_ENDS:
        _end_table_part(tree, name)
    elif name == "form":
        # The rules take the form element out of the stack and leave what is above it open.
        form, tree.form = tree.form, None
        index = -1 if form is None else tree.position_of(form)
        if index >= 0 and tree.top(_IN_SCOPE) <= index:
            _generate_implied_end_tags(tree)
            if index == len(tree.stack) - 1:
                tree.pop_current()
            else:
                tree.make_inert(index)
    else:
        tree.end_other(name)


def _end_table_part(tree: _Tree, name: str) -> None:
    """A table end tag, as the table element it is in reads it."""
    index = tree.in_scope(name, _IN_TABLE_SCOPE)
    if index < 0:
        return
    if name in ("td", "th", "caption"):
        tree.close_to(index)
        return
    context, where = _table_context(tree)
    if context == "caption":
        if name != "table":
            return  # a caption ignores these
        tree.close_to(where)
    elif context in ("td", "th"):
        tree.close_to(where)  # the cell ends first
    tree.pop_to(index)
