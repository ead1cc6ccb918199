"""Nothing a document or an HTML payload holds costs the converter far more than its size.

Each hostile document here kept a conversion worker busy for the whole timeout, or made
HTML thousands of times its own size, before the converter bounded it. The slow ones run in
a pool with a short timeout, so that on code that is still quadratic they fail with
"conversion timed out" instead of running for minutes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import signal
import time
from html.parser import HTMLParser

import nh3
import pytest
from asgiref.sync import sync_to_async

from conversion import ConversionError, ConversionPool, Limits, convert_payload
from conversion.html_scan import scan_html
from conversion.limits import MiB
from conversion.pool import BUSY
from sessions_app import publishing
from sessions_app.models import CollabSession
from sessions_app.publishing import UpdateQueue
from sessions_app.services import do_create_session
from tests import documents
from tests.documents import corpus_file, store_version
from tests.sockets import join, receive, send
from tests.test_api import DOCX, assert_error, bearer
from tests.test_conversion_safety import (
    IMAGE,
    PNG,
    R_NS,
    RELS_TYPE,
    W_NS,
    as_base64,
    document_xml,
    docx,
    flat_opc,
    paragraph,
    picture,
    refusal,
    relationships,
)

HEADER = f"{R_NS}/header"
STYLES = f"{R_NS}/styles"
V_NS = "urn:schemas-microsoft-com:vml"
# Generous against the machine: each of these took a minute or more before.
FEW_SECONDS = 10


@pytest.fixture(scope="module")
def pool():
    """One worker with a timeout well under what the quadratic code took."""
    pool = ConversionPool(workers=1, limits=Limits(timeout_seconds=30))
    yield pool
    pool.close()


def convert_in(pool, content, payload_type="ooxml"):
    """(result or ConversionError, seconds) of a conversion in the pool."""
    started = time.monotonic()
    try:
        result = asyncio.run(pool.convert(content, payload_type))
    except ConversionError as error:
        result = error
    return result, time.monotonic() - started


# Scans over document content


def test_section_lookalikes_convert_in_seconds(pool):
    # 520 KB: 40,000 elements whose name starts like sectPr. The first-section search used to
    # restart a lazy scan to the end at each of them: 60 s, then "conversion timed out".
    document = flat_opc(document_xml("<w:sectPr-x/>" * 40_000 + paragraph("after")))
    assert len(document) > 500_000
    result, seconds = convert_in(pool, document)
    assert not isinstance(result, ConversionError), result.reason
    assert result.html == "<p>after</p>"
    assert seconds < FEW_SECONDS


def test_header_root_lookalikes_convert_in_seconds(pool):
    # A header part of 420 KB of "<w:hdr " with no ">": the root pattern scanned to the end
    # from each of them (100 KB took 4.8 s; this, over a minute).
    body = paragraph("body") + '<w:sectPr><w:headerReference w:type="default" r:id="rId9"/></w:sectPr>'
    hostile = docx(
        document_xml(body),
        document_rels=relationships(("rId9", HEADER, "header1.xml", None)),
        extra={"word/header1.xml": b"<w:hdr " * 60_000},
    )
    result, seconds = convert_in(pool, as_base64(hostile), "docx")
    assert not isinstance(result, ConversionError), result.reason
    assert result.html == "<p>body</p>"
    assert "The document's header could not be read and was left out" in result.warnings
    assert seconds < FEW_SECONDS


def test_long_chain_of_based_on_styles_converts_in_seconds(pool):
    # 30,000 styles, each based on the one before: resolving each style's alignment walked
    # its whole chain, 450 million steps.
    styles = (
        f'<w:styles xmlns:w="{W_NS}"><w:style w:type="paragraph" w:styleId="s0">'
        '<w:pPr><w:jc w:val="center"/></w:pPr></w:style>'
        + "".join(
            f'<w:style w:type="paragraph" w:styleId="s{n}"><w:basedOn w:val="s{n - 1}"/></w:style>'
            for n in range(1, 30_000)
        )
        + "</w:styles>"
    )
    body = '<w:p><w:pPr><w:pStyle w:val="s29999"/></w:pPr><w:r><w:t>centred</w:t></w:r></w:p>'
    hostile = docx(
        document_xml(body),
        document_rels=relationships(("rId5", STYLES, "styles.xml", None)),
        extra={"word/styles.xml": styles},
    )
    result, seconds = convert_in(pool, as_base64(hostile), "docx")
    assert not isinstance(result, ConversionError), result.reason
    assert result.html == '<p class="align-center">centred</p>'
    assert seconds < FEW_SECONDS


def test_namespace_declarations_on_many_elements_cost_linear_time(pool):
    # A part with 100,000 namespaces declared on it and 100,000 elements declaring one more
    # (5 MB): the Flat OPC reader copied the whole scope for each element, over 30 s.
    declarations = "".join(f' xmlns:n{n}="urn:n{n}"' for n in range(100_000))
    part = (
        f'<pkg:part pkg:name="/customXml/item1.xml" pkg:contentType="application/xml"{declarations}>'
        "<pkg:xmlData><items>" + '<item xmlns:q="urn:q"/>' * 100_000 + "</items></pkg:xmlData></pkg:part>"
    )
    document = flat_opc(document_xml(paragraph("body"))).replace("</pkg:package>", part + "</pkg:package>")
    result, seconds = convert_in(pool, document)
    assert not isinstance(result, ConversionError), result.reason
    assert result.html == "<p>body</p>"
    assert seconds < FEW_SECONDS


# HTML payloads, checked before the sanitiser parses them


def test_deeply_nested_html_is_refused_before_sanitising():
    # nh3 took 13 s for this, and 1,000,000 levels ran past two minutes.
    for levels in (100_000, 1_000_000):
        started = time.monotonic()
        assert refusal("<div>" * levels, "html") == "HTML is nested too deeply (the limit is 512 levels)"
        assert time.monotonic() - started < FEW_SECONDS
    within = "<div>" * 500 + "deep" + "</div>" * 500
    assert convert_payload(within, "html").html == within


def test_formatting_left_open_across_paragraphs_is_refused(pool):
    # 49 KB: the HTML rules re-open the 2,000 unclosed <b> in each of 3,000 paragraphs,
    # which sanitised to 123 MB.
    bomb = "<p>" + "".join(f"<b id={n}>" for n in range(2_000)) + "<p>x" * 3_000
    assert len(bomb) < 50_000
    result, seconds = convert_in(pool, bomb, "html")
    assert isinstance(result, ConversionError), f"{len(result.html)} bytes of HTML"
    assert result.reason == "HTML is nested too deeply (the limit is 512 levels)"
    assert seconds < FEW_SECONDS
    # Fewer formatting elements, nested within the limit: the repeats are what is refused.
    shallower = "<p>" + "".join(f"<b id={n}>" for n in range(400)) + "<p>x" * 30_000
    result, seconds = convert_in(pool, shallower, "html")
    assert isinstance(result, ConversionError), f"{len(result.html)} bytes of HTML"
    assert result.reason.startswith("HTML leaves formatting elements open, which the HTML rules repeat")
    assert seconds < FEW_SECONDS


def test_html_with_too_many_elements_is_refused():
    assert refusal("<span>x</span>" * 1_001, "html", Limits(max_html_elements=1_000)) == (
        "HTML has too many elements (the limit is 1000)"
    )
    assert convert_payload("<span>x</span>" * 1_000, "html", Limits(max_html_elements=1_000)).html


def test_html_with_a_template_is_refused():
    assert (
        refusal("<p>a</p><template><p>b</p></template>", "html")
        == "HTML with a template element is not accepted"
    )


class _Tree(HTMLParser):
    """Depth and element count of the sanitiser's output, which is well formed."""

    VOID = frozenset(
        {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track"}
    )

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.deepest = self.elements = 0

    def handle_starttag(self, tag, attrs):
        self.elements += 1
        if tag not in self.VOID:
            self.open.append(tag)
            self.deepest = max(self.deepest, len(self.open))

    def handle_endtag(self, tag):
        if tag in self.open:
            while self.open.pop() != tag:
                pass


_NAMES = " ".join(
    [
        "div p span b i a em strong u s li ul ol dd dt dl table tr td th tbody thead caption col colgroup",
        "h1 h2 form button select option optgroup svg math g desc foreignObject title mi mtext",
        "annotation-xml",
        "textarea nobr font small code pre blockquote section br img hr input header object marquee applet",
        "ruby rt center",
    ]
).split()
_EXTRAS = (
    "x",
    " ",
    "&amp;",
    "<!--c-->",
    "<script>a</script>",
    "<script><!--<script></script></div></script>",
    "<style></div></style>",
    "<![CDATA[x]]>",
    "</br>",
    "</p>",
)


def _random_markup(rng: random.Random) -> str:
    tokens = []
    for _ in range(rng.randint(1, 120)):
        name = rng.choice(_NAMES)
        roll = rng.random()
        if roll < 0.45:
            attributes = rng.choice(["", " id=x", ' class="a b"', " encoding=text/html", " x=y/"])
            tokens.append(f"<{name}{attributes}{'/' if rng.random() < 0.1 else ''}>")
        elif roll < 0.85:
            tokens.append(f"</{name}>")
        else:
            tokens.append(rng.choice(_EXTRAS))
    return "".join(tokens)


def test_html_scan_never_counts_less_than_the_sanitisers_parser():
    # The scan's nesting and element count, against what nh3 builds, on random misnested
    # markup: tables, forms, selects, svg and MathML, formatting left open, raw text.
    rng = random.Random(12)
    allowed = set(_NAMES) | {"foreignobject"}
    for _ in range(400):
        html = _random_markup(rng)
        built = nh3.clean(html, tags=allowed, clean_content_tags=set(), attributes={}, link_rel=None)
        tree = _Tree()
        tree.feed(built)
        scanned = scan_html(html, Limits())
        assert scanned.deepest >= tree.deepest and scanned.elements >= tree.elements, html


# The size of the converted HTML


def test_converted_html_over_the_limit_is_refused():
    limits = Limits(max_html_bytes=1 * MiB)
    reason = "the converted HTML is too large (the limit is 1.0 MB)"
    assert refusal("<p>" + "x" * MiB + "</p>", "html", limits) == reason
    # Escaping on the way makes it bigger than it came: "&" is five bytes once sanitised.
    assert refusal("<p>" + "&" * (MiB // 4) + "</p>", "html", limits) == reason
    many = flat_opc(document_xml(paragraph("y" * 1000) * 1100))
    assert refusal(many, "ooxml", limits) == reason
    assert convert_payload(flat_opc(document_xml(paragraph("y" * 1000) * 1000)), "ooxml", limits).html


def _one_picture_shown(times: int, size: int) -> bytes:
    """A .docx with one PNG of `size` bytes, shown `times` times; mostly zeros, it compresses to nothing."""
    body = "".join(picture("rId1") for _ in range(times))
    content_types = (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        f'<Default Extension="rels" ContentType="{RELS_TYPE}"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Default Extension="png" ContentType="image/png"/>'
        '<Override PartName="/word/document.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
    )
    return docx(
        document_xml(body),
        document_rels=relationships(("rId1", IMAGE, "media/image1.png", None)),
        extra={"[Content_Types].xml": content_types, "word/media/image1.png": PNG + bytes(size - len(PNG))},
    )


def test_a_picture_shown_again_and_again_counts_its_bytes_each_time(pool):
    # 2.4 KB that showed one 1 MiB picture 100 times: 140 MB of HTML.
    hostile = _one_picture_shown(100, MiB)
    assert len(hostile) < 3_000
    result, seconds = convert_in(pool, as_base64(hostile), "docx")
    assert isinstance(result, ConversionError), f"{len(result.html)} bytes of HTML"
    assert result.reason == "the images are too large together (the limit is 32 MB of pictures per document)"
    assert seconds < FEW_SECONDS


def test_pictures_within_the_total_are_shown():
    result = convert_payload(as_base64(_one_picture_shown(10, MiB)), "docx")
    assert result.html.count("<img") == 10
    assert result.html_bytes < 15 * MiB
    reason = refusal(as_base64(_one_picture_shown(3, MiB)), "docx", Limits(max_total_image_bytes=2 * MiB))
    assert reason == "the images are too large together (the limit is 2 MB of pictures per document)"


# Pictures outside the document


@pytest.mark.parametrize("kind", ["embed", "vml"])
def test_a_picture_linked_to_an_outside_file_is_left_out_with_a_warning(kind):
    if kind == "embed":
        body = picture("rId7")  # r:embed naming an external target
    else:
        body = (
            f'<w:p><w:r><w:pict><v:shape xmlns:v="{V_NS}"><v:imagedata r:id="rId7"/></v:shape></w:pict>'
            "</w:r></w:p>"
        )
    body += paragraph("text stays")
    rels = relationships(("rId7", IMAGE, "file:///C:/pictures/photo.png", "External"))
    for content, payload_type in (
        (as_base64(docx(document_xml(body), document_rels=rels)), "docx"),
        (flat_opc(document_xml(body), document_rels=rels), "ooxml"),
    ):
        result = convert_payload(content, payload_type)
        assert result.html == "<p>text stays</p>"
        assert "A picture that is not stored in the document (a link to an outside file) was left out" in (
            result.warnings
        )


# A document's own style map


def test_a_long_embedded_style_map_is_left_out_with_a_warning():
    # Every element is matched against every rule: 300 rules of a document's own style map
    # times its paragraphs, and a rule's HTML path written for each match.
    style_map = "\n".join(f"p[style-name='S{n}'] => p.s{n}" for n in range(300))
    result = convert_payload(
        as_base64(docx(document_xml(paragraph("kept")), extra={"mammoth/style-map": style_map})), "docx"
    )
    assert result.html == "<p>kept</p>"
    assert "The document's own style map was left out: it is longer than collab accepts" in result.warnings
    # The corpus document with a short one still has it applied.
    short = corpus_file("docx/mammoth-embedded-style-map.docx").read_bytes()
    assert not any("style map" in warning for warning in convert_payload(as_base64(short), "docx").warnings)


# Refused updates keep what was stored


@pytest.mark.django_db(transaction=True)
def test_picture_bomb_over_the_api_is_422_and_the_stored_version_stays(session):
    store_version(session["id"], "<p>Kept</p>")
    response = bearer(session["word"]).put(
        f"/api/sessions/{session['id']}/document", _one_picture_shown(100, MiB), content_type=DOCX
    )
    message = assert_error(response, 422, "E2002")
    assert (
        message
        == "Conversion error: the images are too large together (the limit is 32 MB of pictures per document)"
    )
    stored = CollabSession.objects.get(pk=session["id"])
    assert (stored.version, stored.html) == (1, "<p>Kept</p>")
    assert stored.revisions.count() == 1


@pytest.mark.django_db(transaction=True)
async def test_formatting_bomb_from_word_gets_e2002_and_the_stored_version_stays(session):
    await sync_to_async(store_version)(session["id"], "<p>Kept</p>")
    word = await join(session, "word")
    assert (await receive(word))["Action"] == "init"
    bomb = "<p>" + "".join(f"<b id={n}>" for n in range(400)) + "<p>x" * 30_000
    await send(word, Action="update-ooxml", PayloadType="html", Content=bomb)
    error = await receive(word)
    assert error["ErrorCode"] == "E2002" and error["Action"] == "update-ooxml"
    assert error["Content"].startswith("Conversion error: HTML leaves formatting elements open")
    stored = await sync_to_async(CollabSession.objects.get)(pk=session["id"])
    assert (stored.version, stored.html) == (1, "<p>Kept</p>")
    await word.disconnect()


# Sharing the workers between sessions


async def _hang_when_busy(pool: ConversionPool, count: int) -> list[int]:
    """Stop (SIGSTOP) the pool's workers once `count` of them are converting: conversions that never end."""
    deadline = time.monotonic() + 60
    while len(pool.pids) < count:
        assert time.monotonic() < deadline, "the workers did not start"
        await asyncio.sleep(0.05)
    pids = pool.pids
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    return pids


def _release(pids):
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # already replaced
            os.kill(pid, signal.SIGCONT)


def _slow_document() -> str:
    # About 2 s of real conversion: still converting when its worker is stopped.
    return base64.b64encode(corpus_file("docx/poi-large-bug65649.docx").read_bytes()).decode()


async def test_two_sessions_with_stuck_conversions_do_not_hold_a_third_back():
    slow = _slow_document()
    pool = ConversionPool(workers=2, limits=Limits(timeout_seconds=40), share_seconds=1)
    pids = []
    try:
        first = asyncio.ensure_future(pool.convert(slow, "docx", owner="first"))
        second = asyncio.ensure_future(pool.convert(slow, "docx", owner="second"))
        pids = await _hang_when_busy(pool, 2)
        started = time.monotonic()
        plain = await pool.convert(documents.flat_opc("plain update"), "ooxml", owner="third")
        # Before, it waited for a worker until the 40 s timeout.
        assert plain.html == "<p>plain update</p>"
        assert time.monotonic() - started < 15
        # One stuck conversion made way (the other may follow while the third converts): the
        # first of them to end. The other one, still stuck, ends with the pool below.
        done, _ = await asyncio.wait({first, second}, return_when=asyncio.FIRST_COMPLETED)
        ended = done.pop().exception()
        assert isinstance(ended, ConversionError) and ended.reason == BUSY
    finally:
        _release(pids)
        pool.close()
        await asyncio.wait_for(asyncio.gather(first, second, return_exceptions=True), 30)


async def test_a_worker_that_hangs_before_reading_a_large_job_times_out_and_is_replaced():
    # The job is larger than the pipe's buffer: its send waits for a worker that never reads.
    pool = ConversionPool(workers=1, limits=Limits(timeout_seconds=2), share_seconds=30)
    pids = []
    try:
        await pool.convert(documents.flat_opc("warm up"), "ooxml", owner="s")
        pids = pool.pids
        os.kill(pids[0], signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(ConversionError) as refused:
            await asyncio.wait_for(pool.convert(_slow_document(), "docx", owner="s"), 30)
        assert refused.value.reason == "conversion timed out"
        assert time.monotonic() - started < 15
        plain = await asyncio.wait_for(pool.convert(documents.flat_opc("after"), "ooxml", owner="s"), 60)
        assert plain.html == "<p>after</p>"
        assert pids[0] not in pool.pids
    finally:
        _release(pids)
        pool.close()


async def test_a_session_alone_keeps_its_worker_up_to_the_timeout():
    pool = ConversionPool(workers=1, limits=Limits(timeout_seconds=3), share_seconds=0.5)
    pids = []
    try:
        job = asyncio.ensure_future(pool.convert(_slow_document(), "docx", owner="alone"))
        pids = await _hang_when_busy(pool, 1)
        started = time.monotonic()
        with pytest.raises(ConversionError) as refused:
            await job
        assert refused.value.reason == "conversion timed out"  # nobody waited: not stopped early
        assert time.monotonic() - started > 2
    finally:
        _release(pids)
        pool.close()


async def test_the_session_that_used_the_workers_least_goes_first():
    pool = ConversionPool(workers=1, limits=Limits(timeout_seconds=40), share_seconds=30)
    pids = []
    try:
        await pool.convert(documents.flat_opc("warm up"), "ooxml", owner="busy")
        for _ in range(3):
            await pool.convert(documents.flat_opc("more"), "ooxml", owner="busy")
        holder = asyncio.ensure_future(pool.convert(_slow_document(), "docx", owner="holder"))
        pids = await _hang_when_busy(pool, 1)
        order = []

        async def convert(owner):
            await pool.convert(documents.flat_opc(owner), "ooxml", owner=owner)
            order.append(owner)

        # "busy" asks first but has used the worker lately; "fresh" has not.
        waiting = [asyncio.ensure_future(convert("busy"))]
        await asyncio.sleep(0.2)
        waiting.append(asyncio.ensure_future(convert("fresh")))
        await asyncio.sleep(0.2)
        _release(pids)
        await holder
        await asyncio.gather(*waiting)
        assert order == ["fresh", "busy"]
    finally:
        _release(pids)
        pool.close()


@pytest.fixture
def shared_pool(settings):
    """This process's conversion pool, built from small settings for one test."""
    settings.COLLAB_CONVERSION_WORKERS = 2
    settings.COLLAB_CONVERSION_TIMEOUT = 40
    settings.COLLAB_CONVERSION_SHARE_SECONDS = 1
    previous, publishing._pool = publishing._pool, None
    yield publishing.conversion_pool
    if publishing._pool is not None:
        publishing._pool.close()
    publishing._pool = previous


@pytest.mark.django_db(transaction=True)
async def test_a_plain_update_is_stored_promptly_while_two_sessions_convert_slow_documents(shared_pool):
    sessions = [(await sync_to_async(do_create_session)(name))[0].id for name in ("One", "Two", "Three")]
    slow = _slow_document()
    queue = UpdateQueue()
    stuck = [
        asyncio.ensure_future(queue.convert_and_store(session, slow, "docx")) for session in sessions[:2]
    ]
    pids = await _hang_when_busy(shared_pool(), 2)
    try:
        started = time.monotonic()
        version = await queue.convert_and_store(sessions[2], documents.flat_opc("plain"), "ooxml")
        assert version == 1
        assert time.monotonic() - started < 15
        stored = await sync_to_async(CollabSession.objects.get)(pk=sessions[2])
        assert stored.html == "<p>plain</p>"
    finally:
        _release(pids)
        await asyncio.gather(*stuck, return_exceptions=True)
