"""Reviews of drafts: who claimed which version, what they saw, and what they decided."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from jobs.models import ReportJob


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    REQUEST_REVISION = "request_revision", "Request revision"


# The reviewer's checklist (the case study's "Source quality and review"): what a person
# confirms, beyond the automatic checks, before a draft is trusted. Key → what they confirm.
CHECKLIST = {
    "sources_support_claims": "Cited sources exist and support the claims.",
    "source_dates_suit_topic": "Source dates suit the topic.",
    "facts_and_recommendations_distinct": "Facts and recommendations are kept distinct.",
    "only_authorised_material": "Only authorised material was used.",
    "no_unsupported_sensitive_claims": "No unsupported legal, medical, financial or security claims.",
    "safe_for_audience": "Safe for the intended audience.",
}


class Review(models.Model):
    """One reviewer's claim on one draft version, and the decision if they made one.

    A claim is open while it has neither a decision nor a release; the database allows one
    open claim per job, so two reviewers can never hold the same draft.
    """

    job = models.ForeignKey("jobs.ReportJob", on_delete=models.CASCADE, related_name="reviews")
    attempt = models.ForeignKey("jobs.JobAttempt", on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews")
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    decision = models.CharField(max_length=20, choices=Decision.choices, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    override_reason = models.TextField(blank=True)
    checklist = models.JSONField(default=dict, blank=True)
    # The automatic checks as the reviewer saw them when deciding.
    checks = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["job"],
                condition=Q(decided_at__isnull=True, released_at__isnull=True),
                name="review_one_open_claim_per_job",
            ),
            models.CheckConstraint(
                condition=Q(decision__in=[*Decision.values, ""]), name="review_decision_valid"
            ),
        ]

    def __str__(self):
        return f"Review of {self.job_id} by {self.reviewer}"


class ReviewComment(models.Model):
    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The section heading the comment concerns; "" for the report as a whole.
    section = models.CharField(max_length=300, blank=True)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]


class ReviewQueue(ReportJob):
    """The review queue's entry in the admin index: drafts that need review. No table of its
    own; the queue page itself is a custom view of reviews.admin.ReviewAdmin."""

    class Meta:
        proxy = True
        verbose_name = "review queue"
        verbose_name_plural = "review queue"
        default_permissions = ()
