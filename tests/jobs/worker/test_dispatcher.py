"""The dispatcher, the sweeps, and real worker processes (django-q2 qcluster) running jobs —
including one killed mid-run and restarted."""

import datetime as dt

import pytest
from django.utils import timezone

from jobs import services
from jobs.worker import dispatcher, step
from jobs.worker.lease import STALE_SECONDS, dispatcher_is_alive
from jobs.worker.lease import dispatcher_lease_acquire as dispatcher_acquire
from jobs.worker.lease import dispatcher_lease_release as dispatcher_handover
from jobs.models import Artifact, JobEvent, LocalResponse, ProviderCall, ReportJob
from reportdesk.models import Role
from sources.services import SourceSpec
from tests.factories import ProviderCallFactory, ReportJobFactory, ReportTemplateFactory, WorkspaceFactory, member
from tests.fakes.responses_api import CREATE, Script
from tests.oncommit import work_callbacks
from tests.workers import wait_for


def _due_job(**fields):
    job = ReportJobFactory()
    ReportJob.objects.filter(pk=job.pk).update(**{"status": "running", "next_check_at": timezone.now() - dt.timedelta(seconds=1), **fields})
    return job


@pytest.mark.django_db
class TestDispatcher:
    def test_claims_only_due_unleased_active_jobs(self):
        due = _due_job()
        _due_job(next_check_at=timezone.now() + dt.timedelta(minutes=1))  # not yet
        _due_job(lease_token="other", lease_expires_at=timezone.now() + dt.timedelta(minutes=1))  # held
        _due_job(status="completed")  # finished
        expired_lease = _due_job(lease_token="dead", lease_expires_at=timezone.now() - dt.timedelta(seconds=5))

        token, ids = dispatcher.jobs_claim_due(limit=10)

        assert sorted(ids) == sorted([due.pk, expired_lease.pk])
        assert set(ReportJob.objects.filter(pk__in=ids).values_list("lease_token", flat=True)) == {token}
        assert dispatcher.jobs_claim_due(limit=10) == ("", [])  # nothing left to claim

    @pytest.mark.parametrize("count", [1, 50])
    def test_a_dispatch_cycle_costs_the_same_queries_whatever_the_number_of_jobs(self, count, django_assert_num_queries):
        for _ in range(count):
            _due_job()
        enqueued = []
        with django_assert_num_queries(3):
            dispatcher.dispatch_due(enqueue=lambda job_ids, token: enqueued.append(job_ids), limit=100, batch=20)
        assert sorted(sum(enqueued, [])) == sorted(ReportJob.objects.values_list("pk", flat=True))
        assert [len(batch) for batch in enqueued] == {1: [1], 50: [20, 20, 10]}[count]

    def test_advance_does_nothing_while_another_worker_holds_the_job(self):
        job = _due_job(status="queued", lease_token="someone", lease_expires_at=timezone.now() + dt.timedelta(minutes=1))
        step.job_advance(job_id=job.pk)
        job.refresh_from_db()
        assert job.status == "queued" and job.lease_token == "someone"

    @staticmethod
    def _checks(until: float, first: float = 6.7, watched: bool = False) -> list[float]:
        """The ages at which a response is checked, from its first check (at `first`) on."""
        age, checks = first, []
        while age < until:
            checks.append(round(age, 2))
            age += step.poll_delay(age=age, watched=watched)
        return checks + [round(age, 2)]

    def test_a_response_followed_by_its_stream_is_checked_three_times_in_its_first_minute(self, settings):
        settings.POLL_FIRST_SECONDS, settings.POLL_STREAMED_SECONDS, settings.POLL_FAST_SECONDS = 6.7, 20, 60
        settings.POLL_MAX_SECONDS, settings.POLL_JITTER = 60, 0
        first = step.poll_delay(age=0, watched=True)
        assert first == 20
        # 4 checks for a 2-minute response, and the stream itself: 5 retrieves, not 10.
        assert self._checks(until=120, first=first, watched=True) == [20, 40, 60, 120]

    def test_a_response_is_checked_every_few_seconds_in_its_first_minute_then_every_minute(self, settings):
        settings.POLL_FIRST_SECONDS, settings.POLL_FAST_SECONDS, settings.POLL_MAX_SECONDS, settings.POLL_JITTER = 6.7, 60, 60, 0
        checks = self._checks(until=120)
        assert checks == [6.7, 13.4, 20.1, 26.8, 33.5, 40.2, 46.9, 53.6, 60.0, 120.0]
        assert len(self._checks(until=300)) == 13  # then one a minute

    def test_late_checks_do_not_add_up_into_more_checks(self, settings):
        settings.POLL_FIRST_SECONDS, settings.POLL_FAST_SECONDS, settings.POLL_MAX_SECONDS, settings.POLL_JITTER = 6.7, 60, 60, 0.5
        for _ in range(50):
            checks = self._checks(until=120)
            assert len(checks) <= 10 and checks[-1] >= 120
            gaps = [b - a for a, b in zip(checks, checks[1:-1])]
            assert max(gaps) <= 6.7 * 1.5 + 0.01

    def test_an_early_check_skips_a_grid_point_that_is_too_close(self, settings):
        settings.POLL_FIRST_SECONDS, settings.POLL_FAST_SECONDS, settings.POLL_MAX_SECONDS, settings.POLL_JITTER = 10, 60, 60, 0
        assert step.poll_delay(age=9) == pytest.approx(11)  # a webhook made it due just before 10 s
        assert step.poll_delay(age=10) == pytest.approx(10)
        assert step.poll_delay(age=200) == pytest.approx(40)
        assert step.poll_delay(age=100) == pytest.approx(20)  # checked late: the next minute's point still holds

    def test_jitter_only_delays_and_stays_within_bounds(self, settings):
        settings.POLL_FIRST_SECONDS, settings.POLL_JITTER = 10, 0.2
        delays = {round(step.poll_delay(age=10), 3) for _ in range(50)}
        assert len(delays) > 1 and all(10 <= d <= 12 for d in delays)

    def test_tick_loop_dispatches_and_beats(self, settings):
        settings.TICK_BATCH = 10
        jobs = [_due_job() for _ in range(3)]
        enqueued = []
        dispatcher.tick_loop(enqueue=lambda job_ids, token: enqueued.extend(job_ids), seconds=0, sleep=lambda s: None)
        assert sorted(enqueued) == sorted(j.pk for j in jobs)
        assert dispatcher_is_alive()

    def test_only_one_dispatcher_runs_at_a_time(self):
        assert dispatcher_acquire(token="first")
        enqueued = []
        # a second dispatcher (the watchdog schedule, say) finds the lease held and leaves at once
        assert dispatcher.tick_loop(enqueue=lambda *a: enqueued.append(a), seconds=30, token="second") == 0
        assert enqueued == []
        # the first hands over at the end of its run; then the next one may take it
        assert dispatcher_handover(token="first")
        assert not dispatcher_handover(token="first")
        assert dispatcher_acquire(token="second")

    def test_a_dead_dispatchers_lease_goes_stale(self):
        long_ago = timezone.now() - dt.timedelta(seconds=STALE_SECONDS + 1)
        assert dispatcher_acquire(token="dead", now=long_ago)
        assert not dispatcher_is_alive()
        assert dispatcher_acquire(token="successor")
        assert dispatcher_is_alive()


@pytest.mark.django_db
class TestSweeps:
    def test_recovery_makes_jobs_with_expired_leases_due_again(self):
        job = _due_job(lease_token="dead", lease_expires_at=timezone.now() - dt.timedelta(seconds=1), next_check_at=timezone.now() + dt.timedelta(hours=1))
        assert dispatcher.recovery_sweep() >= 1
        job.refresh_from_db()
        assert job.lease_token == "" and job.next_check_at <= timezone.now()

    def test_a_call_left_without_response_id_is_marked_lost_and_created_again(self, settings):
        workspace = WorkspaceFactory()
        requester = member(workspace, Role.REQUESTER)
        job = services.job_submit(
            workspace=workspace, requested_by=requester, template=ReportTemplateFactory(),
            topic="Recycling", sources=[SourceSpec(text="Recycling grew 40% in 2025.")],
        )
        job = services.job_mark_preparing(job=job)
        # A worker recorded the call, then died before the provider answered.
        ProviderCallFactory(attempt=job.current_attempt, job=job, provider_response_id=None, status="", provider="local")
        # ... longer ago than a lease and the reconcile window, and no webhook named a response.
        ProviderCall.objects.update(created_at=timezone.now() - dt.timedelta(seconds=settings.CREATE_RECONCILE_SECONDS + 5))
        ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now() + dt.timedelta(hours=1))

        dispatcher.recovery_sweep()
        step.job_advance(job_id=job.pk)

        job.refresh_from_db()
        assert job.status == "running"
        lost, fresh = ProviderCall.objects.filter(job=job).order_by("id")
        assert lost.status == "lost" and lost.provider_response_id is None
        assert fresh.provider_response_id == job.provider_response_id
        assert JobEvent.objects.filter(job=job, action="provider_call_lost").count() == 1

    def test_expiry_sweep_expires_overdue_work_and_unreviewed_drafts(self):
        past = timezone.now() - dt.timedelta(minutes=1)
        queued = _due_job(status="queued", deadline=past)
        draft = _due_job(status="needs_review", deadline=past)
        on_time = _due_job(status="running", deadline=timezone.now() + dt.timedelta(hours=1))
        assert dispatcher.expiry_sweep() == 2
        for job, status in ((queued, "expired"), (draft, "expired"), (on_time, "running")):
            job.refresh_from_db()
            assert job.status == status
        event = JobEvent.objects.get(job=draft)
        assert event.actor_kind == "scheduler" and "deadline" in event.reason


@pytest.mark.django_db
def test_schedules_and_role_groups_exist_after_migrate():
    from django.contrib.auth.models import Group
    from django_q.models import Schedule

    schedule = Schedule.objects.get(name="reportdesk: dispatch due jobs")
    assert schedule.func == "jobs.tasks.tick" and schedule.schedule_type == Schedule.MINUTES
    assert set(Group.objects.values_list("name", flat=True)) >= {"requester", "reviewer", "operator"}
    from jobs.tasks import schedules_ensure

    schedules_ensure()
    assert Schedule.objects.filter(name="reportdesk: dispatch due jobs").count() == 1


def _submit(**template_kwargs):
    workspace = WorkspaceFactory(slug="research-ops")
    requester = member(workspace, Role.REQUESTER)
    return services.job_submit(
        workspace=workspace, requested_by=requester, template=ReportTemplateFactory(**template_kwargs),
        topic="Battery recycling capacity in Europe",
        sources=[SourceSpec(title="Market note", text="European battery recycling capacity reached 410,000 tonnes a year in 2025.")],
    )


def _status(job):
    job.refresh_from_db()
    return job.status


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_takes_a_job_to_needs_review(worker):
    job = _submit()
    process = worker()
    wait_for(lambda: _status(job) == "needs_review", timeout=45, message=lambda: f"needs_review ({job.status}); worker log:\n{process.log()}")
    assert [e.action for e in job.events.order_by("id")] == ["submitted", "preparing", "started", "draft_ready"]
    assert Artifact.objects.filter(job=job).count() == 6
    assert ProviderCall.objects.get(job=job).polls >= 1
    # early polls: checked within seconds of starting, not at the scheduler's next minute
    started = job.events.get(action="started").at
    assert (job.finished_at - started).total_seconds() < 15


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_follows_a_young_responses_stream_and_stores_it_at_its_end(worker, openai_fake):
    """No webhook, and the first check 30 s away: the worker process that created the
    response follows its stream, whose end makes the job due and a worker stores the draft."""
    openai_fake.script_next(Script(advance="time", step_seconds=1.5))  # queued, in progress, completed at 3 s
    env = {"REPORT_PROVIDER": "openai", "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": openai_fake.base_url,
           "POLL_STREAMED_SECONDS": "30", "POLL_FAST_SECONDS": "60"}
    job = _submit()

    process = worker(**env)
    wait_for(lambda: _status(job) == "needs_review", timeout=25, message=lambda: f"needs_review ({job.status}); worker log:\n{process.log()}")

    call = ProviderCall.objects.get(job=job)
    assert call.watched and call.polls == 1  # the one poll the stream's end asked for
    started = job.events.get(action="started").at
    assert (job.finished_at - started).total_seconds() < 10
    assert job.events.filter(action="provider_notified", details__via="stream").exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_run_is_replaced_and_the_job_finishes_once(worker, openai_fake):
    """The worker process (and its children) is SIGKILLed while the job is running. A new
    worker finishes it: one provider create, one set of artifacts, one event per step."""
    openai_fake.script_next(Script(statuses=("queued",) + ("in_progress",) * 8 + ("completed",)))
    env = {"REPORT_PROVIDER": "openai", "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": openai_fake.base_url, "LEASE_SECONDS": "3"}
    job = _submit()

    first = worker(**env)
    wait_for(lambda: _status(job) == "running" and openai_fake.count("retrieve") >= 2, timeout=45,
             message=lambda: f"running and polled; worker log:\n{first.log()}")
    first.kill()
    polls_at_crash = openai_fake.count("retrieve")
    assert _status(job) == "running"

    second = worker(**env)
    wait_for(lambda: _status(job) == "needs_review", timeout=60, message=lambda: f"needs_review after restart ({job.status}); log:\n{second.log()}")

    assert openai_fake.count(CREATE) == 1
    assert openai_fake.count("retrieve") > polls_at_crash  # the new worker did the rest
    assert ProviderCall.objects.filter(job=job).count() == 1
    assert Artifact.objects.filter(job=job).count() == 6
    actions = [e.action for e in job.events.order_by("id")]
    assert actions == ["submitted", "preparing", "started", "draft_ready"]
    assert not LocalResponse.objects.exists()



@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_on_the_redis_broker_runs_a_job(worker):
    import os

    redis_url = os.environ.get("REDIS_TEST_URL")
    if not redis_url:
        pytest.skip("REDIS_TEST_URL is not set (make test starts Redis and sets it)")
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    job = _submit()
    process = worker(REDIS_URL=redis_url)
    # the job was enqueued on the ORM broker by this test process; the Redis cluster's
    # dispatcher finds it by its next_check_at all the same
    wait_for(lambda: _status(job) == "needs_review", timeout=60, message=lambda: f"needs_review ({job.status}); log:\n{process.log()}")
    assert [e.action for e in job.events.order_by("id")] == ["submitted", "preparing", "started", "draft_ready"]


@pytest.mark.django_db
class TestRobustness:
    def test_a_failing_cycle_does_not_stop_the_dispatcher(self):
        _due_job()
        attempts = []

        def broker_down(job_id, token):
            attempts.append(job_id)
            raise ConnectionError("broker unreachable")

        # two cycles: both fail at the broker, neither ends the dispatcher's run
        result = dispatcher.tick_loop(enqueue=broker_down, seconds=0.05, interval=0.01)
        assert result == 0 and len(attempts) >= 1
        assert dispatcher_is_alive()

    def test_the_orphan_sweep_cancels_responses_of_stopped_jobs(self):
        canceled = _due_job(status="canceled")
        running = _due_job()
        orphan = ProviderCallFactory(attempt=canceled.current_attempt, job=canceled, status="in_progress")
        ProviderCallFactory(attempt=running.current_attempt, job=running, status="in_progress")
        sent = []
        assert dispatcher.orphan_sweep(enqueue_cancel=sent.append) == 1
        assert sent == [orphan.provider_response_id]

    def test_the_orphan_sweep_cancels_live_duplicates_and_hands_out_webhooks_to_match(self):
        from jobs.models import WebhookDelivery

        running = _due_job()
        duplicate = ProviderCallFactory(attempt=running.current_attempt, job=running, status="in_progress", orphan=True)
        ProviderCallFactory(attempt=running.current_attempt, job=running, status="in_progress")  # the one it follows
        ProviderCallFactory(attempt=running.current_attempt, job=running, status="cancelled", orphan=True)  # done
        WebhookDelivery.objects.create(webhook_id="wh_1", event_id="evt_1", event_type="response.completed", response_id="resp_x", needs_match=True)
        WebhookDelivery.objects.create(webhook_id="wh_2", event_id="evt_2", event_type="response.completed", response_id="resp_y")
        canceled, matched = [], []
        assert dispatcher.orphan_sweep(enqueue_cancel=canceled.append, enqueue_match=matched.append) == 2
        assert canceled == [duplicate.provider_response_id] and matched == ["resp_x"]

    def test_cancel_reaches_every_live_response_of_the_job(self, django_capture_on_commit_callbacks):
        job = _due_job(status="preparing")  # a create was in flight: the response exists, unattached
        ProviderCallFactory(attempt=job.current_attempt, job=job, status="queued", provider_response_id="resp_live")
        ProviderCallFactory(attempt=job.current_attempt, job=job, status="completed", provider_response_id="resp_done")
        operator = member(job.workspace, Role.OPERATOR)
        with django_capture_on_commit_callbacks() as callbacks:
            services.job_cancel(job=job, actor=operator, reason="Not needed")
        assert len(work_callbacks(callbacks)) == 1


def _watch_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name == "dispatcher-watch" and t.is_alive()]


@pytest.mark.django_db
def test_a_task_run_inline_starts_no_dispatcher_watch_in_the_calling_process():
    """django-q2's sync mode sends post_spawn from this process for every task: a watch per
    task would pile up threads that outlive their caller."""
    from django_q.tasks import async_task

    before = len(_watch_threads())
    for _ in range(3):
        async_task("math.floor", 1.5, sync=True)

    assert len(_watch_threads()) == before


def test_a_process_runs_one_dispatcher_watch_however_often_it_is_started():
    import threading

    stop = threading.Event()
    first = dispatcher.dispatcher_watch(stop=stop)
    try:
        assert dispatcher.dispatcher_watch() is first
        assert len(_watch_threads()) == 1
    finally:
        stop.set()
        first.join(timeout=5)
    assert not first.is_alive()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_that_stops_hands_its_young_responses_back_to_the_grid(worker, openai_fake):
    """SIGTERM to a real cluster while its worker follows a young response's stream: before
    the process exits, the response goes back to the grid's checks (6.7 s apart), instead of
    waiting for the stream's 30 s safety net."""
    openai_fake.script_next(Script(statuses=("queued",) + ("in_progress",) * 50))
    env = {"REPORT_PROVIDER": "openai", "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": openai_fake.base_url,
           "POLL_FIRST_SECONDS": "6.7", "POLL_STREAMED_SECONDS": "30", "POLL_FAST_SECONDS": "60", "POLL_JITTER": "0"}
    job = _submit()

    process = worker(**env)
    wait_for(lambda: _status(job) == "running" and openai_fake.open_streams == 1, timeout=25,
             message=lambda: f"running and followed; worker log:\n{process.log()}")
    call = ProviderCall.objects.get(job=job)
    job.refresh_from_db()
    assert call.watched and (job.next_check_at - timezone.now()).total_seconds() > 20

    process.terminate()
    wait_for(lambda: process.running() == 0, timeout=20, message=lambda: f"the cluster to stop; log:\n{process.log()}")

    call.refresh_from_db()
    job.refresh_from_db()
    assert not call.watched, process.log()
    assert (job.next_check_at - call.created_at).total_seconds() < 15  # the grid's 6.7 or 13.4 s, not 30
    assert openai_fake.open_streams == 0
    assert "Traceback" not in process.log(), process.log()
