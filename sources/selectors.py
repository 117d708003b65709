"""Reads for sources: a manifest's entries, in the order the model sees them as S1…Sn."""

from __future__ import annotations

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


def source_items_in(workspace_ids: list[int] | None) -> QuerySet[SourceItem]:
    """Source items of the given workspaces (None: every workspace)."""
    items = SourceItem.objects.select_related("workspace")
    return items if workspace_ids is None else items.filter(workspace_id__in=workspace_ids)
