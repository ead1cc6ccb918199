"""HTML sanitising with nh3: what mammoth emits survives, nothing that runs script does."""

from __future__ import annotations

import functools
import re

import nh3

from .direction import DIRECTED_TAGS
from .omml import MATHML_ATTRIBUTES
from .sections import FOOTER_CLASS, HEADER_CLASS, KIND_CLASSES
from .word_features import ALIGNMENT_CLASSES

ALLOWED_TAGS = frozenset(
    {
        "p", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "u", "s",
        "sub", "sup", "a", "img", "table", "thead", "tbody", "tfoot", "tr", "td", "th",
        "ul", "ol", "li", "br", "blockquote", "pre", "code", "span", "div", "hr",
        "dl", "dt", "dd", "mark", "header", "footer",
    }
) | frozenset(MATHML_ATTRIBUTES)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "*": {"id", "class"},  # mammoth's ids anchor footnotes, endnotes, comments, bookmarks
    "a": {"href"},
    "img": {"src", "alt"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "ol": {"start"},
    # Equations: the MathML elements and attributes the OMML converter writes, nothing else.
    **{tag: set(attributes) for tag, attributes in MATHML_ATTRIBUTES.items() if attributes},
}
# Right-to-left text (direction.py); the filter keeps rtl and ltr only. An HTML payload (Edit in
# Word's editor content) may give the direction of everything in a block that encloses it.
for _tag in DIRECTED_TAGS | {"div", "blockquote", "td", "th"}:
    ALLOWED_ATTRIBUTES.setdefault(_tag, set()).add("dir")
_DIRECTIONS = frozenset({"rtl", "ltr"})
ALLOWED_CLASSES = ALIGNMENT_CLASSES | {HEADER_CLASS, FOOTER_CLASS} | (set(KIND_CLASSES.values()) - {""})
# Dropped together with their content, not just unwrapped.
_DROPPED_WITH_CONTENT = frozenset(
    {
        "script", "style", "template", "noscript", "iframe", "frame", "frameset",
        "object", "embed", "svg", "textarea", "select", "title", "noembed",
        "noframes", "xmp", "annotation", "annotation-xml",
    }
)  # fmt: skip
# nh3 checks schemes before our filter narrows them: data: must pass it for images.
_URL_SCHEMES = frozenset({"http", "https", "mailto", "data"})
_LINK_SCHEMES = ("http:", "https:", "mailto:")
_DATA_IMAGE = re.compile(r"data:image/(?:png|jpeg|gif|bmp|webp);base64,[A-Za-z0-9+/]*={0,2}")
# Browsers drop these anywhere in a URL, so "java\tscript:" is still javascript:.
_URL_IGNORED_CHARACTERS = re.compile(r"[\x00-\x20]+")
# What sanitise_html_for_word keeps besides: what a web editor writes that Word can show.
_WORD_TAGS = frozenset({"del", "strike", "ins"})
_WORD_ATTRIBUTES = {
    "*": {"dir", "style"},
    "img": {"width", "height"},
    "ol": {"type"},
    **{tag: {"align"} for tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6", "div", "td", "th")},
}
WORD_STYLE_PROPERTIES = frozenset(
    {"text-align", "text-decoration", "text-decoration-line", "font-weight", "font-style", "direction"}
)
_PIXELS = re.compile(r"[0-9]{1,5}(?:px)?")
# Prefixes every id (and the #links to them) so that a bookmark in a document can never
# take the id of an element of the page that shows it.
ID_PREFIX = "doc-"


def sanitise_html(html: str) -> str:
    """Return html with everything that is not plain document markup removed."""
    return _cleaner().clean(html)


def sanitise_html_for_word(html: str) -> str:
    """sanitise_html, keeping also what a Word document is made of (html_docx.py reads it).

    The same allow-lists and filters, and besides: the editors' strike-through elements
    (``del``, ``strike``) and ``ins``, ``dir`` on every element, a picture's ``width`` and
    ``height``, a list's ``type``, a block's ``align``, and of ``style`` only the properties
    in WORD_STYLE_PROPERTIES (web editors write underline and alignment as styles).
    """
    return _word_cleaner().clean(html)


@functools.cache
def _cleaner() -> nh3.Cleaner:
    # Built once per process: nh3 would otherwise convert the allow-lists on every call.
    return nh3.Cleaner(
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(_DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_filter_attribute,
        strip_comments=True,
        link_rel="noopener noreferrer",
        url_schemes=set(_URL_SCHEMES),
    )


@functools.cache
def _word_cleaner() -> nh3.Cleaner:
    attributes = {tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()}
    for tag, names in _WORD_ATTRIBUTES.items():
        attributes.setdefault(tag, set()).update(names)
    return nh3.Cleaner(
        tags=set(ALLOWED_TAGS | _WORD_TAGS),
        clean_content_tags=set(_DROPPED_WITH_CONTENT),
        attributes=attributes,
        attribute_filter=_filter_word_attribute,
        strip_comments=True,
        link_rel="noopener noreferrer",
        url_schemes=set(_URL_SCHEMES),
        filter_style_properties=set(WORD_STYLE_PROPERTIES),
    )


def _filter_word_attribute(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "style":
        return value  # nh3 keeps only WORD_STYLE_PROPERTIES of it
    if attribute in ("width", "height"):
        return value if _PIXELS.fullmatch(value.strip()) else None
    if attribute in ("align", "type"):
        return value.strip()[:16] or None
    return _filter_attribute(tag, attribute, value)


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "class":
        # Only the classes collab itself gives (alignment, header, footer): a document's
        # own style map could otherwise dress its text up as parts of the page.
        kept = [name for name in value.split() if name in ALLOWED_CLASSES]
        return " ".join(kept) if kept else None
    if attribute == "id":
        return value if value.startswith(ID_PREFIX) else ID_PREFIX + value
    if attribute == "dir":
        return value if value in _DIRECTIONS else None
    if tag == "a" and attribute == "href":
        return _safe_link(value)
    if tag == "img" and attribute == "src":
        url = _URL_IGNORED_CHARACTERS.sub("", value)
        return url if _DATA_IMAGE.fullmatch(url) else None
    if tag in MATHML_ATTRIBUTES:
        allowed = MATHML_ATTRIBUTES[tag].get(attribute)
        return value if allowed is not None and allowed.fullmatch(value) else None
    return value


def _safe_link(value: str) -> str | None:
    url = _URL_IGNORED_CHARACTERS.sub("", value)
    if url.startswith("#"):
        fragment = url[1:]
        if not fragment or fragment.startswith(ID_PREFIX):
            return url
        return "#" + ID_PREFIX + fragment
    if url.lower().startswith(_LINK_SCHEMES):
        return value.strip()
    return None
