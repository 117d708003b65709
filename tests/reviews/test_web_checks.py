"""The web citation checks as pure functions: returned by the search, on an allowed domain,
quote on the fetched page."""

from reviews.checks import (
    WEB_DOMAIN_ALLOWED,
    WEB_QUOTE_FOUND,
    WEB_URL_RETURNED,
    Outcome,
    WebPageRef,
    run_checks,
)

PAGE = "https://www.iea.org/reports/batteries-2025"


def outcomes(*, url=PAGE, quote="Demand doubled in 2025", domains=("iea.org",), returned=(PAGE,), pages=()):
    report = {"web_citations": [{"claim": "Demand doubled.", "url": url, "title": "Batteries 2025", "quote": quote}]}
    results = run_checks(report=report, sources=[], web_search=True, web_search_domains=domains,
                         search_urls=returned, web_pages=pages)
    return {r.check: r for r in results if r.part == "web_citations"}


def test_a_page_on_a_domain_outside_the_list_fails():
    found = outcomes(url="https://blog.example.com/batteries", returned=("https://blog.example.com/batteries",))

    assert found[WEB_DOMAIN_ALLOWED].outcome == Outcome.FAILED
    assert "example.com is not among the template's domains (iea.org)" in found[WEB_DOMAIN_ALLOWED].message


def test_a_subdomain_of_an_allowed_domain_is_allowed_and_www_is_ignored():
    found = outcomes(pages=(WebPageRef(url=PAGE, title="Batteries 2025", text="Demand doubled in 2025, led by China."),))

    assert found[WEB_URL_RETURNED].outcome == found[WEB_DOMAIN_ALLOWED].outcome == found[WEB_QUOTE_FOUND].outcome == Outcome.PASSED


def test_a_page_that_could_not_be_read_fails_its_quote_with_the_reason():
    found = outcomes(pages=(WebPageRef(url=PAGE, readable=False, error="HTTP 403 from www.iea.org"),))

    assert found[WEB_QUOTE_FOUND].outcome == Outcome.FAILED
    assert "HTTP 403" in found[WEB_QUOTE_FOUND].message


def test_a_returned_page_that_was_not_fetched_is_a_warning():
    assert outcomes()[WEB_QUOTE_FOUND].outcome == Outcome.WARNING
