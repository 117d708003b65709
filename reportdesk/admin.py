"""Admin for workspaces and memberships, and the scoping every reportdesk admin shares."""

from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType

from . import selectors
from .models import Membership, Workspace
from .services import membership_remove, membership_set


def member_workspace_ids(request) -> list[int] | None:
    """The workspaces the signed-in person may see in the admin (None: all of them)."""
    return selectors.member_workspace_ids(request.user)


def visible_workspaces(request):
    ids = member_workspace_ids(request)
    return Workspace.objects.all() if ids is None else Workspace.objects.filter(pk__in=ids)


def admin_log_change(request, objects: list, message: str) -> None:
    """Write what a console action did to Django's admin log too ("Recent actions" and each
    object's History), one entry per object in one query. An object with a public id is
    logged under it, the id its admin URLs use."""
    if not objects:
        return
    content_type = ContentType.objects.get_for_model(objects[0], for_concrete_model=False)
    LogEntry.objects.bulk_create([
        LogEntry(
            user_id=request.user.pk, content_type=content_type, object_id=str(getattr(obj, "public_id", obj.pk)),
            object_repr=str(obj)[:200], action_flag=CHANGE, change_message=message,
        )
        for obj in objects
    ])


class ScopedWorkspaceFilter(admin.SimpleListFilter):
    """Filter a model with a `workspace` by it, offering only the person's own workspaces
    (one query; the built-in related filter would list everyone's)."""

    title = "workspace"
    parameter_name = "workspace"

    def lookups(self, request, model_admin):
        return [(str(w.pk), w.name) for w in visible_workspaces(request)]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        workspace_id = query_int(value)
        return queryset.none() if workspace_id is None else queryset.filter(workspace_id=workspace_id)


def query_int(text: str | None) -> int | None:
    """A number from a page's query string (an id, a version), or None when it is not one a
    database column holds. str.isdigit() alone takes "²", which int() refuses, and any
    length, which the database refuses."""
    return int(text) if text and text.isascii() and text.isdigit() and len(text) <= 18 else None


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


class WorkspaceScopedAdmin(admin.ModelAdmin):
    """Staff see only the rows of the workspaces they belong to, unless superuser.

    `workspace_path` is the lookup from the model to its workspace id.
    """

    workspace_path = "workspace_id"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        ids = member_workspace_ids(request)
        return qs if ids is None else qs.filter(**{f"{self.workspace_path}__in": ids})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Workspace:
            kwargs["queryset"] = visible_workspaces(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class MembershipInline(admin.TabularInline):
    """Who belongs to the workspace. Read-only here: memberships are changed on their own
    page, through reportdesk.services, which keeps the member's groups in step."""

    model = Membership
    extra = 0
    fields = ["user", "role", "created_at"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


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
    list_filter = ["role", ScopedWorkspaceFilter]
    search_fields = ["user__username", "workspace__slug"]
    list_select_related = ["user", "workspace"]
    autocomplete_fields = ["user"]

    def get_readonly_fields(self, request, obj=None):
        # A membership is one person in one workspace; to move someone, remove and add.
        return ["workspace", "user"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        membership, _, _ = membership_set(workspace=obj.workspace, user=obj.user, role=obj.role)
        obj.pk = membership.pk
        obj._state.adding = False

    def delete_model(self, request, obj):
        membership_remove(membership=obj)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("user"):
            membership_remove(membership=membership)
