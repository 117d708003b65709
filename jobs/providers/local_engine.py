"""The local provider's report writer: an offline extractive report built only from the sources.

No model, no network, no database, and the same request always gives the same report. Each
source is cut into passages (sentences, each an exact substring of the source text, so every
evidence quote passes the reviewers' verbatim check), the passages are ranked against the
topic and audience with BM25 over light word stems, and the best of them are spread across
sources and sections. The report says plainly that it is an extractive draft.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from jobs.providers.base import ReportRequest, SourceDoc
from jobs.rendering import CITATION_MARKER

DEFAULT_SECTIONS = ("Background", "Findings", "Risks and limitations")
REVISION_SECTION = "Revision notes addressed"

# Work stays bounded whatever the sources' size: this many candidate passages per source.
MAX_PASSAGES_PER_SOURCE = 2000
# Longer stretches without sentence punctuation are cut into windows of about this size.
MAX_PASSAGE_CHARS = 600
PASSAGE_WINDOW_CHARS = 320

# BM25 parameters (the usual defaults) and the weight of each part of the query.
_K1 = 1.5
_B = 0.75
_TOPIC_WEIGHT = 1.0
_AUDIENCE_WEIGHT = 0.3
_NOTES_WEIGHT = 0.6
_HINT_WEIGHT = 0.5
# Each passage already taken from a source divides the next one's score by (1 + this).
_SOURCE_PENALTY = 0.5
# Passages sharing this much of their vocabulary say the same thing: keep one.
_REDUNDANT_OVERLAP = 0.7


@dataclass(frozen=True)
class _Budget:
    per_section: int
    evidence: int
    summary: int


_FIRST_DRAFT = _Budget(per_section=3, evidence=6, summary=2)
# A revision takes visibly more, so version N+1 differs from version N even on the same sources.
_REVISION = _Budget(per_section=4, evidence=8, summary=3)

_STOP_WORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be been before being
    below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself
    just me more most my no nor not now of off on once only or other our ours out over own
    same she should so some such than that the their theirs them then there these they this
    those through to too under until up very was we were what when where which while who
    whom why will with would you your yours report reports
    """.split()
)

# Words that a common report heading implies, so "Risks" pulls in passages about concerns.
_HEADING_HINTS_RAW = {
    "background": "history context origin overview introduced began since traditionally",
    "finding": "found show shows result data study evidence increase decrease percent",
    "risk": "risk challenge concern threat danger uncertainty uncertain barrier problem however",
    "limitation": "limited limit constraint gap lack although however",
    "outlook": "future expect expected forecast projected trend growth",
    "recommendation": "should recommend need must consider propose",
    "cost": "cost price expensive cheap spending budget investment",
    "market": "market demand supply share revenue growth customer",
    "competitor": "competitor rival alternative vendor compare",
}

_WORD = re.compile(r"\w+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
# Where a passage ends: sentence punctuation (with closing quotes) before whitespace, CJK
# full stops, a blank line, or a line break before a list item or a heading.
_BOUNDARY = re.compile(
    r"[.!?…]+[\"'”’)\]]*(?=\s)"
    r"|[。！？]+[」』”’）)]*"
    r"|\n[ \t]*\n\s*"
    r"|\n(?=[ \t]*(?:[-*•+]|\d{1,3}[.)]|#{1,6})[ \t])"
)
_LEADING_MARKER = re.compile(r"^(?:#{1,6}|[-*•+]|\d{1,3}[.)])\s+")
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
    revision_notes = (request.revision_notes or "").strip()
    budget = _REVISION if revision_notes else _FIRST_DRAFT
    headings = tuple(h for h in request.required_sections if h and h.strip()) or DEFAULT_SECTIONS
    topic = " ".join((request.topic or "").split())

    passages = [p for index, source in enumerate(sources) for p in _passages(index, source)]
    index = _Index(passages)
    topic_query = _query([(topic, _TOPIC_WEIGHT), (request.audience, _AUDIENCE_WEIGHT)])
    notes_query = _query([(revision_notes, 1.0)]) if revision_notes else {}
    relevance = index.scores(_merge(topic_query, notes_query, _NOTES_WEIGHT))

    ranked = _diverse(passages, relevance, count=max(budget.evidence, budget.summary))
    if len(ranked) < 3:
        ranked += _leads(passages, exclude=ranked, count=3 - len(ranked))
    evidence = ranked[: budget.evidence]
    summary = ranked[: budget.summary]

    revision_passages: list[_Passage] = []
    if revision_notes:
        revision_passages = _diverse(passages, index.scores(notes_query), count=2)

    section_passages = _assign_sections(headings, passages, index, relevance, budget.per_section)
    sections = []
    shown = [evidence, summary, revision_passages]
    folded = [heading.strip().casefold() for heading in headings]
    for heading, chosen, name in zip(headings, section_passages, folded):
        if revision_notes and name == REVISION_SECTION.casefold():
            sections.append(_revision_section(heading, revision_notes, revision_passages, budget))
        else:
            sections.append(_section(heading, chosen, index, sources))
            shown.append(chosen)
    if revision_notes and REVISION_SECTION.casefold() not in folded:
        sections.append(
            _revision_section(REVISION_SECTION, revision_notes, revision_passages, budget)
        )
    used_passages = {p.key: p for group in shown for p in group}
    used = Counter(p.source_index for p in used_passages.values())

    unmatched = [word for stem, word in _topic_terms(topic).items() if not index.df.get(stem)]
    return {
        "title": f"{topic or 'Research report'}: offline extractive draft",
        "executive_summary": _summary(sources, passages, summary, topic, relevance, revision_notes),
        "sections": sections,
        "evidence": [{"claim": _claim(p), "source_id": p.sid, "quote": p.text} for p in evidence],
        "recommendations": _recommendations(
            sources, passages, used, relevance, topic, request.audience, unmatched
        ),
        "open_questions": _open_questions(sources, passages, topic, unmatched),
        "source_notes": [
            _source_note(i, source, used[i], passages) for i, source in enumerate(sources)
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
    for position, (start, end) in enumerate(_spans(text)):
        if position >= MAX_PASSAGES_PER_SOURCE:
            break
        passage_text = text[start:end]
        tokens = _tokens(passage_text)
        if not _is_content(passage_text, tokens):
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


def _spans(text: str):
    """(start, end) of each sentence-like passage, trimmed of surrounding whitespace."""
    start = 0
    for boundary in _BOUNDARY.finditer(text):
        yield from _windows(text, start, boundary.end())
        start = boundary.end()
    yield from _windows(text, start, len(text))


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


def _is_content(text: str, tokens: list[str]) -> bool:
    """Skip headings, list labels and fragments: they make poor evidence."""
    if text.lstrip().startswith("#") or len(tokens) < 2:
        return False
    ends_sentence = text.rstrip()[-1:] in ".!?…。！？\"'”’)"
    if not ends_sentence and len(tokens) < 4 and not _LEADING_MARKER.match(text):
        return False
    return True


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


def _topic_terms(topic: str) -> dict[str, str]:
    """Topic stem → the word as the requester wrote it (for open questions)."""
    terms: dict[str, str] = {}
    for word in _WORD.findall(topic):
        stems = _tokens(word)
        if len(stems) == 1:
            terms.setdefault(stems[0], word)
    return terms


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
            key=lambda p: (
                scores[p.key] / (1 + _SOURCE_PENALTY * per_source[p.source_index]),
                -p.key,
            ),
        )
        candidates.remove(best)
        if any(_overlap(best, other) >= _REDUNDANT_OVERLAP for other in chosen):
            continue
        chosen.append(best)
        per_source[best.source_index] += 1
    return chosen


def _leads(passages: list[_Passage], *, exclude: list[_Passage], count: int) -> list[_Passage]:
    """Opening passages, one source at a time in turn: the fallback when nothing matches."""
    taken = {p.key for p in exclude}
    by_source: dict[int, list[_Passage]] = {}
    for passage in passages:
        if passage.key not in taken:
            by_source.setdefault(passage.source_index, []).append(passage)
    leads: list[_Passage] = []
    depth = 0
    while len(leads) < count and any(depth < len(group) for group in by_source.values()):
        for group in by_source.values():
            if depth < len(group) and len(leads) < count:
                leads.append(group[depth])
        depth += 1
    return leads


def _overlap(a: _Passage, b: _Passage) -> float:
    terms_a, terms_b = set(a.terms), set(b.terms)
    if not terms_a or not terms_b:
        return 0.0
    return len(terms_a & terms_b) / len(terms_a | terms_b)


_HEADING_HINTS = {
    _stem(word): _query([(hints, 1.0)]) for word, hints in _HEADING_HINTS_RAW.items()
}


def _heading_query(heading: str) -> dict[str, float]:
    query = _query([(heading, 1.0)])
    for term in list(query):
        hints = _HEADING_HINTS.get(term)
        if hints:
            query = _merge(query, hints, _HINT_WEIGHT)
    return query


def _assign_sections(
    headings: tuple[str, ...],
    passages: list[_Passage],
    index: _Index,
    relevance: dict[int, float],
    per_section: int,
) -> list[list[_Passage]]:
    """Passages for each heading: topic relevance plus how well the heading's words match.

    Only topic-relevant passages are placed while there are any (opening passages stand in
    when nothing matches the topic). Greedy over (heading, passage) pairs, best pair first,
    each passage in one section, so a passage about costs lands under "Costs" rather than
    under the first heading; a section left empty reuses its best passage.
    """
    if not passages:
        return [[] for _ in headings]
    wanted = per_section * len(headings)
    heading_scores = [index.scores(_heading_query(heading)) for heading in headings]
    if relevance:
        pool = {p.key: p for p in _diverse(passages, relevance, count=wanted * 2)}
        for scores in heading_scores:
            on_topic = {key: score for key, score in scores.items() if key in relevance}
            pool.update((p.key, p) for p in _diverse(passages, on_topic, count=per_section * 2))
    else:
        pool = {p.key: p for p in _leads(passages, exclude=[], count=wanted)}
        for scores in heading_scores:
            pool.update((p.key, p) for p in _diverse(passages, scores, count=per_section))
    # Few passages to go round: share them out rather than fill the first headings only.
    cap = min(per_section, max(1, -(-len(pool) // len(headings))))

    top_relevance = max(relevance.values(), default=0.0)
    top_heading = [max(scores.values(), default=0.0) for scores in heading_scores]

    def fit(section: int, passage: _Passage) -> float:
        scores, top = heading_scores[section], top_heading[section]
        rel = relevance.get(passage.key, 0.0) / top_relevance if top_relevance else 0.0
        head = scores.get(passage.key, 0.0) / top if top else 0.0
        # Relevance to the topic comes first; a heading match alone cannot outrank it.
        return rel + 0.6 * head + (0.5 if rel and head else 0.0)

    pairs = sorted(
        ((fit(s, p), s, p) for s in range(len(headings)) for p in pool.values()),
        key=lambda item: (-item[0], item[1], item[2].key),
    )
    assigned: list[list[_Passage]] = [[] for _ in headings]
    placed: set[int] = set()
    for _score, section, passage in pairs:
        if len(assigned[section]) < cap and passage.key not in placed:
            assigned[section].append(passage)
            placed.add(passage.key)
    for section, chosen in enumerate(assigned):
        if not chosen:
            chosen.append(next(p for _score, s, p in pairs if s == section))
        chosen.sort(key=lambda p: p.key)
    return assigned


# --- writing ----------------------------------------------------------------------------


def _display(text: str) -> str:
    """A passage as it reads in prose: whitespace collapsed, list markers dropped, and any
    citation-like "[S9]" in the source itself defused so it never reads as our citation."""
    text = _LEADING_MARKER.sub("", " ".join(text.split()))
    return CITATION_MARKER.sub(lambda m: f"({m.group(1)})", text)


def _claim(passage: _Passage, words: int = 24) -> str:
    parts = _display(passage.text).split()
    claim = " ".join(parts[:words])
    return claim + " …" if len(parts) > words else claim


def _cite(passages: list[_Passage]) -> str:
    return " ".join(f"{_display(p.text)} [{p.sid}]" for p in passages)


def _cited_ids(passages: list[_Passage]) -> list[str]:
    return list(dict.fromkeys(p.sid for p in sorted(passages, key=lambda p: p.key)))


def _section(heading: str, chosen: list[_Passage], index: _Index, sources) -> dict:
    if not chosen:
        reason = "The sources contain no usable text" if sources else "No sources were supplied"
        body = f"{reason}, so there is nothing to report here."
        return {"heading": heading, "body": body, "citations": []}
    body = _cite(chosen)
    heading_scores = index.scores(_heading_query(heading))
    if not any(p.key in heading_scores for p in chosen):
        body = (
            "No passage in the sources speaks to this heading directly; these are the "
            f"passages most relevant to the topic.\n\n{body}"
        )
    return {"heading": heading, "body": body, "citations": _cited_ids(chosen)}


def _revision_section(heading: str, notes: str, matching: list[_Passage], budget: _Budget) -> dict:
    quoted = "\n".join(f"> {line}" if line.strip() else ">" for line in notes.splitlines())
    changed = (
        "What changed in this version: the reviewer's notes were added to the ranking query, "
        f"and the draft takes more from the sources ({budget.per_section} passages per section "
        f"instead of {_FIRST_DRAFT.per_section}, up to {budget.evidence} evidence rows instead "
        f"of {_FIRST_DRAFT.evidence})."
    )
    if matching:
        follow = f"The passages that bear most directly on the notes: {_cite(matching)}"
    else:
        follow = (
            "No passage in the sources matches the notes' wording, so they cannot be answered "
            "from this material; more sources may be needed."
        )
    body = f"The reviewer asked for a revision:\n\n{quoted}\n\n{changed}\n\n{follow}"
    return {"heading": heading, "body": body, "citations": _cited_ids(matching)}


def _summary(sources, passages, top: list[_Passage], topic: str, relevance, notes: str) -> str:
    count = f"{len(sources)} supplied source{'s' if len(sources) != 1 else ''}"
    notice = (
        "This is an offline extractive draft written by reportdesk's local engine from the "
        f"{count}, without a language model: its sentences are taken from the sources, not "
        "analysed or verified, and it must be reviewed by a person before use."
    )
    if notes:
        notice += " This version was revised after a reviewer's notes."
    if not sources:
        return notice + "\n\nNo sources were supplied, so the draft has no findings."
    if not passages:
        return notice + "\n\nThe sources contain no usable text, so the draft has no findings."
    if not relevance:
        notice += (
            " Nothing in the sources matches the topic's key terms, so passages were chosen by "
            "their position in each source."
        )
    return f"{notice}\n\nKey passages: {_cite(top)}"


def _recommendations(
    sources, passages, used: Counter, relevance, topic: str, audience: str, unmatched: list[str]
) -> list[str]:
    if not passages:
        return [
            "Suggestion: add sources with readable text (uploads, URLs or pasted text) and run "
            "the report again."
        ]
    items = [
        "Suggestion: check each quote in the Evidence table against its source before relying "
        "on it; this draft selects sentences, it does not weigh or reconcile them."
    ]
    relevant_by_source = Counter(p.source_index for p in passages if p.key in relevance)
    if relevant_by_source:
        best, _ = min(relevant_by_source.items(), key=lambda item: (-item[1], item[0]))
        source = sources[best]
        subject = f"“{topic}”" if topic else "the topic"
        items.append(
            f"Suggestion: read {source.sid} (“{_title(source)}”) in full: it has the most "
            f"passages on {subject}."
        )
    if unmatched:
        items.append(f"Suggestion: add sources that cover {_quoted_list(unmatched)}.")
    unused = [s.sid for i, s in enumerate(sources) if not used[i]]
    if unused:
        one = len(unused) == 1
        items.append(
            f"Suggestion: confirm that {', '.join(unused)} {'belongs' if one else 'belong'} in "
            f"this report; nothing from {'it' if one else 'them'} was used."
        )
    audience = " ".join((audience or "").split())
    for_whom = f" written for {audience}" if audience else ""
    items.append(
        f"Suggestion: for analysis and synthesis{for_whom}, run the job with a language-model "
        "provider."
    )
    return items


def _open_questions(sources, passages, topic: str, unmatched: list[str]) -> list[str]:
    if not sources:
        return ["Which sources should this report draw on? None were supplied."]
    questions = []
    if unmatched:
        questions.append(
            f"The sources do not mention {_quoted_list(unmatched)}: what do other sources say about "
            f"{'it' if len(unmatched) == 1 else 'them'}?"
        )
    undated = [s.sid for s in sources if s.published is None]
    if undated:
        questions.append(
            f"When {'was' if len(undated) == 1 else 'were'} {', '.join(undated)} published? "
            f"{'It carries' if len(undated) == 1 else 'They carry'} no date, so freshness cannot "
            "be checked."
        )
    empty = [s.sid for i, s in enumerate(sources) if not any(p.source_index == i for p in passages)]
    if empty:
        questions.append(
            f"What {'does' if len(empty) == 1 else 'do'} {', '.join(empty)} contain? No usable "
            f"text could be read from {'it' if len(empty) == 1 else 'them'}."
        )
    subject = f"“{topic}”" if topic else "this subject"
    questions.append(
        f"What do sources beyond the {len(sources)} supplied say about {subject}? This draft "
        "covers only the material it was given."
    )
    return questions


def _source_note(index: int, source: SourceDoc, used: int, passages: list[_Passage]) -> dict:
    date = f"published {source.published.isoformat()}" if source.published else "no publication date"
    facts = f"{_title(source)} ({source.kind or 'text'}, {date})"
    if used:
        use = f"{used} passage{'s' if used != 1 else ''} used"
    elif not any(p.source_index == index for p in passages):
        use = "not used; no usable text"
    else:
        use = "not used; no passage matched the topic"
    return {"source_id": source.sid, "note": f"{facts}: {use}."}


def _title(source: SourceDoc) -> str:
    return " ".join((source.title or "").split()) or "Untitled"


def _quoted_list(words: list[str]) -> str:
    quoted = [f"“{w}”" for w in words]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
