"""Writes for sources: create items from uploads, URLs, pasted text and internal records,
build manifests, and ingest (fetch and extract) pending items.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.utils import timezone
from django.utils.text import slugify

from reportdesk.errors import ValidationFailed

from .extraction import ExtractionError, detect_content_type, extract_text
from .fetching import SourceFetchError, check_url, fetch_url
from .models import ManifestEntry, SourceItem, SourceKind, SourceManifest, SourceStatus


@dataclass(frozen=True)
class SourceSpec:
    """A source as a caller describes it, before it exists: exactly one of the fields."""

    url: str = ""
    title: str = ""
    text: str = ""
    item_id: int | None = None
    record_job_id: str = ""  # public id of an approved report of the same workspace
    # An uploaded file, stored and extracted with the job it comes with (the admin's form).
    upload_name: str = ""
    upload_data: bytes = b""
    upload_type: str = ""


@dataclass(frozen=True)
class RecordSource:
    """An earlier approved report, as the app that owns reports resolves it for quoting."""

    job_id: int
    title: str
    text: str
    published: dt.date | None = None


# Resolves the public id of a report in the workspace into what is quoted, or raises
# ValidationFailed. The jobs app passes it in, so sources never reads jobs' tables.
RecordResolver = Callable[..., RecordSource]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# The uploads stored inside `uploads_discarded_on_error`, to delete if it ends in an error.
_stored_uploads: ContextVar[list | None] = ContextVar("stored_uploads", default=None)


@contextmanager
def uploads_discarded_on_error() -> Iterator[None]:
    """Around a transaction that may store uploads: if it raises, the files stored within it
    are deleted too. The rollback takes the rows back, not the files (a submit refused for its
    budget after its uploads were stored would leave them behind). Nested, the outermost one
    deletes them."""
    if _stored_uploads.get() is not None:
        yield
        return
    stored: list[SourceItem] = []
    token = _stored_uploads.set(stored)
    try:
        yield
    except BaseException:
        for item in stored:
            item.file.delete(save=False)
        raise
    finally:
        _stored_uploads.reset(token)


def source_create_text(*, workspace, created_by, title: str, text: str) -> SourceItem:
    item = _text_item(workspace=workspace, created_by=created_by, title=title, text=text)
    item.save()
    return item


def _text_item(*, workspace, created_by, title: str, text: str) -> SourceItem:
    text = (text or "").replace("\x00", "").strip()
    if not text:
        raise ValidationFailed("Pasted text is empty.", fields={"text": "This field may not be blank."})
    data = text.encode()
    if len(data) > settings.SOURCE_MAX_BYTES:
        raise ValidationFailed(
            f"Pasted text is larger than the {settings.SOURCE_MAX_BYTES // 1024} KB limit.",
            fields={"text": "Too large."},
        )
    return SourceItem(
        workspace=workspace,
        created_by=created_by,
        kind=SourceKind.TEXT,
        title=(title or text.splitlines()[0])[:300],
        content_type="text/plain",
        size=len(data),
        sha256=_sha256(data),
        text=text,
        status=SourceStatus.READY,
        fetched_at=timezone.now(),
    )


def source_create_url(*, workspace, created_by, url: str, title: str = "") -> SourceItem:
    item = _url_item(workspace=workspace, created_by=created_by, url=url, title=title)
    item.save()
    return item


def _url_item(*, workspace, created_by, url: str, title: str = "") -> SourceItem:
    """A URL source, pending until ingest fetches it."""
    url = (url or "").strip()
    try:
        check_url(url, allowed_hosts=settings.SOURCE_ALLOWED_INTERNAL_HOSTS)
    except SourceFetchError as exc:
        raise ValidationFailed(exc.message, fields={"url": exc.message}) from exc
    return SourceItem(workspace=workspace, created_by=created_by, kind=SourceKind.URL, url=url, title=title[:300])


def source_create_upload(
    *, workspace, created_by, name: str, data: bytes, declared_type: str = "", published: dt.date | None = None
) -> SourceItem:
    """Store an uploaded file and extract its text at once: a bad upload is refused now.
    `published` is the date the uploader knows, ahead of any the document states."""
    item = _upload_item(
        workspace=workspace, created_by=created_by, name=name, data=data, declared_type=declared_type, published=published
    )
    item.save()
    return item


def _upload_item(
    *, workspace, created_by, name: str, data: bytes, declared_type: str = "", published: dt.date | None = None
) -> SourceItem:
    """An upload's item, its file already stored: within `uploads_discarded_on_error`, deleted
    if the row is not written."""
    if len(data) > settings.SOURCE_MAX_BYTES:
        raise ValidationFailed(
            f"The file is larger than the {settings.SOURCE_MAX_BYTES // (1024 * 1024)} MB limit.",
            fields={"file": "Too large."},
        )
    try:
        content_type = detect_content_type(data=data, filename=name, declared=declared_type)
        extracted = extract_text(data=data, content_type=content_type, filename=name)
    except ExtractionError as exc:
        raise ValidationFailed(exc.message, fields={"file": exc.message}) from exc
    item = SourceItem(
        workspace=workspace,
        created_by=created_by,
        kind=SourceKind.UPLOAD,
        title=(extracted.title or name)[:300],
        content_type=content_type,
        size=len(data),
        sha256=_sha256(data),
        text=extracted.text,
        published_at=published or extracted.published,
        status=SourceStatus.READY,
        fetched_at=timezone.now(),
    )
    item.file.save(_storage_name(name), ContentFile(data), save=False)
    if (stored := _stored_uploads.get()) is not None:
        stored.append(item)
    return item


def _storage_name(name: str) -> str:
    """A name storage takes for any name a person gave their file (kept as the item's title):
    its stem slugified, and a short extension. Storage refuses names with nothing valid
    left in them (an emoji) or too long for the path with their suffixes."""
    stem, extension = os.path.splitext(name)
    stem = slugify(stem)[:60] or "upload"
    extension = re.sub(r"[^A-Za-z0-9]+", "", extension)[:10].lower()
    return f"{stem}.{extension}" if extension else stem


def _record_item(*, workspace, created_by, record: RecordSource) -> SourceItem:
    """An approved report of the same workspace, quoted as a source."""
    data = record.text.encode()
    return SourceItem(
        workspace=workspace,
        created_by=created_by,
        kind=SourceKind.RECORD,
        record_job_id=record.job_id,
        title=record.title[:300],
        content_type="text/markdown",
        size=len(data),
        sha256=_sha256(data),
        text=record.text,
        published_at=record.published,
        status=SourceStatus.READY,
        fetched_at=timezone.now(),
    )


def source_create(*, workspace, created_by, upload=None, url: str = "", title: str = "", text: str = "") -> SourceItem:
    """One source from what a caller sent: an uploaded file, a URL, or a pasted text."""
    if upload:
        return source_create_upload(
            workspace=workspace, created_by=created_by, name=upload.name or "upload",
            data=upload.read(), declared_type=getattr(upload, "content_type", "") or "",
        )
    if url:
        return source_create_url(workspace=workspace, created_by=created_by, url=url, title=title)
    return source_create_text(workspace=workspace, created_by=created_by, title=title, text=text)


@contextmanager
def _source_at(index: int):
    """Name the failing source by its place in the caller's list, as the other errors here do."""
    try:
        yield
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, fields={"sources": {str(index): exc.message}}) from exc


def sources_from_specs(
    *, workspace, created_by, specs: list[SourceSpec], record: RecordResolver | None = None
) -> list[SourceItem]:
    """Resolve a caller's source list into items of `workspace`, in order. Internal records
    (earlier reports) need `record`, the resolver of the app that owns them.

    However many sources a caller sends, the existing ones are read in one query and the new
    ones written in one insert (a record's resolver reads its report on its own)."""
    wanted = {spec.item_id for spec in specs if spec.item_id is not None}
    existing = SourceItem.objects.filter(workspace=workspace).in_bulk(wanted) if wanted else {}
    items: list[SourceItem] = []
    new: list[SourceItem] = []
    with uploads_discarded_on_error():
        for index, spec in enumerate(specs):
            if spec.item_id is not None:
                item = existing.get(spec.item_id)
                if item is None:
                    raise ValidationFailed(
                        f"Source {spec.item_id} does not exist in this workspace.",
                        fields={"sources": {str(index): "Unknown source id."}},
                    )
                items.append(item)
                continue
            if not (spec.url or spec.text or spec.upload_name or spec.record_job_id):
                raise ValidationFailed(
                    "Each source needs a url, a text, or a source id.",
                    fields={"sources": {str(index): "Empty source."}},
                )
            with _source_at(index):
                if spec.url:
                    item = _url_item(workspace=workspace, created_by=created_by, url=spec.url, title=spec.title)
                elif spec.text:
                    item = _text_item(workspace=workspace, created_by=created_by, title=spec.title, text=spec.text)
                elif spec.upload_name:
                    item = _upload_item(
                        workspace=workspace, created_by=created_by, name=spec.upload_name, data=spec.upload_data,
                        declared_type=spec.upload_type,
                    )
                else:
                    if record is None:
                        raise ValidationFailed("Earlier reports cannot be used as sources here.")
                    resolved = record(workspace=workspace, public_id=spec.record_job_id)
                    item = _record_item(workspace=workspace, created_by=created_by, record=resolved)
            items.append(item)
            new.append(item)
        SourceItem.objects.bulk_create(new)  # sets each new item's pk, in place
    return items


def manifest_create(*, workspace, items: list[SourceItem]) -> SourceManifest:
    """A manifest of `items` (each once, in order). The manifest comes back with its entries
    in hand, as `manifest.entries.all()` would read them: whoever answers with them (a
    submit's response) reads nothing back."""
    manifest = SourceManifest.objects.create(workspace=workspace)
    entries = ManifestEntry.objects.bulk_create(
        ManifestEntry(manifest=manifest, item=item, position=position)
        for position, item in enumerate(dict.fromkeys(items), start=1)
    )
    # What prefetch_related leaves behind, filled from the rows just written: the related
    # manager's queryset with its results in hand (so .all() and .count() read nothing).
    in_hand = manifest.entries.all()
    in_hand._result_cache, in_hand._prefetch_done = entries, True
    manifest._prefetched_objects_cache = {"entries": in_hand}
    return manifest


def manifest_refreshed(*, manifest: SourceManifest, created_by, failed_only: bool = False) -> SourceManifest:
    """A copy of `manifest` whose URLs will be fetched anew (only those that failed, with
    `failed_only`); everything else is reused. The items of the old manifest are not touched."""
    items = []
    for entry in manifest.entries.select_related("item"):
        item = entry.item
        if item.kind == SourceKind.URL and (not failed_only or item.status == SourceStatus.FAILED):
            item = SourceItem.objects.create(
                workspace=item.workspace, created_by=created_by, kind=SourceKind.URL, url=item.url, title=item.title
            )
        items.append(item)
    return manifest_create(workspace=manifest.workspace, items=items)


def manifest_freeze(*, manifest: SourceManifest) -> None:
    SourceManifest.objects.filter(pk=manifest.pk, frozen_at__isnull=True).update(frozen_at=timezone.now())


def source_ingest(*, item: SourceItem) -> SourceItem:
    """Fetch and extract a pending URL source. Records a readable error instead of raising."""
    if item.status != SourceStatus.PENDING or item.kind != SourceKind.URL:
        return item
    try:
        document = fetch_url(
            item.url,
            max_bytes=settings.SOURCE_MAX_BYTES,
            timeout=settings.SOURCE_FETCH_TIMEOUT,
            max_redirects=settings.SOURCE_MAX_REDIRECTS,
            allowed_hosts=settings.SOURCE_ALLOWED_INTERNAL_HOSTS,
        )
        extracted = extract_text(
            data=document.body, content_type=document.content_type, charset=document.charset
        )
    except SourceFetchError as exc:
        return _source_failed(item=item, error=exc.message, transient=exc.transient)
    except ExtractionError as exc:
        return _source_failed(item=item, error=exc.message, transient=False)
    SourceItem.objects.filter(pk=item.pk, status=SourceStatus.PENDING).update(
        title=(item.title or extracted.title or document.url)[:300],
        content_type=extracted.content_type,
        size=len(document.body),
        sha256=_sha256(document.body),
        text=extracted.text,
        published_at=extracted.published,
        fetched_at=timezone.now(),
        status=SourceStatus.READY,
        error="",
    )
    item.refresh_from_db()
    return item


def _source_failed(*, item: SourceItem, error: str, transient: bool) -> SourceItem:
    SourceItem.objects.filter(pk=item.pk, status=SourceStatus.PENDING).update(
        status=SourceStatus.FAILED, error=error, error_transient=transient, fetched_at=timezone.now()
    )
    item.refresh_from_db()
    return item
