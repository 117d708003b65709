"""What each export says: the standalone HTML names the report and its provenance and keeps
model output sanitised; the PDF and the DOCX carry the title, the cited passages and the
sources (read back with pypdf and python-docx); the API's report/ serves them too."""

import io
import json

import pytest
from docx import Document
from pypdf import PdfReader

from jobs import exports
from jobs.models import JobEvent
from reportdesk.models import Role
from reviews.models import CHECKLIST
from reviews.services import review_decide
from sources.models import SourceItem
from tests.admin.builders import job_in, report_json, store_report
from tests.api.conftest import client_for
from tests.factories import WorkspaceFactory, member

pytestmark = pytest.mark.django_db

QUOTE = "Capacity grew 40% in 2025."
HOSTILE = report_json(
    title="Battery recycling <script>alert(1)</script> in Europe",
    sections=[
        {"heading": "Overview", "body": "Recyclers recover lithium [S1]. <img src=x onerror=alert(2)> "
         "[a link](javascript:alert(3)) and “curly quotes” — fine.", "citations": ["S1"]},
    ],
)


@pytest.fixture
def workspace():
    return WorkspaceFactory(slug="research-ops", name="Research Ops")


@pytest.fixture
def people(workspace):
    return member(workspace, Role.REQUESTER, "remy"), member(workspace, Role.REVIEWER, "rita")


def approved_job(workspace, people, output=None):
    requester, reviewer = people
    job = job_in("running", workspace=workspace, requested_by=requester)
    item = job.source_manifest.entries.get().item
    SourceItem.objects.filter(pk=item.pk).update(title="Capacity survey", url="https://example.org/survey", kind="url")
    job = store_report(job, output or report_json())
    review_decide(job=job, reviewer=reviewer, decision="approve", comment="Good.", checklist=list(CHECKLIST),
                  override_reason="Checked.", version=1)
    job.refresh_from_db()
    return job


def test_the_html_export_is_a_standalone_document_with_its_provenance(workspace, people):
    job = approved_job(workspace, people)
    html = exports.report_export(job=job, actor=people[0], fmt="html").content.decode()

    assert html.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in html
    assert "<title>Battery recycling in Europe</title>" in html
    for fact in ("Research Ops", "remy", "Approve by rita on", "1 of 1", job.public_id):
        assert fact in html
    assert '<a href="https://example.org/survey" rel="noopener noreferrer nofollow">Capacity survey</a>' in html
    assert QUOTE in html
    assert html.count("<h1>") == 1  # the title once, in the header


def test_model_output_stays_sanitised_in_every_export(workspace, people):
    job = approved_job(workspace, people, HOSTILE)
    html = exports.report_export(job=job, actor=people[0], fmt="html").content.decode()

    assert "<script" not in html and "onerror" not in html and "javascript:" not in html
    assert "&lt;script&gt;" in html  # the title is text, escaped
    docx = Document(io.BytesIO(exports.report_export(job=job, actor=people[0], fmt="docx").content))
    assert "“curly quotes” — fine." in "\n".join(p.text for p in docx.paragraphs)


def test_the_pdf_and_the_docx_carry_the_title_the_cited_passage_and_the_sources(workspace, people):
    job = approved_job(workspace, people)

    pdf = PdfReader(io.BytesIO(exports.report_export(job=job, actor=people[0], fmt="pdf").content))
    text = " ".join(" ".join(page.extract_text().split()) for page in pdf.pages)
    assert pdf.metadata.title == "Battery recycling in Europe"
    assert "Battery recycling in Europe" in text and QUOTE in text
    assert "S1: Capacity survey" in text and "https://example.org/survey" in text
    assert "Approve by rita" in text

    docx = Document(io.BytesIO(exports.report_export(job=job, actor=people[0], fmt="docx").content))
    paragraphs = "\n".join(p.text for p in docx.paragraphs)
    cells = "\n".join(cell.text for table in docx.tables for row in table.rows for cell in row.cells)
    assert docx.core_properties.title == "Battery recycling in Europe"
    assert paragraphs.splitlines()[0] == "Battery recycling in Europe"
    assert QUOTE in cells and "Overview" in paragraphs
    assert "S1: Capacity survey (URL) — https://example.org/survey" in paragraphs


def test_the_docx_keeps_the_items_of_lists_and_nested_lists(workspace, people):
    output = report_json(
        sections=[{"heading": "Overview", "body": "Three routes:\n\n- **Pyrometallurgy** [S1]\n- Hydrometallurgy\n  - with *leaching*\n- Direct recycling",
                   "citations": ["S1"]}],
        recommendations=["Partner with a recycler.", "Audit the supply chain."],
    )
    job = approved_job(workspace, people, output)

    docx = Document(io.BytesIO(exports.report_export(job=job, actor=people[0], fmt="docx").content))

    items = [p.text for p in docx.paragraphs if p.style.name.startswith("List")]
    for text in ("Pyrometallurgy [S1]", "Hydrometallurgy", "with leaching", "Direct recycling",
                 "Partner with a recycler.", "Audit the supply chain."):
        assert text in items, (text, items)
    assert "" not in items  # no item lost its text
    bold = [run.text for p in docx.paragraphs for run in p.runs if run.bold]
    assert "Pyrometallurgy" in bold


def test_the_docx_leaves_out_control_characters_a_word_document_cannot_hold(workspace, people):
    # Model output and the titles people give their sources can hold control characters;
    # XML, so Word, has no place for them.
    output = report_json(
        title="Battery\x01 recycling in Europe",
        executive_summary="Capacity\x02 grew 40% in 2025 [S1].",
        sections=[{"heading": "Over\x08view", "body": "Recyclers\x0b recover\x1f lithium\ufffe [S1].", "citations": ["S1"]}],
    )
    job = approved_job(workspace, people, output)
    SourceItem.objects.filter(pk=job.source_manifest.entries.get().item_id).update(title="Capacity\x0c survey\x0e")

    response = client_for(people[0]).get(f"/api/v1/jobs/{job.public_id}/report/?format=docx")

    assert response.status_code == 200
    docx = Document(io.BytesIO(response.content))
    paragraphs = "\n".join(p.text for p in docx.paragraphs)
    assert docx.core_properties.title == "Battery recycling in Europe"
    assert paragraphs.splitlines()[0] == "Battery recycling in Europe"
    assert "Capacity grew 40% in 2025 [S1]." in paragraphs and "Overview" in paragraphs
    assert "Recyclers recover lithium [S1]." in paragraphs
    assert "S1: Capacity survey (URL) — https://example.org/survey" in paragraphs


def test_a_draft_says_it_is_not_reviewed_yet(workspace, people):
    job = store_report(job_in("running", workspace=workspace, requested_by=people[0]), report_json())
    html = exports.report_export(job=job, actor=people[0], fmt="html", record=False).content.decode()
    assert "Not reviewed yet: this is a draft." in html
    assert not JobEvent.objects.filter(job=job, action="exported").exists()


def test_the_pdf_without_a_unicode_font_still_comes_out(workspace, people, settings, monkeypatch):
    monkeypatch.setattr(exports, "_FONT_CANDIDATES", ())
    settings.EXPORT_PDF_FONT = ""
    job = approved_job(workspace, people, HOSTILE)

    pdf = PdfReader(io.BytesIO(exports.report_export(job=job, actor=people[0], fmt="pdf").content))

    text = " ".join(page.extract_text() for page in pdf.pages)
    assert '"curly quotes" - fine.' in " ".join(text.split())


@pytest.mark.parametrize(("fmt", "content_type"), [
    ("pdf", "application/pdf"), ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
])
def test_the_api_serves_pdf_and_docx_through_the_same_export(fmt, content_type, workspace, people):
    job = approved_job(workspace, people)
    client = client_for(people[0])

    response = client.get(f"/api/v1/jobs/{job.public_id}/report/?format={fmt}")
    head = client.head(f"/api/v1/jobs/{job.public_id}/report/?format={fmt}")

    assert response.status_code == 200 and response["Content-Type"] == content_type
    assert response["Content-Disposition"] == f'attachment; filename="{job.public_id}-v1.{fmt}"'
    assert head.status_code == 200
    events = JobEvent.objects.filter(job=job, action="exported")
    assert [e.details for e in events] == [{"format": fmt, "version": 1}]  # the HEAD is not an export


def test_the_json_export_is_the_structured_report(workspace, people):
    job = approved_job(workspace, people)
    body = json.loads(exports.report_export(job=job, actor=people[0], fmt="json").content)
    assert body["job"] == job.public_id and body["version"] == 1 and body["versions"] == [1]
    assert body["report"]["evidence"][0]["quote"] == QUOTE
    assert body["citations"][0]["source_id"] == "S1"


def test_html_the_pdf_writer_cannot_take_still_gives_the_text(workspace, people, monkeypatch):
    from fpdf import FPDF

    def refuse(self, text, **kwargs):
        raise NotImplementedError("an HTML construct fpdf2 does not support")

    monkeypatch.setattr(FPDF, "write_html", refuse)
    job = approved_job(workspace, people)

    pdf = PdfReader(io.BytesIO(exports.report_export(job=job, actor=people[0], fmt="pdf").content))

    text = " ".join(" ".join(page.extract_text().split()) for page in pdf.pages)
    assert "Overview" in text and "Recyclers recover lithium, cobalt and nickel [S1]." in text
