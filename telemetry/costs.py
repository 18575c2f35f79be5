"""What the coach's model calls cost, grouped for `coach costs` and the dashboards."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine
from sqlmodel import select

from memory.models import LedgerEntry, User
from memory.store import session_scope
from seam.pricing import PriceTable, Usage, price_table

GROUPS = ("model", "day", "user", "thread", "project", "purpose")
TOKENS = ("input_tokens", "output_tokens", "cache_read_input_tokens",
          "cache_creation_input_tokens")
ESTIMATED = ("estimated_input_tokens", "estimated_output_tokens")


@dataclass
class CostRow:
    key: str
    calls: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOKENS, 0))
    cost: Decimal = Decimal(0)
    unknown_calls: int = 0
    savings: Decimal = Decimal(0)
    # The offline coach's guesses: counted apart so they never pass for real usage.
    estimated_calls: int = 0
    estimated: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ESTIMATED, 0))

    def add(self, row: LedgerEntry, prices: PriceTable) -> None:
        self.calls += 1
        if row.estimated:
            self.estimated_calls += 1
            self.estimated["estimated_input_tokens"] += row.input_tokens + \
                row.cache_read_input_tokens + row.cache_creation_input_tokens
            self.estimated["estimated_output_tokens"] += row.output_tokens
        else:
            for t in TOKENS:
                self.tokens[t] += getattr(row, t)
        if row.cost_usd is None:
            self.unknown_calls += 1
        else:
            self.cost += row.cost_usd
            self.savings += cache_savings(row, prices)

    def as_dict(self) -> dict[str, Any]:
        known = self.calls - self.unknown_calls
        return {"key": self.key, "calls": self.calls, **self.tokens,
                # A group of only unknown costs has no cost, not a cost of 0.
                "cost_usd": float(self.cost) if known else None,
                "unknown_cost_calls": self.unknown_calls,
                "cache_savings_usd": float(self.savings),
                "estimated_calls": self.estimated_calls, **self.estimated}


def cache_savings(row: LedgerEntry, prices: PriceTable) -> Decimal:
    """What the cached prompt tokens would have cost as plain input, minus their cost."""
    if row.cost_usd is None or not (row.cache_read_input_tokens or
                                    row.cache_creation_input_tokens):
        return Decimal(0)
    prompt = row.input_tokens + row.cache_read_input_tokens + row.cache_creation_input_tokens
    uncached = prices.cost(row.model, Usage(input_tokens=prompt, output_tokens=row.output_tokens,
                                            service_tier=row.service_tier,
                                            inference_geo=row.inference_geo),
                           row.created_at.date())
    return (uncached - row.cost_usd) if uncached is not None else Decimal(0)


def _key(row: LedgerEntry, by: str, users: dict[int, str]) -> str:
    if by == "day":
        return row.created_at.date().isoformat()
    if by == "user":
        return users.get(row.user_id, str(row.user_id))
    value = getattr(row, f"{by}_id" if by in ("thread", "project") else by)
    return "-" if value is None else str(value)


def cost_report(engine: Engine, *, by: str = "model", user_id: int | None = None,
                since: datetime | None = None, prices: PriceTable | None = None
                ) -> dict[str, Any]:
    """`{"total_usd", "rows": [...]}`, optionally for one user and from a date on."""
    if by not in GROUPS:
        raise ValueError(f"group by one of {', '.join(GROUPS)}")
    prices = prices or price_table()
    with session_scope(engine) as s:
        query = select(LedgerEntry)
        if user_id is not None:
            query = query.where(LedgerEntry.user_id == user_id)
        if since is not None:
            query = query.where(LedgerEntry.created_at >= since)
        rows = s.exec(query).all()
        users = {u.id: u.name for u in s.exec(select(User)).all() if u.id is not None}
    groups: dict[str, CostRow] = defaultdict(lambda: CostRow(""))
    total = CostRow("total")
    for row in rows:
        groups[_key(row, by, users)].add(row, prices)
        total.add(row, prices)
    for key, group in groups.items():
        group.key = key
    ordered = sorted(groups.values(), key=lambda g: (-g.cost, g.key))
    prompt = sum(total.tokens[t] for t in TOKENS if t != "output_tokens")
    return {
        "by": by,
        "total_usd": float(total.cost) if total.calls > total.unknown_calls or not rows else None,
        "unknown_cost_calls": total.unknown_calls,
        "cache_savings_usd": float(total.savings),
        "cache_hit_share": round(total.tokens["cache_read_input_tokens"] / prompt, 4)
        if prompt else 0.0,
        "calls": total.calls,
        "estimated_calls": total.estimated_calls, **total.estimated,
        "rows": [g.as_dict() for g in ordered],
    }
