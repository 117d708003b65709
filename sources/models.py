"""Source material: the items a job is written from, and the manifests that freeze them.

A SourceItem belongs to a workspace and may be used by several jobs. A SourceManifest is the
ordered list of items one attempt used (S1…Sn in manifest order); once an attempt has started
at the provider its manifest is frozen, and changing the sources makes a new manifest.
"""

from django.conf import settings
from django.db import models


class SourceKind(models.TextChoices):
    UPLOAD = "upload", "Upload"
    URL = "url", "URL"
    TEXT = "text", "Pasted text"
    RECORD = "record", "Internal record"


class SourceStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class SourceItem(models.Model):
    workspace = models.ForeignKey(
        "reportdesk.Workspace", on_delete=models.CASCADE, related_name="sources"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=8, choices=SourceKind.choices)
    title = models.CharField(max_length=300, blank=True)
    url = models.URLField(max_length=2000, blank=True)
    file = models.FileField(upload_to="sources/%Y/%m/", blank=True)
    # For kind=record: the approved report this source quotes.
    record_job = models.ForeignKey(
        "jobs.ReportJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    content_type = models.CharField(max_length=100, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    text = models.TextField(blank=True)
    published_at = models.DateField(null=True, blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=8, choices=SourceStatus.choices, default=SourceStatus.PENDING
    )
    error = models.TextField(blank=True)
    error_transient = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=SourceKind.values), name="sourceitem_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=SourceStatus.values), name="sourceitem_status_valid"
            ),
        ]

    def __str__(self):
        return self.title or self.url or f"{self.get_kind_display()} #{self.pk}"


class SourceManifest(models.Model):
    workspace = models.ForeignKey(
        "reportdesk.Workspace", on_delete=models.CASCADE, related_name="manifests"
    )
    items = models.ManyToManyField(SourceItem, through="ManifestEntry", related_name="manifests")
    frozen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"Manifest #{self.pk}"


class ManifestEntry(models.Model):
    # Indexed by manifest_entry_position, which starts with it.
    manifest = models.ForeignKey(SourceManifest, on_delete=models.CASCADE, related_name="entries", db_index=False)
    item = models.ForeignKey(SourceItem, on_delete=models.PROTECT, related_name="entries")
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["manifest", "position"]
        constraints = [
            models.UniqueConstraint(fields=["manifest", "position"], name="manifest_entry_position"),
            models.UniqueConstraint(fields=["manifest", "item"], name="manifest_entry_item"),
        ]

    @property
    def sid(self) -> str:
        return f"S{self.position}"
