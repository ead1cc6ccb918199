"""Word equations (OMML) reach the page as MathML, every word of them, and nothing hostile does."""

from __future__ import annotations

import base64
import io
import re
import zipfile
from html import unescape
from html.parser import HTMLParser

import mammoth
import pytest
from mammoth.docx import office_xml

from conversion import ConversionError, Limits, convert_payload, omml, sanitise_html, xml_parser
from conversion.flat_opc import flat_opc_to_docx
from conversion.mammoth_html import docx_to_html
from conversion.sanitise import ALLOWED_ATTRIBUTES, ALLOWED_TAGS
from tests.documents import CORPUS
from tests.test_conversion_corpus import CONVERTIBLE_FILES
from tests.test_conversion_features import package, paragraph, run

M_NS = omml.MATH_NAMESPACES[0]
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


# OMML written by hand, as Word writes it.


def m(name: str, content: str = "", properties: str = "") -> str:
    """An OMML element; properties go in its <name>Pr child."""
    own = f"<m:{name}Pr>{properties}</m:{name}Pr>" if properties else ""
    return f"<m:{name}>{own}{content}</m:{name}>"


def val(name: str, value: str) -> str:
    return f'<m:{name} m:val="{value}"/>'


def r(text: str, properties: str = "") -> str:
    """A math run."""
    own = f"<m:rPr>{properties}</m:rPr>" if properties else ""
    return f'<m:r>{own}<m:t xml:space="preserve">{text}</m:t></m:r>'


def plain(text: str) -> str:
    return r(text, val("sty", "p"))


def o_math(content: str, namespace: str = M_NS) -> str:
    return f'<m:oMath xmlns:m="{namespace}">{content}</m:oMath>'


def o_math_para(*equations: str) -> str:
    inner = "".join(f"<m:oMath>{equation}</m:oMath>" for equation in equations)
    return f'<m:oMathPara xmlns:m="{M_NS}">{m("oMathParaPr", val("jc", "center"))}{inner}</m:oMathPara>'


# MathML read back element by element.


class _MathReader(HTMLParser):
    """Every <math> of an HTML text as a tree: (tag, attributes, children), text as str children."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.trees: list[tuple] = []
        self.open: list[tuple] = []

    def handle_starttag(self, tag, attrs):
        if tag != "math" and not self.open:
            return
        element = (tag, dict(attrs), [])
        if self.open:
            self.open[-1][2].append(element)
        else:
            self.trees.append(element)
        self.open.append(element)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if self.open:
            assert self.open[-1][0] == tag, f"</{tag}> closes <{self.open[-1][0]}>"
            self.open.pop()

    def handle_data(self, data):
        if self.open:
            self.open[-1][2].append(data)


def maths(markup: str) -> list[tuple]:
    reader = _MathReader()
    reader.feed(markup)
    reader.close()
    assert not reader.open, "a <math> is not closed"
    return reader.trees


def math_text(tree) -> str:
    if isinstance(tree, str):
        return tree
    return "".join(math_text(child) for child in tree[2])


def convert(body: str, **parts) -> str:
    return convert_payload(package(body, **parts), "ooxml").html


def unsanitised(body: str) -> str:
    return docx_to_html(flat_opc_to_docx(package(body), Limits()))[0]


def inline(content: str) -> str:
    """The MathML markup of one inline equation, as the converter writes it."""
    return f"<math>{content}</math>"


NBSP = "\u00a0"
CONSTRUCTS = {
    # Runs: numbers, letters and operators.
    "numbers letters operators": (r("2.5x+y"), "<mn>2.5</mn><mi>x</mi><mo>+</mo><mi>y</mi>"),
    "italic letters are each a variable": (r("dx"), "<mi>d</mi><mi>x</mi>"),
    "plain letters are a word": (
        plain("sin x"),
        f'<mi>sin</mi><mtext>{NBSP}</mtext><mi mathvariant="normal">x</mi>',
    ),
    "normal text is text": (r(" if and only if ", "<m:nor/>"), f"<mtext>{NBSP}if and only if{NBSP}</mtext>"),
    "bold": (r("v1", val("sty", "b")), '<mi mathvariant="bold">v</mi><mn mathvariant="bold">1</mn>'),
    "bold italic": (r("e", val("sty", "bi")), '<mi mathvariant="bold-italic">e</mi>'),
    "double struck": (r("R", val("scr", "double-struck")), '<mi mathvariant="double-struck">R</mi>'),
    "bold script": (
        r("L2", val("scr", "script") + val("sty", "b")),
        '<mi mathvariant="bold-script">L</mi><mn mathvariant="bold">2</mn>',
    ),
    "word run inside an equation": ("<w:r><w:t>where</w:t></w:r>", "<mtext>where</mtext>"),
    "markup characters are text": (
        r("a&lt;b&amp;c&gt;"),
        "<mi>a</mi><mo>&lt;</mo><mi>b</mi><mo>&amp;</mo><mi>c</mi><mo>&gt;</mo>",
    ),
    "infinity is an identifier": (r("−∞"), "<mo>−</mo><mi>∞</mi>"),
    # Fractions.
    "fraction": (m("f", m("num", r("a")) + m("den", r("b"))), "<mfrac><mi>a</mi><mi>b</mi></mfrac>"),
    "fraction arguments are rows": (
        m("f", m("num", r("a+1")) + m("den", r("2"))),
        "<mfrac><mrow><mi>a</mi><mo>+</mo><mn>1</mn></mrow><mn>2</mn></mfrac>",
    ),
    "fraction without bar": (
        m("f", m("num", r("n")) + m("den", r("k")), val("type", "noBar")),
        '<mfrac linethickness="0"><mi>n</mi><mi>k</mi></mfrac>',
    ),
    "linear fraction": (
        m("f", m("num", r("a")) + m("den", r("b")), val("type", "lin")),
        "<mrow><mi>a</mi><mo>/</mo><mi>b</mi></mrow>",
    ),
    "skewed fraction": (
        m("f", m("num", r("a")) + m("den", r("b")), val("type", "skw")),
        "<mrow><mi>a</mi><mo>\u2044</mo><mi>b</mi></mrow>",
    ),
    # Scripts.
    "subscript": (m("sSub", m("e", r("x")) + m("sub", r("i"))), "<msub><mi>x</mi><mi>i</mi></msub>"),
    "superscript": (m("sSup", m("e", r("x")) + m("sup", r("2"))), "<msup><mi>x</mi><mn>2</mn></msup>"),
    "sub and superscript": (
        m("sSubSup", m("e", r("R")) + m("sub", r("i")) + m("sup", r("j"))),
        "<msubsup><mi>R</mi><mi>i</mi><mi>j</mi></msubsup>",
    ),
    "prescripts": (
        m("sPre", m("sub", r("1")) + m("sup", r("2")) + m("e", r("X"))),
        "<mmultiscripts><mi>X</mi><mprescripts></mprescripts><mn>1</mn><mn>2</mn></mmultiscripts>",
    ),
    # Radicals.
    "root with degree": (m("rad", m("deg", r("3")) + m("e", r("x"))), "<mroot><mi>x</mi><mn>3</mn></mroot>"),
    "square root, degree hidden": (
        m("rad", "<m:deg/>" + m("e", r("x+1")), val("degHide", "1")),
        "<msqrt><mi>x</mi><mo>+</mo><mn>1</mn></msqrt>",
    ),
    "square root, empty degree": (m("rad", "<m:deg/>" + m("e", r("2"))), "<msqrt><mn>2</mn></msqrt>"),
    # N-ary operators.
    "sum with limits under and over": (
        m(
            "nary",
            m("sub", r("k=0")) + m("sup", r("n")) + m("e", r("k")),
            val("chr", "∑") + val("limLoc", "undOvr"),
        ),
        "<mrow><munderover><mo>∑</mo><mrow><mi>k</mi><mo>=</mo><mn>0</mn></mrow><mi>n</mi></munderover>"
        "<mi>k</mi></mrow>",
    ),
    "integral by default, limits as scripts": (
        m("nary", m("sub", r("0")) + m("sup", r("1")) + m("e", r("x"))),
        "<mrow><msubsup><mo>∫</mo><mn>0</mn><mn>1</mn></msubsup><mi>x</mi></mrow>",
    ),
    "sum with limits as scripts": (
        m("nary", m("sub", r("i")) + "<m:sup/>" + m("e", r("a")), val("chr", "∑") + val("limLoc", "subSup")),
        "<mrow><msub><mo>∑</mo><mi>i</mi></msub><mi>a</mi></mrow>",
    ),
    "product, lower limit hidden": (
        m("nary", "<m:sub/>" + m("sup", r("n")) + m("e", r("a")), val("chr", "∏") + val("subHide", "1")),
        "<mrow><mover><mo>∏</mo><mi>n</mi></mover><mi>a</mi></mrow>",
    ),
    "contour integral, both limits hidden": (
        m(
            "nary",
            m("sub", r("C")) + m("sup", r("D")) + m("e", r("F")),
            val("chr", "∮") + val("subHide", "on") + val("supHide", "true"),
        ),
        "<mrow><mo>∮</mo><mi>F</mi></mrow>",
    ),
    # Delimiters.
    "parentheses by default": (m("d", m("e", r("x"))), "<mrow><mo>(</mo><mi>x</mi><mo>)</mo></mrow>"),
    "brackets with the default separator": (
        m("d", m("e", r("a")) + m("e", r("b")), val("begChr", "[") + val("endChr", "]")),
        "<mrow><mo>[</mo><mi>a</mi><mo>|</mo><mi>b</mi><mo>]</mo></mrow>",
    ),
    "brace only, comma separated": (
        m(
            "d",
            m("e", r("1")) + m("e", r("2.5")),
            val("begChr", "{") + val("sepChr", ",") + val("endChr", ""),
        ),
        "<mrow><mo>{</mo><mn>1</mn><mo>,</mo><mn>2.5</mn></mrow>",
    ),
    "delimiters that do not grow": (
        m("d", m("e", r("x")), val("grow", "0")),
        '<mrow><mo stretchy="false">(</mo><mi>x</mi><mo stretchy="false">)</mo></mrow>',
    ),
    # Matrices and equation arrays.
    "matrix": (
        m("m", m("mr", m("e", r("a")) + m("e", r("b"))) + m("mr", m("e", r("c")) + m("e", r("d")))),
        "<mtable><mtr><mtd><mi>a</mi></mtd><mtd><mi>b</mi></mtd></mtr>"
        "<mtr><mtd><mi>c</mi></mtd><mtd><mi>d</mi></mtd></mtr></mtable>",
    ),
    "equation array": (
        m("eqArr", m("e", r("x=1")) + m("e", r("y=2"))),
        "<mtable><mtr><mtd><mi>x</mi><mo>=</mo><mn>1</mn></mtd></mtr>"
        "<mtr><mtd><mi>y</mi><mo>=</mo><mn>2</mn></mtd></mtr></mtable>",
    ),
    "equation array aligned at &": (
        m("eqArr", m("e", r("x&amp;=1")) + m("e", r("y+z&amp;=2"))),
        '<mtable columnalign="right left"><mtr><mtd><mi>x</mi></mtd><mtd><mo>=</mo><mn>1</mn></mtd></mtr>'
        "<mtr><mtd><mi>y</mi><mo>+</mo><mi>z</mi></mtd><mtd><mo>=</mo><mn>2</mn></mtd></mtr></mtable>",
    ),
    # Accents, bars, group characters.
    "accent, a hat by default": (
        m("acc", m("e", r("a"))),
        '<mover accent="true"><mi>a</mi><mo>ˆ</mo></mover>',
    ),
    "vector accent": (
        m("acc", m("e", r("v")), val("chr", "\u20d7")),
        '<mover accent="true"><mi>v</mi><mo>→</mo></mover>',
    ),
    "overbar": (
        m("bar", m("e", r("y")), val("pos", "top")),
        '<mover accent="true"><mi>y</mi><mo stretchy="true">‾</mo></mover>',
    ),
    "underbar by default": (
        m("bar", m("e", r("y"))),
        '<munder accentunder="true"><mi>y</mi><mo stretchy="true">_</mo></munder>',
    ),
    "underbrace by default": (
        m("groupChr", m("e", r("a+b"))),
        '<munder><mrow><mi>a</mi><mo>+</mo><mi>b</mi></mrow><mo stretchy="true">⏟</mo></munder>',
    ),
    "overbrace": (
        m("groupChr", m("e", r("a")), val("chr", "⏞") + val("pos", "top")),
        '<mover><mi>a</mi><mo stretchy="true">⏞</mo></mover>',
    ),
    # Limits and functions.
    "lower limit": (
        m("limLow", m("e", plain("lim")) + m("lim", r("n→∞"))),
        "<munder><mi>lim</mi><mrow><mi>n</mi><mo>→</mo><mi>∞</mi></mrow></munder>",
    ),
    "upper limit": (
        m("limUpp", m("e", r("=")) + m("lim", plain("def"))),
        "<mover><mo>=</mo><mi>def</mi></mover>",
    ),
    "function name upright": (
        m("func", m("fName", r("sin")) + m("e", r("θ"))),
        "<mrow><mi>sin</mi><mo>\u2061</mo><mi>θ</mi></mrow>",
    ),
    "function name with a limit under it": (
        m("func", m("fName", m("limLow", m("e", plain("lim")) + m("lim", r("n")))) + m("e", r("a"))),
        "<mrow><munder><mi>lim</mi><mi>n</mi></munder><mo>\u2061</mo><mi>a</mi></mrow>",
    ),
    # Boxes and phantoms.
    "box": (m("box", m("e", r("a"))), "<mrow><mi>a</mi></mrow>"),
    "border box": (
        m("borderBox", m("e", r("E=m"))),
        '<menclose notation="box"><mrow><mi>E</mi><mo>=</mo><mi>m</mi></mrow></menclose>',
    ),
    "border box with hidden sides, struck through": (
        m("borderBox", m("e", r("x")), val("hideTop", "1") + val("hideBot", "1") + "<m:strikeH/>"),
        '<menclose notation="left right horizontalstrike"><mi>x</mi></menclose>',
    ),
    "hidden phantom": (m("phant", m("e", r("x")), val("show", "0")), "<mphantom><mi>x</mi></mphantom>"),
    "phantom without width": (
        m("phant", m("e", r("x")), val("zeroWid", "1")),
        '<mpadded width="0"><mi>x</mi></mpadded>',
    ),
    "hidden phantom without height and depth": (
        m("phant", m("e", r("x")), val("show", "off") + val("zeroAsc", "1") + val("zeroDesc", "1")),
        '<mpadded height="0" depth="0"><mphantom><mi>x</mi></mphantom></mpadded>',
    ),
    "equation inside an equation": (
        m("box", m("e", f"<m:oMath>{r('y')}</m:oMath>")),
        "<mrow><mi>y</mi></mrow>",
    ),
    # What the mapping does not know keeps its text; what Word deleted stays out, as elsewhere.
    "unknown element keeps its text": (
        "<m:newThing><m:r><m:t>kept</m:t></m:r></m:newThing>",
        "<mi>k</mi><mi>e</mi><mi>p</mi><mi>t</mi>",
    ),
    "tracked changes": (
        f'<w:del xmlns:w="{W_NS}"><m:r><m:t>gone</m:t></m:r></w:del>'
        + r("x")
        + f'<m:r><w:rPr xmlns:w="{W_NS}"><w:del/></w:rPr><m:t>gone</m:t></m:r>'
        + f'<w:ins xmlns:w="{W_NS}"><m:r><m:t>y</m:t></m:r></w:ins>',
        "<mi>x</mi><mi>y</mi>",
    ),
}


@pytest.mark.parametrize("omml_content, expected", CONSTRUCTS.values(), ids=CONSTRUCTS.keys())
def test_each_construct_becomes_its_mathml(omml_content, expected):
    body = paragraph(o_math(omml_content))
    assert maths(convert(body)) == maths(inline(expected))


@pytest.mark.parametrize("omml_content", [value[0] for value in CONSTRUCTS.values()], ids=CONSTRUCTS.keys())
def test_the_sanitiser_keeps_every_equation_as_written(omml_content):
    body = paragraph(o_math(omml_content))
    raw = unsanitised(body)
    assert maths(raw) and maths(convert(body)) == maths(raw)


def test_inline_equation_sits_in_its_sentence():
    body = paragraph(run("Let ") + o_math(r("x")) + run(" be real."))
    assert convert(body) == "<p>Let <math><mi>x</mi></math> be real.</p>"


def test_display_equations_are_one_block_math_each():
    body = paragraph(o_math_para(r("a"), r("b")))
    assert (
        convert(body)
        == '<p><math display="block"><mi>a</mi></math><math display="block"><mi>b</mi></math></p>'
    )


@pytest.mark.parametrize(
    "body",
    [
        o_math_para(r("x")),
        f"<w:tbl><w:tr><w:tc>{o_math_para(r('x'))}</w:tc></w:tr></w:tbl>",
    ],
    ids=["in-the-body", "in-a-table-cell"],
)
def test_display_equation_outside_a_paragraph_is_a_paragraph(body):
    assert '<p><math display="block"><mi>x</mi></math></p>' in convert(body)


def test_strict_documents_equations_are_converted_too():
    strict = "http://purl.oclc.org/ooxml/officeDocument/math"
    body = paragraph(o_math(m("sSup", m("e", r("x")) + m("sup", r("2"))), namespace=strict))
    assert maths(convert(body)) == maths(inline("<msup><mi>x</mi><mn>2</mn></msup>"))


def test_equation_in_the_header_is_converted():
    html = convert(paragraph(run("Body")), header=paragraph(o_math(r("h"))))
    assert html.startswith('<header class="doc-header"><p><math><mi>h</mi></math></p></header>')


def test_deep_nesting_keeps_the_text_and_bounds_the_depth():
    nested = r("deep")
    for _ in range(150):
        nested = m("box", m("e", nested))
    trees = maths(convert(paragraph(o_math(nested))))
    assert math_text(trees[0]) == "deep"

    def depth(tree):
        return 1 + max((depth(child) for child in tree[2] if not isinstance(child, str)), default=0)

    assert depth(trees[0]) < 150


def test_text_that_looks_like_markup_stays_text():
    html = convert(paragraph(o_math(r("&lt;script&gt;alert(1)&lt;/script&gt;"))))
    assert "<script" not in html
    assert math_text(maths(html)[0]) == "<script>alert(1)</script>"


def test_an_equation_rewritten_inside_another_is_only_text_there():
    # A display equation in a text box is a paragraph of its own; inside an equation its
    # markup is text, and its markers do not reach the page.
    box = f"<m:unknown><w:txbxContent>{o_math_para(r('z'))}</w:txbxContent></m:unknown>"
    html = convert(paragraph(o_math(r("x") + box)))
    assert omml.MARK_START not in html and omml.MARK_END not in html
    (tree,) = maths(html)
    assert tree[2][0] == ("mi", {}, ["x"])
    assert "<mi>z</mi>" in math_text(tree)


def test_a_document_cannot_carry_the_marker_characters():
    with pytest.raises(ConversionError):
        convert(paragraph(run("&#1;forged&#2;")))


def test_a_block_converts_alike_alone_and_in_its_part():
    blocks = [
        paragraph(run("Let ") + o_math(m("f", m("num", r("1")) + m("den", r("2"))))),
        o_math_para(r("E=m") + m("sSup", m("e", r("c")) + m("sup", r("2")))),
    ]
    declarations = f'xmlns:w="{W_NS}" xmlns:m="{M_NS}"'
    whole = xml_parser.parse_xml(
        io.BytesIO(f"<w:body {declarations}>{''.join(blocks)}</w:body>".encode()), office_xml._namespaces
    )
    for block, in_part in zip(blocks, whole.children, strict=True):
        alone = block.replace("<w:p>", f"<w:p {declarations}>", 1) if block.startswith("<w:p>") else block
        assert xml_parser.parse_xml(io.BytesIO(alone.encode()), office_xml._namespaces) == in_part


def test_finish_html_gives_the_same_on_any_split_at_top_level_blocks():
    data = (CORPUS / "docx" / "pandoc-equations.docx").read_bytes()
    raw = mammoth.convert_to_html(io.BytesIO(data)).value
    assert omml.MARK_START in raw
    finished = omml.finish_html(raw)
    assert "<math" in finished and omml.MARK_START not in finished
    cuts = [match.end() for match in re.finditer("</p>(?=<p>)", raw)]
    assert len(cuts) >= 4
    for cut in cuts:
        assert omml.finish_html(raw[:cut]) + omml.finish_html(raw[cut:]) == finished


def test_markers_from_a_style_map_reach_only_the_sanitiser():
    # A document's own style map is the one text that is not XML: whatever it makes of the
    # markers is sanitised like any HTML.
    separator = omml.MARK_START + "<img src=x onerror=alert(1)><script>alert(2)</script>" + omml.MARK_END
    docx = flat_opc_to_docx(package(paragraph(run("a")) + paragraph(run("b"))), Limits())
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(docx)) as source, zipfile.ZipFile(buffer, "w") as target:
        for entry in source.infolist():
            target.writestr(entry, source.read(entry))
        target.writestr("mammoth/style-map", f"p => div:separator('{separator}')")
    html = convert_payload(base64.b64encode(buffer.getvalue()).decode(), "docx").html
    assert html.startswith("<div>a")
    assert_inert(html)


# The corpus: every equation keeps every text token, in order.


def _math_parts(path):
    """The XML parts of a corpus document that hold equations, by name."""
    if path.suffix == ".xml":
        text = path.read_text(encoding="utf-8-sig")
        return {path.name: text} if "oMath" in text else {}
    with zipfile.ZipFile(path) as archive:
        return {
            name: archive.read(name).decode("utf-8")
            for name in archive.namelist()
            if name.startswith("word/") and name.endswith(".xml") and b"oMath" in archive.read(name)
        }


EQUATION_FILES = [path for path in CONVERTIBLE_FILES if _math_parts(path)]


def _convert_corpus_file(path) -> str:
    if path.suffix == ".xml":
        return convert_payload(path.read_text(encoding="utf-8-sig"), "ooxml").html
    return convert_payload(base64.b64encode(path.read_bytes()).decode(), "docx").html


def test_corpus_equation_documents_are_all_found():
    names = {path.name for path in EQUATION_FILES}
    assert {"oxpt-equation.docx", "pandoc-equations.docx"} <= names


@pytest.mark.parametrize("path", EQUATION_FILES, ids=[path.name for path in EQUATION_FILES])
def test_corpus_equations_keep_every_text_token_in_order(path):
    trees = maths(_convert_corpus_file(path))
    text = "".join(math_text(tree) for tree in trees)
    text = "".join(text.split())
    equations = 0
    for name, xml in _math_parts(path).items():
        equations += len(re.findall(r"<m:oMath[ >]", xml))
        tokens = [unescape(token) for token in re.findall(r"<m:t(?:\s[^>]*)?>([^<]*)</m:t>", xml)]
        assert tokens, name
        position = 0
        for token in tokens:
            token = "".join(token.split())
            found = text.find(token, position)
            assert found >= 0, f"{name}: {token!r} is missing after {text[:position]!r}"
            position = found + len(token)
    assert len(trees) == equations


# Hostile HTML payloads: MathML that looks like ours carries nothing that runs or loads.


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def assert_inert(markup: str) -> None:
    """Only allowed elements and attributes, no script, no handler, no URL but a data: picture."""
    assert sanitise_html(markup) == markup  # stable: parsing it again changes nothing
    reader = _Elements()
    reader.feed(markup)
    for tag, attributes in reader.found:
        assert tag in ALLOWED_TAGS, tag
        for name, value in attributes.items():
            assert name in ALLOWED_ATTRIBUTES["*"] | ALLOWED_ATTRIBUTES.get(tag, set()), (tag, name)
            assert "javascript" not in (value or "").lower(), (tag, name, value)
            if tag in omml.MATHML_ATTRIBUTES and name not in ("id", "class"):
                assert omml.MATHML_ATTRIBUTES[tag][name].fullmatch(value), (tag, name, value)
    lowered = markup.lower()
    for needle in (
        "<script",
        "<style",
        "onerror",
        "onclick",
        "onload",
        "href",
        "src=",
        "xlink",
        "annotation",
    ):
        assert needle not in lowered, needle


HOSTILE_MATHML = {
    "href on math": '<math href="javascript:alert(1)"><mi href="javascript:alert(1)">x</mi></math>',
    "xlink href": (
        '<math xmlns:xlink="http://www.w3.org/1999/xlink"><mi xlink:href="javascript:alert(1)" '
        'xlink:type="simple">x</mi></math>'
    ),
    "annotation-xml with html": (
        '<math><semantics><mi>x</mi><annotation-xml encoding="text/html"><script>alert(1)</script>'
        "<img src=x onerror=alert(1)></annotation-xml></semantics></math>"
    ),
    "annotation-xml with xhtml link": (
        '<math><annotation-xml encoding="application/xhtml+xml"><a href="javascript:alert(1)">x</a>'
        "</annotation-xml></math>"
    ),
    "annotation": (
        '<math><semantics><mi>x</mi><annotation encoding="text/javascript">alert(1)</annotation>'
        "</semantics></math>"
    ),
    "maction": (
        '<math><maction actiontype="statusline"><mi>x</mi><mtext>javascript:alert(1)</mtext></maction></math>'
    ),
    "mglyph src": '<math><mi><mglyph src="https://example.invalid/x.png" alt="x"/></mi></math>',
    "style in math": "<math><style>*{background:url(https://example.invalid/)}</style><mi>x</mi></math>",
    "mglyph style namespace confusion": "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "form namespace confusion": (
        "<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>"
    ),
    "svg inside math": (
        '<math><mi><svg><script>alert(1)</script><a href="javascript:alert(1)">x</a></svg></mi></math>'
    ),
    "handlers and bad values": (
        '<math display="javascript:alert(1)" onload="alert(1)"><mi mathvariant="url(x)" style="color:red" '
        'onclick="alert(1)">x</mi><mpadded width="expression(alert(1))"><mi>y</mi></mpadded></math>'
    ),
    "html breaking out of mtext": (
        '<math><mtext><img src="data:image/svg+xml,<svg onload=alert(1)>"></mtext></math>'
    ),
    "mi in table breakout": (
        "<table><math><mi><table><td><img src=x onerror=alert(1)></td></table></mi></math></table>"
    ),
}


@pytest.mark.parametrize("markup", HOSTILE_MATHML.values(), ids=HOSTILE_MATHML.keys())
def test_hostile_mathml_in_an_html_payload_runs_nothing(markup):
    assert_inert(convert_payload(markup, "html").html)


def test_our_own_mathml_in_an_html_payload_is_kept():
    markup = (
        '<p><math display="block"><mfrac linethickness="0"><mi mathvariant="bold">n</mi><mn>2</mn>'
        "</mfrac></math></p>"
    )
    assert convert_payload(markup, "html").html == markup
