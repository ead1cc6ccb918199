"""What the editor's HTML keeps on its way through Word and back; how fast the .docx is made.

    .venv/bin/python -m bench.round_trip [--rounds 5] [--candidates] [--write]

Each editor document of tests/editor_documents/ goes HTML -> .docx (``html_to_docx``) ->
HTML (``convert_payload`` of that .docx, as when Word publishes the document unchanged),
and both HTMLs are read the same way: the words (as bench/fidelity.py cuts them, block
elements apart), the headings, list items, table cells, links and pictures, the words that
are bold, italic, or underlined, struck, sub- or superscript or highlighted ("other
formatting"), the words kept in their direction: right to left under ``dir="rtl"``
(on the element or one around it), left to right elsewhere, and the blocks of text
(paragraphs, headings, list items, cells) shown right to left. The editor's side is its HTML
as html_to_docx reads it, sanitised.

``--candidates`` measures the other converters weighed for this too, when they are
installed (pypandoc-binary, htmldocx; not in requirements.txt): the same figures, the
speed, and whether each asks for a picture of the page on a local listener.
``--write`` puts the table into docs/FIDELITY.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.server
import io
import os
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from bench.fidelity import HTML_TO_WORD, words
from conversion import convert_payload
from conversion.html_docx import html_to_docx
from conversion.sanitise import sanitise_html_for_word

ROOT = Path(__file__).resolve().parents[1]
EDITOR_DOCUMENTS = ROOT / "tests" / "editor_documents"
REPORT = ROOT / "docs" / "FIDELITY.md"
SECTION = HTML_TO_WORD
TARGET = 0.99
_BLOCKS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "td", "th", "tr", "table", "thead", "tbody", "ul", "ol"}
    | {"br", "div", "blockquote", "pre", "dl", "dt", "dd", "hr", "img", "header", "footer"}
)
_VOID = frozenset({"br", "img", "hr", "wbr"})
# The formatting counted, by element (and the styles web editors write instead of some).
_MARKS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic",
    "u": "underline", "ins": "underline", "s": "strike", "strike": "strike", "del": "strike",
    "sub": "subscript", "sup": "superscript", "mark": "highlight",
}  # fmt: skip
_OTHER_FORMATTING = ("underline", "strike", "subscript", "superscript", "highlight")
_RIGHT_TO_LEFT = "rtl"
_COUNTED = ("headings", "list_items", "cells", "links", "pictures", "right_to_left_blocks")


@dataclass
class Figures:
    """What a reader counts in an HTML."""

    words: Counter = field(default_factory=Counter)
    headings: int = 0
    list_items: int = 0
    cells: int = 0
    links: int = 0
    pictures: int = 0
    # Words with each formatting (and rtl: shown right to left), as (formatting, word).
    marked: Counter = field(default_factory=Counter)
    directed: Counter = field(default_factory=Counter)  # (right to left?, word) for every word
    right_to_left_blocks: int = 0  # blocks of text (paragraphs, headings, items, cells) shown right to left

    def with_mark(self, *marks: str) -> Counter:
        return Counter({key: count for key, count in self.marked.items() if key[0] in marks})


class _Reader(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.figures = Figures()
        self._open: list[tuple[str, frozenset[str]]] = [("", frozenset())]  # tag, marks
        self._text: list[tuple[str, frozenset[str]]] = []

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        figures = self.figures
        if tag in _BLOCKS:
            self._flush()
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            figures.headings += 1
        elif tag == "li":
            figures.list_items += 1
        elif tag in ("td", "th"):
            figures.cells += 1
        elif tag == "a" and attributes.get("href"):
            figures.links += 1
        elif tag == "img" and attributes.get("src"):
            figures.pictures += 1
        if tag in _VOID:
            return
        marks = set(self._open[-1][1])
        if tag in _MARKS:
            marks.add(_MARKS[tag])
        style = attributes.get("style", "").replace(" ", "")
        if "text-decoration:underline" in style:
            marks.add("underline")
        if "text-decoration:line-through" in style:
            marks.add("strike")
        if attributes.get("dir") in ("rtl", "ltr"):
            marks.discard(_RIGHT_TO_LEFT)
            if attributes["dir"] == "rtl":
                marks.add(_RIGHT_TO_LEFT)
        self._open.append((tag, frozenset(marks)))

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        if tag in _BLOCKS:
            self._flush()
        while len(self._open) > 1 and self._open.pop()[0] != tag:
            pass

    def handle_data(self, data):
        self._text.append((data, self._open[-1][1]))

    def _flush(self):
        # A word cut across inline elements counts once, in its block.
        figures = self.figures
        found = words("".join(piece for piece, _ in self._text))
        figures.words.update(found)
        block = next((marks for tag, marks in reversed(self._open) if tag in _BLOCKS), frozenset())
        if found and _RIGHT_TO_LEFT in block:
            figures.right_to_left_blocks += 1
        for piece, marks in self._text:
            for word in words(piece):
                figures.marked.update((mark, word) for mark in marks)
                figures.directed[(_RIGHT_TO_LEFT in marks, word)] += 1
        self._text.clear()


def read_figures(html: str) -> Figures:
    """The figures of an HTML (well-formed, as the sanitiser writes it)."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    reader._flush()
    return reader.figures


def share_kept(before: Counter, after: Counter) -> float:
    """The share of before's words (counting repeats) that after has; 1.0 when before has none."""
    total = sum(before.values())
    if not total:
        return 1.0
    return sum(min(count, after[word]) for word, count in before.items()) / total


def shortfalls(before: Figures, after: Figures) -> list[str]:
    """What the round trip lost, against the targets of issue 14 (empty: nothing)."""
    found = []
    if share_kept(before.words, after.words) < TARGET:
        found.append(f"words kept {share_kept(before.words, after.words):.1%}")
    for name in _COUNTED:
        if getattr(before, name) != getattr(after, name):
            found.append(f"{name} {getattr(before, name)} -> {getattr(after, name)}")
    for name, marks in (
        ("bold", ("bold",)),
        ("italic", ("italic",)),
        ("other formatting", _OTHER_FORMATTING),
    ):
        kept = share_kept(before.with_mark(*marks), after.with_mark(*marks))
        if kept < 1.0:
            found.append(f"{name} words kept {kept:.1%}")
    if share_kept(before.directed, after.directed) < 1.0:
        found.append(f"words in their direction {share_kept(before.directed, after.directed):.1%}")
    return found


@dataclass
class Result:
    name: str
    before: Figures
    after: Figures | None  # None: the converter failed
    milliseconds: float  # HTML to .docx, the best of the rounds
    note: str = ""


def collab_converter(html: str) -> bytes:
    return html_to_docx(html, {"sessionId": "bench", "token": "bench"}, title="Bench")


def measure(name: str, html: str, converter, rounds: int) -> Result:
    """One document's figures before and after the round trip through converter."""
    before = read_figures(sanitise_html_for_word(html))
    times = []
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            docx = converter(html)
            times.append(time.perf_counter() - started)
        after_html = convert_payload(base64.b64encode(docx).decode("ascii"), "docx").html
    except Exception as error:  # a candidate's failure is a figure too
        return Result(name, before, None, 0.0, f"failed: {type(error).__name__}: {str(error)[:80]}")
    return Result(name, before, read_figures(after_html), min(times) * 1000)


def editor_documents() -> dict[str, str]:
    """The editor documents by name, and one long document made of all of them twenty times."""
    documents = {
        path.name: path.read_text(encoding="utf-8") for path in sorted(EDITOR_DOCUMENTS.glob("*.html"))
    }
    documents["all of them, 20 times"] = "".join(documents.values()) * 20
    return documents


def _count(before: int, after: int | None) -> str:
    return f"{before}" if after == before else f"{before} → {after}"


def _share(before: Counter, after: Counter) -> str:
    return "" if not before else f"{share_kept(before, after):.0%}"


def render(results: list[Result]) -> str:
    """A Markdown table of the results."""
    lines = [
        "| document | words | kept | headings | list items | cells | links | pictures | rtl blocks"
        " | bold | italic | other formatting | direction | ms to .docx |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        before, after = result.before, result.after
        if after is None:
            lines.append(f"| {result.name} | {sum(before.words.values())} | {result.note} |" + " |" * 12)
            continue
        shares = [
            _share(before.with_mark(*marks), after.with_mark(*marks))
            for marks in (("bold",), ("italic",), _OTHER_FORMATTING)
        ]
        shares.append(_share(before.directed, after.directed))
        lines.append(
            f"| {result.name} | {sum(before.words.values())} | {share_kept(before.words, after.words):.1%}"
            + "".join(f" | {_count(getattr(before, name), getattr(after, name))}" for name in _COUNTED)
            + "".join(f" | {share}" for share in shares)
            + f" | {result.milliseconds:.1f} |"
        )
    return "\n".join(lines)


# The other candidates, measured only where they are installed.


def pandoc_converter(html: str, sandbox: bool = True) -> bytes:
    import pypandoc  # noqa: PLC0415 - a candidate, not a dependency

    with tempfile.TemporaryDirectory() as folder:
        target = os.path.join(folder, "out.docx")
        arguments = ["-M", "sessionId=bench", "-M", "token=bench"] + (["--sandbox"] if sandbox else [])
        pypandoc.convert_text(html, "docx", format="html", outputfile=target, extra_args=arguments)
        with open(target, "rb") as produced:
            return produced.read()


def htmldocx_converter(html: str) -> bytes:
    from htmldocx import HtmlToDocx  # noqa: PLC0415 - a candidate, not a dependency

    document = HtmlToDocx().parse_html_string(html)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def candidates() -> dict[str, object]:
    """The converters to compare: collab's own, and the others that are installed."""
    found = {"collab (own writer)": collab_converter}
    with contextlib.suppress(ImportError):
        import pypandoc  # noqa: F401, PLC0415

        found["pandoc --sandbox"] = pandoc_converter
    with contextlib.suppress(ImportError):
        import htmldocx  # noqa: F401, PLC0415

        found["htmldocx"] = htmldocx_converter
    return found


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 - the standard library's name
        type(self).requests.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


def requests_made(converter) -> int:
    """How many requests a converter makes to a local listener while converting a page that points at it."""
    _CountingHandler.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    page = (
        f'<p>x <img src="{base}/picture.png" alt="remote"></p>'
        f'<p style="background-image: url({base}/background.png)">y</p>'
        f'<link rel="stylesheet" href="{base}/style.css"><style>@import url({base}/import.css);</style>'
    )
    try:
        with contextlib.suppress(Exception):
            converter(page)
        time.sleep(0.2)
        return len(_CountingHandler.requests)
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--candidates", action="store_true", help="also measure pandoc and htmldocx, if installed"
    )
    parser.add_argument("--write", action="store_true", help="write the collab table into docs/FIDELITY.md")
    arguments = parser.parse_args()
    converters = candidates() if arguments.candidates else {"collab (own writer)": collab_converter}
    documents = editor_documents()
    tables = {}
    for label, converter in converters.items():
        results = [measure(name, html, converter, arguments.rounds) for name, html in documents.items()]
        tables[label] = render(results)
        print(f"\n### {label}\n\n{tables[label]}")
        if arguments.candidates:
            print(f"\nrequests to a local listener while converting: {requests_made(converter)}")
    if arguments.candidates:
        with contextlib.suppress(ImportError):
            import pypandoc  # noqa: F401, PLC0415

            unsandboxed = requests_made(lambda html: pandoc_converter(html, sandbox=False))
            print(f"\npandoc without --sandbox, requests to a local listener: {unsandboxed}")
    if arguments.write:
        write_report(tables["collab (own writer)"])


def write_report(table: str) -> None:
    """Replace the table under SECTION's "Round trip" in docs/FIDELITY.md."""
    text = REPORT.read_text(encoding="utf-8")
    start_marker, end_marker = "<!-- round-trip table -->", "<!-- end of round-trip table -->"
    before, found, rest = text.partition(start_marker)
    if not found:
        raise SystemExit(f"{REPORT} has no {start_marker} in its {SECTION} section")
    _, _, after = rest.partition(end_marker)
    REPORT.write_text(f"{before}{start_marker}\n{table}\n{end_marker}{after}", encoding="utf-8")


if __name__ == "__main__":
    main()
