"""The OpenAPI document: valid, complete, served with Swagger UI from our own static files,
and true — schemathesis drives every operation against a seeded database and finds no
server error and no response that breaks the document."""

from __future__ import annotations

import datetime as dt
import json
import re
import zlib

import pytest
import schemathesis
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.utils import timezone
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from reportdesk.models import Role
from tests.factories import SourceItemFactory, member

from .conftest import add_draft

pytestmark = pytest.mark.django_db


def _document() -> dict:
    response = APIClient().get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def test_the_schema_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_every_operation_documents_its_request_its_response_and_its_errors():
    document = _document()
    operations = [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()]
    assert len(operations) >= 20
    for path, method, op in operations:
        label = f"{method.upper()} {path}"
        codes = set(op["responses"])
        assert any(code.startswith("2") for code in codes), label
        assert {"401", "429"} <= codes, label
        assert op.get("summary"), label
        for code in codes - {"200", "201", "204"}:
            assert op["responses"][code]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorOut"}, label
        if "{id}" in path:
            assert "404" in codes, label
        if method in ("post", "patch"):
            assert {"400", "403", "413", "415"} <= codes, label
            if not path.endswith(("/claim/",)):
                assert op["requestBody"]["content"], label
    job = document["components"]["schemas"]["JobOut"]["properties"]
    assert {"id", "state", "sources", "cost", "retryable", "version"} <= set(job)


def test_the_contracts_paths_are_all_there():
    paths = set(_document()["paths"])
    for path in [
        "/api/v1/templates/", "/api/v1/sources/", "/api/v1/jobs/", "/api/v1/jobs/{id}/",
        "/api/v1/jobs/{id}/cancel/", "/api/v1/jobs/{id}/retry/", "/api/v1/jobs/{id}/archive/",
        "/api/v1/jobs/{id}/unarchive/", "/api/v1/jobs/{id}/expire/", "/api/v1/jobs/{id}/rerun/",
        "/api/v1/jobs/{id}/revise/", "/api/v1/jobs/{id}/review/", "/api/v1/jobs/{id}/events/",
        "/api/v1/jobs/{id}/report/", "/api/v1/reviews/queue/", "/api/v1/metrics/",
    ]:  # fmt: skip
        assert path in paths, path


def test_swagger_ui_is_served_from_our_own_static_files():
    response = APIClient().get("/api/v1/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    # Nothing loaded from elsewhere (the page's CSRF token is random text, so no bare "cdn").
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert "cdn." not in page.lower()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css")


# --- schemathesis ------------------------------------------------------------------------

EXAMPLES_PER_OPERATION = 25
STATES = ["queued", "preparing", "running", "needs_review", "completed", "failed", "canceled", "expired", "rejected"]


@pytest.fixture
def seeded(ws, make_job, requester, reviewer, settings):
    """A workspace with a job in every state (drafts where there can be), sources, and an
    operator's token: the caller schemathesis acts as."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "100000/minute", "submit": "100000/minute"},
    }
    operator = member(ws, Role.OPERATOR, "olga")
    jobs = [make_job(state, draft=state in ("needs_review", "completed", "rejected")) for state in STATES]
    jobs.append(make_job("failed", failure_class="policy_block"))
    jobs.append(make_job("completed", draft=True, archived_at=timezone.now()))
    sources = [SourceItemFactory(workspace=ws) for _ in range(3)]
    add_draft(jobs[4])  # a second version
    token = Token.objects.create(user=operator)
    return {"token": token.key, "jobs": [j.public_id for j in jobs], "sources": [s.pk for s in sources]}


# Each operation runs the explicit examples, the coverage phase (boundary and invalid values
# for every parameter and body field, derived from the document: missing required fields,
# wrong types, out-of-range numbers, unknown enum values) and the fuzzing phase (Hypothesis,
# EXAMPLES_PER_OPERATION cases), with valid and invalid data alike. Stateful runs are off:
# one in-process transaction per test cannot hold a chain of requests apart.
SCHEMATHESIS_CONFIG = {
    "seed": 4242,
    "generation": {"mode": "all"},
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
        "stateful": {"enabled": False},
    },
}


def _load_schema():
    """The document /api/v1/schema/ serves, bound to the WSGI app: schemathesis calls the app
    in-process, so requests run inside the test's transaction and see the seeded rows."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    from reportdesk.wsgi import application

    document = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))
    loaded = schemathesis.openapi.from_dict(document, config=schemathesis.config.SchemathesisConfig.from_dict(SCHEMATHESIS_CONFIG))
    loaded.app = application
    return loaded


schema = _load_schema()


def test_schemathesis_runs_the_coverage_and_fuzzing_phases_with_invalid_data_too():
    from schemathesis.generation.hypothesis.builder import HypothesisTestMode
    from schemathesis.generation.modes import GenerationMode
    from schemathesis.pytest._test_builder import enabled_modes

    operation = next(iter(schema.get_all_operations())).ok()
    assert {HypothesisTestMode.COVERAGE, HypothesisTestMode.FUZZING} <= set(enabled_modes(schema.config.phases_for(operation=operation)))
    assert GenerationMode.NEGATIVE in schema.config.generation_for(operation=operation, phase="coverage").modes


@pytest.fixture
def in_process_wsgi():
    """Keep the test's database connection open across WSGI requests, as Django's test client
    does: the app closes "old" connections when a request starts and finishes."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _pick(generated, known: list):
    """Most cases name a seeded object (so operations get past the 404); one in four keeps the
    generated value, for the not-found paths."""
    digest = zlib.crc32(repr(generated).encode())
    return generated if digest % 4 == 0 else known[digest % len(known)]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_api_keeps_its_schema(case, seeded, in_process_wsgi):
    if "id" in (case.path_parameters or {}):
        known = seeded["sources"] if case.path.startswith("/api/v1/sources/") else seeded["jobs"]
        case.path_parameters["id"] = _pick(case.path_parameters["id"], known)
    if isinstance(case.body, dict) and zlib.crc32(repr(case.body).encode()) % 4:
        # Most bodies name the seeded workspace and template and a deadline still ahead, so
        # that submits and edits get past validation and their success responses are checked.
        if "workspace" in case.body:
            case.body["workspace"] = "acme"
        if "template" in case.body:
            case.body["template"] = "brief"
        if "deadline" in case.body:
            case.body["deadline"] = (timezone.now() + dt.timedelta(days=2)).isoformat()
    case.call_and_validate(
        headers={"Authorization": f"Token {seeded['token']}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_headers_conformance,
            response_schema_conformance,
        ],
    )


@pytest.mark.parametrize("method", ["options", "post", "delete"])
def test_the_docs_page_answers_other_methods_with_405_not_a_500(method):
    client = APIClient()
    client.raise_request_exception = False

    response = getattr(client, method)("/api/v1/docs/")

    assert response.status_code == 405
    assert client.head("/api/v1/docs/").status_code == 200
