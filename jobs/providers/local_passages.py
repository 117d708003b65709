"""Passages for the local engine: the sentences of a source that read as text.

A source's text arrives as extracted (Markdown, text from a PDF or a web page), so before any
ranking the lines that are not prose are set aside: code, tables, image and badge markup, HTML
or XML, link definitions, headings, date and metadata lines, and the running headers and
footers a PDF repeats on every page. What remains is cut into sentences; a sentence that leans
on the one before it ("That makes them…", "However, …") is kept with it. Every passage is an
exact slice of the source text, so a quote always passes the reviewers' verbatim check.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

# Work stays bounded whatever the sources' size: this many candidate passages per source.
MAX_PASSAGES_PER_SOURCE = 2000
# Longer stretches without sentence punctuation are cut into windows of about this size.
MAX_PASSAGE_CHARS = 600
PASSAGE_WINDOW_CHARS = 320
# A line repeated this often (digits ignored) is page furniture: a running header or footer.
_RUNNING_LINE_REPEATS = 3
_RUNNING_LINE_MAX_CHARS = 100
# A line of at most this many words, on its own, is a heading rather than a sentence.
_HEADING_MAX_WORDS = 8
_HEADING_MAX_CHARS = 80

_FENCE = re.compile(r"^\s*(```|~~~)")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?\s*$")
_LINK_DEFINITION = re.compile(r"^\s*\[[^\]]+\]:\s*\S+")
_IMAGE = re.compile(r"!\[[^\]]*\]\(|<img\b|\[!\[", re.IGNORECASE)
_TAG = re.compile(r"</?[A-Za-z][\w:-]*(?:\s[^<>]*)?/?>|<\?xml|<!--|-->|<!\[CDATA\[")
_HEADING = re.compile(r"^\s*#{1,6}(\s|$)")
_SETEXT_RULE = re.compile(r"^\s*(=+|-+)\s*$")
_RULE = re.compile(r"^\s*([-*_=~])(\s*\1){2,}\s*$")
_MODE_LINE = re.compile(r"-\*-.*-\*-")
_METADATA = re.compile(
    r"^\s*(?:date|published|updated|last updated|author|authors|by|title|version|status|"
    r"copyright|license|page|source|url|tags|category|keywords|doi|isbn)\s*:",
    re.IGNORECASE,
)
_MONTHS = (
    "jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|june|"
    "july|august|september|october|november|december"
)
# A line that is only a date, a version with a date, a page number or a timestamp.
_DATE_ONLY = re.compile(
    r"^\s*(?:v?\d+(?:\.\d+)+\s*)?[\[(]?\s*(?:\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"
    rf"|(?:\d{{1,2}}\s+)?(?:{_MONTHS})\.?\s+(?:\d{{1,2}},?\s+)?\d{{4}})"
    r"(?:,?\s*\d{1,2}:\d{2}(?::\d{2})?(?:\s*[ap]m)?)?\s*[\])]?\s*$",
    re.IGNORECASE,
)
_VERSION_HEADER = re.compile(r"^\s*\S*\s*v?\d+(?:\.\d+)+\b.{0,40}\d{4}.{0,4}$", re.IGNORECASE)
_PAGE_NUMBER = re.compile(r"^\s*(?:page\s+)?\d{1,4}(?:\s*(?:/|of)\s*\d{1,4})?\s*$", re.IGNORECASE)
_URL_ONLY = re.compile(r"^\s*(?:<?(?:https?|file|ftp)://\S+>?\s*)+(?:\d{1,4}\s*(?:/|of)\s*\d{1,4})?\s*$", re.IGNORECASE)
# A printed page's header: a date and time stamp, then the page title.
_PRINT_STAMP = re.compile(r"^\s*\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4},?\s+\d{1,2}:\d{2}\b")
_INDENTED_CODE = re.compile(r"^(?: {4}|\t)\S")
# Characters that are common in code and rare in prose.
_CODE_CHARS = re.compile(r"[{};=<>\\$|]")
# Where a passage ends: sentence punctuation (with closing quotes) before whitespace, CJK full
# stops, a blank line, a line break before a list item or a "label:" line (changelogs) or
# after a line ending in a colon, and a <br> tag.
_BOUNDARY = re.compile(
    r"[.!?…]+[\"'”’)\]]*(?=\s)"
    r"|[。！？]+[」』”’）)]*"
    r"|\n[ \t]*\n\s*"
    r"|\n(?=[ \t]*(?:[-*•+]|\d{1,3}[.)]|#{1,6}|[A-Za-z][\w-]{0,15}:)[ \t])"
    r"|(?<=:)[ \t]*\n"
    r"|<br\s*/?>",
    re.IGNORECASE,
)
# Sentence ends that are not: abbreviations and initials before the full stop.
_ABBREVIATION = re.compile(
    r"(?:\b(?:e\.g|i\.e|etc|vs|cf|approx|incl|no|nr|fig|eq|dr|mr|mrs|ms|prof|st|inc|ltd|co|"
    r"corp|jr|sr|u\.s|e\.u|al)|\b[A-Z])\.$",
    re.IGNORECASE,
)
# A sentence that opens with one of these leans on the sentence before it.
_LEANING = re.compile(
    r"^(?:that|this|these|those|it|its|they|their|them|such|he|she|his|her|however|but|also|"
    r"so|thus|therefore|hence|instead|otherwise|meanwhile|moreover|furthermore|besides|"
    r"likewise|similarly|then|yet|still|and|or|as a result|in addition|in turn|by contrast|"
    r"on the other hand|even so|for example|for instance)\b",
    re.IGNORECASE,
)
_INLINE_CODE = re.compile(r"`[^`]*`")
_LIST_NUMBER = re.compile(r"[ \t]*\d{1,3}\.$")
_CONTINUATION = re.compile(r"^(?:for|to|of|in|on|with|by|from|at|as|and|or|the|a|an|than|into)\s")
_LEADING_MARKER = re.compile(r"^(?:#{1,6}|[-*•+]|\d{1,3}[.)])\s+")
_WORD = re.compile(r"\w+")
_LETTERS = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def passage_spans(text: str) -> list[Span]:
    """(start, end) of every prose passage of `text`, in order, at most
    MAX_PASSAGES_PER_SOURCE of them."""
    spans: list[Span] = []
    for block_start, block_end in _prose_blocks(text):
        previous: Span | None = None
        for start, end in _sentences(text, block_start, block_end):
            piece = text[start:end]
            if _LEANING.match(piece):
                # Without the sentence it leans on, it would say something it does not; and
                # one that introduces what follows ("For example, run:") says nothing.
                if previous is not None and end - previous.start <= MAX_PASSAGE_CHARS and not piece.endswith(":"):
                    previous = Span(previous.start, end)
                    spans[-1] = previous
                continue
            if not is_prose(piece):
                previous = None
                continue
            previous = Span(start, end)
            spans.append(previous)
            if len(spans) >= MAX_PASSAGES_PER_SOURCE:
                return spans
    return spans


def is_prose(text: str) -> bool:
    """Does this piece read as a sentence of text, not markup, code, a label or a date?"""
    stripped = _LEADING_MARKER.sub("", text.strip())
    words = _WORD.findall(stripped)
    if len(words) < 4 and not (stripped[-1:] in ".!?…。！？" and len(words) >= 2):
        # CJK text has no spaces: one "word" can be a whole sentence.
        if not (len(words) >= 1 and len(stripped) >= 8 and not stripped.isascii()):
            return False
    if stripped.endswith(":"):
        return False  # it introduces what follows (a command, a list) and says nothing alone
    if _CONTINUATION.match(stripped):
        return False  # the tail of a sentence whose start was cut off (a PDF line break)
    if _TAG.search(stripped) or _IMAGE.search(stripped) or _HEADING.match(text) or " | " in stripped:
        return False
    if "`" in stripped and len(_WORD.findall(_INLINE_CODE.sub(" ", stripped))) < 3:
        return False  # a command, not a sentence about it
    if _DATE_ONLY.match(stripped) or _METADATA.match(stripped) or _URL_ONLY.match(stripped):
        return False
    if not any(ch.islower() for ch in stripped) and stripped.isascii():
        return False
    letters = len(_LETTERS.findall(stripped))
    if letters < 0.55 * len(stripped.replace(" ", "")):
        return False
    # Inline code (`make check`) in a sentence is fine; a sentence made of code is not.
    code = len(_CODE_CHARS.findall(_INLINE_CODE.sub("", stripped)))
    return code <= max(2, len(stripped) // 40)


def _prose_blocks(text: str):
    """(start, end) of each run of lines that may hold prose, furniture lines left out."""
    lines = _lines(text)
    running = _running_lines([line for _, _, line in lines])
    junk = [False] * len(lines)
    in_fence = False
    previous_blank = True
    block_ended = True  # the line before ended a sentence or was not prose
    for i, (_, _, line) in enumerate(lines):
        stripped = line.strip()
        if _FENCE.match(line):
            junk[i] = True
            in_fence = not in_fence
        elif in_fence:
            junk[i] = True
        elif not stripped:
            pass
        elif _SETEXT_RULE.match(line) and i and lines[i - 1][2].strip():
            # "Title\n=====": the underline and the line above it are a heading.
            junk[i] = junk[i - 1] = True
        elif _furniture(line, stripped, running, previous_blank):
            junk[i] = True
        elif block_ended and _heading_like(stripped):
            junk[i] = True
        previous_blank = not stripped or (previous_blank and _INDENTED_CODE.match(line) is not None)
        block_ended = not stripped or junk[i] or stripped[-1] in ".!?:…。！？"
    block_start = None
    block_end = 0
    for i, (start, end, line) in enumerate(lines):
        if junk[i] or not line.strip():
            if block_start is not None:
                yield block_start, block_end
                block_start = None
            continue
        if block_start is None:
            block_start = start
        block_end = end
    if block_start is not None:
        yield block_start, block_end


def _lines(text: str) -> list[tuple[int, int, str]]:
    lines = []
    position = 0
    for line in text.split("\n"):
        lines.append((position, position + len(line), line))
        position += len(line) + 1
    return lines


def _digits_out(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.split())).casefold()


def _running_lines(lines: list[str]) -> set[str]:
    counts = Counter(
        _digits_out(line) for line in lines if 0 < len(line.strip()) <= _RUNNING_LINE_MAX_CHARS
    )
    return {line for line, count in counts.items() if count >= _RUNNING_LINE_REPEATS}


def _furniture(line: str, stripped: str, running: set[str], previous_blank: bool) -> bool:
    if _HEADING.match(line) or _RULE.match(line) or _TABLE_RULE.match(line):
        return True
    if stripped.startswith("|") or (" | " in stripped and stripped[-1:] not in ".!?"):
        return True
    if _LINK_DEFINITION.match(line) or _IMAGE.search(line) or _MODE_LINE.search(line):
        return True
    if _METADATA.match(stripped) or _DATE_ONLY.match(stripped) or _PAGE_NUMBER.match(stripped):
        return True
    if _VERSION_HEADER.match(stripped) and len(stripped) <= 60 and not stripped.endswith("."):
        return True
    if _URL_ONLY.match(stripped) or _PRINT_STAMP.match(stripped) or _digits_out(line) in running:
        return True
    if previous_blank and _INDENTED_CODE.match(line):
        return True
    tags = _TAG.findall(stripped)
    # A line that is mostly tags (XML, HTML) rather than text with the odd tag in it.
    return bool(tags) and sum(len(t) for t in tags) * 3 > len(stripped)


def _heading_like(stripped: str) -> bool:
    """A short line that starts a block without ending a sentence: a heading, a contents
    entry or a command in text from a PDF or a page."""
    return (
        len(stripped.split()) <= _HEADING_MAX_WORDS
        and len(stripped) <= _HEADING_MAX_CHARS
        and stripped[-1:] not in ".!?;,…。！？"
    )


def _sentences(text: str, start: int, end: int):
    """Sentence-like (start, end) spans of text[start:end], trimmed of whitespace."""
    position = start
    for boundary in _BOUNDARY.finditer(text, start, end):
        if _ABBREVIATION.search(text, max(position, boundary.start() - 8), boundary.end()):
            continue
        if _LIST_NUMBER.match(text, text.rfind("\n", 0, boundary.start()) + 1, boundary.end()):
            continue  # "1." opening a list item
        yield from _windows(text, position, boundary.start() if boundary.group().lower().startswith("<br") else boundary.end())
        position = boundary.end()
    yield from _windows(text, position, end)


def _windows(text: str, start: int, end: int):
    """The trimmed span, cut at whitespace into windows when it is too long to be a sentence."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    while end - start > MAX_PASSAGE_CHARS:
        cut = start + PASSAGE_WINDOW_CHARS
        space = text.rfind(" ", start + PASSAGE_WINDOW_CHARS // 2, cut)
        if space == -1:
            space = text.find(" ", cut, start + MAX_PASSAGE_CHARS)
        piece_end = space if space != -1 else cut
        yield start, piece_end
        start = piece_end
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        yield start, end
