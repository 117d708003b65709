"""POST /api/v1/sources/: uploads, URLs and pasted text; then use them in a job by id."""

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from sources.models import SourceItem

from .conftest import client_for, error_of

pytestmark = pytest.mark.django_db

SOURCE_FIELDS = {"id", "workspace", "kind", "title", "url", "status", "error", "content_type", "size", "published_at", "created_at"}


def test_upload_a_markdown_file(requester):
    upload = SimpleUploadedFile("notes.md", b"# Recycling notes\n\nCapacity grew 40% in 2025.\n", content_type="text/markdown")
    response = client_for(requester).post("/api/v1/sources/", {"workspace": "acme", "file": upload}, format="multipart")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == SOURCE_FIELDS
    assert (body["kind"], body["status"], body["workspace"]) == ("upload", "ready", "acme")
    assert body["title"] == "Recycling notes" and body["size"] == 46
    assert "Capacity grew" in SourceItem.objects.get(pk=body["id"]).text


@pytest.mark.parametrize("name", ["📄", "(!)", ".md", "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.aa.bb.cc.dd.ee.ff.gg.hh.ii.jj.kk.md", "Q3 plan (final) — v2.MARKDOWN"])
def test_any_file_name_is_stored(requester, name):
    upload = SimpleUploadedFile(name, b"Capacity grew 40% in 2025.\n", content_type="text/plain")

    response = client_for(requester).post("/api/v1/sources/", {"workspace": "acme", "file": upload}, format="multipart")

    assert response.status_code == 201, response.content[:300]
    item = SourceItem.objects.get(pk=response.json()["id"])
    assert item.title  # from the person's name for it; storage has a safe one
    assert item.file.read() == b"Capacity grew 40% in 2025.\n"


def test_a_multipart_body_with_too_many_fields_is_a_400_in_the_apis_shape(requester):
    boundary = "XyZ"
    parts = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nx\r\n' for i in range(1200))
    response = client_for(requester).generic(
        "POST", "/api/v1/sources/", (parts + f"--{boundary}--\r\n").encode(), content_type=f"multipart/form-data; boundary={boundary}"
    )

    assert response.status_code == 400 and response["Content-Type"].startswith("application/json")
    assert error_of(response)["code"] == "parse_error"
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" not in error_of(response)["message"]  # Django's words name its settings


def test_a_host_the_server_does_not_serve_is_a_400_that_names_no_setting(client, settings):
    settings.ALLOWED_HOSTS, settings.DEBUG = ["reportdesk.example"], False
    client.raise_request_exception = False

    response = client.get("/api/v1/jobs/", HTTP_HOST="evil.example")

    assert response.status_code == 400 and error_of(response)["code"] == "parse_error"
    assert "ALLOWED_HOSTS" not in response.content.decode() and "evil.example" not in response.content.decode()


def test_an_oversized_upload_is_413(requester, settings):
    settings.SOURCE_MAX_BYTES = 1000
    upload = SimpleUploadedFile("big.txt", b"x" * 2000, content_type="text/plain")
    response = client_for(requester).post("/api/v1/sources/", {"workspace": "acme", "file": upload}, format="multipart")
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"
    assert not SourceItem.objects.exists()


def test_a_body_over_the_servers_limit_is_413_before_it_is_read(requester, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 5000
    response = client_for(requester).post("/api/v1/sources/", {"workspace": "acme", "text": "y" * 6000}, format="json")
    assert response.status_code == 413 and "at most 5000" in error_of(response)["message"]


def test_oversized_pasted_text_is_413(requester, settings, template):
    settings.SOURCE_MAX_BYTES = 100
    client = client_for(requester)
    response = client.post("/api/v1/sources/", {"workspace": "acme", "text": "y" * 200}, format="json")
    assert response.status_code == 413
    inline = client.post(
        "/api/v1/jobs/", {"workspace": "acme", "template": "brief", "topic": "t", "sources": [{"text": "y" * 200}]}, format="json"
    )
    assert inline.status_code == 413


def test_an_unreadable_upload_is_400(requester):
    upload = SimpleUploadedFile("image.png", b"\x89PNG\r\n\x1a\n" + bytes(200), content_type="image/png")
    response = client_for(requester).post("/api/v1/sources/", {"workspace": "acme", "file": upload}, format="multipart")
    assert response.status_code == 400 and "file" in error_of(response)["fields"]


def test_a_url_source_is_pending_until_a_job_fetches_it(requester):
    response = client_for(requester).post("/api/v1/sources/", {"workspace": "acme", "url": "https://example.com/report"}, format="json")
    assert response.status_code == 201
    assert (response.json()["kind"], response.json()["status"]) == ("url", "pending")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "http://127.0.0.1:8000/admin/", "http://localhost/", "https://user:pw@example.com/", "not a url", "http://xn--/"]
)
def test_unsafe_or_bad_urls_are_400(requester, url):
    response = client_for(requester).post("/api/v1/sources/", {"workspace": "acme", "url": url}, format="json")
    assert response.status_code == 400
    assert "url" in error_of(response)["fields"]


@pytest.mark.parametrize(
    "body",
    [
        {"workspace": "acme"},
        {"workspace": "acme", "url": "https://example.com", "text": "and text"},
        {"workspace": "acme", "text": ""},
        {"workspace": "acme", "text": 5},
        {"workspace": "acme", "file": "not-a-file"},
    ],
)
def test_exactly_one_kind_of_source(requester, body):
    response = client_for(requester).post("/api/v1/sources/", body, format="json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid"


def test_pasted_text_then_used_by_id(requester, template):
    client = client_for(requester)
    source = client.post("/api/v1/sources/", {"workspace": "acme", "title": "Memo", "text": "Capacity grew 40%."}, format="json").json()
    assert client.get(f"/api/v1/sources/{source['id']}/").json()["title"] == "Memo"

    job = client.post(
        "/api/v1/jobs/", {"workspace": "acme", "template": "brief", "topic": "Recycling", "sources": [source["id"]]}, format="json"
    )
    assert job.status_code == 201
    assert [(s["id"], s["sid"]) for s in job.json()["sources"]] == [(source["id"], "S1")]


ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4


@pytest.mark.parametrize(
    "name, data, content_type, kind",
    [
        ("notes.md", bytes((i * 7919 + 13) % 256 for i in range(4096)), "text/markdown", "binary data"),
        ("page.html", ELF, "text/html", "an executable"),
        ("page.html", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + bytes(500), "text/html", "a Windows executable"),
        ("notes.txt", b"PK\x03\x04" + bytes(300), "text/plain", "a ZIP archive"),
    ],
    ids=["random-bytes-as-md", "elf-as-html", "exe-as-html", "zip-as-txt"],
)
def test_an_upload_is_sniffed_for_what_it_is(requester, name, data, content_type, kind):
    upload = SimpleUploadedFile(name, data, content_type=content_type)
    response = client_for(requester).post("/api/v1/sources/", {"workspace": "acme", "file": upload}, format="multipart")
    assert response.status_code == 400
    assert kind in error_of(response)["fields"]["file"]


def test_text_that_happens_to_start_like_a_binary_is_still_text(requester):
    upload = SimpleUploadedFile("mz.md", b"MZ is the signature of DOS executables; this note is text.\n", content_type="text/markdown")
    response = client_for(requester).post("/api/v1/sources/", {"workspace": "acme", "file": upload}, format="multipart")
    assert response.status_code == 201 and response.json()["status"] == "ready"


def test_a_deeply_nested_html_upload_is_answered_within_seconds(requester):
    html = b"<html><body>" + b"<div>" * 20_000 + b"Capacity grew 40% in 2025."  # 100 KB of 10 MB allowed
    upload = SimpleUploadedFile("nested.html", html, content_type="text/html")

    began = time.monotonic()
    response = client_for(requester).post("/api/v1/sources/", {"workspace": "acme", "file": upload}, format="multipart")
    elapsed = time.monotonic() - began

    assert response.status_code == 201, response.json()
    assert SourceItem.objects.get(pk=response.json()["id"]).text == "Capacity grew 40% in 2025."
    # Under a second on a laptop; a cost in the square of the depth took over fifteen.
    assert elapsed < 5, f"{elapsed:.1f} s to take a {len(html)} byte upload"
