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

from django.conf import settings

from sources.models import ManifestEntry, SourceStatus

from .models import ArtifactKind, AttemptReason, JobAttempt, ProviderCall, ReportJob
from .providers.base import ReportRequest, SourceDoc
from .report_schema import CITATION_RULES, REPORT_SCHEMA

_ELISION = "\n\n[…]\n\n"
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the this to was were will with".split()
)


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
        parts = [p for p in re.split(r"\n\s*\n", d.text) if p.strip()]
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
    entries = ManifestEntry.objects.filter(manifest_id=attempt.manifest_id).select_related("item").order_by("position")
    return [
        SourceDoc(
            sid=entry.sid,
            title=entry.item.title or entry.item.url or entry.sid,
            text=entry.item.text,
            url=entry.item.url,
            kind=entry.item.kind,
            published=entry.item.published_at,
        )
        for entry in entries
        if entry.item.status == SourceStatus.READY
    ]


def previous_draft_response_id(*, job: ReportJob, attempt: JobAttempt) -> str | None:
    """For a revision: the response that wrote the draft being revised."""
    if attempt.reason != AttemptReason.REVISION:
        return None
    return (
        ProviderCall.objects.filter(
            job=job, attempt__number__lt=attempt.number, attempt__version__isnull=False,
            attempt__artifacts__kind=ArtifactKind.STRUCTURED_JSON,
        )
        .exclude(provider_response_id=None)
        .order_by("-attempt__number", "-id")
        .values_list("provider_response_id", flat=True)
        .first()
    )


def build_request(*, job: ReportJob, attempt: JobAttempt, provider_name: str) -> tuple[ReportRequest, dict]:
    template = job.template
    docs, summary = _fit_sources(source_docs(attempt=attempt), topic=job.topic, budget=settings.CONTEXT_BUDGET_CHARS)
    sections = tuple(template.required_sections or ())
    instructions = "\n\n".join(
        part
        for part in [
            template.instructions.strip(),
            f"Write for this audience: {job.audience}." if job.audience else "",
            ("Include these sections, with these exact headings: " + "; ".join(sections) + ".") if sections else "",
            CITATION_RULES,
            "Answer with the JSON document described by the response format, nothing else.",
        ]
        if part
    )
    lines = [f"Topic: {job.topic}", f"Report type: {template.get_report_type_display()}"]
    if job.audience:
        lines.append(f"Audience: {job.audience}")
    if attempt.instructions:
        lines += ["", "Revision requested. The reviewer's notes on the previous draft:", attempt.instructions]
    lines += ["", f"Sources ({len(docs)}):"]
    for d in docs:
        header = f"=== {d.sid}: {d.title}"
        if d.url:
            header += f" <{d.url}>"
        if d.published:
            header += f" (published {d.published.isoformat()})"
        lines += ["", header + " ===", d.text]
    tools: tuple[dict, ...] = ()
    if template.web_search:
        tool = {"type": "web_search"}
        if template.web_search_domains:
            tool["filters"] = {"allowed_domains": list(template.web_search_domains)}
        tools = (tool,)
    model = "local-extractive" if provider_name == "local" else template.model
    request = ReportRequest(
        job_id=job.public_id,
        attempt=attempt.number,
        step="report",
        model=model,
        instructions=instructions,
        input_text="\n".join(lines),
        topic=job.topic,
        audience=job.audience,
        sources=tuple(docs),
        output_schema=template.output_schema or REPORT_SCHEMA,
        required_sections=sections,
        reasoning_effort=template.reasoning_effort,
        previous_response_id=previous_draft_response_id(job=job, attempt=attempt),
        revision_notes=attempt.instructions,
        tools=tools,
        metadata={"workspace": job.workspace.slug},
    )
    return request, {"sources": summary, "budget_chars": settings.CONTEXT_BUDGET_CHARS}
