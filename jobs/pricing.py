"""Cost of provider usage from the configured, dated price table (settings.PRICE_TABLE).

What is billed: uncached input tokens at `input`, cache reads at `cached_input`, cache writes
at `cache_write` (default `input`), output tokens (reasoning included) at `output`, and each
web *search* action at `web_search`. Opening a page or finding in it is not a search, and
function calls cost nothing beyond the tokens they carry. A model missing from the table has
an unknown cost — `usd` is None with a warning — never $0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from .providers.base import Usage

_MILLION = Decimal(1_000_000)
_CENT_FRACTION = Decimal("0.000001")
# A dated snapshot of a listed model: gpt-5.2-2025-12-11 bills as gpt-5.2.
_SNAPSHOT = re.compile(r"^(?P<base>.+?)-\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Cost:
    usd: Decimal | None  # None: the model has no price in the table
    warning: str = ""


def model_prices(model: str) -> dict[str, Decimal] | None:
    """Prices for `model` or, for a dated snapshot, for its base name; None when not listed.

    Only an exact name or a snapshot date suffix matches: gpt-5.3 is not priced as gpt-5.
    """
    table = settings.PRICE_TABLE
    if model in table and not model.startswith("_"):
        return table[model]
    match = _SNAPSHOT.match(model or "")
    if match and match["base"] in table:
        return table[match["base"]]
    return None


def unknown_model_warning(model: str) -> str:
    return (
        f"No price for model {model or '(none)'} in the price table of {settings.PRICE_TABLE_AS_OF}: "
        "its cost is unknown. Add it to PRICE_TABLE."
    )


def usage_cost(*, model: str, usage: Usage) -> Cost:
    prices = model_prices(model)
    if prices is None:
        return Cost(usd=None, warning=unknown_model_warning(model))
    input_price = prices.get("input", Decimal(0))
    cached = min(usage.cached_tokens, usage.input_tokens)
    written = min(usage.cache_write_tokens, usage.input_tokens - cached)
    uncached = usage.input_tokens - cached - written
    tokens = (
        uncached * input_price
        + cached * prices.get("cached_input", input_price)
        + written * prices.get("cache_write", input_price)
        + usage.output_tokens * prices.get("output", Decimal(0))
    ) / _MILLION
    search_price = prices.get("web_search", settings.PRICE_TABLE.get("_tools", {}).get("web_search"))
    if search_price is None and usage.web_searches:
        # The searches happened and were billed: a cost without them is a floor, and says so.
        return Cost(
            usd=tokens.quantize(_CENT_FRACTION),
            warning=f"No web search price in the price table of {settings.PRICE_TABLE_AS_OF}: "
            f"{usage.web_searches} search(es) are not counted. Add web_search to PRICE_TABLE.",
        )
    return Cost(usd=(tokens + usage.web_searches * (search_price or 0)).quantize(_CENT_FRACTION))


def estimate_cost(*, model: str, input_tokens: int, output_tokens: int, web_searches: int = 0) -> Decimal | None:
    """A pre-flight estimate for a request of this size (no cache discount: the worst case)."""
    return usage_cost(
        model=model, usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens, web_searches=web_searches)
    ).usd
