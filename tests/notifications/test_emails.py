"""Mails, end to end: a job's change goes through jobs.services, its event is handed over on
commit, the notify task runs (inline), and a real SMTP server on loopback receives the mail.
The right people get it, with a link to where they act, and with every bit of people's and
the model's text escaped in the HTML part."""

from __future__ import annotations

import datetime as dt
import json
import socket
import time

import pytest
from django.utils import timezone

from jobs import services as jobs_services
from jobs.events import SCHEDULER
from jobs.models import ArtifactKind, JobStatus, ReportJob
from notifications import services, tasks
from notifications.models import ChatChannel, DraftReady, Notice, NotificationPreference
from reportdesk.models import Role
from tests.factories import ArtifactFactory, ReportJobFactory, WorkspaceFactory, member

pytestmark = pytest.mark.django_db

EVIL_TITLE = '<img src=x onerror="alert(1)"> Recycling & costs'
EVIL_TOPIC = "Battery <script>alert('topic')</script> recycling"


def job_in(status, *, ws, requester, template, topic="Battery recycling in Europe"):
    job = ReportJobFactory(workspace=ws, requested_by=requester, template=template, topic=topic)
    ReportJob.objects.filter(pk=job.pk).update(status=status)
    job.refresh_from_db()
    return job


def draft_ready(committed, job, title=EVIL_TITLE):
    """The worker stores a draft (the model wrote its title) and the job waits for review."""
    ArtifactFactory(attempt=job.current_attempt, job=job, kind=ArtifactKind.STRUCTURED_JSON, content=json.dumps({"title": title}))
    job.current_attempt.version = 1
    job.current_attempt.save()
    return committed(jobs_services.job_finish, job=job, attempt=job.current_attempt, artifacts={"report_md": "# Draft"})


def test_reviewers_hear_of_a_draft_with_a_link_to_review_it_and_escaped_text(smtp, committed, ws, requester, reviewer, operator, template):
    second_reviewer = member(ws, Role.REVIEWER, "wanda")
    member(WorkspaceFactory(slug="elsewhere"), Role.REVIEWER, "xavier")  # another workspace's reviewer
    job = job_in("running", ws=ws, requester=requester, template=template, topic=EVIL_TOPIC)

    draft_ready(committed, job)

    assert sorted(address for mail in smtp.mails for address in mail.to) == [reviewer.email, second_reviewer.email]
    mail = smtp.to(reviewer.email)[0]
    link = f"https://reports.example.com/admin/reviews/review/draft/{job.public_id}/"
    assert mail.subject == f"Draft ready for review: {EVIL_TOPIC}"
    assert link in mail.text and f'href="{link}"' in mail.html
    # The HTML part escapes the topic (a person's) and the title (the model's).
    assert "<script>" not in mail.html and "&lt;script&gt;alert(&#x27;topic&#x27;)&lt;/script&gt;" in mail.html
    assert "<img" not in mail.html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; Recycling &amp; costs" in mail.html
    # The text part is plain text: the same words, as written.
    assert EVIL_TITLE in mail.text and EVIL_TOPIC in mail.text
    assert Notice.objects.filter(job=job, kind="draft_ready", status="sent").count() == 2


def test_a_rerun_of_the_notify_task_sends_nothing_twice(smtp, committed, ws, requester, reviewer, template):
    job = draft_ready(committed, job_in("running", ws=ws, requester=requester, template=template))
    event = job.events.get(action="draft_ready")

    tasks.job_event_notify(event.pk)  # django-q2 delivers at least once

    assert len(smtp.mails) == 1


@pytest.mark.parametrize(
    ("act", "outcome", "says"),
    [
        (lambda job, reviewer: jobs_services.job_approve(job=job, actor=reviewer, reason="Solid work."), "approved", "Solid work."),
        (lambda job, reviewer: jobs_services.job_reject(job=job, actor=reviewer, reason="Sources <b>missing</b> & stale"),
         "rejected", "Sources &lt;b&gt;missing&lt;/b&gt; &amp; stale"),
        (lambda job, reviewer: jobs_services.job_request_revision(job=job, actor=reviewer, comment="Cite the 2025 figure."),
         "sent back for revision", "Cite the 2025 figure."),
        (lambda job, reviewer: jobs_services.job_expire(job=job, actor=SCHEDULER, reason="The deadline passed."),
         "expired", "The deadline passed."),
    ],
)
def test_the_requester_hears_what_became_of_their_report(smtp, django_capture_on_commit_callbacks, inline_tasks, ws, requester, reviewer, template, act, outcome, says):
    job = job_in("needs_review", ws=ws, requester=requester, template=template)

    with django_capture_on_commit_callbacks(execute=True):
        act(job, reviewer)

    [mail] = smtp.mails
    assert mail.to == [requester.email]
    assert mail.subject == f"Your report was {outcome}: {job.topic}"
    link = f"https://reports.example.com/admin/jobs/reportjob/{job.public_id}/change/"
    assert link in mail.text and f'href="{link}"' in mail.html
    assert says in mail.html


def test_the_requester_hears_of_a_failure_with_its_class(smtp, committed, ws, requester, reviewer, template):
    job = job_in("running", ws=ws, requester=requester, template=template)

    committed(jobs_services.job_fail, job=job, failure_class="provider_error", message="The provider answered 503 <again>.")

    [mail] = smtp.mails
    assert mail.to == [requester.email] and "failed" in mail.subject
    assert "Provider error" in mail.text and "The provider answered 503 &lt;again&gt;." in mail.html


def test_nobody_is_mailed_about_what_they_did_themselves(smtp, committed, ws, requester, template):
    job = job_in("queued", ws=ws, requester=requester, template=template)

    committed(jobs_services.job_cancel, job=job, actor=requester, reason="Wrong topic")

    assert smtp.mails == []


def test_preferences_are_respected_and_the_digest_lists_the_waiting_drafts(smtp, committed, ws, requester, reviewer, template):
    digest_reader = member(ws, Role.REVIEWER, "dora")
    silent = member(ws, Role.REVIEWER, "sam")
    services.preference_set(user=digest_reader, draft_ready=DraftReady.DIGEST, report_updates=True, operator_alerts=True)
    services.preference_set(user=silent, draft_ready=DraftReady.OFF, report_updates=True, operator_alerts=True)
    services.preference_set(user=requester, draft_ready=DraftReady.IMMEDIATE, report_updates=False, operator_alerts=True)
    first = draft_ready(committed, job_in("running", ws=ws, requester=requester, template=template, topic="First <topic>"))
    second = draft_ready(committed, job_in("running", ws=ws, requester=requester, template=template, topic="Second topic"))

    # Each draft: a mail to the reviewer who wants one, none to the digest reader or the silent one.
    assert [mail.to for mail in smtp.mails] == [[reviewer.email], [reviewer.email]]

    committed(jobs_services.job_approve, job=first, actor=reviewer)
    assert len(smtp.mails) == 2  # the requester turned report updates off

    smtp.mails.clear()
    sent = tasks.digest_send()
    assert sent == 1
    [digest] = smtp.mails
    assert digest.to == [digest_reader.email] and digest.subject == "1 draft waiting for review"
    assert f"https://reports.example.com/admin/reviews/review/draft/{second.public_id}/" in digest.text
    assert "Second topic" in digest.html and first.public_id not in digest.text
    assert tasks.digest_send() == 0 and len(smtp.mails) == 1  # once a day


def test_operators_hear_of_a_stuck_job_once(smtp, ws, requester, operator, template):
    member(WorkspaceFactory(slug="elsewhere"), Role.OPERATOR, "otto")
    job = job_in("running", ws=ws, requester=requester, template=template)
    ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now() - dt.timedelta(minutes=40))

    assert tasks.stuck_jobs_check() == 1
    tasks.stuck_jobs_check()  # the schedule fires again five minutes later

    [mail] = smtp.mails
    assert mail.to == [operator.email] and mail.subject == f"Job {job.public_id} is stuck"
    assert "due for a check for 40 minutes" in mail.text
    assert f"https://reports.example.com/admin/jobs/reportjob/{job.public_id}/change/" in mail.text


def test_a_job_that_is_merely_due_is_not_stuck(smtp, ws, requester, operator, template):
    job = job_in("running", ws=ws, requester=requester, template=template)
    ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now() - dt.timedelta(minutes=2))

    assert tasks.stuck_jobs_check() == 0 and smtp.mails == []


def test_a_provider_alert_reaches_every_operator_who_wants_it(smtp, ws, operator):
    other = member(WorkspaceFactory(slug="elsewhere"), Role.OPERATOR, "otto")
    quiet = member(ws, Role.OPERATOR, "quinn")
    NotificationPreference.objects.create(user=quiet, operator_alerts=False)
    member(ws, Role.REVIEWER, "victor")

    sent = tasks.operators_alert("provider_refused", "The provider says: insufficient_quota.", "breaker:1")
    tasks.operators_alert("provider_refused", "The provider says: insufficient_quota.", "breaker:1")

    assert sent == 2
    assert sorted(m.to[0] for m in smtp.mails) == sorted([operator.email, other.email])
    assert "insufficient_quota" in smtp.mails[0].text


def test_an_smtp_server_that_is_down_is_recorded_not_raised(settings, committed, ws, requester, reviewer, template):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2

    job = draft_ready(committed, job_in("running", ws=ws, requester=requester, template=template))

    assert job.status == JobStatus.NEEDS_REVIEW
    notice = Notice.objects.get(job=job)
    assert notice.status == "failed" and "Connection" in notice.error


@pytest.fixture
def mute_smtp(settings):
    """A mail server that takes the connection and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.getsockname()[1]
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    yield
    server.close()


def test_a_mute_smtp_server_fails_the_mail_in_its_time_limit_and_the_rest_still_goes(settings, mute_smtp, receiver, committed, ws, requester, reviewer, template):
    assert settings.EMAIL_TIMEOUT == 10  # the default: no exchange holds a worker for long
    settings.EMAIL_TIMEOUT = 0.5
    ChatChannel.objects.create(workspace=ws, url=receiver.url("/chat"))
    job = job_in("running", ws=ws, requester=requester, template=template)
    begun = time.monotonic()

    committed(jobs_services.job_fail, job=job, failure_class="provider_error", message="The provider answered 503.")

    assert time.monotonic() - begun < 5
    mail = Notice.objects.get(job=job, channel="email")
    assert mail.status == "failed" and "timed out" in mail.error
    assert Notice.objects.get(job=job, channel="chat").status == "sent"  # the chat message after it went
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(("name", "args"), [
    ("admin:index", ()),
    ("admin:jobs_reportjob_change", ("k3x9q2abcd",)),
    ("admin:reviews_review_draft", ("k3x9q2abcd",)),
    ("admin:notifications_webhookendpoint_change", (7,)),
])
def test_the_links_a_worker_builds_are_the_sites_own(name, args):
    """Mails and webhooks reverse through the admin's routes alone: the same addresses."""
    from django.urls import reverse

    from notifications.events import admin_link, site_link

    assert admin_link(name, *args) == site_link(reverse(name, args=args))
