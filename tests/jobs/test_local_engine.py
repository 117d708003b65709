"""The local engine's extractive report: what a reviewer checks, on every kind of input."""

import dataclasses
import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from jobs.providers.base import ReportRequest, SourceDoc
from jobs.providers.local_engine import (
    DEFAULT_SECTIONS,
    MAX_PASSAGE_CHARS,
    REVISION_SECTION,
    build_extractive_report,
    estimate_tokens,
)
from jobs.rendering import cited_source_ids
from jobs.report_schema import REPORT_SCHEMA

PROJECT_ROOT = Path(__file__).resolve().parents[2]

BATTERY = SourceDoc(
    sid="S1",
    title="Battery recycling in Europe",
    kind="url",
    url="https://example.com/batteries",
    published=dt.date(2024, 3, 1),
    text=(
        "Battery recycling is growing fast across Europe.  Recyclers recover lithium, cobalt\n"
        "and nickel from spent batteries. Hydrometallurgical recycling recovers more than 95% "
        "of the cobalt in a battery.\n\nThe cost of collecting used batteries remains the main "
        "barrier to recycling at scale. New recycling plants opened in Germany and Poland in "
        "2023. Regulators want battery makers to use recycled lithium."
    ),
)
COOKING = SourceDoc(
    sid="S2",
    title="Weeknight cooking",
    text=(
        "Cooking pasta takes ten minutes in well salted water. Add garlic to the olive oil "
        "before the tomatoes. A good sauce needs patience and fresh basil. Serve the dish "
        "with grated parmesan and a green salad."
    ),
)
MARKET = SourceDoc(
    sid="S3",
    title="Market note",
    published=dt.date(2025, 1, 15),
    text=(
        "The market for recycled battery materials could reach 20 billion dollars by 2030. "
        "Prices for lithium fell sharply in 2023, which squeezed recycling margins. "
        "Analysts expect battery recycling demand to grow with electric car sales."
    ),
)


def make_request(sources=(BATTERY, COOKING, MARKET), **overrides) -> ReportRequest:
    fields = dict(
        job_id="abc123",
        attempt=1,
        step="report",
        model="local",
        instructions="",
        input_text="",
        topic="Battery recycling",
        audience="policy team",
        sources=tuple(sources),
        output_schema=REPORT_SCHEMA,
    )
    fields.update(overrides)
    return ReportRequest(**fields)


def source_map(request: ReportRequest) -> dict[str, SourceDoc]:
    return {source.sid: source for source in request.sources}


CASES = {
    "typical": make_request(),
    "required sections": make_request(required_sections=("Market size", "Costs", "Outlook")),
    "revision": make_request(revision_notes="Say more about lithium prices."),
    "no sources": make_request(sources=()),
    "empty source": make_request(sources=(SourceDoc(sid="S1", title="Blank", text=""),)),
    "no topic": make_request(topic="", audience=""),
    "topic matches nothing": make_request(topic="quantum chromodynamics"),
    "no punctuation": make_request(
        sources=(SourceDoc(sid="S1", title="Log", text=" ".join(["battery recycling plant"] * 400)),)
    ),
    "chinese": make_request(
        topic="电池回收",
        sources=(
            SourceDoc(
                sid="S1",
                title="中文资料",
                text="电池回收在中国发展迅速。回收企业从废旧电池中提取锂和钴。天气预报说明天会下雨。",
            ),
        ),
    ),
    "german": make_request(
        topic="Batterierecycling Kosten",
        sources=(
            SourceDoc(
                sid="S1",
                title="Bericht",
                text="Das Batterierecycling wächst in Europa. Die Kosten der Sammlung sind hoch. "
                "Der Rhein fließt durch Köln.",
            ),
        ),
    ),
    "citation-like text in a source": make_request(
        sources=(
            SourceDoc(
                sid="S1",
                title="Paper",
                text="Battery recycling recovers cobalt [S9]. Battery recycling needs plants [S7, S8].",
            ),
        ),
    ),
}


@pytest.fixture(params=list(CASES), ids=list(CASES))
def case(request):
    report_request = CASES[request.param]
    return report_request, build_extractive_report(report_request)


def test_report_validates_against_the_schema(case):
    _, report = case

    jsonschema.validate(report, REPORT_SCHEMA)


def test_every_evidence_quote_is_verbatim_from_its_source(case):
    request, report = case
    sources = source_map(request)

    for row in report["evidence"]:
        assert row["quote"]
        assert row["quote"] in sources[row["source_id"]].text


def test_every_cited_source_exists(case):
    request, report = case

    assert set(cited_source_ids(report)) <= set(source_map(request))
    assert [note["source_id"] for note in report["source_notes"]] == [s.sid for s in request.sources]


def test_the_report_says_it_is_an_offline_extractive_draft(case):
    _, report = case

    summary = report["executive_summary"]
    assert "offline extractive draft" in summary
    assert "local engine" in summary
    assert "without a language model" in summary
    assert "must be reviewed" in summary


def test_evidence_has_three_to_ten_rows_when_the_sources_allow():
    report = build_extractive_report(make_request())

    assert 3 <= len(report["evidence"]) <= 10


def test_quotes_keep_the_sources_own_whitespace():
    report = build_extractive_report(make_request(sources=(BATTERY,)))

    quotes = [row["quote"] for row in report["evidence"]]
    assert "Recyclers recover lithium, cobalt\nand nickel from spent batteries." in quotes


def test_required_sections_come_first_with_their_exact_headings_in_order():
    headings = ("Market size", "Costs", "Outlook")

    report = build_extractive_report(make_request(required_sections=headings))

    assert tuple(section["heading"] for section in report["sections"]) == headings


def test_default_sections_when_the_template_requires_none():
    report = build_extractive_report(make_request())

    assert tuple(section["heading"] for section in report["sections"]) == DEFAULT_SECTIONS


def test_section_citations_match_the_markers_in_its_body():
    report = build_extractive_report(make_request())

    for section in report["sections"]:
        assert section["citations"]
        assert cited_source_ids({"sections": [{"body": section["body"]}]}) == section["citations"]


def test_passages_go_to_the_section_whose_heading_they_match():
    report = build_extractive_report(make_request(required_sections=("Market size", "Costs")))

    bodies = {section["heading"]: section["body"] for section in report["sections"]}
    assert "The cost of collecting used batteries" in bodies["Costs"]
    assert "The cost of collecting used batteries" not in bodies["Market size"]
    assert "The market for recycled battery materials" in bodies["Market size"]
    assert bodies["Market size"] != bodies["Costs"]


def test_the_same_request_gives_the_same_report():
    request = make_request(required_sections=("Market size", "Costs"))

    assert build_extractive_report(request) == build_extractive_report(request)


def test_the_report_does_not_depend_on_the_process_hash_seed():
    # Set iteration order changes with PYTHONHASHSEED; the report must not.
    script = (
        "import json; from tests.jobs.test_local_engine import CASES; "
        "from jobs.providers.local_engine import build_extractive_report; "
        "print(json.dumps([build_extractive_report(r) for r in CASES.values()], sort_keys=True))"
    )
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "DJANGO_SETTINGS_MODULE": "reportdesk.settings"}
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True,
            text=True, check=True,
        )  # fmt: skip
        outputs.add(result.stdout)

    assert len(outputs) == 1


def test_revision_notes_add_a_section_that_quotes_them_and_change_the_draft():
    first = build_extractive_report(make_request())

    second = build_extractive_report(make_request(revision_notes="Say more about lithium prices.\nAnd costs."))

    assert [s["heading"] for s in second["sections"]] == [*DEFAULT_SECTIONS, REVISION_SECTION]
    revision = second["sections"][-1]["body"]
    assert "> Say more about lithium prices.\n> And costs." in revision
    assert "What changed in this version" in revision
    home = next(s for s in second["sections"] if "Prices for lithium fell sharply in 2023" in s["body"])
    assert f"now sits under “{home['heading']}”" in revision or f"now sit under “{home['heading']}”" in revision
    assert len(second["evidence"]) > len(first["evidence"])
    assert [s["body"] for s in second["sections"][:3]] != [s["body"] for s in first["sections"]]


def test_no_sources_gives_a_report_that_says_so():
    report = build_extractive_report(make_request(sources=()))

    assert report["evidence"] == []
    assert report["source_notes"] == []
    assert "No sources were supplied" in report["executive_summary"]
    assert all(section["citations"] == [] for section in report["sections"])
    assert any("None were supplied" in question for question in report["open_questions"])


def test_evidence_comes_mostly_from_the_relevant_source():
    report = build_extractive_report(make_request(sources=(BATTERY, COOKING)))

    from_battery = [row for row in report["evidence"] if row["source_id"] == "S1"]
    assert len(from_battery) >= 3
    assert len(from_battery) >= 0.75 * len(report["evidence"])
    cooking_note = next(note["note"] for note in report["source_notes"] if note["source_id"] == "S2")
    assert "not quoted; no passage matched the topic or a section" in cooking_note


def test_the_most_relevant_passage_is_quoted_in_a_section_and_in_the_evidence():
    report = build_extractive_report(make_request(topic="lithium prices", sources=(BATTERY, MARKET)))

    passage = "Prices for lithium fell sharply in 2023, which squeezed recycling margins."
    assert sum(passage in section["body"] for section in report["sections"]) == 1
    assert passage in [row["quote"] for row in report["evidence"]]


def test_each_section_gets_the_passages_its_heading_asks_for_not_the_first_heading():
    report = build_extractive_report(make_request(topic="lithium prices", sources=(BATTERY, MARKET)))

    bodies = {section["heading"]: section["body"] for section in report["sections"]}
    assert "main barrier to recycling" in bodies["Risks and limitations"]
    assert all("[S" in body for body in bodies.values())


def test_non_english_sources_are_ranked_too():
    chinese = build_extractive_report(CASES["chinese"])
    german = build_extractive_report(CASES["german"])

    assert chinese["evidence"][0]["quote"] == "电池回收在中国发展迅速。"
    assert {row["quote"] for row in german["evidence"][:2]} == {
        "Das Batterierecycling wächst in Europa.",
        "Die Kosten der Sammlung sind hoch.",
    }


def test_text_without_sentence_punctuation_is_cut_into_bounded_passages():
    request = CASES["no punctuation"]

    report = build_extractive_report(request)

    assert report["evidence"]
    for row in report["evidence"]:
        assert len(row["quote"]) <= MAX_PASSAGE_CHARS
        assert row["quote"] in request.sources[0].text


def test_a_one_megabyte_source_completes():
    sentences = [f"Battery recycling note {n} covers plant number {n % 97}." for n in range(30_000)]
    text = " ".join(sentences)[:1_000_000]
    request = make_request(sources=(SourceDoc(sid="S1", title="Big", text=text), dataclasses.replace(BATTERY, sid="S2")))

    report = build_extractive_report(request)

    jsonschema.validate(report, REPORT_SCHEMA)
    assert all(row["quote"] in source_map(request)[row["source_id"]].text for row in report["evidence"])


def test_citation_like_text_in_a_source_is_not_read_as_a_citation():
    report = build_extractive_report(CASES["citation-like text in a source"])

    assert cited_source_ids(report) == ["S1"]
    assert "(S9)" in report["sections"][0]["body"] or "(S7, S8)" in report["sections"][0]["body"]


def test_source_notes_give_title_kind_date_and_use():
    report = build_extractive_report(make_request(sources=(BATTERY, COOKING)))

    notes = {note["source_id"]: note["note"] for note in report["source_notes"]}
    assert notes["S1"].startswith("Battery recycling in Europe (url, published 2024-03-01)")
    quoted = {row["quote"] for row in report["evidence"] if row["source_id"] == "S1"}
    stated = int(re.search(r": (\d+) passages quoted\.$", notes["S1"]).group(1))
    assert stated >= len(quoted) >= 3
    assert notes["S2"].startswith("Weeknight cooking (text, no publication date)")


def test_open_questions_name_unmatched_topic_words_and_undated_sources():
    report = build_extractive_report(make_request(topic="Battery recycling subsidies"))

    questions = " ".join(report["open_questions"])
    assert "“subsidies”" in questions
    assert "S2 published?" in questions
    assert "S1" not in questions.split("published?")[0]


def test_recommendations_are_marked_as_suggestions():
    report = build_extractive_report(make_request())

    assert report["recommendations"]
    assert all(item.startswith("Suggestion:") for item in report["recommendations"])


@pytest.mark.parametrize(("text", "tokens"), [("", 0), ("abcd", 1), ("abcde", 2), ("x" * 400, 100)])
def test_estimate_tokens_is_about_four_characters_a_token(text, tokens):
    assert estimate_tokens(text) == tokens
