"""Routes of the notifications API, included under /api/v1/ by reportdesk.urls (by name, so
nothing below this app imports it)."""

from rest_framework.routers import SimpleRouter

from .api import WebhookEndpointViewSet

app_name = "notifications-api"

router = SimpleRouter()
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")

urlpatterns = router.urls
