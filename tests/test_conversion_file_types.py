"""A payload that is not a Word document is refused with the name of what it really is."""

from __future__ import annotations

import base64
import io
import zipfile

import pytest

from conversion import ConversionError, convert_payload
from conversion.file_types import describe
from tests.documents import corpus_file, flat_opc

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00"
README = "# collab\n\nMirrors a Word document live into web pages.\n\n    make run\n"
CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
NAMED = {
    "pdf": (PDF, "this is a PDF document, not a Word document"),
    "png": (PNG, "this is a PNG image, not a Word document"),
    "jpeg": (JPEG, "this is a JPEG image, not a Word document"),
    "gif": (GIF, "this is a GIF image, not a Word document"),
}
ENCRYPTED = "this is a password-protected Word document: remove the password in Word first"
LEGACY_DOC = "this is an old Word 97-2003 .doc file: save it as .docx in Word"
ZIP_WITHOUT_WORD = "this is a zip archive without a Word document"


def refusal(content, payload_type) -> str:
    with pytest.raises(ConversionError) as refused:
        convert_payload(content, payload_type)
    return refused.value.reason


def as_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def cfb(*directory_names: str) -> bytes:
    """A compound file (the container of .doc and encrypted .docx) with these directory entries."""
    entries = b""
    for name in directory_names:
        encoded = name.encode("utf-16-le") + b"\x00\x00"
        entry = encoded.ljust(64, b"\x00") + len(encoded).to_bytes(2, "little")
        entries += entry.ljust(128, b"\x00")
    return CFB_MAGIC + bytes(512 - len(CFB_MAGIC)) + entries


def zip_of(**entries: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", sorted(NAMED))
def test_other_files_sent_as_docx_are_named(kind):
    data, reason = NAMED[kind]
    assert refusal(as_base64(data), "docx") == reason
    assert refusal(data, "docx") == reason


@pytest.mark.parametrize("kind", ["pdf"])
def test_other_files_sent_as_flat_opc_are_named(kind):
    data, reason = NAMED[kind]
    assert refusal(data.decode("latin-1"), "ooxml") == reason
    assert refusal(data, "ooxml") == reason


def test_images_sent_as_flat_opc_bytes_are_named():
    assert refusal(PNG, "ooxml") == NAMED["png"][1]
    assert refusal(JPEG, "ooxml") == NAMED["jpeg"][1]


def test_password_protected_docx_from_the_corpus_is_named():
    data = corpus_file("docx/poi-encrypted-password-pass.docx").read_bytes()
    assert refusal(data, "docx") == ENCRYPTED
    assert refusal(as_base64(data), "docx") == ENCRYPTED


def test_compound_file_without_an_encrypted_package_is_an_old_doc():
    document = cfb("Root Entry", "WordDocument", "1Table")
    assert refusal(as_base64(document), "docx") == LEGACY_DOC
    assert refusal(document, "docx") == LEGACY_DOC
    assert refusal(as_base64(cfb("Root Entry", "EncryptedPackage")), "docx") == ENCRYPTED


def test_encrypted_package_only_counts_as_a_directory_entry():
    # A .doc whose text (UTF-16 inside the file) mentions the stream's name is still a .doc.
    text = "x EncryptedPackage".encode("utf-16-le")
    assert describe(cfb("Root Entry", "WordDocument") + text) == LEGACY_DOC


def test_zip_without_a_word_document_is_named():
    assert refusal(as_base64(zip_of(hello=b"hello")), "docx") == ZIP_WITHOUT_WORD
    assert refusal(corpus_file("docx/mammothjs-hello-zip.docx").read_bytes(), "docx") == ZIP_WITHOUT_WORD


def test_plain_text_sent_as_flat_opc_is_named():
    expected = "this is plain text, not a Word document (expected a Flat OPC package or a w:document)"
    assert refusal(README, "ooxml") == expected
    assert refusal(README.encode(), "ooxml") == expected


def test_plain_text_sent_as_docx_is_named():
    expected = "this is plain text, not a Word document (expected a .docx file or its base64)"
    assert refusal(README, "docx") == expected
    assert refusal(README.encode(), "docx") == expected
    assert refusal(as_base64(README.encode()), "docx") == "this is plain text, not a Word document"


def test_docx_bytes_sent_as_text_are_named():
    docx = corpus_file("docx/mammoth-single-paragraph.docx").read_bytes()
    assert refusal(docx.decode("latin-1"), "docx") == "this is a .docx file's bytes, not their base64"
    assert (
        refusal(docx.decode("latin-1"), "ooxml") == "this is a .docx file, not Flat OPC text: send it as docx"
    )
    assert refusal(as_base64(docx), "ooxml") == (
        "this is a .docx file's base64, not Flat OPC text: send it as docx"
    )


def test_xml_that_is_not_word_is_still_told_so():
    assert refusal("<html><body>hi</body></html>", "ooxml").startswith("not a Word document")
    assert refusal(flat_opc("Hello")[:-30], "ooxml") == "document is not well-formed XML"


def test_unknown_bytes_keep_the_general_words():
    assert refusal(as_base64(b"\x00\x01\x02 binary"), "docx") == "not a Word document (not a zip archive)"
    assert describe(b"\x00\x01\x02 binary") is None


def test_real_documents_still_convert():
    docx = corpus_file("docx/mammoth-single-paragraph.docx").read_bytes()
    assert "<p>" in convert_payload(as_base64(docx), "docx").html
    assert "<p>" in convert_payload(docx, "docx").html
    assert "Hello" in convert_payload(flat_opc("Hello"), "ooxml").html
    assert "Hello" in convert_payload("\ufeff" + flat_opc("Hello"), "ooxml").html
    assert "Hello" in convert_payload(("\ufeff" + flat_opc("Hello")).encode(), "ooxml").html
    flat = corpus_file("flatopc/docx4j-sample-docx.xml").read_text(encoding="utf-8")
    assert "<p>" in convert_payload(flat, "ooxml").html
