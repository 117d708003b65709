"""Retention at the provider: responses of jobs finished long enough ago are deleted there, and
a later revision of such a job sends its draft instead of chaining to the deleted response."""

import datetime as dt

import pytest
from django.utils import timezone

from jobs import services
from jobs.models import ProviderCall, ReportJob
from jobs.retention import provider_responses_delete
from jobs.tasks import SCHEDULES
from reportdesk.models import Role
from reviews import services as review_services
from tests.factories import member
from tests.fakes.responses_api import CREATE, DELETE
from tests.jobs.worker.test_step import advance, submit

pytestmark = pytest.mark.django_db


def finished(job, days_ago):
    ReportJob.objects.filter(pk=job.pk).update(finished_at=timezone.now() - dt.timedelta(days=days_ago))


def test_nothing_is_deleted_unless_configured(workspace, requester, openai_fake, openai_provider, settings):
    settings.PROVIDER_DELETE_AFTER_DAYS = None
    job = advance(submit(workspace, requester, review_required=False), openai_provider, times=3)
    finished(job, 400)

    assert provider_responses_delete(provider=openai_provider) == 0
    assert openai_fake.count(DELETE) == 0
    assert "reportdesk: delete expired responses at the provider" in SCHEDULES


def test_responses_of_jobs_finished_long_ago_are_deleted_at_the_provider(workspace, requester, openai_fake, openai_provider, settings):
    settings.PROVIDER_DELETE_AFTER_DAYS = 7
    old = advance(submit(workspace, requester, review_required=False), openai_provider, times=3)
    recent = advance(submit(workspace, requester, review_required=False), openai_provider, times=3)
    in_review = advance(submit(workspace, requester), openai_provider, times=3)
    finished(old, 8)
    finished(recent, 2)
    assert (old.status, recent.status, in_review.status) == ("completed", "completed", "needs_review")

    assert provider_responses_delete(provider=openai_provider) == 1
    assert provider_responses_delete(provider=openai_provider) == 0  # done once

    [deleted] = openai_fake.requests_to(DELETE)
    assert deleted.response_id == old.provider_response_id
    assert openai_fake.responses[old.provider_response_id].deleted
    assert ProviderCall.objects.get(job=old).deleted_at is not None
    assert ProviderCall.objects.get(job=recent).deleted_at is None
    assert old.artifacts.filter(kind="report_md").exists()  # our copy stays


def test_a_revision_after_deletion_sends_the_draft_instead_of_chaining(workspace, requester, openai_fake, openai_provider, settings):
    settings.PROVIDER_DELETE_AFTER_DAYS = 7
    job = advance(submit(workspace, requester), openai_provider, times=3)
    reviewer = member(workspace, Role.REVIEWER)
    job = review_services.review_decide(job=job, reviewer=reviewer, decision="reject", comment="Too thin.")
    assert job.status == "rejected"
    finished(job, 30)
    assert provider_responses_delete(provider=openai_provider) == 1

    job = services.job_revise(job=job, actor=requester, instructions="Add the 2025 capacity figure.")
    job = advance(job, openai_provider, times=3)

    assert job.status == "needs_review" and job.version == 2
    revision = openai_fake.requests_to(CREATE)[-1].body
    assert "previous_response_id" not in revision
    assert "The previous draft, to be revised" in revision["input"] and "Add the 2025 capacity figure." in revision["input"]
    assert openai_fake.chain_rejections == []  # never sent a chain the provider no longer had
