"""Reads for the operators' view of what runs: django-q2's clusters and queue, the
dispatcher's heartbeat, the jobs waiting for a worker, and which task records an operator
may read (those of the jobs in the workspaces they operate)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import CharField, Exists, OuterRef, QuerySet, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone
from django.utils.timesince import timesince
from django_q.brokers import get_broker
from django_q.models import OrmQ
from django_q.status import Stat

from jobs.worker.lease import dispatcher_is_alive, heartbeat_last_seen
from jobs.models import ACTIVE_STATUSES, ReportJob

# jobs.tasks names each job's task "advance job <pk>"; the job id in the name is what ties a
# task record to a workspace (its arguments are pickled, so the database cannot read them).
ADVANCE_TASK_PREFIX = "advance job "
# The queued tasks the page decodes and lists (the ORM broker holds at most queue_limit).
QUEUED_SHOWN = 50


def _jobs_in(workspace_ids: list[int] | None) -> QuerySet[ReportJob]:
    jobs = ReportJob.objects.all()
    return jobs if workspace_ids is None else jobs.filter(workspace_id__in=workspace_ids)


def task_records_for(queryset: QuerySet, *, workspace_ids: list[int] | None) -> QuerySet:
    """django-q2 task records (Success, Failure) of jobs in `workspace_ids` (None: all
    records, the dispatcher's and every job's)."""
    if workspace_ids is None:
        return queryset
    names = _jobs_in(workspace_ids).annotate(
        task_name=Concat(Value(ADVANCE_TASK_PREFIX), Cast("pk", CharField()), output_field=CharField())
    )
    return queryset.filter(name__startswith=ADVANCE_TASK_PREFIX).filter(Exists(names.filter(task_name=OuterRef("name"))))


@dataclass(frozen=True)
class Cluster:
    id: str
    host: str
    status: str
    workers: int
    up_for: str
    task_queue: int
    done_queue: int
    reported_at: dt.datetime


@dataclass(frozen=True)
class QueuedTask:
    name: str
    func: str
    job: ReportJob | None
    locked_until: dt.datetime | None


@dataclass(frozen=True)
class WorkersOverview:
    clusters: list[Cluster]
    broker: str
    queued: int
    in_flight: int | None
    queued_tasks: list[QueuedTask] | None
    dispatcher_seen: dt.datetime | None
    dispatcher_seen_ago: str
    dispatcher_alive: bool
    due: int
    oldest_due: ReportJob | None


def _span(moment: dt.datetime, now: dt.datetime) -> str:
    """How long ago `moment` was: in seconds while that is what matters."""
    seconds = (now - moment).total_seconds()
    return f"{max(int(seconds), 0)} s" if seconds < 90 else timesince(moment, now, depth=2)


def _clusters() -> list[Cluster]:
    clusters = []
    for stat in Stat.get_all():
        clusters.append(Cluster(
            id=str(stat.cluster_id), host=stat.host, status=stat.status, workers=len(stat.workers),
            up_for=_span(stat.tob, timezone.now()) if stat.tob else "—",
            task_queue=stat.task_q_size, done_queue=stat.done_q_size, reported_at=stat.timestamp,
        ))
    return sorted(clusters, key=lambda c: (c.host, c.id))


def _queued_tasks(workspace_ids: list[int] | None) -> list[QueuedTask]:
    """The ORM broker's waiting tasks that belong to jobs the operator may see (superusers:
    all of them), oldest first. Payloads are signed pickles, so they are read here."""
    rows = list(OrmQ.objects.using(settings.Q_CLUSTER["orm"]).order_by("id")[:QUEUED_SHOWN])
    job_ids = {}
    for row in rows:
        name = row.name() or ""
        if name.startswith(ADVANCE_TASK_PREFIX) and name[len(ADVANCE_TASK_PREFIX):].isdigit():
            job_ids[row.pk] = int(name[len(ADVANCE_TASK_PREFIX):])
    jobs = _jobs_in(workspace_ids).in_bulk(set(job_ids.values())) if job_ids else {}
    shown = []
    for row in rows:
        job = jobs.get(job_ids.get(row.pk))
        if workspace_ids is not None and job is None:
            continue
        shown.append(QueuedTask(name=row.name() or "", func=row.func() or "", job=job, locked_until=row.lock))
    return shown


def workers_overview(*, workspace_ids: list[int] | None, now: dt.datetime | None = None) -> WorkersOverview:
    """What runs now. Clusters, queue depth and the heartbeat are the whole system's; the
    due jobs and the queued tasks named are those of `workspace_ids` (None: all)."""
    now = now or timezone.now()
    broker = get_broker()
    orm = "orm" in settings.Q_CLUSTER
    seen = heartbeat_last_seen()
    due_jobs = _jobs_in(workspace_ids).filter(
        status__in=ACTIVE_STATUSES, archived_at__isnull=True, next_check_at__lte=now
    ).exclude(lease_expires_at__gt=now)
    return WorkersOverview(
        clusters=_clusters(),
        broker=broker.info(),
        queued=broker.queue_size(),
        in_flight=broker.lock_size() if orm else None,
        queued_tasks=_queued_tasks(workspace_ids) if orm else None,
        dispatcher_seen=seen,
        dispatcher_seen_ago=_span(seen, now) if seen else "",
        dispatcher_alive=dispatcher_is_alive(now=now),
        due=due_jobs.count(),
        oldest_due=due_jobs.select_related("workspace").order_by("next_check_at", "id").first(),
    )
