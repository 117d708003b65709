"""What responses billed: a terminal response's usage priced for its call, and the job's totals
over all its calls (orphans included: they were billed too)."""

from __future__ import annotations

import logging
from decimal import Decimal

from django.db.models import Sum

from ..models import ProviderCall, ReportJob
from ..pricing import usage_cost
from ..providers.base import ResponseState

log = logging.getLogger(__name__)


def call_usage_fields(*, call: ProviderCall, state: ResponseState) -> dict:
    """What a terminal response billed, priced by the model that answered (a dated snapshot)."""
    usage = state.usage
    model = state.model or call.model
    cost = usage_cost(model=model, usage=usage)
    if cost.warning:
        log.warning("job %s call %s: %s", call.job_id, call.pk, cost.warning)
    return {
        "model": model, "input_tokens": usage.input_tokens, "cached_tokens": usage.cached_tokens,
        "cache_write_tokens": usage.cache_write_tokens, "output_tokens": usage.output_tokens,
        "reasoning_tokens": usage.reasoning_tokens, "tool_calls": usage.tool_calls,
        "web_searches": usage.web_searches, "cost_usd": cost.usd, "cost_warning": cost.warning[:300],
    }


def job_usage_totals(*, job_id: int) -> None:
    """The job's usage over all its calls. Its cost is unknown (null) as soon as one billed
    call's is: a partial sum would read as the whole."""
    calls = ProviderCall.objects.filter(job_id=job_id)
    totals = calls.aggregate(
        input_tokens=Sum("input_tokens"), cached_tokens=Sum("cached_tokens"), output_tokens=Sum("output_tokens"),
        reasoning_tokens=Sum("reasoning_tokens"), tool_calls=Sum("tool_calls"), cost_usd=Sum("cost_usd"),
    )
    warning = calls.exclude(cost_warning="").order_by("-id").values_list("cost_warning", flat=True).first() or ""
    known_cost = totals.pop("cost_usd")
    cost = None if warning else known_cost or Decimal(0)
    model = calls.order_by("-id").values_list("model", flat=True).first() or ""
    ReportJob.objects.filter(pk=job_id).update(
        model=model, cost_usd=cost, cost_warning=warning, **{k: v or 0 for k, v in totals.items()}
    )
