"""Finding jobs by what their reports say and what their sources are called.

On PostgreSQL a full-text search (websearch syntax: words, "quoted phrases", -exclusions) over
every version of the report's Markdown, stemmed in English and served by the expression index
of migration `report_text_search_index`, and over the titles of the job's sources. Elsewhere
(SQLite) every word must appear, case-insensitively, in one version of the report or in one
source's title. Both are one EXISTS per text, so a list filtered by them is still one query.
"""

from __future__ import annotations

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet

from sources.models import ManifestEntry

from .models import Artifact, ArtifactKind, ReportJob

# The configuration the index is built with; a query must use the same to be served by it.
SEARCH_CONFIG = "english"


def _every_word(field: str, term: str) -> Q:
    condition = Q()
    for word in term.split():
        condition &= Q(**{f"{field}__icontains": word})
    return condition


def jobs_matching_text(queryset: QuerySet[ReportJob], term: str) -> QuerySet[ReportJob]:
    """The jobs of `queryset` whose report text or source titles match `term`."""
    term = term.strip()
    if not term:
        return queryset.none()
    reports = report_versions_matching(term).filter(job=OuterRef("pk"))
    sources = ManifestEntry.objects.filter(manifest_id=OuterRef("source_manifest_id"))
    if connection.vendor == "postgresql":
        query = SearchQuery(term, config=SEARCH_CONFIG, search_type="websearch")
        sources = sources.annotate(document=SearchVector("item__title", config=SEARCH_CONFIG)).filter(document=query)
    else:
        sources = sources.filter(_every_word("item__title", term))
    return queryset.filter(Exists(reports) | Exists(sources))


def report_versions_matching(term: str) -> QuerySet[Artifact]:
    """Every stored version of a report (its Markdown) whose text matches `term`, in any job.

    On PostgreSQL its filter is the expression of the index `jobs_artifact_report_fts`, so the
    index can serve it."""
    reports = Artifact.objects.filter(kind=ArtifactKind.REPORT_MARKDOWN)
    if connection.vendor == "postgresql":
        query = SearchQuery(term.strip(), config=SEARCH_CONFIG, search_type="websearch")
        return reports.annotate(document=SearchVector("content", config=SEARCH_CONFIG)).filter(document=query)
    return reports.filter(_every_word("content", term))
