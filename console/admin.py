"""django-q2's task records (successful and failed runs) for operators, not only superusers:
an operator reads the records of the jobs in the workspaces they operate, nothing else, and
cannot resubmit or delete them (state changes go through the job's own actions)."""

from django.contrib import admin
from django_q.admin import FailAdmin, TaskAdmin
from django_q.models import Failure, Success

from jobs import policy

from .selectors import task_records_for


class OperatorTaskRecordsMixin:
    # The failure table has no size limit: no full count, no facet counts.
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def has_module_permission(self, request):
        return policy.operates_anywhere(request.user)

    def has_view_permission(self, request, obj=None):
        return policy.operates_anywhere(request.user)

    def get_queryset(self, request):
        return task_records_for(super().get_queryset(request), workspace_ids=policy.operated_workspace_ids(request.user))

    def get_actions(self, request):
        return super().get_actions(request) if request.user.is_superuser else {}


admin.site.unregister(Success)
admin.site.unregister(Failure)


@admin.register(Success)
class SuccessRecordAdmin(OperatorTaskRecordsMixin, TaskAdmin):
    pass


@admin.register(Failure)
class FailureRecordAdmin(OperatorTaskRecordsMixin, FailAdmin):
    pass
