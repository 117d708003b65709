"""The Prometheus view of reportdesk, read from the database at scrape time.

Any number of web and worker processes share the database, so every figure is computed from
it when /metrics is scraped (a custom collector), not counted in one process's memory: every
web process answers the same. A scrape costs a fixed number of queries (plus one broker
call), whatever the number of jobs. Counters (`_total`, histogram buckets) are sums over the
whole table, so they only grow; deleting jobs shows as a counter reset, which rate() handles.

docs/operations.md lists every series with its meaning; docs/prometheus-alerts.yml and
docs/grafana-dashboard.json use them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict

from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import CollectorRegistry

from jobs.worker.lease import DISPATCHER
from jobs.models import ACTIVE_STATUSES, ActorKind, CallStatus, EventAction, JobEvent, JobStatus, ProviderCall, ReportJob, WorkerHeartbeat
from reviews.models import Review

log = logging.getLogger(__name__)

# Seconds. Lag from the provider's answer to the stored draft is usually well under a minute.
DRAFT_LAG_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900)
# Seconds. A reviewer's wait runs from minutes to days.
REVIEW_WAIT_BUCKETS = (60, 300, 900, 1800, 3600, 4 * 3600, 8 * 3600, 24 * 3600, 72 * 3600, 7 * 24 * 3600)
FINAL_STEPS = ("report", "synthesize")
IN_FLIGHT_CALL_STATUSES = (*CallStatus.LIVE, CallStatus.UNCONFIRMED)
# A call given up as lost takes the status of its response if that turns up later: counted by
# its event (reportdesk_provider_calls_lost_total), never by its changing status.
UNSETTLED_CALL_STATUSES = (*IN_FLIGHT_CALL_STATUSES, CallStatus.LOST)


class ReportdeskCollector:
    def __init__(self, *, broker_queue_size=None):
        self._broker_queue_size = broker_queue_size or _broker_queue_size

    def collect(self):
        now = timezone.now()
        yield from self._jobs(now)
        yield from self._queue(now)
        yield from self._provider_calls()
        yield from self._events()
        yield self._histogram(
            "reportdesk_draft_lag_seconds",
            "From the provider's final answer to the stored draft, per attempt that produced one.",
            _draft_lags(), DRAFT_LAG_BUCKETS,
        )
        yield self._histogram(
            "reportdesk_review_wait_seconds",
            "From a draft being ready to the reviewer's decision on it.",
            _review_waits(), REVIEW_WAIT_BUCKETS,
        )

    def _jobs(self, now):
        by_status = {status: 0 for status in JobStatus.values}
        by_status.update(dict(ReportJob.objects.order_by().values_list("status").annotate(n=Count("id"))))
        jobs = GaugeMetricFamily("reportdesk_jobs", "Jobs by current status.", labels=["status"])
        for status, n in by_status.items():
            jobs.add_metric([status], n)
        yield jobs

        due = ReportJob.objects.filter(status__in=ACTIVE_STATUSES, next_check_at__lte=now).filter(
            Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
        ).aggregate(n=Count("id"), oldest=Min("next_check_at"))
        yield GaugeMetricFamily("reportdesk_jobs_due", "Jobs whose next check has come and that no worker holds.", value=due["n"])
        yield GaugeMetricFamily(
            "reportdesk_oldest_due_job_lateness_seconds",
            "How long the longest-waiting due job has been due (0 when none is).",
            value=_seconds(now - due["oldest"]) if due["oldest"] else 0.0,
        )

        waiting = ReportJob.objects.filter(status=JobStatus.NEEDS_REVIEW).aggregate(
            n=Count("id"), oldest=Min("current_attempt__finished_at")
        )
        yield GaugeMetricFamily(
            "reportdesk_oldest_review_wait_seconds",
            "How long the oldest draft awaiting review has waited (0 when none does).",
            value=_seconds(now - waiting["oldest"]) if waiting["oldest"] else 0.0,
        )

    def _queue(self, now):
        try:
            depth = float(self._broker_queue_size())
        except Exception:  # a broken broker must not take the whole scrape down
            log.exception("could not read the task queue's depth")
            depth = float("nan")
        yield GaugeMetricFamily("reportdesk_queue_depth", "Tasks waiting in django-q2's queue (NaN when the broker did not answer).", value=depth)
        seen = WorkerHeartbeat.objects.filter(name=DISPATCHER).values_list("seen_at", flat=True).first()
        # No row yet means no dispatcher has ever run: as stale as it gets, for alerting.
        yield GaugeMetricFamily(
            "reportdesk_dispatcher_heartbeat_age_seconds",
            "Seconds since the dispatcher last renewed its lease (+Inf if it never ran).",
            value=_seconds(now - seen) if seen else float("inf"),
        )

    def _provider_calls(self):
        ended: dict[tuple[str, str], int] = defaultdict(int)
        in_flight: dict[tuple[str, str], int] = {}
        polls: dict[str, int] = defaultdict(int)
        cost: dict[tuple[str, str], float] = defaultdict(float)
        for provider, status, model, n, n_polls, usd in (
            ProviderCall.objects.order_by().values_list("provider", "status", "model")
            .annotate(n=Count("id"), polls=Sum("polls"), usd=Sum("cost_usd"))
        ):
            # A counter only grows, so it counts calls once they have their last status; the
            # ones still moving from status to status are a gauge.
            if status in IN_FLIGHT_CALL_STATUSES:
                in_flight[(provider, status)] = in_flight.get((provider, status), 0) + n
            elif status not in UNSETTLED_CALL_STATUSES:
                ended[(provider, status)] += n
            polls[provider] += n_polls or 0
            cost[(provider, model)] += float(usd or 0)
        yield _counter(
            "reportdesk_provider_calls",
            "Provider responses that have ended, by provider and final status: the provider's own, and ours: "
            "'error' (the create failed), 'cancel_failed'. Lost creates are reportdesk_provider_calls_lost_total.",
            ["provider", "status"], ended,
        )
        gauge = GaugeMetricFamily(
            "reportdesk_provider_calls_in_flight",
            "Provider responses not ended yet, by provider and status: '' while the create is in flight, "
            "'unconfirmed' while a create that got no answer is reconciled, 'queued', 'in_progress'.",
            labels=["provider", "status"],
        )
        for (provider, status), n in sorted(in_flight.items()):
            gauge.add_metric([provider, status], n)
        yield gauge
        yield _counter("reportdesk_provider_polls", "Status checks of provider responses.", ["provider"], {(p,): n for p, n in polls.items()})
        yield _counter("reportdesk_cost_usd", "What provider responses cost, in US dollars.", ["provider", "model"], cost)

    def _events(self):
        failures = CounterMetricFamily("reportdesk_job_failures", "Jobs that failed, by failure class.", labels=["failure_class"])
        retries = CounterMetricFamily("reportdesk_provider_retries", "Automatic retries after a transient provider error.")
        lost = CounterMetricFamily("reportdesk_provider_calls_lost", "Provider creates whose worker stopped before the provider answered.")
        notified = CounterMetricFamily(
            "reportdesk_provider_notifications",
            "Jobs woken because the provider announced a response's end: by its webhook, or by its stream.",
            labels=["via"],
        )
        counts = {
            EventAction.FAILED: defaultdict(int), EventAction.PROVIDER_RETRY_SCHEDULED: 0, EventAction.PROVIDER_CALL_LOST: 0,
            EventAction.PROVIDER_NOTIFIED: {"webhook": 0, "stream": 0},
        }
        for action, failure_class, actor_kind, n in (
            JobEvent.objects.filter(action__in=list(counts))
            .order_by().values_list("action", "details__failure_class", "actor_kind").annotate(n=Count("id"))
        ):
            if action == EventAction.FAILED:
                counts[EventAction.FAILED][failure_class or "unknown"] += n
            elif action == EventAction.PROVIDER_NOTIFIED:
                counts[EventAction.PROVIDER_NOTIFIED]["webhook" if actor_kind == ActorKind.WEBHOOK else "stream"] += n
            else:
                counts[EventAction(action)] += n
        for failure_class, n in sorted(counts[EventAction.FAILED].items()):
            failures.add_metric([failure_class], n)
        retries.add_metric([], counts[EventAction.PROVIDER_RETRY_SCHEDULED])
        lost.add_metric([], counts[EventAction.PROVIDER_CALL_LOST])
        for via, n in counts[EventAction.PROVIDER_NOTIFIED].items():
            notified.add_metric([via], n)
        yield failures
        yield retries
        yield lost
        yield notified

    @staticmethod
    def _histogram(name, documentation, aggregate, buckets):
        cumulative = [(_bucket_label(b), aggregate[f"le_{i}"]) for i, b in enumerate(buckets)]
        cumulative.append(("+Inf", aggregate["count"]))
        family = HistogramMetricFamily(name, documentation)
        family.add_metric([], cumulative, sum_value=_seconds(aggregate["sum"]) if aggregate["sum"] else 0.0)
        return family


def _draft_lags() -> dict:
    lag = ExpressionWrapper(F("attempt__finished_at") - F("completed_at"), output_field=DurationField())
    calls = ProviderCall.objects.filter(
        step__in=FINAL_STEPS, status=CallStatus.COMPLETED, completed_at__isnull=False,
        attempt__version__isnull=False, attempt__finished_at__isnull=False,
    ).annotate(lag=lag)
    return calls.aggregate(**_bucket_counts("lag", DRAFT_LAG_BUCKETS), count=Count("id"), sum=Sum("lag"))


def _review_waits() -> dict:
    wait = ExpressionWrapper(F("decided_at") - F("attempt__finished_at"), output_field=DurationField())
    reviews = Review.objects.filter(decided_at__isnull=False, attempt__finished_at__isnull=False).annotate(wait=wait)
    return reviews.aggregate(**_bucket_counts("wait", REVIEW_WAIT_BUCKETS), count=Count("id"), sum=Sum("wait"))


def _bucket_counts(field: str, buckets) -> dict:
    return {f"le_{i}": Count("id", filter=Q(**{f"{field}__lte": dt.timedelta(seconds=b)})) for i, b in enumerate(buckets)}


def _bucket_label(bound: float) -> str:
    return str(float(bound))


def _seconds(delta) -> float:
    return max(delta.total_seconds(), 0.0) if isinstance(delta, dt.timedelta) else float(delta or 0)


def _counter(name: str, documentation: str, labels: list[str], values: dict) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def _broker_queue_size() -> int:
    from django_q.brokers import get_broker

    return get_broker().queue_size()


def metrics_registry() -> CollectorRegistry:
    """A registry holding only reportdesk's collector (no per-process series: they would
    differ from one web process to the next)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReportdeskCollector())
    return registry
