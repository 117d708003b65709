"""A reviewer's whole round in headless Chromium: claim a draft written by the local provider,
see the failed check, send it back, read version 2 and its diff, approve it with an override
reason, and find every step on the timeline. The worker is the real one: the test calls
`jobs.step.job_advance`, the step the task queue runs."""

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from jobs import services as job_services
from jobs.worker.step import job_advance
from reportdesk.models import Role
from sources.services import SourceSpec
from tests.browser.conftest import screenshot
from tests.factories import ReportTemplateFactory, SourceItemFactory, WorkspaceFactory, member

pytestmark = pytest.mark.django_db(transaction=True)

CAPACITY = (
    "European battery recycling capacity grew 40% in 2025 as new plants opened in Germany and Poland. "
    "Recyclers recover lithium, cobalt and nickel from spent electric vehicle batteries. "
    "Battery recycling capacity is expected to double again by 2027."
)
OLD_SURVEY = (
    "In 2019 battery recycling capacity in Europe was small and most spent batteries were exported. "
    "Battery recycling plants struggled to recover lithium economically at the time."
)
COMMENT = "S2 dates from 2019: lean on the 2025 figures and say what changed since."
OVERRIDE = "S2 is cited only as the 2019 baseline, which is what the comparison needs."


def drive_to_review(job, steps=10):
    for _ in range(steps):
        job_advance(job_id=job.pk)
        job.refresh_from_db()
        if job.status == "needs_review":
            return job
    raise AssertionError(f"job stuck in {job.status}: {job.failure_message}")


def test_a_reviewer_sends_a_draft_back_and_approves_version_two(page, login):
    workspace = WorkspaceFactory(slug="research-ops", name="Research Ops")
    requester = member(workspace, Role.REQUESTER, username="remy")
    reviewer = member(workspace, Role.REVIEWER, username="rita")
    template = ReportTemplateFactory(
        slug="market-scan-e2e", name="Market scan", required_sections=["Market overview", "Risks"], freshness_days=365
    )
    today = timezone.now().date()
    recent = SourceItemFactory(workspace=workspace, title="Capacity survey 2025", text=CAPACITY, published_at=today - dt.timedelta(days=40))
    stale = SourceItemFactory(workspace=workspace, title="Recycling survey 2019", text=OLD_SURVEY, published_at=dt.date(2019, 5, 1))
    job = job_services.job_submit(
        workspace=workspace, requested_by=requester, template=template, topic="Battery recycling capacity in Europe",
        audience="Product leadership", sources=[SourceSpec(item_id=recent.pk), SourceSpec(item_id=stale.pk)],
    )
    job = drive_to_review(job)

    # The reviewer finds the draft in the queue and claims it.
    login(reviewer)
    page.get_by_role("link", name="Review queue").click()
    row = page.locator(f'#review-queue tr[data-job="{job.public_id}"]')
    expect(row).to_contain_text("Unclaimed")
    row.get_by_role("button", name="Claim").click()
    expect(page.locator("#claim")).to_contain_text("You hold this draft")

    # The failed check is highlighted where it applies: the stale source and its citations.
    expect(page.locator("#checks-verdict")).to_contain_text("1 check failed")
    stale_card = page.locator("#source-S2")
    expect(stale_card).to_have_class(re.compile(r"\brd-source-failed\b"))
    expect(stale_card.locator(".rd-result.rd-failed")).to_contain_text("S2 is stale: published 2019-05-01")
    expect(page.locator('#report a.rd-cite.rd-failed[href="#source-S2"]').first).to_be_visible()
    expect(page.locator("#flag-list li.rd-failed")).to_contain_text("S2 is stale")
    screenshot(page, "review_v1_failed_check")

    # It goes back for revision with the reviewer's comment.
    page.fill("#id_comment", COMMENT)
    page.get_by_role("button", name="Request revision").click()
    expect(page.locator(".messagelist")).to_contain_text("Asked for a revision")
    job.refresh_from_db()
    assert (job.status, job.current_attempt.instructions.split("\n\n")[0]) == ("queued", COMMENT)

    # The worker writes version 2 with the local provider.
    job = drive_to_review(job)
    assert job.version == 2

    page.goto("/admin/reviews/review/queue/")
    row = page.locator(f'#review-queue tr[data-job="{job.public_id}"]')
    expect(row).to_contain_text("v2")
    row.get_by_role("button", name="Claim").click()

    # Version 2 shows what changed since version 1.
    diff = page.locator("#diff")
    expect(diff).to_contain_text("Changes from version 1")
    expect(diff).to_contain_text(COMMENT)
    added = diff.locator('[data-heading="Revision notes addressed"]')
    expect(added.locator("h3")).to_contain_text("added")
    expect(diff.locator(".rd-diff-counts")).to_contain_text("1 added")
    screenshot(page, "review_v2_diff")

    # The stale source is still cited: approval without an override is refused on the page.
    for box in page.locator("#checklist input[type=checkbox]").all():
        box.check()
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("#decide .errorlist")).to_contain_text("needs an override reason")
    page.fill("#id_override_reason", OVERRIDE)
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".messagelist")).to_contain_text(f"Approved version 2 of {job.public_id}")
    job.refresh_from_db()
    assert (job.status, job.review_state) == ("completed", "approved")

    # The timeline has every step, with who did it and why.
    page.goto(f"/admin/reviews/review/draft/{job.public_id}/")
    expect(page.locator("#job-status")).to_contain_text("Completed")
    rows = page.locator("#timeline tbody tr")
    steps = [(r.get_attribute("data-action"), r.locator(".rd-who").inner_text()) for r in rows.all()]
    worker = "system (worker)"
    assert steps == [
        ("submitted", "remy"),
        ("preparing", worker), ("started", worker), ("draft_ready", worker),
        ("claimed", "rita"), ("revision_requested", "rita"),
        ("preparing", worker), ("started", worker), ("draft_ready", worker),
        ("claimed", "rita"), ("approved", "rita"),
    ]
    expect(page.locator('#timeline tr[data-action="revision_requested"] .rd-why')).to_contain_text(COMMENT)
    approved = page.locator('#timeline tr[data-action="approved"]')
    expect(approved.locator(".rd-why")).to_contain_text(OVERRIDE)
    expect(approved).to_contain_text("needs_review → completed")
    screenshot(page, "review_completed_timeline")
    assert page.dialogs == []
