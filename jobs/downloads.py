"""A report export (jobs.exports.ExportFile) as an HTTP download, the same for the admin's
buttons and the API's `report/?format=`."""

from __future__ import annotations

from django.http import HttpResponse

from .exports import ExportFile

# The standalone HTML holds sanitised model output; the sandbox keeps even a sanitiser miss
# from running as us when the file is opened from the server.
HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; sandbox"


def export_response(export: ExportFile) -> HttpResponse:
    response = HttpResponse(export.content, content_type=export.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    if export.content_type.startswith("text/html"):
        response["Content-Security-Policy"] = HTML_CSP
    return response
