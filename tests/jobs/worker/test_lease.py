"""The job lease is renewed while a step runs, from a thread of its own."""

import datetime as dt
import time

import pytest
from django.utils import timezone

from jobs.models import ReportJob
from jobs.worker.lease import job_lease_acquire, job_lease_heartbeat, job_lease_release
from tests.factories import ReportJobFactory


@pytest.mark.django_db(transaction=True)
def test_the_lease_is_renewed_while_the_step_runs_and_no_longer_after(settings):
    settings.LEASE_SECONDS = 0.4  # a renewal every 0.1 s
    job = ReportJobFactory()
    assert job_lease_acquire(job_id=job.pk, token="mine")
    acquired = ReportJob.objects.get(pk=job.pk).lease_expires_at

    with job_lease_heartbeat(job_id=job.pk, token="mine"):
        time.sleep(0.6)  # a slow provider call: longer than the lease itself
        renewed = ReportJob.objects.get(pk=job.pk).lease_expires_at
        assert renewed > acquired + dt.timedelta(seconds=0.3)
        assert renewed > timezone.now()
    time.sleep(0.3)
    assert ReportJob.objects.get(pk=job.pk).lease_expires_at < timezone.now() + dt.timedelta(seconds=0.15)


@pytest.mark.django_db(transaction=True)
def test_a_lease_taken_over_is_not_renewed(settings):
    settings.LEASE_SECONDS = 0.4
    job = ReportJobFactory()
    job_lease_acquire(job_id=job.pk, token="mine")
    with job_lease_heartbeat(job_id=job.pk, token="mine"):
        ReportJob.objects.filter(pk=job.pk).update(lease_token="theirs")
        time.sleep(0.3)
    assert ReportJob.objects.get(pk=job.pk).lease_token == "theirs"


@pytest.mark.django_db
@pytest.mark.parametrize("woken_during_the_step", [True, False])
def test_a_job_made_due_during_the_step_stays_due_when_the_lease_is_given_back(settings, woken_during_the_step):
    """A webhook or a stream that announces the end while the step still holds the job makes
    it due: giving the lease back keeps it so. A job left due from before the step (nobody
    scheduled it) is pushed a minute on, so the dispatcher cannot spin on it."""
    settings.POLL_MAX_SECONDS = 60
    job = ReportJobFactory(status="running")
    began = timezone.now()
    ReportJob.objects.filter(pk=job.pk).update(next_check_at=began - dt.timedelta(seconds=5))
    assert job_lease_acquire(job_id=job.pk, token="mine")
    if woken_during_the_step:
        ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now())

    job_lease_release(job_id=job.pk, token="mine", since=began)

    job.refresh_from_db()
    assert job.lease_token == ""
    if woken_during_the_step:
        assert job.next_check_at <= timezone.now()
    else:
        assert job.next_check_at > timezone.now() + dt.timedelta(seconds=55)
