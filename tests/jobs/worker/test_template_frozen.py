"""A template edited while its reports run: the attempt under way keeps the template as it was
when the attempt began (queued → preparing); a job still queued and the next attempt (a
revision, a retry) take the edit. The cost cap and the runtime limit are operators' brakes and
apply at once."""

from decimal import Decimal

import pytest

from jobs import services
from jobs.models import JobAttempt, ProviderCall, ReportTemplate
from reportdesk.models import Role
from reviews import services as review_services
from reviews.checks import SECTION_PRESENT
from reviews.selectors import checks_for_attempt
from tests.factories import WorkspaceFactory, member
from tests.fakes.responses_api import CREATE

from .test_step import advance, submit

pytestmark = pytest.mark.django_db

ORIGINAL = "Write a market scan. Lead with the capacity figures."
EDITED = "Write a vendor comparison. Lead with the prices."


def _edit(template: ReportTemplate) -> None:
    """An operator's edit in the admin, saved while a report of the template runs."""
    template.refresh_from_db()
    template.instructions = EDITED
    template.model = "gpt-5.4"
    template.mode = "multi_step"
    template.review_required = False
    template.required_sections = ["Appendix Z"]
    template.save()


def test_an_edit_of_the_template_leaves_the_report_under_way_as_it_started(openai_fake, openai_provider):
    # given a report whose response is running at the provider
    workspace = WorkspaceFactory()
    job = submit(workspace, member(workspace, Role.REQUESTER), instructions=ORIGINAL, required_sections=[])
    job = advance(job, openai_provider)
    assert job.status == "running"
    # when the template is edited: another model and instructions, multi-step, no review,
    # a required section the draft does not have
    _edit(job.template)
    job = advance(job, openai_provider, times=3)

    # then the run ends as it started: one response, the model and instructions it was created
    # with, and the review the template asked for when it was submitted
    assert job.status == "needs_review", job.failure_message
    [create] = [r.body for r in openai_fake.requests_to(CREATE)]
    assert create["model"] == "gpt-5.2" and ORIGINAL in create["instructions"] and EDITED not in create["instructions"]
    assert [c.step for c in ProviderCall.objects.filter(job=job)] == ["report"]
    # and the draft is checked against the rules it was written under
    checks = checks_for_attempt(attempt=job.current_attempt)
    assert not [r for r in checks.results if r.check == SECTION_PRESENT]


def test_the_revision_after_an_edit_runs_with_the_edited_template(openai_fake, openai_provider):
    workspace = WorkspaceFactory()
    reviewer = member(workspace, Role.REVIEWER)
    job = submit(workspace, member(workspace, Role.REQUESTER), instructions=ORIGINAL, required_sections=[])
    job = advance(job, openai_provider, times=3)
    assert job.status == "needs_review"
    template = job.template
    template.instructions, template.model = EDITED, "gpt-5.4"
    template.save()

    review_services.review_decide(job=job, reviewer=reviewer, decision="request_revision", comment="Lead with prices.")
    job = advance(job, openai_provider, times=3)

    assert job.status == "needs_review", job.failure_message
    first, revision = (r.body for r in openai_fake.requests_to(CREATE))
    assert first["model"] == "gpt-5.2" and ORIGINAL in first["instructions"]
    assert revision["model"] == "gpt-5.4" and EDITED in revision["instructions"]
    assert job.current_attempt.number == 2
    assert job.current_attempt.template_settings == template.run_settings()


def test_a_job_still_queued_takes_an_edit_made_before_it_began(openai_fake, openai_provider):
    workspace = WorkspaceFactory()
    job = submit(workspace, member(workspace, Role.REQUESTER), instructions=ORIGINAL, review_required=True)
    assert job.review_state == "pending"
    ReportTemplate.objects.filter(pk=job.template_id).update(model="gpt-5.4", instructions=EDITED, review_required=False)

    job = advance(job, openai_provider, times=3)

    [create] = [r.body for r in openai_fake.requests_to(CREATE)]
    assert create["model"] == "gpt-5.4" and EDITED in create["instructions"]
    assert (job.status, job.review_state) == ("completed", "not_required")
    prepared = job.events.get(action="preparing")
    assert (prepared.from_review_state, prepared.to_review_state) == ("pending", "not_required")


def test_the_cost_cap_and_the_runtime_limit_apply_at_once_and_the_rest_as_it_was(settings):
    workspace = WorkspaceFactory()
    job = submit(workspace, member(workspace, Role.REQUESTER), instructions=ORIGINAL, cost_cap_usd=Decimal("5.00"),
                 max_output_tokens=4000, web_search=True, web_search_domains=["example.org"])
    job = services.job_mark_preparing(job=job)
    ReportTemplate.objects.filter(pk=job.template_id).update(
        name="Renamed", cost_cap_usd=Decimal("0.50"), max_runtime_minutes=5, max_output_tokens=9000,
        web_search=False, web_search_domains=[], instructions=EDITED,
    )
    job.refresh_from_db()

    run = job.run_template
    assert (run.name, run.cost_cap_usd, run.max_runtime_minutes) == ("Renamed", Decimal("0.50"), 5)
    assert (run.instructions, run.max_output_tokens, run.web_search, run.web_search_domains) == (ORIGINAL, 4000, True, ["example.org"])
    # the copy is for reading: changing its lists leaves the attempt's alone, and it cannot be
    # saved over the operator's edit
    run.web_search_domains.append("example.com")
    assert job.run_template.web_search_domains == ["example.org"]
    with pytest.raises(TypeError):
        run.save()
    assert ReportTemplate.objects.get(pk=job.template_id).instructions == EDITED


def test_an_attempt_begun_before_settings_were_frozen_follows_the_template_as_it_is():
    workspace = WorkspaceFactory()
    job = services.job_mark_preparing(job=submit(workspace, member(workspace, Role.REQUESTER), instructions=ORIGINAL))
    JobAttempt.objects.filter(pk=job.current_attempt_id).update(template_settings={})
    ReportTemplate.objects.filter(pk=job.template_id).update(instructions=EDITED)
    job.refresh_from_db()

    assert job.run_template.instructions == EDITED
