"""Small Word documents made on the fly, the shared corpus, and versions stored as conversions store them."""

from pathlib import Path
from xml.sax.saxutils import escape

from conversion import Converted

# The corpus lies outside the repository: CI clones it next to shared/.
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

_PACKAGE = """<?xml version="1.0" standalone="yes"?>
<?mso-application progid="Word.Document"?>
<pkg:package xmlns:pkg="http://schemas.microsoft.com/office/2006/xmlPackage">
<pkg:part pkg:name="/_rels/.rels" pkg:contentType="application/vnd.openxmlformats-package.relationships+xml">
<pkg:xmlData><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
 Target="word/document.xml"/></Relationships></pkg:xmlData></pkg:part>
<pkg:part pkg:name="/word/document.xml"
 pkg:contentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml">
<pkg:xmlData><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">
<w:body>{paragraphs}</w:body></w:document></pkg:xmlData></pkg:part>
</pkg:package>"""


def flat_opc(*paragraphs):
    """A Flat OPC package, as Word.Body.getOoxml() returns it, with these paragraphs."""
    body = "".join(f"<w:p><w:r><w:t>{escape(text)}</w:t></w:r></w:p>" for text in paragraphs)
    return _PACKAGE.format(paragraphs=body)


def corpus_file(relative):
    """A corpus document's path; fails loudly when the corpus is missing."""
    path = CORPUS / relative
    if not path.is_file():
        raise FileNotFoundError(f"corpus document missing: {path}")
    return path


def store_version(session_id, html):
    """A new stored version of the session with this HTML, as a finished conversion stores it."""
    # Imported here: the bench scripts use this module without setting Django up.
    from sessions_app.services import do_publish_document

    return do_publish_document(session_id, Converted(html, [], 10, len(html), 0.01))
