"""URL routes: the admin (operator console and review queue), the REST API, webhooks, health."""

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
