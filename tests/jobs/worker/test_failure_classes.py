"""Provider failures filed as the provider means them: a policy-flagged prompt and a
structured-output refusal are policy blocks; a chain to a response the provider no longer has
is sent again with what the chain carried, not failed."""

import pytest

from jobs import services
from jobs.models import JobEvent, ProviderCall
from reportdesk.models import Role
from tests.factories import member
from tests.fakes.responses_api import CREATE, Fault, Script
from tests.jobs.worker.test_step import advance, submit

pytestmark = pytest.mark.django_db






def test_a_structured_output_refusal_is_a_policy_block_with_the_refusal_text(workspace, requester, openai_fake, openai_provider):
    openai_fake.script_next(Script(statuses=("completed",), refusal="I can't help with assessing this person."))

    job = advance(submit(workspace, requester), openai_provider, times=2)

    assert job.status == "failed" and job.failure_class == "policy_block"
    assert "I can't help with assessing this person." in job.failure_message
    assert not job.retryable


def test_a_prompt_flagged_at_create_is_a_policy_block(workspace, requester, openai_fake, openai_provider):
    openai_fake.inject(CREATE, Fault.bad_request("Invalid prompt: flagged as potentially violating our usage policy.", code="invalid_prompt"))

    job = advance(submit(workspace, requester), openai_provider)

    assert job.status == "failed" and job.failure_class == "policy_block"
    assert "usage policy" in job.failure_message


def test_a_revision_whose_draft_response_is_gone_resends_the_draft_and_the_comments(workspace, requester, openai_fake, openai_provider):
    # given a first draft whose response has since been deleted at the provider (retention)
    job = advance(submit(workspace, requester), openai_provider, times=3)
    assert job.status == "needs_review"
    openai_fake.forget(job.provider_response_id)
    draft_title = job.artifacts.get(kind="report_md").content.splitlines()[0]
    reviewer = member(workspace, Role.REVIEWER)
    job = services.job_request_revision(job=job, actor=reviewer, comment="Quote the 2025 capacity figure.")

    # when the revision runs
    job = advance(job, openai_provider, times=4)

    # then the chained create was refused once, and the next one carried the draft instead
    assert job.status == "needs_review" and job.version == 2
    chained, unchained = openai_fake.requests_to(CREATE)[1:]
    assert chained.body["previous_response_id"] and openai_fake.chain_rejections == [chained.body["previous_response_id"]]
    assert "previous_response_id" not in unchained.body
    assert draft_title in unchained.body["input"] and "Quote the 2025 capacity figure." in unchained.body["input"]
    assert JobEvent.objects.filter(job=job, action="provider_chain_lost").count() == 1
    assert ProviderCall.objects.filter(job=job, error_code="previous_response_not_found").count() == 1
