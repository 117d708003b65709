"""The review queue and review page in the admin: what a reviewer sees and can do.

Every check is asserted on the rendered HTML, at the place in the report it concerns."""

import datetime as dt

import pytest
from bs4 import BeautifulSoup
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs.models import ReportJob
from reportdesk.models import Role
from reviews import services
from reviews.models import CHECKLIST, Review
from tests.factories import ReportTemplateFactory, SourceItemFactory, WorkspaceFactory, member
from tests.reviews.conftest import CLEAN_REPORT, OLD_STUDY, report_with, store_draft

pytestmark = pytest.mark.django_db

QUEUE = "/admin/reviews/review/queue/"


def draft_url(job, suffix=""):
    return reverse("admin:reviews_review_draft", kwargs={"public_id": job.public_id}) + suffix


def get(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return BeautifulSoup(response.content, "html.parser")


@pytest.fixture
def as_reviewer(client, reviewer):
    client.force_login(reviewer)
    return client


def text(node) -> str:
    return " ".join(node.get_text(" ").split())


# --- The queue ----------------------------------------------------------------------------


def test_the_queue_lists_drafts_oldest_first_with_their_age_against_the_sla(as_reviewer, make_draft, workspace, settings):
    settings.REVIEW_SLA_HOURS = 24
    now = timezone.now()
    fresh, due, overdue = make_draft(topic="Fresh"), make_draft(topic="Due"), make_draft(topic="Overdue")
    for job, hours in ((fresh, 1), (due, 15), (overdue, 30)):
        ReportJob.objects.filter(pk=job.pk).update(finished_at=now - dt.timedelta(hours=hours, minutes=5))
    services.review_claim(job=due, reviewer=member(workspace, Role.REVIEWER, username="omar"))

    rows = get(as_reviewer, QUEUE).select("#review-queue tbody tr")

    assert [row["data-job"] for row in rows] == [overdue.public_id, due.public_id, fresh.public_id]
    ages = [row.select_one(".rd-age") for row in rows]
    assert [(a["class"][1], a.text) for a in ages] == [
        ("rd-age-overdue", "1 d 6 h"), ("rd-age-due", "15 h 5 min"), ("rd-age-ok", "1 h 5 min"),
    ]
    assert [text(row.select_one(".rd-claimed-by")).split(" until")[0] for row in rows] == ["Unclaimed", "omar", "Unclaimed"]
    assert rows[0].select_one("input[type=submit]")["value"] == "Claim"
    assert rows[1].select_one("input[type=submit]") is None  # held by someone else: read only


def test_the_queue_shows_only_the_reviewers_workspaces_and_filters_by_template_and_workspace(as_reviewer, make_draft, reviewer):
    second_ws = WorkspaceFactory(slug="field-ops", name="Field Ops")
    member_of_both = reviewer
    from reportdesk.services import membership_set

    membership_set(workspace=second_ws, user=member_of_both, role=Role.REVIEWER)
    other_template = ReportTemplateFactory(slug="due-diligence-test", name="Due diligence (test)")
    a = make_draft(topic="Recycling")
    b = make_draft(topic="Diligence", template=other_template)
    c = make_draft(topic="Field", workspace=second_ws)
    hidden = make_draft(topic="Secret", workspace=WorkspaceFactory(slug="elsewhere"))

    def listed(query=""):
        return [row["data-job"] for row in get(as_reviewer, QUEUE + query).select("#review-queue tbody tr")]

    assert sorted(listed()) == sorted([a.public_id, b.public_id, c.public_id])
    assert hidden.public_id not in listed()
    assert listed("?template=due-diligence-test") == [b.public_id]
    assert listed("?workspace=field-ops") == [c.public_id]
    assert listed("?workspace=elsewhere") == []


def test_the_queue_costs_the_same_queries_for_one_draft_or_many(as_reviewer, make_draft):
    make_draft()
    as_reviewer.get(QUEUE)  # warm the session and the per-request caches
    with CaptureQueriesContext(connection) as one:
        as_reviewer.get(QUEUE)
    for _ in range(4):
        make_draft()
    with CaptureQueriesContext(connection) as five:
        response = as_reviewer.get(QUEUE)

    assert len(BeautifulSoup(response.content, "html.parser").select("#review-queue tbody tr")) == 5
    assert len(five) == len(one)


def test_your_own_report_is_listed_but_cannot_be_claimed(client, make_draft, workspace):
    operator = member(workspace, Role.OPERATOR, username="olga")
    make_draft(requested_by=operator)
    client.force_login(operator)

    row = get(client, QUEUE).select_one("#review-queue tbody tr")

    assert "Your report: someone else reviews it" in text(row)
    assert row.select_one("input[value=Claim]") is None


def test_reviewers_find_the_queue_in_the_admin_index_and_requesters_do_not(client, reviewer, workspace):
    client.force_login(reviewer)
    link = get(client, "/admin/").find("a", string="Review queue")
    assert link is not None
    assert client.get(link["href"]).url == QUEUE

    client.force_login(member(workspace, Role.REQUESTER))
    assert get(client, "/admin/").find("a", string="Review queue") is None
    assert client.get(QUEUE).status_code == 403


def test_claim_and_release_through_the_queue(as_reviewer, make_draft):
    job = make_draft()

    response = as_reviewer.post(draft_url(job, "claim/"))
    assert response.status_code == 302 and response.url == draft_url(job)
    page = get(as_reviewer, draft_url(job))
    assert text(page.select_one("#claim")).startswith("You hold this draft until")

    response = as_reviewer.post(draft_url(job, "release/"))
    assert response.url == QUEUE
    assert Review.objects.get(job=job).released_at is not None


def test_a_claim_conflict_is_reported_not_raised(client, make_draft, reviewer, workspace):
    job = make_draft()
    services.review_claim(job=job, reviewer=reviewer)
    client.force_login(member(workspace, Role.REVIEWER, username="omar"))

    response = client.post(draft_url(job, "claim/"), follow=True)

    assert "Rita is reviewing this draft" in text(BeautifulSoup(response.content, "html.parser").select_one(".messagelist"))


def test_posts_need_the_csrf_token(reviewer, make_draft):
    job = make_draft()
    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)

    assert client.post(draft_url(job, "claim/")).status_code == 403
    assert client.post(draft_url(job, "decide/"), {"decision": "reject", "comment": "x", "version": 1}).status_code == 403
    assert not Review.objects.exists()


# --- Scope ----------------------------------------------------------------------------------


def test_another_workspaces_draft_does_not_exist_for_a_reviewer(as_reviewer, make_draft):
    theirs = make_draft(workspace=WorkspaceFactory(slug="elsewhere"))

    for suffix in ("", "diff/"):
        assert as_reviewer.get(draft_url(theirs, suffix)).status_code == 404
    for suffix in ("claim/", "release/", "decide/"):
        assert as_reviewer.post(draft_url(theirs, suffix)).status_code == 404
    assert as_reviewer.get("/admin/reviews/review/draft/nosuchjob/").status_code == 404


def test_a_requester_of_the_workspace_is_refused_the_review_page(client, make_draft, workspace):
    job = make_draft()
    client.force_login(member(workspace, Role.REQUESTER))

    assert client.get(draft_url(job)).status_code == 403


def test_an_unknown_version_is_not_found(as_reviewer, make_draft):
    job = make_draft()

    assert as_reviewer.get(draft_url(job, "?version=7")).status_code == 404


# --- Each check, shown where it applies -------------------------------------------------------


def test_a_fabricated_quote_is_shown_on_its_evidence_row_with_the_closest_passage(as_reviewer, make_draft):
    job = make_draft(report_with(evidence=[
        CLEAN_REPORT["evidence"][0],
        {"claim": "Prices collapsed.", "source_id": "S2", "quote": "Black mass prices collapsed in the second half of 2025."},
    ]))

    page = get(as_reviewer, draft_url(job))

    good, bad = page.select("#evidence tbody tr")
    assert good["class"] == ["rd-row-passed"] and "Found in S1." in text(good)
    assert bad["id"] == "evidence-1" and "rd-row-failed" in bad["class"]
    assert "Not found in S2. The closest passage is" in text(bad)
    assert text(bad.select_one(".rd-near-miss q")) == "Black mass prices fell sharply in the second half of 2025."
    assert "1 check failed" in text(page.select_one("#checks-verdict"))
    assert page.select_one('#flag-list li.rd-failed a')["href"] == "#evidence-1"
    # Beside the report, the quote that was found is marked in its source's text.
    (found,) = page.select("#source-S1 .rd-source-text mark")
    assert (found.text, found["title"]) == ("European recycling capacity grew 40% in 2025", "Quoted in Evidence row 1")
    assert page.select("#source-S2 .rd-source-text mark") == []


def test_a_missing_source_id_is_shown_in_its_section_and_its_citation_is_marked(as_reviewer, make_draft):
    job = make_draft(report_with(sections=[
        CLEAN_REPORT["sections"][0],
        {"heading": "Findings", "body": "Output tripled in Spain [S7].", "citations": []},
    ]))

    section = get(as_reviewer, draft_url(job)).select_one("#section-1")

    assert "rd-part-failed" in section["class"]
    assert "S7 is cited but does not exist: the manifest has S1–S2." in text(section.select_one("li.rd-failed"))
    cite = section.select_one('a.rd-cite[href="#source-S7"]')
    assert cite is not None and "rd-failed" in cite["class"]


def test_an_uncited_claim_is_highlighted_in_the_text(as_reviewer, make_draft):
    job = make_draft(report_with(sections=[
        {"heading": "Overview", "body": "Recycling recovers lithium [S1]. The market will be worth €12 billion by 2030.", "citations": ["S1"]},
        CLEAN_REPORT["sections"][1],
    ]))

    section = get(as_reviewer, draft_url(job)).select_one("#section-0")

    mark = section.select_one(".rd-body mark.rd-flag.rd-failed")
    assert mark.text == "The market will be worth €12 billion by 2030."
    assert mark["title"] == "Claims cite a source: States a figure without citing a source."
    assert "States a figure without citing a source." in text(section.select_one(".rd-part-flags"))


def test_a_stale_source_is_highlighted_on_the_source_and_where_it_is_cited(as_reviewer, make_draft, workspace):
    template = ReportTemplateFactory(slug="fresh-only", required_sections=["Overview", "Findings"], freshness_days=365)
    old = SourceItemFactory(workspace=workspace, title="Early study", text=OLD_STUDY, published_at=dt.date(2015, 6, 1))
    job = make_draft(
        report_with(open_questions=["Was recycling ever uneconomic [S3]?"]), template=template, extra_sources=[old],
    )

    page = get(as_reviewer, draft_url(job))

    source = page.select_one("#source-S3")
    assert "rd-source-failed" in source["class"]
    assert "S3 is stale: published 2015-06-01" in text(source.select_one(".rd-result.rd-failed"))
    assert "older than this template's limit of 365 days (cited)" in text(source)
    assert "rd-failed" in page.select_one('#open-questions a.rd-cite[href="#source-S3"]')["class"]
    assert "rd-passed" in page.select_one('#summary a.rd-cite[href="#source-S1"]')["class"]
    freshness = page.select_one('#checks tr[data-check="source_fresh"]')
    assert "failed" in text(freshness) and "Limit: 365 days before the request." in text(freshness)


def test_a_missing_section_is_shown_at_the_top_of_the_report(as_reviewer, make_draft):
    job = make_draft(report_with(sections=[CLEAN_REPORT["sections"][0]]))

    page = get(as_reviewer, draft_url(job))

    box = page.select_one('#report .rd-flag-box.rd-failed[data-check="section_present"]')
    assert text(box) == "Required sections present : The required section “Findings” is missing."
    assert page.select_one('#flag-list li a')["href"] == "#report-top"


def test_a_clean_draft_shows_no_failure(as_reviewer, make_draft):
    page = get(as_reviewer, draft_url(make_draft()))

    assert text(page.select_one("#checks-verdict")) == "No check failed."
    assert page.select(".rd-failed") == []


@pytest.mark.parametrize(("model", "marked"), [("local-extractive", True), ("gpt-5.2", False)])
def test_an_offline_draft_is_marked_as_such_in_the_queue_and_on_the_review_page(as_reviewer, make_draft, model, marked):
    job = make_draft(model=model)

    page = get(as_reviewer, draft_url(job))
    queue = get(as_reviewer, QUEUE)

    marker = page.select_one("#offline-draft")
    assert (marker is not None) == marked
    if marked:
        assert "without a language model" in text(marker)
    row = queue.select_one(f'tr[data-job="{job.public_id}"]')
    assert ("offline draft" in text(row)) == marked


def test_model_html_is_neutralised_on_the_review_page_and_in_the_diff(as_reviewer, make_draft, reviewer):
    hostile = report_with(
        title="<img src=x onerror=alert(1)>Report",
        sections=[
            {"heading": "Overview<script>alert(2)</script>", "body": "Hi <script>alert(3)</script><a href='javascript:alert(4)'>x</a> [S1].", "citations": ["S1"]},
            {"heading": "Findings", "body": "<b onmouseover=alert(5)>bold</b> [S2]", "citations": ["S2"]},
        ],
        evidence=[{"claim": "<svg onload=alert(6)>", "source_id": "S1", "quote": "<iframe src=//evil>"}],
    )
    job = make_draft(hostile)
    services.review_decide(job=job, reviewer=reviewer, decision="request_revision", comment="Again.")
    job.refresh_from_db()
    store_draft(job, report_with(sections=[{"heading": "Overview", "body": "<script>alert(7)</script> [S1]"}]))

    for url in (draft_url(job), draft_url(job, "?version=1"), draft_url(job, "diff/?from=1&to=2")):
        page = get(as_reviewer, url)
        content = page.select_one("#content-main")
        assert content.select("script, iframe, svg, img") == [], url
        assert not [tag for tag in content.find_all(True) if any(a.startswith("on") for a in tag.attrs)], url
        assert not content.select('a[href^="javascript"]'), url


# --- Deciding on the page -----------------------------------------------------------------


def decide(client, job, **data):
    payload = {"version": job.version, "checklist": list(CHECKLIST), **data}
    return client.post(draft_url(job, "decide/"), payload)


def test_approving_a_failing_draft_without_an_override_shows_the_error_by_the_field(as_reviewer, make_draft):
    job = make_draft(report_with(sections=[CLEAN_REPORT["sections"][0]]))

    response = decide(as_reviewer, job, decision="approve", comment="Looks fine.")

    page = BeautifulSoup(response.content, "html.parser")
    assert response.status_code == 200
    errors = page.select_one("#decide").find(string=lambda s: "needs an override reason saying why" in s)
    assert errors is not None
    assert page.select_one("#id_comment").text.strip() == "Looks fine."  # what was typed is kept
    job.refresh_from_db()
    assert job.status == "needs_review"


def test_approving_with_an_override_completes_the_report(as_reviewer, make_draft):
    job = make_draft(report_with(sections=[CLEAN_REPORT["sections"][0]]))

    response = decide(as_reviewer, job, decision="approve", override_reason="Findings are in the summary.")

    assert response.status_code == 302 and response.url == QUEUE
    job.refresh_from_db()
    assert job.status == "completed"
    page = get(as_reviewer, draft_url(job))
    assert page.select_one("#decide") is None  # nothing left to decide
    approved = page.select_one('#timeline tr[data-action="approved"]')
    assert "rita" in text(approved) and "Findings are in the summary." in text(approved)
    assert "Checks: 1 failed" in text(approved)


def test_requesting_a_revision_with_a_comment_on_one_section(as_reviewer, make_draft):
    job = make_draft()

    response = decide(as_reviewer, job, decision="request_revision", section_comment_1="Add the price outlook.", checklist=[])

    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == "queued"
    assert job.current_attempt.instructions == "On the section “Findings”: Add the price outlook."


def test_a_stale_page_cannot_decide_on_a_newer_version(as_reviewer, make_draft):
    job = make_draft()

    response = as_reviewer.post(draft_url(job, "decide/"), {"decision": "reject", "comment": "No.", "version": 3}, follow=True)

    assert "you read version 3" in text(BeautifulSoup(response.content, "html.parser").select_one(".messagelist"))
    job.refresh_from_db()
    assert job.status == "needs_review"


# --- Versions -----------------------------------------------------------------------------


def test_version_two_shows_what_changed_and_any_two_versions_compare(as_reviewer, make_draft, reviewer):
    job = make_draft()
    services.review_decide(job=job, reviewer=reviewer, decision="request_revision", comment="Add the price outlook.")
    job.refresh_from_db()
    revised = report_with(sections=[
        CLEAN_REPORT["sections"][0],
        {"heading": "Findings", "body": "Capacity grew 40% in 2025, with new plants in Germany and Poland [S1]. Prices fell [S2].", "citations": ["S1", "S2"]},
        {"heading": "Outlook", "body": "Analysts expect prices to recover [S2].", "citations": ["S2"]},
    ])
    job = store_draft(job, revised)

    page = get(as_reviewer, draft_url(job))

    assert job.version == 2
    diff = page.select_one("#diff")
    assert "Add the price outlook." in text(diff)
    assert diff.select_one('[data-heading="Outlook"] h3').text.split()[-1] == "added"
    assert "Analysts expect prices to recover [S2]." in text(diff.select_one('[data-heading="Outlook"]'))
    assert [v.text for v in page.select(".rd-versions a")][:1] == ["v1"]

    backwards = get(as_reviewer, draft_url(job, "diff/?from=2&to=1"))
    assert backwards.select_one('[data-heading="Outlook"] h3').text.split()[-1] == "removed"
    assert as_reviewer.get(draft_url(job, "diff/?from=1&to=9")).status_code == 404
