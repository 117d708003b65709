"""What a reviewer's notes ask of the local engine's next version.

The notes arrive as jobs.worker.prompt carries them: the reviewer's comment, one paragraph per
section comment ("On the section “Key players”: …"), then the automatic checks that failed on
the version reviewed. Read here into what the engine can act on: the notes that belong to each
section (to pull the facts they name into it), the notes that belong to none, and the sources
the reviewer rejects ("drop S3", "S3 is stale"). The failed checks are the reviewer's reading
material, not instructions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SECTION_NOTE = re.compile(r"^On the section “([^”]*)”:\s*(.*)$", re.DOTALL)
_CHECKS_HEADER = re.compile(r"^Automatic checks that failed on version", re.IGNORECASE)
_SID_LIST = r"S\d+(?:\s*(?:,|and|&|or)\s*S\d+)*"
_DROP_VERB = re.compile(
    r"\b(?:drop|remove|exclude|omit|ignore|discard|delete|leave out|take out|cut|"
    r"stop (?:citing|using)|(?:do not|don't|never) (?:use|cite|rely on)|without)\s+"
    rf"(?:the\s+)?(?:sources?\s+)?({_SID_LIST})",
    re.IGNORECASE,
)
_DROP_STATE = re.compile(
    rf"\b({_SID_LIST})\s+(?:is|was|are|were|looks|seems|feels)\s+(?:(?:too|very|rather|quite|now)\s+)?"
    r"(stale|outdated|out[- ]of[- ]date|old|obsolete|wrong|unreliable|irrelevant|off[- ]topic|"
    r"not relevant|untrustworthy|dated)\b",
    re.IGNORECASE,
)
_DROP_GO = re.compile(rf"\b({_SID_LIST})\s+(?:should|must|has to|needs to|can)\s+(?:go|be (?:dropped|removed))\b", re.IGNORECASE)
_SID = re.compile(r"S\d+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass
class RevisionNotes:
    text: str = ""
    general: list[str] = field(default_factory=list)
    by_section: dict[int, list[str]] = field(default_factory=dict)
    # Source id → why it is left out, as the reviewer or the check put it.
    dropped: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.text)


def read_notes(text: str, *, headings: tuple[str, ...], sids: set[str]) -> RevisionNotes:
    """The notes in `text`, tied to `headings` by index; only sources in `sids` can be dropped."""
    notes = RevisionNotes(text=(text or "").strip())
    if not notes:
        return notes
    keys = [_key(h) for h in headings]
    in_checks = False
    for paragraph in re.split(r"\n\s*\n", notes.text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if _CHECKS_HEADER.match(paragraph):
            in_checks = True
        if in_checks:
            # The reviewer saw these and decided what to ask; a failed check alone (a stale
            # source cited as a baseline, say) is not a request to drop anything.
            continue
        for sid, reason in _drops(paragraph):
            if sid in sids:
                notes.dropped.setdefault(sid, reason)
        match = _SECTION_NOTE.match(paragraph)
        if match and _key(match.group(1)) in keys:
            notes.by_section.setdefault(keys.index(_key(match.group(1))), []).append(match.group(2).strip())
            continue
        for sentence in _SENTENCE.split(paragraph):
            if any(True for _ in _drops(sentence)):
                continue  # said what to leave out, not what to look for
            section = _named_section(sentence, keys)
            if section is None:
                notes.general.append(sentence)
            else:
                notes.by_section.setdefault(section, []).append(sentence)
    return notes


def _drops(text: str):
    for match in _DROP_VERB.finditer(text):
        for sid in _SID.findall(match.group(1)):
            yield sid, f"the reviewer asked: “{match.group(0).strip()}”"
    for pattern in (_DROP_STATE, _DROP_GO):
        for match in pattern.finditer(text):
            for sid in _SID.findall(match.group(1)):
                yield sid, f"the reviewer wrote: “{match.group(0).strip()}”"


def _key(heading: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", heading or "").casefold().split())


def _named_section(sentence: str, keys: list[str]) -> int | None:
    """The section a general note names ("put the plants under Key players"), if exactly one."""
    text = f" {_key(sentence)} "
    named = [i for i, key in enumerate(keys) if key and f" {key} " in text]
    return named[0] if len(named) == 1 else None
