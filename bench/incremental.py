"""Time incremental conversion against collab's full conversion and plain mammoth; print markdown tables.

    .venv/bin/python -m bench.incremental [--rounds 5] [--pages 5 50 250] [--no-server]

Documents: tests/word_markup.py's reports of 5, 50 and 250 pages (about 500 words a page)
with Word's usual markup, as Flat OPC. Each round times, for each document, interleaved
(the whole conversions run in turn, in reverse order every other round):

- plain mammoth: ``mammoth.convert_to_html`` of the same document as .docx bytes, in a
  process that never imports conversion/ (bench/plain_mammoth.py), so mammoth is as pip
  installs it;
- collab's full conversion: ``convert_payload`` of the Flat OPC text (and, for comparison,
  of the .docx as base64, which skips repackaging the Flat OPC package);
- the incremental conversion of four edits (one paragraph's text, a list item's text, a new
  paragraph at the top, the text just before a footnote reference), each converted by an
  ``IncrementalConverter`` holding the document, then the document again. Each round's
  edits write new words, so no round finds the last one's blocks.

The first round checks each incremental result against a full conversion of the same text.

End to end (unless --no-server): daphne started as a deployer starts it, a Word socket as
the add-in opens it; the largest document is sent once, then each edit (and the document
again after it), timed from sending the update until the Word socket hears the version
stored (its get-html), and a different document of the same size, all of whose blocks are new.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.conversion import machine
from bench.fanout import Word
from conversion import IncrementalConverter, convert_payload
from tests.servers import Server, child_env, run_manage
from tests.word_markup import (
    WordDocument,
    generated_document,
    list_item_indexes,
    note_reference_indexes,
    text_paragraph_indexes,
    with_paragraph_inserted,
    with_span_text,
)

ROOT = Path(__file__).resolve().parents[1]
SEED = 2024
EDITS = (
    "one paragraph's text",
    "a list item's text",
    "a new paragraph at the top",
    "the text next to a footnote",
)
ANOTHER_DOCUMENT = "another document (every block new)"
SERVER_ENV = {"DJANGO_DEBUG": "0", "COLLAB_LOG_LEVEL": "WARNING"}


def middle(indexes: list[int]) -> int:
    return indexes[len(indexes) // 2]


def edited(document: WordDocument, edit: str, round_number: int) -> WordDocument:
    """The document after one of EDITS, with words this round has not written before."""
    text = f"Edited in round {round_number}: the committee agreed "
    if edit == EDITS[0]:
        return with_span_text(document, middle(text_paragraph_indexes(document)), text)
    if edit == EDITS[1]:
        return with_span_text(document, middle(list_item_indexes(document)), text)
    if edit == EDITS[2]:
        return with_paragraph_inserted(document, 0, text)
    return with_span_text(document, middle(note_reference_indexes(document)), text, before_note=True)


class PlainMammoth:
    """bench/plain_mammoth.py in its own process: mammoth without collab's adaptations."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.plain_mammoth"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def seconds(self, path: Path) -> float:
        self.process.stdin.write(f"{path}\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError("bench/plain_mammoth.py stopped")
        return float(answer)

    def close(self):
        self.process.stdin.close()
        self.process.wait(30)


@dataclass
class Case:
    """One document and what was measured on it."""

    pages: int
    document: WordDocument
    text: str
    docx_path: Path
    docx_base64: str
    state: IncrementalConverter
    times: dict[str, list[float]] = field(default_factory=dict)
    reused: dict[str, tuple[int, int]] = field(default_factory=dict)  # edit: (reused, blocks)
    blocks: int = 0

    def note(self, name: str, seconds: float) -> None:
        self.times.setdefault(name, []).append(seconds)

    def median(self, name: str) -> float:
        return statistics.median(self.times[name])


def timed(convert, *args):
    started = time.perf_counter()
    result = convert(*args)
    return time.perf_counter() - started, result


def measure_in_process(sizes: list[int], rounds: int, directory: Path) -> list[Case]:
    plain = PlainMammoth()
    cases = []
    try:
        for pages in sizes:
            document = generated_document(SEED, pages)
            path = directory / f"report-{pages}-pages.docx"
            path.write_bytes(document.docx())
            text = document.flat_opc()
            state = IncrementalConverter()
            state.convert(text, "ooxml")
            blocks = len(document.blocks) + 1
            cases.append(Case(pages, document, text, path, document.docx_base64(), state, blocks=blocks))
        for round_number in range(rounds):
            for case in cases:
                whole = [
                    ("plain", lambda case=case: plain.seconds(case.docx_path)),
                    ("full", lambda case=case: timed(convert_payload, case.text, "ooxml")[0]),
                    ("full docx", lambda case=case: timed(convert_payload, case.docx_base64, "docx")[0]),
                ]
                for name, run in whole if round_number % 2 == 0 else reversed(whole):
                    case.note(name, run())
                for edit in EDITS:
                    document = edited(case.document, edit, round_number)
                    text = document.flat_opc()
                    seconds, converted = timed(case.state.convert, text, "ooxml")
                    if round_number == 0 and converted.html != convert_payload(text, "ooxml").html:
                        raise AssertionError(f"incremental HTML differs from a full conversion: {edit}")
                    case.note(edit, seconds)
                    case.reused[edit] = (converted.reused_blocks, len(document.blocks) + 1)
                    case.state.convert(case.text, "ooxml")  # back to the document, for the next edit
            print(f"round {round_number + 1}/{rounds} done", file=sys.stderr)
    finally:
        plain.close()
    return cases


async def measure_end_to_end(case: Case, rounds: int) -> dict[str, list[float]]:
    """Seconds from sending each update until the Word socket hears the stored version."""
    database = f"sqlite:///{tempfile.mkdtemp(prefix='incremental-bench-')}/db.sqlite3"
    await asyncio.to_thread(
        run_manage, child_env({"DATABASE_URL": database}), "migrate", "--no-input", timeout=300
    )
    server = await asyncio.to_thread(Server({"DATABASE_URL": database, **SERVER_ENV}).start)
    times: dict[str, list[float]] = {}

    async def publish(word: Word, text: str, name: str | None = None) -> None:
        await word.publish(text, payload_type="ooxml")
        if name is not None:
            times.setdefault(name, []).append(time.time() - word.sent_at / 1000)

    try:
        session = await asyncio.to_thread(server.create_session, "incremental bench")
        another = generated_document(SEED + 1, case.pages).flat_opc()
        async with Word(server.ws_url, session) as word:
            await publish(word, case.text, "the first version (nothing to reuse)")
            for round_number in range(rounds):
                for edit in EDITS:
                    await publish(word, edited(case.document, edit, round_number).flat_opc(), edit)
                    await publish(word, case.text)
                await publish(word, another, ANOTHER_DOCUMENT)
                await publish(word, case.text)
                print(f"end to end: round {round_number + 1}/{rounds} done", file=sys.stderr)
    finally:
        await asyncio.to_thread(server.stop)
    return times


def report(cases: list[Case], rounds: int, end_to_end: dict[str, list[float]] | None) -> str:
    lines = [
        f"Measured by `bench/incremental.py` ({rounds} interleaved rounds, medians) on {machine()}.",
        "",
        "| document | Flat OPC | blocks | plain mammoth (s) | collab full (s) | full / mammoth "
        "| collab full, as .docx (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        plain, full = case.median("plain"), case.median("full")
        lines.append(
            f"| generated, {case.pages} pages | {len(case.text.encode()) / 1e6:.1f} MB | {case.blocks} "
            f"| {plain:.3f} | {full:.3f} | {full / plain:.2f} | {case.median('full docx'):.3f} |"
        )
    lines += [
        "",
        "| document | edit | incremental (s) | blocks reused | incremental / mammoth |",
        "|---|---|---|---|---|",
    ]
    for case in cases:
        for edit in EDITS:
            seconds = case.median(edit)
            reused, blocks = case.reused[edit]
            lines.append(
                f"| {case.pages} pages | {edit} | {seconds:.4f} | {reused} of {blocks} "
                f"| {seconds / case.median('plain'):.3f} |"
            )
    if end_to_end is not None:
        largest = cases[-1]
        plain = largest.median("plain")
        lines += [
            "",
            f"End to end, {largest.pages} pages: one daphne process (in-memory layer, SQLite), one Word",
            "socket; from sending the update until the Word socket hears the version stored.",
            "",
            "| update | until stored (s) | / plain mammoth |",
            "|---|---|---|",
        ]
        for name, seconds in end_to_end.items():
            median = statistics.median(seconds)
            lines.append(f"| {name} | {median:.3f} | {median / plain:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pages", type=int, nargs="+", default=[5, 50, 250])
    parser.add_argument("--no-server", action="store_true", help="skip the end-to-end measurement")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="incremental-bench-") as directory:
        cases = measure_in_process(sorted(arguments.pages), arguments.rounds, Path(directory))
    end_to_end = None
    if not arguments.no_server:
        end_to_end = asyncio.run(measure_end_to_end(cases[-1], arguments.rounds))
    print(report(cases, arguments.rounds, end_to_end))


if __name__ == "__main__":
    main()
