"""Each endpoint costs a fixed number of queries, whatever the page size, the number of
sources or the number of events. The counts include the token lookup."""

import datetime as dt

import pytest
from django.utils import timezone

from jobs.events import WORKER, event_record
from tests.factories import SourceItemFactory, SourceManifestFactory

from .conftest import client_for

pytestmark = pytest.mark.django_db

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
