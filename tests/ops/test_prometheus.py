"""/metrics: Prometheus' text format behind METRICS_TOKEN, read back with prometheus_client's
own parser, its series following a job through the real worker step and a review."""

import datetime as dt

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from jobs import services
from jobs.worker import step
from jobs.models import LocalResponse, ReportJob, WorkerHeartbeat
from reportdesk.models import Role
from reviews.services import review_decide
from sources.services import SourceSpec
from tests.factories import ReportTemplateFactory, WorkspaceFactory, member

pytestmark = pytest.mark.django_db

TOKEN = "scrape-token-for-tests"
SOURCE = "Recycling capacity reached 410,000 tonnes a year in 2025, most of it mechanical pre-treatment."


@pytest.fixture(autouse=True)
def metrics_on(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape(client) -> dict:
    """{(sample name, frozenset(labels)): value} of one scrape."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def submit(workspace, requester, topic="Battery recycling"):
    template = ReportTemplateFactory(slug="market-scan-metrics", review_required=True, model="local-extractive")
    return services.job_submit(
        workspace=workspace, requested_by=requester, template=template, topic=topic, audience="Board",
        sources=[SourceSpec(title="Market note", text=SOURCE)],
    )


def advance(job):
    ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now())
    step.job_advance(job_id=job.pk)
    job.refresh_from_db()
    return job


def test_off_without_a_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Token {TOKEN}", f"Basic {TOKEN}"])
def test_refuses_a_missing_or_wrong_token(client, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get("/metrics", **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"reportdesk_" not in response.content


def test_series_move_as_a_job_moves(client):
    workspace = WorkspaceFactory(slug="research-ops")
    requester = member(workspace, Role.REQUESTER)
    reviewer = member(workspace, Role.REVIEWER)

    before = scrape(client)
    for status in ("queued", "running", "needs_review", "completed", "failed"):
        assert ("reportdesk_jobs", frozenset({("status", status)})) in before
    for name in (
        "reportdesk_jobs_due", "reportdesk_oldest_due_job_lateness_seconds", "reportdesk_queue_depth",
        "reportdesk_dispatcher_heartbeat_age_seconds", "reportdesk_oldest_review_wait_seconds",
        "reportdesk_provider_retries_total", "reportdesk_provider_calls_lost_total",
        "reportdesk_draft_lag_seconds_count", "reportdesk_review_wait_seconds_count",
    ):
        assert (name, frozenset()) in before, name
    assert value(before, "reportdesk_dispatcher_heartbeat_age_seconds") == float("inf")
    assert value(before, "reportdesk_provider_notifications_total", via="webhook") == 0
    assert value(before, "reportdesk_provider_notifications_total", via="stream") == 0

    # given a submitted job, due now
    job = submit(workspace, requester)
    ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now() - dt.timedelta(seconds=30))
    queued = scrape(client)
    assert value(queued, "reportdesk_jobs", status="queued") == 1
    assert value(queued, "reportdesk_jobs_due") == 1
    assert value(queued, "reportdesk_oldest_due_job_lateness_seconds") >= 30

    # when the worker starts it at the (local) provider
    job = advance(job)
    assert job.status == "running"
    running = scrape(client)
    assert value(running, "reportdesk_jobs", status="queued") == 0
    assert value(running, "reportdesk_jobs", status="running") == 1
    assert value(running, "reportdesk_jobs_due") == 0
    assert value(running, "reportdesk_oldest_due_job_lateness_seconds") == 0
    assert sum(v for (name, labels), v in running.items() if name == "reportdesk_provider_calls_total") == 1

    # and follows it to a draft
    job = advance(job)
    assert job.status == "needs_review"
    drafted = scrape(client)
    assert value(drafted, "reportdesk_jobs", status="needs_review") == 1
    assert value(drafted, "reportdesk_provider_calls_total", provider="local", status="completed") == 1
    assert value(drafted, "reportdesk_provider_polls_total", provider="local") == 1
    assert ("reportdesk_cost_usd_total", frozenset({("provider", "local"), ("model", "local-extractive")})) in drafted
    assert value(drafted, "reportdesk_draft_lag_seconds_count") == 1
    assert value(drafted, "reportdesk_draft_lag_seconds_bucket", le="+Inf") == 1
    assert value(drafted, "reportdesk_draft_lag_seconds_bucket", le="900.0") == 1
    assert value(drafted, "reportdesk_review_wait_seconds_count") == 0
    assert value(drafted, "reportdesk_oldest_review_wait_seconds") >= 0

    # then a reviewer decides, and another job fails
    review_decide(job=job, reviewer=reviewer, decision="reject", comment="Not for the board.")
    other = submit(workspace, requester, topic="Grid storage")
    services.job_fail(job=other, failure_class="source_error", message="No source could be read.")
    WorkerHeartbeat.objects.create(name="dispatcher", owner="abc", seen_at=timezone.now() - dt.timedelta(seconds=12))
    decided = scrape(client)
    assert value(decided, "reportdesk_jobs", status="rejected") == 1
    assert value(decided, "reportdesk_review_wait_seconds_count") == 1
    assert value(decided, "reportdesk_review_wait_seconds_bucket", le="+Inf") == 1
    assert value(decided, "reportdesk_oldest_review_wait_seconds") == 0
    assert value(decided, "reportdesk_job_failures_total", failure_class="source_error") == 1
    assert 12 <= value(decided, "reportdesk_dispatcher_heartbeat_age_seconds") < 60
    # the queue depth is django-q2's own: the worker's step enqueued the dispatcher
    assert value(decided, "reportdesk_queue_depth") >= 0


def test_a_scrape_costs_a_fixed_number_of_queries(client, django_assert_num_queries):
    workspace = WorkspaceFactory(slug="research-ops")
    requester = member(workspace, Role.REQUESTER)
    submit(workspace, requester)
    with django_assert_num_queries(QUERIES):
        scrape(client)
    for n in range(4):
        advance(submit(workspace, requester, topic=f"Topic {n}"))
    with django_assert_num_queries(QUERIES):
        scrape(client)


# jobs by status, due jobs, drafts awaiting review, django-q2's queue (ORM broker), the
# dispatcher's heartbeat, provider calls, events, draft lag, review wait
QUERIES = 9


def test_jobs_woken_by_a_webhook_or_by_a_stream_are_counted_apart(client):
    from jobs import services
    from jobs.events import WORKER
    from tests.factories import ProviderCallFactory, ReportJobFactory

    for actor, response_id in ((None, "resp_hooked"), (WORKER, "resp_streamed")):
        job = ReportJobFactory(status="running", provider_response_id=response_id)
        call = ProviderCallFactory(job=job, attempt=job.current_attempt, provider_response_id=response_id, status="in_progress")
        kwargs = {"actor": actor} if actor else {}
        assert services.job_wake(call=call, details={"response_id": response_id}, **kwargs)
    samples = scrape(client)
    assert value(samples, "reportdesk_provider_notifications_total", via="webhook") == 1
    assert value(samples, "reportdesk_provider_notifications_total", via="stream") == 1


def test_a_call_in_flight_is_a_gauge_and_no_counter_goes_down_when_it_ends(client, settings):
    settings.LOCAL_PROVIDER_SECONDS = 600  # the response is still running at the first scrape
    workspace = WorkspaceFactory(slug="research-ops")
    job = advance(submit(workspace, member(workspace, Role.REQUESTER)))
    assert job.status == "running"
    running = scrape(client)
    assert value(running, "reportdesk_provider_calls_in_flight", provider="local", status="queued") == 1
    assert sum(v for (name, _), v in running.items() if name == "reportdesk_provider_calls_total") == 0

    LocalResponse.objects.update(starts_at=timezone.now() - dt.timedelta(seconds=2), completes_at=timezone.now() - dt.timedelta(seconds=1))
    job = advance(job)
    assert job.status == "needs_review"
    drafted = scrape(client)

    assert value(drafted, "reportdesk_provider_calls_total", provider="local", status="completed") == 1
    assert not [labels for (name, labels) in drafted if name == "reportdesk_provider_calls_in_flight"]
    # Prometheus reads a counter that went down as a reset, and increase() as a new rise
    went_down = {key: v for key, v in running.items() if key[0].endswith("_total") and drafted.get(key, 0.0) < v}
    assert went_down == {}


def test_draft_lag_runs_from_the_providers_answer_so_late_polls_show(client, settings):
    settings.LOCAL_PROVIDER_SECONDS = 600
    workspace = WorkspaceFactory(slug="research-ops")
    job = advance(submit(workspace, member(workspace, Role.REQUESTER)))
    assert job.status == "running"

    # the provider finished ten minutes ago; the worker looks only now
    ended = timezone.now() - dt.timedelta(minutes=10)
    LocalResponse.objects.update(starts_at=ended - dt.timedelta(seconds=30), completes_at=ended)
    job = advance(job)
    assert job.status == "needs_review"

    samples = scrape(client)
    assert value(samples, "reportdesk_draft_lag_seconds_count") == 1
    assert value(samples, "reportdesk_draft_lag_seconds_bucket", le="300.0") == 0
    assert value(samples, "reportdesk_draft_lag_seconds_bucket", le="900.0") == 1
    assert 595 <= value(samples, "reportdesk_draft_lag_seconds_sum") <= 660
