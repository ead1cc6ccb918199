"""Pictures of an HTML page in a Word document: ``data:`` URIs only, checked, sized and counted.

Nothing here reads a URL: a picture that is not inside the HTML itself is not a picture
of the document. Each distinct picture is stored once in the package, however often shown.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass, field
from xml.sax.saxutils import quoteattr

from .errors import ConversionError
from .limits import Limits, MiB

# Word shows these everywhere; the sanitiser lets only data: pictures through anyway.
_DATA_URI = re.compile(r"data:image/(png|jpeg|gif);base64,([A-Za-z0-9+/]*={0,2})")
_EXTENSIONS = {"png": "png", "jpeg": "jpeg", "gif": "gif"}
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif"}
_EMU_PER_PIXEL = 9525  # at 96 pixels an inch
_EMU_PER_TWIP = 635
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers


@dataclass(frozen=True)
class Picture:
    """One stored picture: its part's name in word/media and its size in pixels."""

    name: str
    kind: str  # png, jpeg or gif
    data: bytes = field(repr=False)
    width: int
    height: int


class Pictures:
    """The document's pictures: decoded once each, within the limits; the drawing XML of each use."""

    def __init__(self, limits: Limits, text_width_twips: int, text_height_twips: int):
        self.limits = limits
        self.max_width = text_width_twips * _EMU_PER_TWIP
        self.max_height = text_height_twips * _EMU_PER_TWIP
        self.stored: dict[bytes, Picture] = {}  # by digest
        self.relationship_ids: dict[str, str] = {}  # picture name: relationship id
        self._bytes = 0
        self._shown = 0

    def drawing(self, src: str, alt: str, width: str | None, height: str | None, new_id) -> str | None:
        """The w:drawing of a picture, or None when src is no picture Word can show.

        ``new_id(target)`` gives the relationship id of a media part of the main part.
        """
        picture = self._picture(src)
        if picture is None:
            return None
        self._shown += 1
        if self._shown > self.limits.max_images:
            raise ConversionError(f"too many images (the limit is {self.limits.max_images})")
        if picture.name not in self.relationship_ids:
            self.relationship_ids[picture.name] = new_id(f"media/{picture.name}")
        cx, cy = self._extent(picture, _pixels(width), _pixels(height))
        return _DRAWING.format(
            cx=cx,
            cy=cy,
            id=self._shown,
            name=quoteattr(f"Picture {self._shown}"),
            descr=quoteattr(alt),
            rid=self.relationship_ids[picture.name],
        )

    def _picture(self, src: str) -> Picture | None:
        match = _DATA_URI.fullmatch(src)
        if match is None:
            return None
        kind, encoded = match.groups()
        # Base64 is a third bigger than what it holds: too long is too large, undecoded.
        if len(encoded) // 4 * 3 > self.limits.max_image_bytes + 3:
            raise self._too_large()
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return None
        if len(data) > self.limits.max_image_bytes:
            raise self._too_large()
        digest = hashlib.sha256(data).digest()
        if digest in self.stored:
            return self.stored[digest]
        size = picture_size(kind, data)
        if size is None:
            return None  # not the picture its type says, or damaged
        self._bytes += len(data)
        if self._bytes > self.limits.max_total_image_bytes:
            raise ConversionError(
                "the images are too large together (the limit is "
                f"{self.limits.max_total_image_bytes / MiB:.0f} MB of pictures per document)"
            )
        picture = Picture(f"image{len(self.stored) + 1}.{_EXTENSIONS[kind]}", kind, data, *size)
        self.stored[digest] = picture
        return picture

    def _too_large(self) -> ConversionError:
        return ConversionError(
            f"an image is too large (the limit is {self.limits.max_image_bytes / MiB:.0f} MB per image)"
        )

    def _extent(self, picture: Picture, width: int | None, height: int | None) -> tuple[int, int]:
        """The shown size in EMU: as the HTML gives it (or the picture's own), within the text area."""
        if width and not height:
            height = max(1, round(width * picture.height / picture.width))
        elif height and not width:
            width = max(1, round(height * picture.width / picture.height))
        elif not width:
            width, height = picture.width, picture.height
        cx, cy = width * _EMU_PER_PIXEL, height * _EMU_PER_PIXEL
        scale = min(1.0, self.max_width / cx, self.max_height / cy)
        return max(1, int(cx * scale)), max(1, int(cy * scale))


def _pixels(value: str | None) -> int | None:
    digits = (value or "").strip().removesuffix("px")
    return int(digits) if digits.isdigit() and int(digits) > 0 else None


def picture_size(kind: str, data: bytes) -> tuple[int, int] | None:
    """Width and height in pixels from a PNG, GIF or JPEG header; None if data is not one."""
    if kind == "png":
        if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
            return None
        size = struct.unpack(">II", data[16:24]) if len(data) >= 24 else (0, 0)
    elif kind == "gif":
        if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 10:
            return None
        size = struct.unpack("<HH", data[6:10])
    else:
        size = _jpeg_size(data)
    return size if size and 0 < size[0] <= 100_000 and 0 < size[1] <= 100_000 else None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    if data[:2] != b"\xff\xd8":
        return None
    at = 2
    # Each step jumps over one segment: the loop reads a marker at most once each.
    while at + 9 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _JPEG_FRAMES:
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            at += 2  # markers without a length
            continue
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if length < 2:
            return None
        at += 2 + length
    return None


_DRAWING = (
    '<w:drawing><wp:inline distT="0" distB="0" distL="0" distR="0">'
    '<wp:extent cx="{cx}" cy="{cy}"/><wp:effectExtent l="0" t="0" r="0" b="0"/>'
    '<wp:docPr id="{id}" name={name} descr={descr}/>'
    '<wp:cNvGraphicFramePr><a:graphicFrameLocks noChangeAspect="1"/></wp:cNvGraphicFramePr>'
    '<a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/picture">'
    '<pic:pic><pic:nvPicPr><pic:cNvPr id="{id}" name={name} descr={descr}/><pic:cNvPicPr/></pic:nvPicPr>'
    '<pic:blipFill><a:blip r:embed="{rid}"/><a:stretch><a:fillRect/></a:stretch></pic:blipFill>'
    '<pic:spPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="{cx}" cy="{cy}"/></a:xfrm>'
    '<a:prstGeom prst="rect"><a:avLst/></a:prstGeom></pic:spPr></pic:pic>'
    "</a:graphicData></a:graphic></wp:inline></w:drawing>"
)
