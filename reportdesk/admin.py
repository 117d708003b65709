"""Admin for workspaces and memberships, and the scoping every reportdesk admin shares."""

from django.contrib import admin

from .models import Membership, Workspace


def member_workspace_ids(request) -> list[int] | None:
    """The workspaces the signed-in person may see in the admin (None: all of them)."""
    from jobs.policy import user_roles

    if request.user.is_superuser:
        return None
    return list(user_roles(request.user))


class WorkspaceScopedAdmin(admin.ModelAdmin):
    """Staff see only the rows of the workspaces they belong to, unless superuser.

    `workspace_path` is the lookup from the model to its workspace id.
    """

    workspace_path = "workspace_id"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        ids = member_workspace_ids(request)
        return qs if ids is None else qs.filter(**{f"{self.workspace_path}__in": ids})


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Workspace)
class WorkspaceAdmin(WorkspaceScopedAdmin):
    workspace_path = "id"
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(WorkspaceScopedAdmin):
    list_display = ["user", "workspace", "role", "created_at"]
    list_filter = ["role", "workspace"]
    search_fields = ["user__username", "workspace__slug"]
    list_select_related = ["user", "workspace"]
    autocomplete_fields = ["user"]
