"""The job endpoints: submit, read, list, edit, act, follow the events, download the report."""

import datetime as dt
import json
import threading

import pytest
from django.db import connection
from django.utils import timezone

from jobs.models import JobEvent, ReportJob
from reviews.models import Review
from sources.models import SourceItem
from tests.factories import SourceItemFactory
from tests.oncommit import work_callbacks

from .conftest import add_draft, approval, client_for, error_of

pytestmark = pytest.mark.django_db

# DESIGN.md, "A job reads:" — the contract, written out independently of the serializer.
JOB_FIELDS = {
    "id", "workspace", "template", "topic", "audience", "input_summary", "status", "state",
    "failure_class", "failure_message", "retryable", "review_state", "version",
    "provider_response_id", "last_checked_at", "next_check_at", "created_at", "started_at",
    "finished_at", "deadline", "archived_at", "requested_by", "sources", "cost", "written_offline",
}  # fmt: skip
COST_FIELDS = {
    "model", "input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens", "tool_calls",
    "retries", "runtime_seconds", "usd", "warning", "cap_usd",
}  # fmt: skip
SOURCE_FIELDS = {"id", "sid", "kind", "title", "url", "status", "error", "content_type", "size", "published_at"}


def _submit_body(**overrides):
    body = {
        "workspace": "acme",
        "template": "brief",
        "topic": "Battery recycling in Europe",
        "audience": "Product leadership",
        "sources": [
            {"title": "Capacity note", "text": "Capacity grew 40% in 2025."},
            {"url": "https://example.com/recycling"},
        ],
    }
    body.update(overrides)
    return body


# --- Submit ------------------------------------------------------------------------------


def test_submit_creates_a_queued_job_with_its_sources(requester, template, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client_for(requester).post("/api/v1/jobs/", _submit_body(), format="json")

    assert response.status_code == 201, response.json()
    job = response.json()
    assert JOB_FIELDS <= set(job)
    assert set(job["cost"]) == COST_FIELDS
    assert job["status"] == "queued" and job["review_state"] == "pending"
    assert job["workspace"] == "acme" and job["template"] == "brief" and job["requested_by"] == "rita"
    assert job["state"]["label"] == "Queued"
    assert "queued" in job["state"]["message"]
    assert job["state"]["actions"] == ["cancel", "edit"]
    assert [(s["sid"], s["kind"], s["status"]) for s in job["sources"]] == [("S1", "text", "ready"), ("S2", "url", "pending")]
    assert set(job["sources"][0]) == SOURCE_FIELDS
    assert job["cost"]["usd"] == "0.000000" and job["version"] == 0 and job["retryable"] is False
    assert job["written_offline"] is False  # no draft yet
    assert ReportJob.objects.get(public_id=job["id"]).topic == "Battery recycling in Europe"
    assert len(work_callbacks(callbacks)) == 1  # preparation is enqueued on commit


def test_submit_with_source_ids_and_an_internal_record(requester, ws, make_job):
    item = SourceItemFactory(workspace=ws)
    done = make_job("completed", draft=True)
    body = _submit_body(sources=[item.pk, {"record": done.public_id.upper()}])

    response = client_for(requester).post("/api/v1/jobs/", body, format="json")

    assert response.status_code == 201, response.json()
    kinds = [(s["id"] == item.pk, s["kind"]) for s in response.json()["sources"]]
    assert kinds == [(True, "text"), (False, "record")]


def test_the_job_url_uses_the_public_id(requester, make_job):
    job = make_job()
    response = client_for(requester).get(f"/api/v1/jobs/{job.public_id}/")
    assert response.status_code == 200
    assert response.json()["id"] == job.public_id
    # Read out over the phone in capitals, it still resolves.
    assert client_for(requester).get(f"/api/v1/jobs/{job.public_id.upper()}/").json()["id"] == job.public_id


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (_submit_body(topic=""), "topic", "blank"),
        (_submit_body(topic="   "), "topic", "blank"),
        (_submit_body(template="no-such-template"), "template", "Unknown template"),
        (_submit_body(workspace="globex"), "workspace", "no workspace"),
        (_submit_body(sources=[{"url": "ftp://example.com/x"}]), "sources", "http"),
        (_submit_body(sources=[{"url": "http://127.0.0.1/admin"}]), "sources", ""),
        (_submit_body(sources=[{"url": "http://xn--/"}]), "sources", ""),
        (_submit_body(sources=[{"url": "https://example.com", "text": "both"}]), "sources", "Unexpected"),
        (_submit_body(sources=["S1"]), "sources", "A source is"),
        (_submit_body(sources=[True]), "sources", "A source is"),
        (_submit_body(sources=[10**30]), "sources", "Unknown source"),
        (_submit_body(sources=[987654]), "sources", "does not exist"),
        (_submit_body(sources=[]), "sources", "At least one"),
        (_submit_body(topic=12), "topic", ""),
        (_submit_body(topic=["a"]), "topic", "valid string"),
        (_submit_body(deadline="yesterday"), "deadline", "format"),
        (_submit_body(deadline="2001-01-01T00:00:00Z"), "deadline", "future"),
        (_submit_body(audience="x" * 301), "audience", "300"),
        ([1, 2], "non_field_errors", "dictionary"),
    ],
)
def test_submit_refuses_bad_input_with_400_and_the_field(requester, template, other_ws, body, field, words):
    response = client_for(requester).post("/api/v1/jobs/", body, format="json")

    assert response.status_code == 400, response.json()
    error = error_of(response)
    assert error["code"] == "invalid"
    if field == "non_field_errors":
        assert words in error["message"]
    else:
        assert field in error["fields"], error
        assert words.lower() in json.dumps(error["fields"][field]).lower() + error["message"].lower()
    assert not ReportJob.objects.exists()


def test_submit_refuses_malformed_json(requester):
    response = client_for(requester).post("/api/v1/jobs/", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "parse_error"


def test_submit_refuses_a_form_body_with_415(requester):
    response = client_for(requester).post("/api/v1/jobs/", data="topic=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


def test_a_reviewer_cannot_submit(reviewer, template):
    response = client_for(reviewer).post("/api/v1/jobs/", _submit_body(), format="json")
    assert response.status_code == 403
    assert "requester or operator role" in error_of(response)["message"]


# --- Idempotency -------------------------------------------------------------------------


def test_the_same_key_and_body_return_the_same_job(requester, template):
    client = client_for(requester)
    first = client.post("/api/v1/jobs/", _submit_body(), format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    # The same body, its keys in another order, is the same request.
    reordered = dict(reversed(list(_submit_body().items())))
    again = client.post("/api/v1/jobs/", reordered, format="json", HTTP_IDEMPOTENCY_KEY="order-42")

    assert first.status_code == 201
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert ReportJob.objects.count() == 1
    assert SourceItem.objects.count() == 2  # the replay created no sources either


def test_the_same_key_with_another_body_is_refused(requester, template):
    client = client_for(requester)
    client.post("/api/v1/jobs/", _submit_body(), format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    response = client.post("/api/v1/jobs/", _submit_body(topic="Something else"), format="json", HTTP_IDEMPOTENCY_KEY="order-42")

    assert response.status_code == 400
    error = error_of(response)
    assert "Idempotency-Key" in error["fields"]
    assert "different request body" in error["message"]
    assert ReportJob.objects.count() == 1


def test_idempotency_keys_belong_to_their_caller(requester, operator, template):
    a = client_for(requester).post("/api/v1/jobs/", _submit_body(), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    b = client_for(operator).post("/api/v1/jobs/", _submit_body(), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]
    assert b.json()["requested_by"] == "olga"


@pytest.mark.parametrize("key", ["", "x" * 201, "spaces are not allowed"])
def test_a_malformed_idempotency_key_is_refused(requester, template, key):
    response = client_for(requester).post("/api/v1/jobs/", _submit_body(), format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert "Idempotency-Key" in error_of(response)["fields"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_submits_with_one_key_make_one_job(requester, template):
    """Both requests race through the API at once, many times: one job each time, and both
    callers are told its id."""
    for round_ in range(10):
        key = f"race-{round_}"
        barrier = threading.Barrier(2)
        answers, errors = [], []

        def submit():
            try:
                client = client_for(requester)
                barrier.wait()
                answers.append(client.post("/api/v1/jobs/", _submit_body(), format="json", HTTP_IDEMPOTENCY_KEY=key))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=submit) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert errors == []
        assert sorted(a.status_code for a in answers) == [200, 201], [a.json() for a in answers]
        assert len({a.json()["id"] for a in answers}) == 1
    assert ReportJob.objects.count() == 10


# --- Read and list -----------------------------------------------------------------------


def test_state_actions_are_computed_for_the_caller(make_job, requester, reviewer, operator):
    job = make_job("needs_review", draft=True)
    actions = {
        user.username: client_for(user).get(f"/api/v1/jobs/{job.public_id}/").json()["state"]["actions"]
        for user in (requester, reviewer, operator)
    }
    assert actions == {
        "rita": ["view_sources"],  # requesters never review their own report
        "victor": ["approve", "reject", "request_revision", "view_sources"],
        "olga": ["approve", "reject", "request_revision", "view_sources", "expire"],
    }


def test_a_failed_job_says_why_and_whether_it_can_be_retried(make_job, requester):
    job = make_job("failed", failure_class="policy_block")
    ReportJob.objects.filter(pk=job.pk).update(failure_message="The provider refused the request.")
    body = client_for(requester).get(f"/api/v1/jobs/{job.public_id}/").json()
    assert body["failure_class"] == "policy_block" and body["retryable"] is False
    assert "Policy block" in body["state"]["message"] and "refused" in body["state"]["message"]
    assert body["state"]["actions"] == ["revise", "rerun", "archive"]


def test_list_filters_paginates_and_orders(make_job, requester, ws, template):
    from tests.factories import ReportTemplateFactory

    other_template = ReportTemplateFactory(slug="scan")
    queued = make_job("queued")
    done = make_job("completed")
    archived = make_job("canceled", archived_at=timezone.now())
    scan = make_job("failed", template=other_template)
    client = client_for(requester)

    def ids(query):
        response = client.get(f"/api/v1/jobs/?{query}")
        assert response.status_code == 200, response.json()
        return [j["id"] for j in response.json()["results"]]

    assert ids("status=queued") == [queued.public_id]
    assert set(ids("status=queued&status=completed")) == {queued.public_id, done.public_id}
    assert ids("archived=true") == [archived.public_id]
    assert archived.public_id not in ids("archived=false")
    assert ids("template=scan") == [scan.public_id]
    assert len(ids("workspace=acme")) == 4
    assert ids("review_state=approved") == []
    assert ids("failure_class=provider_error") == [scan.public_id]
    assert ids("ordering=created_at")[0] == queued.public_id
    assert ids("")[0] == scan.public_id  # newest first by default

    page = client.get("/api/v1/jobs/?page_size=3").json()
    assert page["count"] == 4 and len(page["results"]) == 3 and page["next"]
    assert len(client.get(page["next"]).json()["results"]) == 1
    assert error_of(client.get("/api/v1/jobs/?page=9"))["code"] == "not_found"
    bad = client.get("/api/v1/jobs/?status=nonsense")
    assert bad.status_code == 400 and "status" in error_of(bad)["fields"]
    assert client.get("/api/v1/jobs/?created_after=soon").status_code == 400


def test_templates_are_listed(requester, template):
    body = client_for(requester).get("/api/v1/templates/").json()
    brief = next(t for t in body if t["slug"] == "brief")
    assert {"slug", "name", "report_type", "review_required", "mode"} <= set(brief)
    assert brief["review_required"] is True and brief["mode"] == "single"


# --- Edit --------------------------------------------------------------------------------


def test_patch_edits_the_request_until_it_is_locked(make_job, requester, ws):
    job = make_job("queued")
    client = client_for(requester)
    response = client.patch(
        f"/api/v1/jobs/{job.public_id}/",
        {"topic": "Battery recycling in Germany", "sources": [{"title": "New", "text": "Fresh facts."}]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["topic"] == "Battery recycling in Germany"
    assert [s["title"] for s in response.json()["sources"]] == ["New"]
    assert JobEvent.objects.filter(job=job, action="edited").count() == 1

    ReportJob.objects.filter(pk=job.pk).update(status="preparing", request_locked_at=timezone.now())
    locked = client.patch(f"/api/v1/jobs/{job.public_id}/", {"topic": "Too late"}, format="json")
    assert locked.status_code == 409
    assert "locked" in error_of(locked)["message"]
    assert client.put(f"/api/v1/jobs/{job.public_id}/", {"topic": "x"}, format="json").status_code == 405


def test_patch_refuses_a_past_deadline(make_job, requester):
    job = make_job("queued")
    past = (timezone.now() - dt.timedelta(hours=1)).isoformat()
    response = client_for(requester).patch(f"/api/v1/jobs/{job.public_id}/", {"deadline": past}, format="json")
    assert response.status_code == 400 and "deadline" in error_of(response)["fields"]


# --- Actions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "action", "who", "body", "expect_status"),
    [
        ("running", "cancel", "requester", {"reason": "No longer needed"}, "canceled"),
        ("running", "expire", "operator", {}, "expired"),
        ("failed", "retry", "requester", {}, "queued"),
        ("failed", "revise", "requester", {"instructions": "Use the 2025 figures."}, "queued"),
        ("rejected", "revise", "requester", {"instructions": "Cite the capacity figure."}, "queued"),
        ("completed", "archive", "requester", {}, "completed"),
    ],
)
def test_each_action_returns_the_job(make_job, requester, operator, status, action, who, body, expect_status):
    job = make_job(status)
    user = {"requester": requester, "operator": operator}[who]
    response = client_for(user).post(f"/api/v1/jobs/{job.public_id}/{action}/", body, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["id"] == job.public_id
    assert response.json()["status"] == expect_status
    event = JobEvent.objects.filter(job=job).last()
    assert event.actor_name == user.username
    if body.get("reason"):
        assert event.reason == body["reason"]


def test_actions_take_an_empty_body(make_job, requester):
    job = make_job("queued")
    response = client_for(requester).post(f"/api/v1/jobs/{job.public_id}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "canceled"
    # Canceling twice yields the same canceled job and one event.
    again = client_for(requester).post(f"/api/v1/jobs/{job.public_id}/cancel/")
    assert again.status_code == 200
    assert JobEvent.objects.filter(job=job, action="canceled").count() == 1


def test_archive_and_unarchive(make_job, requester):
    job = make_job("completed")
    client = client_for(requester)
    archived = client.post(f"/api/v1/jobs/{job.public_id}/archive/").json()
    assert archived["archived_at"] and archived["state"]["actions"] == ["unarchive", "open", "export"]
    restored = client.post(f"/api/v1/jobs/{job.public_id}/unarchive/").json()
    assert restored["archived_at"] is None


def test_an_action_the_state_does_not_allow_is_409_with_the_allowed_actions(make_job, requester):
    job = make_job("completed")
    response = client_for(requester).post(f"/api/v1/jobs/{job.public_id}/cancel/")
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "invalid_transition"
    assert "Allowed now: open, export, archive" in error["message"]


def test_retrying_a_non_retryable_failure_is_409_not_retryable(make_job, requester):
    job = make_job("failed", failure_class="validation_error")
    response = client_for(requester).post(f"/api/v1/jobs/{job.public_id}/retry/")
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "not_retryable" and "revise" in error["message"].lower()


def test_rerun_returns_the_new_job(make_job, requester):
    job = make_job("canceled")
    response = client_for(requester).post(f"/api/v1/jobs/{job.public_id}/rerun/", {"audience": "The board"}, format="json")
    assert response.status_code == 201, response.json()
    new = response.json()
    assert new["id"] != job.public_id
    assert new["rerun_of"] == job.public_id and new["status"] == "queued" and new["audience"] == "The board"
    assert JobEvent.objects.filter(job=job, action="rerun").get().details == {"new_job": new["id"]}


def test_revise_needs_instructions(make_job, requester):
    job = make_job("failed")
    response = client_for(requester).post(f"/api/v1/jobs/{job.public_id}/revise/", {"instructions": ""}, format="json")
    assert response.status_code == 400 and "instructions" in error_of(response)["fields"]


# --- Review ------------------------------------------------------------------------------


def test_a_reviewer_approves_a_draft(make_job, reviewer):
    job = make_job("needs_review", draft=True)
    response = client_for(reviewer).post(
        f"/api/v1/jobs/{job.public_id}/review/",
        approval(comment="Well sourced."),
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "completed" and response.json()["review_state"] == "approved"
    review = Review.objects.get(job=job)
    assert review.reviewer == reviewer and review.decision == "approve" and all(review.checklist.values())


def test_a_decision_on_a_version_the_reviewer_did_not_read_is_refused(make_job, reviewer):
    job = make_job("needs_review", draft=True)
    ReportJob.objects.filter(pk=job.pk).update(version=2)  # a revision arrived meanwhile
    response = client_for(reviewer).post(f"/api/v1/jobs/{job.public_id}/review/", approval(version=1), format="json")
    assert response.status_code == 409
    assert "now version 2; you read version 1" in response.json()["error"]["message"]
    assert not Review.objects.filter(job=job, decision="approve").exists()


def test_section_comments_go_to_the_revision(make_job, reviewer):
    job = make_job("needs_review", draft=True)
    response = client_for(reviewer).post(
        f"/api/v1/jobs/{job.public_id}/review/",
        {"decision": "request_revision", "comment": "Tighten it.", "section_comments": {"Findings": "Cite the 2025 figure."}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    job.refresh_from_db()
    assert "Cite the 2025 figure." in job.current_attempt.instructions


def test_approving_without_the_checklist_says_what_is_missing(make_job, reviewer):
    job = make_job("needs_review", draft=True)
    response = client_for(reviewer).post(f"/api/v1/jobs/{job.public_id}/review/", {"decision": "approve"}, format="json")
    assert response.status_code == 400
    assert "checklist" in error_of(response)["fields"]
    bad = client_for(reviewer).post(
        f"/api/v1/jobs/{job.public_id}/review/", {"decision": "approve", "checklist": {"safe_for_audience": "yes"}}, format="json"
    )
    assert bad.status_code == 400 and "checklist" in error_of(bad)["fields"]


@pytest.mark.parametrize(
    ("decision", "status", "review_state"),
    [("reject", "rejected", "rejected"), ("request_revision", "queued", "revision_requested")],
)
def test_reject_and_request_revision(make_job, reviewer, decision, status, review_state):
    job = make_job("needs_review", draft=True)
    client = client_for(reviewer)
    missing = client.post(f"/api/v1/jobs/{job.public_id}/review/", {"decision": decision}, format="json")
    assert missing.status_code == 400 and "comment" in error_of(missing)["fields"]

    response = client.post(f"/api/v1/jobs/{job.public_id}/review/", {"decision": decision, "comment": "Cite S2."}, format="json")
    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["review_state"]) == (status, review_state)


def test_an_unknown_decision_is_400(make_job, reviewer):
    job = make_job("needs_review", draft=True)
    response = client_for(reviewer).post(f"/api/v1/jobs/{job.public_id}/review/", {"decision": "maybe"}, format="json")
    assert response.status_code == 400 and "decision" in error_of(response)["fields"]


def test_reviewing_your_own_report_is_refused(make_job, operator):
    job = make_job("needs_review", draft=True, requested_by=operator)
    response = client_for(operator).post(f"/api/v1/jobs/{job.public_id}/review/", approval(), format="json")
    assert response.status_code == 403
    assert "someone else must review" in error_of(response)["message"]


def test_claim_release_and_the_queue(make_job, reviewer, operator, requester):
    older = make_job("needs_review", draft=True)
    newer = make_job("needs_review", draft=True)
    ReportJob.objects.filter(pk=older.pk).update(finished_at=timezone.now() - dt.timedelta(hours=2))
    make_job("needs_review", draft=True, requested_by=operator)  # the operator's own: not in their queue

    claim = client_for(reviewer).post(f"/api/v1/jobs/{newer.public_id}/claim/")
    assert claim.status_code == 200 and claim.json()["reviewer"] == "victor"

    queue = client_for(operator).get("/api/v1/reviews/queue/").json()
    assert [item["job"]["id"] for item in queue["results"]] == [older.public_id, newer.public_id]
    assert queue["results"][0]["claim"] is None and queue["results"][0]["waiting_seconds"] >= 7200
    assert queue["results"][1]["claim"]["reviewer"] == "victor"

    taken = client_for(operator).post(f"/api/v1/jobs/{newer.public_id}/review/", approval(), format="json")
    assert taken.status_code == 409 and "victor" in error_of(taken)["message"]

    assert client_for(reviewer).post(f"/api/v1/jobs/{newer.public_id}/release/").status_code == 204
    queue = client_for(operator).get("/api/v1/reviews/queue/").json()
    assert queue["results"][1]["claim"] is None
    assert client_for(requester).get("/api/v1/reviews/queue/").status_code == 403  # requesters never review


# --- Events and the report ---------------------------------------------------------------


def test_events_tell_the_story(make_job, requester):
    job = make_job("queued")
    client = client_for(requester)
    client.post(f"/api/v1/jobs/{job.public_id}/cancel/", {"reason": "Wrong topic"}, format="json")
    client.post(f"/api/v1/jobs/{job.public_id}/archive/")

    events = client.get(f"/api/v1/jobs/{job.public_id}/events/").json()["results"]
    assert [(e["action"], e["from_status"], e["to_status"], e["actor"]) for e in events] == [
        ("canceled", "queued", "canceled", "rita"),
        ("archived", "canceled", "canceled", "rita"),
    ]
    assert events[0]["reason"] == "Wrong topic" and events[0]["actor_kind"] == "user"


def test_the_report_in_three_formats_and_by_version(make_job, requester):
    job = make_job("completed", draft=True)
    add_draft(job)  # version 2
    client = client_for(requester)

    md = client.get(f"/api/v1/jobs/{job.public_id}/report/?format=md")
    assert md.status_code == 200 and md["Content-Type"].startswith("text/markdown")
    assert md.content.decode().startswith("# Battery recycling in Europe v2")

    html = client.get(f"/api/v1/jobs/{job.public_id}/report/?format=html&version=1")
    assert html["Content-Type"].startswith("text/html") and "<h1>Battery recycling in Europe v1</h1>" in html.content.decode()
    assert "sandbox" in html["Content-Security-Policy"]

    body = client.get(f"/api/v1/jobs/{job.public_id}/report/?format=json").json()
    assert body["job"] == job.public_id and body["version"] == 2 and body["versions"] == [1, 2]
    assert body["report"]["title"] == "Battery recycling in Europe v2"
    assert body["citations"][0]["source_id"] == "S1"

    exports = JobEvent.objects.filter(job=job, action="exported")
    assert [(e.details["format"], e.details["version"]) for e in exports] == [("md", 2), ("html", 1), ("json", 2)]
    job.refresh_from_db()
    assert job.exported_at and job.first_opened_at


def test_a_job_without_a_draft_has_no_report(make_job, requester):
    job = make_job("running")
    response = client_for(requester).get(f"/api/v1/jobs/{job.public_id}/report/?format=md")
    assert response.status_code == 404
    assert "no draft yet" in error_of(response)["message"]
    missing = client_for(requester).get(f"/api/v1/jobs/{make_job('completed', draft=True).public_id}/report/?version=7")
    assert missing.status_code == 404 and "no version 7" in error_of(missing)["message"]
    bad = client_for(requester).get(f"/api/v1/jobs/{job.public_id}/report/?format=rtf")
    assert bad.status_code == 400 and "format" in error_of(bad)["fields"]


def test_approving_a_draft_whose_checks_failed_needs_an_override_reason(make_job, reviewer):
    job = make_job("needs_review", draft=True)
    job.template.required_sections = ["Overview", "Findings", "Risks"]  # the draft has no Risks section
    job.template.save()
    client = client_for(reviewer)

    refused = client.post(f"/api/v1/jobs/{job.public_id}/review/", approval(), format="json")
    assert refused.status_code == 400
    assert "override_reason" in error_of(refused)["fields"]

    approved = client.post(
        f"/api/v1/jobs/{job.public_id}/review/", approval(override_reason="Risks are covered in the appendix."), format="json"
    )
    assert approved.status_code == 200, approved.json()
    assert Review.objects.get(job=job, decision="approve").override_reason == "Risks are covered in the appendix."
