"""One error shape for the whole API: `{"error": {"code", "message", "fields"}}`.

`api_exception_handler` is DRF's EXCEPTION_HANDLER: it maps reportdesk's ApplicationError
hierarchy (code, http_status, message, fields) and DRF's own exceptions in one place.
`handler404` / `handler500` give Django-level errors under /api/ the same shape, and
`api_not_found` answers unknown /api/v1/ paths even with DEBUG on.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.views import set_rollback

from reportdesk.errors import ApplicationError

log = logging.getLogger(__name__)

API_PREFIX = "/api/"


# Seconds a client is asked to wait when the database cannot serve the request.
UNAVAILABLE_RETRY_AFTER = 30


class Unavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "unavailable"
    default_detail = "The service cannot answer right now (its database is unavailable); try again shortly."


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"
    default_detail = "The request is too large."


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail) -> str | dict:
    """DRF's error detail (lists and dicts of ErrorDetail) as the contract's `fields` values:
    a sentence per field, or a dict of them for nested input (e.g. `sources` → index → …)."""
    if isinstance(detail, dict):
        return {str(key): _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        if any(isinstance(item, (dict, list)) for item in detail):
            nested = {str(i): _flatten(item) for i, item in enumerate(detail) if item}
            return nested
        return " ".join(str(item) for item in detail)
    return str(detail)


def _first_message(fields: dict, prefix: str = "") -> str:
    for key, value in fields.items():
        name = key if key == "non_field_errors" else f"{prefix}{key}"
        if isinstance(value, dict):
            return _first_message(value, prefix=f"{name}.")
        return value if key == "non_field_errors" else f"{name}: {value}"
    return ""


def _validation_error(exc: exceptions.ValidationError) -> tuple[str, dict]:
    detail = exc.detail
    if isinstance(detail, dict):
        fields = _flatten(detail)
        errors = {k: v for k, v in fields.items() if k != "non_field_errors"}
        first = _first_message(fields)
        extra = len(errors) - 1
        suffix = f" (and {extra} more field{'s' if extra != 1 else ''})" if extra > 0 else ""
        return f"Invalid input. {first}{suffix}".strip(), fields
    return _flatten(detail) or "Invalid input.", {}


def api_exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER. Returns None (→ a logged 500) only for real server faults."""
    from rest_framework.response import Response

    headers = {}
    if isinstance(exc, ApplicationError):
        http_status, code, message, fields = exc.http_status, exc.code, exc.message, exc.fields
    else:
        if isinstance(exc, Http404):
            exc = exceptions.NotFound(str(exc) if exc.args else "Not found.")
        elif isinstance(exc, DjangoPermissionDenied):
            exc = exceptions.PermissionDenied(str(exc) if exc.args else None)
        elif isinstance(exc, (OperationalError, InterfaceError)):
            # The database is down, restarting or locked: nothing to fix in the request.
            log.warning("database unavailable: %s", exc)
            exc = Unavailable()
            exc.wait = UNAVAILABLE_RETRY_AFTER
        elif isinstance(exc, RequestDataTooBig):
            exc = PayloadTooLarge(
                "The request body is larger than this server accepts; uploads are limited to "
                "SOURCE_MAX_BYTES."
            )
        elif isinstance(exc, SuspiciousOperation):  # e.g. a multipart body with too many fields or files
            log.warning("suspicious request refused: %s", exc)
            exc = exceptions.ParseError(REFUSED_REQUEST)
        if not isinstance(exc, exceptions.APIException):
            return None
        http_status, code = exc.status_code, exc.default_code
        fields = {}
        if isinstance(exc, exceptions.ValidationError):
            message, fields = _validation_error(exc)
        elif isinstance(exc.detail, (dict, list)):
            message, fields = str(exc.default_detail), _flatten(exc.detail)
        else:
            message = str(exc.detail)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = "%d" % exc.wait
        if isinstance(exc, exceptions.NotFound) and message == "Not found.":
            message = "Not found: there is no such object among those you can see."
    set_rollback()
    return Response(error_body(code, message, fields), status=http_status, headers=headers)


def _json_error(http_status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=http_status)


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """Unknown paths under /api/v1/: a JSON 404, with a hint when only the slash is missing."""
    message = f"No API endpoint at {request.path}."
    if not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            message += f" Did you mean {request.path}/ (with a trailing slash)?"
    return _json_error(404, "not_found", message)


def handler404(request, exception=None):
    if request.path.startswith(API_PREFIX):
        return _json_error(404, "not_found", f"No API endpoint at {request.path}.")
    return defaults.page_not_found(request, exception)


# Django's own message names its settings and echoes the input (a host name, a path): logged,
# never answered.
REFUSED_REQUEST = "The request was refused: it is malformed, or over this server's limits on fields, files or size."


def handler400(request, exception=None):
    """A request Django refused before any view (e.g. a multipart body over its limits)."""
    if request.path.startswith(API_PREFIX):
        return _json_error(400, "parse_error", REFUSED_REQUEST)
    return defaults.bad_request(request, exception)


def handler500(request):
    if request.path.startswith(API_PREFIX):
        return _json_error(500, "server_error", "Something went wrong on our side; it has been logged.")
    return defaults.server_error(request)
