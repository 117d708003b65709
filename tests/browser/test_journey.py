"""An analyst's whole journey in headless Chromium, with a real worker (qcluster) and the local
provider: submit in the admin with two uploaded files, a web page (served on loopback), a
pasted text and an earlier report found by search; watch the job page follow the job to
needs_review without reloading; after a reviewer approves, download the PDF and the DOCX
and find the report's title and a cited passage in both. And the job list follows its
moving rows."""

import io
import json

import pytest
from docx import Document
from playwright.sync_api import expect
from pypdf import PdfReader

from jobs.models import Artifact, ArtifactKind, JobEvent, ReportJob
from reportdesk.models import Role
from reviews.models import CHECKLIST
from reviews.services import review_decide
from tests.admin.builders import job_in, report_json, store_report
from tests.browser.conftest import screenshot
from tests.factories import ReportTemplateFactory, WorkspaceFactory, member
from tests.sources.conftest import site  # noqa: F401  (the loopback web server fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

NOTE = (
    "# Recycling market note\n\n"
    "European battery recycling capacity grew 40% in 2025 as new plants opened in Germany and Poland.\n\n"
    "Recyclers recover lithium, cobalt and nickel from spent electric vehicle batteries.\n"
)
SURVEY = (
    "Plant survey 2025\n\n"
    "Battery recycling plants in Europe processed 410,000 tonnes of black mass in 2025.\n"
    "Operators expect battery recycling capacity to double again by 2027.\n"
)
PAGE = (
    "<!doctype html><html><head><title>Recycling capacity outlook</title></head><body>"
    "<p>Battery recycling capacity in Europe depends on steady supplies of spent batteries.</p>"
    "<p>New battery recycling plants need permits that take two years to obtain.</p></body></html>"
)
PASTED = (
    "Interview with a plant manager: battery recycling margins rise with lithium prices. "
    "The plant manager said battery recycling capacity will be tight until 2026."
)
SENTENCES = [
    "European battery recycling capacity grew 40% in 2025 as new plants opened in Germany and Poland.",
    "Recyclers recover lithium, cobalt and nickel from spent electric vehicle batteries.",
    "Battery recycling plants in Europe processed 410,000 tonnes of black mass in 2025.",
    "Operators expect battery recycling capacity to double again by 2027.",
    "Battery recycling capacity in Europe depends on steady supplies of spent batteries.",
    "New battery recycling plants need permits that take two years to obtain.",
    "The plant manager said battery recycling capacity will be tight until 2026.",
]


def flat(text: str) -> str:
    return " ".join(text.split())


def test_an_analyst_submits_follows_and_takes_the_report_away(page, login, worker, site, settings, tmp_path):  # noqa: F811
    # given a workspace with a requester and a reviewer, a template that needs review, a web
    # page on loopback, and a real worker allowed to fetch it
    workspace = WorkspaceFactory(slug="research-ops", name="Research Ops")
    requester = member(workspace, Role.REQUESTER, "remy")
    reviewer = member(workspace, Role.REVIEWER, "rita")
    ReportTemplateFactory(slug="market-scan-journey", name="Market scan (journey)", required_sections=["Market overview", "Risks"])
    earlier = store_report(job_in("running", workspace=workspace, requested_by=requester, topic="Lithium prices in 2025"), report_json())
    ReportJob.objects.filter(pk=earlier.pk).update(status="completed", review_state="approved")
    decoy = job_in("completed", workspace=workspace, requested_by=requester, topic="Cobalt supply chains")
    site.route("/outlook", body=PAGE.encode(), headers={"Content-Type": "text/html; charset=utf-8"})
    settings.SOURCE_ALLOWED_INTERNAL_HOSTS = ["localhost"]
    process = worker(SOURCE_ALLOWED_INTERNAL_HOSTS="localhost")

    # when the requester fills in "Add report job"
    console_errors = []  # a CSP refusal or a script error would show here

    def on_console(message):
        # The site has no favicon yet (branding is its own piece of work).
        if message.type == "error" and not (message.location.get("url") or "").endswith("/favicon.ico"):
            console_errors.append(message.text)

    page.on("console", on_console)
    login(requester)
    page.goto("/admin/jobs/reportjob/")
    page.get_by_role("link", name="Add report job").click()
    page.select_option("#id_template", label="Market scan (journey)")
    expect(page.locator('[data-template-detail]:not([hidden])')).to_contain_text("A reviewer approves each draft")
    page.fill("#id_topic", "Battery recycling capacity in Europe")
    page.fill("#id_audience", "Product leadership")
    page.set_input_files("#id_files", [
        {"name": "market-note.md", "mimeType": "text/markdown", "buffer": NOTE.encode()},
        {"name": "plant-survey.txt", "mimeType": "text/plain", "buffer": SURVEY.encode()},
    ])
    expect(page.locator("#dropzone .rd-file-list li")).to_have_count(2)
    page.fill("#id_urls", site.url("/outlook"))
    page.locator("#id_records_input").press_sequentially("lithium")  # the earlier reports are searchable
    expect(page.locator("#id_records_from option")).to_have_count(1)
    page.locator("#id_records_from option", has_text=earlier.public_id).dblclick()
    expect(page.locator("#id_records_to option")).to_have_text([f"{earlier.public_id} · Lithium prices in 2025 (Research Ops)"])
    page.fill("#id_texts-0-title", "Plant manager interview")
    page.fill("#id_texts-0-text", PASTED)
    screenshot(page, "journey_submit_form")
    page.get_by_role("button", name="Submit report").click()

    # then the job page shows the new job, and follows it to needs_review without a reload
    expect(page.locator(".messagelist")).to_contain_text("Submitted")
    job = ReportJob.objects.exclude(pk__in=[earlier.pk, decoy.pk]).get()
    assert page.url.endswith(f"/admin/jobs/reportjob/{job.public_id}/change/")
    page.evaluate("window.rdSamePage = 'still here'")
    live = page.locator("#job-live")
    expect(live).to_have_attribute("hx-trigger", "every 2s")
    expect(live).to_have_attribute("data-status", "needs_review", timeout=90_000)
    assert page.evaluate("window.rdSamePage") == "still here", "the page was reloaded"
    expect(page.locator("#user-copy")).to_have_text("A draft is ready and needs human review before use.")
    expect(live).not_to_have_attribute("hx-trigger", "every 2s")  # nothing moves: polling stopped
    expect(page.locator("#report .rd-report h1")).to_contain_text("Battery recycling capacity in Europe")
    expect(page.locator("#sources tbody tr")).to_have_count(5)
    expect(page.locator("#sources")).to_contain_text(f"Report {earlier.public_id}: Lithium prices in 2025")
    expect(page.locator("#sources")).to_contain_text("Recycling capacity outlook")
    screenshot(page, "journey_needs_review")
    assert "Traceback" not in process.log()

    # and after a reviewer approves, the requester downloads the PDF and the DOCX
    job.refresh_from_db()
    review_decide(job=job, reviewer=reviewer, decision="approve", comment="Sourced and fair.",
                  checklist=list(CHECKLIST), override_reason="Read every quote against its source.", version=job.version)
    report = json.loads(Artifact.objects.get(job=job, kind=ArtifactKind.STRUCTURED_JSON).content)
    title = report["title"]
    bodies = flat(" ".join(section["body"] for section in report["sections"]))
    cited = next(sentence for sentence in SENTENCES if sentence in bodies)

    page.reload()
    expect(page.locator("#job-live")).to_have_attribute("data-status", "completed")
    files = {}
    for fmt in ("pdf", "docx"):
        with page.expect_download() as download:
            page.locator(f'#downloads a[data-format="{fmt}"]').click()
        assert download.value.suggested_filename == f"{job.public_id}-v1.{fmt}"
        path = tmp_path / download.value.suggested_filename
        download.value.save_as(path)
        files[fmt] = path.read_bytes()

    pdf_text = flat(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(files["pdf"])).pages))
    assert flat(title) in pdf_text and cited in pdf_text and "Approve by rita" in pdf_text
    docx = Document(io.BytesIO(files["docx"]))
    docx_text = flat(" ".join(p.text for p in docx.paragraphs))
    assert flat(title) in docx_text and cited in docx_text
    exported = JobEvent.objects.filter(job=job, action="exported").order_by("id")
    assert [(e.details["format"], e.actor_id) for e in exported] == [("pdf", requester.pk), ("docx", requester.pk)]
    screenshot(page, "journey_completed_downloads")
    assert page.dialogs == [] and console_errors == []


def test_the_job_list_follows_its_moving_rows_without_reloading(page, login):
    from django.utils import timezone

    workspace = WorkspaceFactory(slug="research-ops", name="Research Ops")
    requester = member(workspace, Role.REQUESTER, "remy")
    job = job_in("running", workspace=workspace, requested_by=requester)

    login(requester)
    page.goto("/admin/jobs/reportjob/")
    row = page.locator("#result_list tbody tr", has_text=job.public_id)
    expect(row.locator(".rd-status-running")).to_be_visible()
    page.evaluate("window.rdSamePage = 'still here'")

    ReportJob.objects.filter(pk=job.pk).update(status="canceled", finished_at=timezone.now(), next_check_at=None)

    expect(row.locator(".rd-status-canceled")).to_be_visible(timeout=15_000)
    assert page.evaluate("window.rdSamePage") == "still here", "the page was reloaded"
