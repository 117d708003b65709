"""Budgets: a template's cost cap per report and a workspace's monthly budget.

Two checks use them. Before a submit, a pre-flight estimate of the least the report can cost
(the text of the sources known now, read once per step that must read them, and a small
answer) must fit in what is left of each budget, or the submit is refused with
`budget_exceeded` naming the budget. Before every provider call of a run, the job's cost so
far is held against the same budgets (`budget_reached`): a run that has reached one stops.

A response's cost is known only once it ends, so calls still running are held against the
budgets at the least they can cost (`call_estimate`, kept on the call at its create). While
what has been spent and what is running reach a budget, no new call starts (`budget_held`):
the run waits for its running calls (research questions side by side, or other jobs of the
workspace) and goes on, or stops, on what they cost. Without this, every research question,
and every job of a workspace, started against the same spend and together ran far past it.

An unknown price (a model missing from the price table) cannot be held against a budget: the
estimate is then None and the pre-flight check lets the submit through; the job's cost shows
as unknown with its warning.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from reportdesk.errors import BudgetExceeded
from reportdesk.models import Workspace

from .models import ACTIVE_STATUSES, CallStatus, ProviderCall, ReportJob, ReportTemplate, TemplateMode
from .pricing import estimate_cost

CHARS_PER_TOKEN = 4
# The smallest answer a step writes, in tokens: a floor, so the estimate stays a lower bound.
MIN_ANSWER_TOKENS = 500
TEMPLATE_CAP = "template_cost_cap"
WORKSPACE_MONTHLY = "workspace_monthly_budget"


def month_start(now: dt.datetime | None = None) -> dt.datetime:
    now = now or timezone.now()
    return now.astimezone(dt.timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def workspace_month_spent(*, workspace_id: int, now: dt.datetime | None = None) -> Decimal:
    """What the workspace's jobs created this calendar month (UTC) have cost so far (known costs)."""
    total = ReportJob.objects.filter(workspace_id=workspace_id, created_at__gte=month_start(now)).aggregate(
        total=Sum("cost_usd")
    )["total"]
    return total or Decimal(0)


def submit_estimate(*, template: ReportTemplate, source_chars: int) -> Decimal | None:
    """The least a report of this template over sources of this size can cost, in USD."""
    source_tokens = min(source_chars, settings.CONTEXT_BUDGET_CHARS) // CHARS_PER_TOKEN
    prompt_tokens = len(template.instructions) // CHARS_PER_TOKEN
    # Multi-step research reads the sources at least twice: in the plan, and again in the
    # synthesis (which carries the plan's input along its chain).
    reads = 2 if template.mode == TemplateMode.MULTI_STEP else 1
    answer = min(MIN_ANSWER_TOKENS, template.max_output_tokens or MIN_ANSWER_TOKENS)
    return estimate_cost(
        model=template.model, input_tokens=reads * (source_tokens + prompt_tokens), output_tokens=reads * answer
    )


def _running_calls():
    """Calls that may still bill and that someone follows: in flight, of an attempt a job
    under way is on. (A stopped job's create that never answered stays "unconfirmed": nobody
    follows it any more, and it must not hold a budget for ever.)"""
    return ProviderCall.objects.filter(
        status__in=CallStatus.IN_FLIGHT, job__status__in=ACTIVE_STATUSES, attempt_id=F("job__current_attempt_id")
    )


def workspace_month_reserved(*, workspace_id: int, now: dt.datetime | None = None) -> Decimal:
    """What the workspace's calls still running (jobs created this month) will cost at least."""
    total = _running_calls().filter(job__workspace_id=workspace_id, job__created_at__gte=month_start(now)).aggregate(
        total=Sum("estimated_cost_usd")
    )["total"]
    return total or Decimal(0)


def call_estimate(*, model: str, input_chars: int, carried_tokens: int, max_output_tokens: int | None) -> Decimal | None:
    """The least one call can cost: what it sends, what its chain carries (a response chained
    with previous_response_id is billed for its predecessor's input and output again), and a
    small answer, at the model's price without cache discounts."""
    answer = min(MIN_ANSWER_TOKENS, max_output_tokens or MIN_ANSWER_TOKENS)
    return estimate_cost(model=model, input_tokens=input_chars // CHARS_PER_TOKEN + carried_tokens, output_tokens=answer)


def budget_check_submit(*, workspace: Workspace, template: ReportTemplate, source_chars: int) -> None:
    """Refuse a submit whose least cost does not fit in the template's cap or in what is left of
    the workspace's monthly budget (BudgetExceeded, 400 `budget_exceeded`)."""
    if template.cost_cap_usd is None and workspace.monthly_budget_usd is None:
        return
    estimate = submit_estimate(template=template, source_chars=source_chars)
    if estimate is None:
        return
    if template.cost_cap_usd is not None and estimate > template.cost_cap_usd:
        raise BudgetExceeded(
            f"This report would cost at least ${estimate:.4f}, more than the template {template.name}'s "
            f"cost cap of ${template.cost_cap_usd} per report. Use fewer or shorter sources, or ask an "
            "operator to raise the cap.",
            fields={"budget": TEMPLATE_CAP, "estimate_usd": f"{estimate:.6f}", "cap_usd": str(template.cost_cap_usd)},
        )
    if workspace.monthly_budget_usd is not None:
        left = (workspace.monthly_budget_usd - workspace_month_spent(workspace_id=workspace.pk)
                - workspace_month_reserved(workspace_id=workspace.pk))
        if estimate > left:
            raise BudgetExceeded(
                f"This report would cost at least ${estimate:.4f}, more than the ${max(left, Decimal(0)):.2f} left "
                f"of workspace {workspace.name}'s monthly budget of ${workspace.monthly_budget_usd}.",
                fields={"budget": WORKSPACE_MONTHLY, "estimate_usd": f"{estimate:.6f}", "left_usd": f"{left:.2f}"},
            )


def budget_reached(*, job: ReportJob) -> str:
    """Why the job may not make another provider call ("" when it may): its cost so far has
    reached its template's cap, or its workspace has spent its monthly budget."""
    template = job.template
    spent = job.cost_usd
    if template.cost_cap_usd is not None and spent is not None and spent >= template.cost_cap_usd:
        return (
            f"Stopped at ${spent:.4f}: the template {template.name}'s cost cap of ${template.cost_cap_usd} "
            "per report is reached."
        )
    budget = job.workspace.monthly_budget_usd
    if budget is not None:
        month = workspace_month_spent(workspace_id=job.workspace_id)
        if month >= budget:
            return (
                f"Stopped: workspace {job.workspace.name} has spent ${month:.2f} of its monthly budget "
                f"of ${budget} this month."
            )
    return ""


@dataclass(frozen=True)
class BudgetUse:
    label: str
    used: Decimal
    limit: Decimal

    @property
    def percent(self) -> int:
        return int(self.used * 100 / self.limit) if self.limit else 0


def job_cap_use(*, job: ReportJob) -> BudgetUse | None:
    """The job's cost against its template's cap (None without a cap or with an unknown cost)."""
    cap = job.template.cost_cap_usd
    if cap is None or job.cost_usd is None:
        return None
    return BudgetUse(label=f"{job.template.name} cap per report", used=job.cost_usd, limit=cap)


def workspaces_month_use(*, workspace_ids: list[int] | None) -> list[BudgetUse]:
    """This month's spend of each workspace with a monthly budget, among those given (all:
    None). One query."""
    workspaces = Workspace.objects.exclude(monthly_budget_usd=None).order_by("name")
    if workspace_ids is not None:
        workspaces = workspaces.filter(pk__in=workspace_ids)
    workspaces = workspaces.annotate(spent=Sum("jobs__cost_usd", filter=Q(jobs__created_at__gte=month_start())))
    return [
        BudgetUse(label=workspace.name, used=workspace.spent or Decimal(0), limit=workspace.monthly_budget_usd)
        for workspace in workspaces
    ]


def budget_held(*, job: ReportJob, lock: bool = False) -> str:
    """Why no new call of the job may start yet ("" when one may): what has been spent and what
    is still running reach its template's cap, or its workspace's monthly budget. Only while
    calls are running: once they end, their cost decides (budget_reached).

    `lock`, inside the transaction that records the new call: the workspace's row is locked
    first, so two workers starting calls of one workspace at once take turns, each seeing the
    other's call."""
    template = job.template
    if template.cost_cap_usd is not None:
        running = _running_calls().filter(job=job).aggregate(n=Count("id"), total=Sum("estimated_cost_usd"))
        if running["n"] and (job.cost_usd or 0) + (running["total"] or 0) >= template.cost_cap_usd:
            return (
                f"Waiting: the {running['n']} response(s) still running may take the job to the template "
                f"{template.name}'s cost cap of ${template.cost_cap_usd}."
            )
    budget = job.workspace.monthly_budget_usd
    if budget is not None:
        if lock:
            list(Workspace.objects.select_for_update().filter(pk=job.workspace_id).values_list("pk"))
        reserved = workspace_month_reserved(workspace_id=job.workspace_id)
        if reserved and workspace_month_spent(workspace_id=job.workspace_id) + reserved >= budget:
            return (
                f"Waiting: responses still running in workspace {job.workspace.name} may spend what is "
                f"left of its monthly budget of ${budget}."
            )
    return ""
