"""Automatic checks of a draft against its sources: what a reviewer should not have to do by eye.

Pure functions over a report dict (untrusted model output: any key may be missing or of the
wrong type), the attempt's manifest as `SourceRef`s, the template and the moment freshness is
judged against. `run_checks` returns every result, each tied to the place in the report it
concerns (`part` + `index`), so the review page can show it beside that claim.

Outcomes, and why:
- failed: the report breaks a rule it was given — a cited source that does not exist or could
  not be read, a quote not found in its source, a figure stated without a citation, a URL that
  is neither in the manifest nor in a source's text, a required section missing, a *cited*
  source older than the template's freshness limit. Approving needs an override reason.
- warning: worth a look, not a breach — an uncited statement without figures (it may be
  framing rather than a claim), a quote that matches only once punctuation is ignored, a stale
  source the report does not cite, an undated source (freshness unknown), a URL from an allowed
  domain when the searches' results are not known (older responses), an empty required section.
- passed: checked and fine (cited sources that exist, quotes found, fresh sources, sections).

Web citations (rows of `web_citations`, with web search on) get three checks of their own:
the web search really returned the URL (`search_urls`, from the responses' consulted sources
and url_citation annotations), its domain is one the template allows, and the quote is on the
page itself (`web_pages`: the page fetched after the draft and kept as a source item). A URL
the search never returned, a domain outside the list, or a quote not on the page fails.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import re
import string
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from enum import StrEnum

from jobs.rendering import CITATION_MARKER, ENGINE_NOTE, web_citations
from sources.urls import host_allowed, url_host, url_key

# Check names, as stored with a decision and shown on the review page.
REPORT_STORED = "report_stored"
SOURCE_EXISTS = "source_exists"
QUOTE_FOUND = "quote_found"
CLAIM_CITED = "claim_cited"
URL_IN_MANIFEST = "url_in_manifest"
SOURCE_FRESH = "source_fresh"
SECTION_PRESENT = "section_present"
WEB_URL_RETURNED = "web_url_returned"
WEB_DOMAIN_ALLOWED = "web_domain_allowed"
WEB_QUOTE_FOUND = "web_quote_found"

CHECK_LABELS = {
    REPORT_STORED: "Structured report stored",
    SOURCE_EXISTS: "Cited sources exist",
    QUOTE_FOUND: "Quotes found in their sources",
    CLAIM_CITED: "Claims cite a source",
    URL_IN_MANIFEST: "Links are to known sources",
    SOURCE_FRESH: "Sources are fresh enough",
    SECTION_PRESENT: "Required sections present",
    WEB_URL_RETURNED: "Web pages were returned by the search",
    WEB_DOMAIN_ALLOWED: "Web pages are on allowed domains",
    WEB_QUOTE_FOUND: "Web quotes are on their pages",
}

# Places in a report a result can concern.
PART_REPORT = "report"
PART_SUMMARY = "summary"
PART_SECTION = "section"
PART_EVIDENCE = "evidence"
PART_RECOMMENDATIONS = "recommendations"
PART_OPEN_QUESTIONS = "open_questions"
PART_SOURCE_NOTES = "source_notes"
PART_SOURCES = "sources"
PART_WEB = "web_citations"

# Longest near-miss passage kept with a result (the page and the stored JSON stay small).
NEAR_MISS_MAX_CHARS = 600
# Work stays bounded on very long sources: the near-miss search reads this many words.
NEAR_MISS_MAX_WORDS = 300_000
# Statements shorter than this are labels or fragments, not claims.
MIN_CLAIM_WORDS = 5


class Outcome(StrEnum):
    PASSED = "passed"
    WARNING = "warning"
    FAILED = "failed"


_SEVERITY = {Outcome.PASSED: 0, Outcome.WARNING: 1, Outcome.FAILED: 2}


@dataclass(frozen=True)
class SourceRef:
    """One manifest entry as the checks see it."""

    sid: str
    title: str = ""
    text: str = ""
    url: str = ""
    published_at: dt.date | None = None
    readable: bool = True
    error: str = ""


@dataclass(frozen=True)
class CheckResult:
    check: str
    outcome: Outcome
    message: str
    part: str = PART_REPORT
    index: int | None = None  # which section or evidence row, for parts that are lists
    section: str = ""  # the place as a reader names it: 'Section “Findings”', 'Evidence row 2'
    claim: str = ""  # the sentence, quote or URL concerned
    source_id: str = ""
    near_miss: str = ""  # the closest passage in the source, when a quote was not found
    similarity: float | None = None
    span: tuple[int, int] | None = None  # where a found quote sits in its source's text

    @property
    def failed(self) -> bool:
        return self.outcome == Outcome.FAILED

    @property
    def label(self) -> str:
        return CHECK_LABELS.get(self.check, self.check)

    def as_json(self) -> dict:
        data = asdict(self)
        data["outcome"] = str(self.outcome)
        data["span"] = list(self.span) if self.span else None
        return data


@dataclass(frozen=True)
class CheckSummary:
    check: str
    label: str
    outcome: Outcome | None  # None: nothing to check (e.g. freshness off)
    passed: int
    warnings: int
    failed: int
    note: str = ""


@dataclass(frozen=True)
class ReviewChecks:
    results: tuple[CheckResult, ...]
    freshness_days: int = 0
    evaluated_at: dt.datetime | None = None
    version: int | None = None

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.outcome == Outcome.FAILED)

    @property
    def warnings(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.outcome == Outcome.WARNING)

    @property
    def has_failures(self) -> bool:
        return any(r.outcome == Outcome.FAILED for r in self.results)

    @property
    def flagged(self) -> tuple[CheckResult, ...]:
        """Failures first, then warnings: what the reviewer must look at."""
        return self.failed + self.warnings

    def at(self, part: str, index: int | None = None) -> list[CheckResult]:
        """The results that concern one place of the report."""
        return [r for r in self.results if r.part == part and r.index == index]

    def for_source(self, sid: str) -> list[CheckResult]:
        return [r for r in self.results if r.source_id == sid]

    def summary(self) -> list[CheckSummary]:
        rows = []
        for check, label in CHECK_LABELS.items():
            mine = [r for r in self.results if r.check == check]
            if check == REPORT_STORED and not mine:
                continue
            counts = {o: sum(1 for r in mine if r.outcome == o) for o in Outcome}
            worst = max((r.outcome for r in mine), key=_SEVERITY.__getitem__, default=None)
            note = ""
            if check == SOURCE_FRESH and not self.freshness_days:
                note = "Off for this template."
            elif check == SOURCE_FRESH:
                note = f"Limit: {self.freshness_days} days before the request."
            elif not mine:
                note = "Nothing to check."
            rows.append(
                CheckSummary(check, label, worst, counts[Outcome.PASSED], counts[Outcome.WARNING], counts[Outcome.FAILED], note)
            )
        return rows

    def as_json(self) -> dict:
        """What is stored with a decision: the counts and every result as evaluated."""
        return {
            "version": self.version,
            "evaluated_at": self.evaluated_at.isoformat() if self.evaluated_at else None,
            "freshness_days": self.freshness_days,
            "counts": {
                "passed": sum(1 for r in self.results if r.outcome == Outcome.PASSED),
                "warning": len(self.warnings),
                "failed": len(self.failed),
            },
            "failed_checks": sorted({r.check for r in self.failed}),
            "results": [r.as_json() for r in self.results],
        }


# --- The whole run ---------------------------------------------------------------------


def run_checks(
    *,
    report: dict,
    sources: Sequence[SourceRef],
    required_sections: Sequence[str] = (),
    freshness_days: int = 0,
    as_of: dt.date | dt.datetime | None = None,
    web_search: bool = False,
    web_search_domains: Sequence[str] = (),
    search_urls: Iterable[str] = (),
    web_pages: Sequence[WebPageRef] = (),
) -> tuple[CheckResult, ...]:
    """Every check on one draft. `as_of` is the moment freshness is judged against (the job's
    creation: a report is not stale because its review took a week)."""
    if not isinstance(report, dict):
        report = {}
    by_sid = {s.sid: s for s in sources}
    cited = cited_ids_by_place(report)
    results: list[CheckResult] = []
    results += check_sources_exist(cited, by_sid)
    results += check_quotes(report, by_sid)
    results += check_claims_cited(report)
    returned = frozenset(url_key(url) for url in search_urls)
    results += check_urls(report, sources, web_search=web_search, allowed_domains=web_search_domains, search_urls=returned)
    results += check_web_citations(report, search_urls=returned, allowed_domains=web_search_domains, pages=web_pages)
    # A source note describes a source; it does not make the report rest on it.
    relied_on = {sid for place, sid in cited if place.part != PART_SOURCE_NOTES}
    results += check_freshness(sources, cited=relied_on, freshness_days=freshness_days, as_of=as_of)
    results += check_required_sections(report, required_sections)
    return tuple(results)


# --- Where the report cites what ---------------------------------------------------------


@dataclass(frozen=True)
class Place:
    part: str
    index: int | None = None
    section: str = ""


_SOURCE_ID = re.compile(r"\bS\d+\b")


def as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return " ".join(as_text(v) for v in value)
    return str(value)


def as_items(value) -> list:
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def section_heading(section, number: int) -> str:
    if isinstance(section, dict):
        heading = " ".join(as_text(section.get("heading")).split())
        if heading:
            return heading
    return f"Section {number}"


def section_body(section) -> str:
    return as_text(section.get("body")) if isinstance(section, dict) else as_text(section)


def report_places(report: dict) -> list[tuple[Place, str]]:
    """Each prose place of the report with its text, in reading order."""
    places = [(Place(PART_SUMMARY, None, "Executive summary"), as_text(report.get("executive_summary")))]
    for i, section in enumerate(as_items(report.get("sections"))):
        places.append((Place(PART_SECTION, i, f"Section “{section_heading(section, i + 1)}”"), section_body(section)))
    for part, label in ((PART_RECOMMENDATIONS, "Recommendations"), (PART_OPEN_QUESTIONS, "Open questions")):
        for i, item in enumerate(as_items(report.get(part))):
            places.append((Place(part, i, f"{label}, item {i + 1}"), as_text(item)))
    return places


def _marker_ids(text: str) -> list[str]:
    ids: dict[str, None] = {}
    for marker in CITATION_MARKER.finditer(text):
        ids.update(dict.fromkeys(_SOURCE_ID.findall(marker.group(1))))
    return list(ids)


def cited_ids_by_place(report: dict) -> list[tuple[Place, str]]:
    """(place, source id) for every citation, once per place, in reading order."""
    found: dict[tuple[Place, str], None] = {}
    # Markers in the title count too: the exports show them as citations.
    found.update(dict.fromkeys((Place(PART_REPORT, None, "Title"), sid) for sid in _marker_ids(as_text(report.get("title")))))
    for place, text in report_places(report):
        found.update(dict.fromkeys((place, sid) for sid in _marker_ids(text)))
        if place.part == PART_SECTION:
            section = as_items(report.get("sections"))[place.index]
            if isinstance(section, dict):
                for sid in _SOURCE_ID.findall(as_text(section.get("citations"))):
                    found[(place, sid)] = None
    for i, row in enumerate(as_items(report.get("evidence"))):
        if isinstance(row, dict):
            place = Place(PART_EVIDENCE, i, f"Evidence row {i + 1}")
            found.update(dict.fromkeys((place, sid) for sid in _SOURCE_ID.findall(as_text(row.get("source_id")))))
            found.update(dict.fromkeys((place, sid) for sid in _marker_ids(as_text(row.get("claim")))))
    for i, note in enumerate(as_items(report.get("source_notes"))):
        if isinstance(note, dict):
            place = Place(PART_SOURCE_NOTES, i, f"Source note {i + 1}")
            found.update(dict.fromkeys((place, sid) for sid in _SOURCE_ID.findall(as_text(note.get("source_id")))))
            found.update(dict.fromkeys((place, sid) for sid in _marker_ids(as_text(note.get("note")))))
    return list(found)


# --- Cited sources exist -----------------------------------------------------------------


def _manifest_range(by_sid: dict[str, SourceRef]) -> str:
    if not by_sid:
        return "the manifest has no sources"
    ids = sorted(by_sid, key=lambda s: int(s[1:]))
    return f"the manifest has {ids[0]}–{ids[-1]}" if len(ids) > 1 else f"the manifest has only {ids[0]}"


def check_sources_exist(cited: Iterable[tuple[Place, str]], by_sid: dict[str, SourceRef]) -> list[CheckResult]:
    results = []
    ok: dict[str, None] = {}
    for place, sid in cited:
        source = by_sid.get(sid)
        if source is None:
            results.append(CheckResult(
                SOURCE_EXISTS, Outcome.FAILED,
                f"{sid} is cited but does not exist: {_manifest_range(by_sid)}.",
                place.part, place.index, place.section, source_id=sid,
            ))
        elif not source.readable:
            reason = f" ({source.error})" if source.error else ""
            results.append(CheckResult(
                SOURCE_EXISTS, Outcome.FAILED,
                f"{sid} is cited, but it could not be read{reason}, so the draft cannot rest on it.",
                place.part, place.index, place.section, source_id=sid,
            ))
        else:
            ok[sid] = None
    for sid in ok:
        results.append(CheckResult(
            SOURCE_EXISTS, Outcome.PASSED, f"{sid} is cited and is in the manifest.", PART_SOURCES, source_id=sid,
        ))
    return results


# --- Quotes are found in their sources ----------------------------------------------------

_QUOTE_CHARS = str.maketrans({
    "“": '"', "”": '"', "„": '"', "‟": '"', "«": '"', "»": '"',
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'",
    "–": "-", "—": "-", "‐": "-", "‑": "-", "−": "-",
    "\u00a0": " ", "\u200b": "",
})  # fmt: skip
_ELLIPSIS = re.compile(r"\s*(?:\[\s*(?:…|\.\.\.)\s*\]|…|\.{3,})\s*")
_WRAPPING_QUOTES = "\"'“”‘’«»„ "


_ASCII_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation})
_NON_SPACE = re.compile(r"\S+")


@functools.lru_cache(maxsize=64)
def _normalise(text: str, *, punctuation: bool = True) -> tuple[str, tuple[int, ...]]:
    """Text folded for matching (case, compatibility forms, typographic quotes and dashes,
    whitespace runs; optionally punctuation dropped), with each folded character's index in
    the original, so a match can be mapped back to the source. Cached: a source is folded
    once however many quotes are checked against it."""
    if text.isascii():
        # The common case, at C speed: folding keeps every character's position.
        folded = text.lower() if punctuation else text.lower().translate(_ASCII_PUNCTUATION)
        parts: list[str] = []
        where: list[int] = []
        for run in _NON_SPACE.finditer(folded):
            if parts:
                parts.append(" ")
                where.append(run.start())
            parts.append(run.group())
            where.extend(range(run.start(), run.end()))
        return "".join(parts), tuple(where)
    out: list[str] = []
    where = []
    pending_space = False
    for i, char in enumerate(text):
        for folded in unicodedata.normalize("NFKC", char).translate(_QUOTE_CHARS).casefold():
            if not punctuation and not (folded.isalnum() or folded.isspace()):
                folded = " "
            if folded.isspace():
                pending_space = bool(out)
                continue
            if pending_space:
                out.append(" ")
                where.append(i)
                pending_space = False
            out.append(folded)
            where.append(i)
    return "".join(out), tuple(where)


def _fold_word(word: str) -> str:
    return unicodedata.normalize("NFKC", word).translate(_QUOTE_CHARS).casefold()


def _find_fragments(quote: str, text: str, *, punctuation: bool) -> tuple[int, int] | None:
    """Where `quote` is in `text` (its ellipsis-separated fragments in order), or None."""
    haystack, where = _normalise(text, punctuation=punctuation)
    fragments = [f for f in (_normalise(part, punctuation=punctuation)[0] for part in _ELLIPSIS.split(quote)) if f]
    if not fragments or not haystack:
        return None
    start = end = None
    cursor = 0
    for fragment in fragments:
        position = haystack.find(fragment, cursor)
        if position < 0:
            return None
        if start is None:
            start = position
        cursor = end = position + len(fragment)
    return where[start], where[end - 1] + 1


_WORD = re.compile(r"\S+")


def closest_passage(quote: str, text: str) -> tuple[str, float]:
    """The stretch of `text` most like `quote`, and how alike they are (0–1).

    Word windows the length of the quote are ranked by shared words, then the best few are
    compared character by character (difflib), trying slightly shorter and longer windows.
    """
    words = []
    for match in _WORD.finditer(text):
        if len(words) >= NEAR_MISS_MAX_WORDS:
            break
        words.append((match.start(), match.end(), _fold_word(match.group())))
    target = _normalise(quote)[0]
    quote_words = set(target.split())
    if not words or not target:
        return "", 0.0
    size = max(1, len(target.split()))
    step = max(1, size // 4)
    candidates = []
    for start in range(0, max(1, len(words) - size + 1), step):
        window = {w for _, _, w in words[start : start + size]}
        candidates.append((len(window & quote_words), start))
    candidates.sort(key=lambda c: (-c[0], c[1]))
    best_ratio, best_span = 0.0, (words[0][0], words[min(size, len(words)) - 1][1])
    for _, start in candidates[:8]:
        for offset in range(-step, step + 1, max(1, step // 2)):
            for length in {size - 2, size - 1, size, size + 1, size + 2}:
                first = max(0, start + offset)
                last = min(len(words), first + max(1, length))
                if first >= last:
                    continue
                window_text = " ".join(w for _, _, w in words[first:last])
                ratio = difflib.SequenceMatcher(None, target, window_text, autojunk=False).ratio()
                if ratio > best_ratio:
                    best_ratio, best_span = ratio, (words[first][0], words[last - 1][1])
    passage = " ".join(text[best_span[0] : best_span[1]].split())
    if len(passage) > NEAR_MISS_MAX_CHARS:
        passage = passage[:NEAR_MISS_MAX_CHARS].rsplit(" ", 1)[0] + " …"
    return passage, round(best_ratio, 2)


def check_quote(quote: str, source: SourceRef, place: Place) -> CheckResult:
    """Is `quote` in `source`'s text, allowing for whitespace and case?"""
    quote = quote.strip().strip(_WRAPPING_QUOTES)
    sid = source.sid
    base = dict(part=place.part, index=place.index, section=place.section, claim=quote, source_id=sid)
    if not source.readable or not source.text.strip():
        return CheckResult(QUOTE_FOUND, Outcome.FAILED, f"{sid} has no readable text to check the quote against.", **base)
    span = _find_fragments(quote, source.text, punctuation=True)
    if span:
        return CheckResult(QUOTE_FOUND, Outcome.PASSED, f"Found in {sid}.", span=span, **base)
    span = _find_fragments(quote, source.text, punctuation=False)
    if span:
        return CheckResult(
            QUOTE_FOUND, Outcome.WARNING,
            f"Found in {sid} only when punctuation is ignored: check that the wording is faithful.",
            near_miss=" ".join(source.text[span[0] : span[1]].split())[:NEAR_MISS_MAX_CHARS], span=span, **base,
        )
    passage, ratio = closest_passage(quote, source.text)
    return CheckResult(
        QUOTE_FOUND, Outcome.FAILED,
        f"Not found in {sid}. The closest passage is {round(ratio * 100)}% similar." if passage else f"Not found in {sid}.",
        near_miss=passage, similarity=ratio, **base,
    )


# An inline quotation followed by its citation: “…” [S1] (a short aside may sit between).
_INLINE_QUOTE = re.compile(r"[“\"]([^“”\"\n]{12,}?)[”\"][^\[\n]{0,40}?(\[\s*S\d+(?:\s*[,;]\s*S\d+)*\s*\])")


def check_quotes(report: dict, by_sid: dict[str, SourceRef]) -> list[CheckResult]:
    """Evidence rows' quotes, and quotations in the prose that carry a citation."""
    results = []
    for i, row in enumerate(as_items(report.get("evidence"))):
        if not isinstance(row, dict):
            continue
        place = Place(PART_EVIDENCE, i, f"Evidence row {i + 1}")
        quote = as_text(row.get("quote")).strip()
        ids = _SOURCE_ID.findall(as_text(row.get("source_id")))
        if not quote:
            results.append(CheckResult(
                QUOTE_FOUND, Outcome.FAILED, "The evidence row has no quote: every row must quote its source.",
                place.part, place.index, place.section, claim=as_text(row.get("claim")).strip(),
            ))
            continue
        if not ids:
            results.append(CheckResult(
                QUOTE_FOUND, Outcome.FAILED, "The evidence row names no source, so its quote cannot be checked.",
                place.part, place.index, place.section, claim=quote,
            ))
            continue
        results.append(_quote_in_any(quote, ids, by_sid, place))
    for place, text in report_places(report):
        for match in _INLINE_QUOTE.finditer(text):
            ids = _SOURCE_ID.findall(match.group(2))
            results.append(_quote_in_any(match.group(1), ids, by_sid, place))
    return results


def _quote_in_any(quote: str, ids: list[str], by_sid: dict[str, SourceRef], place: Place) -> CheckResult:
    """The quote checked against each cited source: the best outcome wins."""
    known = [by_sid[sid] for sid in ids if sid in by_sid]
    if not known:
        return CheckResult(
            QUOTE_FOUND, Outcome.FAILED,
            f"Cannot be checked: {', '.join(ids)} {'is' if len(ids) == 1 else 'are'} not in the manifest.",
            place.part, place.index, place.section, claim=quote.strip(), source_id=ids[0],
        )
    attempts = [check_quote(quote, source, place) for source in known]
    return min(attempts, key=lambda r: (_SEVERITY[r.outcome], -(r.similarity or 0)))


# --- Claims cite a source -----------------------------------------------------------------

_MARKERS = CITATION_MARKER.pattern
# A sentence ends at . ! ? … (with closing quotes or brackets), and any citation markers right
# after the full stop belong to it ("… in 2025. [S1] Next …").
_SENTENCE_END = re.compile(
    r"[.!?…]+[\"'”’)\]]*(?:\s*" + _MARKERS + r")*(?=\s+[^a-z\s]|\s*$)"
)
# What makes a statement a figure someone must be able to check.
_FIGURE = re.compile(
    r"[$€£¥]\s?\d"
    r"|\d(?:[\d.,]*\d)?\s?(?:%|percent\b|per\s?cent\b|pp\b|bps\b)"
    r"|\b(?:1[5-9]|20)\d\d\b"
    r"|\b\d+[.,]\d+\b"
    r"|\b\d+(?:\.\d+)?\s?(?:thousand|million|billion|trillion|bn|mn|[kKmMbB])\b"
    r"|\b\d{3,}\b",
    re.IGNORECASE,
)
_LIST_MARKER = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)")
_LINK = re.compile(r"\[([^\]]+)\]\((?:[^)]+)\)")


def statements(markdown_text: str) -> list[str]:
    """The sentences of a Markdown body that could be claims: paragraphs and list items split
    into sentences; headings, blockquotes (someone else's words), tables and code left out."""
    blocks: list[str] = []
    current: list[str] = []
    in_code = False

    def flush():
        if current:
            blocks.append(" ".join(current))
            current.clear()

    for raw in markdown_text.splitlines():
        line = raw.strip()
        if line.startswith(("```", "~~~")):
            flush()
            in_code = not in_code
            continue
        if in_code or not line or line.startswith(("#", ">", "|")):
            flush()
            continue
        if _LIST_MARKER.match(line):
            flush()
            line = _LIST_MARKER.sub("", line)
        current.append(line)
    flush()
    return [sentence for block in blocks for sentence in split_sentences(_LINK.sub(r"\1", block))]


def split_sentences(text: str) -> list[str]:
    """One line of prose as sentences, each keeping the citation markers that follow it."""
    sentences = []
    start = 0
    for end in _SENTENCE_END.finditer(text):
        sentences.append(text[start : end.end()].strip())
        start = end.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def _engine_notes_apart(text: str) -> tuple[str, str]:
    """(the text, its ENGINE_NOTE paragraphs): what a report writer says about its own draft."""
    paragraphs = re.split(r"\n\s*\n", text)
    notes = [p for p in paragraphs if p.lstrip().startswith(ENGINE_NOTE)]
    return "\n\n".join(p for p in paragraphs if p not in notes), "\n\n".join(notes)


def check_claims_cited(report: dict) -> list[CheckResult]:
    """Statements in the summary and the sections that carry no citation. Recommendations and
    open questions are not facts and are left to the reviewer. A paragraph marked as the
    writer's note on its own draft (ENGINE_NOTE) is not asked for citations, but a figure in
    it still is: the mark cannot carry an unsourced number past the check."""
    results = []
    for place, text in report_places(report):
        if place.part not in (PART_SUMMARY, PART_SECTION):
            continue
        prose, engine_notes = _engine_notes_apart(text)
        sentences = [(s, False) for s in statements(prose)] + [(s, True) for s in statements(engine_notes)]
        for sentence, engine_note in sentences:
            if CITATION_MARKER.search(sentence):
                continue
            plain = _EMPHASIS.sub("", sentence)
            if plain.rstrip().endswith(("?", ":")):
                continue
            if _FIGURE.search(plain):
                results.append(CheckResult(
                    CLAIM_CITED, Outcome.FAILED, "States a figure without citing a source.",
                    place.part, place.index, place.section, claim=plain,
                ))
            elif len(plain.split()) >= MIN_CLAIM_WORDS and not engine_note:
                results.append(CheckResult(
                    CLAIM_CITED, Outcome.WARNING, "No citation: check that this is not a factual claim.",
                    place.part, place.index, place.section, claim=plain,
                ))
    return results


# --- Links are to known sources -----------------------------------------------------------

_URL = re.compile(r"https?://[^\s<>\[\]()\"'“”‘’`]+", re.IGNORECASE)


def _report_strings(report: dict) -> list[tuple[Place, str]]:
    places = [(Place(PART_REPORT, None, "Title"), as_text(report.get("title")))]
    places += report_places(report)
    for i, row in enumerate(as_items(report.get("evidence"))):
        if isinstance(row, dict):
            places.append((Place(PART_EVIDENCE, i, f"Evidence row {i + 1}"), f"{as_text(row.get('claim'))} {as_text(row.get('quote'))}"))
    for i, note in enumerate(as_items(report.get("source_notes"))):
        places.append((Place(PART_SOURCE_NOTES, i, f"Source note {i + 1}"), as_text(note.get("note") if isinstance(note, dict) else note)))
    return places


def check_urls(
    report: dict, sources: Sequence[SourceRef], *, web_search: bool = False, allowed_domains: Sequence[str] = (),
    search_urls: frozenset[str] = frozenset(),
) -> list[CheckResult]:
    """Every link in the report must be a manifest source's URL or appear in a source's text.
    With web search on, links to the template's allowed domains (any domain when none are
    listed) are warnings: the model may have read them, but nobody has vetted them."""
    known = {url_key(s.url) for s in sources if s.url}
    texts = [s.text for s in sources if s.text]
    domains = {d.lower().removeprefix("www.") for d in allowed_domains}
    results = []
    seen: set[tuple[Place, str]] = set()
    for place, text in _report_strings(report):
        for match in _URL.finditer(text):
            url = match.group().rstrip(".,;:!?*_")
            if (place, url) in seen:
                continue
            seen.add((place, url))
            base = dict(part=place.part, index=place.index, section=place.section, claim=url)
            if url_key(url) in known:
                sid = next(s.sid for s in sources if s.url and url_key(s.url) == url_key(url))
                results.append(CheckResult(URL_IN_MANIFEST, Outcome.PASSED, f"The URL of {sid}.", source_id=sid, **base))
            elif any(url in t for t in texts):
                results.append(CheckResult(URL_IN_MANIFEST, Outcome.PASSED, "Appears in a source's text.", **base))
            elif web_search and url_key(url) in search_urls and (not domains or host_allowed(url_host(url), list(domains))):
                results.append(CheckResult(URL_IN_MANIFEST, Outcome.PASSED, "Returned by the web search.", **base))
            elif web_search and search_urls:
                # The searches' results are known, and this URL is not among them.
                results.append(CheckResult(
                    URL_IN_MANIFEST, Outcome.FAILED,
                    "Not in the manifest and never returned by the web search: the report may have invented it.", **base,
                ))
            elif web_search and (not domains or host_allowed(url_host(url), list(domains))):
                results.append(CheckResult(
                    URL_IN_MANIFEST, Outcome.WARNING,
                    "Not in the manifest; web search may have found it. Open it and check it says what the report claims.",
                    **base,
                ))
            else:
                results.append(CheckResult(
                    URL_IN_MANIFEST, Outcome.FAILED,
                    "Not in the manifest and not in any source: the report may have invented it.", **base,
                ))
    return results


# --- Web citations are real --------------------------------------------------------------


@dataclass(frozen=True)
class WebPageRef:
    """A cited web page as fetched after the draft was written."""

    url: str
    title: str = ""
    text: str = ""
    readable: bool = True
    error: str = ""


def check_web_citations(
    report: dict, *, search_urls: frozenset[str], allowed_domains: Sequence[str], pages: Sequence[WebPageRef]
) -> list[CheckResult]:
    """For each web citation: did the search return the URL, is its domain allowed, and is
    the quote on the page? A page the search never returned is not fetched, so its quote is
    not looked up either: the citation has already failed."""
    domains = [d.lower().removeprefix("www.") for d in allowed_domains]
    fetched = {url_key(page.url): page for page in pages}
    results: list[CheckResult] = []
    for index, row in enumerate(web_citations(report)):
        url = row["url"]
        place = Place(PART_WEB, index, f"Web citation {index + 1}")
        base = dict(part=place.part, index=index, section=place.section, claim=url)
        returned = url_key(url) in search_urls
        results.append(
            CheckResult(WEB_URL_RETURNED, Outcome.PASSED, "The web search returned this page.", **base)
            if returned else
            CheckResult(WEB_URL_RETURNED, Outcome.FAILED,
                        "The web search never returned this URL: the report may have invented it.", **base)
        )
        if domains:
            allowed = host_allowed(url_host(url), domains)
            results.append(
                CheckResult(WEB_DOMAIN_ALLOWED, Outcome.PASSED, f"{url_host(url)} is an allowed domain.", **base)
                if allowed else
                CheckResult(WEB_DOMAIN_ALLOWED, Outcome.FAILED,
                            f"{url_host(url)} is not among the template's domains ({', '.join(domains)}).", **base)
            )
        if not returned or not row["quote"]:
            continue
        page = fetched.get(url_key(url))
        if page is None:
            results.append(CheckResult(WEB_QUOTE_FOUND, Outcome.WARNING, "The page was not fetched, so the quote is unchecked.",
                                       **{**base, "claim": row["quote"]}))
            continue
        source = SourceRef(sid=page.title or url, title=page.title, text=page.text, url=url,
                           readable=page.readable, error=page.error)
        found = check_quote(row["quote"], source, place)
        message = found.message if page.readable else f"The page could not be read to check the quote: {page.error}"
        results.append(replace(found, check=WEB_QUOTE_FOUND, source_id="", message=message))
    return results


# --- Sources are fresh enough -------------------------------------------------------------


def check_freshness(
    sources: Sequence[SourceRef], *, cited: set[str], freshness_days: int, as_of: dt.date | dt.datetime | None
) -> list[CheckResult]:
    """Against the template's rule (0 turns it off). A stale source the report cites fails:
    the report rests on material older than the template allows. A stale source it does not
    cite, and any undated source, is a warning."""
    if not freshness_days:
        return []
    if isinstance(as_of, dt.datetime):
        as_of = as_of.date()
    as_of = as_of or dt.date.today()
    limit = as_of - dt.timedelta(days=freshness_days)
    results = []
    for source in sources:
        uses = "cited" if source.sid in cited else "not cited"
        base = dict(part=PART_SOURCES, section=source.title or source.sid, source_id=source.sid)
        if source.published_at is None:
            results.append(CheckResult(
                SOURCE_FRESH, Outcome.WARNING, f"{source.sid} has no publication date: its freshness is unknown ({uses}).", **base
            ))
        elif source.published_at < limit:
            age = (as_of - source.published_at).days
            results.append(CheckResult(
                SOURCE_FRESH, Outcome.FAILED if source.sid in cited else Outcome.WARNING,
                f"{source.sid} is stale: published {source.published_at.isoformat()}, {age} days before the request, "
                f"older than this template's limit of {freshness_days} days ({uses}).",
                **base,
            ))
        else:
            results.append(CheckResult(
                SOURCE_FRESH, Outcome.PASSED, f"{source.sid} was published {source.published_at.isoformat()}, within {freshness_days} days.", **base
            ))
    return results


# --- Required sections present ------------------------------------------------------------

_HEADING_NUMBER = re.compile(r"^\s*(?:\d+(?:\.\d+)*[.)]?|[ivxlc]+[.)])\s+", re.IGNORECASE)


def heading_key(heading: str) -> str:
    """A heading as compared: numbering, case, punctuation at the ends and spacing ignored."""
    heading = _HEADING_NUMBER.sub("", heading or "")
    return " ".join(_normalise(heading)[0].strip(" :.-–—").split())


def check_required_sections(report: dict, required: Sequence[str]) -> list[CheckResult]:
    sections = as_items(report.get("sections"))
    by_key: dict[str, tuple[int, object]] = {}
    for i, section in enumerate(sections):
        by_key.setdefault(heading_key(section_heading(section, i + 1)), (i, section))
    results = []
    for heading in required:
        if not isinstance(heading, str) or not heading.strip():
            continue
        found = by_key.get(heading_key(heading))
        if found is None:
            results.append(CheckResult(
                SECTION_PRESENT, Outcome.FAILED, f"The required section “{heading}” is missing.",
                PART_REPORT, None, f"Section “{heading}”", claim=heading,
            ))
            continue
        index, section = found
        place = dict(part=PART_SECTION, index=index, section=f"Section “{section_heading(section, index + 1)}”", claim=heading)
        if not section_body(section).strip():
            results.append(CheckResult(SECTION_PRESENT, Outcome.WARNING, f"The required section “{heading}” is empty.", **place))
        else:
            results.append(CheckResult(SECTION_PRESENT, Outcome.PASSED, f"Required section “{heading}” is present.", **place))
    return results


def missing_report(message: str) -> tuple[CheckResult, ...]:
    """The result when there is no structured report to check at all."""
    return (CheckResult(REPORT_STORED, Outcome.FAILED, message),)

