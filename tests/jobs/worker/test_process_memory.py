"""What a fresh process loads before it does any work: libraries only some paths need (PDF and
HTML extraction, the export formats, Markdown rendering, single sign-on, the OpenAI SDK for
webhooks) cost every worker and web process their memory if they load at start (issue 15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[3]

# Loaded by the path that needs them, never at start.
EXTRACTION = {"pypdf", "bs4", "soupsieve", "lxml", "PIL", "fontTools"}
EXPORTS = {"fpdf", "docx", "nh3"}
# Markdown renders drafts; requests (with charset_normalizer) is mozilla-django-oidc's client.
RENDERING_AND_SSO = {"markdown", "requests", "charset_normalizer"}

# One process plays both parts: a worker after django.setup() and its entry points, then a web
# process once it has loaded the URLconf (as its first request does).
SCRIPT = """
import json, sys
import django
django.setup()
import jobs.tasks, jobs.worker.batch, notifications.tasks
from jobs.models import ReportJob
from notifications import events
events.job_page_link(ReportJob(public_id="abc123")), events.admin_link("admin:index")  # a mail's links
worker = sorted({name.split(".")[0] for name in sys.modules})
worker_modules = sorted(sys.modules)
from django.urls import get_resolver
get_resolver().url_patterns
web = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"worker": worker, "web": web, "worker_modules": worker_modules}))
"""


@pytest.fixture(scope="module")
def loaded() -> dict[str, set[str]]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "reportdesk.settings"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return {part: set(names) for part, names in json.loads(result.stdout.splitlines()[-1]).items()}


def test_a_worker_starts_without_the_libraries_of_extraction_exports_rendering_or_sso(loaded):
    assert sorted(loaded["worker"] & (EXTRACTION | EXPORTS | RENDERING_AND_SSO)) == []


def test_a_worker_builds_admin_links_without_loading_the_api(loaded):
    # Reversing through the whole URLconf would import the API's views and their schema.
    assert {"reportdesk.urls", "reportdesk.api.views"}.isdisjoint(loaded["worker_modules"])


def test_a_web_process_serves_its_urls_without_the_openai_sdk_extraction_or_exports(loaded):
    # Django REST framework imports Markdown and requests itself when they are installed.
    assert sorted(loaded["web"] & (EXTRACTION | EXPORTS | {"openai"})) == []
