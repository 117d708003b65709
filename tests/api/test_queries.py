"""Each endpoint costs a fixed number of queries, whatever the page size, the number of
sources or the number of events. The counts include the token lookup."""

import datetime as dt

import pytest
from django.utils import timezone

from jobs.events import WORKER, event_record
from tests.factories import SourceItemFactory, SourceManifestFactory

from .conftest import client_for

pytestmark = pytest.mark.django_db

# token+user · memberships (with their workspaces) · count · jobs (with workspace, template,
# requester) · their sources; one more (the earlier jobs) when a page has reruns
LIST_QUERIES = 5
# token+user · memberships · job · its sources
DETAIL_QUERIES = 4
# token+user · memberships · job · count · events
EVENTS_QUERIES = 5
# token+user · memberships · count · drafts (with claim holders) · manifest entries
QUEUE_QUERIES = 5


def _manifest(ws, sources: int):
    return SourceManifestFactory(workspace=ws, items=[SourceItemFactory(workspace=ws) for _ in range(sources)])


@pytest.mark.parametrize("jobs", [1, 50])
def test_the_job_list(make_job, requester, ws, django_assert_num_queries, jobs):
    for _ in range(jobs):
        make_job("running", source_manifest=_manifest(ws, 3))
    client = client_for(requester)
    with django_assert_num_queries(LIST_QUERIES):
        response = client.get("/api/v1/jobs/?page_size=50")
    assert len(response.json()["results"]) == jobs
    assert all(len(job["sources"]) == 3 and job["state"]["actions"] for job in response.json()["results"])


@pytest.mark.parametrize("jobs", [1, 50])
def test_a_list_of_reruns_reads_the_earlier_jobs_once(make_job, requester, ws, django_assert_num_queries, jobs):
    earlier = make_job("completed")
    for _ in range(jobs):
        make_job("queued", rerun_of=earlier)
    client = client_for(requester)
    with django_assert_num_queries(LIST_QUERIES + 1):
        response = client.get("/api/v1/jobs/?page_size=60")
    assert [job["rerun_of"] for job in response.json()["results"]] == [earlier.public_id] * jobs + [None]


@pytest.mark.parametrize("sources", [1, 50])
def test_the_job_detail(make_job, requester, ws, django_assert_num_queries, sources):
    job = make_job("queued", source_manifest=_manifest(ws, sources))
    client = client_for(requester)
    with django_assert_num_queries(DETAIL_QUERIES):
        response = client.get(f"/api/v1/jobs/{job.public_id}/")
    assert len(response.json()["sources"]) == sources


@pytest.mark.parametrize("events", [1, 50])
def test_the_events(make_job, requester, django_assert_num_queries, events):
    job = make_job("running")
    for _ in range(events):
        event_record(job=job, actor=WORKER, action="provider_notified", from_status="running")
    client = client_for(requester)
    with django_assert_num_queries(EVENTS_QUERIES):
        response = client.get(f"/api/v1/jobs/{job.public_id}/events/?page_size=50")
    assert len(response.json()["results"]) == events


@pytest.mark.parametrize("drafts", [1, 50])
def test_the_review_queue(make_job, reviewer, ws, django_assert_num_queries, drafts):
    from tests.factories import ReviewFactory

    for i in range(drafts):
        job = make_job("needs_review", source_manifest=_manifest(ws, 2))
        if i % 2:
            ReviewFactory(job=job, reviewer=reviewer, claim_expires_at=timezone.now() + dt.timedelta(minutes=5))
    client = client_for(reviewer)
    with django_assert_num_queries(QUEUE_QUERIES):
        response = client.get("/api/v1/reviews/queue/?page_size=50")
    assert len(response.json()["results"]) == drafts


# token+user · memberships with their workspaces (the workspace and the role) · template ·
# [savepoint] · the inline sources' items (one insert for all) · manifest · entries · job ·
# attempt · job.current_attempt · event · [release]. The answer's sources are the rows just
# written. Sources given by id are read in one query, however many.
SUBMIT_QUERIES = 12


@pytest.mark.parametrize("sources", [1, 5])
def test_a_submit_reads_nothing_its_inserts_know(requester, template, django_assert_num_queries, sources):
    client = client_for(requester)
    body = {"workspace": "acme", "template": template.slug, "topic": "Batteries", "sources": [{"text": f"Note {n}."} for n in range(sources)]}
    with django_assert_num_queries(SUBMIT_QUERIES):
        response = client.post("/api/v1/jobs/", body, format="json")
    assert response.status_code == 201
    assert [s["sid"] for s in response.json()["sources"]] == [f"S{n}" for n in range(1, sources + 1)]
    assert [s["title"] for s in response.json()["sources"]] == [f"Note {n}." for n in range(sources)]
    assert response.json()["input_summary"].endswith(f"{sources} source{'s' if sources > 1 else ''}.")


@pytest.mark.parametrize("stored", [1, 5])
def test_a_submit_of_stored_sources_and_pasted_text_costs_the_same_whatever_their_number(
    requester, ws, template, django_assert_num_queries, stored
):
    # given sources already in the workspace, sent by id beside a pasted text, in a mixed order
    items = [SourceItemFactory(workspace=ws, title=f"Stored {n}") for n in range(stored)]
    sources = [{"text": "Pasted."}] + [item.pk for item in reversed(items)]
    client = client_for(requester)
    # then one query reads the stored items, one insert writes the pasted one
    with django_assert_num_queries(SUBMIT_QUERIES + 1):
        response = client.post("/api/v1/jobs/", {"workspace": "acme", "template": template.slug, "topic": "T", "sources": sources}, format="json")
    assert response.status_code == 201, response.content
    assert [s["title"] for s in response.json()["sources"]] == ["Pasted."] + [f"Stored {n}" for n in reversed(range(stored))]
