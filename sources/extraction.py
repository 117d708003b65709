"""Plain text, a title and a publication date from an uploaded or fetched document.

Sources reach the model as text, so every supported format (HTML, PDF, Markdown, plain text)
is reduced here to readable paragraphs. No database access; a document we cannot read
raises `ExtractionError` with a sentence the person who supplied it understands.
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING

from . import titles

if TYPE_CHECKING:
    import pypdf
    from bs4 import BeautifulSoup

PLAIN = "text/plain"
MARKDOWN = "text/markdown"
HTML = "text/html"
XHTML = "application/xhtml+xml"
PDF = "application/pdf"
SUPPORTED_TYPES = frozenset({PLAIN, MARKDOWN, HTML, XHTML, PDF})

_EXTENSIONS = {
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".txt": PLAIN,
    ".html": HTML,
    ".htm": HTML,
    ".pdf": PDF,
}
# Page furniture, plus the invisible parts (head, title, template) html.parser would keep as text.
_DROPPED_TAGS = frozenset({
    "script", "style", "noscript", "nav", "header", "footer", "aside", "form", "svg",
    "head", "title", "template",
})  # fmt: skip
_BLOCK_TAGS = frozenset({
    "address", "article", "blockquote", "body", "dd", "details", "div", "dl", "dt",
    "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li", "main", "ol",
    "p", "pre", "section", "summary", "table", "tr", "ul",
})  # fmt: skip
_CELL_TAGS = frozenset({"td", "th"})
_DATE_META_NAMES = ("article:published_time", "date", "dc.date")
# Private-use characters mark breaks while source whitespace is collapsed, then become newlines.
_PARAGRAPH = "\ue000"
_LINE = "\ue001"
_LEAVE_PRE = object()
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TITLE_LIMIT = 200
# A byte order mark says the encoding more reliably than any declared charset.
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


# Signatures of common binary formats: whatever the file is named, it is not text.
_BINARY_SIGNATURES = (
    (b"\x7fELF", "an executable (ELF)"),
    (b"MZ", "a Windows executable"),
    (b"\xcf\xfa\xed\xfe", "an executable (Mach-O)"),
    (b"\xfe\xed\xfa\xcf", "an executable (Mach-O)"),
    (b"\xca\xfe\xba\xbe", "an executable or Java class"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\xd0\xcf\x11\xe0", "an old Office document"),
    (b"\x00asm", "a WebAssembly module"),
)
# Text has next to no control characters besides tab, newlines, form feed and escape.
# (A stray NUL in text is tolerated, and dropped when the text is normalised.)
_CONTROL_BYTES = frozenset(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D, 0x1B}
_SNIFF_BYTES = 8192


def binary_kind(data: bytes) -> str | None:
    """What a file that is not text is ("an executable (ELF)", "binary data"), or None when
    its bytes read as text. Documents with a UTF-16 byte order mark are text."""
    if any(data.startswith(bom) for bom, _ in _BYTE_ORDER_MARKS):
        return None
    for signature, kind in _BINARY_SIGNATURES:
        if data.startswith(signature):
            # "MZ" also begins ordinary text now and then: only with binary bytes after it.
            if signature == b"MZ" and not _has_binary_bytes(data):
                continue
            return kind
    return "binary data" if _has_binary_bytes(data) else None


def _has_binary_bytes(data: bytes) -> bool:
    head = data[:_SNIFF_BYTES]
    controls = sum(1 for byte in head if byte in _CONTROL_BYTES)
    return controls > max(2, len(head) // 100)


@dataclass(frozen=True)
class Extracted:
    text: str
    title: str  # "" when none
    published: dt.date | None
    content_type: str  # the normalised media type used


class ExtractionError(Exception):
    """A document we cannot turn into text; `message` is a sentence a person understands."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def detect_content_type(*, data: bytes, filename: str = "", declared: str = "") -> str:
    """The supported media type of `data`, trusting its bytes first, then its name and label."""
    if data.startswith(b"%PDF-"):
        return PDF
    extension = PurePath(filename).suffix.lower()
    if extension in _EXTENSIONS:
        return _EXTENSIONS[extension]
    declared_type = _media_type(declared)
    if declared_type in SUPPORTED_TYPES:
        return declared_type
    head = data[:1024].lstrip().lower()
    if head.startswith(b"<!doctype html") or b"<html" in head:
        return HTML
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise ExtractionError(
            f"{_label(filename)} has an unsupported file type; upload a PDF, HTML, Markdown "
            "or plain-text file."
        ) from None
    return PLAIN


def extract_text(
    *, data: bytes, content_type: str, charset: str | None = None, filename: str = ""
) -> Extracted:
    media_type = _media_type(content_type)
    if media_type in (HTML, XHTML, PLAIN, MARKDOWN) and (kind := binary_kind(data)):
        raise ExtractionError(
            f"{_label(filename)} is {kind}, not a text document; upload a PDF, HTML, Markdown or plain-text file."
        )
    if media_type in (HTML, XHTML):
        text, title, published = _from_html(data=data, charset=charset)
    elif media_type == PDF:
        text, title, published = _from_pdf(data=data, filename=filename)
    elif media_type in (PLAIN, MARKDOWN):
        text, title, published = _from_text(data=data, charset=charset, filename=filename)
    else:
        raise ExtractionError(
            f"{_label(filename)} is a {media_type or 'unknown'} file, which reportdesk cannot "
            "read; use a PDF, HTML, Markdown or plain-text file."
        )
    text = _normalise(text)
    if not text:
        if media_type == PDF:
            raise ExtractionError(
                f"{_label(filename, pdf=True)} has no extractable text "
                "(it may be a scanned image)."
            )
        raise ExtractionError(f"{_label(filename)} contains no text.")
    return Extracted(
        text=text, title=title[:_TITLE_LIMIT], published=published, content_type=media_type
    )


# Elements an HTML source may have. Reading one costs time and memory by its elements (about
# 3 s and 200 MB for 100,000, in a web request for an upload), and a page of readable text
# has far fewer: a long encyclopaedia article has some tens of thousands.
MAX_HTML_ELEMENTS = 100_000
_ELEMENT = re.compile(r"<[A-Za-z]")


def _from_html(*, data: bytes, charset: str | None) -> tuple[str, str, dt.date | None]:
    # Imported here, not at the top: bs4 costs every process memory; only extraction needs it.
    from bs4 import BeautifulSoup
    from bs4.dammit import EncodingDetector

    # Decoded here, not by BeautifulSoup, whose last resort is a statistical guess.
    in_document = EncodingDetector.find_declared_encoding(data, is_html=True)
    markup = _decode(data=data, charsets=(charset, in_document))
    elements = sum(1 for _ in zip(_ELEMENT.finditer(markup), range(MAX_HTML_ELEMENTS + 1)))
    if elements > MAX_HTML_ELEMENTS:
        raise ExtractionError(
            f"This HTML page has more than {MAX_HTML_ELEMENTS:,} elements, more than reportdesk reads; "
            "save its text as a PDF or a text file and use that."
        )
    soup = BeautifulSoup(markup, "html.parser")
    return _html_text(soup), _html_title(soup), _html_published(soup)


def _html_text(soup: BeautifulSoup) -> str:
    """The readable text of a parsed page: paragraphs, line breaks and table cells kept,
    page furniture dropped.

    One walk of the tree with a stack of its own, so the cost follows the document's size
    and deep nesting neither slows it down nor reaches Python's recursion limit. (Inserting
    a marker next to each block instead walks that block's whole subtree: time in the
    square of the depth.)
    """
    from bs4 import Tag  # at the point of use, as in _from_html

    wanted = soup.interesting_string_types  # the strings get_text() would keep
    parts: list[str] = []
    # Nodes still to visit, last first; a plain str is a marker to emit when reached, and
    # _LEAVE_PRE closes a <pre> once its contents are done.
    pending: list[object] = [soup]
    inside_pre = 0
    while pending:
        node = pending.pop()
        if node is _LEAVE_PRE:
            inside_pre -= 1
        elif type(node) is str:
            parts.append(node)
        elif isinstance(node, Tag):
            if node.name in _DROPPED_TAGS:
                continue
            if node.name == "br":
                parts.append(_LINE)
                continue
            if node.name in _BLOCK_TAGS:
                parts.append(_PARAGRAPH)
                pending.append(_PARAGRAPH)
            elif node.name in _CELL_TAGS:
                pending.append(" ")
            if node.name == "pre":
                inside_pre += 1
                pending.append(_LEAVE_PRE)
            pending.extend(reversed(node.contents))
        elif type(node) in wanted:
            parts.append(node.replace("\n", _LINE) if inside_pre else node)
    text = re.sub(r"\s+", " ", "".join(parts))
    text = text.replace(_PARAGRAPH, "\n\n").replace(_LINE, "\n")
    return "\n".join(line.strip() for line in text.split("\n"))


def _html_title(soup: BeautifulSoup) -> str:
    candidates = [
        soup.title.get_text() if soup.title else "",
        _meta_content(soup, "og:title"),
        soup.h1.get_text() if soup.h1 else "",
    ]
    return next((" ".join(c.split()) for c in candidates if c.strip()), "")


def _html_published(soup: BeautifulSoup) -> dt.date | None:
    for name in _DATE_META_NAMES:
        published = _parse_date(_meta_content(soup, name))
        if published:
            return published
    for time_tag in soup.find_all("time", datetime=True):
        published = _parse_date(str(time_tag["datetime"]))
        if published:
            return published
    return None


def _meta_content(soup: BeautifulSoup, name: str) -> str:
    for meta in soup.find_all("meta", content=True):
        # Open Graph uses property=, everything else name=; authors mix up the case.
        key = str(meta.get("property") or meta.get("name") or "")
        if key.lower() == name:
            return str(meta["content"])
    return ""


def _from_pdf(*, data: bytes, filename: str) -> tuple[str, str, dt.date | None]:
    # Imported here, not at the top: pypdf costs every process memory; only extraction needs it.
    import pypdf

    label = _label(filename, pdf=True)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not _opens_without_password(reader):
            raise ExtractionError(
                f"{label} is encrypted or password-protected, so its text cannot be read."
            )
        pages = [page.extract_text() or "" for page in reader.pages]
        metadata = reader.metadata
    except ExtractionError:
        raise
    except Exception as exc:
        # A damaged file can fail anywhere inside pypdf, with many exception types.
        raise ExtractionError(f"{label} is damaged or not really a PDF.") from exc
    title = " ".join((metadata.title or "").split()) if metadata else ""
    first_page = (pages[0] if pages else "").splitlines()
    title = title or titles.first_line_title(first_page) or titles.file_title(filename)
    # The date the document states is its own; the file's creation date may be a reprint's.
    published = titles.stated_date(first_page) or _pdf_created(metadata) or titles.filename_date(filename)
    return "\n\n".join(pages), title, published


def _opens_without_password(reader: pypdf.PdfReader) -> bool:
    from pypdf.errors import DependencyError  # at the point of use, as in _from_pdf

    # Many PDFs are encrypted only against editing, with an empty password to read.
    try:
        return bool(reader.decrypt(""))
    except DependencyError:  # AES needs the `cryptography` package
        return False


def _pdf_created(metadata: pypdf.DocumentInformation | None) -> dt.date | None:
    if metadata is None:
        return None
    try:
        created = metadata.creation_date
    except ValueError:  # a malformed date string is common and not worth failing over
        return None
    return created.date() if created else None


def _from_text(*, data: bytes, charset: str | None, filename: str) -> tuple[str, str, dt.date | None]:
    text = _decode(data=data, charsets=(charset,))
    lines = [line.strip() for line in text.splitlines()]
    published = titles.stated_date(lines) or titles.filename_date(filename)
    return text, titles.text_title(lines, filename=filename), published


def _decode(*, data: bytes, charsets: tuple[str | None, ...]) -> str:
    """Decode with the first declared charset that fits, else UTF-8, else a legacy charset."""
    for bom, encoding in _BYTE_ORDER_MARKS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    # Windows-1252 is what "Latin-1" text usually really is (curly quotes in 0x80-0x9F).
    for encoding in (*charsets, "utf-8", "cp1252"):
        if encoding:
            try:
                return data.decode(encoding)
            except (LookupError, UnicodeDecodeError):
                continue
    # Latin-1 maps every byte, so legacy text is readable rather than refused.
    return data.decode("latin-1")


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return re.sub(r"\n(?:[ \t]*\n){2,}", "\n\n", text).strip()


def _parse_date(value: str) -> dt.date | None:
    match = _ISO_DATE.match(value.strip())
    if not match:
        return None
    try:
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _label(filename: str, *, pdf: bool = False) -> str:
    if filename:
        return filename
    return "This PDF" if pdf else "This file"
