"""reportdesk's admin site: its name on every page, an index that lists what the signed-in
person's role works with (jobs.policy.index_lists), and the operators' workers page."""

from django.contrib import admin
from django.urls import path

from jobs import policy

from .views import workers_view


class ConsoleSite(admin.AdminSite):
    site_header = "reportdesk"
    site_title = "reportdesk"
    index_title = "Research reports"
    # There is no public site behind the admin: no "View site" link.
    site_url = None

    def get_app_list(self, request, app_label=None):
        apps = []
        for app in super().get_app_list(request, app_label):
            models = [m for m in app["models"] if policy.index_lists(request.user, m["model"]._meta.label_lower)]
            if models:
                apps.append({**app, "models": models})
        return apps

    def each_context(self, request):
        context = super().each_context(request)
        context["operates"] = policy.operates_anywhere(request.user) if request.user.is_authenticated else False
        return context

    def get_urls(self):
        return [path("workers/", self.admin_view(workers_view), name="workers"), *super().get_urls()]
