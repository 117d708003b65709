"""OpenAPI helpers: the error responses every operation documents.

`@extend_schema(responses=responses(JobOut, 404, 409))` lists an operation's own outcomes;
`ApiAutoSchema` adds the ones that any authenticated call can meet (401, 429, and 503 while
the database is unavailable) and any call
with a body can meet (400, 403 for a missing CSRF token under session auth, 413, 415), so
the document names every status the API can answer with.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework.permissions import AllowAny

from .serializers import ErrorOut

ERROR_DESCRIPTIONS = {
    400: "Invalid input (malformed JSON, wrong types, unknown template, empty topic, bad URL, …).",
    401: "No credentials, or bad ones. Send `Authorization: Token <key>` or use a session.",
    403: "Your role lacks the permission; the message names what is missing.",
    404: "No such object among those you can see (other workspaces' objects are 404 too).",
    409: "Not allowed in the job's current state; the message lists the actions allowed now.",
    413: "Too large (uploads and pasted text are limited to SOURCE_MAX_BYTES).",
    415: "Unsupported Content-Type for this operation.",
    429: "Throttled; the Retry-After header says how many seconds to wait.",
    503: "The database is unavailable for a moment; the Retry-After header says when to try again.",
}


def error(code: int) -> OpenApiResponse:
    return OpenApiResponse(ErrorOut, description=ERROR_DESCRIPTIONS[code])


def responses(ok, *codes: int, ok_status: int = 200, ok_description: str = "") -> dict:
    """An operation's responses: `ok` under `ok_status` (a serializer, or a dict of several
    keyed by (status, media type)), and the error shape under each code in `codes`."""
    result = dict(ok) if isinstance(ok, dict) else {ok_status: OpenApiResponse(ok, description=ok_description)}
    result.update({code: error(code) for code in codes})
    return result


class ApiAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        bodies = super()._get_response_bodies(direction)
        if direction != "response":
            return bodies
        codes = []
        if not any(isinstance(p, AllowAny) for p in self.view.get_permissions()):
            codes += [401, 429, 503]
        if self.method in ("POST", "PUT", "PATCH"):
            codes += [400, 403, 413, 415]
        for code in codes:
            bodies.setdefault(str(code), self._get_response_for_code(error(code), str(code), direction=direction))
        return dict(sorted(bodies.items()))
