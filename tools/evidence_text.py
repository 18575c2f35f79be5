"""Evidence as readable sentences with their strength, for `coach projects show` and the
portfolio page: "verified — fetched 2026-12-01, HTTP 200 in 43 ms", not key·value dumps.

A record is *verified* when the coach established it itself (it fetched the URL, audited
the repository at a commit, received traces) and *stated* when the learner said so.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

Describe = Callable[[dict[str, Any]], str]


def _day(when: Any) -> str:
    if isinstance(when, datetime):
        return when.date().isoformat()
    return str(when or "")[:10]


def _list(items: list[str], limit: int = 3) -> str:
    return ", ".join(items[:limit]) + (", …" if len(items) > limit else "")


def _deployment(d: dict[str, Any]) -> str:
    where = d.get("final_url") or d.get("url")
    if d.get("ok") is False:
        return f"{d.get('url')} — failed the check on {_day(d.get('checked_at'))}: " \
               f"{d.get('reason')}"
    warn = f" ({d['warnings'][0]})" if d.get("warnings") else ""
    return (f"{where} — verified: fetched {_day(d.get('checked_at'))}, HTTP "
            f"{d.get('status_code')} in {d.get('latency_ms')} ms{warn}")


def _audit(d: dict[str, Any]) -> str:
    where = d.get("url") or d.get("path")
    if d.get("auditable") is False or d.get("ok") is False and not d.get("commit"):
        return f"{where} — could not be audited: {d.get('reason', 'unreadable')}"
    commit = str(d.get("commit") or "")[:7]
    at = f"at commit {commit}" if commit else "(working tree)"
    parts = []
    runs: dict[str, list[str]] = d.get("ci_runs", {})
    if d.get("ci"):
        running = [f"{c} runs {', '.join(runs[c])}" if runs.get(c) else f"{c} runs no checks"
                   for c in d["ci"][:2]]
        parts.append("CI: " + "; ".join(running))
    counted = {p: n for p, n in (d.get("eval_cases") or {}).items() if n is not None}
    if d.get("evals"):
        cases = f", {sum(counted.values())} cases counted" if counted else ""
        parts.append(f"{len(d['evals'])} eval file{'s' if len(d['evals']) != 1 else ''}{cases}")
    tools = sorted(d.get("tracing_tools") or {})
    if tools:
        parts.append("tracing with " + _list(tools))
    found = "; ".join(parts) if parts else "no CI, evals or tracing found"
    return (f"{where} — verified: audited {at} on {_day(d.get('checked_at'))}"
            f" ({d.get('findings', [''])[0]}): {found}")


def _evals(d: dict[str, Any]) -> str:
    rate = d.get("pass_rate")
    shown = f", {rate:.0%} pass" if isinstance(rate, int | float) else ""
    return f"{d.get('cases')} cases{shown}, graded by {d.get('grader') or '?'}"


def _ci(d: dict[str, Any]) -> str:
    return ", ".join(str(v) for v in (d.get("provider"), d.get("config_path")) if v) or "CI"


def _observability(d: dict[str, Any]) -> str:
    if d.get("source") == "traces":
        services = _list(d.get("services", []))
        tools = f" ({_list(d['tools'])})" if d.get("tools") else ""
        return (f"verified — received {d.get('spans')} spans in {d.get('traces')} traces "
                f"from {services}{tools}, {_day(d.get('first_received'))} to "
                f"{_day(d.get('last_received'))}")
    link = f" {d['link']}" if d.get("link") else ""
    return f"{d.get('tool')}{link}"


def _cost(d: dict[str, Any]) -> str:
    if d.get("source") == "traces":
        p95 = d.get("per_request_p95_usd")
        models = _list(d.get("models", []))
        unknown = f"; no price for {_list(d['unknown_models'])}" if d.get("unknown_models") \
            else ""
        return (f"verified — ${d.get('per_request_mean_usd')} per request (mean; p95 ${p95}) "
                f"over {d.get('requests_priced')} received traces calling {models}{unknown}")
    return f"${d.get('cost_usd')} per {d.get('per')}"


def _other(d: dict[str, Any]) -> str:
    if d.get("acknowledged"):
        return f"acknowledged: step 4 rests on your word (\"{d['acknowledged']}\")"
    if d.get("confirmed"):
        return f"confirmed by you: \"{d['confirmed']}\""
    return ", ".join(f"{k} {v}" for k, v in d.items() if k not in ("verified", "ok",
                                                                   "checked_at"))


def _recheck(d: dict[str, Any]) -> str:
    if d.get("resolved"):
        return f"re-checked: {', '.join(d.get('steps', []))} passes again"
    return f"needs re-check: {'; '.join(d.get('reasons', []))}"


LABELS: dict[str, tuple[str, Describe]] = {
    "deployment": ("Deployment", _deployment), "audit": ("Repository", _audit),
    "evals": ("Evals", _evals), "ci_gate": ("CI gate", _ci),
    "observability": ("Tracing", _observability), "cost_tracking": ("Cost", _cost),
    "other": ("Note", _other), "recheck": ("Consistency", _recheck),
}
# Records whose sentence already says how the coach checked them.
_SELF_DESCRIBED = {"deployment", "audit", "recheck"}


def strength(record: dict[str, Any]) -> str:
    return "verified" if record.get("verified") else "stated"


def sentence(kind: str, record: dict[str, Any]) -> str:
    """One readable sentence for a record (a view's evidence entry) with its strength."""
    label, describe = LABELS.get(kind, (kind, _other))
    text = describe(record)
    if kind in _SELF_DESCRIBED or text.startswith("verified"):
        return f"{label}: {text}"
    if not record.get("verified"):
        return f"{label}: {text} — stated by you on {_day(record.get('checked_at'))}"
    fetched = record.get("link_check") or {}
    how = (f": link fetched {_day(fetched.get('checked_at'))}, HTTP {fetched.get('status_code')}"
           f" in {fetched.get('latency_ms')} ms") if fetched.get("ok") else ""
    return f"{label}: {text} — verified{how}"
