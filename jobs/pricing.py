"""Cost of provider usage from the configured price table (settings.PRICE_TABLE)."""

from decimal import Decimal

from django.conf import settings

from .providers.base import Usage

_MILLION = Decimal(1_000_000)


def model_prices(model: str) -> dict[str, Decimal]:
    """Prices for `model`, or for the longest configured name it starts with
    (dated snapshots such as gpt-5.2-2026-01-15 bill as gpt-5.2)."""
    table = settings.PRICE_TABLE
    if model in table:
        return table[model]
    matches = [name for name in table if not name.startswith("_") and model.startswith(name)]
    return table[max(matches, key=len)] if matches else {}


def usage_cost(*, model: str, usage: Usage, web_search_calls: int = 0) -> Decimal:
    prices = model_prices(model)
    uncached = max(usage.input_tokens - usage.cached_tokens, 0)
    cost = (
        uncached * prices.get("input", Decimal(0))
        + usage.cached_tokens * prices.get("cached_input", prices.get("input", Decimal(0)))
        + usage.output_tokens * prices.get("output", Decimal(0))
    ) / _MILLION
    cost += web_search_calls * settings.PRICE_TABLE.get("_tools", {}).get("web_search", Decimal(0))
    return cost.quantize(Decimal("0.000001"))
