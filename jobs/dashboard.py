"""The metrics dashboard in the admin: DESIGN.md's metrics over a chosen window, as figures
and server-rendered SVG charts (jobs.charts). The figures come from jobs.metrics."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.template.response import TemplateResponse
from django.utils import timezone

from reportdesk.formatting import duration
from reportdesk.models import Workspace

from . import charts
from .budgets import workspaces_month_use
from .metrics import WINDOW_EARLIEST, WINDOW_LATEST, metrics_compute
from .models import FailureClass, JobStatus
from .policy import visible_workspace_ids


def metrics_page(request, *, admin_site, opts):
    visible = visible_workspace_ids(request.user)
    workspaces = Workspace.objects.all() if visible is None else Workspace.objects.filter(pk__in=visible)
    form = MetricsWindowForm(request.GET or None, workspaces=workspaces)
    since, until, workspace_ids = form.window(visible)
    figures = metrics_compute(workspace_ids=workspace_ids, since=since, until=until)
    context = {
        **admin_site.each_context(request),
        "opts": opts,
        "title": "Metrics",
        "form": form,
        "m": figures,
        "since": since,
        "until_inclusive": until - dt.timedelta(days=1),
        "cards": _metric_cards(figures) + _budget_cards(workspace_ids),
        "over_time": charts.stacked_columns(
            figures["states_over_time"], keys=[(s.value, s.label) for s in JobStatus]
        ),
        "by_status": charts.horizontal_bars(
            [(s.value, s.label, figures["jobs"]["by_status"][s.value], str(figures["jobs"]["by_status"][s.value])) for s in JobStatus]
        ),
        "retry_rates": charts.horizontal_bars(
            [
                (fc, FailureClass(fc).label if fc in FailureClass.values else fc, rate, f"{rate:.0%}")
                for fc, rate in figures["retry_rate_by_failure_class"].items()
            ],
            max_value=1, tone="rate",
        ),
        "timings": _timing_rows(figures),
    }
    return TemplateResponse(request, "admin/jobs/metrics_dashboard.html", context)


class MetricsWindowForm(forms.Form):
    """The dashboard's window: the last N days, or explicit dates; and a workspace."""

    PRESETS = [("7", "Last 7 days"), ("30", "Last 30 days"), ("90", "Last 90 days")]
    MAX_DAYS = 366
    FIRST_DAY = WINDOW_EARLIEST.date()
    LAST_DAY = (WINDOW_LATEST - dt.timedelta(days=1)).date()  # `until` is inclusive

    days = forms.ChoiceField(choices=PRESETS, required=False, initial="30")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), help_text="inclusive")
    workspace = forms.ChoiceField(required=False)

    def __init__(self, *args, workspaces, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workspace"].choices = [("", "All my workspaces")] + [(str(w.pk), w.name) for w in workspaces]

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if any(day and not self.FIRST_DAY <= day <= self.LAST_DAY for day in (since, until)):
            raise forms.ValidationError(f"Choose a day between {self.FIRST_DAY} and {self.LAST_DAY}.")
        if since or until:
            # One day given alone is measured against what the window takes for the other.
            until = until or timezone.localdate()
            if since and since > until:
                raise forms.ValidationError("The window must start before it ends.")
            if since and (until - since).days >= self.MAX_DAYS:
                raise forms.ValidationError(f"Choose at most {self.MAX_DAYS} days.")
        return data

    def window(self, visible: list[int] | None) -> tuple[dt.datetime, dt.datetime, list[int] | None]:
        """(since, until, workspace ids): whole days in the current time zone, `until` exclusive."""
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        today = timezone.localdate()
        if data.get("since") or data.get("until"):
            last = data.get("until") or today
            first = data.get("since") or last - dt.timedelta(days=29)
        else:
            last = today
            first = today - dt.timedelta(days=int(data.get("days") or 30) - 1)
        since = timezone.make_aware(dt.datetime.combine(first, dt.time.min))
        until = timezone.make_aware(dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min))
        workspace_ids = visible
        if data.get("workspace"):
            workspace_ids = [int(data["workspace"])]
        return since, until, workspace_ids


def _seconds(value: float | None) -> str:
    return "—" if value is None else duration(value)


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}".rstrip("0").rstrip(".")


def _budget_cards(workspace_ids: list[int] | None) -> list[dict]:
    """This calendar month's spend of each workspace with a monthly budget (whatever the window)."""
    return [
        {"label": f"Budget this month: {use.label}", "value": f"${use.used:.2f} of ${use.limit}",
         "note": f"{use.percent}% used", "warn": use.percent >= 90}
        for use in workspaces_month_use(workspace_ids=workspace_ids)
    ]


def _metric_cards(m: dict) -> list[dict]:
    cost = m["cost_per_completed_report_usd"]
    review = m["review"]
    return [
        {"label": "Reports submitted", "value": str(m["jobs"]["submitted"]),
         "note": f"{m['jobs']['by_status']['completed']} completed"},
        {"label": "Cost per completed report", "value": "—" if cost is None else f"${cost:.4f}",
         "note": "all spend in the window ÷ completed reports"},
        {"label": "Runtime p50 / p95", "value": f"{_seconds(m['runtime_seconds']['p50'])} / {_seconds(m['runtime_seconds']['p95'])}",
         "note": "completed and drafts"},
        {"label": "Queued before execution p50 / p95",
         "value": f"{_seconds(m['queued_seconds']['p50'])} / {_seconds(m['queued_seconds']['p95'])}", "note": "submit → worker"},
        {"label": "Model calls per report", "value": _number(m["model_calls_per_report"]), "note": "reports with a draft"},
        {"label": "Sources", "value": f"{m['sources']['total']} ({m['sources']['failed']} failed)",
         "note": f"{_number(m['sources']['per_job'])} per job"},
        {"label": "Review: first claim p50 / p95",
         "value": f"{_seconds(review['time_to_first_claim_seconds']['p50'])} / {_seconds(review['time_to_first_claim_seconds']['p95'])}",
         "note": "draft ready → claimed"},
        {"label": "Review: decision p50 / p95",
         "value": f"{_seconds(review['time_to_decision_seconds']['p50'])} / {_seconds(review['time_to_decision_seconds']['p95'])}",
         "note": "draft ready → decided"},
        {"label": "Rejection rate", "value": _share(review["rejection_rate"]),
         "note": f"{_number(review['revision_rounds_per_report'])} revision rounds per report"},
        {"label": "Abandoned reports", "value": str(m["abandoned_jobs"]), "note": "ready > 7 days, never opened or exported",
         "warn": bool(m["abandoned_jobs"])},
        {"label": "Export rate", "value": _share(m["export_rate"]), "note": "completed reports exported"},
    ]


def _timing_rows(m: dict) -> dict:
    """p50 and p95 of each waiting time, each pair on its own scale (they differ by orders)."""
    rows = []
    for key, label, spread in (
        ("queued", "Queued before execution", m["queued_seconds"]),
        ("runtime", "Runtime", m["runtime_seconds"]),
        ("claim", "Draft ready → first claim", m["review"]["time_to_first_claim_seconds"]),
        ("decision", "Draft ready → decision", m["review"]["time_to_decision_seconds"]),
    ):
        items = [] if spread["p95"] is None else [
            ("p50", "p50", spread["p50"], _seconds(spread["p50"])), ("p95", "p95", spread["p95"], _seconds(spread["p95"]))
        ]
        rows.append({"key": key, "label": label, "chart": charts.horizontal_bars(items, max_value=spread["p95"] or 1, width=420, row=22, label_w=40)})
    return {"rows": rows}
