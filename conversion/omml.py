"""Office Math (OMML) equations as MathML, which browsers render natively.

mammoth knows nothing of ``m:oMath``: equations vanished. Here each ``m:oMath`` (inline) and
``m:oMathPara`` (display, one ``<math display="block">`` per ``m:oMath`` in it) is rewritten,
as the XML parser finishes it, into a Word run whose text is the MathML markup between two
marker characters; mammoth keeps it as escaped text and ``finish_html`` turns each marked span
back into markup. The markers are characters XML 1.0 cannot carry (not even as character
references), so no document text can make one. Everything an equation needs travels in its
own run, so a part and any of its blocks convert alike.

The mapping follows ECMA-376 Part 1, 22.1 (Math). Runs are split into ``mi`` (letters),
``mn`` (numbers) and ``mo`` (everything else), styled as ``m:sty``/``m:scr`` say; normal text
(``m:nor``, and Word runs inside an equation) becomes ``mtext``. An element the mapping does
not know, and anything nested deeper than it follows, keeps its text, so no word is lost.
``MATHML_ATTRIBUTES`` lists every element, attribute and value written: the sanitiser lets
through exactly these.
"""

from __future__ import annotations

import re

from mammoth.docx.xmlparser import XmlElement, XmlText

from .xml_parser import ELEMENT_REWRITES

MATH_NAMESPACES = (
    "http://schemas.openxmlformats.org/officeDocument/2006/math",
    "http://purl.oclc.org/ooxml/officeDocument/math",  # Strict
)
MARK_START = "\x01"
MARK_END = "\x02"

_VARIANTS = (
    "normal bold bold-italic double-struck script bold-script fraktur bold-fraktur sans-serif "
    "bold-sans-serif sans-serif-italic sans-serif-bold-italic monospace"
)
_NOTATIONS = "box top bottom left right horizontalstrike verticalstrike updiagonalstrike downdiagonalstrike"


def _one_of(words: str) -> re.Pattern:
    return re.compile("|".join(re.escape(word) for word in words.split()))


def _list_of(words: str) -> re.Pattern:
    word = "(?:" + "|".join(re.escape(word) for word in words.split()) + ")"
    return re.compile(f"{word}(?: {word})*")


# Element: {attribute: the pattern its whole value matches}. Nothing here can name a URL,
# load a resource or run script.
MATHML_ATTRIBUTES: dict[str, dict[str, re.Pattern]] = {
    "math": {"display": _one_of("block")},
    "mi": {"mathvariant": _one_of(_VARIANTS)},
    "mn": {"mathvariant": _one_of(_VARIANTS)},
    "mo": {"stretchy": _one_of("true false")},
    "mtext": {},
    "mrow": {},
    "mfrac": {"linethickness": _one_of("0")},
    "msqrt": {},
    "mroot": {},
    "msub": {},
    "msup": {},
    "msubsup": {},
    "mmultiscripts": {},
    "mprescripts": {},
    "munder": {"accentunder": _one_of("true")},
    "mover": {"accent": _one_of("true")},
    "munderover": {},
    "mtable": {"columnalign": _list_of("left center right")},
    "mtr": {},
    "mtd": {},
    "menclose": {"notation": _list_of(_NOTATIONS)},
    "mphantom": {},
    "mpadded": {"width": _one_of("0"), "height": _one_of("0"), "depth": _one_of("0")},
}

_TEXT_ELEMENTS = frozenset({"mi", "mn", "mo", "mtext"})
# An OMML structure nested deeper than this keeps only its text: bounded output depth and stack.
_MAX_DEPTH = 64
_INTEGRALS = frozenset("∫∬∭∮∯∰∱∲∳⨌⨍⨎⨏⨐⨑⨒⨓⨔⨕⨖⨗⨘⨙⨚⨛⨜")
# Combining accents (what Word stores) as the spacing characters MathML stretches over a base.
_SPACING_ACCENTS = {
    "\u0300": "\u0060",
    "\u0301": "\u00b4",
    "\u0302": "\u02c6",
    "\u0303": "\u02dc",
    "\u0304": "\u00af",
    "\u0305": "\u203e",
    "\u0306": "\u02d8",
    "\u0307": "\u02d9",
    "\u0308": "\u00a8",
    "\u030a": "\u02da",
    "\u030c": "\u02c7",
    "\u20d0": "\u21bc",
    "\u20d1": "\u21c0",
    "\u20d6": "\u2190",
    "\u20d7": "\u2192",
    "\u20e1": "\u2194",
}
# Symbols that name a quantity rather than an operation.
_IDENTIFIER_SYMBOLS = frozenset("∞∅")
# A run's text: numbers (digits with one decimal point), letters with their combining marks,
# spaces, and any other character alone.
_TOKEN = re.compile(
    r"(?P<number>\d+(?:\.\d+)?|\.\d+)"
    r"|(?P<letters>(?:[^\W\d_][\u0300-\u036f\u20d0-\u20ff]*)+)"
    r"|(?P<space>\s+)"
    r"|(?P<other>.[\u0300-\u036f\u20d0-\u20ff]*)",
    re.DOTALL,
)
_LETTER = re.compile(r"[^\W\d_][\u0300-\u036f\u20d0-\u20ff]*")
# mathvariant by m:scr (script) and m:sty (p plain, i italic, b bold, bi bold italic);
# None is MathML's own default, italic for one letter.
_LETTER_VARIANTS = {
    "roman": {"p": "normal", "i": None, "b": "bold", "bi": "bold-italic"},
    "script": {"p": "script", "i": "script", "b": "bold-script", "bi": "bold-script"},
    "fraktur": {"p": "fraktur", "i": "fraktur", "b": "bold-fraktur", "bi": "bold-fraktur"},
    "double-struck": dict.fromkeys(("p", "i", "b", "bi"), "double-struck"),
    "sans-serif": {
        "p": "sans-serif", "i": "sans-serif-italic", "b": "bold-sans-serif", "bi": "sans-serif-bold-italic",
    },
    "monospace": dict.fromkeys(("p", "i", "b", "bi"), "monospace"),
}  # fmt: skip
# Digits have no italic, script or fraktur forms.
_NUMBER_VARIANTS = {
    "normal": None,
    "script": None,
    "fraktur": None,
    "bold-script": "bold",
    "bold-fraktur": "bold",
    "bold-italic": "bold",
    "sans-serif-italic": "sans-serif",
    "sans-serif-bold-italic": "bold-sans-serif",
}
# Word parts that hold paragraphs: an equation paragraph directly in one is made a w:p. ""
# is no parent: a top-level block of a body parsed on its own.
_BLOCK_CONTAINERS = frozenset(
    {
        "", "w:body", "w:tc", "w:txbxContent", "w:footnote", "w:endnote", "w:comment", "w:hdr", "w:ftr",
        "w:docPartBody",
    }
)  # fmt: skip
# Word elements inside an equation whose content is not shown, as mammoth leaves them out.
_HIDDEN_WORD_ELEMENTS = frozenset({"w:del", "w:moveFrom", "w:delText", "w:instrText", "w:rPr"})
_MARKED = re.compile(f"{MARK_START}([^{MARK_START}{MARK_END}<]*){MARK_END}")
_ESCAPED = re.compile("&(lt|gt|amp|quot);")
_UNESCAPED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_MARKERS = str.maketrans("", "", MARK_START + MARK_END)


class _Node:
    """One MathML element: its children are nodes, or one text for a token element."""

    __slots__ = ("tag", "attributes", "children")

    def __init__(self, tag: str, children: list | None = None, **attributes: str):
        self.tag = tag
        self.attributes = attributes
        self.children = children if children is not None else []


def _token(tag: str, text: str, **attributes: str) -> _Node:
    return _Node(tag, [text], **attributes)


def _row(nodes: list[_Node]) -> _Node:
    """Nodes as one argument of a layout element."""
    return nodes[0] if len(nodes) == 1 else _Node("mrow", nodes)


# Reading OMML as mammoth's parser names it: "{uri}local", attributes too.


def _math_local(name: str) -> str | None:
    if name.startswith("{"):
        uri, _, local = name[1:].partition("}")
        if uri in MATH_NAMESPACES:
            return local
    return None


def _child(element: XmlElement, local: str) -> XmlElement | None:
    for child in element.children:
        if isinstance(child, XmlElement) and _math_local(child.name) == local:
            return child
    return None


def _children(element: XmlElement, local: str) -> list[XmlElement]:
    return [
        child
        for child in element.children
        if isinstance(child, XmlElement) and _math_local(child.name) == local
    ]


def _property(properties: XmlElement | None, local: str) -> XmlElement | None:
    return None if properties is None else _child(properties, local)


def _value(properties: XmlElement | None, local: str) -> str | None:
    """The m:val of one property of a construct, or None when it (or its value) is not there."""
    found = _property(properties, local)
    if found is None:
        return None
    for uri in MATH_NAMESPACES:
        value = found.attributes.get(f"{{{uri}}}val")
        if value is not None:
            return value
    return None


def _is_on(properties: XmlElement | None, local: str) -> bool:
    """An OMML on/off property: on when present without a value."""
    if _property(properties, local) is None:
        return False
    value = _value(properties, local)
    return value is None or value.lower() in ("1", "on", "true")


def _character(properties: XmlElement | None, local: str, default: str) -> str:
    value = _value(properties, local)
    return default if value is None else value


def _element_text(element: XmlElement) -> str:
    # Without markers: only an equation's own rewrite writes them (a nested one's text is text).
    text = "".join(child.value for child in element.children if isinstance(child, XmlText))
    return text.translate(_MARKERS)


def _shown_text(element: XmlElement) -> str:
    """The text of m:t and w:t anywhere in element, deleted runs left out; without recursion."""
    parts = []
    stack = [element]
    while stack:
        node = stack.pop()
        if node.name == "w:t" or _math_local(node.name) == "t":
            parts.append(_element_text(node))
        elif node.name not in _HIDDEN_WORD_ELEMENTS and not _is_deleted(node):
            stack.extend(child for child in reversed(node.children) if isinstance(child, XmlElement))
    return "".join(parts)


def _is_deleted(run: XmlElement) -> bool:
    return run.find_child_or_null("w:rPr").find_child("w:del") is not None


# The conversion


class _Scope:
    """Where in the equation a conversion is: how deep, and whether in a function's name."""

    __slots__ = ("depth", "function_name")

    def __init__(self, depth: int = 0, function_name: bool = False):
        self.depth = depth
        self.function_name = function_name

    def deeper(self, function_name: bool = False) -> _Scope:
        return _Scope(self.depth + 1, function_name)


def _content(element: XmlElement | None, scope: _Scope) -> list[_Node]:
    """The MathML of an element's children in order."""
    nodes: list[_Node] = []
    if element is not None:
        for child in element.children:
            if isinstance(child, XmlElement):
                nodes += _convert(child, scope)
    return nodes


def _argument(element: XmlElement, local: str, scope: _Scope) -> _Node:
    """A child argument (m:e, m:num, m:sub, ...) as one node; an empty mrow when missing."""
    return _row(_content(_child(element, local), scope))


def _convert(element: XmlElement, scope: _Scope) -> list[_Node]:
    if scope.depth >= _MAX_DEPTH:
        text = _shown_text(element)
        return [_token("mtext", text)] if text else []
    local = _math_local(element.name)
    if local is None:
        return _word_element(element, scope.deeper(function_name=scope.function_name))
    convert = _CONSTRUCTS.get(local)
    if convert is not None:
        # A function's name is upright: its own runs, not those of constructs inside it.
        return convert(element, scope.deeper(function_name=scope.function_name and local == "r"))
    if local.endswith("Pr"):
        return []  # properties: read by the construct they belong to
    # Unknown: its content, so that no text is lost.
    return _content(element, scope.deeper(function_name=scope.function_name))


def _word_element(element: XmlElement, scope: _Scope) -> list[_Node]:
    """A WordprocessingML element inside an equation: a run's text is normal text."""
    if element.name in _HIDDEN_WORD_ELEMENTS:
        return []
    if element.name == "w:r":
        if _is_deleted(element):
            return []
        text = "".join(
            _element_text(child)
            for child in element.children
            if isinstance(child, XmlElement) and child.name == "w:t"
        )
        return [_text(text)] if text else []
    return _content(element, scope)


def _text(text: str) -> _Node:
    """Normal text; spaces at its ends would be trimmed, so they are kept as no-break spaces."""
    stripped = text.strip(" ")
    leading = len(text) - len(text.lstrip(" "))
    trailing = len(text) - len(text.rstrip(" ")) if stripped else 0
    return _token("mtext", "\u00a0" * leading + stripped + "\u00a0" * trailing)


def _math_run(element: XmlElement, scope: _Scope) -> list[_Node]:
    if _is_deleted(element):
        return []
    text = "".join(
        _element_text(child)
        for child in element.children
        if isinstance(child, XmlElement) and (_math_local(child.name) == "t" or child.name == "w:t")
    )
    if not text:
        return []
    properties = _child(element, "rPr")
    if _is_on(properties, "nor"):
        return [_text(text)]
    style = _value(properties, "sty") or ("p" if scope.function_name else "i")
    script = _value(properties, "scr") or "roman"
    variants = _LETTER_VARIANTS.get(script, _LETTER_VARIANTS["roman"])
    letter_variant = variants.get(style, variants["i"])
    return _tokens(text, style == "p", letter_variant)


def _tokens(text: str, plain: bool, letter_variant: str | None) -> list[_Node]:
    """A math run's text as mi, mn and mo tokens (spaces as mtext)."""
    nodes = []
    number_variant = _NUMBER_VARIANTS.get(letter_variant, letter_variant) if letter_variant else None
    for match in _TOKEN.finditer(text):
        kind, value = match.lastgroup, match.group()
        if kind == "number":
            nodes.append(_token("mn", value, **_variant(number_variant)))
        elif kind == "letters":
            # Plain letters are a word (a function or unit name); otherwise each letter is a variable.
            words = [value] if plain else _LETTER.findall(value)
            for word in words:
                variant = None if plain and len(_LETTER.findall(word)) > 1 else letter_variant
                nodes.append(_token("mi", word, **_variant(variant)))
        elif kind == "space":
            nodes.append(_token("mtext", value.replace(" ", "\u00a0")))
        elif value in _IDENTIFIER_SYMBOLS:
            nodes.append(_token("mi", value))
        else:
            nodes.append(_token("mo", value))
    return nodes


def _variant(variant: str | None) -> dict[str, str]:
    return {} if variant is None else {"mathvariant": variant}


def _fraction(element: XmlElement, scope: _Scope) -> list[_Node]:
    kind = _value(_child(element, "fPr"), "type") or "bar"
    numerator = _argument(element, "num", scope)
    denominator = _argument(element, "den", scope)
    if kind == "lin":
        return [_Node("mrow", [numerator, _token("mo", "/"), denominator])]
    if kind == "skw":
        return [_Node("mrow", [numerator, _token("mo", "\u2044"), denominator])]
    if kind == "noBar":
        return [_Node("mfrac", [numerator, denominator], linethickness="0")]
    return [_Node("mfrac", [numerator, denominator])]


def _scripts(tag: str, *arguments: str):
    def convert(element: XmlElement, scope: _Scope) -> list[_Node]:
        return [_Node(tag, [_argument(element, name, scope) for name in arguments])]

    return convert


def _prescripts(element: XmlElement, scope: _Scope) -> list[_Node]:
    base = _argument(element, "e", scope)
    scripts = [_argument(element, "sub", scope), _argument(element, "sup", scope)]
    return [_Node("mmultiscripts", [base, _Node("mprescripts"), *scripts])]


def _radical(element: XmlElement, scope: _Scope) -> list[_Node]:
    radicand = _content(_child(element, "e"), scope)
    degree = _content(_child(element, "deg"), scope)
    if _is_on(_child(element, "radPr"), "degHide") or not degree:
        return [_Node("msqrt", radicand)]
    return [_Node("mroot", [_row(radicand), _row(degree)])]


def _n_ary(element: XmlElement, scope: _Scope) -> list[_Node]:
    properties = _child(element, "naryPr")
    operator = _character(properties, "chr", "∫")
    location = _value(properties, "limLoc") or ("subSup" if operator in _INTEGRALS else "undOvr")
    node = _token("mo", operator)
    lower = None if _is_on(properties, "subHide") else _content(_child(element, "sub"), scope)
    upper = None if _is_on(properties, "supHide") else _content(_child(element, "sup"), scope)
    limits = location == "undOvr"
    under, over, both = ("munder", "mover", "munderover") if limits else ("msub", "msup", "msubsup")
    if lower and upper:
        node = _Node(both, [node, _row(lower), _row(upper)])
    elif lower:
        node = _Node(under, [node, _row(lower)])
    elif upper:
        node = _Node(over, [node, _row(upper)])
    return [_Node("mrow", [node, _argument(element, "e", scope)])]


def _delimiter(element: XmlElement, scope: _Scope) -> list[_Node]:
    properties = _child(element, "dPr")
    grows = _property(properties, "grow") is None or _is_on(properties, "grow")
    fence = {} if grows else {"stretchy": "false"}
    opening = _character(properties, "begChr", "(")
    separator = _character(properties, "sepChr", "|")
    closing = _character(properties, "endChr", ")")
    nodes = [_token("mo", opening, **fence)] if opening else []
    for index, item in enumerate(_children(element, "e")):
        if index and separator:
            nodes.append(_token("mo", separator, **fence))
        nodes.append(_row(_content(item, scope)))
    if closing:
        nodes.append(_token("mo", closing, **fence))
    return [_Node("mrow", nodes)]


def _matrix(element: XmlElement, scope: _Scope) -> list[_Node]:
    rows = [
        _Node("mtr", [_Node("mtd", _content(cell, scope)) for cell in _children(row, "e")])
        for row in _children(element, "mr")
    ]
    return [_Node("mtable", rows)]


def _equation_array(element: XmlElement, scope: _Scope) -> list[_Node]:
    """Rows of equations; "&" in a row's text marks its alignment points (columns alternate right, left)."""
    rows = []
    widest = 1
    for row in _children(element, "e"):
        cells: list[list[_Node]] = [[]]
        for node in _content(row, scope):
            if node.tag == "mo" and node.children == ["&"]:
                cells.append([])
            else:
                cells[-1].append(node)
        widest = max(widest, len(cells))
        rows.append(_Node("mtr", [_Node("mtd", cell) for cell in cells]))
    if widest == 1:
        return [_Node("mtable", rows)]
    alignment = " ".join("right" if column % 2 == 0 else "left" for column in range(widest))
    return [_Node("mtable", rows, columnalign=alignment)]


def _accent(element: XmlElement, scope: _Scope) -> list[_Node]:
    mark = _character(_child(element, "accPr"), "chr", "\u0302")
    mark = _SPACING_ACCENTS.get(mark, mark)
    return [_Node("mover", [_argument(element, "e", scope), _token("mo", mark)], accent="true")]


def _bar(element: XmlElement, scope: _Scope) -> list[_Node]:
    base = _argument(element, "e", scope)
    if _value(_child(element, "barPr"), "pos") == "top":
        return [_Node("mover", [base, _token("mo", "\u203e", stretchy="true")], accent="true")]
    return [_Node("munder", [base, _token("mo", "_", stretchy="true")], accentunder="true")]


def _group_character(element: XmlElement, scope: _Scope) -> list[_Node]:
    properties = _child(element, "groupChrPr")
    mark = _token("mo", _character(properties, "chr", "\u23df"), stretchy="true")
    tag = "mover" if _value(properties, "pos") == "top" else "munder"
    return [_Node(tag, [_argument(element, "e", scope), mark])]


def _function(element: XmlElement, scope: _Scope) -> list[_Node]:
    # Word shows a function's name upright unless its runs say otherwise.
    name = _row(_content(_child(element, "fName"), scope.deeper(function_name=True)))
    return [_Node("mrow", [name, _token("mo", "\u2061"), _argument(element, "e", scope)])]


def _group(element: XmlElement, scope: _Scope) -> list[_Node]:
    return [_Node("mrow", [_argument(element, "e", scope)])]


_BORDER_SIDES = (("top", "hideTop"), ("bottom", "hideBot"), ("left", "hideLeft"), ("right", "hideRight"))


def _border_box(element: XmlElement, scope: _Scope) -> list[_Node]:
    properties = _child(element, "borderBoxPr")
    sides = [side for side, hidden in _BORDER_SIDES if not _is_on(properties, hidden)]
    notation = ["box"] if len(sides) == 4 else sides
    for strike, name in (
        ("horizontalstrike", "strikeH"),
        ("verticalstrike", "strikeV"),
        ("updiagonalstrike", "strikeBLTR"),
        ("downdiagonalstrike", "strikeTLBR"),
    ):
        if _is_on(properties, name):
            notation.append(strike)
    content = _argument(element, "e", scope)
    if not notation:
        return [_Node("mrow", [content])]
    return [_Node("menclose", [content], notation=" ".join(notation))]


def _phantom(element: XmlElement, scope: _Scope) -> list[_Node]:
    properties = _child(element, "phantPr")
    node = _argument(element, "e", scope)
    if _property(properties, "show") is not None and not _is_on(properties, "show"):
        node = _Node("mphantom", [node])
    zeroed = {
        attribute: "0"
        for attribute, name in (("width", "zeroWid"), ("height", "zeroAsc"), ("depth", "zeroDesc"))
        if _is_on(properties, name)
    }
    if zeroed:
        node = _Node("mpadded", [node], **zeroed)
    return [node]


_CONSTRUCTS = {
    "r": _math_run,
    "f": _fraction,
    "sSub": _scripts("msub", "e", "sub"),
    "sSup": _scripts("msup", "e", "sup"),
    "sSubSup": _scripts("msubsup", "e", "sub", "sup"),
    "sPre": _prescripts,
    "rad": _radical,
    "nary": _n_ary,
    "d": _delimiter,
    "m": _matrix,
    "eqArr": _equation_array,
    "acc": _accent,
    "bar": _bar,
    "groupChr": _group_character,
    "limLow": _scripts("munder", "e", "lim"),
    "limUpp": _scripts("mover", "e", "lim"),
    "func": _function,
    "box": _group,
    "borderBox": _border_box,
    "phant": _phantom,
}


# Writing MathML


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _write(node: _Node, out: list[str]) -> None:
    attributes = "".join(f' {name}="{value}"' for name, value in node.attributes.items())
    out.append(f"<{node.tag}{attributes}>")
    if node.tag in _TEXT_ELEMENTS:
        out.append(_escape(node.children[0]))
    else:
        for child in node.children:
            _write(child, out)
    out.append(f"</{node.tag}>")


def _math(nodes: list[_Node], display: bool) -> str:
    out: list[str] = []
    _write(_Node("math", nodes, **({"display": "block"} if display else {})), out)
    return "".join(out)


def equation_to_mathml(element: XmlElement) -> str:
    """An m:oMath as one inline <math>, an m:oMathPara as one display <math> per equation in it."""
    scope = _Scope()
    if _math_local(element.name) != "oMathPara":
        return _math(_content(element, scope), display=False)
    equations = []
    for child in element.children:
        if not isinstance(child, XmlElement):
            continue
        nodes = _content(child, scope) if _math_local(child.name) == "oMath" else _convert(child, scope)
        if nodes:
            equations.append(_math(nodes, display=True))
    return "".join(equations)


def _rewrite_equation(element: XmlElement, parent_name: str) -> XmlElement:
    """An equation as a Word run carrying its marked MathML (a paragraph of its own where paragraphs go)."""
    if _math_local(parent_name) is not None:
        return element  # converted with the equation it is part of
    text = MARK_START + equation_to_mathml(element) + MARK_END
    run = XmlElement("w:r", {}, [XmlElement("w:t", {}, [XmlText(text)])])
    if parent_name in _BLOCK_CONTAINERS:
        return XmlElement("w:p", {}, [run])
    return run


def finish_html(fragment: str) -> str:
    """mammoth's HTML with each marked equation turned back into MathML markup (and stray markers gone)."""
    if MARK_START not in fragment and MARK_END not in fragment:
        return fragment
    unmarked = _MARKED.sub(
        lambda marked: _ESCAPED.sub(lambda escaped: _UNESCAPED[escaped.group(1)], marked.group(1)), fragment
    )
    return unmarked.translate(_MARKERS)


for _namespace in MATH_NAMESPACES:
    ELEMENT_REWRITES[f"{{{_namespace}}}oMath"] = _rewrite_equation
    ELEMENT_REWRITES[f"{{{_namespace}}}oMathPara"] = _rewrite_equation
