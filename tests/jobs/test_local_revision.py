"""Reading a reviewer's notes, as jobs.worker.prompt carries them, into what the engine acts on."""

import pytest

from jobs.providers.local_revision import read_notes

HEADINGS = ("Market overview", "Key players", "Trends", "Risks")
SIDS = {"S1", "S2", "S3"}


def test_section_comments_belong_to_their_section():
    notes = read_notes(
        "Tighten it up.\n\nOn the section “Key players”: Name the countries with the largest plants.",
        headings=HEADINGS, sids=SIDS,
    )  # fmt: skip

    assert notes.by_section == {1: ["Name the countries with the largest plants."]}
    assert notes.general == ["Tighten it up."]


def test_a_general_note_that_names_a_section_belongs_to_it():
    notes = read_notes("Put the plant locations under key players. Shorter, please.", headings=HEADINGS, sids=SIDS)

    assert notes.by_section == {1: ["Put the plant locations under key players."]}
    assert notes.general == ["Shorter, please."]


@pytest.mark.parametrize(
    ("text", "dropped"),
    [
        ("Drop S3.", {"S3"}),
        ("S3 is stale; please remove it.", {"S3"}),
        ("S2 and S3 are outdated.", {"S2", "S3"}),
        ("Please don't use S1 or S2 at all.", {"S1", "S2"}),
        ("S2 should go.", {"S2"}),
        ("Drop S9.", set()),  # not in the manifest
        ("S3 is good; keep it.", set()),
    ],
)
def test_sources_the_reviewer_rejects(text, dropped):
    assert set(read_notes(text, headings=HEADINGS, sids=SIDS).dropped) == dropped


def test_the_failed_checks_are_not_notes_and_drop_nothing_the_reviewer_did_not_reject():
    text = (
        "S2 dates from 2019: keep it as the baseline.\n\nAutomatic checks that failed on version 1:\n"
        "- Sources: S2 is stale: published 2019-05-01, 2400 days before the request, older than "
        "this template's limit of 365 days (cited).\n"
        "- Section “Risks”: States a figure without citing a source. (“Prices fell 40%.”)"
    )

    notes = read_notes(text, headings=HEADINGS, sids=SIDS)

    assert notes.dropped == {}
    assert notes.general == ["S2 dates from 2019: keep it as the baseline."] and notes.by_section == {}


def test_a_drop_instruction_is_not_a_query():
    notes = read_notes("S3 is stale, drop it. Say more about lithium prices.", headings=HEADINGS, sids=SIDS)

    assert notes.general == ["Say more about lithium prices."]


def test_no_notes():
    assert not read_notes("", headings=HEADINGS, sids=SIDS)
