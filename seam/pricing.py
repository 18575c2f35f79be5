"""Exact-decimal token costs from a dated price table kept as data.

The table ships as `prices.json`; a user file at `$COACH_HOME/prices.json` (same
shape) adds or replaces models, so a new model can be priced without a release.
A model that is not in the table has an unknown cost (None), never $0.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

MILLION = Decimal(1_000_000)
RATE_KEYS = ("input", "cache_write_5m", "cache_write_1h", "cache_read", "output")


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Usage:
    """Token counts as the Messages API reports them (input excludes cached tokens)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    # Split of cache writes by TTL; when absent every write counts as 5-minute.
    cache_creation_5m_input_tokens: int | None = None
    cache_creation_1h_input_tokens: int | None = None
    service_tier: str | None = None
    inference_geo: str | None = None

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens

    def writes(self) -> tuple[int, int]:
        w5m, w1h = self.cache_creation_5m_input_tokens, self.cache_creation_1h_input_tokens
        if w5m is None and w1h is None:
            return self.cache_creation_input_tokens, 0
        return w5m or 0, w1h or 0


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@dataclass(frozen=True)
class PriceTable:
    models: dict[str, dict[str, Any]]
    multipliers: dict[str, Decimal]

    @classmethod
    def load(cls, user_file: Path | None = None) -> PriceTable:
        data = _load(Path(__file__).with_name("prices.json"))
        entries = list(data["models"])
        multipliers = dict(data.get("multipliers", {}))
        if user_file is not None and user_file.exists():
            extra = _load(user_file)
            entries += extra.get("models", [])
            multipliers.update(extra.get("multipliers", {}))
        models = {model_id: entry for entry in entries for model_id in entry["ids"]}
        return cls(models, {k: Decimal(v) for k, v in multipliers.items()})

    def knows(self, model: str) -> bool:
        return model in self.models

    def rates(self, model: str, on: date, prompt_tokens: int = 0) -> dict[str, Decimal | None]:
        entry = self.models[model]
        periods = sorted(entry["periods"], key=lambda p: p["from"])
        period = None
        for candidate in periods:
            if date.fromisoformat(candidate["from"]) <= on:
                period = candidate
        if period is None:
            # A call from before the model's first price: no rate is known for that day,
            # so its cost is unknown (None), never the rates of a later period.
            log.warning("no price for model %r on %s (its first price is from %s): its cost"
                        " is recorded as unknown", model, on, periods[0]["from"])
            return dict.fromkeys(RATE_KEYS)
        band = period.get("long_context")
        source = band if band and prompt_tokens > band["above_tokens"] else period
        return {k: None if source.get(k) is None else Decimal(source[k]) for k in RATE_KEYS}

    def cost(self, model: str, usage: Usage, on: date | None = None) -> Decimal | None:
        """Cost in USD, or None when the model or a needed rate is unknown."""
        if model not in self.models:
            log.warning("no price for model %r: its cost is recorded as unknown", model)
            return None
        rates = self.rates(model, on or date.today(), usage.prompt_tokens)
        w5m, w1h = usage.writes()
        parts = [(usage.input_tokens, "input"), (w5m, "cache_write_5m"),
                 (w1h, "cache_write_1h"), (usage.cache_read_input_tokens, "cache_read"),
                 (usage.output_tokens, "output")]
        total = Decimal(0)
        for tokens, key in parts:
            if not tokens:
                continue
            rate = rates[key]
            if rate is None:
                return None
            total += Decimal(tokens) * rate
        total /= MILLION
        if usage.service_tier == "batch":
            total *= self.multipliers["batch"]
        if usage.inference_geo == "us" and self.models[model].get("us_geo"):
            total *= self.multipliers["us_geo"]
        return total


@lru_cache(maxsize=8)
def price_table(user_file: Path | None = None) -> PriceTable:
    return PriceTable.load(user_file)
