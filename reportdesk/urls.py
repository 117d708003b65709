"""URL routes: the admin (operator console and review queue), the REST API, webhooks, health,
single sign-on and the Prometheus endpoint."""

from django.contrib import admin
from django.urls import include, path, re_path

from jobs.views import openai_webhook
from reportdesk.api.exceptions import api_not_found
from reportdesk.api.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("webhooks/openai/", openai_webhook, name="openai-webhook"),
    # Before the API's own routes, whose last one answers every unknown /api/v1/ path.
    path("api/v1/", include("notifications.urls")),
    path("api/v1/", include("reportdesk.api.urls")),
    # Anything else under /api/ is a JSON 404 too, even with DEBUG on (encoded newlines too).
    re_path(r"^api/[\s\S]*$", api_not_found),
    path("healthz", healthz, name="healthz"),
    # The apps above jobs (ops: /metrics; accounts: single sign-on), by name: nothing below
    # them imports them.
    path("", include("ops.urls")),
    path("", include("accounts.urls")),
]

# Errors under /api/ answer in the API's JSON error shape; elsewhere, Django's pages.
handler400 = "reportdesk.api.exceptions.handler400"
handler404 = "reportdesk.api.exceptions.handler404"
handler500 = "reportdesk.api.exceptions.handler500"
# In the admin, a refusal is a page in the admin's frame that says why.
handler403 = "console.views.permission_denied"
