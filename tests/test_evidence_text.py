"""Evidence shown as sentences with their strength."""

from __future__ import annotations

from tools.evidence_text import sentence, strength


def test_a_deployment_check_says_it_was_fetched() -> None:
    record = {"ok": True, "verified": True, "url": "https://a.example/", "status_code": 200,
              "final_url": "https://a.example/", "latency_ms": 43,
              "checked_at": "2026-12-01T10:00:00+00:00", "warnings": []}
    assert sentence("deployment", record) == \
        "Deployment: https://a.example/ — verified: fetched 2026-12-01, HTTP 200 in 43 ms"
    failed = {**record, "ok": False, "reason": "HTTP 500 from https://a.example/"}
    assert sentence("deployment", failed) == ("Deployment: https://a.example/ — failed the "
                                              "check on 2026-12-01: HTTP 500 from "
                                              "https://a.example/")


def test_an_audit_says_the_commit_and_what_it_found() -> None:
    record = {"verified": True, "ok": True, "path": "/src/tool", "commit": "abc1234def",
              "checked_at": "2026-12-01T10:00:00", "findings": ["3 commits from a to b"],
              "ci": [".github/workflows/ci.yml"],
              "ci_runs": {".github/workflows/ci.yml": ["pytest"]},
              "evals": ["evals/cases.jsonl"], "eval_cases": {"evals/cases.jsonl": 24},
              "tracing_tools": {"opentelemetry": ["app.py"]}}
    assert sentence("audit", record) == (
        "Repository: /src/tool — verified: audited at commit abc1234 on 2026-12-01 (3 commits "
        "from a to b): CI: .github/workflows/ci.yml runs pytest; 1 eval file, 24 cases "
        "counted; tracing with opentelemetry")
    unreadable = {"verified": True, "ok": False, "url": "https://git.example/x.git",
                  "auditable": False, "reason": "needs sign-in"}
    assert sentence("audit", unreadable) == \
        "Repository: https://git.example/x.git — could not be audited: needs sign-in"


def test_stated_and_received_evidence() -> None:
    evals = {"cases": 24, "pass_rate": 0.91, "grader": "exact match", "verified": False,
             "checked_at": "2026-12-01T10:00:00"}
    assert strength(evals) == "stated"
    assert sentence("evals", evals) == \
        "Evals: 24 cases, 91% pass, graded by exact match — stated by you on 2026-12-01"
    traced = {"source": "traces", "verified": True, "spans": 6, "traces": 3,
              "services": ["handover-app"], "tools": ["opentelemetry"],
              "first_received": "2026-12-01T10:00:00", "last_received": "2026-12-02T09:00:00"}
    assert strength(traced) == "verified"
    assert sentence("observability", traced) == (
        "Tracing: verified — received 6 spans in 3 traces from handover-app (opentelemetry), "
        "2026-12-01 to 2026-12-02")
    cost = {"source": "traces", "verified": True, "per_request_mean_usd": "0.0002",
            "per_request_p95_usd": "0.0003", "requests_priced": 3,
            "models": ["claude-haiku-5-5"], "unknown_models": []}
    assert sentence("cost_tracking", cost) == (
        "Cost: verified — $0.0002 per request (mean; p95 $0.0003) over 3 received traces "
        "calling claude-haiku-5-5")
    stated_cost = {"cost_usd": "0.004", "per": "request", "checked_at": "2026-12-01"}
    assert sentence("cost_tracking", stated_cost) == \
        "Cost: $0.004 per request — stated by you on 2026-12-01"
