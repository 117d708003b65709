"""The circuit breaker: a quota or credential failure holds provider work for every job
instead of failing each one, shows operators a banner, notifies them, and ends when a probe
passes or an operator clears it; an organisation-wide 429 makes every job wait together."""

import datetime as dt

import pytest
from django_q.brokers import get_broker
from django_q.signing import SignedPackage
from django.utils import timezone

from jobs import breaker
from jobs.models import ProviderBreaker, ReportJob
from reportdesk.errors import PermissionDenied
from reportdesk.models import Role
from sources.services import SourceSpec
from tests.factories import ReportTemplateFactory, member
from tests.fakes.responses_api import CREATE, RETRIEVE, Fault, Script
from tests.jobs.worker.test_step import advance

pytestmark = pytest.mark.django_db






def submit(workspace, requester):
    from jobs import services

    template = ReportTemplateFactory(slug="brief", model="gpt-5.2")
    return services.job_submit(workspace=workspace, requested_by=requester, template=template, topic="Recycling",
                               sources=[SourceSpec(title="Note", text="Capacity grew in 2025.")])


def queued_tasks() -> list[tuple[str, tuple]]:
    """(dotted path, args) of the tasks waiting in django-q2's broker, as a worker reads them."""
    broker, tasks = get_broker(), []
    while (messages := broker.dequeue()):
        for ack_id, payload in messages:
            task = SignedPackage.loads(payload)
            tasks.append((task["func"], tuple(task["args"])))
            broker.acknowledge(ack_id)
    return tasks


def probe_due():
    ProviderBreaker.objects.filter(scope="installation").update(next_probe_at=timezone.now() - dt.timedelta(seconds=1))


def test_a_quota_failure_holds_every_job_until_a_probe_passes(workspace, requester, openai_fake, openai_provider, django_capture_on_commit_callbacks, client):
    openai_fake.inject(CREATE, Fault.insufficient_quota())
    first = submit(workspace, requester)

    with django_capture_on_commit_callbacks(execute=True):
        first = advance(first, openai_provider)

    # held, not failed; the breaker is open and an alert to the operators is queued
    assert first.status == "preparing" and first.failure_class == ""
    assert first.next_check_at > timezone.now()
    hold = ProviderBreaker.objects.get(scope="installation")
    assert hold.is_open and hold.code == "insufficient_quota"
    [alert] = [args for func, args in queued_tasks() if func == "notifications.tasks.operators_alert"]
    assert alert[0] == "provider_refused" and "insufficient_quota" in alert[1]

    # a job submitted meanwhile stays queued, and nothing more is sent
    second = advance(submit(workspace, requester), openai_provider)
    assert second.status == "queued" and openai_fake.count(CREATE) == 1

    # operators see the banner
    client.force_login(member(workspace, Role.OPERATOR))
    page = client.get("/admin/").content.decode()
    assert 'id="provider-hold-banner"' in page and "insufficient_quota" in page

    # a probe fails while the quota is still out: still on hold, probing later
    openai_fake.inject(CREATE, Fault.insufficient_quota())
    probe_due()
    second = advance(second, openai_provider)
    assert second.status == "queued" and ProviderBreaker.objects.get().is_open
    assert ProviderBreaker.objects.get().probes == 1

    # the next probe passes: the hold ends and both jobs go on
    probe_due()
    second = advance(second, openai_provider)
    first = advance(first, openai_provider)
    assert not ProviderBreaker.objects.get().is_open and ProviderBreaker.objects.get().cleared_how == "a probe passed"
    assert second.status == "running" and first.status == "running"
    probes = [r.body for r in openai_fake.requests_to(CREATE) if r.body.get("store") is False]
    assert len(probes) == 2 and probes[0]["max_output_tokens"] == 16
    assert 'id="provider-hold-banner"' not in client.get("/admin/").content.decode()


def test_an_invalid_key_on_a_poll_holds_the_job_and_an_operator_clears_it(workspace, requester, openai_fake, openai_provider):
    job = advance(submit(workspace, requester), openai_provider)
    assert job.status == "running"
    openai_fake.inject(RETRIEVE, Fault.unauthorized())

    job = advance(job, openai_provider)

    assert job.status == "running" and ProviderBreaker.objects.get().code == "invalid_api_key"
    with pytest.raises(PermissionDenied):
        breaker.breaker_clear(scope="installation", actor=requester)
    operator = member(workspace, Role.OPERATOR)
    assert breaker.breaker_clear(scope="installation", actor=operator) is True
    hold = ProviderBreaker.objects.get()
    assert not hold.is_open and hold.cleared_by == operator
    job = advance(job, openai_provider, times=2)
    assert job.status == "needs_review"


def test_operators_clear_the_hold_from_the_admin(workspace, client, requester):
    breaker.breaker_trip(error=breaker.ProviderError("Incorrect API key provided.", transient=False, code="invalid_api_key", status_code=401))
    client.force_login(member(workspace, Role.OPERATOR))

    response = client.post("/admin/jobs/providerbreaker/", {"action": "clear_hold", "_selected_action": ["installation"]}, follow=True)

    assert "Installation: provider calls resume." in response.content.decode()
    assert not ProviderBreaker.objects.get().is_open
    client.force_login(requester)
    assert client.get("/admin/jobs/providerbreaker/").status_code == 403


def test_an_organisation_wide_rate_limit_makes_every_job_wait(workspace, requester, openai_fake, openai_provider):
    openai_fake.inject(CREATE, Fault.rate_limit(retry_after=30))
    first = advance(submit(workspace, requester), openai_provider)
    assert first.status == "preparing" and "provider_retry_scheduled" in set(first.events.values_list("action", flat=True))

    second = submit(workspace, requester)
    second = advance(second, openai_provider)

    # the second job did not try on its own: it waits for the shared backoff
    assert second.status == "queued" and openai_fake.count(CREATE) == 1
    until = ProviderBreaker.objects.get().backoff_until
    assert until - timezone.now() > dt.timedelta(seconds=25)
    assert abs(ReportJob.objects.get(pk=second.pk).next_check_at - until) < dt.timedelta(seconds=1)


def _breaker_reads(queries) -> int:
    return sum('FROM "jobs_providerbreaker"' in q["sql"] for q in queries)


def test_a_batch_reads_the_breakers_once_for_all_its_steps(workspace, requester, openai_fake, openai_provider, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from jobs.worker import batch, dispatcher

    settings.POLL_DB_THREADS = 0  # the steps on this test's connection, where they are counted
    openai_fake.default_script = Script.running()
    for _ in range(3):
        advance(submit(workspace, requester), openai_provider)
    ReportJob.objects.update(next_check_at=timezone.now())
    token, ids = dispatcher.jobs_claim_due(limit=3)

    with CaptureQueriesContext(connection) as captured:
        batch.batch_advance(job_ids=ids, lease_token=token, provider=openai_provider)

    assert _breaker_reads(captured.captured_queries) == 1
    assert openai_fake.count(RETRIEVE) == 3


def test_under_a_hold_a_batch_asks_the_provider_nothing_and_holds_its_jobs(workspace, requester, openai_fake, openai_provider, settings):
    from jobs.worker import batch, dispatcher

    settings.POLL_DB_THREADS = 0
    openai_fake.default_script = Script.running()
    job = advance(submit(workspace, requester), openai_provider)
    breaker.breaker_trip(error=breaker.ProviderError("Quota exceeded.", transient=False, code="insufficient_quota", status_code=429))
    ReportJob.objects.update(next_check_at=timezone.now())
    token, ids = dispatcher.jobs_claim_due(limit=1)
    retrieves = openai_fake.count(RETRIEVE)

    batch.batch_advance(job_ids=ids, lease_token=token, provider=openai_provider)

    assert openai_fake.count(RETRIEVE) == retrieves  # nothing asked of a provider that refuses the key
    job.refresh_from_db()
    hold = ProviderBreaker.objects.get()
    assert job.status == "running" and job.next_check_at == hold.next_probe_at


def test_a_rate_limit_met_by_one_step_of_a_batch_holds_the_steps_after_it(workspace, requester, openai_fake, openai_provider, settings):
    """The batch's snapshot showed no hold; the first create meets a 429: the jobs after it in
    the same batch wait for the shared backoff instead of each sending its own create."""
    from jobs.worker import batch, dispatcher

    settings.POLL_DB_THREADS = 0
    jobs = [submit(workspace, requester) for _ in range(3)]
    openai_fake.inject(CREATE, Fault.rate_limit(retry_after=30))
    token, ids = dispatcher.jobs_claim_due(limit=3)

    batch.batch_advance(job_ids=sorted(ids), lease_token=token, provider=openai_provider)

    assert openai_fake.count(CREATE) == 1
    until = ProviderBreaker.objects.get().backoff_until
    for job in jobs[1:]:
        job.refresh_from_db()
        assert job.status in ("queued", "preparing") and abs(job.next_check_at - until) < dt.timedelta(seconds=1)
