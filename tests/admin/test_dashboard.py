"""The metrics dashboard page: a window, a workspace, figures and server-drawn SVG charts."""

import datetime as dt
import re
from decimal import Decimal

import pytest
import time_machine

from jobs.charts import horizontal_bars, nice_ceiling, stacked_columns
from jobs.models import ReportJob
from tests.admin.builders import job_in
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/admin/jobs/reportjob/metrics/"
NOW = dt.datetime(2026, 3, 31, 15, 0, tzinfo=dt.timezone.utc)


def card(html: str, label: str) -> str:
    start = html.index(f'<div class="rd-card-label">{label}</div>')
    return re.search(r'<div class="rd-card-value">([^<]*)</div>', html[start:]).group(1)


def made(status, workspace, days_ago, cost="0"):
    job = job_in(status, workspace=workspace)
    ReportJob.objects.filter(pk=job.pk).update(created_at=NOW - dt.timedelta(days=days_ago), cost_usd=Decimal(cost))
    return job


@time_machine.travel(NOW, tick=False)
def test_the_dashboard_shows_the_members_workspaces_over_the_window(as_user, operator, workspace, other_workspace):
    made("completed", workspace, 1, "0.30")
    made("completed", workspace, 20, "0.10")
    made("failed", workspace, 45, "9")
    made("completed", other_workspace, 1, "5")
    client = as_user(operator)

    default = client.get(URL).content.decode()
    last_week = client.get(URL, {"days": "7"}).content.decode()
    quarter = client.get(URL, {"days": "90"}).content.decode()

    assert card(default, "Reports submitted") == "2" and card(default, "Cost per completed report") == "$0.2000"
    assert "Jobs submitted from 2026-03-02 to 2026-03-31 (inclusive)" in default
    assert card(last_week, "Reports submitted") == "1" and card(last_week, "Cost per completed report") == "$0.3000"
    assert card(quarter, "Reports submitted") == "3" and card(quarter, "Cost per completed report") == "$4.7000"
    assert "Secret Lab" not in default


@time_machine.travel(NOW, tick=False)
def test_explicit_dates_and_a_workspace(as_user, superuser, workspace, other_workspace):
    made("completed", workspace, 10)
    made("completed", other_workspace, 10)
    made("completed", other_workspace, 2)
    client = as_user(superuser)

    both = client.get(URL, {"since": "2026-03-20", "until": "2026-03-25"}).content.decode()
    one = client.get(URL, {"since": "2026-03-20", "until": "2026-03-25", "workspace": other_workspace.pk}).content.decode()

    assert card(both, "Reports submitted") == "2" and card(one, "Reports submitted") == "1"
    assert "Jobs submitted from 2026-03-20 to 2026-03-25 (inclusive)" in both


@time_machine.travel(NOW, tick=False)
def test_a_workspace_that_is_not_yours_or_a_backwards_window_is_refused(as_user, operator, workspace, other_workspace):
    made("completed", other_workspace, 1)
    client = as_user(operator)

    foreign = client.get(URL, {"workspace": other_workspace.pk}).content.decode()
    backwards = client.get(URL, {"since": "2026-03-25", "until": "2026-03-20"}).content.decode()

    assert card(foreign, "Reports submitted") == "0"
    assert "The window must start before it ends." in backwards
    assert "Jobs submitted from 2026-03-02 to 2026-03-31" in backwards
    # a start alone runs to today: more than a year back is refused as a whole window is
    alone = client.get(URL, {"since": "1970-01-01"}).content.decode()
    assert "Choose at most 366 days." in alone and "Jobs submitted from 2026-03-02 to 2026-03-31" in alone
    assert "Choose at most" not in client.get(URL, {"since": "2025-04-01"}).content.decode()


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    "query",
    [{"until": "0001-01-02"}, {"since": "0001-01-01"}, {"since": "9999-12-01", "until": "9999-12-31"}],
)
def test_a_window_at_the_calendars_edges_is_refused(client, operator, workspace, query):
    made("completed", workspace, 1)
    client.force_login(operator)
    client.raise_request_exception = False  # the page a person gets, a 500 included

    response = client.get(URL, query)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Choose a day between 1970-01-01 and 9998-12-31." in html
    assert "Jobs submitted from 2026-03-02 to 2026-03-31" in html  # the default window instead
    assert card(html, "Reports submitted") == "1"


@time_machine.travel(NOW, tick=False)
def test_the_charts_are_inline_svg_and_nothing_is_fetched_from_elsewhere(as_user, operator, workspace):
    made("completed", workspace, 1)
    made("failed", workspace, 1)
    made("running", workspace, 3)

    html = as_user(operator).get(URL).content.decode()

    assert html.count('<svg class="rd-chart') >= 3
    over_time = html[html.index('id="chart-states-over-time"'):]
    over_time = over_time[: over_time.index("</figure>")]
    assert over_time.count("<rect") == 3
    assert "03-30: 1 completed" in over_time and "03-28: 1 generating report" in over_time
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_without_permission_to_see_jobs_there_is_no_dashboard(as_user):
    assert as_user(UserFactory(username="bystander")).get(URL).status_code == 403


def test_the_dashboard_keeps_a_fixed_query_budget(as_user, operator, workspace, django_assert_num_queries):
    for days_ago in range(20):
        made("completed", workspace, days_ago)
    client = as_user(operator)

    # session, user, roles, 2 permissions, workspaces, 10 for the metrics, 1 for the budgets,
    # 1 for the provider holds banner
    with django_assert_num_queries(18):
        client.get(URL)


@pytest.mark.parametrize(("value", "top"), [(0, 1), (0.3, 0.5), (1, 1), (3, 5), (7, 10), (12, 20), (480, 500), (501, 1000)])
def test_axes_end_on_round_numbers(value, top):
    assert nice_ceiling(value) == pytest.approx(top)


def test_stacked_columns_stack_in_order_and_scale_to_the_axis():
    chart = stacked_columns(
        [{"date": "2026-03-01", "a": 2, "b": 3}, {"date": "2026-03-02", "a": 0, "b": 0}],
        keys=[("a", "A"), ("b", "B")], width=240, height=134,
    )

    first, second = chart["columns"]
    # 100 px of plot for an axis topping at 5: 2 → 40 px at the bottom, 3 → 60 px above it.
    assert [(s["key"], s["height"], s["y"]) for s in first["segments"]] == [("a", "40", "70"), ("b", "60", "10")]
    assert second["segments"] == [] and first["label"] == "03-01"
    assert [t["label"] for t in chart["ticks"]] == ["0", "1.2", "2.5", "3.8", "5"]


def test_horizontal_bars_scale_to_the_maximum():
    chart = horizontal_bars([("x", "X", 1, "1"), ("y", "Y", 4, "4"), ("z", "Z", None, "—")], width=340)

    assert [b["length"] for b in chart["bars"]] == ["20", "80", "0"]
    assert horizontal_bars([], max_value=1)["empty"]
