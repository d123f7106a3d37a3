"""Per-model token prices (USD per 1,000 tokens) and the cost of one call (SPEC §5, §9).

Prices are list prices at the time of writing; a backend's ``price_per_1k_*`` settings override
them (negotiated rates, other providers). Models not in the table, such as local Ollama or vLLM
models, cost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from conversations.llm.types import Usage


@dataclass(frozen=True)
class ModelPrice:
    prompt_per_1k: Decimal = Decimal(0)
    completion_per_1k: Decimal = Decimal(0)

    def cost(self, usage: Usage) -> Decimal:
        thousand = Decimal(1000)
        return (
            self.prompt_per_1k * usage.prompt_tokens / thousand
            + self.completion_per_1k * usage.completion_tokens / thousand
        )


FREE = ModelPrice()

PRICES: dict[str, ModelPrice] = {
    "gpt-4o-mini": ModelPrice(Decimal("0.00015"), Decimal("0.0006")),
    "gpt-4o": ModelPrice(Decimal("0.0025"), Decimal("0.01")),
    "gpt-4.1": ModelPrice(Decimal("0.002"), Decimal("0.008")),
    "gpt-4.1-mini": ModelPrice(Decimal("0.0004"), Decimal("0.0016")),
    "gpt-4.1-nano": ModelPrice(Decimal("0.0001"), Decimal("0.0004")),
    "gpt-3.5-turbo": ModelPrice(Decimal("0.0005"), Decimal("0.0015")),
}


def price_for(model: str) -> ModelPrice:
    """The table price for ``model``, also for dated snapshots (``gpt-4o-mini-2024-07-18``) and
    provider-prefixed names (``openai/gpt-4o``); unknown models are free."""
    name = model.rsplit("/", 1)[-1].lower()
    if name in PRICES:
        return PRICES[name]
    # Longest prefix first, so a gpt-4o-mini snapshot is not priced as gpt-4o.
    for known in sorted(PRICES, key=len, reverse=True):
        if name.startswith(known + "-"):
            return PRICES[known]
    return FREE


def resolve_price(
    model: str,
    *,
    prompt_override: Decimal | None = None,
    completion_override: Decimal | None = None,
) -> ModelPrice:
    if prompt_override is None and completion_override is None:
        return price_for(model)
    return ModelPrice(prompt_override or Decimal(0), completion_override or Decimal(0))
