"""factory-boy factories for every model."""

import datetime as dt

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from jobs.models import (
    Artifact,
    ArtifactKind,
    AttemptReason,
    JobAttempt,
    JobEvent,
    ProviderCall,
    ReportJob,
    ReportTemplate,
)
from reportdesk.models import Membership, Role, Workspace
from reviews.models import Review, ReviewComment
from sources.models import ManifestEntry, SourceItem, SourceKind, SourceManifest, SourceStatus


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    is_staff = True
    password = factory.django.Password("pw-for-tests")


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"ws-{n}")
    name = factory.LazyAttribute(lambda w: w.slug.replace("-", " ").title())


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    workspace = factory.SubFactory(WorkspaceFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.REQUESTER


def member(workspace, role, username=None):
    """A user with `role` in `workspace`."""
    from reportdesk.services import membership_set

    user = UserFactory(username=username) if username else UserFactory()
    membership_set(workspace=workspace, user=user, role=role)
    return user


class ReportTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReportTemplate
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"template-{n}")
    name = factory.LazyAttribute(lambda t: t.slug.replace("-", " ").title())
    report_type = "market_scan"
    instructions = "Write a careful report from the sources."
    required_sections = ["Overview", "Findings"]
    review_required = True


class SourceItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SourceItem

    workspace = factory.SubFactory(WorkspaceFactory)
    kind = SourceKind.TEXT
    title = factory.Sequence(lambda n: f"Source {n}")
    text = "Battery recycling recovers lithium, cobalt and nickel. Capacity grew 40% in 2025."
    content_type = "text/plain"
    status = SourceStatus.READY
    size = factory.LazyAttribute(lambda s: len(s.text.encode()))


class SourceManifestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SourceManifest
        skip_postgeneration_save = True

    workspace = factory.SubFactory(WorkspaceFactory)

    @factory.post_generation
    def items(self, create, extracted, **kwargs):
        if not create:
            return
        for position, item in enumerate(extracted or [SourceItemFactory(workspace=self.workspace)], start=1):
            ManifestEntry.objects.create(manifest=self, item=item, position=position)


class ReportJobFactory(factory.django.DjangoModelFactory):
    """A job as job_submit would leave it (queued, with its first attempt), built directly."""

    class Meta:
        model = ReportJob
        skip_postgeneration_save = True

    workspace = factory.SubFactory(WorkspaceFactory)
    requested_by = factory.LazyAttribute(lambda j: member(j.workspace, Role.REQUESTER))
    template = factory.SubFactory(ReportTemplateFactory)
    topic = "Battery recycling in Europe"
    audience = "Product leadership"
    source_manifest = factory.LazyAttribute(lambda j: SourceManifestFactory(workspace=j.workspace))
    deadline = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=3))
    review_state = factory.LazyAttribute(lambda j: "pending" if j.template.review_required else "not_required")

    @factory.post_generation
    def with_attempt(self, create, extracted, **kwargs):
        if create and extracted is not False and self.current_attempt_id is None:
            attempt = JobAttempt.objects.create(
                job=self, number=1, reason=AttemptReason.INITIAL, manifest=self.source_manifest
            )
            self.current_attempt = attempt
            self.save(update_fields=["current_attempt"])


class JobAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JobAttempt

    job = factory.SubFactory(ReportJobFactory, with_attempt=False)
    number = factory.Sequence(lambda n: n + 1)
    reason = AttemptReason.INITIAL
    manifest = factory.LazyAttribute(lambda a: a.job.source_manifest)


class ProviderCallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProviderCall

    attempt = factory.SubFactory(JobAttemptFactory)
    job = factory.LazyAttribute(lambda c: c.attempt.job)
    provider = "openai"
    model = "gpt-5.2"
    provider_response_id = factory.Sequence(lambda n: f"resp_test_{n}")
    status = "queued"


class JobEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JobEvent

    job = factory.SubFactory(ReportJobFactory)
    actor_kind = "worker"
    action = "checked"


class ArtifactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Artifact

    attempt = factory.SubFactory(JobAttemptFactory)
    job = factory.LazyAttribute(lambda a: a.attempt.job)
    kind = ArtifactKind.REPORT_MARKDOWN
    content = "# Report\n\nBody [S1]."


class ReviewFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Review

    job = factory.SubFactory(ReportJobFactory)
    attempt = factory.LazyAttribute(lambda r: r.job.current_attempt)
    reviewer = factory.LazyAttribute(lambda r: member(r.job.workspace, Role.REVIEWER))
    claimed_at = factory.LazyFunction(timezone.now)


class ReviewCommentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReviewComment

    review = factory.SubFactory(ReviewFactory)
    author = factory.LazyAttribute(lambda c: c.review.reviewer)
    body = "Please cite the capacity figure."


class IdempotencyKeyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "jobs.IdempotencyKey"

    job = factory.SubFactory(ReportJobFactory)
    user = factory.LazyAttribute(lambda k: k.job.requested_by)
    key = factory.Sequence(lambda n: f"key-{n}")
    request_hash = "0" * 64


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "jobs.WebhookDelivery"

    webhook_id = factory.Sequence(lambda n: f"wh_{n}")
    event_type = "response.completed"
    response_id = factory.Sequence(lambda n: f"resp_{n}")


class LocalResponseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "jobs.LocalResponse"

    id = factory.Sequence(lambda n: f"resp_local_{n}")
    model = "local-extractive"
    request = factory.LazyFunction(dict)
    created_at = factory.LazyFunction(timezone.now)
    starts_at = factory.LazyFunction(timezone.now)
    completes_at = factory.LazyFunction(timezone.now)


class WorkerHeartbeatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "jobs.WorkerHeartbeat"
        django_get_or_create = ("name",)

    name = "dispatcher"
    seen_at = factory.LazyFunction(timezone.now)
