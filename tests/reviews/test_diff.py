"""Section-by-section diffs between report versions."""

from reviews.diff import ADDED, CHANGE, CHANGED, DELETE, EQUAL, INSERT, REMOVED, UNCHANGED, report_diff
from tests.reviews.conftest import CLEAN_REPORT, report_with


def by_heading(diff):
    return {s.heading: s for s in diff.sections}


def test_identical_versions_have_no_changes():
    diff = report_diff(CLEAN_REPORT, CLEAN_REPORT, old_version=1, new_version=2)

    assert not diff.has_changes
    assert {s.status for s in diff.sections} == {UNCHANGED}


def test_sections_are_matched_by_heading_and_classified():
    new = report_with(sections=[
        {"heading": "1. overview", "body": CLEAN_REPORT["sections"][0]["body"], "citations": ["S1"]},
        {"heading": "Revision notes addressed", "body": "> Add the capacity figure.", "citations": []},
    ])

    sections = by_heading(report_diff(CLEAN_REPORT, new))

    assert sections["1. overview"].status == UNCHANGED  # numbering and case do not make a new section
    assert sections["Findings"].status == REMOVED
    assert [line.kind for line in sections["Findings"].lines] == [DELETE, DELETE, DELETE]
    assert sections["Revision notes addressed"].status == ADDED
    assert sections["Revision notes addressed"].lines[0].text == "> Add the capacity figure."


def test_a_reworded_sentence_is_diffed_word_by_word_and_a_replaced_one_is_not():
    new = report_with(sections=[
        CLEAN_REPORT["sections"][0],
        {"heading": "Findings", "body": "Capacity grew 45% in 2025, with new plants in Germany and Poland [S1]. Exports to Asia stopped entirely.", "citations": ["S1", "S2"]},
    ])

    findings = by_heading(report_diff(CLEAN_REPORT, new))["Findings"]

    assert findings.status == CHANGED
    reworded, removed, added, sources = findings.lines
    assert reworded.kind == CHANGE
    assert [(t.kind, t.text) for t in reworded.tokens if t.kind != EQUAL] == [(DELETE, "40%"), (INSERT, "45%")]
    assert (removed.kind, removed.text) == (DELETE, "Prices fell [S2].")
    assert (added.kind, added.text) == (INSERT, "Exports to Asia stopped entirely.")
    assert (sources.kind, sources.text) == (EQUAL, "Sources: S1, S2")


def test_evidence_and_lists_are_compared_row_by_row():
    new = report_with(
        evidence=[*CLEAN_REPORT["evidence"], {"claim": "Demand rises.", "source_id": "S2", "quote": "Analysts expect prices to recover"}],
        recommendations=[],
    )

    sections = by_heading(report_diff(CLEAN_REPORT, new))

    assert [line.kind for line in sections["Evidence"].lines] == [EQUAL, EQUAL, INSERT]
    assert sections["Evidence"].lines[2].text == "S2: Demand rises. — “Analysts expect prices to recover”"
    assert sections["Recommendations"].status == CHANGED
    assert [line.kind for line in sections["Recommendations"].lines] == [DELETE]


def test_malformed_versions_compare_without_raising():
    diff = report_diff({"sections": "oops", "evidence": [1, None]}, {"title": ["a", 2], "sections": [None]})

    assert diff.has_changes
