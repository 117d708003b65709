"""What the services enqueue, and when: only after commit, by dotted path, with the right
arguments. The callbacks run for real and the task lands in django-q2's broker (the ORM
broker in the tests), where it is read back as a worker would read it."""

import pytest
from django_q.brokers import get_broker
from django_q.signing import SignedPackage

from jobs import services
from jobs.models import ProviderCall, ReportJob
from reportdesk.models import Role
from sources.services import SourceSpec
from tests.factories import ReportJobFactory, ReportTemplateFactory, WorkspaceFactory, member

pytestmark = pytest.mark.django_db


def _queued(prefix: str = "jobs.") -> list[tuple[str, tuple]]:
    """(dotted path, args) of the tasks waiting in the broker under `prefix`, oldest first
    (every audit event also hands itself to notifications; that hook is tested there)."""
    broker = get_broker()
    tasks = []
    while (messages := broker.dequeue()):
        for ack_id, payload in messages:
            task = SignedPackage.loads(payload)
            if task["func"].startswith(prefix):
                tasks.append((task["func"], tuple(task["args"])))
            broker.acknowledge(ack_id)
    return tasks


def test_submit_enqueues_the_first_step_only_after_commit(django_capture_on_commit_callbacks):
    workspace = WorkspaceFactory()
    requester = member(workspace, Role.REQUESTER)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = services.job_submit(
            workspace=workspace, requested_by=requester, template=ReportTemplateFactory(),
            topic="Battery recycling", sources=[SourceSpec(title="Notes", text="Capacity grew.")],
        )
        assert _queued() == []  # nothing before commit
    for callback in callbacks:
        callback()
    assert _queued() == [("jobs.tasks.advance_job", (job.pk, None))]


def test_cancel_enqueues_a_provider_cancel_for_each_live_response(django_capture_on_commit_callbacks):
    job = ReportJobFactory()
    ReportJob.objects.filter(pk=job.pk).update(status="running", provider_response_id="resp_live")
    attempt = job.current_attempt
    ProviderCall.objects.create(job=job, attempt=attempt, provider="openai", model="m", provider_response_id="resp_live", status="in_progress")
    ProviderCall.objects.create(job=job, attempt=attempt, provider="openai", model="m", provider_response_id="resp_done", status="completed")
    ProviderCall.objects.create(job=job, attempt=attempt, provider="openai", model="m", provider_response_id=None, status="lost")
    with django_capture_on_commit_callbacks(execute=True):
        services.job_cancel(job=job, actor=job.requested_by, reason="Wrong topic")
    assert _queued() == [("jobs.tasks.cancel_at_provider", ("resp_live",))]


def test_retry_enqueues_the_next_step_after_commit(django_capture_on_commit_callbacks):
    job = ReportJobFactory()
    ReportJob.objects.filter(pk=job.pk).update(status="failed", failure_class="timeout", failure_retryable=True)
    job.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        services.job_retry(job=job, actor=job.requested_by)
    assert _queued() == [("jobs.tasks.advance_job", (job.pk, None))]


def test_a_refused_action_enqueues_nothing(django_capture_on_commit_callbacks):
    job = ReportJobFactory()
    reviewer = member(job.workspace, Role.REVIEWER)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Exception):
        services.job_cancel(job=job, actor=reviewer)
    assert _queued() == []
