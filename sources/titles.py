"""A document's title and publication date, read from its text and its file name.

Used by extraction for plain text, Markdown and PDF. A title is the document's own (a
front-matter or "Title:" line, a top-level heading, the heading it opens with), else the file
name — with the subject the text names first when the name says only what kind of file it is
("README", "NEWS"). A date is one the text states near its top ("Date: …", a release line
such as "shared-mime-info 2.2 (2022-03-27)" or "v1.5.4 (Feb 2023)", "last updated 2 October
2018"), else one in the file name.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import PurePath

# Only the opening of a document is read for its title and date.
HEAD_LINES = 40
_DATE_LINES = 15
# Longer first lines are prose, not a title.
_TITLE_LINE_MAX = 120

_MODE_LINE = re.compile(r"\s*-\*-.*?-\*-\s*")
_FIELD = re.compile(r"^\s*(title|date|published|updated|last updated)\s*:\s*(.+?)\s*$", re.IGNORECASE)
_ATX = re.compile(r"^\s{0,3}(#{1,6})\s+(.+?)(?:\s+#+)?\s*$")
_SETEXT_RULE = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_IMAGE_ALT = re.compile(r"""<img\b[^>]*\balt=["']([^"']+)["']|!\[([^\]]+)\]\(""", re.IGNORECASE)
_VERSIONED = re.compile(r"^\s*(?:(\S[^\d]*?)\s+)?v?\d+(?:\.\d+)+\b")
_STRONG = re.compile(r"(\*\*|__)(.+?)\1")
_MARKUP = re.compile(r"<[^>]+>|!?\[([^\]]*)\]\([^)]*\)|[*_`]+")
# File names that say what kind of file it is, not what it is about.
_GENERIC_NAMES = frozenset(
    """
    readme news changelog changes history index document untitled upload file notes release
    releases release-notes release_notes download text main default
    """.split()
)

_MONTH_NAMES = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
    "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_ISO = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_COMPACT = re.compile(r"(?<!\d)(20\d{2}|19\d{2})(\d{2})(\d{2})(?!\d)")
_DAY_MONTH_YEAR = re.compile(rf"(?<!\d)(\d{{1,2}})(?:st|nd|rd|th)?\s+{_MONTH}\s+(\d{{4}})(?!\d)", re.IGNORECASE)
_MONTH_DAY_YEAR = re.compile(rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})(?!\d)", re.IGNORECASE)
_MONTH_YEAR = re.compile(rf"\b{_MONTH}\s+(\d{{4}})(?!\d)", re.IGNORECASE)
# A line that announces a release or a revision, where a bare month and year is its date.
_RELEASE_LINE = re.compile(
    r"\bv?\d+(?:\.\d+)+\b|\b(?:updated|revised|released|published|version|release)\b", re.IGNORECASE
)


def text_title(lines: list[str], *, filename: str = "") -> str:
    """The title of a text or Markdown document from its first lines (stripped, non-blank
    ones and the blank ones in between), else from its file name."""
    head = [_MODE_LINE.sub(" ", line).strip() for line in lines[:HEAD_LINES]]
    for line in head:
        field = _FIELD.match(line)
        if field and field.group(1).lower() == "title":
            return _plain(field.group(2))
    headings = []
    for i, line in enumerate(head):
        atx = _ATX.match(line)
        if atx:
            headings.append((len(atx.group(1)), i, atx.group(2)))
        elif i and head[i - 1] and _SETEXT_RULE.match(line) and not _ATX.match(head[i - 1]):
            headings.append((1 if line.lstrip().startswith("=") else 2, i - 1, head[i - 1]))
    top = [h for h in headings if h[0] == 1]
    content = [i for i, line in enumerate(head) if line and not _FIELD.match(line)]
    if top:
        return _plain(min(top, key=lambda h: h[1])[2])
    if headings and content and min(headings, key=lambda h: h[1])[1] == content[0]:
        return _plain(min(headings, key=lambda h: h[1])[2])
    first = next((_plain(head[i]) for i in content if _plain(head[i])), "")
    titled_line = len(first) <= _TITLE_LINE_MAX // 2 and not first.endswith(".") and not _VERSIONED.match(first)
    if _generic(filename) and titled_line:
        # "GNU gzip NEWS" says more than the name "NEWS".
        return first
    named = file_title(filename, subject=_subject(head))
    if named:
        return named
    if filename and _VERSIONED.match(first):
        # "v1.5.4 (Feb 2023)" is the newest release, not the document: the name says more.
        return PurePath(filename).name
    return first


def file_title(filename: str, *, subject: str = "") -> str:
    """A title from a file name: "market-note_2025.md" reads "market note 2025"; a name that
    only says what kind of file it is ("README.md") is kept with the subject, when known."""
    stem = PurePath(filename).stem if filename else ""
    words = " ".join(re.split(r"[-_.\s]+", stem)).strip()
    if not words:
        return ""
    if _generic(filename):
        return f"{subject} {PurePath(filename).name}" if subject else ""
    return words


def _generic(filename: str) -> bool:
    return bool(filename) and PurePath(filename).stem.casefold() in _GENERIC_NAMES


def _subject(head: list[str]) -> str:
    """What a document names first: an image's alt text (a logo), the first bold term, or
    the name on a release line ("shared-mime-info 2.2 (2022-03-27)")."""
    for line in head[:10]:
        versioned = _VERSIONED.match(line)
        if versioned and versioned.group(1) and len(versioned.group(1).split()) <= 3:
            return _plain(versioned.group(1))
        alt = _IMAGE_ALT.search(line)
        if alt:
            return _plain(alt.group(1) or alt.group(2))
        strong = _STRONG.search(line)
        if strong:
            return _plain(strong.group(2))
    return ""


def _plain(text: str) -> str:
    text = _MARKUP.sub(lambda m: m.group(1) or "", _MODE_LINE.sub(" ", text))
    return " ".join(text.split()).strip(" :-–—")


def first_line_title(lines: list[str]) -> str:
    """A PDF's first line, when it is short enough to be its title."""
    for line in lines[:5]:
        line = _plain(line)
        if line and not any(ch.isdigit() for ch in line[:1]):
            return line if len(line) <= _TITLE_LINE_MAX else ""
    return ""


def stated_date(lines: list[str]) -> dt.date | None:
    """The date the opening of a document states: a date field first, then any full date,
    then a month and year on a release line."""
    head = [line.strip() for line in lines[:HEAD_LINES] if line.strip()][:_DATE_LINES]
    for line in head:
        field = _FIELD.match(line)
        if field and field.group(1).lower() != "title":
            found = find_date(field.group(2))
            if found:
                return found
    for line in head:
        found = find_date(line, month_year=bool(_RELEASE_LINE.search(line)))
        if found:
            return found
    return None


def filename_date(filename: str) -> dt.date | None:
    return find_date(PurePath(filename).name, compact=True) if filename else None


def find_date(text: str, *, month_year: bool = False, compact: bool = False) -> dt.date | None:
    """The first real date in `text`: ISO (2024-03-05), "5 March 2024", "March 5, 2024"; a
    bare "Feb 2023" (its first day) only when `month_year`; 20240305 only when `compact`."""
    found = []
    for match in _ISO.finditer(text):
        found.append((match.start(), _date(match.group(1), match.group(2), match.group(3))))
    if compact:
        for match in _COMPACT.finditer(text):
            found.append((match.start(), _date(match.group(1), match.group(2), match.group(3))))
    for match in _DAY_MONTH_YEAR.finditer(text):
        found.append((match.start(), _date(match.group(3), _MONTH_NAMES[match.group(2).lower()[:3]], match.group(1))))
    for match in _MONTH_DAY_YEAR.finditer(text):
        found.append((match.start(), _date(match.group(3), _MONTH_NAMES[match.group(1).lower()[:3]], match.group(2))))
    if month_year:
        for match in _MONTH_YEAR.finditer(text):
            found.append((match.start(), _date(match.group(2), _MONTH_NAMES[match.group(1).lower()[:3]], 1)))
    dates = [(start, date) for start, date in found if date]
    return min(dates, key=lambda item: item[0])[1] if dates else None


def _date(year, month, day) -> dt.date | None:
    try:
        date = dt.date(int(year), int(month), int(day))
    except ValueError:
        return None
    # A year far outside the plausible is a number that looks like a date.
    return date if 1900 <= date.year <= 2200 else None
