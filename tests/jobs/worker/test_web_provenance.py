"""Web provenance end to end, against the strict fake and a loopback page server: a web-search
report cites three pages — one the search returned whose quote is on it, one the search
returned whose quote is not, one the search never returned. The checks pass the first and
fail the other two, the pages are fetched (only those the search returned) and kept as source
items of the attempt, and approval needs an override."""

import json

import pytest

from jobs import services
from jobs.models import Artifact, AttemptWebPage
from reportdesk.errors import ValidationFailed
from reportdesk.models import Role
from reviews import services as review_services
from reviews.checks import PART_WEB, URL_IN_MANIFEST, WEB_QUOTE_FOUND, WEB_URL_RETURNED, Outcome
from reviews.selectors import checks_for_attempt
from sources.services import SourceSpec
from tests.factories import ReportTemplateFactory, WorkspaceFactory, member
from tests.fakes.responses_api import CREATE, Script, build_report
from tests.jobs.worker.test_step import advance
from tests.sources.conftest import site  # noqa: F401 (the loopback page server fixture)

pytestmark = pytest.mark.django_db

PAGE_A = b"<html><head><title>Recycling outlook</title></head><body><p>Europe recycled 410,000 tonnes of batteries in 2025, a record.</p></body></html>"
PAGE_B = b"<html><head><title>Unrelated</title></head><body><p>This page is about gardening in spring.</p></body></html>"


def report_citing(pages: list[tuple[str, str, str]]) -> str:
    report = build_report("Topic: Battery recycling\n=== S1: Note ===\nCapacity grew in 2025.")
    report["web_citations"] = [
        {"claim": f"Claim {n}", "url": url, "title": title, "quote": quote} for n, (url, title, quote) in enumerate(pages, 1)
    ]
    report["sections"][0]["body"] += " " + " ".join(f"[{title}]({url})" for url, title, _ in pages)
    return json.dumps(report)


def test_web_citations_are_checked_against_the_search_and_the_pages(site, openai_fake, openai_provider, settings):  # noqa: F811
    settings.SOURCE_ALLOWED_INTERNAL_HOSTS = ["localhost"]
    site.route("/a", body=PAGE_A, headers={"Content-Type": "text/html; charset=utf-8"})
    site.route("/b", body=PAGE_B, headers={"Content-Type": "text/html; charset=utf-8"})
    url_a, url_b, url_c = site.url("/a"), site.url("/b"), site.url("/c")
    openai_fake.script_next(Script(
        statuses=("completed",),
        web_pages=((url_a, "Recycling outlook"), (url_b, "Unrelated")),
        url_citations=((url_a, "Recycling outlook"),),
        output_text=report_citing([
            (url_a, "Recycling outlook", "Europe recycled 410,000 tonnes of batteries in 2025"),  # on the page
            (url_b, "Unrelated", "Battery prices fell by half"),  # returned, but not on the page
            (url_c, "Invented", "A page nobody searched for"),  # never returned
        ]),
    ))
    workspace = WorkspaceFactory()
    requester = member(workspace, Role.REQUESTER)
    template = ReportTemplateFactory(model="gpt-5.2", web_search=True, web_search_domains=["localhost"])
    job = services.job_submit(workspace=workspace, requested_by=requester, template=template, topic="Battery recycling",
                              sources=[SourceSpec(title="Note", text="Capacity grew in 2025.")])

    job = advance(job, openai_provider, times=2)

    assert job.status == "needs_review"
    [create] = openai_fake.requests_to(CREATE)
    assert create.body["include"] == ["web_search_call.action.sources"]
    assert create.body["tools"] == [{"type": "web_search", "filters": {"allowed_domains": ["localhost"]}}]
    assert "web_citations row" in create.body["instructions"]
    # only the pages the search returned were fetched, each kept as a source item of the attempt
    assert sorted(site.requests) == ["/a", "/b"]
    pages = {page.url: page.item for page in AttemptWebPage.objects.filter(attempt=job.current_attempt)}
    assert set(pages) == {url_a, url_b} and "410,000 tonnes" in pages[url_a].text
    # each web citation is stored as evidence with its URL and title
    evidence = json.loads(Artifact.objects.get(job=job, kind="evidence").content)
    web_evidence = [row for row in evidence if row.get("url")]
    assert [(row["url"], row["title"]) for row in web_evidence] == [(url_a, "Recycling outlook"), (url_b, "Unrelated"), (url_c, "Invented")]
    citations = json.loads(Artifact.objects.get(job=job, kind="citations").content)
    assert [c["returned_by_search"] for c in citations if c.get("web")] == [True, True, False]

    checks = checks_for_attempt(attempt=job.current_attempt)
    outcome = {(r.check, r.index): r.outcome for r in checks.results if r.part == PART_WEB}
    assert outcome[(WEB_URL_RETURNED, 0)] == Outcome.PASSED and outcome[(WEB_QUOTE_FOUND, 0)] == Outcome.PASSED
    assert outcome[(WEB_URL_RETURNED, 1)] == Outcome.PASSED and outcome[(WEB_QUOTE_FOUND, 1)] == Outcome.FAILED
    assert outcome[(WEB_URL_RETURNED, 2)] == Outcome.FAILED and (WEB_QUOTE_FOUND, 2) not in outcome
    # the links in the text are judged the same way
    links = {r.claim: r.outcome for r in checks.results if r.check == URL_IN_MANIFEST}
    assert links[url_a] == links[url_b] == Outcome.PASSED and links[url_c] == Outcome.FAILED

    reviewer = member(workspace, Role.REVIEWER)
    confirmed = dict.fromkeys(review_services.CHECKLIST, True)
    with pytest.raises(ValidationFailed) as refused:
        review_services.review_decide(job=job, reviewer=reviewer, decision="approve", checklist=confirmed)
    assert "override_reason" in refused.value.fields
    job = review_services.review_decide(job=job, reviewer=reviewer, decision="approve", checklist=confirmed,
                                        override_reason="Checked page B by hand; dropping the invented link in the final copy.")
    assert job.status == "completed"


def test_domain_lists_are_normalised_and_bounded():
    from django.core.exceptions import ValidationError

    template = ReportTemplateFactory.build(web_search=True, web_search_domains=["https://www.Europa.eu/path", "iea.org", "iea.org:443"])
    template.full_clean()
    assert template.web_search_domains == ["europa.eu", "iea.org"]

    with pytest.raises(ValidationError) as refused:
        ReportTemplateFactory.build(web_search_domains=[f"site{n}.org" for n in range(101)]).full_clean()
    assert "at most 100" in refused.value.message_dict["web_search_domains"][0]
    with pytest.raises(ValidationError):
        ReportTemplateFactory.build(web_search_domains=["not a domain"]).full_clean()
