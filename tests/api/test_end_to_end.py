"""A whole job's life over HTTP, with a real worker (qcluster) and the local provider:
submit, follow to needs_review, read the report in every format, approve (a reviewer who is
not the requester), archive — and the events tell that story."""

import pytest

from reportdesk.models import Role
from tests.factories import ReportTemplateFactory, WorkspaceFactory, member
from tests.workers import wait_for

from .conftest import approval, client_for

SOURCE_TEXT = (
    "European battery recycling capacity reached 410,000 tonnes a year in 2025. "
    "Most plants recover lithium, nickel and cobalt from black mass. "
    "Regulation requires 50% lithium recovery by 2027."
)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_job_lives_its_whole_life_over_the_api(worker):
    # given a workspace with a requester and a reviewer, and a template that needs review
    workspace = WorkspaceFactory(slug="research-ops")
    requester = client_for(member(workspace, Role.REQUESTER, "rita"))
    reviewer = client_for(member(workspace, Role.REVIEWER, "victor"))
    ReportTemplateFactory(slug="market-scan", name="Market scan", required_sections=[], review_required=True)
    process = worker()

    # when the requester submits, with a retry-safe key
    body = {
        "workspace": "research-ops",
        "template": "market-scan",
        "topic": "Battery recycling capacity in Europe",
        "audience": "Product leadership",
        "sources": [{"title": "Market note", "text": SOURCE_TEXT}],
    }
    submitted = requester.post("/api/v1/jobs/", body, format="json", HTTP_IDEMPOTENCY_KEY="e2e-1")
    assert submitted.status_code == 201, submitted.json()
    job_id = submitted.json()["id"]
    url = f"/api/v1/jobs/{job_id}/"

    # then following it brings it to needs_review
    def status():
        return requester.get(url).json()["status"]

    wait_for(lambda: status() == "needs_review", timeout=60, message=lambda: f"needs_review ({status()}); worker log:\n{process.log()}")
    job = requester.get(url).json()
    assert job["version"] == 1 and job["review_state"] == "pending" and job["written_offline"] is True
    assert job["cost"]["model"] and job["cost"]["input_tokens"] > 0
    assert job["sources"][0]["status"] == "ready"
    assert job["state"]["actions"] == ["view_sources"]  # the requester may not review it

    # the reviewer reads the draft in all three formats
    md = reviewer.get(f"{url}report/?format=md")
    html = reviewer.get(f"{url}report/?format=html")
    structured = reviewer.get(f"{url}report/?format=json")
    assert md.status_code == html.status_code == structured.status_code == 200
    assert md["Content-Type"].startswith("text/markdown") and md.content.decode().startswith("# ")
    assert html["Content-Type"].startswith("text/html") and "<h1>" in html.content.decode()
    assert "<script" not in html.content.decode()
    report = structured.json()
    assert report["job"] == job_id and report["version"] == 1 and report["versions"] == [1]
    assert report["report"]["sections"] and all(c["in_manifest"] for c in report["citations"])

    # and approves it
    approved = reviewer.post(f"{url}review/", approval(comment="Sourced and fair."), format="json")
    assert approved.status_code == 200, approved.json()
    assert approved.json()["status"] == "completed" and approved.json()["review_state"] == "approved"

    # the requester archives the completed report
    archived = requester.post(f"{url}archive/", {"reason": "Delivered to leadership"}, format="json")
    assert archived.status_code == 200 and archived.json()["archived_at"]

    # and the events tell the story, each step by whom it was done
    events = requester.get(f"{url}events/").json()["results"]
    story = [(e["action"], e["actor"], e["to_status"]) for e in events]
    assert story == [
        ("submitted", "rita", "queued"),
        ("preparing", "system (worker)", "preparing"),
        ("started", "system (worker)", "running"),
        ("draft_ready", "system (worker)", "needs_review"),
        ("exported", "victor", "needs_review"),
        ("exported", "victor", "needs_review"),
        ("exported", "victor", "needs_review"),
        ("claimed", "victor", "needs_review"),
        ("approved", "victor", "completed"),
        ("archived", "rita", "completed"),
    ]
    assert [e["details"]["format"] for e in events if e["action"] == "exported"] == ["md", "html", "json"]
    assert events[-1]["reason"] == "Delivered to leadership"
