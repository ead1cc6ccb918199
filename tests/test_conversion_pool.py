"""ConversionPool: real worker processes, a hard timeout, recovery from dead workers."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import time
from pathlib import Path

import pytest

from conversion import ConversionError, ConversionPool, Limits, convert_payload
from conversion.pool import IN_PROCESS_HTML_CHARS
from tests import documents

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
# About 2 s of real conversion work here (12.5 MB of document.xml; 20 s before the fast
# parser): slow enough to hit a 1 s timeout honestly, without a test hook in the worker.
SLOW_DOCX = CORPUS / "docx" / "poi-large-bug65649.docx"


def flat_opc(name: str) -> str:
    return (CORPUS / "flatopc" / name).read_text(encoding="utf-8")


def docx_base64(name: str) -> str:
    return base64.b64encode((CORPUS / "docx" / name).read_bytes()).decode("ascii")


def is_running(pid: int) -> bool:
    # A killed child is reaped by the pool, so its /proc entry goes away.
    return Path(f"/proc/{pid}").exists()


async def wait_for_worker(pool: ConversionPool) -> int:
    deadline = time.monotonic() + 30
    while not pool.pids:
        assert time.monotonic() < deadline, "no worker started"
        await asyncio.sleep(0.05)
    return pool.pids[0]


@pytest.fixture
def pool():
    pool = ConversionPool(workers=2)
    yield pool
    pool.close()


@pytest.mark.asyncio
async def test_pool_converts_a_flat_opc_package(pool):
    result = await pool.convert(flat_opc("oasamples-text-with-style.xml"), "ooxml")
    assert result.html == "<h1>This text is formatted using the Heading 1 paragraph style.</h1>"
    assert result.seconds > 0


@pytest.mark.asyncio
async def test_pool_converts_a_docx(pool):
    result = await pool.convert(docx_base64("mammoth-tables.docx"), "docx")
    assert "<td><p>Top left</p></td>" in result.html


@pytest.mark.asyncio
async def test_pool_reports_a_bad_document_and_keeps_its_worker():
    pool = ConversionPool(workers=1)
    try:
        with pytest.raises(ConversionError) as refused:
            await pool.convert(docx_base64("poi-truncated.docx"), "docx")
        assert refused.value.reason == "damaged archive"
        pids = pool.pids
        result = await pool.convert(documents.flat_opc("fine"), "ooxml")
        assert result.html == "<p>fine</p>"
        assert pool.pids == pids
    finally:
        pool.close()


@pytest.mark.asyncio
async def test_pool_times_out_a_slow_conversion_and_replaces_the_worker():
    pool = ConversionPool(workers=1, limits=Limits(timeout_seconds=1.0))
    try:
        await pool.convert(documents.flat_opc("warm up"), "ooxml")
        (slow_pid,) = pool.pids
        started = time.monotonic()
        with pytest.raises(ConversionError) as refused:
            await pool.convert(SLOW_DOCX.read_bytes(), "docx")
        assert refused.value.reason == "conversion timed out"
        assert time.monotonic() - started < 5
        assert not is_running(slow_pid)

        result = await pool.convert(flat_opc("snippets-insert-body.xml"), "ooxml")
        assert "This text has formatting directly applied" in result.html
        assert pool.pids and slow_pid not in pool.pids
    finally:
        pool.close()


@pytest.mark.asyncio
async def test_pool_reports_a_killed_worker_and_replaces_it():
    pool = ConversionPool(workers=1)
    try:
        job = asyncio.ensure_future(pool.convert(SLOW_DOCX.read_bytes(), "docx"))
        pid = await wait_for_worker(pool)
        await asyncio.sleep(0.5)  # let it get into the conversion
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ConversionError) as refused:
            await job
        assert refused.value.reason == "conversion worker failed"

        result = await pool.convert(documents.flat_opc("next"), "ooxml")
        assert result.html == "<p>next</p>"
        assert pid not in pool.pids
    finally:
        pool.close()


@pytest.mark.asyncio
async def test_pool_runs_more_jobs_than_workers_concurrently(pool):
    names = [
        "oasamples-text-with-style.xml",
        "oasamples-table-styled.xml",
        "docx4j-table-spans.xml",
        "snippets-insert-body.xml",
        "docx4j-numbering-restart.xml",
        "oasamples-content-control.xml",
    ]
    results = await asyncio.gather(*(pool.convert(flat_opc(name), "ooxml") for name in names))
    assert "Heading 1 paragraph style" in results[0].html
    assert "Southeast" in results[1].html
    assert "R1c1" in results[2].html
    assert "directly applied" in results[3].html
    assert "<ol>" in results[4].html
    assert "content control" in results[5].html
    assert 1 <= len(pool.pids) <= 2


@pytest.mark.asyncio
async def test_event_loop_stays_responsive_during_a_conversion():
    pool = ConversionPool(workers=1, limits=Limits(timeout_seconds=1.0))
    try:
        await pool.convert(documents.flat_opc("warm up"), "ooxml")
        job = asyncio.ensure_future(pool.convert(SLOW_DOCX.read_bytes(), "docx"))
        ticks = 0
        while not job.done():
            await asyncio.sleep(0.05)
            ticks += 1
        assert ticks >= 10  # about 1 s of 50 ms ticks while the worker was busy
        with pytest.raises(ConversionError):
            job.result()
    finally:
        pool.close()


@pytest.mark.asyncio
async def test_pool_converts_nesting_up_to_the_depth_limit(pool):
    # 168 nested tables are 504 levels of XML, within Limits().max_xml_depth (512);
    # mammoth recurses through all of them.
    inner = "<w:p><w:r><w:t>deepest</w:t></w:r></w:p>"
    for _ in range(168):
        inner = f"<w:tbl><w:tr><w:tc>{inner}</w:tc></w:tr></w:tbl>"
    document = (
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body>{inner}</w:body></w:document>"
    )
    result = await pool.convert(document, "ooxml")
    assert result.html.count("<table>") == 168
    assert "deepest" in result.html


@pytest.mark.asyncio
async def test_small_html_is_sanitised_in_this_process_and_large_html_in_a_worker(pool):
    small = await pool.convert("<p>Small</p><script>alert(1)</script>", "html")
    assert small.html == "<p>Small</p>"
    assert pool.pids == []  # no worker was needed
    large = "<p>" + "word " * (IN_PROCESS_HTML_CHARS // 5) + "</p><script>alert(1)</script>"
    converted = await pool.convert(large, " HTML ")
    assert converted.html == large.removesuffix("<script>alert(1)</script>")
    assert len(pool.pids) == 1


@pytest.mark.asyncio
async def test_small_html_building_many_elements_or_refused_goes_to_a_worker():
    pool = ConversionPool(workers=1)
    try:
        # 12 KB whose ten open <b> the HTML rules repeat in each of 3,000 paragraphs: 33,000 elements.
        reopened = "<p>" + "".join(f"<b id={n}>" for n in range(10)) + "<p>x" * 3_000
        assert len(reopened) < IN_PROCESS_HTML_CHARS
        converted = await pool.convert(reopened, "html")
        assert converted.html.count("<b ") == 30_010
        (worker,) = pool.pids
        with pytest.raises(ConversionError) as refused:
            await pool.convert("<p>" + "<i>" * 600 + "deep", "html")
        # In the worker's words.
        assert refused.value.reason == "HTML is nested too deeply (the limit is 512 levels)"
        assert pool.pids == [worker]
    finally:
        pool.close()


def test_pool_serves_several_event_loops(pool):
    first = asyncio.run(pool.convert(documents.flat_opc("one"), "ooxml"))
    second = asyncio.run(pool.convert(documents.flat_opc("two"), "ooxml"))
    assert (first.html, second.html) == ("<p>one</p>", "<p>two</p>")


@pytest.mark.asyncio
async def test_close_terminates_the_workers():
    pool = ConversionPool(workers=2)
    await asyncio.gather(*(pool.convert(documents.flat_opc(text), "ooxml") for text in "ab"))
    pids = pool.pids
    assert pids
    pool.close()
    assert not any(is_running(pid) for pid in pids)
    assert pool.pids == []
    pool.close()  # a second close is harmless
    with pytest.raises(ConversionError) as refused:
        await pool.convert(documents.flat_opc("c"), "ooxml")
    assert refused.value.reason == "the conversion service is shut down"


@pytest.mark.asyncio
async def test_close_fails_a_running_conversion():
    pool = ConversionPool(workers=1)
    job = asyncio.ensure_future(pool.convert(SLOW_DOCX.read_bytes(), "docx"))
    pid = await wait_for_worker(pool)
    pool.close()
    with pytest.raises(ConversionError) as refused:
        await job
    assert refused.value.reason == "conversion worker failed"
    assert not is_running(pid)


@pytest.mark.asyncio
async def test_hundred_thousand_paragraphs_convert_while_other_updates_are_served(pool):
    # About 7.5 MB of Flat OPC: converts within the default limits and timeout, and the
    # second worker keeps serving small updates meanwhile.
    big = documents.flat_opc(*(f"Paragraph number {i} of a long document." for i in range(100_000)))
    started = time.monotonic()
    job = asyncio.ensure_future(pool.convert(big, "ooxml"))
    served = 0
    while not job.done():
        small = await pool.convert(documents.flat_opc(f"small update {served}"), "ooxml")
        assert small.html == f"<p>small update {served}</p>"
        served += 1
        await asyncio.sleep(0.1)
    result = job.result()
    assert time.monotonic() - started < pool.limits.timeout_seconds
    assert served >= 3
    assert result.html.count("<p>") == 100_000
    assert result.html.endswith("<p>Paragraph number 99999 of a long document.</p>")


@pytest.mark.asyncio
async def test_document_needing_too_much_memory_is_refused_and_the_worker_serves_on():
    pool = ConversionPool(workers=1, limits=Limits(max_memory_bytes=150 * 1024 * 1024))
    try:
        await pool.convert(documents.flat_opc("warm up"), "ooxml")
        (pid,) = pool.pids
        with pytest.raises(ConversionError) as refused:
            await pool.convert(SLOW_DOCX.read_bytes(), "docx")
        assert refused.value.reason == "document needs too much memory"
        result = await pool.convert(flat_opc("snippets-insert-body.xml"), "ooxml")
        assert "This text has formatting directly applied" in result.html
        assert pool.pids == [pid]
    finally:
        pool.close()


def edited(text: str, word: str) -> str:
    """The package with one body paragraph's text changed (the first w:t after the body's start)."""
    at = text.index("</w:t>", text.index("<w:body>"))
    return text[:at] + word + text[at:]


async def test_a_session_keeps_its_worker_and_converts_only_what_changed():
    pool = ConversionPool(workers=2)
    try:
        text = flat_opc("docx4j-sample-docx.xml")
        first = await pool.convert(text, "ooxml", owner="session-a")
        assert first.reused_blocks == 0
        for number in range(4):
            # Another session's conversions in between do not take its kept version away.
            await pool.convert(flat_opc("docx4j-endnotes.xml"), "ooxml", owner=f"other-{number}")
            text = edited(text, f" edit {number}")
            converted = await pool.convert(text, "ooxml", owner="session-a")
            assert converted.reused_blocks > 50
            assert converted.html == convert_payload(text).html
    finally:
        pool.close()


async def test_after_a_worker_restart_the_next_version_converts_whole_and_right():
    pool = ConversionPool(workers=1)
    try:
        text = flat_opc("docx4j-sample-docx.xml")
        await pool.convert(text, "ooxml", owner="session-a")
        text = edited(text, " before")
        assert (await pool.convert(text, "ooxml", owner="session-a")).reused_blocks > 50
        (pid,) = pool.pids
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while pid in pool.pids:  # the pool sees an idle worker's death when it asks
            assert time.monotonic() < deadline, "the killed worker still looks alive"
            await asyncio.sleep(0.05)
        text = edited(text, " after")
        converted = await pool.convert(text, "ooxml", owner="session-a")
        assert converted.reused_blocks == 0
        assert converted.html == convert_payload(text).html
        text = edited(text, " again")
        assert (await pool.convert(text, "ooxml", owner="session-a")).reused_blocks > 50
    finally:
        pool.close()


async def test_what_the_next_version_reuses_never_leaves_the_worker(pool):
    converted = await pool.convert(flat_opc("docx4j-sample-docx.xml"), "ooxml", owner="session-a")
    assert converted.document is None
