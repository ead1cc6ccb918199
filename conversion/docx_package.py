"""The parts of a new .docx around a written body: styles, numbering, properties, the zip.

The styles are Word's built-in ones by their usual ids and names (``Heading1``/"heading 1",
``Hyperlink``, ``TableGrid``), so Word shows and names them as its own, and our mammoth
style map turns the headings back into h1-h6.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.sax.saxutils import escape, quoteattr

from .wordml_images import CONTENT_TYPES, Picture

# A4, margins of an inch (twentieths of a point).
PAGE_WIDTH, PAGE_HEIGHT, MARGIN = 11906, 16838, 1440
TEXT_WIDTH, TEXT_HEIGHT = PAGE_WIDTH - 2 * MARGIN, PAGE_HEIGHT - 2 * MARGIN
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_RELATIONSHIP = _R + "/"
_PACKAGE_RELATIONSHIPS = "http://schemas.openxmlformats.org/package/2006/relationships"
_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml"
DOCUMENT_NAMESPACES = (
    f'xmlns:w="{_W}" xmlns:r="{_R}"'
    ' xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"'
    ' xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"'
    ' xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture"'
)
# The property set id Office gives every user-defined custom property.
_CUSTOM_PROPERTIES_FORMAT = "{D5CDD505-2E9C-101B-9397-08002B2CF9AE}"
# Word refuses longer names and values of custom text properties.
MAX_PROPERTY_LENGTH = 255
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# Word's numFmt of a bulleted list; ordered lists' are in wordml_body.ORDERED_FORMATS.
BULLET = "bullet"
_BULLETS = ("\u2022", "\u25e6", "\u25aa")  # bullet, white bullet, small square
_BULLET_FONT = '<w:rPr><w:rFonts w:ascii="Arial" w:hAnsi="Arial" w:cs="Arial"/></w:rPr>'
LIST_INDENT = 720  # per level
_HANGING = 360


def xml_text(text: str) -> str:
    """Text with the characters XML cannot hold removed."""
    return _XML_INVALID.sub("", text)


@dataclass
class Numbering:
    """Word's numbering of the lists: one abstract definition per format, one instance per HTML list."""

    formats: list[str] = field(default_factory=list)  # abstractNumId: the format
    instances: list[tuple[str, int, int]] = field(default_factory=list)  # numId - 1: format, level, start

    def new_list(self, list_format: str, level: int, start: int) -> int:
        """The numId of a new list of this format whose items are at level (0-8), counting from start."""
        if list_format not in self.formats:
            self.formats.append(list_format)
        self.instances.append((list_format, level, start))
        return len(self.instances)

    def xml(self) -> str:
        abstract = "".join(_abstract_numbering(index, name) for index, name in enumerate(self.formats))
        # Lists of one format share their definition; each numbered one starts its own count.
        instances = "".join(
            f'<w:num w:numId="{number}"><w:abstractNumId w:val="{self.formats.index(name)}"/>'
            + (
                f'<w:lvlOverride w:ilvl="{level}"><w:startOverride w:val="{start}"/></w:lvlOverride>'
                if name != BULLET
                else ""
            )
            + "</w:num>"
            for number, (name, level, start) in enumerate(self.instances, start=1)
        )
        return (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<w:numbering xmlns:w="{_W}">{abstract}{instances}</w:numbering>'
        )


def _abstract_numbering(index: int, list_format: str) -> str:
    levels = []
    for level in range(9):
        indent = LIST_INDENT * (level + 1)
        if list_format == BULLET:
            text, fonts = _BULLETS[level % len(_BULLETS)], _BULLET_FONT
        else:
            text, fonts = f"%{level + 1}.", ""
        levels.append(
            f'<w:lvl w:ilvl="{level}"><w:start w:val="1"/><w:numFmt w:val="{list_format}"/>'
            f'<w:lvlText w:val={quoteattr(text)}/><w:lvlJc w:val="left"/>'
            f'<w:pPr><w:ind w:left="{indent}" w:hanging="{_HANGING}"/></w:pPr>{fonts}</w:lvl>'
        )
    return (
        f'<w:abstractNum w:abstractNumId="{index}"><w:multiLevelType w:val="hybridMultilevel"/>'
        f"{''.join(levels)}</w:abstractNum>"
    )


@dataclass
class Body:
    """What the HTML walker wrote: the body's blocks and what they refer to."""

    xml: str  # the content of w:body, without its w:sectPr
    numbering: Numbering
    hyperlinks: dict[str, str]  # relationship id: URL
    media: dict[str, str]  # relationship id: target in word/
    pictures: list[Picture]


def check_properties(properties: dict[str, str]) -> None:
    """Refuse custom properties Word would not keep: names and values are text of up to 255 characters."""
    seen = set()
    for name, value in properties.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ValueError("custom property names and values must be text")
        if not name.strip() or len(name) > MAX_PROPERTY_LENGTH or len(value) > MAX_PROPERTY_LENGTH:
            raise ValueError(f"a custom property's name and value hold 1 to {MAX_PROPERTY_LENGTH} characters")
        if xml_text(name) != name or xml_text(value) != value:
            raise ValueError("a custom property holds a character XML cannot hold")
        if name.lower() in seen:
            raise ValueError(f"custom property {name!r} is given twice")
        seen.add(name.lower())


def package(body: Body, properties: dict[str, str], title: str | None) -> bytes:
    """The .docx of a written body, with custom properties and a title."""
    document_rels = [
        ("rId1", "styles", "styles.xml", False),
        ("rId2", "settings", "settings.xml", False),
        *((rid, "image", target, False) for rid, target in body.media.items()),
        *((rid, "hyperlink", url, True) for rid, url in body.hyperlinks.items()),
    ]
    if body.numbering.instances:
        document_rels.append(("rId3", "numbering", "numbering.xml", False))
    parts = {
        "[Content_Types].xml": _content_types(body, bool(properties)),
        "_rels/.rels": _relationships(
            [
                ("rId1", "officeDocument", "word/document.xml", False),
                ("rId2", "metadata/core-properties", "docProps/core.xml", False),
                ("rId3", "extended-properties", "docProps/app.xml", False),
                *([("rId4", "custom-properties", "docProps/custom.xml", False)] if properties else []),
            ]
        ),
        "docProps/core.xml": _core_properties(title),
        "docProps/app.xml": _APP,
        "word/document.xml": (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document {DOCUMENT_NAMESPACES}>'
            f"<w:body>{body.xml}{_SECTION}</w:body></w:document>"
        ),
        "word/_rels/document.xml.rels": _relationships(document_rels),
        "word/styles.xml": _STYLES,
        "word/settings.xml": _SETTINGS,
    }
    if properties:
        parts["docProps/custom.xml"] = _custom_properties(properties)
    if body.numbering.instances:
        parts["word/numbering.xml"] = body.numbering.xml()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text.encode("utf-8"))
        for picture in body.pictures:
            # Pictures are compressed already.
            archive.writestr(f"word/media/{picture.name}", picture.data, zipfile.ZIP_STORED)
    return out.getvalue()


def _relationships(relationships: list[tuple[str, str, str, bool]]) -> str:
    items = "".join(
        f'<Relationship Id="{rid}" Type="{_relationship_type(kind)}" Target={quoteattr(target)}'
        + (' TargetMode="External"/>' if external else "/>")
        for rid, kind, target, external in relationships
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<Relationships xmlns="{_PACKAGE_RELATIONSHIPS}">{items}</Relationships>'
    )


def _relationship_type(kind: str) -> str:
    if kind == "metadata/core-properties":
        return "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties"
    return _RELATIONSHIP + kind


def _content_types(body: Body, custom: bool) -> str:
    defaults = {"rels": "application/vnd.openxmlformats-package.relationships+xml", "xml": "application/xml"}
    for picture in body.pictures:
        defaults[picture.name.rsplit(".", 1)[1]] = CONTENT_TYPES[picture.kind]
    overrides = {
        "/word/document.xml": f"{_MAIN}.document.main+xml",
        "/word/styles.xml": f"{_MAIN}.styles+xml",
        "/word/settings.xml": f"{_MAIN}.settings+xml",
        "/docProps/core.xml": "application/vnd.openxmlformats-package.core-properties+xml",
        "/docProps/app.xml": "application/vnd.openxmlformats-officedocument.extended-properties+xml",
    }
    if body.numbering.instances:
        overrides["/word/numbering.xml"] = f"{_MAIN}.numbering+xml"
    if custom:
        overrides["/docProps/custom.xml"] = (
            "application/vnd.openxmlformats-officedocument.custom-properties+xml"
        )
    items = "".join(f'<Default Extension="{name}" ContentType="{kind}"/>' for name, kind in defaults.items())
    items += "".join(
        f'<Override PartName="{name}" ContentType="{kind}"/>' for name, kind in overrides.items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">{items}</Types>'
    )


def _core_properties(title: str | None) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    title_xml = f"<dc:title>{escape(xml_text(title))}</dc:title>" if title else ""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f'{title_xml}<dcterms:created xsi:type="dcterms:W3CDTF">{now}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{now}</dcterms:modified></cp:coreProperties>'
    )


def _custom_properties(properties: dict[str, str]) -> str:
    items = "".join(
        f'<property fmtid="{_CUSTOM_PROPERTIES_FORMAT}" pid="{pid}" name={quoteattr(name)}>'
        f"<vt:lpwstr>{escape(value)}</vt:lpwstr></property>"
        # Property ids start at 2: Office keeps 0 and 1 for itself.
        for pid, (name, value) in enumerate(properties.items(), start=2)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"'
        f' xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">{items}</Properties>'
    )


_APP = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
    "<Application>collab</Application></Properties>"
)
_SECTION = (
    f'<w:sectPr><w:pgSz w:w="{PAGE_WIDTH}" w:h="{PAGE_HEIGHT}"/>'
    f'<w:pgMar w:top="{MARGIN}" w:right="{MARGIN}" w:bottom="{MARGIN}" w:left="{MARGIN}"'
    ' w:header="708" w:footer="708" w:gutter="0"/></w:sectPr>'
)
# Compatibility mode 15 (Word 2013 and later): otherwise Word opens the document in compatibility mode.
_SETTINGS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    f'<w:settings xmlns:w="{_W}"><w:defaultTabStop w:val="720"/>'
    '<w:characterSpacingControl w:val="doNotCompress"/>'
    '<w:compat><w:compatSetting w:name="compatibilityMode" w:uri="http://schemas.microsoft.com/office/word"'
    ' w:val="15"/></w:compat></w:settings>'
)


def _heading_style(level: int) -> str:
    size = (32, 28, 26, 24, 22, 22)[level - 1]
    return (
        f'<w:style w:type="paragraph" w:styleId="Heading{level}"><w:name w:val="heading {level}"/>'
        '<w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:uiPriority w:val="9"/><w:qFormat/>'
        f'<w:pPr><w:keepNext/><w:keepLines/><w:spacing w:before="{360 if level < 3 else 240}" w:after="120"/>'
        f'<w:outlineLvl w:val="{level - 1}"/></w:pPr>'
        '<w:rPr><w:b/><w:bCs/><w:color w:val="1F3864"/>'
        f'<w:sz w:val="{size}"/><w:szCs w:val="{size}"/></w:rPr>'
        "</w:style>"
    )


_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    f'<w:styles xmlns:w="{_W}">'
    '<w:docDefaults><w:rPrDefault><w:rPr><w:rFonts w:ascii="Calibri" w:hAnsi="Calibri" w:eastAsia="Calibri"'
    ' w:cs="Arial"/><w:sz w:val="22"/><w:szCs w:val="22"/></w:rPr></w:rPrDefault>'
    '<w:pPrDefault><w:pPr><w:spacing w:after="160" w:line="259" w:lineRule="auto"/></w:pPr></w:pPrDefault>'
    "</w:docDefaults>"
    '<w:style w:type="paragraph" w:default="1" w:styleId="Normal">'
    '<w:name w:val="Normal"/><w:qFormat/></w:style>'
    + "".join(_heading_style(level) for level in range(1, 7))
    + '<w:style w:type="character" w:default="1" w:styleId="DefaultParagraphFont">'
    '<w:name w:val="Default Paragraph Font"/><w:uiPriority w:val="1"/><w:semiHidden/></w:style>'
    '<w:style w:type="character" w:styleId="Hyperlink"><w:name w:val="Hyperlink"/>'
    '<w:basedOn w:val="DefaultParagraphFont"/><w:uiPriority w:val="99"/>'
    '<w:rPr><w:color w:val="0563C1"/><w:u w:val="single"/></w:rPr></w:style>'
    '<w:style w:type="table" w:default="1" w:styleId="TableNormal"><w:name w:val="Normal Table"/>'
    '<w:uiPriority w:val="99"/><w:semiHidden/><w:tblPr><w:tblInd w:w="0" w:type="dxa"/>'
    '<w:tblCellMar><w:top w:w="0" w:type="dxa"/><w:left w:w="108" w:type="dxa"/>'
    '<w:bottom w:w="0" w:type="dxa"/><w:right w:w="108" w:type="dxa"/></w:tblCellMar></w:tblPr></w:style>'
    '<w:style w:type="table" w:styleId="TableGrid"><w:name w:val="Table Grid"/>'
    '<w:basedOn w:val="TableNormal"/>'
    '<w:uiPriority w:val="39"/><w:pPr><w:spacing w:after="0" w:line="240" w:lineRule="auto"/></w:pPr>'
    "<w:tblPr><w:tblBorders>"
    + "".join(
        f'<w:{side} w:val="single" w:sz="4" w:space="0" w:color="auto"/>'
        for side in ("top", "left", "bottom", "right", "insideH", "insideV")
    )
    + "</w:tblBorders></w:tblPr>"
    '<w:tblStylePr w:type="firstRow"><w:rPr><w:b/><w:bCs/></w:rPr></w:tblStylePr></w:style></w:styles>'
)
