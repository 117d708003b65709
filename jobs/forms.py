"""The admin's forms for a person's own report requests: submit, edit, revise and rerun.

The forms only collect input; jobs.services decides, exactly as it does for the API. Each
form turns its fields into the services' arguments (sources as sources.services.SourceSpec,
in the order the page shows them: files, URLs, pasted texts, earlier reports) and
`service_errors` puts a service's refusal (ApplicationError: message and fields) back on the
field it concerns, in the service's own words.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.core.exceptions import ValidationError

from reportdesk.errors import ApplicationError
from reportdesk.models import Workspace
from sources.services import SourceSpec

from . import policy
from .models import JobStatus, ReportJob, ReportTemplate
from .selectors import jobs_visible_to

# As many as the API takes in one request.
MAX_SOURCES = 50
# Earlier reports listed on the page to choose from.
RECORDS_LISTED = 200


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input (Django's documented pattern)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"class": "rd-files"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, (list, tuple)):
            return [super(MultipleFileField, self).clean(d, initial) for d in data if d]
        return [super().clean(data, initial)] if data else []


class TextSourceForm(forms.Form):
    """One pasted text block."""

    title = forms.CharField(required=False, max_length=300, widget=forms.TextInput(attrs={"size": 60}))
    text = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 5, "cols": 80}))


TextSourceFormSet = forms.formset_factory(TextSourceForm, extra=1, max_num=MAX_SOURCES)


class TemplateChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, template):
        return template.name


@dataclass(frozen=True)
class _Place:
    """Where a source of the request came from on the form, to put its error back there."""

    field: str
    label: str


class _ListedRecords:
    """The earlier reports a page lists, read when the widget renders (not when a submitted
    form is only validated): the most recent RECORDS_LISTED, and any chosen older one."""

    def __init__(self, queryset, *, chosen: list[str]):
        self.queryset, self.chosen = queryset, chosen
        self._choices: list[tuple[str, str]] | None = None

    def __iter__(self):
        if self._choices is None:
            recent = list(self.queryset[:RECORDS_LISTED])
            listed = {job.public_id for job in recent}
            older = [c for c in self.chosen if c not in listed]
            if older:
                recent += list(self.queryset.filter(public_id__in=older))
            self._choices = [(job.public_id, f"{job.public_id} · {job.topic[:90]} ({job.workspace})") for job in recent]
        return iter(self._choices)


class SourcesForm(forms.Form):
    """Sources in every kind the API takes. `specs()` lists them in order; `places` says
    which field each came from."""

    files = MultipleFileField(
        required=False, label="Files",
        help_text=f"Text, Markdown, HTML or PDF, up to {settings.SOURCE_MAX_BYTES // (1024 * 1024)} MB each. "
        "Choose several, or drop them here.",
    )
    urls = forms.CharField(
        required=False, label="Web pages", widget=forms.Textarea(attrs={"rows": 3, "cols": 80, "placeholder": "https://…"}),
        help_text="One address per line; fetched by the worker.",
    )
    records = forms.ModelMultipleChoiceField(
        queryset=ReportJob.objects.none(), required=False, to_field_name="public_id", label="Earlier reports",
        help_text="Completed reports of the workspace, quoted as sources.",
        widget=FilteredSelectMultiple("earlier reports", is_stacked=False),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        visible = jobs_visible_to(user).filter(status=JobStatus.COMPLETED, archived_at__isnull=True)
        records = self.fields["records"]
        records.queryset = visible.select_related("workspace").order_by("-finished_at", "-id")
        # The page lists the most recent ones only (a workspace may have thousands), and
        # those chosen; any visible one is accepted, as the API accepts it.
        records.widget.choices = _ListedRecords(records.queryset, chosen=self.data.getlist(self.add_prefix("records")) if self.is_bound else [])
        records.help_text += f" The {RECORDS_LISTED} most recent are listed; the API takes older ones by id."
        self.texts = TextSourceFormSet(self.data or None, prefix="texts")
        self.places: list[_Place] = []
        self.texts_errors: list[str] = []

    def is_valid(self) -> bool:
        texts_valid = self.texts.is_valid() if self.is_bound else True
        return super().is_valid() and texts_valid

    def specs(self) -> list[SourceSpec]:
        data = self.cleaned_data
        specs, self.places = [], []
        for upload in data.get("files") or []:
            # Read at most one byte past the limit: the service refuses what is too large.
            content = upload.read(settings.SOURCE_MAX_BYTES + 1)
            specs.append(SourceSpec(upload_name=upload.name or "upload", upload_data=content, upload_type=upload.content_type or ""))
            self.places.append(_Place("files", upload.name or "upload"))
        for number, line in enumerate((data.get("urls") or "").splitlines(), start=1):
            if line.strip():
                specs.append(SourceSpec(url=line.strip()))
                self.places.append(_Place("urls", f"line {number}"))
        for number, text in enumerate(self.texts.cleaned_data if self.texts.is_bound else [], start=1):
            # A block with only spaces still goes to the service, which says what is wrong.
            if text and (text.get("text") or text.get("title")):
                specs.append(SourceSpec(title=text.get("title", ""), text=text.get("text", "")))
                self.places.append(_Place("texts", f"text {number}"))
        for job in data.get("records") or []:
            specs.append(SourceSpec(record_job_id=job.public_id))
            self.places.append(_Place("records", job.public_id))
        if len(specs) > MAX_SOURCES:
            raise ValidationError(f"At most {MAX_SOURCES} sources in one report.")
        return specs

    def service_errors(self, error: ApplicationError) -> None:
        """Show a service's refusal where it belongs, in the service's words."""
        placed = False
        for name, value in error.fields.items():
            if name == "sources" and isinstance(value, dict):
                for index, _ in value.items():
                    place = self.places[int(index)] if str(index).isdigit() and int(index) < len(self.places) else None
                    if place is None:
                        continue
                    if place.field == "texts":
                        self.texts_errors.append(f"{place.label.capitalize()}: {error.message}")
                    else:
                        self.add_error(place.field, f"{place.label}: {error.message}")
                    placed = True
            elif name in self.fields and name != "sources":
                self.add_error(name, error.message)
                placed = True
        if not placed:
            self.add_error(None, error.message)


class SubmitForm(SourcesForm):
    """"Add report job": what the API's POST /api/v1/jobs/ takes."""

    workspace = forms.ModelChoiceField(queryset=Workspace.objects.none(), empty_label=None)
    template = TemplateChoiceField(queryset=ReportTemplate.objects.none(), empty_label="Choose a template")
    topic = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"size": 80}))
    audience = forms.CharField(required=False, max_length=300, widget=forms.TextInput(attrs={"size": 80}))
    deadline = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Optional; by default the template's useful window.",
    )

    field_order = ["workspace", "template", "topic", "audience", "deadline", "files", "urls", "records"]

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, user=user, **kwargs)
        ids = policy.submit_workspace_ids(user)
        workspaces = Workspace.objects.order_by("name")
        self.fields["workspace"].queryset = workspaces if ids is None else workspaces.filter(pk__in=ids)
        self.fields["template"].queryset = ReportTemplate.objects.filter(is_active=True).order_by("name")

    def submit_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "workspace": data["workspace"], "requested_by": self.user, "template": data["template"],
            "topic": data["topic"], "audience": data["audience"], "deadline": data["deadline"], "sources": self.specs(),
        }


class EditForm(SourcesForm):
    """The API's PATCH: topic, audience, deadline; the sources kept plus any added."""

    topic = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"size": 80}))
    audience = forms.CharField(required=False, max_length=300, widget=forms.TextInput(attrs={"size": 80}))
    deadline = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    )
    keep = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple, label="Keep these sources")

    field_order = ["topic", "audience", "deadline", "keep", "files", "urls", "records"]

    def __init__(self, *args, job: ReportJob, entries: list, **kwargs):
        super().__init__(*args, **kwargs)
        self.job = job
        self.entries = entries
        self.fields["keep"].choices = [(str(e.item_id), f"{e.sid} · {e.item}") for e in entries]
        # The deadline as the field shows it (to the minute), so a form sent back as it was
        # shown leaves it alone (changed_data compares with this, bound or not).
        deadline = job.deadline.replace(second=0, microsecond=0) if job.deadline else None
        self.initial.update(
            topic=job.topic, audience=job.audience, deadline=deadline, keep=[str(e.item_id) for e in entries]
        )

    def edit_arguments(self) -> dict:
        data = self.cleaned_data
        kept = [int(item_id) for item_id in data["keep"]]
        added = self.specs()
        sources = None
        if added or kept != [e.item_id for e in self.entries]:
            # Kept sources come first, so they keep their S-numbers.
            self.places = [_Place("keep", f"S{n}") for n in range(1, len(kept) + 1)] + self.places
            sources = [SourceSpec(item_id=item_id) for item_id in kept] + added
        return {
            "topic": data["topic"], "audience": data["audience"], "sources": sources,
            "deadline": data["deadline"] if "deadline" in self.changed_data else None,
        }


class ReviseForm(forms.Form):
    """The API's revise: a new attempt of a failed or rejected job, carrying instructions."""

    instructions = forms.CharField(
        max_length=20000, strip=False, required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 90}),
        help_text="What the new attempt should change; the model reads it with the sources.",
    )

    def service_errors(self, error: ApplicationError) -> None:
        self.add_error("instructions" if "instructions" in error.fields else None, error.message)


class RerunForm(SourcesForm):
    """The API's rerun: a new job from this one's request, optionally changed. Without new
    sources, the job's own are reused (URLs fetched anew)."""

    topic = forms.CharField(max_length=500, required=False, widget=forms.TextInput(attrs={"size": 80}))
    audience = forms.CharField(required=False, max_length=300, widget=forms.TextInput(attrs={"size": 80}))

    field_order = ["topic", "audience", "files", "urls", "records"]

    def __init__(self, *args, job: ReportJob, **kwargs):
        super().__init__(*args, **kwargs)
        self.job = job
        if not self.is_bound:
            self.initial.update(topic=job.topic, audience=job.audience)

    def rerun_arguments(self) -> dict:
        data = self.cleaned_data
        specs = self.specs()
        return {
            "topic": data["topic"] or None,
            "audience": data["audience"] if data["audience"] != self.job.audience else None,
            "sources": specs or None,
        }
