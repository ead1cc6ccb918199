"""mammoth over a checked .docx: sanitised HTML and warnings out, and what a next version can reuse."""

from __future__ import annotations

import base64
import contextlib
import gc
import io
import xml.parsers.expat
import zipfile
import zlib

from mammoth import html as mammoth_html

from . import direction, omml, style_matching, xml_parser
from .document_html import HTML_FINISHERS, ConvertedDocument, convert_changed, convert_document
from .errors import ConversionError
from .file_types import ZIP_WITHOUT_WORD
from .limits import DEFAULT_LIMITS, TOO_MUCH_MEMORY, Limits, MiB
from .word_context import read_context
from .word_features import STYLE_MAP, element_transform
from .xml_parser import BodyLayout, parsing_within

xml_parser.install()
style_matching.install()
direction.install()
# Equations: the MathML carried as marked text through mammoth becomes markup again.
if omml.finish_html not in HTML_FINISHERS:
    HTML_FINISHERS.append(omml.finish_html)

# Raster types every browser shows. SVG can carry script and links; EMF/WMF and the
# rest do not display in browsers anyway.
ALLOWED_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp"})
_IMAGE_TYPE_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}
MISSING_PICTURE = "A picture that is not stored in the document (a link to an outside file) was left out"
# mammoth applies a style map stored in the package (mammoth/style-map) to every element:
# its cost is elements times rules, and a rule's HTML path is written for every match.
# Maps written by people are short; a longer one is left out.
_EMBEDDED_STYLE_MAP = "mammoth/style-map"
_EMBEDDED_STYLE_MAP_MAX_BYTES = 64 * 1024
_EMBEDDED_STYLE_MAP_MAX_RULES = 200
_EMBEDDED_STYLE_MAP_MAX_PATH = 8  # elements in one rule's HTML path
EMBEDDED_STYLE_MAP_LEFT_OUT = "The document's own style map was left out: it is longer than collab accepts"


class ImageBudget:
    """mammoth's convert_image: pictures as data URIs, counted against the limits."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.warnings: list[str] = []
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.bytes = 0
        del self.warnings[:]

    def snapshot(self) -> tuple[int, int, int]:
        return self.count, self.bytes, len(self.warnings)

    def spend(self, count: int, size: int) -> None:
        """Count pictures converted before, as if converted now."""
        self.count += count
        self.bytes += size
        self._check()

    @contextlib.contextmanager
    def not_counting(self):
        """Pictures converted again for HTML already counted: neither counted nor warned twice."""
        count, size, warned = self.snapshot()
        try:
            yield
        finally:
            self.count, self.bytes = count, size
            del self.warnings[warned:]

    def _check(self) -> None:
        limits = self.limits
        if self.count > limits.max_images:
            raise ConversionError(f"too many images (the limit is {limits.max_images})")
        if self.bytes > limits.max_total_image_bytes:
            raise ConversionError(
                "the images are too large together (the limit is "
                f"{limits.max_total_image_bytes / MiB:.0f} MB of pictures per document)"
            )

    def __call__(self, image):
        limits = self.limits
        content_type = (image.content_type or "").strip().lower()
        content_type = _IMAGE_TYPE_ALIASES.get(content_type, content_type)
        if content_type not in ALLOWED_IMAGE_TYPES:
            self.warnings.append(
                f"An image of type {content_type or 'unknown'} was left out: "
                "only PNG, JPEG, GIF, BMP and WebP images are shown"
            )
            return []
        self.count += 1
        if self.count > limits.max_images:
            raise ConversionError(f"too many images (the limit is {limits.max_images})")
        # An image linked with r:link raises mammoth's own InvalidFileReferenceError here,
        # which mammoth turns into a warning; external file access stays off.
        try:
            opened = image.open()
        except KeyError:
            # r:embed or v:imagedata naming an external target (or a part not in the package):
            # the picture is not in the document, so it is left out like any linked picture.
            self.warnings.append(MISSING_PICTURE)
            return []
        # Each time a picture is shown costs its bytes again in the HTML; read one byte
        # past what may still be spent: enough to know, without holding a huge picture.
        allowance = max(0, min(limits.max_image_bytes, limits.max_total_image_bytes - self.bytes))
        with opened as stream:
            data = stream.read(allowance + 1)
        if len(data) > limits.max_image_bytes:
            raise ConversionError(
                f"an image is too large (the limit is {limits.max_image_bytes / MiB:.0f} MB per image)"
            )
        self.bytes += len(data)
        self._check()
        encoded = base64.b64encode(data).decode("ascii")
        attributes = {"src": f"data:{content_type};base64,{encoded}"}
        if image.alt_text:
            attributes["alt"] = image.alt_text
        return [mammoth_html.element("img", attributes)]


def docx_to_html(docx: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[str, list[str]]:
    """Convert .docx bytes (already checked by archive.py) to sanitised HTML and warning texts."""
    converted = convert_docx(docx, limits)
    return converted.html, converted.warnings


def convert_docx(
    docx: bytes,
    limits: Limits = DEFAULT_LIMITS,
    layouts: dict[str, BodyLayout] | None = None,
    data: bytes | None = None,
) -> ConvertedDocument:
    """Convert .docx bytes (already checked by archive.py), keeping what a next version can reuse.

    ``layouts`` and ``data``: where the main part's blocks lie in the bytes it arrived in.
    """
    with converting_safely(limits):
        other_warnings: list[str] = []
        with zipfile.ZipFile(io.BytesIO(docx)) as archive:
            embedded_style_map = _embedded_style_map(archive, other_warnings)
        convert_options = {"style_map": STYLE_MAP, "embedded_style_map": embedded_style_map}
        images = ImageBudget(limits)
        context = read_context(
            docx,
            convert_options,
            element_transform,
            images,
            other_warnings,
            layouts,
            data,
        )
        return convert_document(context, limits)


def convert_docx_changed(
    previous: ConvertedDocument, data: bytes, limits: Limits
) -> ConvertedDocument | None:
    """A new version of previous's main part converted reusing what it can; None if it cannot."""
    with converting_safely(limits):
        return convert_changed(previous, data, limits)


@contextlib.contextmanager
def converting_safely(limits: Limits):
    """Nesting limited, the collector paused, and whatever mammoth raises turned into a ConversionError."""
    try:
        with parsing_within(limits.max_xml_depth), garbage_collection_paused():
            yield
        return
    except ConversionError:
        raise
    except RecursionError as error:
        raise ConversionError("document is nested too deeply") from error
    except MemoryError:
        pass  # raised below: this exception's frames hold all the conversion had built
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise ConversionError("damaged archive") from error
    except xml.parsers.expat.ExpatError as error:
        raise ConversionError("document contains malformed XML") from error
    except KeyError as error:
        raise ConversionError("damaged document: a part it refers to is missing") from error
    except OSError as error:
        # mammoth's words for a zip without Word parts.
        if "main document part" in str(error):
            raise ConversionError(ZIP_WITHOUT_WORD) from error
        raise ConversionError("document could not be read") from error
    except Exception as error:
        # mammoth has no error hierarchy; whatever it raises, the client gets no internals.
        raise ConversionError("document could not be converted") from error
    # Out of the except block, so nothing keeps the MemoryError, its frames or their memory.
    raise ConversionError(TOO_MUCH_MEMORY)


def _embedded_style_map(archive: zipfile.ZipFile, warnings: list[str]) -> str:
    """The package's own mammoth style map, as mammoth reads it, or "" if there is none or it is too long."""
    try:
        entry = archive.getinfo(_EMBEDDED_STYLE_MAP)
    except KeyError:
        return ""
    if entry.file_size > _EMBEDDED_STYLE_MAP_MAX_BYTES:
        warnings.append(EMBEDDED_STYLE_MAP_LEFT_OUT)
        return ""
    text = archive.read(entry).decode("utf-8")
    rules = [line.strip() for line in text.split("\n")]
    rules = [rule for rule in rules if rule and not rule.startswith("#")]
    if len(rules) > _EMBEDDED_STYLE_MAP_MAX_RULES or any(
        rule.partition("=>")[2].count(">") >= _EMBEDDED_STYLE_MAP_MAX_PATH for rule in rules
    ):
        warnings.append(EMBEDDED_STYLE_MAP_LEFT_OUT)
        return ""
    return text


@contextlib.contextmanager
def garbage_collection_paused():
    """Pause the cyclic garbage collector for the block.

    A conversion allocates hundreds of thousands of small tree objects and frees them by
    reference counting; the collector, triggered by the allocations alone, would walk the
    growing tree over and over (about two thirds of mammoth's time on a large document).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
