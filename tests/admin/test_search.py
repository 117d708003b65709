"""The job list's search: ids, topic and requester as before, and now the report's text and
the sources' titles (full-text on PostgreSQL, every word on SQLite), at the list's fixed
query cost."""

import re

import pytest
from django.db import connection

from jobs.search import jobs_matching_text, report_versions_matching
from jobs.models import ReportJob
from sources.models import SourceItem
from tests.admin.builders import job_in, report_json, store_report

pytestmark = pytest.mark.django_db

URL = "/admin/jobs/reportjob/"


def listed(response) -> set[str]:
    return set(re.findall(r'<th class="field-public_id"><a href="[^"]+">([0-9a-z]+)</a>', response.content.decode()))


def titled(job, title):
    SourceItem.objects.filter(entries__manifest=job.source_manifest_id).update(title=title)
    return job


@pytest.fixture
def jobs(workspace):
    report = report_json(
        title="Heat pumps in cold climates",
        executive_summary="Installers report rising demand for ground-source systems [S1].",
        sections=[{"heading": "Economics", "body": "Payback periods shortened to seven years [S1].", "citations": ["S1"]}],
    )
    return {
        "report": store_report(job_in("queued", workspace=workspace, topic="Residential heating"), report),
        "source": titled(job_in("queued", workspace=workspace, topic="Grid tenders"), "Capacity survey of storage tenders 2025"),
        "neither": titled(job_in("queued", workspace=workspace, topic="Fleet electrification"), "Depot charging note"),
    }


def test_words_of_the_report_find_its_job(as_user, operator, jobs):
    response = as_user(operator).get(URL, {"q": "payback periods"})

    assert listed(response) == {jobs["report"].public_id}


def test_words_of_a_source_title_find_its_job(as_user, operator, jobs):
    response = as_user(operator).get(URL, {"q": "capacity survey"})

    assert listed(response) == {jobs["source"].public_id}


def test_the_topic_id_and_requester_are_still_searched(as_user, operator, jobs):
    client = as_user(operator)

    assert listed(client.get(URL, {"q": "electrification"})) == {jobs["neither"].public_id}
    assert listed(client.get(URL, {"q": jobs["source"].public_id})) == {jobs["source"].public_id}


def test_a_word_nowhere_finds_nothing(as_user, operator, jobs):
    assert listed(as_user(operator).get(URL, {"q": "photovoltaic"})) == set()


def test_search_never_reaches_another_workspace(as_user, operator, jobs, other_workspace):
    theirs = titled(job_in("queued", workspace=other_workspace, topic="Secret"), "Capacity survey of their own")

    found = listed(as_user(operator).get(URL, {"q": "capacity survey"}))

    assert theirs.public_id not in found and found == {jobs["source"].public_id}


@pytest.mark.parametrize("rows", [1, 40])
def test_a_text_search_costs_the_lists_fixed_queries(rows, as_user, operator, workspace, django_assert_num_queries):
    client = as_user(operator)
    for _ in range(rows):
        titled(job_in("queued", workspace=workspace), "Capacity survey")
    client.get(URL)  # the session and the user's roles are read once, as on any later page

    # the template and workspace filters; the capped count; the page of rows.
    with django_assert_num_queries(10):
        response = client.get(URL, {"q": "capacity survey", "all": ""})

    assert len(listed(response)) == rows


@pytest.mark.postgres
def test_postgresql_matches_word_forms_and_phrases(workspace, jobs):
    everything = ReportJob.objects.all()

    assert set(jobs_matching_text(everything, "shortening")) == {jobs["report"]}  # stemmed
    assert set(jobs_matching_text(everything, '"storage tenders" -depot')) == {jobs["source"]}
    assert set(jobs_matching_text(everything, '"tenders storage"')) == set()


@pytest.mark.postgres
def test_postgresql_serves_report_text_search_from_its_index(jobs):
    # The planner uses an expression index only for a filter on the very same expression (and
    # a partial index only under its WHERE). Whether it picks it depends on the tables' sizes,
    # so the test compares expressions, not plans: the filter jobs_matching_text puts on report
    # versions, as PostgreSQL reads it (a plain scan's Filter), holds the index's expression
    # and its predicate, both as PostgreSQL writes them.
    query = report_versions_matching("payback")
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_indexdef('jobs_artifact_report_fts'::regclass)")
        indexed, predicate = re.search(r"USING gin \((.*)\) WHERE \((.*)\)$", cursor.fetchone()[0]).groups()
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"EXPLAIN (VERBOSE) {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall()).replace("jobs_artifact.", "")

    assert indexed in plan and predicate in plan, (indexed, predicate, plan)
    assert list(query.values_list("job", flat=True)) == [jobs["report"].pk]
