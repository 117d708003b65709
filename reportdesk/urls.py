"""URL routes: the admin (operator console and review queue), the REST API, webhooks, health."""

from django.contrib import admin
from django.urls import include, path, re_path

from jobs.views import openai_webhook
from reportdesk.api.exceptions import api_not_found
from reportdesk.api.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("webhooks/openai/", openai_webhook, name="openai-webhook"),
    path("api/v1/", include("reportdesk.api.urls")),
    # Anything else under /api/ is a JSON 404 too, even with DEBUG on (encoded newlines too).
    re_path(r"^api/[\s\S]*$", api_not_found),
    path("healthz", healthz, name="healthz"),
]

# Errors under /api/ answer in the API's JSON error shape; elsewhere, Django's pages.
handler404 = "reportdesk.api.exceptions.handler404"
handler500 = "reportdesk.api.exceptions.handler500"
