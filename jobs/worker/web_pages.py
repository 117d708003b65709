"""The web pages a draft cites, fetched once the draft is written so its quotes can be checked.

Only pages the web search really returned are fetched (a URL the search never returned has
already failed its check, and fetching whatever a model names is not our business), each
through the SSRF-safe fetcher of the sources app, and kept as a source item of the attempt
(`AttemptWebPage`). At most MAX_PAGES per draft; a page that cannot be fetched is kept with its
error, so the check says why the quote could not be looked up.
"""

from __future__ import annotations

from reportdesk.errors import ApplicationError
from sources.services import SourceSpec, source_ingest, sources_from_specs
from sources.urls import url_key

from ..models import AttemptWebPage, JobAttempt, ReportJob
from ..rendering import web_citations
from ..selectors import attempt_search_urls
from .lease import job_lease_renew

MAX_PAGES = 10


def web_pages_fetch(*, job: ReportJob, attempt: JobAttempt, report: dict, token: str | None = None) -> None:
    returned = {url_key(url) for url in attempt_search_urls(attempt=attempt)}
    done = {url_key(url) for url in AttemptWebPage.objects.filter(attempt=attempt).values_list("url", flat=True)}
    wanted: dict[str, dict] = {}
    for row in web_citations(report):
        key = url_key(row["url"])
        if key in returned and key not in done:
            wanted.setdefault(key, row)
    for row in list(wanted.values())[:MAX_PAGES]:
        if token is not None and not job_lease_renew(job_id=job.pk, token=token):
            return
        try:
            [item] = sources_from_specs(
                workspace=job.workspace, created_by=job.requested_by, specs=[SourceSpec(url=row["url"], title=row["title"][:300])]
            )
        except ApplicationError:
            continue  # not a URL we may fetch at all (the check then says the page was not fetched)
        item = source_ingest(item=item)
        AttemptWebPage.objects.get_or_create(attempt=attempt, url=row["url"][:2000], defaults={"item": item})
