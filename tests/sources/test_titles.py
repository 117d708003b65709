"""Titles and dates from a document's own text and its file name."""

import datetime as dt

import pytest

from sources.extraction import extract_text


def extracted(text: str, filename: str, content_type: str = "text/plain"):
    return extract_text(data=text.encode(), content_type=content_type, filename=filename)


@pytest.mark.parametrize(
    ("text", "filename", "title"),
    [
        # A README whose first heading is a section, with a logo naming the project.
        ('<p align="center"><img src="logo.png" alt="Zstandard"></p>\n\nZstandard is fast.\n\n## Benchmarks\n\nText.', "README.md", "Zstandard README.md"),
        ("GNU gzip NEWS                                    -*- outline -*-\n\n* Noteworthy changes in release 1.12 (2022-04-07) [stable]\n", "NEWS", "GNU gzip NEWS"),
        ("shared-mime-info 2.2 (2022-03-27)\n* model/3mf: new\n", "NEWS", "shared-mime-info NEWS"),
        ("v1.5.4 (Feb 2023)\nperf: faster huffman decompression\n", "CHANGELOG", "CHANGELOG"),
        ("jq\n==\n\njq is a lightweight and flexible command-line JSON processor.\n", "README", "jq"),
        ("Some notes without a heading, written as a sentence.\n", "battery-market_note.txt", "battery market note"),
        ("---\ntitle: Quarterly review\n---\n\n# Something else\n", "q.md", "Quarterly review"),
        ("Intro line.\n\n# The real title\n\n## Part\n", "notes.md", "The real title"),
    ],
)
def test_title(text, filename, title):
    assert extracted(text, filename).title == title


@pytest.mark.parametrize(
    ("text", "filename", "published"),
    [
        ("shared-mime-info 2.2 (2022-03-27)\n* model/3mf: new\n", "NEWS", dt.date(2022, 3, 27)),
        ("v1.5.4 (Feb 2023)\nperf: faster huffman decompression\n", "CHANGELOG", dt.date(2023, 2, 1)),
        ("# Spec\n\nThis is version 0.21 of the specification, last updated 2 October 2018.\n", "spec.md", dt.date(2018, 10, 2)),
        ("# Memo\n\nPublished: March 5, 2024\n\nBody.\n", "memo.md", dt.date(2024, 3, 5)),
        ("# Memo\n\nNo date in the text at all.\n", "memo-2025-06-30.md", dt.date(2025, 6, 30)),
        ("# Memo\n\nSales rose in March 2024 against plan.\n", "memo.md", None),
        ("# Memo\n\nNo date in the text at all.\n", "memo.md", None),
    ],
)
def test_date(text, filename, published):
    assert extracted(text, filename).published == published
