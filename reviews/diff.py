"""Section-by-section differences between two versions of a report.

Parts are matched by heading (numbering, case and spacing ignored): a heading only in the new
version is an added section, only in the old one a removed section. Within a changed part the
text is compared sentence by sentence, and a sentence that was reworded is compared word by
word. The result is plain data (text and a kind for each piece): templates escape all of it,
so nothing the model wrote is ever rendered as HTML.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from .checks import as_items, as_text, heading_key, section_body, section_heading, split_sentences

EQUAL = "equal"
INSERT = "insert"
DELETE = "delete"
CHANGE = "change"  # a sentence reworded: its tokens mix equal, insert and delete

ADDED = "added"
REMOVED = "removed"
CHANGED = "changed"
UNCHANGED = "unchanged"

# Two sentences at least this alike are one sentence reworded; below it, one replaced another.
REWORDED_RATIO = 0.5


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


@dataclass(frozen=True)
class DiffLine:
    kind: str
    tokens: tuple[Token, ...]

    @property
    def text(self) -> str:
        return "".join(t.text for t in self.tokens)


@dataclass(frozen=True)
class SectionDiff:
    heading: str
    status: str
    lines: tuple[DiffLine, ...]


@dataclass(frozen=True)
class ReportDiff:
    old_version: int | None
    new_version: int | None
    sections: tuple[SectionDiff, ...]

    @property
    def counts(self) -> dict[str, int]:
        return {status: sum(1 for s in self.sections if s.status == status) for status in (ADDED, REMOVED, CHANGED, UNCHANGED)}

    @property
    def has_changes(self) -> bool:
        return any(s.status != UNCHANGED for s in self.sections)


def report_parts(report: dict) -> list[tuple[str, list[str]]]:
    """(heading, units) for every part of a report, in reading order. A unit is a sentence of
    prose, or one row of a list (evidence, recommendations, open questions, source notes)."""
    if not isinstance(report, dict):
        report = {}
    parts = [("Title", units(as_text(report.get("title"))))]
    parts.append(("Executive summary", units(as_text(report.get("executive_summary")))))
    for number, section in enumerate(as_items(report.get("sections")), start=1):
        heading = section_heading(section, number)
        body = units(section_body(section))
        if isinstance(section, dict) and as_items(section.get("citations")):
            body.append("Sources: " + ", ".join(as_text(c) for c in as_items(section.get("citations"))))
        parts.append((heading, body))
    evidence = []
    for row in as_items(report.get("evidence")):
        if isinstance(row, dict):
            evidence.append(f"{as_text(row.get('source_id'))}: {as_text(row.get('claim'))} — “{as_text(row.get('quote'))}”")
        else:
            evidence.append(as_text(row))
    parts.append(("Evidence", evidence))
    parts.append(("Recommendations", [" ".join(as_text(i).split()) for i in as_items(report.get("recommendations"))]))
    parts.append(("Open questions", [" ".join(as_text(i).split()) for i in as_items(report.get("open_questions"))]))
    notes = []
    for note in as_items(report.get("source_notes")):
        if isinstance(note, dict):
            notes.append(f"{as_text(note.get('source_id'))}: {as_text(note.get('note'))}")
        else:
            notes.append(as_text(note))
    parts.append(("Source notes", notes))
    return [(heading, [u for u in body if u.strip()]) for heading, body in parts]


def units(text: str) -> list[str]:
    """Sentences, line by line (a list item or a quoted line stays its own unit)."""
    return [sentence for line in text.splitlines() for sentence in split_sentences(" ".join(line.split()))]


_SPLIT_WORDS = re.compile(r"(\s+)")


def _word_tokens(old: str, new: str) -> tuple[Token, ...]:
    a, b = _SPLIT_WORDS.split(old), _SPLIT_WORDS.split(new)
    tokens: list[Token] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            tokens.append(Token(EQUAL, "".join(a[i1:i2])))
            continue
        if i2 > i1:
            tokens.append(Token(DELETE, "".join(a[i1:i2])))
        if j2 > j1:
            tokens.append(Token(INSERT, "".join(b[j1:j2])))
    return tuple(t for t in tokens if t.text)


def diff_units(old: list[str], new: list[str]) -> tuple[DiffLine, ...]:
    lines: list[DiffLine] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if op == "equal":
            lines += [DiffLine(EQUAL, (Token(EQUAL, u),)) for u in old[i1:i2]]
            continue
        removed, added = old[i1:i2], new[j1:j2]
        for k in range(max(len(removed), len(added))):
            before = removed[k] if k < len(removed) else None
            after = added[k] if k < len(added) else None
            if before is not None and after is not None:
                if difflib.SequenceMatcher(None, before, after, autojunk=False).ratio() >= REWORDED_RATIO:
                    lines.append(DiffLine(CHANGE, _word_tokens(before, after)))
                    continue
            if before is not None:
                lines.append(DiffLine(DELETE, (Token(DELETE, before),)))
            if after is not None:
                lines.append(DiffLine(INSERT, (Token(INSERT, after),)))
    return tuple(lines)


def _keys(parts: list[tuple[str, list[str]]]) -> list[str]:
    seen: dict[str, int] = {}
    keys = []
    for heading, _ in parts:
        key = heading_key(heading)
        seen[key] = seen.get(key, 0) + 1
        keys.append(f"{key}#{seen[key]}")
    return keys


def report_diff(old: dict, new: dict, *, old_version: int | None = None, new_version: int | None = None) -> ReportDiff:
    """What changed from `old` to `new`, part by part, in the new version's order."""
    old_parts, new_parts = report_parts(old), report_parts(new)
    sections: list[SectionDiff] = []
    matcher = difflib.SequenceMatcher(None, _keys(old_parts), _keys(new_parts), autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            for (_, before), (heading, after) in zip(old_parts[i1:i2], new_parts[j1:j2]):
                if not before and not after:
                    continue
                lines = diff_units(before, after)
                status = UNCHANGED if all(line.kind == EQUAL for line in lines) else CHANGED
                sections.append(SectionDiff(heading, status, lines))
            continue
        for heading, before in old_parts[i1:i2]:
            sections.append(SectionDiff(heading, REMOVED, tuple(DiffLine(DELETE, (Token(DELETE, u),)) for u in before)))
        for heading, after in new_parts[j1:j2]:
            sections.append(SectionDiff(heading, ADDED, tuple(DiffLine(INSERT, (Token(INSERT, u),)) for u in after)))
    return ReportDiff(old_version, new_version, tuple(sections))
