"""What a payload that is not a Word document really is, named from its first bytes.

Refusals say "this is a PDF document" rather than what failed inside (bad XML, bad
base64, bad UTF-8), which points at the parser instead of at the file that was sent.
"""

from __future__ import annotations

import codecs

CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
# "UEsDB" is the base64 of ZIP_MAGIC: a .docx's base64 begins so.
DOCX_BASE64_START = "UEsDB"

ENCRYPTED = "this is a password-protected Word document: remove the password in Word first"
LEGACY_DOC = "this is an old Word 97-2003 .doc file: save it as .docx in Word"
ZIP_WITHOUT_WORD = "this is a zip archive without a Word document"
PLAIN_TEXT = "this is plain text, not a Word document"
RAW_DOCX = "this is a .docx file's bytes, not their base64"
DOCX_AS_OOXML = "this is a .docx file, not Flat OPC text: send it as docx"
DOCX_BASE64_AS_OOXML = "this is a .docx file's base64, not Flat OPC text: send it as docx"

_SIGNATURES = (
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
)
# Word encrypts a .docx into this stream of a CFB container (MS-OFFCRYPTO 2.3.4.4). A CFB
# directory entry is 128 bytes: the name in UTF-16LE, then at byte 64 its length in bytes
# with the terminating NUL (34 here).
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_ENCRYPTED_PACKAGE_LENGTH = b"\x22\x00"
_DIRECTORY_ENTRY_BYTES = 128
# Enough of a text to tell it from a binary file.
_TEXT_SAMPLE_BYTES = 4096
_TEXT_CONTROLS = frozenset("\t\n\r\f")


def describe(data: bytes) -> str | None:
    """Why data is not a Word document, naming what it is; None if it may be one or is not known."""
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return f"this is {name}, not a Word document"
    if data.startswith(CFB_MAGIC):
        return ENCRYPTED if _holds_encrypted_package(data) else LEGACY_DOC
    if _is_plain_text(data[:_TEXT_SAMPLE_BYTES]):
        return PLAIN_TEXT
    return None


def describe_text(text: str) -> str | None:
    """describe() for a payload received as text."""
    return describe(text[:_TEXT_SAMPLE_BYTES].encode("utf-8", "replace"))


def _holds_encrypted_package(data: bytes) -> bool:
    start = data.find(_ENCRYPTED_PACKAGE)
    while start != -1:
        length_at = start + 64
        if (
            start % _DIRECTORY_ENTRY_BYTES == 0
            and data[length_at : length_at + 2] == _ENCRYPTED_PACKAGE_LENGTH
        ):
            return True
        start = data.find(_ENCRYPTED_PACKAGE, start + 1)
    return False


def _is_plain_text(sample: bytes) -> bool:
    # Markup is left to the XML reader, which names what it is not.
    if not sample.strip() or sample.lstrip().startswith((b"<", b"\xef\xbb\xbf<")):
        return False
    try:
        # Not final: the sample may end inside a character.
        text = codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return all(char >= " " or char in _TEXT_CONTROLS for char in text)
