"""The operator console's job list: columns, filters, search, scoping and its query budget."""

import datetime as dt
import re
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from jobs.admin import CappedCountPaginator
from jobs.models import ReportJob
from tests.admin.builders import job_in
from tests.factories import ReportJobFactory, ReportTemplateFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/admin/jobs/reportjob/"


def listed(response) -> list[str]:
    """The public ids on the page, in order."""
    return re.findall(r'<th class="field-public_id"><a href="[^"]+">([0-9a-z]+)</a>', response.content.decode())


# A fixed number of queries whatever the row count: session, user, then for scoped staff
# their memberships and permissions (user + group); the template and workspace filters; the
# capped count; the page of rows (workspace, requester and template joined in); the provider
# holds for the operators' banner.
@pytest.mark.parametrize("rows", [1, 200])
@pytest.mark.parametrize(("who", "queries"), [("operator", 10), ("superuser", 7)])
def test_the_list_costs_the_same_queries_for_1_and_200_jobs(rows, who, queries, request, as_user, workspace, django_assert_num_queries):
    client = as_user(request.getfixturevalue(who))
    statuses = ["queued", "running", "failed", "completed", "needs_review"]
    for i in range(rows):
        job_in(statuses[i % len(statuses)], workspace=workspace, template=ReportTemplateFactory(slug=f"t{i % 3}"))

    with django_assert_num_queries(queries):
        response = client.get(URL, {"all": ""})  # Django's "show all": every row on one page

    assert response.status_code == 200
    assert len(listed(response)) == rows


@time_machine.travel(dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc), tick=False)
def test_each_row_shows_what_an_operator_scans_for(as_user, operator, workspace):
    job = job_in("failed", workspace=workspace, failure_class="timeout", topic="Heat pump retrofit economics")
    ReportJob.objects.filter(pk=job.pk).update(
        cost_usd=Decimal("0.0423"), runtime_seconds=125, last_checked_at=timezone.now() - dt.timedelta(seconds=20),
        created_at=timezone.now() - dt.timedelta(hours=3),
    )

    page = as_user(operator).get(URL).content.decode()

    row = page[page.index(job.public_id):]
    row = row[: row.index("</tr>")]
    for expected in (
        "Heat pump retrofit economics", "Research Ops", job.requested_by.username, job.template.name,
        '<span class="rd-badge rd-status-failed">Failed</span>', '<span class="rd-review rd-review-pending">Pending</span>',
        "20 s ago", "3\xa0hours", "2 min 05 s", "$0.0423", "Timeout",
    ):
        assert expected in row, expected


@time_machine.travel(dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc), tick=False)
def test_a_running_job_shows_its_runtime_so_far(as_user, operator, workspace):
    job_in("running", workspace=workspace)  # started two minutes ago

    assert "2 min 00 s so far" in as_user(operator).get(URL).content.decode()


def test_staff_see_only_their_workspaces_and_the_filter_offers_only_those(as_user, operator, workspace, other_workspace):
    mine = job_in("queued", workspace=workspace)
    job_in("queued", workspace=other_workspace, topic="Another workspace's secret topic")

    response = as_user(operator).get(URL)
    page = response.content.decode()

    assert listed(response) == [mine.public_id]
    assert "Secret Lab" not in page and "secret topic" not in page
    assert as_user(operator).get(URL, {"workspace": other_workspace.pk}).content.decode().count('class="field-public_id"') == 0


def test_a_superuser_sees_every_workspace(as_user, superuser, workspace, other_workspace):
    a = job_in("queued", workspace=workspace)
    b = job_in("queued", workspace=other_workspace)

    response = as_user(superuser).get(URL)

    assert set(listed(response)) == {a.public_id, b.public_id}
    assert listed(as_user(superuser).get(URL, {"workspace": other_workspace.pk})) == [b.public_id]


def test_archived_jobs_are_hidden_unless_asked_for(as_user, operator, workspace):
    active = job_in("completed", workspace=workspace)
    archived = job_in("completed", workspace=workspace, archived=True)
    client = as_user(operator)

    assert listed(client.get(URL)) == [active.public_id]
    assert listed(client.get(URL, {"archived": "yes"})) == [archived.public_id]
    assert set(listed(client.get(URL, {"archived": "all"}))) == {active.public_id, archived.public_id}
    assert '<span class="rd-badge rd-archived">archived</span>' in client.get(URL, {"archived": "yes"}).content.decode()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status__exact": "running"}, {"running"}),
        ({"review_state__exact": "approved"}, {"approved"}),
        ({"failure_class__exact": "policy_block"}, {"blocked"}),
        ({"template__id__exact": "T"}, {"special"}),
        ({"created_at__gte": "D", "created_at__lt": "E"}, {"old"}),
    ],
)
def test_filters(params, expected, as_user, operator, workspace):
    jobs = {
        "running": job_in("running", workspace=workspace),
        "approved": job_in("completed", workspace=workspace, review_state="approved"),
        "blocked": job_in("failed", workspace=workspace, failure_class="policy_block"),
        "timeout": job_in("failed", workspace=workspace, failure_class="timeout"),
        "special": job_in("queued", workspace=workspace, template=ReportTemplateFactory(slug="special")),
        "old": job_in("queued", workspace=workspace),
    }
    old_day = timezone.now() - dt.timedelta(days=40)
    ReportJob.objects.filter(pk=jobs["old"].pk).update(created_at=old_day)
    substitutions = {
        "T": str(jobs["special"].template_id),
        # As the created-date filter's own links spell them.
        "D": f"{old_day.date().isoformat()} 00:00:00+00:00",
        "E": f"{(old_day.date() + dt.timedelta(days=1)).isoformat()} 00:00:00+00:00",
    }
    params = {key: substitutions.get(value, value) for key, value in params.items()}

    response = as_user(operator).get(URL, params)

    assert set(listed(response)) == {jobs[name].public_id for name in expected}


@pytest.mark.parametrize("field", ["public_id", "provider_response_id", "topic", "requester"])
def test_search(field, as_user, operator, workspace):
    target = job_in("running", workspace=workspace, topic="Sodium-ion cell suppliers",
                    requested_by=UserFactory(username="petra"))
    job_in("running", workspace=workspace, topic="Something else")
    term = {"public_id": target.public_id, "provider_response_id": target.provider_response_id,
            "topic": "sodium-ion", "requester": "petr"}[field]

    assert listed(as_user(operator).get(URL, {"q": term})) == [target.public_id]


def test_a_huge_list_counts_no_further_than_the_cap(as_user, operator, workspace, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "CAP", 5)
    for status in ["queued"] * 5 + ["running"] * 2:
        job_in(status, workspace=workspace)
    client = as_user(operator)

    page = client.get(URL).content.decode()
    narrowed = client.get(URL, {"status__exact": "running"}).content.decode()

    assert "5+ report jobs" in page and "narrow the list with filters" in page
    assert "7 report jobs" not in page
    assert "2 report jobs" in narrowed and "narrow the list" not in narrowed


def test_a_small_list_shows_its_exact_count(as_user, operator, workspace):
    for _ in range(3):
        ReportJobFactory(workspace=workspace)

    page = as_user(operator).get(URL).content.decode()

    assert "3 report jobs" in page and "+ report jobs" not in page


def test_the_list_links_to_the_dashboard_and_the_index_links_to_the_console(as_user, operator):
    client = as_user(operator)

    assert 'href="/admin/jobs/reportjob/metrics/"' in client.get(URL).content.decode()
    index = client.get("/admin/").content.decode()
    assert "Operations console" in index and 'href="/admin/jobs/reportjob/metrics/"' in index


def test_the_index_still_works_for_staff_without_console_access(as_user):
    bystander = UserFactory(username="bystander")

    response = as_user(bystander).get("/admin/")

    assert response.status_code == 200 and "Operations console" not in response.content.decode()
