"""The API's endpoints. Each one scopes by the caller's workspaces, parses its input with an
`…In` serializer, calls one service or selector, and answers with an `…Out` serializer.

Objects of workspaces the caller does not belong to are 404, never 403; a role that lacks an
action is a 403 from the service (jobs.policy words the message); a state that does not
allow it is a 409 listing what is allowed now.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Prefetch, prefetch_related_objects
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import policy, services
from jobs.downloads import export_response
from jobs.exports import CONTENT_TYPES, report_export
from jobs.metrics import metrics_for
from jobs.models import ReportJob, ReportTemplate
from jobs.selectors import job_events, jobs_visible_to, sources_visible_to
from reportdesk.errors import NotFound, ValidationFailed
from reportdesk.selectors import workspaces_by_id
from reviews import services as review_services
from reviews.selectors import queue_item, review_queue_for
from sources.selectors import manifest_entries_prefetch, manifest_sources
from sources.services import source_create

from . import serializers as s
from .exceptions import PayloadTooLarge
from .filters import JobFilter, NamedFilterBackend, StrictOrderingFilter
from .pagination import ApiPagination
from .parsers import StrictJSONParser
from .schema import responses
from .throttling import SubmitThrottle

# --- Shared plumbing ---------------------------------------------------------------------


class JsonOnlyNegotiation(DefaultContentNegotiation):
    """The API always answers JSON (the report endpoint picks its format from `?format=`),
    so an Accept header never turns a request into a 406."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ApiViewMixin:
    renderer_classes = [JSONRenderer]
    parser_classes = [StrictJSONParser]
    content_negotiation_class = JsonOnlyNegotiation

    def initial(self, request, *args, **kwargs):
        # Refuse an oversized body before anything reads it: Django checks form bodies only,
        # and JSON bodies would otherwise be read whole.
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if settings.DATA_UPLOAD_MAX_MEMORY_SIZE and length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise PayloadTooLarge(
                f"The request body is {length} bytes; this server accepts at most "
                f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE} (sources up to {settings.SOURCE_MAX_BYTES})."
            )
        super().initial(request, *args, **kwargs)

    def parsed(self, serializer_class, data):
        serializer = serializer_class(data=data, context={"request": self.request, "view": self})
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


ID_PARAM = OpenApiParameter("id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The job's public id.")


# --- Templates ---------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Report templates", responses=responses(s.TemplateOut(many=True))),
)
class TemplateViewSet(ApiViewMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = s.TemplateOut
    queryset = ReportTemplate.objects.filter(is_active=True).order_by("name")
    pagination_class = None


# --- Sources -----------------------------------------------------------------------------


class SourceViewSet(ApiViewMixin, viewsets.GenericViewSet):
    serializer_class = s.SourceOut
    parser_classes = [StrictJSONParser, MultiPartParser]
    lookup_value_regex = "[0-9]{1,18}"

    def get_queryset(self):
        return sources_visible_to(self.request.user)

    def get_throttles(self):
        return [*super().get_throttles(), SubmitThrottle()] if self.action == "create" else super().get_throttles()

    @extend_schema(
        summary="Add a source",
        description="A multipart `file` upload (text, Markdown, HTML, PDF; extracted at once), or JSON "
        '`{"url"}` (fetched when a job uses it) or `{"title","text"}`, with `workspace`. '
        "Use the returned `id` in a job's `sources`.",
        request={"application/json": s.SourceCreateJsonIn, "multipart/form-data": s.SourceCreateUploadIn},
        responses=responses(s.SourceOut, ok_status=201),
    )
    def create(self, request):
        data = self.parsed(s.SourceCreateUploadIn, request.data)
        workspace, user = data["workspace"], request.user
        policy.check_submit(user, workspace, what="Adding sources")
        upload = data.get("file")
        if upload and upload.size > settings.SOURCE_MAX_BYTES:
            raise PayloadTooLarge(f"The file is {upload.size} bytes; the limit is {settings.SOURCE_MAX_BYTES}.")
        item = source_create(
            workspace=workspace, created_by=user, upload=upload, url=data.get("url", ""),
            title=data.get("title", ""), text=data.get("text", ""),
        )
        return Response(s.SourceOut(item).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="A source", responses=responses(s.SourceOut, 404))
    def retrieve(self, request, pk=None):
        item = self.get_queryset().filter(pk=int(pk)).first()
        if item is None:
            raise NotFound(f"No source {pk} among yours.")
        return Response(s.SourceOut(item).data)


# --- Jobs --------------------------------------------------------------------------------

REPORT_OK = (
    "The report: format=json as application/json, md as text/markdown, html as text/html, pdf as "
    "application/pdf, docx as a Word document."
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"},
    OpenApiParameter.HEADER,
    description="Retry-safe submits: the same key and body return the same job (200, "
    "`Idempotent-Replayed: true`); the same key with another body is refused (400). Keys are per user.",
)


JOB_COLUMNS = [field.name for field in ReportJob._meta.concrete_fields]
JOB_OUT_RELATED = ["template__slug", "template__cost_cap_usd", "requested_by__username"]


class JobViewSet(ApiViewMixin, viewsets.GenericViewSet):
    serializer_class = s.JobOut
    lookup_field = "public_id"
    lookup_url_kwarg = "id"
    lookup_value_regex = "[0-9A-Za-z]{1,16}"
    filter_backends = [NamedFilterBackend, StrictOrderingFilter]
    filterset_class = JobFilter
    ordering_fields = ["created_at", "finished_at", "deadline", "status"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self):
        # Of the related rows, only what JobOut shows: the template's instructions, a user's
        # password hash or a source's text are not read for every row of a page. Two joins,
        # not five: PostgreSQL's planning of the query grows fast with its tables (1.6 ms for
        # six, 0.45 ms for four). The rest comes in _out: the workspaces from the caller's
        # memberships, the sources and the reruns' earlier jobs in a light query each.
        return jobs_visible_to(self.request.user).select_related("template", "requested_by").only(*JOB_COLUMNS, *JOB_OUT_RELATED)

    def _out(self, jobs: list[ReportJob]) -> dict:
        """JobOut's context for `jobs`: their sources read in one query (manifest_sources);
        their workspaces, the caller's own, set from the memberships already read; and the
        earlier jobs that reruns point at, read only when there are some (a prefetch
        declared on the queryset costs its setup on every page, reruns or not)."""
        workspaces = workspaces_by_id(self.request.user, {job.workspace_id for job in jobs})
        for job in jobs:
            job.workspace = workspaces[job.workspace_id]
        if reruns := [job for job in jobs if job.rerun_of_id is not None]:
            prefetch_related_objects(reruns, Prefetch("rerun_of", queryset=ReportJob.objects.only("public_id")))
        return {**self.get_serializer_context(), "sources": manifest_sources(job.source_manifest_id for job in jobs)}

    def get_throttles(self):
        extra = [SubmitThrottle()] if self.action in ("create", "rerun") else []
        return [*super().get_throttles(), *extra]

    def _job(self) -> ReportJob:
        """The job named in the URL, if the caller can see it (for actions: a light read;
        the service locks and re-reads it)."""
        public_id = self.kwargs["id"].lower()
        job = jobs_visible_to(self.request.user).select_related("workspace", "template").filter(public_id=public_id).first()
        if job is None:
            raise NotFound(f"No job {public_id} among yours.")
        return job

    def _job_response(self, job: ReportJob, status_code: int = 200, headers: dict | None = None) -> Response:
        job = self.get_queryset().get(pk=job.pk)
        return Response(s.JobOut(job, context=self._out([job])).data, status=status_code, headers=headers)

    def _created_response(self, job: ReportJob) -> Response:
        """A job this request just created, answered as it was written: its workspace, template,
        requester and (when the submit made the manifest) its sources are already in hand; the
        prefetch reads the sources only for a manifest reused from elsewhere (one query)."""
        prefetch_related_objects([job], manifest_entries_prefetch("source_manifest__entries", texts=False))
        return Response(s.JobOut(job, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED)

    # --- Reads

    @extend_schema(summary="List jobs", responses=responses(s.JobOut(many=True), 400, 404))
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(s.JobOut(page, many=True, context=self._out(page)).data)

    @extend_schema(summary="A job", parameters=[ID_PARAM], responses=responses(s.JobOut, 404))
    def retrieve(self, request, id=None):
        try:
            # get(), not first(): no ORDER BY for a unique key (compiling it cost a third of the request)
            job = self.get_queryset().get(public_id=id.lower())
        except ReportJob.DoesNotExist:
            raise NotFound(f"No job {id.lower()} among yours.") from None
        return Response(s.JobOut(job, context=self._out([job])).data)

    @extend_schema(
        summary="A job's audit history",
        description="Every change to the job, oldest first; append-only.",
        parameters=[ID_PARAM],
        responses=responses(s.JobEventOut(many=True), 404),
        filters=False,
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def events(self, request, id=None):
        job = self._job()
        page = self.paginate_queryset(job_events(job=job))
        return self.get_paginated_response(s.JobEventOut(page, many=True).data)

    @extend_schema(
        summary="Download the report",
        description="`format=md` (text/markdown), `html` (a standalone HTML document: title, workspace, requester, "
        "review decision, date, version, the report sanitised, its sources with links), `json` (the structured "
        "report with `version`, `versions` and citations), `pdf` or `docx`; `version` defaults to the latest. "
        "A job with no draft yet (or no such version) is a 404. Every download is recorded as an export.",
        parameters=[ID_PARAM, s.ReportQueryIn],
        responses=responses(
            {
                (200, "application/json"): OpenApiResponse(s.ReportJsonOut, description=REPORT_OK),
                (200, "text/markdown"): OpenApiResponse(OpenApiTypes.STR, description=REPORT_OK),
                (200, "text/html"): OpenApiResponse(OpenApiTypes.STR, description=REPORT_OK),
                (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description=REPORT_OK),
                (200, CONTENT_TYPES["docx"]): OpenApiResponse(OpenApiTypes.BINARY, description=REPORT_OK),
            },
            400,
            404,
        ),
        filters=False,
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def report(self, request, id=None):
        job = self._job()
        query = self.parsed(s.ReportQueryIn, request.query_params)
        # A HEAD is a check, not a download.
        export = report_export(
            job=job, actor=request.user, fmt=query["format"], version=query.get("version"), record=request.method == "GET"
        )
        return export_response(export)

    # --- Writes

    @extend_schema(
        summary="Submit a report job",
        request=s.JobSubmitIn,
        parameters=[IDEMPOTENCY_KEY],
        responses=responses(
            {
                201: OpenApiResponse(s.JobOut, description="Submitted."),
                200: OpenApiResponse(s.JobOut, description="An Idempotency-Key replay: the job the first request made."),
            },
        ),
    )
    def create(self, request):
        data = self.parsed(s.JobSubmitIn, request.data)
        submit = dict(
            workspace=data["workspace"], requested_by=request.user, template=data["template"], topic=data["topic"],
            audience=data["audience"], sources=data["sources"], deadline=data["deadline"],
        )
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return self._created_response(services.job_submit(**submit))
        if not 1 <= len(key) <= 200 or not all("!" <= c <= "~" for c in key):
            raise ValidationFailed(
                "Idempotency-Key must be 1–200 visible ASCII characters.",
                fields={"Idempotency-Key": "1–200 visible ASCII characters."},
            )
        job, created = services.job_submit_idempotent(key=key, body=request.data, **submit)
        if created:
            return self._created_response(job)
        return self._job_response(job, status.HTTP_200_OK, headers={"Idempotent-Replayed": "true"})

    @extend_schema(
        summary="Edit the request",
        description="Topic, audience, sources (replaces the list) and deadline, while the job is queued or "
        "preparing and before the provider call starts; 409 once the request is locked.",
        parameters=[ID_PARAM],
        request=s.JobEditIn,
        responses=responses(s.JobOut, 404, 409),
    )
    def partial_update(self, request, id=None):
        job = self._job()
        data = self.parsed(s.JobEditIn, request.data)
        return self._job_response(services.job_edit(job=job, actor=request.user, **data))

    def _simple_action(self, service):
        job = self._job()
        data = self.parsed(s.JobActionIn, self.request.data)
        return self._job_response(service(job=job, actor=self.request.user, reason=data["reason"]))

    @extend_schema(summary="Cancel", parameters=[ID_PARAM], request=s.JobActionIn, responses=responses(s.JobOut, 404, 409))
    @action(detail=True, methods=["post"])
    def cancel(self, request, id=None):
        return self._simple_action(services.job_cancel)

    @extend_schema(
        summary="Expire (operators)", parameters=[ID_PARAM], request=s.JobActionIn, responses=responses(s.JobOut, 404, 409)
    )
    @action(detail=True, methods=["post"])
    def expire(self, request, id=None):
        return self._simple_action(services.job_expire)

    @extend_schema(
        summary="Retry a failed job",
        description="A new attempt; only for retryable failure classes (timeout, provider_error, source_error). "
        "Others are a 409 with code `not_retryable`: revise or rerun instead.",
        parameters=[ID_PARAM],
        request=s.JobActionIn,
        responses=responses(s.JobOut, 404, 409),
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, id=None):
        return self._simple_action(services.job_retry)

    @extend_schema(summary="Archive", parameters=[ID_PARAM], request=s.JobActionIn, responses=responses(s.JobOut, 404, 409))
    @action(detail=True, methods=["post"])
    def archive(self, request, id=None):
        return self._simple_action(services.job_archive)

    @extend_schema(summary="Unarchive", parameters=[ID_PARAM], request=s.JobActionIn, responses=responses(s.JobOut, 404, 409))
    @action(detail=True, methods=["post"])
    def unarchive(self, request, id=None):
        return self._simple_action(services.job_unarchive)

    @extend_schema(
        summary="Revise",
        description="A failed or rejected job runs again as a new attempt carrying `instructions`.",
        parameters=[ID_PARAM],
        request=s.JobReviseIn,
        responses=responses(s.JobOut, 404, 409),
    )
    @action(detail=True, methods=["post"])
    def revise(self, request, id=None):
        job = self._job()
        data = self.parsed(s.JobReviseIn, request.data)
        return self._job_response(services.job_revise(job=job, actor=request.user, instructions=data["instructions"]))

    @extend_schema(
        summary="Rerun as a new job",
        description="Starts a NEW job from this one's request (URL sources fetched anew) and returns it (201). "
        "Optionally change topic, audience or sources.",
        parameters=[ID_PARAM],
        request=s.JobRerunIn,
        responses=responses(s.JobOut, 404, 409, ok_status=201, ok_description="The new job."),
    )
    @action(detail=True, methods=["post"])
    def rerun(self, request, id=None):
        job = self._job()
        data = self.parsed(s.JobRerunIn, request.data)
        new_job = services.job_rerun(job=job, actor=request.user, **data)
        return self._job_response(new_job, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Review decision",
        description="approve → completed, reject → rejected, request_revision → a new attempt (back to needs_review "
        "as version N+1). Reject and request_revision need a `comment`; approving a draft whose automatic checks "
        "failed needs an `override_reason`. You cannot review a report you requested. Takes the claim if nobody "
        "holds it; 409 if another reviewer does.",
        parameters=[ID_PARAM],
        request=s.ReviewDecisionIn,
        responses=responses(s.JobOut, 404, 409),
    )
    @action(detail=True, methods=["post"])
    def review(self, request, id=None):
        job = self._job()
        data = self.parsed(s.ReviewDecisionIn, request.data)
        job = review_services.review_decide(
            job=job, reviewer=request.user, decision=data["decision"], comment=data["comment"],
            override_reason=data["override_reason"], checklist=data["checklist"],
            section_comments=data["section_comments"], version=data["version"],
        )
        return self._job_response(job)

    @extend_schema(
        summary="Claim a draft for review",
        description=f"Holds the draft for you for {settings.REVIEW_CLAIM_MINUTES} minutes (claiming again renews). "
        "409 if another reviewer holds it.",
        parameters=[ID_PARAM],
        request=None,
        responses=responses(s.ClaimOut, 404, 409),
    )
    @action(detail=True, methods=["post"])
    def claim(self, request, id=None):
        review = review_services.review_claim(job=self._job(), reviewer=request.user)
        return Response(s.ClaimOut({"reviewer": request.user.get_username(), "expires_at": review.claim_expires_at}).data)

    @extend_schema(
        summary="Release a claim",
        description="Gives the draft back to the queue. The holder releases their own claim; an operator may "
        "release anyone's. Releasing when nobody holds the draft does nothing.",
        parameters=[ID_PARAM],
        request=s.JobActionIn,
        responses=responses({204: OpenApiResponse(description="Released (or nobody held it).")}, 404),
    )
    @action(detail=True, methods=["post"])
    def release(self, request, id=None):
        job = self._job()
        data = self.parsed(s.JobActionIn, request.data)
        review_services.review_release(job=job, reviewer=request.user, reason=data["reason"])
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Review queue ------------------------------------------------------------------------


class ReviewQueueView(ApiViewMixin, APIView):
    pagination_class = ApiPagination

    @extend_schema(
        summary="The review queue",
        description="Drafts that need review and that you may review (in workspaces where you review, not "
        "your own requests), oldest first, with the reviewer holding each, if any.",
        parameters=[s.ReviewQueueQueryIn],
        responses=responses(s.ReviewQueueItemOut(many=True), 400, 403, 404),
    )
    def get(self, request):
        policy.check_review_queue(request.user)
        query = self.parsed(s.ReviewQueueQueryIn, request.query_params)
        now = timezone.now()
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(review_queue_for(user=request.user, now=now, **query), request, view=self)
        items = [queue_item(job=job, now=now) for job in page]
        return paginator.get_paginated_response(s.ReviewQueueItemOut(items, many=True, context={"request": request}).data)


# --- Metrics -----------------------------------------------------------------------------


class MetricsView(ApiViewMixin, APIView):
    @extend_schema(
        summary="Metrics",
        description="The product's metrics (jobs.metrics) for the jobs submitted in [since, until) in your "
        "workspaces: cost per completed report, runtime and queue time percentiles, model calls per report, "
        "sources and their failures, retry rate by failure class, review time and rejection rate, abandoned "
        "jobs, export rate, and jobs by state per day. The window is at most 366 days, between 1970-01-01 "
        "and 9999-01-01.",
        parameters=[s.MetricsQueryIn],
        responses=responses(s.MetricsOut, 400),
    )
    def get(self, request):
        query = self.parsed(s.MetricsQueryIn, request.query_params)
        return Response(
            metrics_for(user=request.user, workspace=query.get("workspace", ""), since=query["since"], until=query["until"])
        )
