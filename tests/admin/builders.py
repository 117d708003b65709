"""Jobs in a given state for the console's tests, built through the real worker code where
it matters (a stored report goes through step.result_store, as the worker stores it)."""

import datetime as dt
import json
from decimal import Decimal

from django.utils import timezone

from jobs.worker import step
from jobs.models import RETRYABLE_FAILURES, JobAttempt, JobStatus, ProviderCall, ReportJob
from jobs.providers.base import COMPLETED, ResponseState, Usage
from tests.factories import ProviderCallFactory, ReportJobFactory

TERMINAL = ("completed", "failed", "canceled", "expired", "rejected")


def job_in(status: str, *, failure_class: str = "provider_error", archived: bool = False, **kwargs) -> ReportJob:
    """A job in `status` with the bookkeeping the worker would have left."""
    job = ReportJobFactory(**kwargs)
    now = timezone.now()
    fields = {"status": status}
    if status == JobStatus.FAILED:
        fields.update(
            failure_class=failure_class,
            failure_message=f"The provider said no ({failure_class}).",
            failure_retryable=failure_class in RETRYABLE_FAILURES,
        )
    if status in TERMINAL:
        fields["finished_at"] = now
    if status == JobStatus.RUNNING:
        call = ProviderCallFactory(attempt=job.current_attempt, job=job, status="in_progress")
        fields.update(
            provider_response_id=call.provider_response_id, started_at=now - dt.timedelta(minutes=2),
            last_checked_at=now - dt.timedelta(seconds=20), next_check_at=now + dt.timedelta(seconds=30),
            request_locked_at=now - dt.timedelta(minutes=2),
        )
        JobAttempt.objects.filter(pk=job.current_attempt_id).update(status="running", started_at=now - dt.timedelta(minutes=3))
    if archived:
        fields["archived_at"] = now
    ReportJob.objects.filter(pk=job.pk).update(**fields)
    job.refresh_from_db()
    return job


def report_json(**overrides) -> str:
    report = {
        "title": "Battery recycling in Europe",
        "executive_summary": "Capacity grew 40% in 2025 [S1].",
        "sections": [{"heading": "Overview", "body": "Recyclers recover lithium, cobalt and nickel [S1].", "citations": ["S1"]}],
        "evidence": [{"claim": "Capacity grew 40%", "source_id": "S1", "quote": "Capacity grew 40% in 2025."}],
        "recommendations": ["Partner with a recycler."],
        "open_questions": [],
        "source_notes": [],
    }
    report.update(overrides)
    return json.dumps(report)


def store_report(job: ReportJob, output_text: str, *, cost: str = "0.0123") -> ReportJob:
    """Store `output_text` as the model's answer for the job's current attempt, the way the
    worker does (running → needs_review or completed)."""
    now = timezone.now()
    if job.status != JobStatus.RUNNING:
        ReportJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, started_at=now, failure_class="")
        JobAttempt.objects.filter(pk=job.current_attempt_id).update(status="running", started_at=now)
    call = ProviderCall.objects.filter(attempt=job.current_attempt_id).first() or ProviderCallFactory(
        attempt=job.current_attempt, job=job
    )
    ProviderCall.objects.filter(pk=call.pk).update(
        status=COMPLETED, input_tokens=1200, cached_tokens=200, output_tokens=800, reasoning_tokens=100,
        cost_usd=Decimal(cost), completed_at=now,
    )
    job = ReportJob.objects.select_related("template", "current_attempt").get(pk=job.pk)
    state = ResponseState(id=call.provider_response_id, status=COMPLETED, model="gpt-5.2", output_text=output_text, usage=Usage())
    step.result_store(job=job, attempt=job.current_attempt, state=state)
    ReportJob.objects.filter(pk=job.pk).update(
        model="gpt-5.2", input_tokens=1200, cached_tokens=200, output_tokens=800, reasoning_tokens=100, cost_usd=Decimal(cost)
    )
    job.refresh_from_db()
    return job
