"""Reports as files people take away: Markdown, a standalone HTML document, JSON, PDF and DOCX.

`report_export` is the one way a download is made, for the admin's buttons and the API's
`report/?format=` alike: it reads one version of a job's report (`report_document`), builds
the file, and records the download as an export (jobs.services.job_record_export), which the
metrics count. The report body is model output: every format is built from the sanitised
HTML of jobs.rendering (or from the structured JSON as stored), never from raw model text
put into markup.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from reportdesk.errors import NotFound

from . import selectors, services
from .models import Artifact, ArtifactKind, ReportJob
from .rendering import render_html

if TYPE_CHECKING:
    from bs4 import Tag

log = logging.getLogger(__name__)

FORMATS = ("md", "html", "json", "pdf", "docx")
CONTENT_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "json": "application/json",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
LABELS = {"md": "Markdown", "html": "HTML", "json": "JSON", "pdf": "PDF", "docx": "Word (DOCX)"}


@dataclass(frozen=True)
class ExportSource:
    sid: str
    title: str
    url: str
    kind: str

    @property
    def link(self) -> str:
        """The URL if it is a web link (anything else is shown, never linked)."""
        return self.url if urlsplit(self.url).scheme in ("http", "https") else ""


@dataclass(frozen=True)
class ReportDocument:
    """One version of a job's report with everything a standalone file states about it."""

    job: ReportJob
    version: int
    versions: list[int]
    title: str
    markdown: str
    html: str  # sanitised (jobs.rendering.render_html)
    report: dict
    citations: list
    sources: list[ExportSource]
    reviewer: str
    decision: str
    decided_at: dt.datetime | None
    written_at: dt.datetime
    review_required: bool  # by the template as this version's attempt ran it

    @property
    def filename_stem(self) -> str:
        return f"{self.job.public_id}-v{self.version}"


@dataclass(frozen=True)
class ExportFile:
    content: bytes
    content_type: str
    filename: str


def report_document(*, job: ReportJob, version: int | None = None) -> ReportDocument:
    """Read one version (the latest when None) of the job's report. NotFound without a draft."""
    attempt = selectors.report_attempt(job=job, version=version)
    artifacts = {a.kind: a.content for a in Artifact.objects.filter(attempt=attempt)}
    if ArtifactKind.REPORT_MARKDOWN not in artifacts:
        raise NotFound(f"Version {attempt.version} of report {job.public_id} has no {ArtifactKind.REPORT_MARKDOWN}.")
    markdown_text = artifacts[ArtifactKind.REPORT_MARKDOWN]
    # Older drafts may lack the stored HTML; render_html is the only way to make it.
    html = artifacts.get(ArtifactKind.RENDERED_HTML) or render_html(markdown_text)
    report = _json(artifacts.get(ArtifactKind.STRUCTURED_JSON), {})
    decision = selectors.attempt_decision(attempt=attempt)
    title = report.get("title") if isinstance(report, dict) else None
    if not isinstance(title, str) or not title.strip():
        first = markdown_text.strip().splitlines()[0] if markdown_text.strip() else ""
        title = first.lstrip("# ").strip() or job.topic
    return ReportDocument(
        job=job,
        version=attempt.version,
        versions=selectors.report_versions(job=job),
        title=" ".join(title.split()),
        markdown=markdown_text,
        html=html,
        report=report if isinstance(report, dict) else {},
        citations=_json(artifacts.get(ArtifactKind.CITATIONS), []),
        sources=[
            ExportSource(sid=entry.sid, title=entry.item.title or entry.item.url or entry.sid, url=entry.item.url,
                         kind=entry.item.get_kind_display())
            for entry in selectors.attempt_source_entries(attempt=attempt)
        ],
        reviewer=decision.reviewer.get_username() if decision else "",
        decision=decision.get_decision_display() if decision else "",
        decided_at=decision.decided_at if decision else None,
        written_at=attempt.finished_at or attempt.created_at,
        review_required=attempt.run_template(job.template).review_required,
    )


def report_export(*, job: ReportJob, actor, fmt: str, version: int | None = None, record: bool = True) -> ExportFile:
    """The report as a file in `fmt` (one of FORMATS); recorded as an export unless `record`
    is False (a HEAD request checks, it does not download)."""
    if fmt not in FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}.")
    document = report_document(job=job, version=version)
    content = {"md": _markdown, "html": report_html, "json": _structured, "pdf": report_pdf, "docx": report_docx}[fmt](document)
    if record:
        services.job_record_export(job=job, actor=actor, fmt=fmt, version=document.version)
    return ExportFile(content=content, content_type=CONTENT_TYPES[fmt], filename=f"{document.filename_stem}.{fmt}")


# --- The formats -------------------------------------------------------------------------


def _markdown(document: ReportDocument) -> bytes:
    return document.markdown.encode()


def structured_body(document: ReportDocument) -> dict:
    """The JSON export: the structured report as stored, with its version and citations."""
    return {
        "job": document.job.public_id,
        "version": document.version,
        "versions": document.versions,
        "report": document.report,
        "citations": document.citations,
    }


def _structured(document: ReportDocument) -> bytes:
    return json.dumps(structured_body(document), ensure_ascii=False, indent=2, default=str).encode()


def _facts(document: ReportDocument) -> list[tuple[str, str]]:
    """What the document says about itself, in the order the header shows it."""
    job = document.job
    if document.decision:
        review = f"{document.decision} by {document.reviewer} on {_date(document.decided_at)}"
    elif document.review_required:
        review = "Not reviewed yet: this is a draft."
    else:
        review = "The template does not require review."
    return [
        ("Workspace", str(job.workspace)),
        ("Requested by", job.requested_by.get_username()),
        ("Review", review),
        ("Written", _date(document.written_at)),
        ("Version", f"{document.version} of {len(document.versions)}"),
        ("Job", job.public_id),
        ("Template", str(job.template)),
    ]


def _date(moment: dt.datetime | None) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z") if moment else "—"


def report_html(document: ReportDocument) -> bytes:
    """A standalone HTML document: charset, title, who and when, the report, its sources."""
    return render_to_string(
        "exports/report.html",
        {"doc": document, "facts": _facts(document), "body": _without_first_heading(document.html)},
    ).encode()


# PDF: fpdf2 (pure Python). A Unicode TrueType font when one is installed (DejaVu Sans on
# Debian and most Linux systems, or EXPORT_PDF_FONT); otherwise the built-in Helvetica with
# the text narrowed to Latin-1, so a fresh machine without fonts still gets a PDF.
_FONT_CANDIDATES = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf")
_LATIN1 = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "—": "-", "–": "-", "…": "...", "•": "*", "→": "->", "\u00a0": " "})


def _pdf_font() -> Path | None:
    configured = settings.EXPORT_PDF_FONT
    for candidate in ([configured] if configured else []) + list(_FONT_CANDIDATES):
        path = Path(candidate)
        if path.is_file():
            return path
    return None


def report_pdf(document: ReportDocument) -> bytes:
    try:
        return _pdf(document, as_html=True)
    except Exception:  # fpdf2's write_html covers a subset of HTML; the text must still come out
        log.warning("job %s: PDF export fell back to plain text", document.job.public_id, exc_info=True)
        return _pdf(document, as_html=False)


def _pdf(document: ReportDocument, *, as_html: bool) -> bytes:
    from fpdf import FPDF  # at the point of use: fpdf2 costs every process memory

    pdf = FPDF(format="A4")
    pdf.set_title(document.title)
    pdf.set_author(document.job.requested_by.get_username())
    pdf.set_creator("reportdesk")
    font = _pdf_font()
    if font is not None:
        for style, suffix in (("", ""), ("B", "-Bold"), ("I", "-Oblique"), ("BI", "-BoldOblique")):
            variant = font.with_name(font.stem + suffix + font.suffix)
            pdf.add_font("Body", style, str(variant if variant.is_file() else font))
        family = "Body"

        def text(value: str) -> str:
            return value
    else:
        family = "Helvetica"

        def text(value: str) -> str:
            return value.translate(_LATIN1).encode("latin-1", "replace").decode("latin-1")

    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font(family, "B", 18)
    pdf.multi_cell(0, 9, text(document.title), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font(family, "", 9)
    for label, value in _facts(document):
        pdf.multi_cell(0, 5, text(f"{label}: {value}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font(family, "", 11)
    body = _without_first_heading(document.html)
    if as_html:
        pdf.write_html(text(body), font_family=family)
    else:
        for block in _blocks(body):
            pdf.set_font(family, "B" if block.kind == "heading" else "", 13 if block.kind == "heading" else 11)
            prefix = "• " if block.kind in ("bullet", "number") else ""
            pdf.multi_cell(0, 6, text(prefix + block.text), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
    if document.sources:
        pdf.ln(4)
        pdf.set_font(family, "B", 13)
        pdf.multi_cell(0, 7, "Sources", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(family, "", 10)
        for source in document.sources:
            pdf.multi_cell(0, 5, text(f"{source.sid}: {source.title} ({source.kind})"), new_x="LMARGIN", new_y="NEXT")
            if source.link:
                pdf.set_text_color(0, 0, 180)
                pdf.multi_cell(0, 5, text(source.link), link=source.link, new_x="LMARGIN", new_y="NEXT")
                pdf.set_text_color(0, 0, 0)
    return bytes(pdf.output())


def _without_first_heading(html: str) -> str:
    """The stored HTML without its first heading, the report's title, which the header
    already shows; links the sanitiser emptied (a javascript: href) become their text."""
    # Imported here, not at the top: bs4 costs every process memory; only exports need it.
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    first = soup.find("h1")
    if first is not None:
        first.decompose()
    for link in soup.find_all("a"):
        if not link.get("href"):
            link.unwrap()
    return str(soup)


@dataclass(frozen=True)
class _Block:
    kind: str  # heading, paragraph, bullet, number, quote, code, table
    text: str
    level: int = 0
    node: Tag | None = None


def _blocks(html: str) -> list[_Block]:
    """The sanitised HTML as a flat list of blocks, for formats that are not HTML."""
    from bs4 import BeautifulSoup, NavigableString, Tag  # at the point of use, as in _without_first_heading

    blocks: list[_Block] = []
    soup = BeautifulSoup(html, "html.parser")
    for node in soup.children:
        if isinstance(node, NavigableString):
            if node.strip():
                blocks.append(_Block("paragraph", node.strip()))
            continue
        if not isinstance(node, Tag):
            continue
        if node.name in ("h1", "h2", "h3", "h4"):
            blocks.append(_Block("heading", node.get_text(" ", strip=True), level=int(node.name[1]), node=node))
        elif node.name in ("ul", "ol"):
            for item in node.find_all("li", recursive=False):
                blocks.append(_Block("bullet" if node.name == "ul" else "number", item.get_text(" ", strip=True), node=item))
        elif node.name == "blockquote":
            blocks.append(_Block("quote", node.get_text(" ", strip=True), node=node))
        elif node.name == "pre":
            blocks.append(_Block("code", node.get_text(), node=node))
        elif node.name == "table":
            blocks.append(_Block("table", node.get_text(" ", strip=True), node=node))
        elif node.name == "hr":
            continue
        else:
            blocks.append(_Block("paragraph", node.get_text(" ", strip=True), node=node))
    return [block for block in blocks if block.text.strip() or block.kind == "table"]


# Characters XML 1.0 does not allow, which python-docx refuses (a ValueError, so a 500): C0
# controls other than tab, newline and carriage return, lone surrogates, U+FFFE and U+FFFF.
# Model output and people's titles can hold them; Word has no way to show them anyway.
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _docx_text(value: str) -> str:
    """`value` as text a Word document can hold: everything that goes into one passes here."""
    return _NOT_IN_XML.sub("", value)


def report_docx(document: ReportDocument) -> bytes:
    """A Word document (python-docx) with the same header, body and sources as the HTML."""
    # At the point of use: python-docx costs every process memory.
    from docx import Document
    from docx.shared import Pt

    doc = Document()
    doc.core_properties.title = _docx_text(document.title)
    doc.core_properties.author = _docx_text(document.job.requested_by.get_username())
    doc.add_heading(_docx_text(document.title), level=0)
    facts = doc.add_paragraph()
    for label, value in _facts(document):
        run = facts.add_run(_docx_text(f"{label}: "))
        run.bold = True
        facts.add_run(_docx_text(value)).add_break()
    for block in _blocks(_without_first_heading(document.html)):
        if block.kind == "heading":
            doc.add_heading(_docx_text(block.text), level=min(block.level, 4))
        elif block.kind == "bullet":
            _runs(doc.add_paragraph(style="List Bullet"), block.node)
        elif block.kind == "number":
            _runs(doc.add_paragraph(style="List Number"), block.node)
        elif block.kind == "quote":
            doc.add_paragraph(_docx_text(block.text), style="Quote")
        elif block.kind == "code":
            run = doc.add_paragraph().add_run(_docx_text(block.text))
            run.font.name = "Courier New"
            run.font.size = Pt(9)
        elif block.kind == "table":
            _table(doc, block.node)
        elif block.node is not None:
            _runs(doc.add_paragraph(), block.node)
        else:
            doc.add_paragraph(_docx_text(block.text))
    if document.sources:
        doc.add_heading("Sources", level=1)
        for source in document.sources:
            paragraph = doc.add_paragraph(style="List Bullet")
            paragraph.add_run(_docx_text(f"{source.sid}: ")).bold = True
            paragraph.add_run(_docx_text(f"{source.title} ({source.kind})"))
            if source.link:
                paragraph.add_run(_docx_text(f" — {source.link}"))
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def _runs(paragraph, node: Tag) -> None:
    """Inline text of `node` as runs: bold, italic and code kept; a link keeps its address."""
    from bs4 import NavigableString  # at the point of use, as in _without_first_heading

    for child in node.descendants:
        if not isinstance(child, NavigableString) or not str(child).strip("\n"):
            continue
        names = set()
        for parent in child.parents:  # up to `node` only: what encloses it is not this text's
            if parent is node or parent is None:
                break
            names.add(parent.name)
        if "ul" in names or "ol" in names:
            continue  # a nested list's text is not this item's text
        run = paragraph.add_run(_docx_text(str(child)))
        run.bold = bool(names & {"strong", "b", "th"})
        run.italic = bool(names & {"em", "i"})
        if "code" in names:
            run.font.name = "Courier New"
        link = child.find_parent("a")
        if link is not None and link.get("href") and child is link.contents[-1]:
            paragraph.add_run(_docx_text(f" ({link['href']})"))


def _table(doc, node: Tag) -> None:
    rows = node.find_all("tr")
    width = max((len(row.find_all(["td", "th"])) for row in rows), default=0)
    if not rows or not width:
        return
    table = doc.add_table(rows=0, cols=width)
    table.style = "Table Grid"
    for row in rows:
        cells = table.add_row().cells
        for index, cell in enumerate(row.find_all(["td", "th"])):
            cells[index].text = ""
            _runs(cells[index].paragraphs[0], cell)


def _json(content: str | None, default):
    if not content:
        return default
    try:
        return json.loads(content)
    except ValueError:
        return default
