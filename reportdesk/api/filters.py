"""Query filters for the job list (django-filter). Every value is validated: an invalid one
is a 400 with fields, never silently ignored (which would answer a different question)."""

import datetime as dt

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter

from jobs.models import FailureClass, JobStatus, ReportJob, ReviewState


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 moment, in UTC: PostgreSQL refuses offsets beyond ±15:59 that Python
    accepts, and a moment near year 1 may not exist in UTC at all."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return value
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:
            raise forms.ValidationError("This moment is out of range.", code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class StrictBooleanField(forms.Field):
    """true/false (or 1/0); anything else is an error, where django-filter's own boolean
    filter would read it as "no filter"."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise forms.ValidationError("Use true or false.", code="invalid")


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class NamedFilterBackend(DjangoFilterBackend):
    """django-filter's backend, run only when the query names one of the filter set's
    parameters. Building a filter set deep-copies every filter and its form field: for a
    plain page of the list, that was a tenth of the request, to filter nothing."""

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None and not any(name in request.query_params for name in filterset_class.base_filters):
            return queryset
        return super().filter_queryset(request, queryset, view)


class StrictOrderingFilter(OrderingFilter):
    """`?ordering=` with a field it cannot sort by is a 400, not the default order."""

    def remove_invalid_fields(self, queryset, fields, view, request):
        valid = super().remove_invalid_fields(queryset, fields, view, request)
        invalid = [term for term in fields if term not in valid]
        if invalid:
            allowed = ", ".join(name for name, _ in self.get_valid_fields(queryset, view, {"request": request}))
            raise ValidationError({self.ordering_param: f"Cannot sort by {', '.join(invalid)}; use one of {allowed} (prefix - to reverse)."})
        return valid


class JobFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=JobStatus.choices, help_text="Repeat for several.")
    review_state = django_filters.MultipleChoiceFilter(choices=ReviewState.choices)
    failure_class = django_filters.MultipleChoiceFilter(choices=FailureClass.choices)
    template = django_filters.CharFilter(field_name="template__slug", max_length=64, help_text="Template slug.")
    workspace = django_filters.CharFilter(field_name="workspace__slug", max_length=64, help_text="Workspace slug.")
    archived = StrictBooleanFilter(
        method="filter_archived", help_text="true: only archived jobs; false: only jobs not archived."
    )
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = ReportJob
        fields = ["status", "review_state", "failure_class", "template", "workspace", "archived"]

    def filter_archived(self, queryset, name, value):
        return queryset.filter(archived_at__isnull=not value)
