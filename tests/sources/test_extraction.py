"""Turning uploaded and fetched documents into text, a title and a date."""

from __future__ import annotations

import datetime as dt
import io
import sys

import pypdf
import pytest

from sources.extraction import MAX_HTML_ELEMENTS, ExtractionError, detect_content_type, extract_text

ARTICLE = b"""<!DOCTYPE html>
<html>
<head>
  <title>  Solar   output in 2024 </title>
  <meta property="og:title" content="Not this one">
  <meta property="article:published_time" content="2024-03-05T08:00:00Z">
  <style>p { color: red }</style>
  <script>var tracking = "SCRIPT TEXT";</script>
</head>
<body>
  <header><a href="/">SITE HEADER</a></header>
  <nav><ul><li>NAV LINK</li></ul></nav>
  <main>
    <h1>Solar output</h1>
    <p>Panels produced
       more power    than expected.</p>
    <p>Second paragraph<br>with a line break and <b>bold</b> text.</p>
    <table><tr><td>Year</td><td>TWh</td></tr></table>
    <pre>line one
  line two</pre>
    <form><label>FORM LABEL</label></form>
    <noscript>NOSCRIPT TEXT</noscript>
    <svg><text>SVG TEXT</text></svg>
  </main>
  <aside>ASIDE TEXT</aside>
  <footer>FOOTER TEXT</footer>
</body>
</html>
"""


def pdf(*, content: bytes, info: bytes = b"") -> bytes:
    """A one-page PDF with a Helvetica font, its xref table computed from byte offsets."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]"
        b" /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%b\nendstream" % (len(content), content),
    ]
    if info:
        objects.append(info)
    document = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(document))
        document += b"%d 0 obj\n%b\nendobj\n" % (number, body)
    xref_offset = len(document)
    document += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        document += b"%010d 00000 n \n" % offset
    info_ref = b" /Info %d 0 R" % len(objects) if info else b""
    document += b"trailer\n<< /Size %d /Root 1 0 R%b >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        info_ref,
        xref_offset,
    )
    return bytes(document)


HELLO_PDF = pdf(
    content=b"BT /F1 12 Tf 72 712 Td (Hello PDF world) Tj ET",
    info=b"<< /Title (Greetings) /CreationDate (D:20240115093000Z) >>",
)


def test_html_keeps_the_article_and_drops_the_page_furniture():
    extracted = extract_text(data=ARTICLE, content_type="text/html; charset=utf-8")

    assert extracted.text == (
        "Solar output\n\n"
        "Panels produced more power than expected.\n\n"
        "Second paragraph\nwith a line break and bold text.\n\n"
        "Year TWh\n\n"
        "line one\nline two"
    )
    assert extracted.title == "Solar output in 2024"
    assert extracted.published == dt.date(2024, 3, 5)
    assert extracted.content_type == "text/html"


@pytest.mark.parametrize(
    ("head", "body", "title", "published"),
    [
        ('<meta property="og:title" content="OG title">', "<p>x</p>", "OG title", None),
        ("", "<header><h1>Heading title</h1></header><p>x</p>", "Heading title", None),
        ('<meta name="DC.date" content="2023-11-02">', "<p>x</p>", "", dt.date(2023, 11, 2)),
        ('<meta name="date" content="2022-01-31">', "<p>x</p>", "", dt.date(2022, 1, 31)),
        ("", '<p>On <time datetime="2021-06-07">7 June</time></p>', "", dt.date(2021, 6, 7)),
        ('<meta name="date" content="2022-02-31">', "<p>x</p>", "", None),
    ],
)
def test_html_title_and_date_fallbacks(head, body, title, published):
    html = f"<html><head>{head}</head><body>{body}</body></html>".encode()

    extracted = extract_text(data=html, content_type="application/xhtml+xml")

    assert (extracted.title, extracted.published) == (title, published)


def test_html_declared_charset_is_used():
    html = "<p>Crème brûlée</p>".encode("cp1252")

    extracted = extract_text(data=html, content_type="text/html", charset="windows-1252")

    assert extracted.text == "Crème brûlée"


def test_html_charset_declared_in_the_document_is_used():
    html = '<meta charset="koi8-r"><p>Привет</p>'.encode("koi8-r")

    assert extract_text(data=html, content_type="text/html").text == "Привет"


def test_html_with_a_wrong_declared_charset_falls_back():
    html = "<p>Crème</p>".encode("latin-1")

    assert extract_text(data=html, content_type="text/html", charset="no-such").text == "Crème"


def test_html_nested_deeper_than_the_recursion_limit_keeps_its_paragraphs():
    depth = 5_000  # five times Python's default recursion limit
    html = b"<body>" + b"<div>Level" * depth + b"<pre>last\nline</pre>" + b"</div>" * depth

    extracted = extract_text(data=html, content_type="text/html")

    assert extracted.text == "\n\n".join(["Level"] * depth + ["last\nline"])


def _python_lines_run(work) -> int:
    """How many lines of Python `work()` runs: a measure of effort that no machine's speed
    or load can change."""
    lines = 0

    def trace(frame, event, arg):
        nonlocal lines
        lines += event == "line"
        return trace

    previous = sys.gettrace()  # a coverage tracer, say, gets its place back
    sys.settrace(trace)
    try:
        work()
    finally:
        sys.settrace(previous)
    return lines


@pytest.mark.parametrize("tag", ["div", "td", "pre"])
def test_html_extraction_effort_grows_in_step_with_nesting_depth(tag):
    def extract(depth):
        html = f"<{tag}>".encode() * depth + b"Capacity grew."
        return lambda: extract_text(data=html, content_type="text/html")

    extract(1)()  # the first call imports the parser: not part of the measure
    shallow, deep = _python_lines_run(extract(500)), _python_lines_run(extract(1_000))

    # Twice as deep, twice the work; effort in the square of the depth would be four times.
    assert deep / shallow < 2.2, (shallow, deep)


def test_markdown_title_and_leading_date():
    markdown = b"Date: 2024-02-29\n\n# Quarterly review #\n\nSome *text*.\n\n## Details\n"

    extracted = extract_text(data=markdown, content_type="text/markdown", filename="q.md")

    assert extracted.title == "Quarterly review"
    assert extracted.published == dt.date(2024, 2, 29)
    assert extracted.text == markdown.decode().strip()


def test_plain_text_title_is_the_first_line_truncated():
    text = ("\n\n" + "A" * 250 + "\nbody").encode()

    extracted = extract_text(data=text, content_type="text/plain")

    assert extracted.title == "A" * 200
    assert extracted.published is None


@pytest.mark.parametrize("charset", [None, "iso-8859-1", "no-such-charset"])
def test_latin1_text_is_decoded(charset):
    data = "Café crème, déjà vu".encode("latin-1")

    extracted = extract_text(data=data, content_type="text/plain", charset=charset)

    assert extracted.text == "Café crème, déjà vu"


def test_windows_text_keeps_its_curly_quotes():
    data = "“Quoted” – text".encode("cp1252")

    assert extract_text(data=data, content_type="text/plain").text == "“Quoted” – text"


def test_utf16_text_with_a_byte_order_mark_is_decoded():
    data = "Grüße".encode("utf-16")

    assert extract_text(data=data, content_type="text/plain").text == "Grüße"


def test_a_utf8_byte_order_mark_is_not_text():
    extracted = extract_text(data="\ufeffNaïve".encode("utf-8"), content_type="text/plain")

    assert extracted.text == "Naïve"


def test_text_is_normalised():
    data = b"one\r\ntwo\x00\r\n\r\n\r\n\r\n  \nthree\rfour\n\n\n"

    extracted = extract_text(data=data, content_type="text/plain")

    assert extracted.text == "one\ntwo\n\nthree\nfour"


def test_pdf_text_title_and_creation_date():
    extracted = extract_text(data=HELLO_PDF, content_type="application/pdf")

    assert extracted.text == "Hello PDF world"
    assert extracted.title == "Greetings"
    assert extracted.published == dt.date(2024, 1, 15)
    assert extracted.content_type == "application/pdf"


def encrypted(document: bytes, *, user_password: str) -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(document)))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


def test_a_pdf_locked_only_against_editing_is_read():
    data = encrypted(HELLO_PDF, user_password="")

    assert extract_text(data=data, content_type="application/pdf").text == "Hello PDF world"


def test_a_password_protected_pdf_is_refused():
    data = encrypted(HELLO_PDF, user_password="secret")

    with pytest.raises(ExtractionError) as failed:
        extract_text(data=data, content_type="application/pdf", filename="locked.pdf")

    assert failed.value.message == (
        "locked.pdf is encrypted or password-protected, so its text cannot be read."
    )


def test_a_pdf_without_text_is_probably_a_scan():
    with pytest.raises(ExtractionError) as failed:
        extract_text(data=pdf(content=b""), content_type="application/pdf", filename="scan.pdf")

    assert failed.value.message == (
        "scan.pdf has no extractable text (it may be a scanned image)."
    )


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.4\nthis is not really a pdf", HELLO_PDF[: len(HELLO_PDF) // 2], b"\x00" * 64],
    ids=["garbage", "truncated", "zeros"],
)
def test_a_corrupt_pdf_is_refused(data):
    with pytest.raises(ExtractionError) as failed:
        extract_text(data=data, content_type="application/pdf")

    assert failed.value.message == "This PDF is damaged or not really a PDF."


@pytest.mark.parametrize("content_type", ["text/plain", "text/markdown", "text/html"])
@pytest.mark.parametrize("data", [b"", b"  \r\n\x00\n  "], ids=["empty", "blank"])
def test_an_empty_file_is_refused(content_type, data):
    with pytest.raises(ExtractionError) as failed:
        extract_text(data=data, content_type=content_type, filename="notes")

    assert failed.value.message == "notes contains no text."


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_a_page_of_more_elements_than_are_read_is_refused_before_it_is_parsed(encoding):
    paragraphs = "<p>Capacity grew.</p>" * (MAX_HTML_ELEMENTS // 2)
    at_limit = f"<html><body>{paragraphs}{paragraphs[:-len('<p>Capacity grew.</p>') * 2]}</body></html>"
    over = f"<html><body>{paragraphs}{paragraphs}</body></html>"

    with pytest.raises(ExtractionError, match="more than 100,000 elements"):
        extract_text(data=over.encode(encoding), content_type=f"text/html; charset={encoding}")
    assert extract_text(data=at_limit.encode(encoding), content_type=f"text/html; charset={encoding}").text.startswith("Capacity grew.")


def test_an_unsupported_type_is_refused():
    with pytest.raises(ExtractionError, match="image/png file, which reportdesk cannot read"):
        extract_text(data=b"\x89PNG", content_type="image/png")


@pytest.mark.parametrize(
    ("data", "filename", "declared", "expected"),
    [
        (b"%PDF-1.7\n...", "notes.txt", "text/plain", "application/pdf"),
        (b"# Title", "notes.md", "", "text/markdown"),
        (b"# Title", "NOTES.MARKDOWN", "", "text/markdown"),
        (b"<html></html>", "page.txt", "", "text/plain"),
        (b"hello", "page.htm", "", "text/html"),
        (b"hello", "page.html", "", "text/html"),
        (b"hello", "file.pdf", "", "application/pdf"),
        (b"hello", "", "text/markdown; charset=utf-8", "text/markdown"),
        (b"hello", "upload.bin", "Application/XHTML+XML", "application/xhtml+xml"),
        (b"  <!DOCTYPE html><p>hi", "", "", "text/html"),
        (b"<head></head><HTML lang=en>", "", "application/octet-stream", "text/html"),
        (b"plain words", "", "", "text/plain"),
        ("déjà vu".encode(), "", "", "text/plain"),
        (b"", "", "", "text/plain"),
    ],
)
def test_detect_content_type(data, filename, declared, expected):
    assert detect_content_type(data=data, filename=filename, declared=declared) == expected


@pytest.mark.parametrize("filename", ["photo.png", ""])
def test_detect_content_type_refuses_binary(filename):
    with pytest.raises(ExtractionError, match="unsupported file type"):
        detect_content_type(data=b"\x89PNG\r\n\x1a\n\xff\xfe", filename=filename)
