"""Source services: uploads, pasted text, URLs and internal records become source items."""

import hashlib

import pytest

from reportdesk.errors import ValidationFailed
from sources.services import (
    SourceSpec,
    source_create_text,
    source_create_upload,
    sources_from_specs,
)
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_an_upload_is_stored_with_its_text_type_size_and_sha256():
    workspace = WorkspaceFactory()
    data = b"<html><head><title>Plant list</title></head><body><p>Hydromet refining lags.</p></body></html>"
    item = source_create_upload(workspace=workspace, created_by=None, name="plants.html", data=data)
    assert item.status == "ready" and item.kind == "upload"
    assert item.title == "Plant list" and "Hydromet refining lags." in item.text
    assert item.content_type == "text/html" and item.size == len(data)
    assert item.sha256 == hashlib.sha256(data).hexdigest()
    assert item.file.read() == data


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("big.txt", b"x" * 2048, "larger than"),
        ("empty.txt", b"", "no text"),
        ("broken.pdf", b"%PDF-1.4 not really", "PDF"),
        ("image.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "type"),
    ],
)
def test_bad_uploads_are_refused_with_a_clear_message(settings, name, data, message):
    settings.SOURCE_MAX_BYTES = 1024
    with pytest.raises(ValidationFailed) as exc:
        source_create_upload(workspace=WorkspaceFactory(), created_by=None, name=name, data=data)
    assert message.lower() in exc.value.message.lower()
    assert "file" in exc.value.fields


def test_pasted_text_must_not_be_empty():
    with pytest.raises(ValidationFailed):
        source_create_text(workspace=WorkspaceFactory(), created_by=None, title="", text="  \n ")


def test_internal_records_need_the_resolver_of_the_app_that_owns_reports():
    workspace = WorkspaceFactory()
    with pytest.raises(ValidationFailed) as exc:
        sources_from_specs(workspace=workspace, created_by=None, specs=[SourceSpec(record_job_id="abc123")])
    assert exc.value.fields == {"sources": {"0": "Earlier reports cannot be used as sources here."}}


def test_a_source_id_from_another_workspace_is_unknown():
    from tests.factories import SourceItemFactory

    item = SourceItemFactory()
    with pytest.raises(ValidationFailed):
        sources_from_specs(workspace=WorkspaceFactory(), created_by=None, specs=[SourceSpec(item_id=item.pk)])
