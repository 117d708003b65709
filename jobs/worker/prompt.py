"""Build the provider request for one attempt: instructions, the sources as S1…Sn within the
context budget, citation rules and the structured-report schema.

When the sources do not fit the budget, their paragraphs are ranked by relevance to the topic
and the best go in, each source keeping its original order; what went in is recorded in the
ProviderCall's request_summary.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, replace

from django.conf import settings

from sources.selectors import ready_entries

from ..models import LOCAL_MODEL, Artifact, ArtifactKind, AttemptReason, CallStatus, JobAttempt, ProviderCall, ReportJob
from ..providers.base import ReportRequest, SourceDoc
from ..report_schema import (
    CITATION_RULES,
    MAX_RESEARCH_QUESTIONS,
    QUESTIONS_SCHEMA,
    QUESTIONS_SCHEMA_NAME,
    REPORT_SCHEMA,
    REPORT_SCHEMA_NAME,
    SEARCH_SOURCES_TOOL,
    WEB_CITATION_RULES,
)

_ELISION = "\n\n[…]\n\n"
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the this to was were will with".split()
)


def _paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def _terms(text: str) -> list[str]:
    return [w for w in (m.lower() for m in _WORD.findall(text)) if w not in _STOP and len(w) > 1]


def _fit_sources(docs: list[SourceDoc], *, topic: str, budget: int) -> tuple[list[SourceDoc], list[dict]]:
    """Keep all text when it fits; otherwise the most topic-relevant paragraphs."""
    total = sum(len(d.text) for d in docs)
    if total <= budget:
        return docs, [
            {"sid": d.sid, "title": d.title, "chars": len(d.text), "included_chars": len(d.text), "truncated": False}
            for d in docs
        ]
    query = Counter(_terms(topic))
    paragraphs = []  # (score, doc index, paragraph index, text)
    doc_freq: Counter = Counter()
    split_docs = []
    for d in docs:
        parts = _paragraphs(d.text)
        split_docs.append(parts)
        for p in parts:
            doc_freq.update(set(_terms(p)))
    n_paragraphs = sum(len(parts) for parts in split_docs) or 1
    for di, parts in enumerate(split_docs):
        for pi, p in enumerate(parts):
            counts = Counter(_terms(p))
            score = sum(
                counts[t] * math.log(1 + n_paragraphs / (1 + doc_freq[t])) for t in query if t in counts
            ) / math.sqrt(1 + len(p) / 500)
            paragraphs.append((score, di, pi, p))
    paragraphs.sort(key=lambda row: (-row[0], row[1], row[2]))
    chosen: dict[int, set[int]] = {i: set() for i in range(len(docs))}
    used = 0
    # Every source gets its best paragraph first, so none silently disappears.
    firsts = {}
    for row in paragraphs:
        firsts.setdefault(row[1], row)
    for row in list(firsts.values()) + paragraphs:
        _, di, pi, p = row
        cost = len(p) + (len(_ELISION) if chosen[di] else 0)
        if pi in chosen[di] or used + cost > budget:
            continue
        chosen[di].add(pi)
        used += cost
    fitted, summary = [], []
    for di, d in enumerate(docs):
        kept = [split_docs[di][pi] for pi in sorted(chosen[di])]
        text = _ELISION.join(kept)
        fitted.append(SourceDoc(sid=d.sid, title=d.title, text=text, url=d.url, kind=d.kind, published=d.published))
        summary.append(
            {"sid": d.sid, "title": d.title, "chars": len(d.text), "included_chars": len(text),
             "truncated": len(text) < len(d.text), "paragraphs": f"{len(kept)}/{len(split_docs[di])}"}
        )
    return fitted, summary


def source_docs(*, attempt: JobAttempt) -> list[SourceDoc]:
    return [
        SourceDoc(
            sid=entry.sid,
            title=entry.item.title or entry.item.url or entry.sid,
            text=entry.item.text,
            url=entry.item.url,
            kind=entry.item.kind,
            published=entry.item.published_at,
        )
        for entry in ready_entries(manifest_id=attempt.manifest_id)
    ]


# The API's code when `previous_response_id` names a response it no longer has (past its
# retention, deleted, or never stored in a zero-retention organisation).
PREVIOUS_RESPONSE_NOT_FOUND = "previous_response_not_found"


def chain_lost(*, attempt: JobAttempt) -> bool:
    """Did a call of this attempt find its previous response gone? From then on the attempt
    sends what the chain carried (the draft, the notes, the tool results) as input instead."""
    return ProviderCall.objects.filter(attempt=attempt, error_code=PREVIOUS_RESPONSE_NOT_FOUND).exists()


def _draft_call(*, job: ReportJob, attempt: JobAttempt) -> ProviderCall | None:
    """For a revision: the call whose response wrote the draft being revised."""
    if attempt.reason != AttemptReason.REVISION:
        return None
    return (
        ProviderCall.objects.filter(
            job=job, attempt__number__lt=attempt.number, attempt__version__isnull=False,
            attempt__artifacts__kind=ArtifactKind.STRUCTURED_JSON, orphan=False,
        )
        .exclude(provider_response_id=None)
        .order_by("-attempt__number", "-id")
        .first()
    )


def previous_draft_response_id(*, job: ReportJob, attempt: JobAttempt) -> str | None:
    """For a revision: the response that wrote the draft being revised, unless it is gone at
    the provider (deleted by retention, or found missing by an earlier call)."""
    call = _draft_call(job=job, attempt=attempt)
    if call is None or call.deleted_at is not None or chain_lost(attempt=attempt):
        return None
    return call.provider_response_id


def _must_carry(*, job: ReportJob, attempt: JobAttempt, step: Step) -> bool:
    """Must this step send as input what a chain would have carried? Every step once a chain
    of the attempt was lost; the first step of a revision whose draft response was deleted."""
    if chain_lost(attempt=attempt):
        return True
    if step.name not in ("report", "plan"):
        return False
    call = _draft_call(job=job, attempt=attempt)
    return call is not None and call.deleted_at is not None


@dataclass(frozen=True)
class Step:
    """One provider response of an attempt. Single mode has one step, "report"; multi-step
    research has "plan", "research-1"…"research-N" (each may continue with function call
    answers) and "synthesize", chained with previous_response_id."""

    name: str = "report"
    previous_response_id: str | None = None
    question: str = ""
    number: int = 0
    of: int = 0
    input_items: tuple[dict, ...] = ()
    # Text standing in for the chain when the previous response is gone (see chain_lost).
    carried: tuple[str, ...] = ()
    tool_choice: str = ""  # "none" once a research question has used its tool rounds
    notes: tuple[tuple[str, str], ...] = ()  # the synthesis's input: (question, notes) each


def _instructions(job: ReportJob, *, final: bool) -> str:
    template = job.run_template
    sections = tuple(template.required_sections or ())
    parts = [
        template.instructions.strip(),
        f"Write for this audience: {job.audience}." if job.audience else "",
        ("Include these sections, with these exact headings: " + "; ".join(sections) + ".") if sections and final else "",
        CITATION_RULES,
        WEB_CITATION_RULES if template.web_search else "",
        "Answer with the JSON document described by the response format, nothing else." if final else "",
    ]
    return "\n\n".join(part for part in parts if part)


def _request_header(job: ReportJob, attempt: JobAttempt) -> list[str]:
    lines = [f"Topic: {job.topic}", f"Report type: {job.run_template.get_report_type_display()}"]
    if job.audience:
        lines.append(f"Audience: {job.audience}")
    if attempt.instructions:
        lines += ["", "Revision requested. The reviewer's notes on the previous draft:", attempt.instructions]
    return lines


def _sources_block(docs: list[SourceDoc]) -> list[str]:
    lines = ["", f"Sources ({len(docs)}):"]
    for d in docs:
        header = f"=== {d.sid}: {d.title}"
        if d.url:
            header += f" <{d.url}>"
        if d.published:
            header += f" (published {d.published.isoformat()})"
        lines += ["", header + " ===", d.text]
    return lines


def _web_search_tool(template) -> tuple[dict, ...]:
    if not template.web_search:
        return ()
    tool = {"type": "web_search"}
    if template.web_search_domains:
        tool["filters"] = {"allowed_domains": list(template.web_search_domains)}
    return (tool,)


def _previous_draft(*, job: ReportJob, attempt: JobAttempt) -> str:
    """The Markdown of the latest draft before this attempt ("" when there is none)."""
    return (
        Artifact.objects.filter(
            job=job, kind=ArtifactKind.REPORT_MARKDOWN, attempt__number__lt=attempt.number, attempt__version__isnull=False
        )
        .order_by("-attempt__number")
        .values_list("content", flat=True)
        .first()
        or ""
    )


def _carried_context(*, job: ReportJob, attempt: JobAttempt, step: Step) -> list[str]:
    """What `previous_response_id` would have carried, as text, for an attempt whose chain
    was lost: the draft being revised, this attempt's finished steps, and tool results."""
    lines: list[str] = []
    if attempt.reason == AttemptReason.REVISION and step.name in ("report", "plan"):
        draft = _previous_draft(job=job, attempt=attempt)
        if draft:
            lines += ["", "The previous draft, to be revised as the reviewer asks:", "", draft]
    if step.name not in ("report", "plan"):
        done = ProviderCall.objects.filter(attempt=attempt, status=CallStatus.COMPLETED).order_by("id")
        notes = [(call.step, (call.output or {}).get("text", "")) for call in done]
        notes = [(name, text) for name, text in notes if text.strip()]
        if notes:
            lines += ["", "Your work on this report so far:"]
            for name, text in notes:
                lines += ["", f"--- {name} ---", text]
    for item in step.input_items:
        lines += ["", f"Result of your {item.get('call_id', '')} tool call:", str(item.get("output", ""))]
    return lines


def build_request(*, job: ReportJob, attempt: JobAttempt, provider_name: str, step: Step | None = None) -> tuple[ReportRequest, dict]:
    """The request for one step of an attempt, and a summary of what went into it."""
    step = step or Step(previous_response_id=previous_draft_response_id(job=job, attempt=attempt))
    if _must_carry(job=job, attempt=attempt, step=step):
        step = replace(step, previous_response_id=None, input_items=(),
                       carried=tuple(_carried_context(job=job, attempt=attempt, step=step)))
    template = job.run_template
    sections = tuple(template.required_sections or ())
    summary: dict = {"step": step.name}
    tools: tuple[dict, ...] = _web_search_tool(template)
    output_schema, schema_name = template.output_schema or REPORT_SCHEMA, REPORT_SCHEMA_NAME
    instructions = _instructions(job, final=True)
    lines = _request_header(job, attempt)
    if step.name in ("report", "plan"):
        docs, fitted = _fit_sources(source_docs(attempt=attempt), topic=job.topic, budget=settings.CONTEXT_BUDGET_CHARS)
        summary.update(sources=fitted, budget_chars=settings.CONTEXT_BUDGET_CHARS)
        lines += _sources_block(docs)
    else:
        docs = source_docs(attempt=attempt)
    if step.name == "plan":
        instructions = _instructions(job, final=False)
        lines += [
            "",
            f"Plan the research before writing: list at most {MAX_RESEARCH_QUESTIONS} research questions "
            "the report must answer, most important first. Do not write the report yet.",
        ]
        output_schema, schema_name, tools = QUESTIONS_SCHEMA, QUESTIONS_SCHEMA_NAME, ()
    elif step.name.startswith("research-"):
        instructions = _instructions(job, final=False)
        lines = [
            f"Research question {step.number} of {step.of}: {step.question}",
            "Use the search_sources tool to find evidence in the sources, then write research notes "
            "that cite source ids like [S1] and quote the sources verbatim.",
        ]
        output_schema, schema_name = {}, ""
        tools = (SEARCH_SOURCES_TOOL,) + tools
        summary.update(question=step.question, number=step.number, of=step.of)
    elif step.name == "gaps":
        instructions = _instructions(job, final=False)
        lines = ["Your research notes so far:"]
        for number, (question, notes) in enumerate(step.notes, start=1):
            lines += ["", f"--- Research notes {number}: {question} ---", notes]
        lines += [
            "",
            f"List at most {MAX_RESEARCH_QUESTIONS} follow-up questions these notes leave unanswered that "
            "the sources may still answer, most important first; an empty list if there are none.",
        ]
        output_schema, schema_name, tools = QUESTIONS_SCHEMA, QUESTIONS_SCHEMA_NAME, ()
    elif step.name == "synthesize":
        lines = [
            "Write the final report now, from the sources above and your research notes below.",
            *(["Include these sections: " + "; ".join(sections) + "."] if sections else []),
        ]
        for number, (question, notes) in enumerate(step.notes, start=1):
            lines += ["", f"--- Research notes {number}: {question} ---", notes]
        if attempt.instructions:
            lines += ["Address the reviewer's notes:", attempt.instructions]
    if step.carried:
        lines += list(step.carried)
        summary["chain_lost"] = True
    model = LOCAL_MODEL if provider_name == "local" else template.model
    request = ReportRequest(
        job_id=job.public_id,
        attempt=attempt.number,
        step=step.name,
        model=model,
        instructions=instructions,
        input_text="\n".join(lines),
        topic=job.topic,
        audience=job.audience,
        sources=tuple(docs),
        output_schema=output_schema,
        output_schema_name=schema_name or REPORT_SCHEMA_NAME,
        required_sections=sections,
        reasoning_effort=template.reasoning_effort,
        previous_response_id=step.previous_response_id,
        revision_notes=attempt.instructions,
        tools=tools,
        max_output_tokens=template.max_output_tokens,
        max_tool_calls=template.max_tool_calls,
        tool_choice=step.tool_choice,
        input_items=step.input_items,
        metadata={"workspace": job.workspace.slug},
    )
    return request, summary


def search_sources(*, attempt: JobAttempt, query: str, limit: int = 5) -> list[dict]:
    """The search_sources function tool: the passages of the attempt's sources that best
    match `query`, each with its source id."""
    terms = Counter(_terms(query))
    scored = []
    for doc in source_docs(attempt=attempt):
        for index, paragraph in enumerate(_paragraphs(doc.text)):
            counts = Counter(_terms(paragraph))
            score = sum(min(counts[t], 3) for t in terms if t in counts)
            if score:
                scored.append((-score, doc.sid, index, paragraph.strip()[:1500]))
    scored.sort()
    return [{"source_id": sid, "text": text} for _, sid, _, text in scored[:limit]]
