"""Money per model and the session budget: what tokens cost, and when a session must stop.

Prices are US dollars per million input and output tokens. ``DEFAULT_PRICES`` is a small table
of common hosted models (list prices when written; they change, so ``pricing:`` in the config
overrides or extends it). A model with no price costs nothing in the ledger and is named in
``unpriced`` so a report can say so instead of showing a false zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from atlas_graph.usage import Usage


@dataclass(frozen=True)
class Price:
    """Dollars per million tokens."""

    input: float
    output: float

    def cost(self, usage: Mapping[str, Any]) -> float:
        """What ``usage`` (prompt and completion tokens) costs at this price."""
        prompt = int(usage.get("prompt_tokens", 0))
        completion = int(usage.get("completion_tokens", 0))
        return (prompt * self.input + completion * self.output) / 1_000_000


DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5-nano": Price(0.05, 0.40),
    "o4-mini": Price(1.10, 4.40),
    "claude-sonnet-4-5": Price(3.00, 15.00),
    "claude-haiku-4-5": Price(1.00, 5.00),
    "claude-opus-4-1": Price(15.00, 75.00),
    "gemini-2.5-pro": Price(1.25, 10.00),
    "gemini-2.5-flash": Price(0.30, 2.50),
    "grok-4-fast": Price(0.20, 0.50),
}


def price_of(model: str | None, prices: Mapping[str, Price]) -> Price | None:
    """The price of ``model``: its exact id, else without a ``provider/`` prefix, else None.

    Dated ids (``claude-sonnet-4-5-20250929``) fall back to the longest table key they start
    with, so a snapshot costs what its family costs unless the table names it.
    """
    if not model:
        return None
    for name in (model, model.rsplit("/", 1)[-1]):
        if name in prices:
            return prices[name]
    bare = model.rsplit("/", 1)[-1]
    family = max((key for key in prices if bare.startswith(key + "-")), key=len, default=None)
    return prices[family] if family else None


@dataclass(frozen=True)
class Ledger:
    """Prices the usage of one graph's roles (``role_models``: the model id per role)."""

    role_models: Mapping[str, str | None]
    prices: Mapping[str, Price] = field(default_factory=lambda: dict(DEFAULT_PRICES))

    def cost(self, usage: Mapping[str, Usage]) -> dict[str, float]:
        """Dollars per role (priced roles only) and ``total``."""
        costs: dict[str, float] = {}
        for role, spent in usage.items():
            price = price_of(self.role_models.get(role), self.prices)
            if price is not None:
                costs[role] = round(price.cost(spent), 8)
        costs["total"] = round(sum(costs.values()), 8)
        return costs

    def unpriced(self, usage: Mapping[str, Usage]) -> list[str]:
        """Roles that used tokens but have no price."""
        return sorted(
            role
            for role, spent in usage.items()
            if int(spent.get("total_tokens", 0))
            and price_of(self.role_models.get(role), self.prices) is None
        )


@dataclass(frozen=True)
class Budget:
    """The most one session may spend: tokens (all roles) and/or dollars."""

    ledger: Ledger
    max_tokens: int | None = None
    max_cost: float | None = None

    def exceeded(self, usage: Mapping[str, Usage] | None) -> str | None:
        """Why ``usage`` is at or over the budget, or None while it is within it."""
        spent = usage or {}
        tokens = sum(int(values.get("total_tokens", 0)) for values in spent.values())
        if self.max_tokens is not None and tokens >= self.max_tokens:
            return f"{tokens} tokens spent, budget {self.max_tokens}"
        if self.max_cost is not None:
            cost = self.ledger.cost(spent)["total"]
            if cost >= self.max_cost:
                return f"${cost:.6f} spent, budget ${self.max_cost:g}"
        return None
