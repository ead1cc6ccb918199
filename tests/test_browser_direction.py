"""The viewer shows right-to-left text from the right, in real headless Chromium against a real daphne."""

import base64

import pytest

from tests.test_browser_viewer import open_viewer, publish, wait_for_text
from tests.test_conversion_direction import (
    BIDI,
    BULLETED,
    HEBREW,
    RTL,
    as_flat_opc,
    item,
    paragraph,
    parts,
    run,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration]

# Pixels of a screenshot darker than this (the sum of red, green and blue) are ink on the paper.
_INK = """async (png) => {
    const image = new Image();
    image.src = 'data:image/png;base64,' + png;
    await image.decode();
    const canvas = document.createElement('canvas');
    canvas.width = image.width;
    canvas.height = image.height;
    const context = canvas.getContext('2d');
    context.drawImage(image, 0, 0);
    const pixels = context.getImageData(0, 0, image.width, image.height).data;
    let ink = 0;
    for (let i = 0; i < pixels.length; i += 4) {
        if (pixels[i] + pixels[i + 1] + pixels[i + 2] < 600) ink++;
    }
    return ink;
}"""
# Where each block's text and boxes are, in CSS pixels of the viewport.
_GEOMETRY = """() => {
    const box = (element) => {
        const rect = element.getBoundingClientRect();
        const style = getComputedStyle(element);
        return {
            left: rect.left + parseFloat(style.paddingLeft),
            right: rect.right - parseFloat(style.paddingRight),
            top: rect.top,
            bottom: rect.bottom,
            direction: style.direction,
        };
    };
    const text = (element) => {
        const range = document.createRange();
        range.selectNodeContents(element);
        const rect = range.getBoundingClientRect();
        return {left: rect.left, right: rect.right};
    };
    const blocks = Array.from(document.querySelectorAll('#document > p, #document li, #document td > p'));
    return blocks.map((element) => ({
        ...box(element),
        text: text(element),
        content: element.textContent,
        parent: element.parentElement.getBoundingClientRect().toJSON(),
    }));
}"""


@pytest.fixture
def context(chromium):
    context = chromium.new_context(viewport={"width": 1100, "height": 800})
    yield context
    context.close()


def ink(page, left, top, right, bottom):
    """How many pixels of the viewport's rectangle are ink."""
    clip = {"x": left, "y": top, "width": right - left, "height": bottom - top}
    return page.evaluate(_INK, base64.b64encode(page.screenshot(clip=clip)).decode("ascii"))


def test_viewer_shows_right_to_left_paragraphs_lists_and_tables_from_the_right(shared_daphne, context):
    cells = "".join(f"<w:tc>{paragraph(run(text, RTL), BIDI)}</w:tc>" for text in ("ראשון", "שני"))
    cells += f"<w:tc>{paragraph(run('Latin'))}</w:tc>"
    body = (
        paragraph(run(HEBREW, RTL), BIDI)
        + paragraph(run("Left to right"))
        + paragraph(run("בסוף", RTL), f'{BIDI}<w:jc w:val="right"/>')
        + item("פריט", BULLETED)
        + paragraph(run("between the lists"))
        + item("An item", BULLETED, properties="")
        + f"<w:tbl><w:tblPr><w:bidiVisual/></w:tblPr><w:tr>{cells}</w:tr></w:tbl>"
    )
    server = shared_daphne
    session = server.create_session("right to left")
    publish(server, session, as_flat_opc(parts(body)))
    page, watch = open_viewer(context, server, session)
    wait_for_text(page, "An item")
    rtl, ltr, end, rtl_item, _, ltr_item, first, second, latin = page.evaluate(_GEOMETRY)

    # A right-to-left paragraph starts at the right of its box; a left-to-right one at the left.
    assert (rtl["content"], rtl["direction"]) == (HEBREW, "rtl")
    assert abs(rtl["text"]["right"] - rtl["right"]) < 2
    assert rtl["text"]["left"] > rtl["left"] + 200
    assert ltr["direction"] == "ltr" and abs(ltr["text"]["left"] - ltr["left"]) < 2
    # Aligned to its end ("right" in Word's terms), it shows at the left, as in Word.
    assert end["direction"] == "rtl" and abs(end["text"]["left"] - end["left"]) < 2

    # The list item's text starts at the right, and its bullet is in the list's indent to its right.
    assert rtl_item["direction"] == "rtl" and abs(rtl_item["text"]["right"] - rtl_item["right"]) < 2
    assert rtl_item["parent"]["right"] - rtl_item["right"] > 20
    assert abs(rtl_item["left"] - rtl_item["parent"]["left"]) < 2
    top, bottom = rtl_item["top"], rtl_item["bottom"]
    assert ink(page, rtl_item["right"] + 1, top, rtl_item["right"] + 28, bottom) > 0
    assert ink(page, rtl_item["left"] - 28, top, rtl_item["left"] - 1, bottom) == 0
    # The left-to-right list the other way round: the same measure finds its bullet.
    top, bottom = ltr_item["top"], ltr_item["bottom"]
    assert ink(page, ltr_item["left"] - 28, top, ltr_item["left"] - 1, bottom) > 0
    assert ink(page, ltr_item["right"] + 1, top, ltr_item["right"] + 28, bottom) == 0

    # The table's columns go from the right; a left-to-right paragraph in it stays left to right.
    assert first["content"] == "ראשון" and first["left"] > second["right"] and second["left"] > latin["right"]
    assert (first["direction"], latin["direction"]) == ("rtl", "ltr")
    assert watch.errors == []
