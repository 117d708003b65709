"""The admin of notifications: each person's choices ("My notifications"), and for operators
their workspaces' webhook endpoints, the delivery log (with "redeliver"), the chat channel
and the log of mails sent.

Operators of a workspace see and manage its endpoints whatever Django permissions their
group holds: jobs.policy.operated_workspace_ids decides, and every queryset is scoped by it,
so another workspace's endpoint is "not found". Writes go through notifications.services.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from jobs.policy import operated_workspace_ids
from reportdesk.admin import ReadOnlyAdminMixin, ScopedWorkspaceFilter
from reportdesk.errors import ApplicationError
from reportdesk.models import Workspace

from . import services
from .models import (
    ALL_EVENTS,
    ChatChannel,
    DeliveryAttempt,
    EndpointDelivery,
    EventType,
    Notice,
    NotificationPreference,
    WebhookEndpoint,
)


class OperatorScopedAdmin(admin.ModelAdmin):
    """Rows of the workspaces the person operates; the page exists only for operators."""

    workspace_path = "workspace_id"

    def _operated(self, request) -> list[int] | None:
        return operated_workspace_ids(request.user)

    def _is_operator(self, request) -> bool:
        ids = self._operated(request)
        return request.user.is_active and request.user.is_staff and (ids is None or bool(ids))

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        ids = self._operated(request)
        return qs if ids is None else qs.filter(**{f"{self.workspace_path}__in": ids})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Workspace:
            ids = self._operated(request)
            kwargs["queryset"] = Workspace.objects.all() if ids is None else Workspace.objects.filter(pk__in=ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_module_permission(self, request):
        return self._is_operator(request)

    def has_view_permission(self, request, obj=None):
        return self._is_operator(request)

    def has_add_permission(self, request):
        return self._is_operator(request)

    def has_change_permission(self, request, obj=None):
        return self._is_operator(request)

    def has_delete_permission(self, request, obj=None):
        return self._is_operator(request)


# --- Webhook endpoints -------------------------------------------------------------------

def _checked_url(url: str) -> str:
    """The same address rules as URL sources: no private, loopback or link-local targets."""
    try:
        return services.url_clean(url)
    except ApplicationError as exc:
        raise forms.ValidationError(exc.message) from exc


EVENT_CHOICES = [(ALL_EVENTS, "All events (*)"), *EventType.choices]


class WebhookEndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(choices=EVENT_CHOICES, widget=forms.CheckboxSelectMultiple, initial=[ALL_EVENTS])

    class Meta:
        model = WebhookEndpoint
        fields = ["workspace", "url", "description", "events", "is_active"]

    def clean_url(self):
        return _checked_url(self.cleaned_data["url"])


class LogInline(admin.TabularInline):
    """A read-only log under a page that is already scoped to its workspace's operators."""

    def has_view_permission(self, request, obj=None):
        return True

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request, obj=None):
        return False


class DeliveryInline(LogInline):
    model = EndpointDelivery
    fields = ["created_at", "event_type", "job", "status", "attempts", "last_status_code", "last_attempt_at", "log_link"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-created_at", "-id"]
    verbose_name_plural = "recent deliveries"

    def get_queryset(self, request):
        # The endpoint's newest few only: the log is on its own page, filtered by endpoint. (The
        # formset filters by endpoint after this, too late for a slice: it is filtered here.)
        endpoint_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        deliveries = super().get_queryset(request)
        if endpoint_id is not None:
            deliveries = deliveries.filter(endpoint_id=endpoint_id)
        ids = deliveries.order_by("-created_at", "-id").values_list("pk", flat=True)[:10]
        return EndpointDelivery.objects.filter(pk__in=list(ids)).select_related("job").order_by("-created_at", "-id")

    @admin.display(description="")
    def log_link(self, delivery):
        return format_html('<a href="{}">details</a>', reverse("admin:notifications_endpointdelivery_change", args=[delivery.pk]))



@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(OperatorScopedAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "workspace", "event_list", "is_active", "consecutive_failures", "disabled_at", "deliveries_link"]
    list_filter = ["is_active", ScopedWorkspaceFilter]
    list_select_related = ["workspace"]
    search_fields = ["url", "description"]
    readonly_fields = ["consecutive_failures", "disabled_at", "disabled_reason", "created_by", "created_at"]
    inlines = [DeliveryInline]

    @admin.display(description="events")
    def event_list(self, endpoint):
        return ", ".join(endpoint.events)

    @admin.display(description="deliveries")
    def deliveries_link(self, endpoint):
        url = reverse("admin:notifications_endpointdelivery_changelist") + f"?endpoint__id__exact={endpoint.pk}"
        return format_html('<a href="{}">delivery log</a>', url)

    def get_readonly_fields(self, request, obj=None):
        # An endpoint stays in its workspace; register a new one to send elsewhere.
        return [*self.readonly_fields, "workspace"] if obj is not None else self.readonly_fields

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            # The form has already written its values onto `obj`; the service compares with the stored row.
            services.endpoint_update(
                endpoint=WebhookEndpoint.objects.get(pk=obj.pk), actor=request.user, url=data["url"], events=data["events"],
                description=data["description"], is_active=data["is_active"],
            )
            return
        endpoint, secret = services.endpoint_create(
            workspace=data["workspace"], actor=request.user, url=data["url"], events=data["events"], description=data["description"],
        )
        obj.pk, obj._state.adding, obj.secret = endpoint.pk, False, secret
        request._webhook_secret = secret

    def response_add(self, request, obj, post_url_continue=None):
        """The signing secret, once: it is not shown anywhere again."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Endpoint registered",
            "endpoint": obj,
            "secret": request._webhook_secret,
            "change_url": reverse("admin:notifications_webhookendpoint_change", args=[obj.pk]),
        }
        return TemplateResponse(request, "admin/notifications/webhookendpoint/secret.html", context)

    # The services put every change on the record, made here or through the API.
    def log_addition(self, request, obj, message):
        return None

    def log_change(self, request, obj, message):
        return None

    def log_deletions(self, request, queryset):
        return None

    def delete_model(self, request, obj):
        services.endpoint_delete(endpoint=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for endpoint in queryset:
            services.endpoint_delete(endpoint=endpoint, actor=request.user)


# --- The delivery log --------------------------------------------------------------------


class AttemptInline(LogInline):
    model = DeliveryAttempt
    fields = ["number", "trigger", "at", "status_code", "duration_ms", "error", "response_excerpt"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name_plural = "attempts"



@admin.register(EndpointDelivery)
class EndpointDeliveryAdmin(ReadOnlyAdminMixin, OperatorScopedAdmin):
    workspace_path = "endpoint__workspace_id"
    list_display = ["created_at", "endpoint", "type_column", "job_link", "status_badge", "attempts", "last_status_code", "last_attempt_at", "next_attempt_at"]
    list_filter = ["status", "event_type"]
    list_select_related = ["endpoint", "job"]
    search_fields = ["=msg_id", "=job__public_id", "endpoint__url"]
    readonly_fields = [
        "endpoint", "event_type", "job", "msg_id", "status", "attempts", "last_status_code", "last_error",
        "last_attempt_at", "next_attempt_at", "delivered_at", "created_at", "payload",
    ]
    fields = readonly_fields
    inlines = [AttemptInline]
    actions = ["redeliver"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description="event", ordering="event_type")
    def type_column(self, delivery):
        return delivery.event_type  # as receivers read it in the payload's `type`

    @admin.display(description="job")
    def job_link(self, delivery):
        if delivery.job is None:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse("admin:jobs_reportjob_change", args=[delivery.job.public_id]), delivery.job.public_id)

    @admin.display(description="status", ordering="status")
    def status_badge(self, delivery):
        return format_html('<span class="rd-delivery rd-delivery-{}">{}</span>', delivery.status, delivery.get_status_display())

    def has_redeliver_permission(self, request):
        return self._is_operator(request)

    @admin.action(permissions=["redeliver"], description="Redeliver selected deliveries (same webhook-id)")
    def redeliver(self, request, queryset):
        done, refused = [], []
        for delivery in queryset.select_related("endpoint"):
            try:
                services.delivery_redeliver(delivery=delivery, actor=request.user)
                done.append(delivery.msg_id)
            except ApplicationError as exc:
                refused.append(f"{delivery.msg_id}: {exc.message}")
        if done:
            self.message_user(request, f"Redelivering {len(done)} deliver{'y' if len(done) == 1 else 'ies'}: {', '.join(done)}.", messages.SUCCESS)
        for line in refused:
            self.message_user(request, f"Not redelivered — {line}", messages.WARNING)
        return HttpResponseRedirect(request.get_full_path())


# --- Chat and the mail log ---------------------------------------------------------------


class ChatChannelForm(forms.ModelForm):
    class Meta:
        model = ChatChannel
        fields = ["workspace", "url", "is_active"]

    def clean_url(self):
        return _checked_url(self.cleaned_data["url"])


@admin.register(ChatChannel)
class ChatChannelAdmin(OperatorScopedAdmin):
    form = ChatChannelForm
    list_display = ["workspace", "url", "is_active", "created_at"]
    list_select_related = ["workspace"]


@admin.register(Notice)
class NoticeAdmin(ReadOnlyAdminMixin, OperatorScopedAdmin):
    list_display = ["created_at", "channel", "kind", "recipient", "subject", "status", "job"]
    list_filter = ["channel", "kind", "status"]
    list_select_related = ["job"]
    search_fields = ["recipient", "=job__public_id"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER


# --- Each person's choices ---------------------------------------------------------------


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    """"My notifications": every member edits their own choices, and only those."""

    fields = ["draft_ready", "report_updates", "operator_alerts"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(user=request.user)

    def _member(self, request) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request):
        return self._member(request)

    def has_view_permission(self, request, obj=None):
        return self._member(request) and (obj is None or obj.user_id == request.user.pk)

    def has_change_permission(self, request, obj=None):
        return self.has_view_permission(request, obj)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        """There is one row per person: go straight to it, making it on first visit."""
        preference, _ = NotificationPreference.objects.get_or_create(user=request.user)
        return HttpResponseRedirect(reverse("admin:notifications_notificationpreference_change", args=[preference.pk]))

    def save_model(self, request, obj, form, change):
        services.preference_set(
            user=request.user, draft_ready=obj.draft_ready, report_updates=obj.report_updates, operator_alerts=obj.operator_alerts,
        )

    def response_change(self, request, obj):
        self.message_user(request, "Your notification choices are saved.", messages.SUCCESS)
        return HttpResponseRedirect(request.path)
