"""Checks on a .docx zip before mammoth opens it: sizes, counts, zip bombs, names.

The XML inside is checked as mammoth reads it (xml_parser.py): DTDs and entities are
refused and depth is limited in every part it parses, whatever the part's name.
"""

from __future__ import annotations

import io
import zipfile
import zlib

from .errors import ConversionError
from .file_types import describe
from .limits import TOO_MUCH_MEMORY, Limits, MiB

DAMAGED = "damaged archive"
# Small entries compress far beyond any ratio when repetitive (an empty settings part,
# a run of zeros in an image), and cannot hurt; the ratio only guards big entries.
_RATIO_CHECKED_FROM_BYTES = 1 * MiB
# Memory a conversion needs per byte of an XML part, with room for what is built from its tree.
_TREE_BYTES_PER_XML_BYTE = 16
_ZIP_MAGIC = b"PK"
_ENCRYPTED_FLAG = 0x1


def check_docx_archive(data: bytes, limits: Limits) -> None:
    """Refuse an archive that is too big, a zip bomb, encrypted, or with unsafe part names."""
    if len(data) > limits.max_archive_bytes:
        raise ConversionError(f"document too large (the limit is {limits.max_archive_bytes // MiB} MB)")
    if not data.startswith(_ZIP_MAGIC):
        # A PDF, an image, a password-protected or an old .doc file, a text: named.
        raise ConversionError(describe(data) or "not a Word document (not a zip archive)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
            _check_entries(entries, limits)
    except ConversionError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError) as error:
        raise ConversionError(DAMAGED) from error
    except (NotImplementedError, RuntimeError) as error:
        # zipfile raises these for compression methods it lacks and for encryption.
        raise ConversionError("the archive uses a compression method that is not supported") from error


def _check_entries(entries: list[zipfile.ZipInfo], limits: Limits) -> None:
    if len(entries) > limits.max_parts:
        raise ConversionError(f"too many parts (the limit is {limits.max_parts})")
    total = 0
    names: set[str] = set()
    for entry in entries:
        if entry.flag_bits & _ENCRYPTED_FLAG:
            raise ConversionError("encrypted documents are not supported")
        _check_name(entry.filename)
        # Two entries of one name would let the checked one differ from the one mammoth reads.
        if entry.filename.lower() in names:
            raise ConversionError(f"{DAMAGED}: a part name is used twice")
        names.add(entry.filename.lower())
        total += entry.file_size
        if total > limits.max_uncompressed_bytes:
            raise ConversionError(
                f"document too large when unpacked (the limit is {limits.max_uncompressed_bytes // MiB} MB)"
            )
        if (
            entry.file_size > _RATIO_CHECKED_FROM_BYTES
            and entry.file_size > limits.max_compression_ratio * max(entry.compress_size, 1)
        ):
            raise ConversionError("document looks like a zip bomb (a part is compressed too well)")
        # The parsed tree of an XML part takes about 11 times its size (measured on the
        # corpus' largest); refused here, before the worker runs out of memory mid-parse,
        # where the allocator can spin instead of failing cleanly.
        if (
            limits.max_memory_bytes
            and entry.filename.lower().endswith((".xml", ".rels"))
            and entry.file_size * _TREE_BYTES_PER_XML_BYTE > limits.max_memory_bytes
        ):
            raise ConversionError(TOO_MUCH_MEMORY)


def _check_name(name: str) -> None:
    segments = name.split("/")
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or any(ord(char) < 0x20 for char in name)
        or any(segment in {".", ".."} for segment in segments)
        or (len(segments[0]) == 2 and segments[0][1] == ":")
    ):
        raise ConversionError(f"{DAMAGED}: a part has an invalid name")


def zip_entries(archive: zipfile.ZipFile) -> dict[str, tuple[int, int]]:
    """Each entry's CRC and size: what tells two packages' parts apart without reading them."""
    return {info.filename: (info.CRC, info.file_size) for info in archive.infolist()}
