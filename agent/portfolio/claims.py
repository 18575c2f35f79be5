"""How the coach knows each claim on the portfolio: verified (how, when) or stated.

`how_verified` is the one place that words it, so richer evidence records (what was
audited at which commit, which traces were received) change the wording here only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from memory.models import Evidence

STATED = "stated by the learner"
_HOW = {
    "deployment": "the coach fetched the URL itself",
    "audit": "the coach audited the repository",
    "evals": "the coach found the evals in the repository",
    "ci_gate": "the coach found the CI gate in the repository",
    "observability": "the coach received the app's traces",
    "cost_tracking": "measured from the traces the coach received",
}


def how_verified(e: Evidence) -> str:
    """One phrase: how the coach established this record, or that the learner stated it."""
    details = e.details or {}
    for key in ("how", "verified_how"):
        said = details.get(key)
        if isinstance(said, str) and said.strip():
            return said.strip()
    if not e.verified:
        return STATED
    how = _HOW.get(e.kind, "checked by the coach")
    if e.kind == "deployment" and details.get("status_code"):
        how += f" (HTTP {details['status_code']})"
    return how


def day(value: datetime | None) -> str | None:
    """A record's UTC date (SQLite gives naive UTC, PostgreSQL aware datetimes)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.date().isoformat()


def _percent(rate: Any) -> str | None:
    try:
        return f"{float(rate) * 100:.0f}%"
    except (TypeError, ValueError):
        return None


def summary(e: Evidence) -> str:
    """The claim in words, from the record's details."""
    d = e.details or {}
    if e.kind == "evals":
        parts = [f"{d.get('cases')} cases"]
        if (rate := _percent(d.get("pass_rate"))) is not None:
            parts.append(f"{rate} pass")
        if d.get("grader"):
            parts.append(f"graded by {d['grader']}")
        return ", ".join(parts)
    if e.kind == "ci_gate":
        where = f" ({d['config_path']})" if d.get("config_path") else ""
        return f"{d.get('provider') or 'CI'}{where} blocks regressions"
    if e.kind == "observability":
        return " · ".join(str(d[k]) for k in ("tool", "link") if d.get(k)) or "tracing"
    if e.kind == "cost_tracking":
        return f"${d.get('cost_usd')} per {d.get('per') or 'request'}"
    return str(d.get("summary") or e.kind)


# Only these details leave the coach; anything else a record holds stays in it.
_VALUES = {"evals": ("cases", "pass_rate", "grader"), "ci_gate": ("provider", "config_path"),
           "observability": ("tool", "link"), "cost_tracking": ("cost_usd", "per")}


def claim(e: Evidence) -> dict[str, Any]:
    d = e.details or {}
    return {"summary": summary(e), "verified": bool(e.verified), "how": how_verified(e),
            "when": day(e.checked_at),
            "value": {k: d[k] for k in _VALUES.get(e.kind, ()) if d.get(k) is not None}}
