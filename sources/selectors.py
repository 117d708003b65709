"""Reads for sources: a manifest's entries, in the order the model sees them as S1…Sn."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple

from django.db.models import Prefetch, QuerySet

from .models import ManifestEntry, SourceItem, SourceStatus


def manifest_entries_qs() -> QuerySet[ManifestEntry]:
    """Entries with their items, in manifest order: the one shape every reader uses, also as
    the queryset of a `Prefetch` over many manifests."""
    return ManifestEntry.objects.select_related("item").order_by("position")


def manifest_entries(*, manifest_id: int) -> list[ManifestEntry]:
    return list(manifest_entries_qs().filter(manifest_id=manifest_id))


def ready_entries(*, manifest_id: int) -> list[ManifestEntry]:
    """The entries whose text could be read: what a request and the checks work from."""
    return [e for e in manifest_entries(manifest_id=manifest_id) if e.item.status == SourceStatus.READY]


def manifest_entries_prefetch(lookup: str, *, texts: bool = True) -> Prefetch:
    """Prefetch the entries of many manifests at once (list pages, the review queue).
    `texts=False` leaves out the items' extracted text (up to SOURCE_MAX_BYTES each), for
    readers that only list the sources."""
    queryset = manifest_entries_qs()
    return Prefetch(lookup, queryset=queryset if texts else queryset.defer("item__text"))


class SourceRow(NamedTuple):
    """A source as a job's readers list it: its place in the manifest and what it is (no text)."""

    manifest_id: int
    position: int
    id: int
    kind: str
    title: str
    url: str
    status: str
    error: str
    content_type: str
    size: int
    published_at: dt.date | None

    @property
    def sid(self) -> str:
        return f"S{self.position}"

    @classmethod
    def of(cls, entry: ManifestEntry) -> SourceRow:
        item = entry.item
        return cls(entry.manifest_id, entry.position, item.id, item.kind, item.title, item.url, item.status,
                   item.error, item.content_type, item.size, item.published_at)


_SOURCE_ROW = ("manifest_id", "position", "item_id", "item__kind", "item__title", "item__url", "item__status",
               "item__error", "item__content_type", "item__size", "item__published_at")
# Built once: setting up the eleven columns and their join is most of what building the
# query costs, and a filter clones it ready-made.
_SOURCE_ROWS = ManifestEntry.objects.order_by("manifest_id", "position").values_list(*_SOURCE_ROW)


def manifest_sources(manifest_ids: Iterable[int]) -> dict[int, list[SourceRow]]:
    """manifest id → its sources in order, for many manifests in one query: plain rows, not
    entries and items (a page of the job list read them through prefetch_related at twice
    the cost of the rest of its query)."""
    by_manifest: dict[int, list[SourceRow]] = defaultdict(list)
    for row in _SOURCE_ROWS.filter(manifest_id__in=set(manifest_ids)):
        by_manifest[row[0]].append(SourceRow(*row))
    return by_manifest


def source_items_in(workspace_ids: list[int] | None) -> QuerySet[SourceItem]:
    """Source items of the given workspaces (None: every workspace)."""
    items = SourceItem.objects.select_related("workspace")
    return items if workspace_ids is None else items.filter(workspace_id__in=workspace_ids)
