"""The requester's pages in the admin: submit, edit, revise, rerun, follow, download.

The submit form and the API share one service, so the same bad input gets the same message
from both (the table test); a refusal stores nothing; the live fragments cost a fixed number
of queries and stop asking once nothing moves.
"""

import re
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from jobs import services
from jobs.models import JobEvent, ProviderCall, ReportJob
from reportdesk.errors import PermissionDenied
from reportdesk.models import Role
from reviews.services import review_decide
from sources.models import SourceItem
from sources.services import SourceSpec
from tests.api.conftest import client_for
from tests.factories import ReportTemplateFactory, WorkspaceFactory, member

from .builders import job_in, report_json, store_report

pytestmark = pytest.mark.django_db

ADD = "/admin/jobs/reportjob/add/"
NOTE = b"# Market note\n\nEuropean battery recycling capacity grew 40% in 2025 as plants opened."
SURVEY = b"Recyclers recover lithium, cobalt and nickel from spent batteries."


@pytest.fixture
def template():
    return ReportTemplateFactory(slug="market-scan-journey", name="Market scan (journey)", description="A scan of a market.", review_required=True)


def submit_data(workspace, template, **overrides) -> dict:
    data = {
        "workspace": str(workspace.pk), "template": str(template.pk), "topic": "Battery recycling in Europe",
        "audience": "Product leadership", "deadline": "", "urls": "", "texts-TOTAL_FORMS": "1",
        "texts-INITIAL_FORMS": "0", "texts-MIN_NUM_FORMS": "0", "texts-MAX_NUM_FORMS": "50",
        "texts-0-title": "", "texts-0-text": "",
    }
    data.update(overrides)
    return data


def form_errors(response) -> str:
    """Every error message the form page shows, as one text."""
    html = response.content.decode()
    found = re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', html, re.S)
    found += re.findall(r'<div class="errornote" id="form-errors">(.*?)</div>', html, re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", chunk) for chunk in found)


def test_a_file_named_with_no_letters_storage_takes_is_still_a_source(as_user, requester, workspace, template):
    response = as_user(requester).post(ADD, {**submit_data(workspace, template), "files": [SimpleUploadedFile("📄", NOTE, "text/markdown")]})

    job = ReportJob.objects.get()
    assert response.status_code == 302
    assert [e.item.kind for e in job.source_manifest.entries.select_related("item")] == ["upload"]


def test_a_requester_submits_with_every_kind_of_source(as_user, requester, workspace, template, settings):
    done = job_in("completed", workspace=workspace, requested_by=requester, topic="Earlier scan of recyclers")
    store_report(done, report_json())
    ReportJob.objects.filter(pk=done.pk).update(status="completed")
    client = as_user(requester)
    files = [SimpleUploadedFile("note.md", NOTE, "text/markdown"), SimpleUploadedFile("survey.txt", SURVEY, "text/plain")]

    response = client.post(ADD, {
        **submit_data(workspace, template, urls="https://example.org/capacity\n\n https://example.org/plants "),
        "texts-0-title": "Call notes", "texts-0-text": "The plant manager expects capacity to double by 2027.",
        "files": files, "records": [done.public_id],
    })

    job = ReportJob.objects.exclude(pk=done.pk).get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{job.public_id}/change/")
    entries = list(job.source_manifest.entries.select_related("item").order_by("position"))
    assert [(e.sid, e.item.kind) for e in entries] == [
        ("S1", "upload"), ("S2", "upload"), ("S3", "url"), ("S4", "url"), ("S5", "text"), ("S6", "record"),
    ]
    assert entries[0].item.title == "Market note" and "40% in 2025" in entries[0].item.text
    assert entries[3].item.url == "https://example.org/plants"
    assert (job.requested_by, job.topic, job.status) == (requester, "Battery recycling in Europe", "queued")
    assert JobEvent.objects.get(job=job).action == "submitted"


@pytest.mark.parametrize("earlier", [0, 40])
def test_the_add_page_costs_the_same_queries_however_many_earlier_reports(earlier, as_user, requester, workspace, template, django_assert_num_queries):
    for _ in range(earlier):
        job_in("completed", workspace=workspace, requested_by=requester)
    client = as_user(requester)
    client.get(ADD)

    # session, user, permissions (user, group), memberships, the workspaces (twice: the
    # select's required check, its options), the templates (the select, their details),
    # the earlier reports.
    with django_assert_num_queries(11):
        assert client.get(ADD).status_code == 200


def test_the_add_page_lists_the_most_recent_earlier_reports_and_takes_any_visible_one(as_user, requester, workspace, template, monkeypatch):
    from jobs import forms

    monkeypatch.setattr(forms, "RECORDS_LISTED", 3)
    oldest = job_in("completed", workspace=workspace, requested_by=requester, topic="The oldest report")
    newer = [job_in("completed", workspace=workspace, requested_by=requester, topic=f"Report {n}") for n in range(4)]
    store_report(oldest, report_json())
    for age, job in enumerate([oldest, *newer]):
        ReportJob.objects.filter(pk=job.pk).update(status="completed", finished_at=timezone.now() - timezone.timedelta(days=10 - age))
    client = as_user(requester)

    page = client.get(ADD).content.decode()

    listed = re.findall(r'<option value="([0-9a-z]+)"[^>]*>[^<]* · Report', page)
    assert listed == [job.public_id for job in reversed(newer)][:3]
    assert oldest.public_id not in page and "The 3 most recent are listed" in page
    # Shown again with an error, the form still lists the older report chosen.
    refused = client.post(ADD, {**submit_data(workspace, template, topic=""), "records": [oldest.public_id]})
    assert refused.status_code == 200 and f'<option value="{oldest.public_id}" selected>' in refused.content.decode()
    response = client.post(ADD, {**submit_data(workspace, template), "records": [oldest.public_id]})
    assert response.status_code == 302, form_errors(response)
    job = ReportJob.objects.exclude(pk__in=[oldest.pk, *(j.pk for j in newer)]).get()
    assert job.source_manifest.entries.get().item.record_job == oldest


@pytest.mark.parametrize("sources", [1, 20])
def test_the_edit_page_costs_the_same_queries_however_many_sources(sources, as_user, requester, workspace, django_assert_num_queries):
    from tests.factories import SourceItemFactory, SourceManifestFactory

    manifest = SourceManifestFactory(workspace=workspace, items=[SourceItemFactory(workspace=workspace) for _ in range(sources)])
    job = job_in("queued", workspace=workspace, requested_by=requester, source_manifest=manifest)
    client = as_user(requester)
    client.get(f"/admin/jobs/reportjob/{job.public_id}/edit/")

    # session, user, memberships, the job, its sources, the earlier reports, permissions
    # (user, group).
    with django_assert_num_queries(9):
        assert client.get(f"/admin/jobs/reportjob/{job.public_id}/edit/").status_code == 200


def test_the_add_page_is_for_requesters_and_operators(as_user, requester, reviewer, operator, workspace, template):
    done = job_in("completed", workspace=workspace, requested_by=requester, topic="Earlier scan of recyclers")
    page = as_user(requester).get(ADD)
    assert page.status_code == 200
    html = page.content.decode()
    assert f'<option value="{done.public_id}">{done.public_id} · Earlier scan of recyclers (Research Ops)</option>' in html
    assert 'data-template-detail="%d"' % template.pk in html and "A scan of a market." in html
    assert "A reviewer approves each draft" in html
    assert as_user(operator).get(ADD).status_code == 200
    assert as_user(reviewer).get(ADD).status_code == 403
    assert "Add report job" in as_user(requester).get("/admin/jobs/reportjob/").content.decode()


def test_only_the_persons_submit_workspaces_are_offered_and_a_refusal_stores_nothing(as_user, workspace, template):
    elsewhere = WorkspaceFactory(slug="secret-lab", name="Secret Lab")
    person = member(workspace, Role.REQUESTER, "remy")
    member(elsewhere, Role.REVIEWER, "remy")
    client = as_user(person)
    items_before = SourceItem.objects.count()

    assert "Secret Lab" not in client.get(ADD).content.decode()
    response = client.post(ADD, {
        **submit_data(elsewhere, template, urls="https://example.org/a"),
        "files": [SimpleUploadedFile("note.md", NOTE, "text/markdown")],
    })

    assert response.status_code == 200 and "Select a valid choice" in form_errors(response)
    assert ReportJob.objects.count() == 0 and SourceItem.objects.count() == items_before


def stored_files(settings) -> list:
    root = settings.MEDIA_ROOT
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def test_a_refused_submit_leaves_no_row_and_no_file(as_user, requester, reviewer, workspace, template, settings):
    upload = SourceSpec(upload_name="note.md", upload_data=NOTE, upload_type="text/markdown")

    # the role check comes before anything is stored
    with pytest.raises(PermissionDenied, match="needs the requester or operator role"):
        services.job_submit(workspace=workspace, requested_by=reviewer, template=template, topic="T", sources=[upload])
    assert SourceItem.objects.count() == 0 and stored_files(settings) == []

    # a later source that fails takes the stored upload with it
    response = as_user(requester).post(ADD, {
        **submit_data(workspace, template, urls="http://127.0.0.1/private"),
        "files": [SimpleUploadedFile("note.md", NOTE, "text/markdown")],
    })
    assert "line 1: " in form_errors(response)
    assert SourceItem.objects.count() == 0 and stored_files(settings) == [] and ReportJob.objects.count() == 0

    # so does a refusal after every source was stored: no report fits in the template's cap
    template.cost_cap_usd = Decimal("0.00")
    template.save()
    response = as_user(requester).post(ADD, {
        **submit_data(workspace, template, urls=""), "files": [SimpleUploadedFile("note.md", NOTE, "text/markdown")],
    })
    assert "cost cap of $0.00 per report" in form_errors(response)
    assert SourceItem.objects.count() == 0 and stored_files(settings) == [] and ReportJob.objects.count() == 0


# The same bad input, through the form and through the API: the same message, because the
# same service decides.
BAD_INPUTS = [
    pytest.param({"sources": []}, {}, "Add at least one source: this template does not search the web.", id="no-sources"),
    pytest.param({"deadline": "2001-01-01T00:00:00Z"}, {"deadline": "2001-01-01T00:00", "urls": "https://example.org/a"},
                 "The deadline must be in the future.", id="past-deadline"),
    pytest.param({"sources": [{"url": "ftp://example.org/report.pdf"}]}, {"urls": "ftp://example.org/report.pdf"}, None, id="url-scheme"),
    pytest.param({"sources": [{"url": "http://127.0.0.1:8000/admin/"}]}, {"urls": "http://127.0.0.1:8000/admin/"}, None, id="url-loopback"),
    pytest.param({"sources": [{"title": "Notes", "text": "   "}]}, {"texts-0-title": "Notes", "texts-0-text": "   "},
                 "Pasted text is empty.", id="blank-text"),
]


@pytest.mark.parametrize(("api_body", "form_fields", "expected"), BAD_INPUTS)
def test_the_form_and_the_api_refuse_the_same_input_in_the_same_words(
    api_body, form_fields, expected, as_user, requester, workspace, template
):
    body = {"workspace": workspace.slug, "template": template.slug, "topic": "Battery recycling in Europe",
            "sources": [{"url": "https://example.org/a"}], **api_body}
    api = client_for(requester).post("/api/v1/jobs/", body, format="json")
    assert api.status_code == 400, api.json()
    message = api.json()["error"]["message"]
    if expected:
        assert message == expected
    form = as_user(requester).post(ADD, submit_data(workspace, template, **form_fields))

    assert form.status_code == 200
    assert message in form_errors(form)
    assert ReportJob.objects.count() == 0


def test_a_report_of_another_workspace_is_refused_in_the_same_words(as_user, workspace, template):
    person = member(workspace, Role.REQUESTER, "remy")
    elsewhere = WorkspaceFactory(slug="secret-lab", name="Secret Lab")
    member(elsewhere, Role.REQUESTER, "remy")
    theirs = job_in("completed", workspace=elsewhere, requested_by=person)
    body = {"workspace": workspace.slug, "template": template.slug, "topic": "T", "sources": [{"record": theirs.public_id}]}
    api = client_for(person).post("/api/v1/jobs/", body, format="json")
    assert api.status_code == 400

    form = as_user(person).post(ADD, {**submit_data(workspace, template), "records": [theirs.public_id]})

    assert api.json()["error"]["message"] == f"Report {theirs.public_id} does not exist in this workspace."
    assert f"{theirs.public_id}: {api.json()['error']['message']}" in form_errors(form)
    assert ReportJob.objects.count() == 1


def test_a_bad_upload_is_refused_in_the_same_words_as_the_sources_endpoint(as_user, requester, workspace, template):
    binary = b"\xff\xfe\xfa\x00" * 64
    api = client_for(requester).post(
        "/api/v1/sources/", {"workspace": workspace.slug, "file": SimpleUploadedFile("blob.bin", binary, "application/octet-stream")},
        format="multipart",
    )
    assert api.status_code == 400
    items_before = SourceItem.objects.count()

    form = as_user(requester).post(ADD, {
        **submit_data(workspace, template, urls="https://example.org/a"),
        "files": [SimpleUploadedFile("blob.bin", binary, "application/octet-stream")],
    })

    assert f"blob.bin: {api.json()['error']['message']}" in form_errors(form)
    assert ReportJob.objects.count() == 0 and SourceItem.objects.count() == items_before


# --- Edit, revise, rerun -------------------------------------------------------------------


def test_the_request_is_editable_while_queued_and_says_why_once_locked(as_user, requester, workspace):
    job = job_in("queued", workspace=workspace, requested_by=requester)
    client = as_user(requester)
    keep = [str(e.item_id) for e in job.source_manifest.entries.all()]
    url = f"/admin/jobs/reportjob/{job.public_id}/edit/"

    page = client.get(url)
    assert page.status_code == 200 and 'value="Battery recycling in Europe"' in page.content.decode()
    response = client.post(url, {
        "topic": "Battery recycling in the Nordics", "audience": "Board", "deadline": "", "keep": keep, "urls": "",
        "texts-TOTAL_FORMS": "1", "texts-INITIAL_FORMS": "0", "texts-0-title": "Extra", "texts-0-text": "Norway leads.",
    })

    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.topic, job.audience, job.source_manifest.entries.count()) == ("Battery recycling in the Nordics", "Board", 2)
    assert JobEvent.objects.filter(job=job, action="edited").count() == 1

    ReportJob.objects.filter(pk=job.pk).update(status="preparing", request_locked_at=timezone.now())
    locked = client.get(url).content.decode()
    assert "The request is locked: the provider call has started. Cancel and rerun instead." in locked
    assert 'id="request-form"' not in locked
    page = client.get(f"/admin/jobs/reportjob/{job.public_id}/change/").content.decode()
    assert 'id="edit-lock"' in page and "rd-act-edit" not in page


def test_a_form_sent_back_as_shown_changes_only_what_the_person_changed(as_user, requester, workspace):
    from bs4 import BeautifulSoup

    job = job_in("queued", workspace=workspace, requested_by=requester)
    ReportJob.objects.filter(pk=job.pk).update(deadline=timezone.now() + timezone.timedelta(hours=5, seconds=37))
    job.refresh_from_db()
    client = as_user(requester)
    url = f"/admin/jobs/reportjob/{job.public_id}/edit/"
    form = BeautifulSoup(client.get(url).content.decode(), "html.parser").select_one("#request-form")
    # what a browser sends for the form as it was drawn (the deadline shown to the minute)
    data = {n["name"]: n.get("value", "") for n in form.select("input[name]") if n.get("type") not in ("file", "submit", "checkbox")}
    data["keep"] = [n["value"] for n in form.select("input[type=checkbox][checked]")]
    data.update({"texts-TOTAL_FORMS": "0", "texts-INITIAL_FORMS": "0"})
    assert data["deadline"] and len(data["deadline"]) == len("2026-03-02T12:00")
    data["topic"] = "Battery recycling in the Nordics"

    assert client.post(url, data).status_code == 302

    edited = ReportJob.objects.get(pk=job.pk)
    assert edited.deadline == job.deadline  # not cut to the minute
    assert JobEvent.objects.get(job=job, action="edited").details["changed"] == ["topic"]


def test_revise_and_rerun_from_the_job_page(as_user, requester, workspace):
    job = job_in("failed", workspace=workspace, requested_by=requester, failure_class="policy_block")
    client = as_user(requester)
    page = client.get(f"/admin/jobs/reportjob/{job.public_id}/change/").content.decode()
    assert "rd-act-revise" in page and "rd-act-rerun" in page

    refused = client.post(f"/admin/jobs/reportjob/{job.public_id}/revise/", {"instructions": "  "})
    assert "Say what should change." in form_errors(refused)
    client.post(f"/admin/jobs/reportjob/{job.public_id}/revise/", {"instructions": "Leave out the vendor names."})
    job.refresh_from_db()
    assert job.status == "queued" and job.current_attempt.instructions == "Leave out the vendor names."

    ReportJob.objects.filter(pk=job.pk).update(status="canceled", finished_at=timezone.now())
    response = client.post(f"/admin/jobs/reportjob/{job.public_id}/rerun/", {
        "topic": "Battery recycling, again", "audience": "Product leadership", "urls": "",
        "texts-TOTAL_FORMS": "1", "texts-INITIAL_FORMS": "0", "texts-0-title": "", "texts-0-text": "",
    })
    new = ReportJob.objects.get(rerun_of=job)
    assert response.status_code == 302 and new.public_id in response["Location"]
    assert new.topic == "Battery recycling, again" and new.source_manifest.entries.count() == 1


def test_a_reviewer_cannot_revise_and_is_told_why(as_user, reviewer, workspace):
    job = job_in("failed", workspace=workspace, failure_class="policy_block")
    page = as_user(reviewer).get(f"/admin/jobs/reportjob/{job.public_id}/revise/").content.decode()
    assert "Your role (reviewer) does not include the &#x27;revise&#x27; action." in page


# --- Following a job ---------------------------------------------------------------------


def live(client, job, shown=0):
    return client.get(f"/admin/jobs/reportjob/{job.public_id}/live/?shown={shown}", HTTP_HX_REQUEST="true")


def test_the_job_page_follows_a_moving_job_and_stops_when_it_stops(as_user, requester, workspace):
    job = job_in("running", workspace=workspace, requested_by=requester)
    client = as_user(requester)

    page = client.get(f"/admin/jobs/reportjob/{job.public_id}/change/").content.decode()
    assert 'hx-get="/admin/jobs/reportjob/%s/live/?shown=0"' % job.public_id in page and "htmx.min.js" in page
    assert "{#" not in page and "{% comment" not in page
    moving = live(client, job).content.decode()
    assert 'id="job-live"' in moving and 'hx-trigger="every 2s"' in moving
    assert 'id="timeline" hx-swap-oob="true"' in moving and 'id="report"' not in moving
    assert "Last checked" in moving

    job = store_report(job, report_json())
    done = live(client, job).content.decode()
    assert "hx-trigger" not in done and "no longer updates itself" in done
    assert 'id="report" hx-swap-oob="true"' in done and "Battery recycling in Europe" in done
    assert 'data-format="pdf"' in done
    assert 'id="report"' not in live(client, job, shown=job.version).content.decode()


def test_the_step_of_a_multi_step_run(as_user, requester, workspace):
    from tests.factories import ProviderCallFactory

    job = job_in("running", workspace=workspace, requested_by=requester)
    client = as_user(requester)
    ProviderCallFactory(attempt=job.current_attempt, job=job, step="plan")
    assert "Step: Plan" in live(client, job).content.decode()
    # the questions run side by side: how many are still at the provider
    questions = [
        ProviderCallFactory(attempt=job.current_attempt, job=job, step=f"research-{n}", request_summary={"number": n, "of": 3})
        for n in (1, 2, 3)
    ]
    assert "Step: Research: 3 of 3 questions still running" in live(client, job).content.decode()
    ProviderCall.objects.filter(pk=questions[1].pk).update(status="completed")
    assert "Step: Research: 2 of 3 questions still running" in live(client, job).content.decode()
    ProviderCallFactory(attempt=job.current_attempt, job=job, step="research-2", request_summary={"number": 2, "of": 3})  # its next round
    assert "Step: Research: 3 of 3 questions still running" in live(client, job).content.decode()
    ProviderCall.objects.filter(job=job, step__startswith="research").update(status="completed")
    assert "Step: Research: all 3 questions answered" in live(client, job).content.decode()
    ProviderCallFactory(attempt=job.current_attempt, job=job, step="gaps")
    assert "Step: Follow-up: finding what the notes leave open" in live(client, job).content.decode()
    ProviderCallFactory(attempt=job.current_attempt, job=job, step="research-4", request_summary={"number": 4, "of": 4})
    assert "Step: Question 4 of 4" not in live(client, job).content.decode()  # a follow-up beside the answered ones
    assert "Step: Research: 1 of 4 questions still running" in live(client, job).content.decode()
    ProviderCallFactory(attempt=job.current_attempt, job=job, step="synthesize")
    assert "Step: Synthesis" in live(client, job).content.decode()


def test_the_step_of_a_single_question_run(as_user, requester, workspace):
    from tests.factories import ProviderCallFactory

    job = job_in("running", workspace=workspace, requested_by=requester)
    ProviderCallFactory(attempt=job.current_attempt, job=job, step="research-1", request_summary={"number": 1, "of": 1})
    assert "Step: Question 1 of 1" in live(as_user(requester), job).content.decode()


@pytest.mark.parametrize("jobs", [1, 30])
def test_the_live_fragment_costs_the_same_queries_whatever_the_history(jobs, as_user, requester, workspace, django_assert_num_queries):
    for _ in range(jobs):
        job = job_in("running", workspace=workspace, requested_by=requester)
    client = as_user(requester)
    live(client, job)

    # session, user, memberships, permissions (user, group), the job, the heartbeat (2),
    # events, comments, attempts, calls, sources, versions, task records, the step.
    with django_assert_num_queries(16):
        assert live(client, job).status_code == 200


def test_the_list_follows_moving_rows_and_stops_with_286(as_user, requester, workspace):
    job = job_in("running", workspace=workspace, requested_by=requester)
    client = as_user(requester)

    page = client.get("/admin/jobs/reportjob/").content.decode()
    assert 'id="rd-live-rows" hx-get="?"' in page and 'hx-select="#rd-live-rows > tr"' in page
    assert client.get("/admin/jobs/reportjob/", HTTP_HX_REQUEST="true").status_code == 200

    ReportJob.objects.filter(pk=job.pk).update(status="canceled", finished_at=timezone.now())
    still = client.get("/admin/jobs/reportjob/", HTTP_HX_REQUEST="true")
    assert still.status_code == 286 and "Canceled" in still.content.decode()
    assert "hx-trigger" not in client.get("/admin/jobs/reportjob/").content.decode()


@pytest.mark.parametrize("jobs", [1, 60])
def test_the_list_costs_the_same_queries_for_its_live_refresh(jobs, as_user, requester, workspace, django_assert_num_queries):
    for _ in range(jobs):
        job_in("running", workspace=workspace, requested_by=requester)
    client = as_user(requester)
    client.get("/admin/jobs/reportjob/", HTTP_HX_REQUEST="true")

    # session, user, permissions (user, group), memberships, the template and workspace
    # filters, the capped count, the page of rows.
    with django_assert_num_queries(10):
        assert client.get("/admin/jobs/reportjob/", HTTP_HX_REQUEST="true").status_code == 200


# --- Downloads -----------------------------------------------------------------------------


def approved(workspace, requester, reviewer):
    job = store_report(job_in("running", workspace=workspace, requested_by=requester), report_json())
    review_decide(job=job, reviewer=reviewer, decision="approve", comment="Fine.",
                  checklist=["sources_support_claims", "source_dates_suit_topic", "facts_and_recommendations_distinct",
                             "only_authorised_material", "no_unsupported_sensitive_claims", "safe_for_audience"],
                  override_reason="Checked by hand.", version=1)
    job.refresh_from_db()
    return job


@pytest.mark.parametrize(("fmt", "content_type", "magic"), [
    ("md", "text/markdown; charset=utf-8", b"# Battery recycling in Europe"),
    ("html", "text/html; charset=utf-8", b"<!DOCTYPE html>"),
    ("json", "application/json", b"{"),
    ("pdf", "application/pdf", b"%PDF-"),
    ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", b"PK"),
])
def test_each_download_is_a_file_and_is_recorded(fmt, content_type, magic, as_user, requester, reviewer, workspace):
    job = approved(workspace, requester, reviewer)

    response = as_user(requester).get(f"/admin/jobs/reportjob/{job.public_id}/download/{fmt}/")

    assert response.status_code == 200 and response["Content-Type"] == content_type
    assert response["Content-Disposition"] == f'attachment; filename="{job.public_id}-v1.{fmt}"'
    assert response.content.startswith(magic)
    event = JobEvent.objects.get(job=job, action="exported")
    assert event.details == {"format": fmt, "version": 1} and event.actor == requester


def test_downloads_are_offered_on_the_job_page_and_the_review_page(as_user, requester, reviewer, workspace):
    job = approved(workspace, requester, reviewer)
    page = as_user(requester).get(f"/admin/jobs/reportjob/{job.public_id}/change/").content.decode()
    review = as_user(reviewer).get(f"/admin/reviews/review/draft/{job.public_id}/").content.decode()
    for html in (page, review):
        assert all(f'/admin/jobs/reportjob/{job.public_id}/download/{fmt}/' in html for fmt in ("md", "html", "json", "pdf", "docx"))
    assert f'href="/admin/jobs/reportjob/{job.public_id}/change/" id="job-page-link"' in review
    assert not JobEvent.objects.filter(job=job, action="exported").exists()  # reading is not exporting


def test_no_draft_no_download_and_other_workspaces_are_invisible(as_user, requester, workspace):
    job = job_in("running", workspace=workspace, requested_by=requester)
    client = as_user(requester)
    assert client.get(f"/admin/jobs/reportjob/{job.public_id}/download/pdf/").status_code == 404
    assert client.get(f"/admin/jobs/reportjob/{job.public_id}/download/exe/").status_code == 404
    outsider = member(WorkspaceFactory(slug="elsewhere"), Role.OPERATOR, "oscar")
    done = store_report(job, report_json())
    assert as_user(outsider).get(f"/admin/jobs/reportjob/{done.public_id}/download/md/").status_code == 404


def test_a_download_costs_a_fixed_number_of_queries(as_user, requester, reviewer, workspace, django_assert_num_queries):
    job = approved(workspace, requester, reviewer)
    client = as_user(requester)
    client.get(f"/admin/jobs/reportjob/{job.public_id}/download/html/")

    # session, user, permissions (user, group), memberships, the job; the attempt, its
    # artifacts, the decision, versions, sources; the export: the job's update and its event.
    with django_assert_num_queries(13):
        client.get(f"/admin/jobs/reportjob/{job.public_id}/download/html/")
