"""Admin for jobs and what hangs off them. Status fields are read-only here: state changes
only through jobs.services (the operator console's actions and buttons)."""

from django.contrib import admin

from reportdesk.admin import WorkspaceScopedAdmin

from .models import (
    Artifact,
    IdempotencyKey,
    JobAttempt,
    JobEvent,
    LocalResponse,
    ProviderCall,
    ReportJob,
    ReportTemplate,
    WebhookDelivery,
)


class ReadOnlyAdminMixin:
    """Nothing is added, changed or deleted through these pages."""

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ReportTemplate)
class ReportTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "report_type", "model", "mode", "review_required", "max_runtime_minutes", "is_active"]
    list_filter = ["report_type", "mode", "review_required", "is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


class JobAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = JobAttempt
    extra = 0
    fields = ["number", "reason", "status", "version", "provider_retries", "created_at", "started_at", "finished_at"]


class JobEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = JobEvent
    extra = 0
    fields = ["at", "actor_kind", "actor_name", "action", "from_status", "to_status", "reason"]


@admin.register(ReportJob)
class ReportJobAdmin(WorkspaceScopedAdmin):
    list_display = ["public_id", "topic", "workspace", "requested_by", "template", "status", "review_state", "failure_class", "created_at"]
    list_filter = ["status", "review_state", "failure_class", "template", "workspace"]
    search_fields = ["public_id", "provider_response_id", "topic", "requested_by__username"]
    list_select_related = ["workspace", "requested_by", "template"]
    inlines = [JobAttemptInline, JobEventInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(JobEvent)
class JobEventAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    workspace_path = "job__workspace_id"
    list_display = ["at", "job", "actor_kind", "actor_name", "action", "from_status", "to_status", "reason"]
    list_filter = ["action", "actor_kind"]
    search_fields = ["job__public_id", "actor_name", "reason"]
    list_select_related = ["job"]


@admin.register(JobAttempt)
class JobAttemptAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    workspace_path = "job__workspace_id"
    list_display = ["job", "number", "reason", "status", "version", "created_at"]
    list_select_related = ["job"]


@admin.register(ProviderCall)
class ProviderCallAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    workspace_path = "job__workspace_id"
    list_display = ["provider_response_id", "job", "step", "provider", "model", "status", "polls", "cost_usd", "created_at"]
    list_filter = ["provider", "status"]
    search_fields = ["provider_response_id", "job__public_id"]
    list_select_related = ["job"]


@admin.register(Artifact)
class ArtifactAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    workspace_path = "job__workspace_id"
    list_display = ["job", "attempt", "kind", "created_at"]
    list_filter = ["kind"]
    list_select_related = ["job", "attempt"]


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    workspace_path = "job__workspace_id"
    list_display = ["key", "user", "job", "created_at"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["webhook_id", "event_type", "response_id", "received_at"]


@admin.register(LocalResponse)
class LocalResponseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "model", "created_at", "completes_at", "cancelled_at", "fault"]
