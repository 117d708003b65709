"""The local provider's report writer: an offline extractive report built only from the sources.

No model, no network, no database, and the same request always gives the same report. Each
source is cut into prose passages (local_passages: markup, tables, dates and page furniture
left out; every passage an exact slice of the source, so every quote passes the verbatim
check). Each section is then searched on its own — its heading, the words a heading of that
kind implies, and the topic — with BM25 over light word stems; a passage is used once in the
whole report, and sections prefer passages from more than one source. What the draft says
about its sources (counts, mentions, which source it leans on) is computed from the draft
itself, so it is true by construction. A revision acts on the reviewer's notes
(local_revision): facts a note names are pulled into its section, rejected sources are left
out, and the new version says what it changed. The report says plainly that it is an
extractive draft, in paragraphs marked with ENGINE_NOTE.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from jobs.providers.base import ReportRequest, SourceDoc
from jobs.providers.local_passages import MAX_PASSAGE_CHARS, MAX_PASSAGES_PER_SOURCE, passage_spans
from jobs.providers.local_revision import RevisionNotes, read_notes
from jobs.rendering import CITATION_MARKER, ENGINE_NOTE

__all__ = [
    "DEFAULT_SECTIONS", "MAX_PASSAGE_CHARS", "REVISION_SECTION",
    "build_extractive_report", "estimate_tokens",
]  # fmt: skip

DEFAULT_SECTIONS = ("Background", "Findings", "Risks and limitations")
REVISION_SECTION = "Revision notes addressed"

# BM25 parameters (the usual defaults) and the weight of each part of a section's query.
_K1 = 1.5
_B = 0.75
_HEADING_WEIGHT = 1.0
_HINT_WEIGHT = 0.5
_TOPIC_WEIGHT = 1.0
_AUDIENCE_WEIGHT = 0.2
_NOTE_WEIGHT = 2.0
# How much topic relevance adds to a passage's fit with a section heading.
_TOPIC_SHARE = 0.4
# A passage fits a section only when its score reaches this share of the section's best.
_MIN_FIT = 0.2
# How much a better fit with another section counts against a passage.
_ELSEWHERE_PENALTY = 0.5
# The weight of a heading word that the topic or another heading also has.
_SHARED_TERM_WEIGHT = 0.3
# A document opens with what it is about: its first passages on the topic suit an overview.
_LEAD_PASSAGES = 3
_LEAD_BONUS = 1.0
# Passages sharing this much of their vocabulary say the same thing: keep one.
_REDUNDANT_OVERLAP = 0.7
# While other sources have fitting passages, a section takes at most this many from one.
_PER_SOURCE_IN_SECTION = 2


@dataclass(frozen=True)
class _Budget:
    per_section: int
    evidence: int
    summary: int


_FIRST_DRAFT = _Budget(per_section=3, evidence=8, summary=2)
_REVISION = _Budget(per_section=4, evidence=10, summary=2)

_STOP_WORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be been before being
    below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself
    just me more most my no nor not now of off on once only or other our ours out over own
    same she should so some such than that the their theirs them then there these they this
    those through to too under until up very was we were what when where which while who
    whom why will with would you your yours report reports versus vs via per
    """.split()
)
# Words of a reviewer's note that ask for something rather than name it.
_NOTE_WORDS = frozenset(
    """
    add adds added name names named mention mentions mentioned include includes put move
    section sections please need needs want fact facts detail details say says more less
    here there section's list show cite quote missing instead better should must also
    """.split()
)

# Words that a kind of heading implies, so "Risks" pulls in passages about delays and swings.
_HEADING_HINTS_RAW = {
    "overview": "market capacity size total overall reached main general describe",
    "summary": "main overall key describe",
    "background": "history context origin overview introduced began since traditionally",
    "introduction": "purpose describe overview intended",
    "finding": "found show shows result data study evidence increase decrease percent",
    "player": "company companies firm firms operator operators vendor vendors largest "
    "leading host hosts plant plants maker makers manufacturer country countries",
    "competitor": "competitor rival alternative vendor compare",
    "vendor": "vendor supplier provider company product pricing",
    "trend": "trend growing grow grew rising rise increase increasingly expected shift "
    "future after until dominate improve",
    "outlook": "future expect expected forecast projected trend growth",
    "risk": "risk risks challenge concern threat danger uncertainty uncertain barrier problem "
    "delay delays swing swings volatile harder slipped weak",
    "limitation": "limited limit constraint gap lack although however only cannot loses",
    "recommendation": "should recommend need must consider propose",
    "cost": "cost price expensive cheap spending budget investment margin",
    "market": "market demand supply share revenue growth customer capacity",
    "regulat": "regulation law directive target targets required require must mandatory "
    "compliance rule rules policy",
    "legal": "law legal regulation court contract license licence",
    "work": "works process method route routes step steps uses using stage format algorithm "
    "mechanism determines passes reads finds searches runs level",
    "command": "cli option options flag flags terminal shell console",
    "api": "api function functions parameter interface library call",
    "bug": "bug bugs fix fixed fixes crash corruption leak issue error",
    "build": "build builds building make cmake meson compile compiler",
    "requirement": "need needs require requires required depend dependency dependencies "
    "prerequisite newer version support",
    "switch": "select selection selected choose change set use global local shell",
    "cross": "cross compile compiling target host platform",
    "adoption": "install installation build building requires require support available "
    "package packages using",
    "install": "install installation build make package configure",
    "performance": "speed fast faster slower ratio benchmark throughput mb compression "
    "decompression level",
    "change": "new added fixed improved changed removed deprecated",
    "fix": "fix fixed bug bugs crash issue corruption",
    "feature": "new support supports added option feature",
    "financial": "revenue profit loss margin funding debt cost price",
    "criteria": "criteria requirement capability pricing support maturity",
    "comparison": "compared faster better than versus ratio",
    "detail": "specifically describe example",
    "next": "next should plan will step",
}
# Headings of these kinds take topic-relevant passages even without a heading match.
_GENERAL_HEADINGS = frozenset(
    "overview summary background introduction context details detail findings finding".split()
)

_WORD = re.compile(r"\w+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_LEADING_MARKER = re.compile(r"^(?:#{1,6}|[-*•+]|\d{1,3}[.)])\s+")
_MARKDOWN_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|`)")
# Where a sentence ends inside a passage, as the review checks split sentences.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+[^a-z\s])")
_SUFFIXES = (
    "izations", "ization", "ations", "ation", "ments", "ment", "ings", "ing", "ies", "ied",
    "ed", "s",
)  # fmt: skip


def estimate_tokens(text: str) -> int:
    """About four characters a token: good enough for usage figures from the local engine."""
    return (len(text) + 3) // 4 if text else 0


def build_extractive_report(request: ReportRequest) -> dict:
    """The report for `request`, as a dict that validates against REPORT_SCHEMA."""
    sources = tuple(request.sources)
    headings = tuple(h for h in request.required_sections if h and h.strip()) or DEFAULT_SECTIONS
    topic = " ".join((request.topic or "").split())
    notes = read_notes(request.revision_notes, headings=headings, sids={s.sid for s in sources})
    budget = _REVISION if notes else _FIRST_DRAFT

    passages = [
        passage
        for index, source in enumerate(sources)
        if source.sid not in notes.dropped
        for passage in _passages(index, source)
    ]
    index = _Index(passages)
    topic_query = _query([(topic, _TOPIC_WEIGHT), (request.audience, _AUDIENCE_WEIGHT)])
    relevance = index.scores(topic_query)
    plan = _plan_sections(
        headings, passages, index, relevance, set(_query([(topic, 1.0)])), notes, budget.per_section
    )
    used_keys = {p.key for chosen in plan.sections for p in chosen}
    summary = [
        p for p in _diverse(passages, relevance, count=budget.summary + len(used_keys))
        if p.key not in used_keys
    ][: budget.summary]
    evidence = _evidence(plan.sections, summary, budget.evidence)

    sections = []
    folded = [heading.strip().casefold() for heading in headings]
    for number, (heading, chosen) in enumerate(zip(headings, plan.sections)):
        if notes and folded[number] == REVISION_SECTION.casefold():
            sections.append(_revision_section(heading, notes, plan, headings, sources))
        else:
            sections.append(_section(heading, chosen, sources, passages))
    if notes and REVISION_SECTION.casefold() not in folded:
        sections.append(_revision_section(REVISION_SECTION, notes, plan, headings, sources))

    quoted = {p.key: p for group in [*plan.sections, summary, evidence] for p in group}
    used = Counter(p.source_index for p in quoted.values())
    return {
        "title": f"{topic or 'Research report'}: offline extractive draft",
        "executive_summary": _summary(sources, passages, summary, plan, relevance, notes),
        "sections": sections,
        "evidence": [{"claim": _claim(p), "source_id": p.sid, "quote": p.text} for p in evidence],
        "recommendations": _recommendations(sources, passages, used, request.audience),
        "open_questions": _open_questions(sources, passages, topic, notes),
        "source_notes": [
            _source_note(i, source, used[i], passages, relevance, plan, notes)
            for i, source in enumerate(sources)
        ],
        "web_citations": [],  # the local engine does not search the web
    }


# --- passages ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Passage:
    key: int  # position in the whole request: the deterministic tie-break everywhere
    source_index: int
    sid: str
    text: str  # exactly source.text[start:end]
    terms: Counter
    length: int


def _passages(source_index: int, source: SourceDoc) -> list[_Passage]:
    text = source.text or ""
    passages = []
    for position, span in enumerate(passage_spans(text)):
        passage_text = text[span.start : span.end]
        tokens = _tokens(passage_text)
        if not tokens:
            continue
        passages.append(
            _Passage(
                key=source_index * MAX_PASSAGES_PER_SOURCE + position,
                source_index=source_index,
                sid=source.sid,
                text=passage_text,
                terms=Counter(tokens),
                length=len(tokens),
            )
        )
    return passages


# --- terms and ranking ------------------------------------------------------------------


def _tokens(text: str) -> list[str]:
    """Content terms: stems of words (minus stop words), character bigrams for CJK."""
    terms = []
    for word in _WORD.findall(text.casefold()):
        if _CJK.search(word):
            # No spaces between CJK words: overlapping character pairs stand in for words.
            terms.extend(word[i : i + 2] for i in range(max(len(word) - 1, 1)))
        elif len(word) > 1 and word not in _STOP_WORDS and not word.startswith("_"):
            terms.append(_stem(word))
    return terms


def _stem(word: str) -> str:
    """A light suffix stripper: enough to meet "recycling", "recycled" and "recycles"."""
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix in ("ies", "ied"):
                word = word[:-3] + "y"
            elif suffix == "s":
                if word.endswith(("ss", "us", "is")):
                    return word
                word = word[:-1]
            else:
                word = word[: -len(suffix)]
            break
    if len(word) >= 4 and word.endswith("e"):
        word = word[:-1]
    return word


def _query(parts: list[tuple[str, float]]) -> dict[str, float]:
    query: dict[str, float] = {}
    for text, weight in parts:
        for term in _tokens(text or ""):
            query[term] = query.get(term, 0.0) + weight
    return query


def _merge(base: dict[str, float], extra: dict[str, float], weight: float) -> dict[str, float]:
    merged = dict(base)
    for term, value in extra.items():
        merged[term] = merged.get(term, 0.0) + value * weight
    return merged


class _Index:
    """BM25 over the request's passages."""

    def __init__(self, passages: list[_Passage]):
        self.passages = passages
        self.df: Counter = Counter()
        for passage in passages:
            self.df.update(passage.terms.keys())
        total = sum(p.length for p in passages)
        self.avg_length = total / len(passages) if passages else 1.0

    def idf(self, term: str) -> float:
        n, df = len(self.passages), self.df.get(term, 0)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def scores(self, query: dict[str, float]) -> dict[int, float]:
        """Passage key → BM25 score, for the passages that match at all."""
        weights = {t: w * self.idf(t) for t, w in query.items() if self.df.get(t)}
        scores: dict[int, float] = {}
        if not weights:
            return scores
        for passage in self.passages:
            score = 0.0
            norm = _K1 * (1 - _B + _B * passage.length / self.avg_length)
            for term, weight in weights.items():
                tf = passage.terms.get(term)
                if tf:
                    score += weight * tf * (_K1 + 1) / (tf + norm)
            if score > 0:
                scores[passage.key] = score
        return scores


def _diverse(passages: list[_Passage], scores: dict[int, float], *, count: int) -> list[_Passage]:
    """The best-scoring passages, spread across sources and without near-duplicates."""
    candidates = sorted(
        (p for p in passages if p.key in scores), key=lambda p: (-scores[p.key], p.key)
    )[: max(count * 20, 50)]
    chosen: list[_Passage] = []
    per_source: Counter = Counter()
    while candidates and len(chosen) < count:
        best = max(
            candidates,
            key=lambda p: (scores[p.key] / (1 + 0.5 * per_source[p.source_index]), -p.key),
        )
        candidates.remove(best)
        if any(_overlap(best, other) >= _REDUNDANT_OVERLAP for other in chosen):
            continue
        chosen.append(best)
        per_source[best.source_index] += 1
    return chosen


def _overlap(a: _Passage, b: _Passage) -> float:
    terms_a, terms_b = set(a.terms), set(b.terms)
    if not terms_a or not terms_b:
        return 0.0
    return len(terms_a & terms_b) / len(terms_a | terms_b)


_HEADING_HINTS = {
    _stem(word): _query([(hints, 1.0)]) for word, hints in _HEADING_HINTS_RAW.items()
}


def _hint_for(term: str) -> dict[str, float]:
    for prefix, hints in _HEADING_HINTS.items():
        if term.startswith(prefix):
            return hints
    return {}


def _heading_query(heading: str) -> dict[str, float]:
    query = _query([(heading, _HEADING_WEIGHT)])
    for term in list(query):
        query = _merge(query, _hint_for(term), _HINT_WEIGHT)
    return query


def _is_general(heading: str) -> bool:
    return any(word in _GENERAL_HEADINGS for word in _WORD.findall(heading.casefold()))


def _note_query(texts: list[str]) -> dict[str, float]:
    """A note as a query: the words that name things, names and figures counted twice."""
    query: dict[str, float] = {}
    for text in texts:
        for word in _WORD.findall(text):
            if word.casefold() in _NOTE_WORDS:
                continue
            weight = 2.0 if word[:1].isupper() or word[:1].isdigit() else 1.0
            for term in _tokens(word):
                query[term] = query.get(term, 0.0) + weight
    return query


@dataclass
class _Plan:
    sections: list[list[_Passage]]
    # Section index → the passages a note on it pulled in.
    pulled: dict[int, list[_Passage]]
    # Section indexes whose note matched no passage.
    unanswered: list[int]
    # Where the passages matching the notes tied to no section went: (section, passage).
    placed_for_notes: list[tuple[int, _Passage]]


def _plan_sections(
    headings: tuple[str, ...],
    passages: list[_Passage],
    index: _Index,
    relevance: dict[int, float],
    topic_terms: set[str],
    notes: RevisionNotes,
    per_section: int,
) -> _Plan:
    """Passages for each heading, each passage in one section only.

    Passages named by a reviewer's note go where the note puts them first. Then the sections
    take turns, each its best remaining passage (see _fits), a section taking at most two
    passages from one source while others have fitting ones.
    """
    plan = _Plan(sections=[[] for _ in headings], pulled={}, unanswered=[], placed_for_notes=[])
    if not passages:
        return plan
    placed: set[int] = set()
    for section, texts in sorted(notes.by_section.items()):
        scores = index.scores(_note_query(texts))
        best = max(scores.values(), default=0.0)
        pulled = [p for p in _diverse(passages, scores, count=2) if p.key not in placed and scores[p.key] >= 0.5 * best]
        if pulled:
            plan.pulled[section] = pulled
            plan.sections[section].extend(pulled)
            placed.update(p.key for p in pulled)
        else:
            plan.unanswered.append(section)

    section_scores = [
        index.scores(_section_query(section, headings, topic_terms, notes)) for section in range(len(headings))
    ]
    if notes.general:
        scores = index.scores(_note_query(notes.general))
        best = max(scores.values(), default=0.0)
        for passage in _diverse(passages, scores, count=2):
            if passage.key in placed or scores[passage.key] < 0.5 * best:
                continue
            # The section whose heading the passage fits best (the first on a tie or no fit).
            section = max(range(len(headings)), key=lambda s: (section_scores[s].get(passage.key, 0.0), -s))
            plan.sections[section].append(passage)
            plan.placed_for_notes.append((section, passage))
            placed.add(passage.key)

    _take_turns(plan, _fits(headings, passages, section_scores, relevance), passages, placed, per_section)
    for chosen in plan.sections:
        chosen.sort(key=lambda p: p.key)
    return plan


def _section_query(section: int, headings: tuple[str, ...], topic_terms: set[str], notes: RevisionNotes) -> dict[str, float]:
    """A section's query: its heading, the words a heading of that kind implies, its notes.

    A heading's words that another heading shares, or that the topic has when the heading has
    words of its own, say less about what belongs here than the words only it has
    ("Dictionary" in "Dictionary compression" under a topic about compression)."""
    heading_terms = [set(_query([(heading, 1.0)])) for heading in headings]
    shared = set().union(*(terms for other, terms in enumerate(heading_terms) if other != section))
    if heading_terms[section] - shared - topic_terms:
        shared |= topic_terms
    query = {
        term: weight * (_SHARED_TERM_WEIGHT if term in shared else 1.0)
        for term, weight in _heading_query(headings[section]).items()
    }
    if section in notes.by_section:
        query = _merge(query, _note_query(notes.by_section[section]), _NOTE_WEIGHT)
    return query


def _fits(headings, passages, section_scores, relevance) -> list[dict[int, float]]:
    """Per section, passage key → how well the passage fits it.

    The heading match (normalised to the section's best) counts most; relevance to the topic
    ranks the passages that match a heading and cannot stand in for a match, except under an
    overview or background, which takes topic-relevant passages and favours those a source
    opens with. Sources with nothing on the topic are left out (unless none has anything).
    """
    on_topic = {p.source_index for p in passages if p.key in relevance} or {p.source_index for p in passages}
    top_relevance = max(relevance.values(), default=0.0)
    fits = []
    for heading, scores in zip(headings, section_scores):
        top = max(scores.values(), default=0.0)
        general = _is_general(heading)
        fit: dict[int, float] = {}
        for passage in passages:
            head = scores.get(passage.key, 0.0) / top if top else 0.0
            topic = relevance.get(passage.key, 0.0) / top_relevance if top_relevance else 0.0
            if passage.source_index not in on_topic:
                continue
            if general and (head >= _MIN_FIT or topic >= _MIN_FIT):
                opening = passage.key % MAX_PASSAGES_PER_SOURCE < _LEAD_PASSAGES
                fit[passage.key] = head + _TOPIC_SHARE * topic + (_LEAD_BONUS * topic if opening else 0.0)
            elif head >= _MIN_FIT:
                fit[passage.key] = head * (1 + _TOPIC_SHARE * topic)
        fits.append(fit)
    return fits


def _take_turns(plan: _Plan, fits, passages, placed: set[int], per_section: int) -> None:
    """Round by round, each section takes its best remaining passage, so the first heading
    cannot take every passage that would fit the others too; a section prefers the passages
    that fit it better than any other section ("Costs" gets the passage about costs)."""
    by_key = {p.key: p for p in passages}

    def preference(section: int, key: int) -> float:
        elsewhere = max((fit.get(key, 0.0) for other, fit in enumerate(fits) if other != section), default=0.0)
        return fits[section][key] - _ELSEWHERE_PENALTY * max(0.0, elsewhere - fits[section][key])

    ranked = [sorted(fit, key=lambda key, s=section: (-preference(s, key), key)) for section, fit in enumerate(fits)]
    for source_cap in (_PER_SOURCE_IN_SECTION, per_section):
        progress = True
        while progress:
            progress = False
            for section, candidates in enumerate(ranked):
                chosen = plan.sections[section]
                if len(chosen) >= per_section:
                    continue
                for key in candidates:
                    passage = by_key[key]
                    from_source = sum(1 for p in chosen if p.source_index == passage.source_index)
                    if key in placed or from_source >= source_cap:
                        continue
                    if any(_overlap(passage, other) >= _REDUNDANT_OVERLAP for other in chosen):
                        continue
                    chosen.append(passage)
                    placed.add(key)
                    progress = True
                    break


def _evidence(sections: list[list[_Passage]], summary: list[_Passage], count: int) -> list[_Passage]:
    """The quotes behind the draft: each section's passages in turn, so every section is
    represented before any has a second row; the summary's passages when sections are thin."""
    rows: list[_Passage] = []
    depth = 0
    while len(rows) < count and any(depth < len(chosen) for chosen in sections):
        for chosen in sections:
            if depth < len(chosen) and len(rows) < count:
                rows.append(chosen[depth])
        depth += 1
    for passage in summary:
        if len(rows) < max(3, count // 2) and passage not in rows:
            rows.append(passage)
    return rows


# --- writing ----------------------------------------------------------------------------


def _display(text: str) -> str:
    """A passage as it reads in prose: whitespace collapsed, list markers and link syntax
    dropped, and any citation-like "[S9]" in the source itself defused so it never reads as
    our citation."""
    text = _LEADING_MARKER.sub("", " ".join(text.split()))
    text = _EMPHASIS.sub("", _MARKDOWN_LINK.sub(r"\1", text))
    return CITATION_MARKER.sub(lambda m: f"({m.group(1)})", text)


def _claim(passage: _Passage, words: int = 24) -> str:
    parts = _display(passage.text).split()
    claim = " ".join(parts[:words])
    return claim + " …" if len(parts) > words else claim


def _cite(passages: list[_Passage]) -> str:
    """Passages as prose, every sentence followed by its citation (a passage may hold two
    sentences, and each is a claim a reviewer checks on its own)."""
    return " ".join(
        _SENTENCE_END.sub(lambda m, sid=p.sid: f"{m.group()} [{sid}]", _display(p.text)) + f" [{p.sid}]"
        for p in passages
    )


def _cited_ids(passages: list[_Passage]) -> list[str]:
    return list(dict.fromkeys(p.sid for p in sorted(passages, key=lambda p: p.key)))


def _note(text: str) -> str:
    return f"{ENGINE_NOTE} {text}"


def _section(heading: str, chosen: list[_Passage], sources, passages) -> dict:
    if chosen:
        return {"heading": heading, "body": _cite(chosen), "citations": _cited_ids(chosen)}
    if not sources:
        reason = "No sources were supplied."
    elif not passages:
        reason = "The sources contain no usable text."
    else:
        reason = f"No passage in the sources speaks to “{heading}”."
    return {"heading": heading, "body": _note(reason), "citations": []}


def _revision_section(heading: str, notes: RevisionNotes, plan: _Plan, headings, sources) -> dict:
    quoted = "\n".join(f"> {line}" if line.strip() else ">" for line in notes.text.splitlines())
    changes = []
    titles = {s.sid: _title(s) for s in sources}
    for sid in sorted(notes.dropped, key=lambda s: int(s[1:])):
        changes.append(
            f"{sid} (“{titles[sid]}”) is left out of this version: {notes.dropped[sid]}."
        )
    for section, pulled in sorted(plan.pulled.items()):
        count = len(pulled)
        origin = ", ".join(dict.fromkeys(p.sid for p in pulled))
        changes.append(
            f"“{headings[section]}” now quotes the {'passage' if count == 1 else f'{count} passages'} "
            f"from {origin} that best {'matches' if count == 1 else 'match'} the note on it."
        )
    for section in plan.unanswered:
        changes.append(
            f"No passage in the sources matches the note on “{headings[section]}”, so it cannot "
            "be answered from this material; more sources may be needed."
        )
    by_section: dict[int, list[_Passage]] = {}
    for section, passage in plan.placed_for_notes:
        by_section.setdefault(section, []).append(passage)
    for section, placed in sorted(by_section.items()):
        count = len(placed)
        origin = ", ".join(dict.fromkeys(p.sid for p in placed))
        changes.append(
            f"The {'passage' if count == 1 else f'{count} passages'} from {origin} that best "
            f"{'matches' if count == 1 else 'match'} the notes now {'sits' if count == 1 else 'sit'} "
            f"under “{headings[section]}”."
        )
    if notes.general and not plan.placed_for_notes:
        changes.append(
            "No passage in the sources matches the notes' wording, so they cannot be answered "
            "from this material; more sources may be needed."
        )
    if not changes:
        changes.append("The notes named no section or source, so the sources were ranked again.")
    body = "\n\n".join(
        [
            _note("The reviewer asked for a revision:"),
            quoted,
            _note("What changed in this version: " + " ".join(changes)),
        ]
    )
    return {"heading": heading, "body": body, "citations": []}


def _summary(sources, passages, top: list[_Passage], plan: _Plan, relevance, notes) -> str:
    count = f"{len(sources)} supplied source{'s' if len(sources) != 1 else ''}"
    notice = (
        "This is an offline extractive draft written by reportdesk's local engine from the "
        f"{count}, without a language model: its sentences are taken from the sources, not "
        "analysed or verified, and it must be reviewed by a person before use."
    )
    if notes:
        notice += " This version was revised after a reviewer's notes."
    if not sources:
        return _note(notice + " No sources were supplied, so the draft has no findings.")
    if not passages:
        return _note(notice + " The sources contain no usable text, so the draft has no findings.")
    if not relevance:
        notice += (
            " Nothing in the sources matches the topic's key terms, so passages were chosen by "
            "how well they fit each section's heading."
        )
    filled = sum(1 for chosen in plan.sections if chosen)
    notice += (
        f" {filled} of {len(plan.sections)} sections quote the sources; each passage is used "
        "once."
    )
    if not top:
        return _note(notice)
    return f"{_note(notice)}\n\nKey passages: {_cite(top)}"


def _recommendations(sources, passages, used: Counter, audience: str) -> list[str]:
    if not passages:
        return [
            "Suggestion: add sources with readable text (uploads, URLs or pasted text) and run "
            "the report again."
        ]
    items = [
        "Suggestion: check each quote in the Evidence table against its source before relying "
        "on it; this draft selects sentences, it does not weigh or reconcile them."
    ]
    if used:
        ranked = used.most_common()
        best, most = ranked[0]
        if len(ranked) > 1 and ranked[1][1] < most:
            source = sources[best]
            total = sum(used.values())
            items.append(
                f"Suggestion: read {source.sid} (“{_title(source)}”) in full: this draft quotes "
                f"it most ({most} of {total} passages)."
            )
    unused = [s.sid for i, s in enumerate(sources) if not used[i]]
    if unused and used:
        one = len(unused) == 1
        items.append(
            f"Suggestion: confirm that {', '.join(unused)} {'belongs' if one else 'belong'} in "
            f"this report; nothing from {'it' if one else 'them'} is quoted."
        )
    audience = " ".join((audience or "").split())
    for_whom = f" written for {audience}" if audience else ""
    items.append(
        f"Suggestion: for analysis and synthesis{for_whom}, run the job with a language-model "
        "provider."
    )
    return items


def _unmentioned(sources, topic: str) -> list[str]:
    """Topic words that appear nowhere in any source, its title included, in any form."""
    seen: set[str] = set()
    for source in sources:
        seen.update(_tokens(f"{source.title} {source.text}"))
    words: dict[str, str] = {}
    for word in _WORD.findall(topic):
        stems = _tokens(word)
        if len(stems) == 1 and len(word) >= 4 and word.isalpha() and stems[0] not in seen:
            words.setdefault(stems[0], word)
    return list(words.values())


def _open_questions(sources, passages, topic: str, notes: RevisionNotes) -> list[str]:
    if not sources:
        return ["Which sources should this report draw on? None were supplied."]
    questions = []
    unmentioned = _unmentioned(sources, topic)
    if unmentioned:
        questions.append(
            f"No source mentions {_quoted_list(unmentioned)}: what do other sources say about "
            f"{'it' if len(unmentioned) == 1 else 'them'}?"
        )
    undated = [s.sid for s in sources if s.published is None and s.sid not in notes.dropped]
    if undated:
        questions.append(
            f"When {'was' if len(undated) == 1 else 'were'} {', '.join(undated)} published? "
            f"{'It carries' if len(undated) == 1 else 'They carry'} no date, so freshness cannot "
            "be checked."
        )
    readable = {p.source_index for p in passages}
    empty = [
        s.sid for i, s in enumerate(sources) if i not in readable and s.sid not in notes.dropped
    ]
    if empty:
        questions.append(
            f"What {'does' if len(empty) == 1 else 'do'} {', '.join(empty)} contain? No prose "
            f"passage could be read from {'it' if len(empty) == 1 else 'them'}."
        )
    subject = f"“{topic}”" if topic else "this subject"
    questions.append(
        f"What do sources beyond the {len(sources)} supplied say about {subject}? This draft "
        "covers only the material it was given."
    )
    return questions


def _source_note(
    index: int, source: SourceDoc, used: int, passages, relevance, plan: _Plan, notes
) -> dict:
    date = f"published {source.published.isoformat()}" if source.published else "no publication date"
    facts = f"{_title(source)} ({source.kind or 'text'}, {date})"
    if source.sid in notes.dropped:
        use = "left out of this version at the reviewer's request"
    elif used:
        use = f"{used} passage{'s' if used != 1 else ''} quoted"
    elif not any(p.source_index == index for p in passages):
        use = "not quoted; no prose passage could be read from it"
    elif any(by.source_index == index for by in passages if by.key in relevance):
        use = "not quoted; other sources' passages fitted the sections better"
    else:
        use = "not quoted; no passage matched the topic or a section"
    return {"source_id": source.sid, "note": f"{facts}: {use}."}


def _title(source: SourceDoc) -> str:
    return " ".join((source.title or "").split()) or "Untitled"


def _quoted_list(words: list[str]) -> str:
    quoted = [f"“{w}”" for w in words]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
