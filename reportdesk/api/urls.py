"""Routes under /api/v1/ (included from reportdesk.urls)."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from . import views
from .exceptions import api_not_found

app_name = "api"


class DocsView(SpectacularSwaggerView):
    """The API's docs page. It is a page, not an endpoint: DRF's OPTIONS metadata cannot be
    rendered by its HTML renderer (a 500), so it answers GET and HEAD only."""

    http_method_names = ["get", "head"]


router = SimpleRouter()
router.register("templates", views.TemplateViewSet, basename="template")
router.register("sources", views.SourceViewSet, basename="source")
router.register("jobs", views.JobViewSet, basename="job")

urlpatterns = [
    *router.urls,
    path("reviews/queue/", views.ReviewQueueView.as_view(), name="review-queue"),
    path("metrics/", views.MetricsView.as_view(), name="metrics"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", DocsView.as_view(url_name="api:schema"), name="docs"),
    # Last: anything else under /api/v1/ is a JSON 404, even with DEBUG on.
    # [\s\S], not ".": a path may hold an encoded newline, which "." does not match.
    re_path(r"^[\s\S]*$", api_not_found),
]
