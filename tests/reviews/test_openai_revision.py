"""A reviewer's revision through the OpenAI provider: the real SDK over real HTTP to the
loopback fake of the Responses API, driven by the real worker step."""

import pytest

from jobs import services as job_services
from jobs.worker.step import job_advance
from jobs.models import ProviderCall
from jobs.providers.openai_provider import OpenAIProvider
from reportdesk.models import Role
from reviews import services
from sources.services import SourceSpec
from tests.factories import member
from tests.fakes.responses_api import CREATE, ResponsesAPIFake
from tests.reviews.conftest import PRICES, RECYCLING

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake():
    with ResponsesAPIFake() as fake:
        yield fake
        assert fake.validation_errors == []
        assert fake.internal_errors == []


def drive_to_review(job, provider, steps=10):
    for _ in range(steps):
        job_advance(job_id=job.pk, provider=provider)
        job.refresh_from_db()
        if job.status == "needs_review":
            return job
    raise AssertionError(f"job stuck in {job.status}: {job.failure_message}")


def test_a_revision_request_carries_the_drafts_response_id_and_the_reviewers_comments(fake, workspace, template, reviewer):
    provider = OpenAIProvider(api_key="test", base_url=fake.base_url)
    requester = member(workspace, Role.REQUESTER, username="remy")
    job = job_services.job_submit(
        workspace=workspace, requested_by=requester, template=template, topic="Battery recycling capacity",
        sources=[SourceSpec(title="Capacity", text=RECYCLING), SourceSpec(title="Prices", text=PRICES)],
    )
    job = drive_to_review(job, provider)
    draft_response = ProviderCall.objects.get(job=job).provider_response_id

    services.review_decide(
        job=job, reviewer=reviewer, decision="request_revision",
        comment="Quote the 40% capacity growth from S1 word for word.",
        section_comments={"Findings": "Separate the price outlook from the facts."},
    )
    job = drive_to_review(job, provider)

    first, revision = (request.body for request in fake.requests_to(CREATE))
    assert "previous_response_id" not in first
    assert revision["previous_response_id"] == draft_response
    assert "Revision requested. The reviewer's notes on the previous draft:" in revision["input"]
    assert "Quote the 40% capacity growth from S1 word for word." in revision["input"]
    assert "On the section “Findings”: Separate the price outlook from the facts." in revision["input"]
    assert revision["metadata"]["attempt"] == "2"
    assert job.version == 2
    assert ProviderCall.objects.filter(job=job).order_by("id").last().previous_response_id == draft_response
