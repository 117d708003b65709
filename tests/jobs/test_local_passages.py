"""What the local engine keeps as passages: sentences that read as text, exact slices of the
source, with the furniture around them left out."""

import pytest

from jobs.providers.local_passages import passage_spans


def passages(text: str) -> list[str]:
    return [text[span.start : span.end] for span in passage_spans(text)]


@pytest.mark.parametrize(
    ("furniture", "kind"),
    [
        ("Date: 2025-11-02", "a date line"),
        ("Author: Jane Doe", "a metadata line"),
        ("v1.5.4 (Feb 2023)", "a release line"),
        ("| Compressor name | Ratio | Compression |\n| --- | --- | --- |\n| zstd 1.5.1 | 2.887 | 530 MB/s |", "a table"),
        ('<p align="center"><img src="logo.png" alt="Zstandard logo for the project"></p>', "an image tag"),
        ("[![Build Status][travisDevBadge]][travisLink]", "a badge"),
        ("[travisLink]: https://travis-ci.com/facebook/zstd", "a link definition"),
        ("## Benchmarks for the compression library", "a heading"),
        ('<?xml version="1.0" encoding="UTF-8"?>\n<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">', "XML"),
        ("```\nmake install PREFIX=/usr/local with extra options\n```", "a code block"),
        ("GNU gzip NEWS                                    -*- outline -*-", "an editor mode line"),
        ("11/28/26, 9:21 PM pyenv README", "a print header"),
        ("file:///tmp/evaluation/pyenv-README.html 4/11", "a print footer"),
    ],
)
def test_furniture_is_left_out(furniture, kind):
    text = f"Recyclers earn most of their margin from nickel.\n\n{furniture}\n\nLithium recovery lags behind the rest."

    assert passages(text) == [
        "Recyclers earn most of their margin from nickel.",
        "Lithium recovery lags behind the rest.",
    ], kind


def test_a_line_repeated_on_every_page_is_a_running_header():
    bodies = ["Each type has globs.", "Magic rules come next.", "Aliases are listed too.", "Icons are optional."]
    text = "".join(f"Shared MIME-info Database\n{body}\n{n}\n\n" for n, body in enumerate(bodies, start=1))

    assert passages(text) == bodies


def test_a_sentence_that_leans_on_the_one_before_is_kept_with_it():
    text = (
        "Lithium iron phosphate cells contain no nickel or cobalt. That makes them harder to "
        "recycle profitably as their market share grows."
    )

    assert passages(text) == [text]


def test_a_leaning_sentence_without_its_antecedent_is_dropped():
    text = "| a | b |\n| --- | --- |\n\nThese compression gains come with faster speeds as well.\n\nPlants open in Poland every year."

    assert passages(text) == ["Plants open in Poland every year."]


def test_br_tags_cut_passages_and_are_never_quoted():
    text = "Recyclers recover lithium from spent packs.<br>Cobalt prices fell sharply in 2024."

    assert passages(text) == ["Recyclers recover lithium from spent packs.", "Cobalt prices fell sharply in 2024."]


def test_abbreviations_do_not_end_a_sentence():
    text = "Some operators, e.g. Northvolt and Li-Cycle, built plants early. Others waited."

    assert passages(text)[0] == "Some operators, e.g. Northvolt and Li-Cycle, built plants early."


def test_changelog_lines_are_one_passage_each():
    text = (
        "perf: +20% faster huffman decompression for targets (#3449, @terrelln)\n"
        "cli: Asynchronous I/O for improved cli speed (#2975, @yoniko)\n"
        "bug: Fix leaking thread handles on Windows (#3147, @animalize)"
    )

    assert passages(text) == text.split("\n")


def test_headings_and_contents_lines_from_a_pdf_are_not_glued_to_the_next_sentence():
    text = (
        "Table of Contents\nInstallation\nGetting Pyenv\nUsage\n"
        "pyenv lets you easily switch between multiple versions of Python. It is simple.\n"
        "Installation\nTo install additional Python versions, use pyenv install.\n"
        "For example, to download and install Python 3.10.4, run:\npyenv install 3.10.4\n"
    )

    assert passages(text) == [
        "pyenv lets you easily switch between multiple versions of Python. It is simple.",
        "To install additional Python versions, use pyenv install.",
    ]


def test_every_passage_is_an_exact_slice_of_the_source():
    text = "  Battery   recycling\tgrows.\r\n\r\n- Plants open in  Germany.\n1. Prices fell in 2024.  "

    for span in passage_spans(text):
        assert text[span.start : span.end].strip() == text[span.start : span.end]
    assert passages(text) == ["Battery   recycling\tgrows.", "- Plants open in  Germany.", "1. Prices fell in 2024."]
