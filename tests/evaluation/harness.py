"""The local engine's evaluation set, run and scored: shared by the test and bench/local_engine_eval.py.

Each case in cases.json names real documents (see README.md beside it for where they come
from and their licences), a topic, the sections to write and, per section, the passages a
good draft must quote there; an item that is a list is met by any one of its passages.
Scoring looks only at the report as a reader gets it:
- recall: the share of expected items found in the body of their own section;
- junk: evidence quotes that are date or metadata lines, markup, code or page furniture;
- repeats: a sentence quoted twice in the summary and sections, or an evidence quote twice;
- false statements: what the report says about its sources (how many, which it quotes and
  how often, which words they never mention, dates, titles), checked against the sources.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from jobs.providers.base import ReportRequest, SourceDoc
from jobs.providers.local_engine import build_extractive_report
from jobs.rendering import CITATION_MARKER
from jobs.report_schema import REPORT_SCHEMA
from sources.extraction import detect_content_type, extract_text

ROOT = Path(__file__).resolve().parents[2]
CASES_FILE = Path(__file__).with_name("cases.json")


@dataclass
class CaseResult:
    name: str
    expected: int = 0
    found: int = 0
    misses: list[str] = field(default_factory=list)
    evidence_rows: int = 0
    junk: list[str] = field(default_factory=list)
    repeats: list[str] = field(default_factory=list)
    false_statements: list[str] = field(default_factory=list)
    engine_ms: float = 0.0  # the engine alone, not the documents' extraction

    @property
    def recall(self) -> float:
        return self.found / self.expected if self.expected else 1.0


def load_cases() -> list[dict]:
    return json.loads(CASES_FILE.read_text())["cases"]


def case_sources(case: dict) -> tuple[SourceDoc, ...]:
    """The case's documents, extracted as an upload would be."""
    docs = []
    for number, relative in enumerate(case["sources"], start=1):
        path = ROOT / relative
        data = path.read_bytes()
        content_type = detect_content_type(data=data, filename=path.name)
        extracted = extract_text(data=data, content_type=content_type, filename=path.name)
        docs.append(
            SourceDoc(
                sid=f"S{number}", title=extracted.title or path.name, text=extracted.text,
                kind="upload", published=extracted.published,
            )
        )  # fmt: skip
    return tuple(docs)


def case_request(case: dict, *, sources: tuple[SourceDoc, ...] | None = None, notes: str = "") -> ReportRequest:
    return ReportRequest(
        job_id="evaluation",
        attempt=1,
        step="report",
        model="local-extractive",
        instructions="",
        input_text="",
        topic=case["topic"],
        audience=case.get("audience", ""),
        sources=case_sources(case) if sources is None else sources,
        output_schema=REPORT_SCHEMA,
        required_sections=tuple(case["sections"]),
        revision_notes=notes,
    )


def evaluate(case: dict) -> tuple[CaseResult, dict]:
    request = case_request(case)
    started = time.perf_counter()
    report = build_extractive_report(request)
    result = CaseResult(name=case["name"], engine_ms=(time.perf_counter() - started) * 1000)
    bodies = {s["heading"]: normalise(s["body"]) for s in report["sections"]}
    for heading, items in case["expected"].items():
        for item in items:
            alternatives = item if isinstance(item, list) else [item]
            result.expected += 1
            if any(normalise(passage) in bodies.get(heading, "") for passage in alternatives):
                result.found += 1
            else:
                result.misses.append(f"{heading}: {alternatives[0]}")
    texts = {s.sid: s.text for s in request.sources}
    result.evidence_rows = len(report["evidence"])
    for row in report["evidence"]:
        reasons = junk_reasons(row["quote"], texts.get(row["source_id"], ""))
        if reasons:
            result.junk.append(f"{row['quote'][:80]!r}: {', '.join(reasons)}")
    result.repeats = repeated_sentences(report)
    result.false_statements = false_statements(report, request.sources, case)
    return result, report


def normalise(text: str) -> str:
    """Text as compared: ligatures unfolded, Markdown link syntax and emphasis dropped,
    citations dropped, whitespace collapsed, case folded."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = CITATION_MARKER.sub(" ", text)
    text = re.sub(r"[*_`]", "", text)
    return " ".join(text.split()).casefold()


# --- junk ---------------------------------------------------------------------------------

_METADATA_LINE = re.compile(r"^\s*(?:date|published|updated|author|version|title)\s*:", re.IGNORECASE | re.MULTILINE)
_DATE_ALONE = re.compile(r"^\W*(?:\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4})\W*$")
_MARKUP = re.compile(r"<[A-Za-z/!?][^>]*>|!\[|\[!\[|```|^\s*\|.*\||\s\|\s|^\s*\[[^\]]+\]:\s", re.MULTILINE)
_HEADING = re.compile(r"^\s*#{1,6}\s", re.MULTILINE)
_PRINT_FURNITURE = re.compile(r"file:///|^\s*\d{1,2}/\d{1,2}/\d{2,4},\s+\d{1,2}:\d{2}", re.MULTILINE)
_CODE = re.compile(r"[{};=$\\]")


def junk_reasons(quote: str, source_text: str) -> list[str]:
    """Why an evidence quote is not a passage of text, if it is not."""
    reasons = []
    if _METADATA_LINE.search(quote) or _DATE_ALONE.match(quote):
        reasons.append("date or metadata line")
    if _MARKUP.search(quote):
        reasons.append("markup")
    if _HEADING.search(quote):
        reasons.append("heading")
    if _PRINT_FURNITURE.search(quote) or _repeated_line(quote, source_text):
        reasons.append("page header or footer")
    if len(_CODE.findall(re.sub(r"`[^`]*`", "", quote))) > 3:
        reasons.append("code")
    return reasons


def _repeated_line(quote: str, source_text: str) -> bool:
    """Does the quote carry a short line the source repeats on every page?"""
    lines = Counter(re.sub(r"\d+", "#", line.strip()) for line in source_text.splitlines() if line.strip())
    return any(
        lines[re.sub(r"\d+", "#", line.strip())] >= 3 and len(line.strip()) < 100
        for line in quote.splitlines()
        if line.strip()
    )


# --- repeats ------------------------------------------------------------------------------


def repeated_sentences(report: dict) -> list[str]:
    """Sentences quoted more than once in the summary and sections, and repeated evidence."""
    units = []
    for text in [report["executive_summary"], *(s["body"] for s in report["sections"])]:
        for paragraph in text.split("\n\n"):
            if not CITATION_MARKER.search(paragraph):
                continue
            units += [normalise(u) for u in CITATION_MARKER.split(paragraph) if len(normalise(u)) > 20]
    counts = Counter(u.removeprefix("key passages: ") for u in units)
    quotes = Counter(row["quote"] for row in report["evidence"])
    return [u for u, n in counts.items() if n > 1] + [q for q, n in quotes.items() if n > 1]


# --- statements about the sources ---------------------------------------------------------


def false_statements(report: dict, sources: tuple[SourceDoc, ...], case: dict | None = None) -> list[str]:
    """Each statement the report makes about its sources that the sources contradict."""
    false = []
    by_sid = {s.sid: s for s in sources}
    cited = _cited_anywhere(report)
    summary = report["executive_summary"]

    supplied = re.search(r"from the (\d+) supplied sources?", summary)
    if supplied and int(supplied.group(1)) != len(sources):
        false.append(f"summary: {supplied.group(0)!r}, but there are {len(sources)}")
    filled = re.search(r"(\d+) of (\d+) sections quote the sources", summary)
    if filled:
        quoting = sum(1 for s in report["sections"] if CITATION_MARKER.search(s["body"]))
        if int(filled.group(1)) != quoting:
            false.append(f"summary: {filled.group(0)!r}, but {quoting} do")

    counts = {}
    for note in report["source_notes"]:
        sid, text = note["source_id"], note["note"]
        source = by_sid.get(sid)
        if source is None:
            false.append(f"source note on {sid}, which does not exist")
            continue
        if not text.startswith(" ".join(source.title.split())):
            false.append(f"source note on {sid} gives another title: {text[:60]!r}")
        date = source.published.isoformat() if source.published else "no publication date"
        if date not in text:
            false.append(f"source note on {sid} misstates its date: {text!r}")
        quoted = re.search(r"(\d+) passages? quoted", text)
        if quoted:
            counts[sid] = int(quoted.group(1))
            rows = {r["quote"] for r in report["evidence"] if r["source_id"] == sid}
            if not len(rows) <= counts[sid] <= cited[sid]:
                false.append(f"source note on {sid}: {quoted.group(0)!r}, against {len(rows)} evidence rows and {cited[sid]} citations")
        elif "not quoted" in text and cited[sid]:
            false.append(f"source note on {sid} says it is not quoted; it is cited {cited[sid]} times")

    for item in report["recommendations"]:
        most = re.search(r"read (S\d+) \(“(.*?)”\) in full: this draft quotes it most \((\d+) of (\d+) passages\)", item)
        if most:
            sid, title, count, total = most.group(1), most.group(2), int(most.group(3)), int(most.group(4))
            others = [n for s, n in counts.items() if s != sid]
            if title != " ".join(by_sid[sid].title.split()) or count != counts.get(sid) or total != sum(counts.values()) or any(n >= count for n in others):
                false.append(f"recommendation: {item!r}, against counts {counts}")
        unused = re.search(r"confirm that ((?:S\d+(?:, )?)+) belongs?", item)
        if unused:
            for sid in re.findall(r"S\d+", unused.group(1)):
                if cited[sid]:
                    false.append(f"recommendation says nothing from {sid} is quoted; it is cited {cited[sid]} times")

    everything = " ".join(f"{s.title} {s.text}" for s in sources).casefold()
    for question in report["open_questions"]:
        unmentioned = re.match(r"No source mentions (.*?): what", question)
        if unmentioned:
            for word in re.findall(r"“([^”]+)”", unmentioned.group(1)):
                if re.search(rf"\b{re.escape(word.casefold()[: max(4, len(word) - 3)])}", everything):
                    false.append(f"open question says no source mentions {word!r}; one does")
        undated = re.match(r"When (?:was|were) ((?:S\d+(?:, )?)+) published", question)
        if undated:
            for sid in re.findall(r"S\d+", undated.group(1)):
                if by_sid[sid].published is not None:
                    false.append(f"open question says {sid} carries no date; it is dated {by_sid[sid].published}")

    for section in report["sections"]:
        if "No passage in the sources speaks to" in section["body"] and case and case["expected"].get(section["heading"]):
            false.append(f"section {section['heading']!r} says no passage speaks to it; the evaluation set lists some")
    return false


def _cited_anywhere(report: dict) -> Counter:
    """Citations per source id in the summary, the sections and the evidence table."""
    counts: Counter = Counter()
    for text in [report["executive_summary"], *(s["body"] for s in report["sections"])]:
        for marker in CITATION_MARKER.finditer(text):
            counts.update(re.findall(r"S\d+", marker.group(1)))
    counts.update(row["source_id"] for row in report["evidence"])
    return counts
