"""Admin for reviews: the record of who claimed and decided what (decisions go through
reviews.services, never through these forms)."""

from django.contrib import admin

from reportdesk.admin import WorkspaceScopedAdmin

from .models import Review, ReviewComment


class ReviewCommentInline(admin.TabularInline):
    model = ReviewComment
    extra = 0
    fields = ["author", "section", "body", "created_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Review)
class ReviewAdmin(WorkspaceScopedAdmin):
    workspace_path = "job__workspace_id"
    list_display = ["job", "reviewer", "decision", "claimed_at", "decided_at"]
    list_filter = ["decision"]
    list_select_related = ["job", "reviewer"]
    search_fields = ["job__public_id", "reviewer__username"]
    inlines = [ReviewCommentInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
