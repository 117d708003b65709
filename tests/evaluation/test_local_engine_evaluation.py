"""The local engine on the evaluation set: real documents, the passages a good draft must use.

What the issue asks of an offline draft, measured: at least 80 % of the expected passages in
their sections, no junk in any evidence table, no sentence used twice, nothing false said
about the sources. The harness's own detectors are tested too, so these cannot pass vacuously.
"""

import dataclasses
import datetime as dt

import jsonschema
import pytest

from jobs.providers.base import SourceDoc
from jobs.providers.local_engine import build_extractive_report
from jobs.report_schema import REPORT_SCHEMA
from tests.evaluation.harness import (
    case_request,
    case_sources,
    evaluate,
    false_statements,
    junk_reasons,
    load_cases,
    repeated_sentences,
)

CASES = {case["name"]: case for case in load_cases()}


@pytest.fixture(scope="module")
def results():
    return {name: evaluate(case) for name, case in CASES.items()}


def test_the_set_has_a_handful_of_cases_over_several_kinds_of_document():
    kinds = {path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else "text"
             for case in CASES.values() for path in case["sources"]}  # fmt: skip
    assert len(CASES) >= 4 and {"md", "pdf", "text"} <= kinds
    assert sum(len(items) for case in CASES.values() for items in case["expected"].values()) >= 25


def test_at_least_80_percent_of_expected_passages_land_in_their_sections(results):
    expected = sum(result.expected for result, _ in results.values())
    found = sum(result.found for result, _ in results.values())
    misses = [miss for result, _ in results.values() for miss in result.misses]

    assert found / expected >= 0.8, misses


@pytest.mark.parametrize("name", list(CASES))
def test_no_junk_in_the_evidence(results, name):
    result, report = results[name]

    assert len(report["evidence"]) >= 3
    assert result.junk == []


@pytest.mark.parametrize("name", list(CASES))
def test_no_sentence_is_used_twice(results, name):
    assert results[name][0].repeats == []


@pytest.mark.parametrize("name", list(CASES))
def test_nothing_false_is_said_about_the_sources(results, name):
    assert results[name][0].false_statements == []


@pytest.mark.parametrize("name", list(CASES))
def test_every_quote_is_verbatim_and_the_report_is_valid(results, name):
    _, report = results[name]
    texts = {source.sid: source.text for source in case_sources(CASES[name])}

    jsonschema.validate(report, REPORT_SCHEMA)
    assert all(row["quote"] in texts[row["source_id"]] for row in report["evidence"])


def test_titles_and_dates_come_from_the_documents_and_their_names():
    titles = {
        path: (source.title, source.published)
        for case in CASES.values()
        for path, source in zip(case["sources"], case_sources(case))
    }

    assert titles["tests/evaluation/documents/zstd-README.md"][0] == "zstd README"
    assert titles["tests/evaluation/documents/jq-README"][0] == "jq"
    assert titles["tests/evaluation/documents/zstd-CHANGELOG"] == ("zstd CHANGELOG", dt.date(2023, 2, 1))
    assert titles["tests/evaluation/documents/pyenv-README.pdf"][0] == "pyenv README"


def test_a_topic_word_the_sources_never_use_is_named_and_one_they_use_is_not():
    case = CASES["demo market scan"]
    request = dataclasses.replace(case_request(case), topic="Battery recycling subsidies in Europe")

    report = build_extractive_report(request)

    questions = " ".join(report["open_questions"])
    assert "No source mentions “subsidies”" in questions and "“Europe”" not in questions
    assert false_statements(report, request.sources) == []


# --- the detectors can fail ------------------------------------------------------------------


@pytest.mark.parametrize(
    "quote",
    [
        "Date: 2025-11-02",
        "| **zstd 1.5.1 -1**       | 2.887 |   530 MB/s |  1700 MB/s |",
        '<p align="center"><img src="logo.png" alt="Zstandard"></p>',
        "Recyclers earn most of their margin<br>from nickel.",
        "[travisLink]: https://travis-ci.com/facebook/zstd",
        "## Benchmarks",
        "11/28/26, 9:21 PM pyenv README",
        '<?xml version="1.0"?><mime-info xmlns="x">',
    ],
)
def test_the_junk_detector_catches_what_the_issue_found(quote):
    assert junk_reasons(quote, "") != []


def test_the_junk_detector_passes_a_plain_sentence():
    assert junk_reasons("Germany, Poland and Norway host the largest plants.", "") == []


def test_the_statement_checker_catches_false_claims_about_the_sources():
    sources = (
        SourceDoc(sid="S1", title="Battery recycling in Europe", text="Recycling in Europe grows. Plants open."),
        SourceDoc(sid="S2", title="Note", text="Prices fall."),
    )
    report = {
        "executive_summary": "An offline draft written from the 3 supplied sources.",
        "sections": [{"heading": "Risks", "body": "Plants open. [S1]", "citations": ["S1"]}],
        "evidence": [{"claim": "", "source_id": "S1", "quote": "Plants open."}],
        "recommendations": [
            "Suggestion: read S2 (“Note”) in full: this draft quotes it most (1 of 2 passages).",
            "Suggestion: confirm that S1 belongs in this report; nothing from it is quoted.",
        ],
        "open_questions": ["No source mentions “Europe”: what do other sources say about it?"],
        "source_notes": [
            {"source_id": "S1", "note": "Battery recycling in Europe (text, no publication date): 1 passage quoted."},
            {"source_id": "S2", "note": "Note (text, no publication date): 1 passage quoted."},
        ],
    }

    found = false_statements(report, sources)

    assert len(found) == 5, found  # supplied count, S2 quoted, S2 most, S1 unquoted, "Europe"


def test_the_repeat_detector_catches_a_sentence_in_two_sections():
    report = {
        "executive_summary": "",
        "sections": [{"body": "Plants open in Germany. [S1]"}, {"body": "Plants open in Germany. [S1]"}],
        "evidence": [],
    }

    assert repeated_sentences(report) == ["plants open in germany."]
