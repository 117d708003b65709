"""The review page's view of a draft: each part of the report as sanitised HTML with its
checks beside it, the evidence rows with their quote checks, and the sources it cites.

The model's text becomes HTML only through jobs.rendering.render_html (sanitised). What this
module adds to that HTML — a <mark> around a flagged sentence, a link from each [S1] to its
source — is inserted into text nodes only, with every attribute value escaped.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from django.utils.safestring import SafeString, mark_safe

from jobs.rendering import CITATION_MARKER, render_html

from .checks import (
    CLAIM_CITED,
    PART_EVIDENCE,
    PART_OPEN_QUESTIONS,
    PART_RECOMMENDATIONS,
    PART_REPORT,
    PART_SECTION,
    PART_SOURCE_NOTES,
    PART_SOURCES,
    PART_WEB,
    QUOTE_FOUND,
    SOURCE_EXISTS,
    SOURCE_FRESH,
    CheckResult,
    Outcome,
    ReviewChecks,
    SourceRef,
    section_body,
    section_heading,
)

# How much of a source's text the page shows beside the report.
SOURCE_TEXT_MAX_CHARS = 50_000

_SEVERITY = {None: -1, Outcome.PASSED: 0, Outcome.WARNING: 1, Outcome.FAILED: 2}


def worst(results) -> Outcome | None:
    return max((r.outcome for r in results), key=_SEVERITY.__getitem__, default=None)


@dataclass
class PartView:
    anchor: str
    heading: str
    html: SafeString
    flags: list[CheckResult]  # failed and warning results for this part, failures first
    passed: int = 0
    comment_field: str = ""  # the decision form's field for a comment on this section
    comment_input: object = None  # that field, bound, when the reviewer may decide

    @property
    def outcome(self) -> Outcome | None:
        return worst(self.flags)


@dataclass
class EvidenceView:
    anchor: str
    number: int
    claim: str
    source_id: str
    quote: str
    results: list[CheckResult]

    @property
    def outcome(self) -> Outcome | None:
        return worst(self.results)


@dataclass
class TextPiece:
    """A stretch of a source's text; `quoted` when the draft quotes it (found by the checks)."""

    text: str
    quoted: bool = False
    where: str = ""  # which parts of the report quote it


@dataclass
class SourceView:
    ref: SourceRef
    cited: bool
    results: list[CheckResult]
    pieces: list[TextPiece] = field(default_factory=list)  # the text shown, quotes marked
    truncated_chars: int = 0

    @property
    def anchor(self) -> str:
        return f"source-{self.ref.sid}"

    @property
    def link(self) -> str:
        """The source's URL when it is safe to link to (http or https only)."""
        return self.ref.url if self.ref.url.lower().startswith(("http://", "https://")) else ""

    @property
    def flags(self) -> list[CheckResult]:
        return _flagged(self.results)

    @property
    def outcome(self) -> Outcome | None:
        return worst(self.results)


@dataclass
class ReportView:
    title: str
    top_flags: list[CheckResult]  # report-wide: missing sections, nothing stored, links in the title
    parts: list[PartView]
    evidence: list[EvidenceView]
    sources: list[SourceView]
    flags: list[tuple[CheckResult, str]]  # every failure and warning, with the anchor of its place


def _flagged(results) -> list[CheckResult]:
    flagged = [r for r in results if r.outcome != Outcome.PASSED]
    return sorted(flagged, key=lambda r: -_SEVERITY[r.outcome])


def _items(value) -> list:
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _text(value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


_TAG = re.compile(r"(<[^>]*>)")


def source_outcomes(checks: ReviewChecks, cited: set[str]) -> dict[str, Outcome]:
    """How each cited source id should look where it is cited: failed when it does not exist,
    cannot be read or is stale; warning when undated."""
    outcomes: dict[str, Outcome] = {}
    for result in checks.results:
        if result.check in (SOURCE_EXISTS, SOURCE_FRESH) and result.source_id in cited:
            current = outcomes.get(result.source_id)
            if _SEVERITY[result.outcome] > _SEVERITY[current]:
                outcomes[result.source_id] = result.outcome
    return outcomes


def annotate_html(safe_html: str, *, flags: list[CheckResult], sources: dict[str, Outcome]) -> SafeString:
    """Mark flagged sentences and link citations, in the text nodes of sanitised HTML."""
    marks = [r for r in flags if r.claim and r.check in (CLAIM_CITED, QUOTE_FOUND)]
    out = []
    in_link = False
    for piece in _TAG.split(safe_html):
        if piece.startswith("<"):
            lowered = piece.lower()
            if lowered.startswith("<a ") or lowered == "<a>":
                in_link = True
            elif lowered.startswith("</a"):
                in_link = False
            out.append(piece)
            continue
        if not in_link:
            piece = _mark_claims(piece, marks)
            piece = _link_citations(piece, sources)
        out.append(piece)
    return mark_safe("".join(out))


def _mark_claims(text: str, marks: list[CheckResult]) -> str:
    for result in marks:
        needle = html.escape(result.claim, quote=False)
        if needle and needle in text:
            title = html.escape(f"{result.label}: {result.message}")
            text = text.replace(
                needle, f'<mark class="rd-flag rd-{result.outcome}" title="{title}">{needle}</mark>', 1
            )
    return text


def _link_citations(text: str, sources: dict[str, Outcome]) -> str:
    def link(match: re.Match) -> str:
        inner = re.sub(
            r"S\d+",
            lambda m: (
                f'<a class="rd-cite rd-{sources.get(m.group(), "unknown")}" href="#source-{m.group()}">{m.group()}</a>'
            ),
            match.group(1),
        )
        return f"[{inner}]"

    return CITATION_MARKER.sub(link, text)


def comment_fields(report: dict | None) -> dict[str, str]:
    """The decision form's per-section comment fields: field name → section heading."""
    report = report if isinstance(report, dict) else {}
    fields = {"section_comment_summary": "Executive summary"}
    for i, section in enumerate(_items(report.get("sections"))):
        fields[f"section_comment_{i}"] = section_heading(section, i + 1)
    return fields


def report_view(*, report: dict | None, checks: ReviewChecks, sources: list[SourceRef], cited: set[str]) -> ReportView:
    report = report if isinstance(report, dict) else {}
    outcomes = source_outcomes(checks, cited)
    parts: list[PartView] = []

    def add(anchor, heading, markdown_text, results, comment_field=""):
        flags = _flagged(results)
        body = annotate_html(render_html(markdown_text), flags=flags, sources=outcomes) if markdown_text.strip() else mark_safe("")
        parts.append(PartView(anchor, heading, body, flags, sum(1 for r in results if r.outcome == Outcome.PASSED), comment_field))

    add("summary", "Executive summary", _text(report.get("executive_summary")), checks.at("summary"), "section_comment_summary")
    for i, section in enumerate(_items(report.get("sections"))):
        markdown_text = section_body(section)
        if isinstance(section, dict) and _items(section.get("citations")):
            markdown_text += "\n\n*Sources: " + ", ".join(_text(c) for c in _items(section.get("citations"))) + "*"
        add(f"section-{i}", section_heading(section, i + 1), markdown_text, checks.at(PART_SECTION, i), f"section_comment_{i}")
    for part, heading in (
        (PART_RECOMMENDATIONS, "Recommendations"),
        (PART_OPEN_QUESTIONS, "Open questions"),
        (PART_SOURCE_NOTES, "Source notes"),
        (PART_WEB, "Web sources"),
    ):
        items = _items(report.get(part))
        if not items:
            continue
        lines = []
        for item in items:
            if isinstance(item, dict) and part == PART_WEB:
                item = f"{_text(item.get('title')) or _text(item.get('url'))} <{_text(item.get('url'))}>: “{_text(item.get('quote'))}”"
            elif isinstance(item, dict):
                item = f"**{_text(item.get('source_id'))}**: {_text(item.get('note'))}"
            lines.append("- " + " ".join(_text(item).split()))
        results = [r for r in checks.results if r.part == part]
        add(part.replace("_", "-"), heading, "\n".join(lines), results)

    evidence = []
    for i, row in enumerate(_items(report.get("evidence"))):
        if not isinstance(row, dict):
            continue
        evidence.append(EvidenceView(
            anchor=f"evidence-{i}", number=i + 1, claim=_text(row.get("claim")), source_id=_text(row.get("source_id")),
            quote=_text(row.get("quote")), results=checks.at(PART_EVIDENCE, i),
        ))

    return ReportView(
        title=" ".join(_text(report.get("title")).split()) or "Untitled report",
        top_flags=_flagged(checks.at(PART_REPORT)),
        parts=parts,
        evidence=evidence,
        sources=[_source_view(ref, checks, cited) for ref in sources],
        flags=[(r, anchor_for(r)) for r in checks.flagged],
    )


def anchor_for(result: CheckResult) -> str:
    """The id of the place on the page a result concerns."""
    if result.part == PART_SECTION:
        return f"section-{result.index}"
    if result.part == PART_EVIDENCE:
        return f"evidence-{result.index}"
    if result.part == PART_SOURCES:
        return f"source-{result.source_id}"
    if result.part == PART_REPORT:
        return "report-top"
    return result.part.replace("_", "-")


def _source_view(ref: SourceRef, checks: ReviewChecks, cited: set[str]) -> SourceView:
    results = [r for r in checks.for_source(ref.sid) if r.part == PART_SOURCES or r.outcome != Outcome.PASSED]
    shown = ref.text[:SOURCE_TEXT_MAX_CHARS]
    spans = sorted(
        (r.span[0], min(r.span[1], len(shown)), r.section)
        for r in checks.results
        if r.check == QUOTE_FOUND and r.source_id == ref.sid and r.span and r.span[0] < len(shown)
    )
    return SourceView(
        ref=ref, cited=ref.sid in cited, results=results, pieces=_pieces(shown, spans),
        truncated_chars=max(0, len(ref.text) - SOURCE_TEXT_MAX_CHARS),
    )


def _pieces(text: str, spans: list[tuple[int, int, str]]) -> list[TextPiece]:
    """`text` cut into plain and quoted stretches; overlapping quotes merge into one."""
    merged: list[list] = []
    for start, end, where in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            if where not in merged[-1][2]:
                merged[-1][2].append(where)
        else:
            merged.append([start, end, [where]])
    pieces, cursor = [], 0
    for start, end, where in merged:
        if start > cursor:
            pieces.append(TextPiece(text[cursor:start]))
        pieces.append(TextPiece(text[start:end], quoted=True, where="Quoted in " + ", ".join(where)))
        cursor = end
    if cursor < len(text):
        pieces.append(TextPiece(text[cursor:]))
    return pieces
