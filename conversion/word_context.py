"""What every block of a .docx is converted with, read once: mammoth's reader and converter set up.

mammoth (pinned, see xml_parser.py) reads a whole document and converts it in one call.
collab runs the same stages itself so that the body can be read and converted block by
block: the styles, numbering, relationships, notes and comments are read here once, as
mammoth's own ``docx.read`` reads them, and the main part is parsed by our parser, which
also notes where each block starts (``DocumentSource``). A block read and converted with
this context gives what mammoth gives for it inside the whole document.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mammoth import conversion, documents, docx, html, options, results, writers, zips
from mammoth.docx import body_xml, office_xml
from mammoth.docx.content_types_xml import empty_content_types, read_content_types_xml_element
from mammoth.docx.files import Files
from mammoth.docx.numbering_xml import Numbering, read_numbering_xml_element
from mammoth.docx.styles_xml import Styles, read_styles_xml_element
from mammoth.docx.xmlparser import XmlElement

from .archive import zip_entries
from .document_source import DocumentSource
from .errors import ConversionError
from .word_features import TransformedNotes, WordPackage, read_package, transformed_comments
from .xml_parser import BodyLayout, parse_xml


@dataclass
class WordContext:
    """One .docx's shared parts, mammoth's body reader for its main part, and caches of what they give."""

    archive: zipfile.ZipFile
    archive_bytes: int
    main_part: str  # the main part's name in the archive
    entries: dict  # every entry's (CRC, size)
    package: WordPackage
    body_reader: Any  # mammoth's _BodyReader for the main part; its state is empty between blocks
    notes: Any  # mammoth's Notes
    comments: dict  # comment id: mammoth's Comment
    style_map: list
    ignore_empty_paragraphs: bool
    transform: Callable  # the document transform, applied to each top-level element
    images: Any  # the ImageBudget that converts pictures and counts them
    zip_file: Any  # mammoth's view of the archive
    shared: Any  # the content types, styles and numbering every part is read with
    part_style_map: list  # the style map of headers and footers (never the document's own)
    messages: list  # from reading the style maps, notes and comments
    other_warnings: list  # collab's own, from reading the package
    body: list  # the main part's top-level body elements as parsed (before mammoth reads them)
    source: DocumentSource | None  # where they lie in the main part's bytes; None if unknown
    # Converted once per context: the notes and comments at the end, each header and footer.
    tail_html: dict = field(default_factory=dict)
    part_html: dict = field(default_factory=dict)
    trackable: bool = True  # False once something shows that blocks cannot be converted apart
    style_memo: dict = field(default_factory=dict)  # style_matching's answers, for every converter

    def converter(self, messages: list, note_references: list):
        """A mammoth converter for this document that writes to messages and note_references."""
        converter = conversion._DocumentConverter(
            messages=messages,
            style_map=self.style_map,
            convert_image=self.images,
            id_prefix="",
            ignore_empty_paragraphs=self.ignore_empty_paragraphs,
            note_references=note_references,
            comments=self.comments,
        )
        converter._collab_style_memo = self.style_memo
        return converter

    def convert_part(self, name: str, kind: str):
        """A header or footer part converted as mammoth converts a body: mammoth's Result, or None.

        Read with the part's own relationships (its pictures), its ids prefixed with its
        kind so they stay apart from the body's; the document's own style map is not used.
        """
        try:
            with self.zip_file.open(name) as stream:
                root = office_xml.read(stream)
            read = _reader_for(self.zip_file, self.shared, name).read_all(root.children)
            messages: list = []
            converter = conversion._DocumentConverter(
                messages=messages,
                style_map=self.part_style_map,
                convert_image=self.images,
                id_prefix=f"{kind}-",
                ignore_empty_paragraphs=self.ignore_empty_paragraphs,
                note_references=[],
                comments={},
            )
            state = conversion._ConversionContext(is_table_header=False)
            nodes = [
                node for element in read.value for node in converter.visit(self.transform(element), state)
            ]
        except ConversionError:
            raise
        except Exception:  # noqa: BLE001  (the body does not depend on it: a damaged header leaves it readable)
            return None
        writer = writers.writer("html")
        html.write(writer, html.collapse(html.strip_empty(nodes)))
        return results.Result(writer.as_string(), read.messages + messages)


def read_context(
    docx_bytes: bytes,
    convert_options: dict,
    make_transform: Callable[[WordPackage], Callable],
    images: Any,
    other_warnings: list,
    layouts: dict[str, BodyLayout] | None = None,
    data: bytes | None = None,
) -> WordContext:
    """Read a .docx's shared parts and parse its main part.

    ``convert_options`` are mammoth's style maps; ``make_transform`` gives the transform of
    each element (body blocks, notes, comments) from what word_features read of the package;
    ``images`` converts pictures.
    ``layouts`` (by part name) and ``data``: where the main part's blocks lie in the bytes
    the document arrived in (a Flat OPC package's text); without them, the part's own bytes.
    """
    archive = zipfile.ZipFile(io.BytesIO(docx_bytes))
    zip_file = zips._Zip(archive)
    package = read_package(archive)
    read_options = options.read_options({**convert_options, "convert_image": images})
    chosen = read_options.value
    part_paths = docx._find_part_paths(zip_file)
    shared = _SharedParts(zip_file, part_paths)

    def read_part(name, reader, default=docx._undefined):
        # mammoth's read_part (docx._part_with_body_reader), over the parts read once.
        body_reader = _reader_for(zip_file, shared, name)
        read = lambda root: reader(root, body_reader=body_reader)  # noqa: E731
        if default is docx._undefined:
            return docx._read_entry(zip_file, name, read)
        return docx._try_read_entry_or_default(zip_file, name, read, default=default)

    referents = results.combine(
        [docx._read_notes(read_part, part_paths), docx._read_comments(read_part, part_paths)]
    )
    notes, comments = referents.value

    main = part_paths.main_document
    own_layout = BodyLayout()
    with zip_file.open(main) as stream:
        root = parse_xml(stream, office_xml._namespaces, layout=own_layout)
    body_element = root.find_child("w:body")
    if body_element is None:
        raise ValueError("Could not find the body element: are you sure this is a docx file?")
    body = [child for child in body_element.children if isinstance(child, XmlElement)]
    if layouts is None:
        layout, data = own_layout, archive.read(main)
    else:
        layout = layouts.get(main, BodyLayout())
    transform = make_transform(package)
    return WordContext(
        archive=archive,
        archive_bytes=len(docx_bytes),
        main_part=main,
        entries=zip_entries(archive),
        package=package,
        body_reader=_reader_for(zip_file, shared, main),
        notes=TransformedNotes(documents.notes(notes), transform),
        comments={comment.comment_id: comment for comment in transformed_comments(comments, transform)},
        style_map=chosen["style_map"],
        ignore_empty_paragraphs=chosen["ignore_empty_paragraphs"],
        transform=transform,
        images=images,
        zip_file=zip_file,
        shared=shared,
        part_style_map=options.read_options({**convert_options, "embedded_style_map": ""}).value["style_map"],
        messages=read_options.messages + referents.messages,
        other_warnings=other_warnings,
        body=body,
        source=_source(layout, data, len(body)),
    )


def _source(layout: BodyLayout, data: bytes | None, blocks: int) -> DocumentSource | None:
    # A layout that does not account for every block cannot be trusted to find them again.
    if data is None or layout.body_end < 0 or len(layout.starts) != blocks:
        return None
    return DocumentSource(
        data=data,
        starts=tuple(layout.starts),
        body_end=layout.body_end,
        namespaces=tuple(layout.namespaces),
        body_namespace=layout.body_namespace,
        body_depth=layout.body_depth,
    )


class _SharedParts:
    """Content types, styles and numbering of a package, read once as mammoth reads them."""

    def __init__(self, zip_file, part_paths):
        self.content_types = docx._try_read_entry_or_default(
            zip_file, "[Content_Types].xml", read_content_types_xml_element, empty_content_types
        )
        self.styles = docx._try_read_entry_or_default(
            zip_file, part_paths.styles, read_styles_xml_element, Styles.EMPTY
        )
        self.numbering = docx._try_read_entry_or_default(
            zip_file,
            part_paths.numbering,
            lambda element: read_numbering_xml_element(element, styles=self.styles),
            default=Numbering.EMPTY,
        )
        self.files = Files(None, external_file_access=False)


def _reader_for(zip_file, shared: _SharedParts, name: str):
    relationships = docx._read_relationships(zip_file, docx._find_relationships_path_for(name))
    return body_xml.reader(
        numbering=shared.numbering,
        content_types=shared.content_types,
        relationships=relationships,
        styles=shared.styles,
        docx_file=zip_file,
        files=shared.files,
    )
