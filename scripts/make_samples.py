"""Write the sample Word documents of samples/: small, our own, the same bytes on every run.

Run `python scripts/make_samples.py` from the repository's root after changing them;
tests/test_samples.py checks the committed files are what this script writes.
"""

import sys
import zipfile
from io import BytesIO
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
DOCUMENT_REL = f"{R_NS}/officeDocument"
HYPERLINK_REL = f"{R_NS}/hyperlink"
STYLES_REL = f"{R_NS}/styles"
NUMBERING_REL = f"{R_NS}/numbering"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
MAIN_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml"

# Every entry gets this time, so the archive's bytes depend on its content only.
ZIP_TIME = (2026, 1, 1, 0, 0, 0)
BULLETS, NUMBERS = 1, 2  # the numbering instances of numbering.xml


# Runs and paragraphs


def run(text, bold=False, italic=False, rtl=False):
    """A run of text, optionally bold, italic or right-to-left."""
    properties = ("<w:b/>" if bold else "") + ("<w:i/>" if italic else "") + ("<w:rtl/>" if rtl else "")
    properties = f"<w:rPr>{properties}</w:rPr>" if properties else ""
    return f'<w:r>{properties}<w:t xml:space="preserve">{escape(text)}</w:t></w:r>'


def link(text, relationship_id):
    """A hyperlink run whose target is the relationship `relationship_id`."""
    return f'<w:hyperlink r:id="{relationship_id}">{run(text)}</w:hyperlink>'


def paragraph(*runs, style=None, numbering=None, rtl=False, language=None):
    """A paragraph of runs (plain strings become plain runs), with a style, list membership or direction."""
    properties = f'<w:pStyle w:val="{style}"/>' if style else ""
    if numbering:
        properties += f'<w:numPr><w:ilvl w:val="0"/><w:numId w:val="{numbering}"/></w:numPr>'
    if rtl:
        properties += "<w:bidi/>"
    if language:
        properties += f'<w:rPr><w:lang w:bidi="{language}"/></w:rPr>'
    content = "".join(run(part, rtl=rtl) if isinstance(part, str) else part[0] for part in runs)
    return f"<w:p>{properties and '<w:pPr>' + properties + '</w:pPr>'}{content}</w:p>"


def markup(xml):
    """A run already written as XML, to pass among plain strings to `paragraph`."""
    return (xml,)


def table(rows, header=True):
    """A bordered table of plain-text cells; the first row bold when it is a header."""
    borders = "".join(
        f'<w:{side} w:val="single" w:sz="4" w:space="0" w:color="808080"/>'
        for side in ("top", "left", "bottom", "right", "insideH", "insideV")
    )
    xml_rows = []
    for index, cells in enumerate(rows):
        bold = header and index == 0
        xml_cells = "".join(f"<w:tc><w:p>{run(cell, bold=bold)}</w:p></w:tc>" for cell in cells)
        xml_rows.append(f"<w:tr>{xml_cells}</w:tr>")
    properties = f'<w:tblPr><w:tblW w:w="0" w:type="auto"/><w:tblBorders>{borders}</w:tblBorders></w:tblPr>'
    grid = "<w:tblGrid>" + '<w:gridCol w:w="3000"/>' * len(rows[0]) + "</w:tblGrid>"
    return f"<w:tbl>{properties}{grid}{''.join(xml_rows)}</w:tbl>"


# The samples: body blocks, and the hyperlinks' targets by relationship id


def welcome():
    """A short tour: headings, both kinds of list, a table, a link, bold and italic, Persian."""
    body = [
        paragraph("Welcome to collab", style="Heading1"),
        paragraph(
            "This document was published from Word. Each time it changes, every open viewer shows the ",
            markup(run("new version", bold=True)),
            " within a moment, and the blocks that changed are ",
            markup(run("highlighted", italic=True)),
            ".",
        ),
        paragraph("Try it", style="Heading2"),
        paragraph("Open the viewer link in a browser.", numbering=NUMBERS),
        paragraph("Edit this file and save it while publish --watch runs.", numbering=NUMBERS),
        paragraph("Watch the page follow your edits.", numbering=NUMBERS),
        paragraph("What comes through", style="Heading2"),
        paragraph("Headings, paragraphs and lists", numbering=BULLETS),
        paragraph("Bold, italic and links", numbering=BULLETS),
        paragraph("Tables and right-to-left text", numbering=BULLETS),
        table([["Part", "Where it runs"], ["Word add-in", "Word's task pane"], ["Viewer", "any browser"]]),
        paragraph("It was converted to HTML by ", markup(link("mammoth", "rIdLink1")), "."),
        paragraph("Right to left", style="Heading2"),
        paragraph("این یک بند فارسی است که از راست به چپ نوشته می‌شود.", rtl=True, language="fa-IR"),
    ]
    return body, {"rIdLink1": "https://github.com/mwilliamson/python-mammoth"}


def report():
    """A short report: a title, sections, a numbered list and a table of figures."""
    body = [
        paragraph("Quarterly report", style="Heading1"),
        paragraph("Summary", style="Heading2"),
        paragraph(
            "Readers doubled this quarter. The figures below are ",
            markup(run("made up", italic=True)),
            " for this sample.",
        ),
        paragraph("Figures", style="Heading2"),
        table(
            [
                ["Month", "Sessions", "Viewers"],
                ["January", "12", "140"],
                ["February", "18", "233"],
                ["March", "25", "301"],
            ]
        ),
        paragraph("Next steps", style="Heading2"),
        paragraph("Invite the board to the live minutes.", numbering=NUMBERS),
        paragraph("Publish the handbook the same way.", numbering=NUMBERS),
        paragraph(markup(run("Prepared with collab.", bold=True))),
    ]
    return body, {}


SAMPLES = {"welcome.docx": welcome, "report.docx": report}


# The package's parts


def document_xml(body):
    """word/document.xml holding the body's blocks."""
    return (
        f"{XML_DECLARATION}"
        f'<w:document xmlns:w="{W_NS}" xmlns:r="{R_NS}"><w:body>{"".join(body)}'
        "<w:sectPr/></w:body></w:document>"
    )


def styles_xml():
    """word/styles.xml: Normal and the two heading styles the samples use."""
    styles = [
        ("Normal", "Normal", ""),
        ("Heading1", "heading 1", '<w:b/><w:sz w:val="32"/>'),
        ("Heading2", "heading 2", '<w:b/><w:sz w:val="26"/>'),
    ]
    xml = "".join(
        f'<w:style w:type="paragraph" w:styleId="{style_id}"><w:name w:val="{name}"/>'
        + (f"<w:rPr>{properties}</w:rPr>" if properties else "")
        + "</w:style>"
        for style_id, name, properties in styles
    )
    return f'{XML_DECLARATION}<w:styles xmlns:w="{W_NS}">{xml}</w:styles>'


def numbering_xml():
    """word/numbering.xml: instance 1 a bulleted list, instance 2 a numbered one."""
    formats = {BULLETS: ("bullet", "\u2022"), NUMBERS: ("decimal", "%1.")}
    abstract = "".join(
        f'<w:abstractNum w:abstractNumId="{number}"><w:lvl w:ilvl="0"><w:start w:val="1"/>'
        f'<w:numFmt w:val="{kind}"/><w:lvlText w:val="{text}"/><w:pPr>'
        '<w:ind w:left="720" w:hanging="360"/></w:pPr>'
        f"</w:lvl></w:abstractNum>"
        for number, (kind, text) in formats.items()
    )
    instances = "".join(
        f'<w:num w:numId="{number}"><w:abstractNumId w:val="{number}"/></w:num>' for number in formats
    )
    return f'{XML_DECLARATION}<w:numbering xmlns:w="{W_NS}">{abstract}{instances}</w:numbering>'


def relationships_xml(relationships):
    """A .rels part of (id, type, target, external) tuples."""
    xml = "".join(
        f'<Relationship Id="{rid}" Type="{kind}" Target={quoteattr(target)}'
        + (' TargetMode="External"' if external else "")
        + "/>"
        for rid, kind, target, external in relationships
    )
    return f'{XML_DECLARATION}<Relationships xmlns="{PACKAGE_RELS}">{xml}</Relationships>'


def content_types_xml():
    """[Content_Types].xml of the parts written."""
    overrides = {
        "/word/document.xml": f"{MAIN_TYPE}.document.main+xml",
        "/word/styles.xml": f"{MAIN_TYPE}.styles+xml",
        "/word/numbering.xml": f"{MAIN_TYPE}.numbering+xml",
    }
    xml = "".join(f'<Override PartName="{part}" ContentType="{kind}"/>' for part, kind in overrides.items())
    return (
        f"{XML_DECLARATION}"
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        f'<Default Extension="xml" ContentType="application/xml"/>{xml}</Types>'
    )


def docx_bytes(body, links):
    """The .docx of a sample's body blocks and hyperlink targets."""
    document_rels = [
        ("rIdStyles", STYLES_REL, "styles.xml", False),
        ("rIdNumbering", NUMBERING_REL, "numbering.xml", False),
    ]
    document_rels += [(rid, HYPERLINK_REL, target, True) for rid, target in links.items()]
    parts = {
        "[Content_Types].xml": content_types_xml(),
        "_rels/.rels": relationships_xml([("rIdDocument", DOCUMENT_REL, "word/document.xml", False)]),
        "word/document.xml": document_xml(body),
        "word/_rels/document.xml.rels": relationships_xml(document_rels),
        "word/styles.xml": styles_xml(),
        "word/numbering.xml": numbering_xml(),
    }
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in parts.items():
            entry = zipfile.ZipInfo(name, ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, text.encode("utf-8"))
    return buffer.getvalue()


def sample_bytes():
    """Each sample's file name and bytes."""
    return {name: docx_bytes(*make()) for name, make in SAMPLES.items()}


def main(directory=SAMPLES_DIR):
    """Write every sample into `directory`."""
    directory.mkdir(exist_ok=True)
    for name, data in sample_bytes().items():
        (directory / name).write_bytes(data)
        print(f"wrote {directory / name} ({len(data)} bytes)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLES_DIR)
