"""/api/v1/webhook-endpoints/: a workspace's outbound webhooks, for its operators.

GET, POST on the collection; GET, PATCH, DELETE on …/{id}/; GET …/{id}/deliveries/ for the
delivery log. A 201 carries the signing secret (`whsec_…`), the only time it is shown.
Endpoints of workspaces the caller does not operate are 404; a caller who operates no
workspace gets 403 (the role lacks the permission). Errors keep the API's one shape.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from jobs.policy import operated_workspace_ids
from reportdesk.api.schema import responses
from reportdesk.api.serializers import StrictBooleanField, StrictCharField
from reportdesk.api.views import ApiViewMixin
from reportdesk.errors import PermissionDenied
from reportdesk.models import Workspace

from . import selectors, services
from .models import ALL_EVENTS, DeliveryStatus, EventType

EVENT_NAMES = [ALL_EVENTS, *EventType.values]


class _EventsField(serializers.ListField):
    def __init__(self, **kwargs):
        super().__init__(
            child=serializers.ChoiceField(choices=EVENT_NAMES), allow_empty=False, max_length=len(EVENT_NAMES),
            help_text='["*"] for every event, or some of: ' + ", ".join(EventType.values) + ".", **kwargs,
        )


class WebhookEndpointCreateIn(serializers.Serializer):
    workspace = serializers.SlugField(max_length=64, help_text="Workspace slug (one you operate).")
    url = StrictCharField(max_length=2000, help_text="An http(s) address on the public internet.")
    events = _EventsField()
    description = StrictCharField(required=False, allow_blank=True, max_length=200, default="")

    def validate_workspace(self, slug):
        user = self.context["request"].user
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None or not (user.is_superuser or workspace.memberships.filter(user=user).exists()):
            raise serializers.ValidationError(f"You have no workspace '{slug}'.")
        return workspace


class WebhookEndpointUpdateIn(serializers.Serializer):
    url = StrictCharField(required=False, max_length=2000)
    events = _EventsField(required=False)
    description = StrictCharField(required=False, allow_blank=True, max_length=200)
    is_active = StrictBooleanField(required=False, help_text="true enables a disabled endpoint (its failure count starts over).")


class WebhookEndpointOut(serializers.Serializer):
    id = serializers.IntegerField()
    workspace = serializers.CharField(source="workspace.slug")
    url = serializers.CharField()
    description = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    is_active = serializers.BooleanField()
    disabled_at = serializers.DateTimeField(allow_null=True)
    disabled_reason = serializers.CharField()
    consecutive_failures = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class WebhookEndpointCreatedOut(WebhookEndpointOut):
    secret = serializers.CharField(help_text="whsec_…: the signing secret. Shown in this response only; keep it.")


class EndpointDeliveryOut(serializers.Serializer):
    id = serializers.CharField(source="msg_id", help_text="The webhook-id header of every try.")
    event_type = serializers.ChoiceField(choices=EventType.choices)
    job = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    attempts = serializers.IntegerField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_job(self, delivery) -> str | None:
        return delivery.job.public_id if delivery.job else None


ENDPOINT_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The endpoint's id.")


@extend_schema_view(
    list=extend_schema(summary="Webhook endpoints", responses=responses(WebhookEndpointOut(many=True), 403, 404)),
    retrieve=extend_schema(summary="A webhook endpoint", parameters=[ENDPOINT_ID], responses=responses(WebhookEndpointOut, 403, 404)),
)
class WebhookEndpointViewSet(ApiViewMixin, viewsets.GenericViewSet):
    serializer_class = WebhookEndpointOut
    lookup_value_regex = "[0-9]{1,18}"

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if operated_workspace_ids(request.user) == []:
            raise PermissionDenied("Webhook endpoints are managed by the operators of a workspace; you operate none.")

    def get_queryset(self):
        return selectors.endpoints_visible_to(self.request.user).order_by("workspace__slug", "created_at", "id")

    def _endpoint(self):
        return selectors.endpoint_of(user=self.request.user, pk=int(self.kwargs["pk"]))

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(WebhookEndpointOut(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(WebhookEndpointOut(self._endpoint()).data)

    @extend_schema(
        summary="Register a webhook endpoint",
        description="Events of the workspace's jobs are POSTed to `url`, signed per Standard Webhooks. "
        "The response carries the signing `secret`, which is never shown again.",
        request=WebhookEndpointCreateIn,
        responses=responses(WebhookEndpointCreatedOut, 403, ok_status=201),
    )
    def create(self, request):
        data = self.parsed(WebhookEndpointCreateIn, request.data)
        endpoint, secret = services.endpoint_create(
            workspace=data["workspace"], actor=request.user, url=data["url"], events=data["events"], description=data["description"],
        )
        body = {**WebhookEndpointOut(endpoint).data, "secret": secret}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Change a webhook endpoint", parameters=[ENDPOINT_ID], request=WebhookEndpointUpdateIn,
                   responses=responses(WebhookEndpointOut, 403, 404))
    def partial_update(self, request, pk=None):
        endpoint = self._endpoint()
        data = self.parsed(WebhookEndpointUpdateIn, request.data)
        endpoint = services.endpoint_update(endpoint=endpoint, actor=request.user, **data)
        return Response(WebhookEndpointOut(endpoint).data)

    @extend_schema(summary="Delete a webhook endpoint", parameters=[ENDPOINT_ID], request=None,
                   responses=responses({204: None}, 403, 404))
    def destroy(self, request, pk=None):
        services.endpoint_delete(endpoint=self._endpoint(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="An endpoint's delivery log", description="Newest first: status, attempts, last response code and time.",
                   parameters=[ENDPOINT_ID], responses=responses(EndpointDeliveryOut(many=True), 403, 404))
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        page = self.paginate_queryset(selectors.endpoint_deliveries(endpoint=self._endpoint()))
        return self.get_paginated_response(EndpointDeliveryOut(page, many=True).data)
