"""The worker's execution of a job, end to end through the real `openai` SDK against the
loopback fake of the Responses API: every failure class and every retry rule.

`job_advance` is the worker's own step (the django-q2 task calls nothing else); these tests
call it directly so each step is visible. The dispatcher that decides *when* a job is due is
tested in test_dispatcher.py.
"""

import datetime as dt
import json

import pytest
from django.utils import timezone

from jobs import events, services
from jobs.worker import step
from jobs.models import Artifact, JobAttempt, JobEvent, ProviderCall, ReportJob
from reportdesk.models import Role
from sources.services import SourceSpec
from tests.factories import ReportTemplateFactory, member
from tests.fakes.responses_api import CANCEL, CANCEL_LOSES_RACE, CREATE, Fault, Script
from tests.oncommit import work_callbacks

pytestmark = pytest.mark.django_db

SOURCE_TEXT = (
    "European battery recycling capacity reached 410,000 tonnes a year in 2025. "
    "Most capacity is mechanical pre-treatment that produces black mass."
)






def submit(workspace, requester, *, review_required=True, sources=None, topic="Battery recycling capacity", **template_kwargs):
    template = ReportTemplateFactory(review_required=review_required, **{"model": "gpt-5.2", **template_kwargs})
    return services.job_submit(
        workspace=workspace, requested_by=requester, template=template, topic=topic, audience="Board",
        sources=sources or [SourceSpec(title="Market note", text=SOURCE_TEXT)],
    )


def advance(job, provider, *, times=1):
    """Run the worker's step `times`, each time once the job is due (as the dispatcher would:
    the waiting in between is skipped)."""
    for _ in range(times):
        ReportJob.objects.filter(pk=job.pk, next_check_at__gt=timezone.now()).update(next_check_at=timezone.now())
        step.job_advance(job_id=job.pk, provider=provider)
    job.refresh_from_db()
    return job


def step_once(job, provider):
    """One worker step, as a stray task would run it: whether or not the job is due."""
    step.job_advance(job_id=job.pk, provider=provider)
    job.refresh_from_db()
    return job


def actions(job):
    return list(JobEvent.objects.filter(job=job).order_by("id").values_list("action", flat=True))


def test_a_job_runs_to_needs_review_with_artifacts_usage_and_cost(workspace, requester, openai_fake, openai_provider, settings):
    settings.PRICE_TABLE = {"gpt-5.2": {"input": 2, "cached_input": 1, "output": 10}}
    openai_fake.script_next(Script(statuses=("queued", "in_progress", "completed"), input_tokens=1000, cached_tokens=200, output_tokens=500, reasoning_tokens=100))
    job = submit(workspace, requester)

    job = advance(job, openai_provider)  # prepare + create
    assert job.status == "running" and job.provider_response_id.startswith("resp_")
    [create] = openai_fake.requests_to(CREATE)
    body = create.body
    assert body["background"] is True and body["store"] is True
    assert body["metadata"]["job_id"] == job.public_id and body["metadata"]["attempt"] == "1"
    assert body["text"]["format"]["type"] == "json_schema" and body["text"]["format"]["strict"] is True
    assert "=== S1: Market note ===" in body["input"] and SOURCE_TEXT in body["input"]
    assert "Cite every factual claim" in body["instructions"]  # the citation rules

    job = advance(job, openai_provider)  # in_progress: keep polling, schedule next check
    assert job.status == "running" and job.last_checked_at is not None and job.next_check_at > timezone.now()
    job = advance(job, openai_provider)  # completed: store
    assert job.status == "needs_review" and job.version == 1

    kinds = set(Artifact.objects.filter(job=job).values_list("kind", flat=True))
    assert kinds == {"report_md", "report_json", "citations", "evidence", "source_notes", "report_html"}
    citations = json.loads(Artifact.objects.get(job=job, kind="citations").content)
    assert citations and all(c["in_manifest"] for c in citations)
    assert (job.input_tokens, job.cached_tokens, job.output_tokens, job.reasoning_tokens) == (1000, 200, 500, 100)
    # (800 × 2 + 200 × 1 + 500 × 10) / 1M
    assert float(job.cost_usd) == pytest.approx(0.0068)
    assert job.model == "gpt-5.2-2025-12-11"  # the dated snapshot that answered, priced as gpt-5.2
    call = ProviderCall.objects.get(job=job)
    assert call.polls == 2 and call.status == "completed" and call.request_summary["sources"][0]["sid"] == "S1"
    assert actions(job) == ["submitted", "preparing", "started", "draft_ready"]


def test_storing_twice_changes_nothing(workspace, requester, openai_fake, openai_provider):
    openai_fake.script_next(Script(statuses=("completed",)))
    job = advance(submit(workspace, requester, review_required=False), openai_provider, times=2)
    assert job.status == "completed"
    state = openai_provider.retrieve(job.provider_response_id)
    step.result_store(job=job, attempt=job.current_attempt, state=state)
    assert Artifact.objects.filter(job=job).count() == 6
    assert actions(job).count("completed") == 1 and job.version == 1


class TestCreateErrors:
    def test_transient_errors_are_retried_with_backoff_then_fail(self, workspace, requester, openai_fake, openai_provider, settings):
        settings.PROVIDER_MAX_AUTO_RETRIES = 2
        openai_fake.inject(CREATE, Fault.server_error(), times=3)
        job = submit(workspace, requester)

        job = advance(job, openai_provider)
        assert job.status == "preparing" and job.next_check_at > timezone.now()
        job = advance(job, openai_provider, times=2)

        assert job.status == "failed" and job.failure_class == "provider_error"
        assert "Gave up after 2 automatic retries" in job.failure_message
        assert openai_fake.count(CREATE) == 3  # one request per attempt: no SDK retries
        assert actions(job).count("provider_retry_scheduled") == 2
        assert job.retryable and job.retries == 2

    def test_retry_after_is_honoured(self, workspace, requester, openai_fake, openai_provider):
        openai_fake.inject(CREATE, Fault.rate_limit(retry_after=40))
        job = advance(submit(workspace, requester), openai_provider)
        assert job.status == "preparing"
        assert job.next_check_at >= timezone.now() + dt.timedelta(seconds=38)
        # a wake-up before the backoff is over (a stray task, a webhook) changes nothing
        step.job_advance(job_id=job.pk, provider=openai_provider)
        assert openai_fake.count(CREATE) == 1

    def test_a_transient_error_then_success_runs_the_job(self, workspace, requester, openai_fake, openai_provider):
        openai_fake.inject(CREATE, Fault.server_error())
        job = advance(submit(workspace, requester), openai_provider, times=2)
        assert job.status == "running"
        assert ProviderCall.objects.filter(job=job).count() == 2
        assert list(ProviderCall.objects.filter(job=job).values_list("status", flat=True)) == ["error", "queued"]

    @pytest.mark.parametrize("fault", [Fault.delay(3.0), Fault.drop(), Fault.drop(processed=True)], ids=["timeout", "drop", "drop-after"])
    def test_a_create_without_an_answer_is_not_repeated_within_the_window(self, workspace, requester, openai_fake, openai_provider, settings, fault):
        """It may have started a response: no second create until it is reconciled."""
        settings.CREATE_RECONCILE_SECONDS = 30
        openai_fake.inject(CREATE, fault)
        job = step_once(submit(workspace, requester), openai_provider)
        call = ProviderCall.objects.get(job=job)
        assert job.status == "preparing" and call.status == "unconfirmed" and call.provider_response_id is None
        assert job.next_check_at >= call.created_at + dt.timedelta(seconds=29)
        step_once(job, openai_provider)  # a stray task or a webhook-style wake before the window's end
        assert openai_fake.count(CREATE) == 1
        assert "provider_call_unconfirmed" in actions(job)

    @pytest.mark.parametrize(
        "fault, failure_class",
        # (A quota or credential failure holds the job instead: see test_breaker.py.)
        [
            (Fault.bad_request("Invalid 'model'.", code="model_not_found"), "validation_error"),
            (Fault.bad_request("Refused by the safety system.", code="content_policy_violation"), "policy_block"),
        ],
    )
    def test_permanent_errors_fail_at_once_with_their_class(self, workspace, requester, openai_fake, openai_provider, fault, failure_class):
        openai_fake.inject(CREATE, fault)
        job = advance(submit(workspace, requester), openai_provider)
        assert job.status == "failed" and job.failure_class == failure_class
        assert openai_fake.count(CREATE) == 1
        assert "provider_retry_scheduled" not in actions(job)


class TestResponseOutcomes:
    def test_a_failed_response_is_retried_automatically_within_the_attempt(self, workspace, requester, openai_fake, openai_provider):
        openai_fake.script_next(Script.failed(code="server_error"), Script(statuses=("completed",)))
        job = submit(workspace, requester)
        job = advance(job, openai_provider, times=3)  # create, poll (in_progress), poll: failed (HTTP 200)
        assert job.status == "running" and "provider_retry_scheduled" in actions(job)
        job = advance(job, openai_provider, times=2)  # a new create, then poll: completed
        assert job.status == "needs_review"
        assert openai_fake.count(CREATE) == 2
        assert job.current_attempt.number == 1 and job.retries == 1

    @pytest.mark.parametrize(
        "script, failure_class, words",
        [
            # The API's code for a prompt flagged under its usage policy.
            (Script.failed(code="invalid_prompt", message="Bad prompt."), "policy_block", "Bad prompt"),
            (Script.failed(code="content_policy_violation", message="Refused."), "policy_block", "Refused"),
            (Script.incomplete(reason="max_output_tokens"), "provider_error", "max_output_tokens"),
            (Script.incomplete(reason="content_filter"), "policy_block", "content_filter"),
            (Script(statuses=("completed",), output_text="this is not json"), "provider_error", "not a valid structured report"),
        ],
    )
    def test_terminal_failures_become_failure_classes(self, workspace, requester, openai_fake, openai_provider, script, failure_class, words):
        openai_fake.script_next(script)
        job = advance(submit(workspace, requester), openai_provider, times=3)
        assert job.status == "failed" and job.failure_class == failure_class
        assert words in job.failure_message
        assert not Artifact.objects.filter(job=job).exists()

    def test_a_response_cancelled_by_the_provider_fails_the_job(self, workspace, requester, openai_fake, openai_provider):
        openai_fake.script_next(Script(statuses=("queued", "cancelled")))
        job = advance(submit(workspace, requester), openai_provider, times=2)
        assert job.status == "failed" and "canceled the response" in job.failure_message

    def test_a_missing_status_keeps_polling(self, workspace, requester, openai_fake, openai_provider):
        openai_fake.script_next(Script(statuses=("queued", "in_progress", "in_progress", "completed"), omit_status=True))
        job = advance(submit(workspace, requester), openai_provider, times=2)
        assert job.status == "running"

    def test_runtime_limit_cancels_at_the_provider_and_fails_as_timeout(self, workspace, requester, openai_fake, openai_provider):
        openai_fake.script_next(Script.running())
        job = advance(submit(workspace, requester, max_runtime_minutes=5), openai_provider)
        JobAttempt.objects.filter(pk=job.current_attempt_id).update(
            started_at=timezone.now() - dt.timedelta(minutes=6)
        )
        job = advance(job, openai_provider)
        assert job.status == "failed" and job.failure_class == "timeout" and job.retryable
        assert openai_fake.count(CANCEL) == 1
        assert openai_provider.retrieve(job.provider_response_id).status == "cancelled"


class TestCancel:
    def test_cancel_reaches_the_provider_after_commit(self, workspace, requester, openai_fake, openai_provider, django_capture_on_commit_callbacks):
        openai_fake.script_next(Script.running())
        job = advance(submit(workspace, requester), openai_provider)
        with django_capture_on_commit_callbacks() as callbacks:
            services.job_cancel(job=job, actor=requester, reason="Wrong audience")
        assert openai_fake.count(CANCEL) == 0  # nothing leaves the transaction
        assert len(work_callbacks(callbacks)) == 1
        step.response_cancel(response_id=job.provider_response_id, provider=openai_provider)
        assert openai_provider.retrieve(job.provider_response_id).status == "cancelled"
        assert ProviderCall.objects.get(job=job).status == "cancelled"

    def test_a_cancel_that_loses_the_race_never_reopens_the_job(self, workspace, requester, openai_fake, openai_provider):
        openai_fake.script_next(Script(statuses=("queued", "completed"), cancel_result=CANCEL_LOSES_RACE))
        job = advance(submit(workspace, requester), openai_provider)
        services.job_cancel(job=job, actor=requester)
        step.response_cancel(response_id=job.provider_response_id, provider=openai_provider)
        job = advance(job, openai_provider)  # a late worker step finds the response completed
        assert job.status == "canceled" and job.version == 0
        assert not Artifact.objects.filter(job=job).exists()
        assert actions(job) == ["submitted", "preparing", "started", "canceled"]


class TestRetryRules:
    def test_manual_retry_after_a_provider_error_runs_a_new_attempt(self, workspace, requester, openai_fake, openai_provider):
        openai_fake.script_next(Script.failed(code="unsupported_file", message="The model could not read the input."))
        job = advance(submit(workspace, requester), openai_provider, times=3)
        assert job.status == "failed" and job.retryable
        job = services.job_retry(job=job, actor=requester, reason="Sources replaced")
        job = advance(job, openai_provider, times=3)
        assert job.status == "needs_review" and job.current_attempt.number == 2
        bodies = [r.body for r in openai_fake.requests_to(CREATE)]
        assert [b["metadata"]["attempt"] for b in bodies] == ["1", "2"]

    def test_policy_block_is_not_retryable(self, workspace, requester, openai_fake, openai_provider):
        openai_fake.script_next(Script.failed(code="content_policy_violation"))
        job = advance(submit(workspace, requester), openai_provider, times=3)
        assert job.failure_class == "policy_block" and not job.retryable
        with pytest.raises(services.NotRetryable):
            services.job_retry(job=job, actor=requester)


class TestSources:
    @pytest.fixture(autouse=True)
    def _allow_localhost(self, settings):
        # URLs pass the submit-time check but nothing listens on port 9: the fetch fails.
        settings.SOURCE_ALLOWED_INTERNAL_HOSTS = ["localhost"]
        settings.SOURCE_FETCH_TIMEOUT = 2

    def test_a_job_whose_sources_all_fail_fails_as_source_error(self, workspace, requester, openai_fake, openai_provider):
        job = submit(workspace, requester, sources=[SourceSpec(url="http://localhost:9/never"), SourceSpec(url="http://localhost:9/also")])
        job = advance(job, openai_provider)
        assert job.status == "failed" and job.failure_class == "source_error"
        assert "None of the sources could be read" in job.failure_message and "S1" in job.failure_message
        assert openai_fake.count(CREATE) == 0  # nothing calls the model without sources

    def test_a_failing_source_is_recorded_and_the_rest_are_used(self, workspace, requester, openai_fake, openai_provider):
        job = submit(workspace, requester, sources=[SourceSpec(url="http://localhost:9/"), SourceSpec(title="Note", text=SOURCE_TEXT)])
        job = advance(job, openai_provider)
        assert job.status == "running"
        event = JobEvent.objects.get(job=job, action="sources_partially_failed")
        assert event.details["failed"][0]["sid"] == "S1"
        body = openai_fake.requests_to(CREATE)[0].body["input"]
        assert "=== S2: Note ===" in body and "S1:" not in body


def test_revision_request_carries_previous_response_id_and_the_comments(workspace, requester, openai_fake, openai_provider):
    job = advance(submit(workspace, requester), openai_provider, times=3)
    first_response = job.provider_response_id
    reviewer = member(workspace, Role.REVIEWER)
    job = services.job_request_revision(job=job, actor=reviewer, comment="Quote the 2025 capacity figure.")
    job = advance(job, openai_provider, times=3)
    assert job.status == "needs_review" and job.version == 2
    second = openai_fake.requests_to(CREATE)[1].body
    assert second["previous_response_id"] == first_response
    assert "Quote the 2025 capacity figure." in second["input"]


def test_context_budget_keeps_the_most_relevant_paragraphs(workspace, requester, openai_fake, openai_provider, settings):
    settings.CONTEXT_BUDGET_CHARS = 400
    relevant = "Battery recycling capacity grew quickly in 2025."
    filler = "\n\n".join(f"Paragraph {i} about gardening and tomato plants in summer." for i in range(30))
    job = submit(workspace, requester, sources=[SourceSpec(title="Mixed", text=filler + "\n\n" + relevant)])
    job = advance(job, openai_provider)
    body = openai_fake.requests_to(CREATE)[0].body["input"]
    assert relevant in body
    summary = ProviderCall.objects.get(job=job).request_summary["sources"][0]
    assert summary["truncated"] is True and summary["included_chars"] <= 400


def test_a_late_result_for_an_expired_job_is_ignored(workspace, requester, openai_fake, openai_provider):
    openai_fake.script_next(Script(statuses=("queued", "completed")))
    job = advance(submit(workspace, requester), openai_provider)
    attempt = job.current_attempt
    services.job_expire(job=job, actor=events.SCHEDULER, reason="Deadline passed")
    state = openai_provider.retrieve(job.provider_response_id)
    assert state.status == "completed"
    step.result_store(job=job, attempt=attempt, state=state)  # the result arrives late
    job = advance(job, openai_provider)
    assert job.status == "expired" and job.version == 0
    assert not Artifact.objects.filter(job=job).exists()


class TestSourcesAfterChanges:
    def test_sources_added_by_an_edit_while_preparing_are_fetched_before_the_start(self, workspace, requester, openai_fake, openai_provider, settings):
        settings.SOURCE_ALLOWED_INTERNAL_HOSTS = ["localhost"]
        settings.SOURCE_FETCH_TIMEOUT = 2
        job = submit(workspace, requester)
        job = services.job_mark_preparing(job=job)
        services.job_edit(job=job, actor=requester, sources=[SourceSpec(title="Note", text=SOURCE_TEXT), SourceSpec(url="http://localhost:9/gone")])
        job = advance(job, openai_provider)
        assert job.status == "running"
        event = JobEvent.objects.get(job=job, action="sources_partially_failed")
        assert event.details["failed"][0]["sid"] == "S2"

    def test_a_retried_source_error_fetches_the_failed_urls_again(self, workspace, requester, openai_fake, openai_provider, settings):
        settings.SOURCE_ALLOWED_INTERNAL_HOSTS = ["localhost"]
        settings.SOURCE_FETCH_TIMEOUT = 2
        job = advance(submit(workspace, requester, sources=[SourceSpec(url="http://localhost:9/down")]), openai_provider)
        assert job.failure_class == "source_error"
        item = job.source_manifest.entries.get().item
        assert item.status == "failed" and item.error
        job = services.job_retry(job=job, actor=requester)
        fresh = job.source_manifest.entries.get().item
        assert fresh.pk != item.pk and fresh.status == "pending" and fresh.url == item.url
        assert job.current_attempt.manifest == job.source_manifest
        item.refresh_from_db()
        assert item.status == "failed"  # other jobs' manifests may share it: left as it was


def test_only_a_transient_source_error_is_retryable(workspace, requester, openai_fake, openai_provider, settings):
    settings.SOURCE_ALLOWED_INTERNAL_HOSTS = ["localhost"]
    settings.SOURCE_FETCH_TIMEOUT = 2
    # connection refused: transient, worth retrying later
    down = advance(submit(workspace, requester, sources=[SourceSpec(url="http://localhost:9/down")]), openai_provider)
    assert down.failure_class == "source_error" and down.retryable
    # a name that does not exist: the same input would fail the same way
    settings.SOURCE_ALLOWED_INTERNAL_HOSTS = []
    job = submit(workspace, requester, sources=[SourceSpec(url="http://example.invalid/report")])
    job = advance(job, openai_provider)
    assert job.failure_class == "source_error" and not job.retryable
    with pytest.raises(services.NotRetryable):
        services.job_retry(job=job, actor=requester)


class TestReviewedFailureModes:
    """Defects found in review: each test fails on the code before the fix."""

    def test_an_unexpected_error_backs_off_and_the_third_fails_the_job(self, workspace, requester, settings):
        settings.CREATE_RECONCILE_SECONDS = 0  # the failed create may have gone out: reconciled at once here
        class Broken:
            name = "broken"

            def create(self, request):
                raise RuntimeError("disk full")

        job = submit(workspace, requester)
        for round_ in range(1, 4):
            ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now())
            with pytest.raises(RuntimeError):
                step.job_advance(job_id=job.pk, provider=Broken())
            job.refresh_from_db()
            assert job.lease_token == ""  # never left leased
            if round_ < 3:
                assert job.status == "preparing" and job.next_check_at > timezone.now() + dt.timedelta(seconds=20)
        assert job.status == "failed" and job.failure_class == "unknown"
        assert "disk full" in job.failure_message
        assert actions(job).count("worker_error") == 3

    def test_a_call_another_worker_may_still_be_making_is_not_repeated(self, workspace, requester, openai_fake, openai_provider):
        job = submit(workspace, requester)
        job = services.job_mark_preparing(job=job)
        # worker A recorded its call a moment ago and is waiting on the provider
        ProviderCall.objects.create(job=job, attempt=job.current_attempt, provider="openai", model="gpt-5.2")
        job = advance(job, openai_provider)  # worker B gets the job
        assert openai_fake.count(CREATE) == 0
        assert job.status == "preparing" and job.next_check_at > timezone.now() + dt.timedelta(seconds=20)
        assert ProviderCall.objects.get(job=job).status == "unconfirmed"

    def test_the_request_sent_is_the_request_the_job_holds(self, workspace, requester):
        """Once the provider call begins the request is locked: an edit racing it is refused."""
        from jobs.providers.local import LocalProvider

        seen = {}

        class EditingMidCall(LocalProvider):
            def create(self, request):
                job = ReportJob.objects.get(public_id=request.job_id)
                with pytest.raises(services.InvalidTransition):
                    services.job_edit(job=job, actor=requester, topic="Something else entirely")
                seen["topic"] = request.topic
                return super().create(request)

        job = submit(workspace, requester)
        job = advance(job, EditingMidCall(seconds=0))
        assert job.status == "running" and seen["topic"] == job.topic == "Battery recycling capacity"

    def test_a_response_that_completed_is_stored_even_past_the_runtime_limit(self, workspace, requester, openai_fake, openai_provider):
        openai_fake.script_next(Script(statuses=("queued", "completed")))
        job = advance(submit(workspace, requester, max_runtime_minutes=5), openai_provider)
        JobAttempt.objects.filter(pk=job.current_attempt_id).update(started_at=timezone.now() - dt.timedelta(minutes=6))
        job = advance(job, openai_provider)
        assert job.status == "needs_review" and openai_fake.count(CANCEL) == 0

    def test_a_failure_for_an_attempt_the_job_has_left_is_ignored(self, workspace, requester):
        job = submit(workspace, requester)
        old_attempt = job.current_attempt
        job = services.job_fail(job=job, failure_class="provider_error", message="first")
        job = services.job_retry(job=job, actor=requester)
        assert services.job_fail(job=job, failure_class="timeout", message="stale", attempt=old_attempt) is None
        job.refresh_from_db()
        assert job.status == "queued"

    def test_a_retry_wait_is_not_cut_short_by_a_webhook_style_wake(self, workspace, requester, openai_fake, openai_provider):
        openai_fake.script_next(Script.failed(code="server_error"), Script(statuses=("completed",)))
        job = advance(submit(workspace, requester), openai_provider, times=3)
        assert "provider_retry_scheduled" in actions(job) and job.next_check_at > timezone.now()
        step.job_advance(job_id=job.pk, provider=openai_provider)  # woken early
        assert openai_fake.count(CREATE) == 1
