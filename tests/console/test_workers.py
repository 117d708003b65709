"""The operators' view of what runs: the workers page (clusters, queue, dispatcher, due jobs)
and django-q2's task records, readable by operators for their own workspaces' jobs."""

import datetime as dt
import uuid

import pytest
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import OrmQ, Task
from django_q.signing import SignedPackage
from django_q.status import Stat, Status

from jobs import queue
from jobs.models import ReportJob
from tests.admin.builders import job_in
from tests.factories import WorkerHeartbeatFactory

pytestmark = pytest.mark.django_db

URL = "/admin/workers/"


def record(job, *, success=True, name=None):
    now = timezone.now()
    return Task.objects.create(
        id=uuid.uuid4().hex, name=name or f"advance job {job.pk}", func="jobs.tasks.advance_job",
        args=(job.pk, None), started=now, stopped=now, success=success, result=None if success else "boom",
    )


def report_cluster(cluster_id="c-1", workers=3):
    """A cluster's status report, saved the way django-q2's sentinel saves it (Stat.save)."""
    status = Status(pid=4242, cluster_id=cluster_id)
    status.workers = list(range(workers))
    status.tob = timezone.now() - dt.timedelta(minutes=5)
    status.status = "Idle"
    get_broker().set_stat(Stat.get_key(cluster_id), SignedPackage.dumps(status, True), 30)


@pytest.fixture(autouse=True)
def _fresh_stats():
    get_broker().cache.clear()
    yield
    get_broker().cache.clear()


def test_only_operators_open_the_workers_page(as_user, requester, reviewer, operator, superuser):
    assert as_user(requester).get(URL).status_code == 403
    assert as_user(reviewer).get(URL).status_code == 403
    assert as_user(operator).get(URL).status_code == 200
    assert as_user(superuser).get(URL).status_code == 200


def test_the_page_shows_the_reporting_clusters(as_user, operator):
    report_cluster("alpha", workers=3)

    page = as_user(operator).get(URL).content.decode()

    assert "<code>alpha</code>" in page and "<td>3</td>" in page and "<td>Idle</td>" in page
    assert "No cluster is reporting" not in page


def test_without_a_cluster_the_page_says_how_to_start_one(as_user, operator):
    page = as_user(operator).get(URL).content.decode()

    assert "No cluster is reporting" in page
    assert "No dispatcher heartbeat has ever been recorded" in page


def test_the_dispatchers_heartbeat_is_shown_alive_or_stale(as_user, operator):
    heartbeat = WorkerHeartbeatFactory(name="dispatcher", owner="t-1", seen_at=timezone.now() - dt.timedelta(seconds=2))
    client = as_user(operator)
    assert "rd-fact rd-ok\">Alive: last heartbeat" in client.get(URL).content.decode()

    heartbeat.seen_at = timezone.now() - dt.timedelta(minutes=10)
    heartbeat.save()
    assert "No live dispatcher: last heartbeat 10" in client.get(URL).content.decode()


def test_the_queue_depth_and_the_operators_queued_tasks(as_user, operator, workspace, other_workspace, django_capture_on_commit_callbacks):
    mine = job_in("queued", workspace=workspace)
    theirs = job_in("queued", workspace=other_workspace)
    queue.enqueue_job_advance(mine.pk)
    queue.enqueue_job_advance(theirs.pk)
    queue.enqueue_dispatcher()

    page = as_user(operator).get(URL).content.decode()

    assert OrmQ.objects.count() == 3
    assert '<strong id="queue-depth">3</strong> tasks waiting' in page
    assert f"advance job {mine.pk}" in page and f'href="/admin/jobs/reportjob/{mine.public_id}/change/"' in page
    assert f"advance job {theirs.pk}" not in page and theirs.public_id not in page


def test_the_oldest_due_job_of_the_operators_workspaces(as_user, operator, workspace, other_workspace):
    now = timezone.now()
    older = job_in("queued", workspace=workspace)
    newer = job_in("queued", workspace=workspace)
    theirs = job_in("queued", workspace=other_workspace)
    ReportJob.objects.filter(pk=older.pk).update(next_check_at=now - dt.timedelta(minutes=7))
    ReportJob.objects.filter(pk=newer.pk).update(next_check_at=now - dt.timedelta(minutes=1))
    ReportJob.objects.filter(pk=theirs.pk).update(next_check_at=now - dt.timedelta(hours=2))
    held = job_in("queued", workspace=workspace)  # due, but a worker holds it
    ReportJob.objects.filter(pk=held.pk).update(next_check_at=now - dt.timedelta(hours=1), lease_expires_at=now + dt.timedelta(minutes=1))

    page = as_user(operator).get(URL).content.decode()

    assert '<dd id="due-count">2 (' in page
    assert f'id="oldest-due"><a href="/admin/jobs/reportjob/{older.public_id}/change/">{older.public_id}</a>' in page


@pytest.mark.parametrize("queued", [1, 30])
def test_the_workers_page_costs_the_same_queries_however_long_the_queue(queued, as_user, operator, workspace, django_assert_num_queries):
    client = as_user(operator)
    for _ in range(queued):
        queue.enqueue_job_advance(job_in("queued", workspace=workspace).pk)
    report_cluster()
    client.get(URL)

    # session, user, roles; the sidebar's permissions (user, groups); queue depth and in
    # flight; the queued tasks and their jobs; the heartbeat (last seen, alive); the due jobs
    # counted and the oldest.
    with django_assert_num_queries(14):
        response = client.get(URL)

    assert response.status_code == 200


def test_an_operator_reads_the_task_records_of_their_workspaces_jobs_only(as_user, operator, workspace, other_workspace):
    mine = job_in("running", workspace=workspace)
    theirs = job_in("running", workspace=other_workspace)
    record(mine)
    record(mine, success=False)
    record(theirs)
    record(theirs, success=False)
    Task.objects.create(id=uuid.uuid4().hex, name="dispatcher", func="jobs.tasks.tick", started=timezone.now(), stopped=timezone.now(), success=True)
    client = as_user(operator)

    successes = client.get("/admin/django_q/success/").content.decode()
    failures = client.get("/admin/django_q/failure/").content.decode()

    assert f"advance job {mine.pk}<" in successes and f"advance job {mine.pk}<" in failures
    assert f"advance job {theirs.pk}<" not in successes + failures
    assert "dispatcher<" not in successes


def test_another_workspaces_record_is_not_found_by_url(as_user, operator, other_workspace):
    theirs = record(job_in("running", workspace=other_workspace))

    response = as_user(operator).get(f"/admin/django_q/success/{theirs.pk}/change/")

    assert response.status_code == 302 and response.url == "/admin/"


def test_an_operator_may_read_but_not_resubmit_or_delete_records(as_user, operator, workspace):
    task = record(job_in("running", workspace=workspace), success=False)
    client = as_user(operator)

    detail = client.get(f"/admin/django_q/failure/{task.pk}/change/")
    listing = client.get("/admin/django_q/failure/").content.decode()

    assert detail.status_code == 200 and "boom" in detail.content.decode()
    assert 'name="action"' not in listing
    assert client.post(f"/admin/django_q/failure/{task.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Task.objects.filter(pk=task.pk).exists()


def test_requesters_and_reviewers_do_not_read_task_records(as_user, requester, reviewer):
    assert as_user(requester).get("/admin/django_q/success/").status_code == 403
    assert as_user(reviewer).get("/admin/django_q/failure/").status_code == 403


def test_a_superuser_reads_every_record(as_user, superuser, workspace, other_workspace):
    mine, theirs = job_in("running", workspace=workspace), job_in("running", workspace=other_workspace)
    record(mine), record(theirs)
    Task.objects.create(id=uuid.uuid4().hex, name="dispatcher", func="jobs.tasks.tick", started=timezone.now(), stopped=timezone.now(), success=True)

    page = as_user(superuser).get("/admin/django_q/success/").content.decode()

    assert f"advance job {mine.pk}<" in page and f"advance job {theirs.pk}<" in page and "dispatcher<" in page


@pytest.mark.parametrize("rows", [1, 30])
def test_the_task_record_list_costs_a_fixed_number_of_queries(rows, as_user, operator, workspace, django_assert_num_queries):
    client = as_user(operator)
    for _ in range(rows):
        record(job_in("running", workspace=workspace))
    client.get("/admin/django_q/success/")

    # session, user, roles; the capped count; permissions (user, groups); the page of rows;
    # the group and cluster filters' choices.
    with django_assert_num_queries(10):
        response = client.get("/admin/django_q/success/")

    assert response.content.decode().count("advance job ") == rows
