"""The admin site as people meet it: its name, the index each role gets, the refusal page,
the public id in every URL of a job, and console actions in Django's admin log."""

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import PermissionDenied

from console.views import permission_denied
from jobs.models import JobStatus, ReportJob
from reportdesk.models import Role
from tests.admin.builders import job_in, report_json, store_report
from tests.factories import member

pytestmark = pytest.mark.django_db


def index_models(client) -> set[str]:
    """The models the index lists, as "app_label.model_name"."""
    return {
        f"{app['app_label']}.{model['object_name'].lower()}"
        for app in client.get("/admin/").context["app_list"]
        for model in app["models"]
    }


def test_every_page_carries_the_products_name_and_no_view_site_link(as_user, requester):
    page = as_user(requester).get("/admin/").content.decode()

    assert "<title>Research reports | reportdesk</title>" in page
    assert '<div id="site-name"><a href="/admin/">reportdesk</a></div>' in page
    assert "Django administration" not in page and "View site" not in page


def test_the_job_lists_breadcrumb_names_the_app_then_the_list(as_user, operator):
    page = as_user(operator).get("/admin/jobs/reportjob/").content.decode()

    assert "Reports</a>\n&rsaquo; Report jobs" in page
    assert "Report jobs</a>\n&rsaquo; Report jobs" not in page
    assert 'aria-label="Search report jobs"' in page and "{#" not in page  # our search form, no stray comment


def test_a_requesters_index_lists_what_requesters_use(as_user, requester):
    assert index_models(as_user(requester)) == {"jobs.reportjob", "jobs.reporttemplate", "sources.sourceitem"}


def test_a_reviewers_index_adds_the_review_queue_and_reviews(as_user, reviewer):
    assert index_models(as_user(reviewer)) == {
        "jobs.reportjob", "jobs.reporttemplate", "sources.sourceitem", "reviews.reviewqueue", "reviews.review",
    }


def test_an_operators_index_lists_the_internal_records_and_task_records(as_user, operator):
    models = index_models(as_user(operator))

    assert {"jobs.jobevent", "jobs.jobattempt", "jobs.providercall", "jobs.artifact"} <= models
    assert {"django_q.success", "django_q.failure"} <= models
    assert 'href="/admin/workers/"' in as_user(operator).get("/admin/").content.decode()


def test_a_hidden_table_still_opens_by_url_for_who_may_read_it(as_user, requester):
    # The index only hides; the role's view permission still decides.
    assert as_user(requester).get("/admin/jobs/jobevent/").status_code == 200


def test_someone_in_two_workspaces_gets_the_index_of_both_roles(as_user, workspace, other_workspace):
    person = member(workspace, Role.REQUESTER, username="sam")
    member(other_workspace, Role.REVIEWER, username="sam")

    assert "reviews.reviewqueue" in index_models(as_user(person))


def test_a_requester_on_a_review_page_gets_a_page_that_says_why_and_where_to_go(as_user, requester, workspace):
    job = store_report(job_in("queued", workspace=workspace, requested_by=requester), report_json())

    response = as_user(requester).get(f"/admin/reviews/review/draft/{job.public_id}/")

    page = response.content.decode()
    assert response.status_code == 403
    assert '<p class="errornote" id="refusal">Your role (requester) in research-ops does not review reports.</p>' in page
    assert f'<a href="/admin/jobs/reportjob/{job.public_id}/change/">The job page</a>' in page
    assert "reportdesk" in page and 'class="breadcrumbs"' in page  # in the admin's frame


def test_a_refused_action_url_links_back_to_the_job(as_user, reviewer, workspace):
    job = job_in("running", workspace=workspace)

    response = as_user(reviewer).get(f"/admin/jobs/reportjob/{job.public_id}/act/cancel/")

    assert response.status_code == 403
    assert f'href="/admin/jobs/reportjob/{job.public_id}/change/"' in response.content.decode()


def test_refusals_outside_the_admin_keep_djangos_page(rf, operator):
    request = rf.get("/webhooks/openai/")
    request.user = operator

    response = permission_denied(request, PermissionDenied("No."))

    assert response.status_code == 403 and b"refusal" not in response.content


def test_every_link_and_form_of_a_job_names_its_public_id(as_user, operator, workspace):
    job = job_in("running", workspace=workspace)
    client = as_user(operator)

    listing = client.get("/admin/jobs/reportjob/").content.decode()
    page = client.get(f"/admin/jobs/reportjob/{job.public_id}/change/").content.decode()
    confirm = client.get(f"/admin/jobs/reportjob/{job.public_id}/act/cancel/").content.decode()

    for html in (listing, page, confirm):
        assert f"/admin/jobs/reportjob/{job.pk}/" not in html
    assert f'href="/admin/jobs/reportjob/{job.public_id}/change/"' in listing
    assert f'href="/admin/jobs/reportjob/{job.public_id}/act/cancel/"' in page
    assert f'href="/admin/jobs/reportjob/{job.public_id}/history/"' in page


def test_a_console_action_shows_in_recent_actions_and_the_jobs_history(as_user, operator, workspace):
    job = job_in("running", workspace=workspace)
    client = as_user(operator)

    client.post(f"/admin/jobs/reportjob/{job.public_id}/act/cancel/", {"reason": "Wrong topic."})

    entry = LogEntry.objects.get()
    assert ReportJob.objects.get(pk=job.pk).status == JobStatus.CANCELED
    assert (entry.user, entry.action_flag, entry.object_id) == (operator, CHANGE, job.public_id)
    assert entry.get_change_message() == "Cancel: Wrong topic."
    index = client.get("/admin/").content.decode()
    assert f'href="/admin/jobs/reportjob/{job.public_id}/change/"' in index and "Recent actions" in index
    history = client.get(f"/admin/jobs/reportjob/{job.public_id}/history/")
    assert history.status_code == 200 and "Cancel: Wrong topic." in history.content.decode()
    assert f'<a href="/admin/jobs/reportjob/{job.public_id}/change/">{job.public_id}</a>' in history.content.decode()


def test_a_bulk_action_logs_each_job_it_changed_and_none_it_skipped(as_user, operator, workspace):
    failed = [job_in("failed", workspace=workspace, failure_class="timeout") for _ in range(3)]
    blocked = job_in("failed", workspace=workspace, failure_class="policy_block")
    client = as_user(operator)

    client.post("/admin/jobs/reportjob/", {
        "action": "retry_jobs", "_selected_action": [j.pk for j in [*failed, blocked]], "post": "yes", "reason": "",
    })

    assert set(LogEntry.objects.values_list("object_id", flat=True)) == {j.public_id for j in failed}


def test_a_review_decision_is_in_the_admin_log(as_user, reviewer, workspace):
    job = store_report(job_in("queued", workspace=workspace), report_json())
    client = as_user(reviewer)
    client.post(f"/admin/reviews/review/draft/{job.public_id}/claim/")

    client.post(f"/admin/reviews/review/draft/{job.public_id}/decide/", {
        "decision": "reject", "comment": "Off topic.", "version": job.version,
    })

    entry = LogEntry.objects.get()
    assert entry.object_id == job.public_id and entry.get_change_message().startswith(f"Rejected {job.public_id}")


def test_the_job_page_and_the_review_page_link_to_each_other(as_user, reviewer, requester, workspace):
    job = store_report(job_in("queued", workspace=workspace, requested_by=requester), report_json())
    review_url = f"/admin/reviews/review/draft/{job.public_id}/"
    job_url = f"/admin/jobs/reportjob/{job.public_id}/change/"

    as_reviewer = as_user(reviewer).get(job_url).content.decode()
    review_page = as_user(reviewer).get(review_url).content.decode()
    as_requester = as_user(requester).get(job_url).content.decode()

    assert f'href="{review_url}" id="review-page-link"' in as_reviewer
    assert f'href="{job_url}" id="job-page-link"' in review_page
    assert review_url not in as_requester  # no link to a page that would refuse them


def test_no_review_link_before_there_is_a_draft(as_user, reviewer, workspace):
    job = job_in("running", workspace=workspace)

    assert "review-page-link" not in as_user(reviewer).get(f"/admin/jobs/reportjob/{job.public_id}/change/").content.decode()
