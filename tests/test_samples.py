"""The sample documents of samples/: what scripts/make_samples.py writes, and clean to convert."""

import base64
import importlib.util
import zipfile
from io import BytesIO
from pathlib import Path

import pytest

from conversion import convert_payload

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "make_samples.py"


def load_script():
    spec = importlib.util.spec_from_file_location("make_samples", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_samples = load_script()
SAMPLES = sorted(make_samples.SAMPLES)


def entries(data):
    """Each entry of a zip archive: its name, time and uncompressed bytes."""
    with zipfile.ZipFile(BytesIO(data)) as archive:
        return [(info.filename, info.date_time, archive.read(info)) for info in archive.infolist()]


def test_the_script_writes_the_same_bytes_each_run():
    assert make_samples.sample_bytes() == make_samples.sample_bytes()


@pytest.mark.parametrize("name", SAMPLES)
def test_committed_sample_is_what_the_script_writes(name):
    committed = (ROOT / "samples" / name).read_bytes()
    assert entries(committed) == entries(make_samples.sample_bytes()[name]), (
        "run `python scripts/make_samples.py` and commit samples/"
    )


def test_main_writes_every_sample(tmp_path):
    make_samples.main(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == SAMPLES


def converted(name):
    content = base64.b64encode((ROOT / "samples" / name).read_bytes()).decode()
    return convert_payload(content, "docx")


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_converts_without_warnings(name):
    result = converted(name)
    assert result.warnings == []
    assert result.html.startswith("<h1>")


def test_welcome_shows_what_collab_carries():
    html = converted("welcome.docx").html
    for fragment in (
        "<h1>Welcome to collab</h1>",
        "<h2>Try it</h2>",
        "<ol><li>Open the viewer link in a browser.</li>",
        "<ul><li>Headings, paragraphs and lists</li>",
        "<table>",
        "<td><p><strong>Part</strong></p></td>",
        '<a href="https://github.com/mwilliamson/python-mammoth"',
        "<strong>new version</strong>",
        "<em>highlighted</em>",
        '<p dir="rtl">این یک بند فارسی است',
    ):
        assert fragment in html


def test_report_has_its_table_of_figures():
    html = converted("report.docx").html
    assert "<h1>Quarterly report</h1>" in html
    assert "<tr><td><p>March</p></td><td><p>25</p></td><td><p>301</p></td></tr>" in html
