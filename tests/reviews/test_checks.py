"""The automatic checks as pure functions: crafted reports, each fault caught at its place."""

import datetime as dt

import pytest

from jobs.providers.base import ReportRequest, SourceDoc
from jobs.providers.local_engine import build_extractive_report
from jobs.rendering import ENGINE_NOTE
from reviews.checks import (
    CLAIM_CITED,
    QUOTE_FOUND,
    SECTION_PRESENT,
    SOURCE_EXISTS,
    SOURCE_FRESH,
    URL_IN_MANIFEST,
    Outcome,
    ReviewChecks,
    SourceRef,
    run_checks,
    statements,
)
from tests.reviews.conftest import CLEAN_REPORT, OLD_STUDY, PRICES, RECYCLING, report_with

AS_OF = dt.date(2026, 1, 15)
S1 = SourceRef("S1", "Recycling capacity 2025", RECYCLING, "https://example.org/capacity", dt.date(2025, 11, 1))
S2 = SourceRef("S2", "Black mass prices", PRICES, "", dt.date(2025, 11, 1))
SOURCES = (S1, S2)


def check(report, sources=SOURCES, **kwargs):
    kwargs = {"required_sections": ["Overview", "Findings"], "as_of": AS_OF, **kwargs}
    return ReviewChecks(run_checks(report=report, sources=sources, **kwargs))


def flagged(checks, name):
    return [r for r in checks.results if r.check == name and r.outcome != Outcome.PASSED]


def test_a_clean_report_passes_every_check():
    checks = check(CLEAN_REPORT, freshness_days=365)

    assert checks.flagged == ()
    # (it has no links, so there is nothing for the URL check to look at)
    assert {r.check for r in checks.results} == {SOURCE_EXISTS, QUOTE_FOUND, SOURCE_FRESH, SECTION_PRESENT}


# --- Cited sources exist ---------------------------------------------------------------


def test_a_missing_source_id_fails_where_it_is_cited():
    report = report_with(sections=[
        {"heading": "Overview", "body": "Recycling recovers lithium [S1].", "citations": ["S1"]},
        {"heading": "Findings", "body": "Output tripled in Spain [S7].", "citations": []},
    ])

    (result,) = flagged(check(report), SOURCE_EXISTS)

    assert result.outcome == Outcome.FAILED
    assert (result.part, result.index, result.section) == ("section", 1, "Section “Findings”")
    assert result.source_id == "S7"
    assert result.message == "S7 is cited but does not exist: the manifest has S1–S2."


def test_a_missing_source_in_an_evidence_row_fails_both_the_citation_and_its_quote():
    report = report_with(evidence=[{"claim": "Output tripled.", "source_id": "S9", "quote": "Output tripled"}])

    checks = check(report)

    assert [(r.check, r.part, r.index) for r in checks.failed] == [(SOURCE_EXISTS, "evidence", 0), (QUOTE_FOUND, "evidence", 0)]
    assert "not in the manifest" in checks.failed[1].message


def test_a_missing_source_cited_in_the_title_an_evidence_claim_or_a_source_note_fails_there():
    report = report_with(
        title="Battery recycling in Europe [S9]",
        evidence=[{"claim": "Capacity grew 40% [S8].", "source_id": "S1", "quote": "European recycling capacity grew 40% in 2025"}],
        source_notes=[{"source_id": "S1", "note": "Read with [S7] for prices."}],
    )

    failed = [(r.part, r.index, r.source_id) for r in check(report).failed if r.check == SOURCE_EXISTS]

    assert failed == [("report", None, "S9"), ("evidence", 0, "S8"), ("source_notes", 0, "S7")]


def test_citing_a_source_that_could_not_be_read_fails():
    broken = SourceRef("S3", "Dead link", "", "https://example.org/gone", None, readable=False, error="HTTP 404")
    report = report_with(executive_summary="Demand is rising [S3].")

    (result,) = flagged(check(report, sources=(*SOURCES, broken)), SOURCE_EXISTS)

    assert result.part == "summary"
    assert "could not be read (HTTP 404)" in result.message


# --- Quotes are found in their sources -----------------------------------------------------


def test_a_fabricated_quote_fails_and_shows_the_closest_passage():
    report = report_with(evidence=[
        {"claim": "Capacity grew.", "source_id": "S1", "quote": "European recycling capacity grew 45% in 2025, driven by new plants in Germany"},
    ])

    (result,) = flagged(check(report), QUOTE_FOUND)

    assert result.outcome == Outcome.FAILED
    assert (result.part, result.index) == ("evidence", 0)
    assert result.near_miss == "European recycling capacity grew 40% in 2025, driven by new plants in Germany"
    assert 0.9 < result.similarity < 1
    assert result.message.startswith("Not found in S1. The closest passage is 9")


def test_an_invented_quote_fails_with_a_weak_near_miss():
    report = report_with(evidence=[{"claim": "x", "source_id": "S2", "quote": "Regulators banned exports of black mass"}])

    (result,) = flagged(check(report), QUOTE_FOUND)

    assert result.outcome == Outcome.FAILED
    assert result.similarity < 0.7
    assert result.near_miss  # still the best the source offers, for the reviewer to compare


@pytest.mark.parametrize(
    "quote",
    [
        "european   recycling capacity\ngrew 40% IN 2025",  # whitespace and case
        "“Black mass prices fell sharply in the second half of 2025.”",  # wrapped in quote marks
        "Battery recycling recovers lithium … new plants in Germany and Poland",  # an elision
    ],
)
def test_quotes_match_allowing_for_whitespace_case_and_elision(quote):
    sid = "S2" if quote.startswith("“Black") else "S1"
    result = check_one_quote(quote, sid)

    assert result.outcome == Outcome.PASSED
    assert result.span is not None


def test_a_quote_that_matches_only_without_its_punctuation_is_a_warning():
    result = check_one_quote("capacity grew 40% in 2025 driven by new plants", "S1")

    assert result.outcome == Outcome.WARNING
    assert "only when punctuation is ignored" in result.message


def test_elided_fragments_must_appear_in_order():
    result = check_one_quote("new plants in Germany … Battery recycling recovers lithium", "S1")

    assert result.outcome == Outcome.FAILED


def test_an_evidence_row_without_a_quote_or_source_fails():
    report = report_with(evidence=[
        {"claim": "Capacity grew.", "source_id": "S1", "quote": ""},
        {"claim": "Prices fell.", "source_id": "", "quote": "Black mass prices fell"},
    ])

    results = flagged(check(report), QUOTE_FOUND)

    assert [(r.index, r.message) for r in results] == [
        (0, "The evidence row has no quote: every row must quote its source."),
        (1, "The evidence row names no source, so its quote cannot be checked."),
    ]


def test_a_quotation_in_the_prose_is_checked_against_the_source_it_cites():
    report = report_with(sections=[
        {"heading": "Overview", "body": "The association says “capacity grew 40% in 2025” [S1].", "citations": ["S1"]},
        {"heading": "Findings", "body": "Analysts say “prices will double by spring” [S2].", "citations": ["S2"]},
    ])

    results = [r for r in check(report).results if r.check == QUOTE_FOUND and r.part == "section"]

    assert [(r.index, r.outcome) for r in results] == [(0, Outcome.PASSED), (1, Outcome.FAILED)]


def check_one_quote(quote, sid):
    report = report_with(evidence=[{"claim": "c", "source_id": sid, "quote": quote}])
    (result,) = [r for r in check(report).results if r.check == QUOTE_FOUND]
    return result


# --- Claims cite a source -----------------------------------------------------------------


def test_an_uncited_figure_fails_and_an_uncited_statement_is_a_warning():
    report = report_with(sections=[
        {"heading": "Overview", "body": "Recycling recovers lithium [S1]. The market will be worth €12 billion by 2030.", "citations": ["S1"]},
        {"heading": "Findings", "body": "Most recyclers are expanding their plants across the continent.", "citations": []},
    ])

    results = flagged(check(report), CLAIM_CITED)

    assert [(r.outcome, r.index, r.claim) for r in results] == [
        (Outcome.FAILED, 0, "The market will be worth €12 billion by 2030."),
        (Outcome.WARNING, 1, "Most recyclers are expanding their plants across the continent."),
    ]
    assert results[0].message == "States a figure without citing a source."


@pytest.mark.parametrize(
    "body",
    [
        "Capacity grew 40% in 2025. [S1]",  # the marker after the full stop belongs to the sentence
        "Capacity grew 40% [S1] while prices fell [S2].",
        "> The reviewer asked: add the 2025 capacity figure.",  # a quotation of someone else
        "What will capacity be in 2030?",  # a question
        "Key figures:",  # an introduction
        "Short note.",  # too short to be a claim
    ],
)
def test_statements_that_are_cited_or_not_claims_pass(body):
    report = report_with(sections=[{"heading": "Overview", "body": body}, {"heading": "Findings", "body": "Prices fell [S2]."}])

    assert flagged(check(report), CLAIM_CITED) == []


def test_statements_split_markdown_into_sentences_and_skip_headings_quotes_and_tables():
    text = "# Heading 2025\n\nFirst sentence here. [S1] Second one, in the U.S. market too.\n\n- A list item 3.5 t\n> quoted\n| a | b |"

    assert statements(text) == ["First sentence here. [S1]", "Second one, in the U.S. market too.", "A list item 3.5 t"]


# --- Links are to known sources -----------------------------------------------------------


def test_a_link_not_in_the_manifest_fails_and_a_manifest_link_passes():
    report = report_with(sections=[
        {"heading": "Overview", "body": "See [the data](https://www.example.org/capacity/) [S1].", "citations": ["S1"]},
        {"heading": "Findings", "body": "More at https://invented.example.com/report. [S2]", "citations": ["S2"]},
    ])

    results = [r for r in check(report).results if r.check == URL_IN_MANIFEST]

    assert [(r.outcome, r.index, r.claim) for r in results] == [
        (Outcome.PASSED, 0, "https://www.example.org/capacity/"),
        (Outcome.FAILED, 1, "https://invented.example.com/report"),
    ]
    assert results[0].source_id == "S1"


def test_a_link_quoted_from_a_source_text_passes():
    with_link = SourceRef("S2", "Prices", PRICES + " Data: https://data.example.net/bm.csv", "", dt.date(2025, 11, 1))
    report = report_with(open_questions=["Is https://data.example.net/bm.csv updated monthly?"])

    assert flagged(check(report, sources=(S1, with_link)), URL_IN_MANIFEST) == []


def test_web_search_links_are_warnings_on_allowed_domains_and_failures_elsewhere():
    report = report_with(recommendations=["Read https://news.iea.org/batteries and https://blog.example.com/x"])

    results = flagged(check(report, web_search=True, web_search_domains=["iea.org"]), URL_IN_MANIFEST)

    assert [(r.outcome, r.claim) for r in results] == [
        (Outcome.WARNING, "https://news.iea.org/batteries"),
        (Outcome.FAILED, "https://blog.example.com/x"),
    ]


# --- Sources are fresh enough -------------------------------------------------------------


def test_a_stale_cited_source_fails_a_stale_uncited_one_warns_and_undated_is_unknown():
    old = SourceRef("S3", "Early study", OLD_STUDY, "", dt.date(2019, 3, 1))
    unused_old = SourceRef("S4", "Archive", OLD_STUDY, "", dt.date(2018, 1, 1))
    undated = SourceRef("S5", "Undated memo", OLD_STUDY, "", None)
    report = report_with(open_questions=["Was recycling economic before [S3]?"], executive_summary="Capacity grew 40% in 2025 [S1] [S5].")

    checks = check(report, sources=(S1, S2, old, unused_old, undated), freshness_days=365)
    results = {r.source_id: r for r in checks.results if r.check == SOURCE_FRESH}

    assert results["S1"].outcome == Outcome.PASSED
    assert results["S3"].outcome == Outcome.FAILED
    assert results["S3"].message == (
        "S3 is stale: published 2019-03-01, 2512 days before the request, older than this template's limit of 365 days (cited)."
    )
    assert results["S4"].outcome == Outcome.WARNING
    assert results["S5"].outcome == Outcome.WARNING
    assert "no publication date: its freshness is unknown (cited)" in results["S5"].message


def test_freshness_is_judged_as_of_the_request_not_today():
    checks = check(CLEAN_REPORT, freshness_days=30, as_of=dt.datetime(2025, 11, 20, 9, 0, tzinfo=dt.UTC))

    assert flagged(checks, SOURCE_FRESH) == []


def test_freshness_zero_turns_the_check_off():
    old = SourceRef("S1", "Old", RECYCLING, "", dt.date(2001, 1, 1))

    checks = check(CLEAN_REPORT, sources=(old, S2), freshness_days=0)

    assert [r for r in checks.results if r.check == SOURCE_FRESH] == []
    assert next(row for row in checks.summary() if row.check == SOURCE_FRESH).note == "Off for this template."


# --- Required sections present ------------------------------------------------------------


def test_a_missing_required_section_fails():
    report = report_with(sections=[CLEAN_REPORT["sections"][0]])

    (result,) = flagged(check(report), SECTION_PRESENT)

    assert result.outcome == Outcome.FAILED
    assert result.message == "The required section “Findings” is missing."
    assert result.part == "report"


def test_required_sections_match_ignoring_numbering_case_and_punctuation():
    report = report_with(sections=[
        {"heading": "1. OVERVIEW:", "body": "Recycling recovers lithium [S1].", "citations": ["S1"]},
        {"heading": "2) findings", "body": "", "citations": []},
    ])

    results = [r for r in check(report).results if r.check == SECTION_PRESENT]

    assert [(r.outcome, r.index) for r in results] == [(Outcome.PASSED, 0), (Outcome.WARNING, 1)]
    assert results[1].message == "The required section “Findings” is empty."


# --- Untrusted input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "report",
    [{}, {"sections": "not a list", "evidence": [None, 3, "x"]}, {"sections": [None, {"heading": 5, "body": ["a", 1]}]}, []],
)
def test_malformed_reports_never_raise(report):
    checks = check(report)

    assert {r.check for r in checks.failed} <= {SECTION_PRESENT}


def test_the_local_engines_drafts_pass_every_check_without_a_warning():
    """The built-in engine quotes its sources verbatim, cites every sentence it quotes and
    marks its own framing as ENGINE_NOTE paragraphs: nothing is left to warn about."""
    docs = (SourceDoc("S1", S1.title, RECYCLING), SourceDoc("S2", S2.title, PRICES))
    for notes in ("", "Please add the 2025 capacity figure."):
        request = ReportRequest(
            job_id="j", attempt=1, step="report", model="local", instructions="", input_text="",
            topic="Battery recycling capacity in Europe", audience="Leadership", sources=docs,
            output_schema={}, required_sections=("Overview", "Findings"), revision_notes=notes,
        )
        report = build_extractive_report(request)

        checks = check(report, freshness_days=365)

        assert checks.flagged == (), [r.message for r in checks.flagged]


def test_the_writers_notes_on_its_own_draft_are_not_asked_for_citations_but_figures_are():
    report = report_with(sections=[
        {"heading": "Overview", "body": f"{ENGINE_NOTE} No passage in the sources speaks to this heading at all.\n\n"
         "Recycling recovers lithium from spent batteries. [S1]", "citations": ["S1"]},
        {"heading": "Findings", "body": f"{ENGINE_NOTE} The market will be worth €12 billion by 2030.", "citations": []},
    ])

    results = flagged(check(report), CLAIM_CITED)

    assert [(r.outcome, r.index, r.claim) for r in results] == [
        (Outcome.FAILED, 1, "Offline draft note: The market will be worth €12 billion by 2030."),
    ]


def test_a_note_on_a_stale_source_does_not_make_the_report_rest_on_it():
    old = SourceRef("S3", "Early study", OLD_STUDY, "", dt.date(2019, 3, 1))
    report = report_with(source_notes=[{"source_id": "S3", "note": "Early study: left out of this version."}])

    results = {r.source_id: r for r in check(report, sources=(S1, S2, old), freshness_days=365).results if r.check == SOURCE_FRESH}

    assert results["S3"].outcome == Outcome.WARNING and results["S3"].message.endswith("(not cited).")
