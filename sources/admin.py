"""Admin for source items and manifests (read-mostly: sources are created by submits)."""

from django.contrib import admin

from reportdesk.admin import ScopedWorkspaceFilter, WorkspaceScopedAdmin

from .models import ManifestEntry, SourceItem, SourceManifest


@admin.register(SourceItem)
class SourceItemAdmin(WorkspaceScopedAdmin):
    list_display = ["__str__", "kind", "status", "content_type", "size", "published_at", "workspace", "created_at"]
    list_filter = ["kind", "status", ScopedWorkspaceFilter]
    search_fields = ["title", "url", "sha256"]
    list_select_related = ["workspace"]
    readonly_fields = [
        "workspace", "created_by", "kind", "url", "file", "record_job", "content_type", "size", "sha256",
        "status", "error", "error_transient", "fetched_at", "created_at",
    ]
    fields = ["title", "published_at", *readonly_fields, "text"]

    def get_readonly_fields(self, request, obj=None):
        # Once a report was written from it, the item is evidence: its text is what the model
        # read and what citations are checked against, and its title and date what the report
        # named. Changing them would rewrite the record.
        if obj is not None and ManifestEntry.objects.filter(item=obj, manifest__frozen_at__isnull=False).exists():
            return self.fields
        return self.readonly_fields

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ManifestEntryInline(admin.TabularInline):
    model = ManifestEntry
    extra = 0
    fields = ["position", "item"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(SourceManifest)
class SourceManifestAdmin(WorkspaceScopedAdmin):
    list_display = ["__str__", "workspace", "frozen_at", "created_at"]
    list_select_related = ["workspace"]
    readonly_fields = ["workspace", "frozen_at", "created_at"]
    inlines = [ManifestEntryInline]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
