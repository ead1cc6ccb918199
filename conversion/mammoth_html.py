"""The mammoth call: a checked .docx in, unsanitised HTML and warnings out."""

from __future__ import annotations

import base64
import io
import xml.parsers.expat
import zipfile
import zlib

import mammoth
from mammoth import html as mammoth_html

from .errors import ConversionError

# Raster types every browser shows. SVG can carry script and links; EMF/WMF and the
# rest do not display in browsers anyway.
ALLOWED_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp"})
_IMAGE_TYPE_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}


def docx_to_html(docx: bytes) -> tuple[str, list[str]]:
    """Convert .docx bytes (already checked by archive.py) to HTML and warning texts."""
    image_warnings: list[str] = []

    def convert_image(image):
        content_type = (image.content_type or "").strip().lower()
        content_type = _IMAGE_TYPE_ALIASES.get(content_type, content_type)
        if content_type not in ALLOWED_IMAGE_TYPES:
            image_warnings.append(
                f"An image of type {content_type or 'unknown'} was left out: "
                "only PNG, JPEG, GIF, BMP and WebP images are shown"
            )
            return []
        # An external image raises mammoth's own InvalidFileReferenceError here, which
        # mammoth turns into a warning; external file access stays off.
        with image.open() as stream:
            encoded = base64.b64encode(stream.read()).decode("ascii")
        attributes = {"src": f"data:{content_type};base64,{encoded}"}
        if image.alt_text:
            attributes["alt"] = image.alt_text
        return [mammoth_html.element("img", attributes)]

    try:
        result = mammoth.convert_to_html(
            io.BytesIO(docx),
            convert_image=convert_image,
            external_file_access=False,
        )
    except RecursionError as error:
        raise ConversionError("document is nested too deeply") from error
    except MemoryError as error:
        raise ConversionError("document is too large to convert") from error
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise ConversionError("damaged archive") from error
    except xml.parsers.expat.ExpatError as error:
        raise ConversionError("document contains malformed XML") from error
    except KeyError as error:
        raise ConversionError("damaged document: a part it refers to is missing") from error
    except OSError as error:
        # mammoth's words for a zip without Word parts.
        if "main document part" in str(error):
            raise ConversionError("not a Word document (no main document part)") from error
        raise ConversionError("document could not be read") from error
    except Exception as error:
        # mammoth has no error hierarchy; whatever it raises, the client gets no internals.
        raise ConversionError("document could not be converted") from error
    warnings = [message.message for message in result.messages] + image_warnings
    return result.value, warnings
