"""The local engine's drafts through the whole product: the demo job, a revision that follows
the reviewer, and offline drafts that wait for a person."""

from io import StringIO

import pytest
from django.core.management import call_command

from jobs import services
from jobs.worker import step
from jobs.models import JobEvent, ReportJob
from jobs.rendering import cited_source_ids
from reportdesk.models import Role
from reviews.checks import Outcome
from reviews.models import Decision
from reviews.selectors import attempt_report, checks_for_attempt
from reviews.services import review_claim, review_decide
from sources.services import SourceSpec
from tests.factories import ReportTemplateFactory, WorkspaceFactory, member

pytestmark = pytest.mark.django_db


def run_to_draft(job: ReportJob) -> ReportJob:
    for _ in range(3):
        step.job_advance(job_id=job.pk)
        job.refresh_from_db()
        if job.status not in ("queued", "preparing", "running"):
            break
    return job


def demo_job() -> ReportJob:
    call_command("seed_demo", stdout=StringIO())
    return run_to_draft(ReportJob.objects.get())


def cited_ids(report: dict) -> set[str]:
    """The sources the report rests on: its citations, evidence and summary (not its notes on
    the sources)."""
    return set(cited_source_ids({key: report[key] for key in ("executive_summary", "sections", "evidence")}))


def section_bodies(report: dict) -> dict[str, str]:
    return {section["heading"]: section["body"] for section in report["sections"]}


def test_the_demo_job_passes_every_automatic_check():
    job = demo_job()

    assert job.status == "needs_review" and job.written_offline
    checks = checks_for_attempt(attempt=job.current_attempt)
    flagged = [(r.check, r.section, r.message, r.claim[:80]) for r in checks.flagged]
    assert flagged == []
    passed = {r.check for r in checks.results if r.outcome == Outcome.PASSED}
    assert {"source_exists", "quote_found", "source_fresh", "section_present"} <= passed


def test_the_demo_draft_answers_each_heading_with_its_own_passages():
    job = demo_job()

    bodies = section_bodies(attempt_report(attempt=job.current_attempt))
    assert "The main risks for new entrants are feedstock contracts" in bodies["Risks"]
    assert "Germany, Poland and Norway host the largest plants." in bodies["Key players"]
    assert "Date:" not in " ".join(bodies.values())


def test_a_revision_moves_the_named_fact_and_drops_the_rejected_source():
    job = demo_job()
    reviewer = member(job.workspace, Role.REVIEWER)
    first = attempt_report(attempt=job.current_attempt)
    assert "Battery passports" not in section_bodies(first)["Trends"]
    assert "S3" in cited_ids(first)

    review_claim(job=job, reviewer=reviewer)
    review_decide(
        job=job, reviewer=reviewer, decision=Decision.REQUEST_REVISION,
        comment="S3 is stale, drop it.",
        section_comments={"Trends": "Add the battery passports required from February 2027."},
    )  # fmt: skip
    job = run_to_draft(job)

    assert job.status == "needs_review" and job.version == 2
    second = attempt_report(attempt=job.current_attempt)
    bodies = section_bodies(second)
    assert "Battery passports, required from February 2027" in bodies["Trends"]
    assert "S3" not in cited_ids(second)
    changed = bodies["Revision notes addressed"]
    assert "S3 (“Recycling routes for lithium-ion cells (sample data)”) is left out" in changed
    assert "“Trends” now quotes the passage from S2" in changed
    checks = checks_for_attempt(attempt=job.current_attempt)
    assert not checks.has_failures


@pytest.mark.parametrize(("local_drafts_complete", "status"), [(False, "needs_review"), (True, "completed")])
def test_an_offline_draft_waits_for_a_person_unless_the_template_lets_it_complete(local_drafts_complete, status):
    workspace = WorkspaceFactory()
    template = ReportTemplateFactory(review_required=False, local_drafts_complete=local_drafts_complete)
    job = services.job_submit(
        workspace=workspace, requested_by=member(workspace, Role.REQUESTER), template=template,
        topic="Battery recycling", sources=[SourceSpec(title="Note", text="Battery recycling grows in Europe every year.")],
    )  # fmt: skip

    job = run_to_draft(job)

    assert job.status == status and job.written_offline
    event = JobEvent.objects.filter(job=job, to_status=status).get()
    assert event.details["offline"] is True
