"""Word equations in the viewer page, in real headless Chromium: MathML laid out as mathematics."""

import pytest

from tests.test_browser_viewer import open_viewer, publish, wait_for_text
from tests.test_conversion_features import package, paragraph, run
from tests.test_conversion_math import m, o_math, o_math_para, r, val

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SQUARE = m("sSup", m("e", r("x")) + m("sup", r("2")))
VECTOR = r("v", val("sty", "b"))
FRACTION = m("f", m("num", r("n(n+1)")) + m("den", r("2")))
SUM = (
    r("S=")
    + m("nary", m("sub", r("k=1")) + m("sup", r("n")) + m("e", r("k")), val("chr", "∑"))
    + r("=")
    + FRACTION
)


@pytest.fixture
def context(chromium):
    context = chromium.new_context(viewport={"width": 1100, "height": 800})
    yield context
    context.close()


def test_equations_render_as_mathematics_in_the_viewer(shared_daphne, context):
    server = shared_daphne
    session = server.create_session("equations")
    body = paragraph(run("A square ") + o_math(SQUARE + VECTOR) + run(" inline.")) + paragraph(
        o_math_para(SUM)
    )
    publish(server, session, package(body))
    page, watch = open_viewer(context, server, session)
    wait_for_text(page, "inline.")
    page.wait_for_function("() => document.querySelectorAll('#document math').length === 2")
    layout = page.evaluate(
        """() => {
            const box = (element) => {
                const rect = element.getBoundingClientRect();
                return {left: rect.left, right: rect.right, top: rect.top, bottom: rect.bottom,
                        width: rect.width, height: rect.height};
            };
            const [inline, display] = document.querySelectorAll('#document math');
            const fraction = display.querySelector('mfrac');
            const line = document.createRange();
            line.selectNodeContents(inline.parentElement.firstChild);  // the text "A square "
            const parts = [...display.children].map(box);
            return {
                inline: box(inline),
                display: box(display),
                fraction: box(fraction),
                numerator: box(fraction.children[0]),
                denominator: box(fraction.children[1]),
                line: box(line),
                paragraph: box(display.parentElement),
                content: {left: Math.min(...parts.map((part) => part.left)),
                          right: Math.max(...parts.map((part) => part.right))},
                displayMargin: parseFloat(getComputedStyle(display).marginTop),
                mathDisplay: getComputedStyle(display).display,
                bold: getComputedStyle(inline.querySelector('[mathvariant="bold"]')).fontWeight,
            };
        }"""
    )
    for name in ("inline", "display", "fraction"):
        assert layout[name]["width"] > 0 and layout[name]["height"] > 0, name
    # A fraction stacks its numerator over its denominator: taller than a line of text.
    assert layout["fraction"]["height"] > layout["line"]["height"]
    assert layout["numerator"]["bottom"] <= layout["denominator"]["top"] + 1
    # The display equation is a block of its own, its content centred, with a margin.
    assert layout["mathDisplay"] == "block math"
    assert layout["displayMargin"] > 0
    centre = (layout["content"]["left"] + layout["content"]["right"]) / 2
    paragraph_centre = (layout["paragraph"]["left"] + layout["paragraph"]["right"]) / 2
    assert abs(centre - paragraph_centre) < 3
    # Chromium leaves bold to the page: a bold vector is shown bold.
    assert layout["bold"] == "700"
    assert watch.errors == []
