"""JobOut renders jobs by hand for speed; its output must stay what its declared fields give."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework import serializers
from rest_framework.test import APIRequestFactory

from jobs.models import ReportJob
from reportdesk.api.serializers import JobOut
from sources.selectors import manifest_entries_prefetch, manifest_sources
from tests.factories import SourceItemFactory, SourceManifestFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("status", ["queued", "running", "needs_review", "failed", "completed", "canceled"])
def test_the_hand_written_output_equals_the_declared_fields(make_job, requester, ws, status):
    manifest = SourceManifestFactory(workspace=ws, items=[SourceItemFactory(workspace=ws, published_at=dt.date(2025, 3, 1)), SourceItemFactory(workspace=ws)])
    earlier = make_job("completed")
    job = make_job(status, source_manifest=manifest, rerun_of=earlier if status != "queued" else None, archived_at=timezone.now() if status == "completed" else None)
    ReportJob.objects.filter(pk=job.pk).update(
        cost_usd=Decimal("0.0125"), input_tokens=1200, runtime_seconds=12.5, provider_response_id="resp_1",
        last_checked_at=timezone.now() - dt.timedelta(seconds=30), started_at=timezone.now(), model="gpt-5.2",
    )
    job = (
        ReportJob.objects.select_related("workspace", "template", "requested_by", "rerun_of", "source_manifest")
        .prefetch_related(manifest_entries_prefetch("source_manifest__entries"))
        .get(pk=job.pk)
    )
    request = APIRequestFactory().get("/")
    request.user = requester
    out = JobOut(job, context={"request": request})

    assert out.data == serializers.Serializer.to_representation(out, job)
    assert out.data["sources"][0]["published_at"] == "2025-03-01" and out.data["cost"]["usd"] == "0.012500"
    # The list and detail hand their sources in, read once as plain rows: the same output.
    in_hand = JobOut(job, context={"request": request, "sources": manifest_sources([job.source_manifest_id])})
    assert in_hand.data == out.data


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/St_Johns"])
@pytest.mark.parametrize(
    "value",
    [dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.timezone.utc), dt.datetime(2026, 11, 1, 12, 0, 0, 123456, tzinfo=dt.timezone.utc)],
)
def test_datetimes_are_written_as_drf_writes_them(zone, value):
    from reportdesk.api.serializers import _datetime_out

    with timezone.override(zone):
        assert _datetime_out(value) == serializers.DateTimeField().to_representation(value)
    assert _datetime_out(None) is None
