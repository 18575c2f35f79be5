"""Evidence bundles of known shape for the drafter's tests and benchmarks: thin (a problem
and little else), typical (the demo's records), rich (every kind of record, several
lessons, usage, notes from the chat) and contradicted (a stated CI gate the audit did not
find). Shaped like tools.bundle.evidence_bundle's output, record ids included."""

from __future__ import annotations

import copy
from typing import Any

DEMO_PROBLEM = ("Night-shift nurses hand over ten to twenty patients in a few minutes from "
                "handwritten notes, and abnormal vitals get lost in the noise when the ward is "
                "busy and people are tired.")


def _records(pid: int, **over: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "project": pid,
        "evidence": {"audit": None, "evals": None, "ci_gate": None, "observability": None,
                     "cost_tracking": None},
        "deployments": [], "confirmed": [], "other": [], "usage": [],
        "lessons": {"worked": [], "didnt_work": [], "tradeoff": [], "decision": []},
        "transcript": [], "interview": {},
    }
    out.update(over)
    return out


def _project(pid: int, title: str, **fields: Any) -> dict[str, Any]:
    p: dict[str, Any] = {"id": pid, "title": title, "step": "postmortem", "difficulty": 0,
                         "capabilities": [], "problem": "", "audience": "",
                         "personal_context": "", "success_criteria": "", "repo": "",
                         "mvp_scope": [], "usage_note": ""}
    p.update(fields)
    p["mvp_feature_count"] = len(p["mvp_scope"])
    p["difficulty"] = len(p["capabilities"])
    return p


def _empty(project: dict[str, Any]) -> dict[str, Any]:
    return {"project": project, "audit": None, "deployments": [], "evals": None,
            "ci_gate": None, "observability": None, "cost_tracking": None, "confirmed": [],
            "other": [], "interview": {}, "project_usage": [],
            "lessons": {"worked": [], "didnt_work": [], "tradeoff": [], "decision": []},
            "transcript_excerpts": [], "records": _records(project["id"])}


def thin() -> dict[str, Any]:
    """What a learner has at step 5 who said only the labelled minimum."""
    b = _empty(_project(
        3, "Receipt Reader", problem="Freelancers lose receipts and spend an evening every "
        "quarter retyping them into a spreadsheet for their tax return, and they still miss "
        "some.", audience="freelancers who file their own taxes"))
    b["evals"] = {"cases": 12, "pass_rate": 0.75, "grader": "exact match",
                  "recorded_on": "2026-11-20", "verified": False}
    b["records"]["evidence"]["evals"] = 31
    return b


def typical() -> dict[str, Any]:
    """The demo's project as `coach demo` records it."""
    b = _empty(_project(
        1, "Handover Helper", problem=DEMO_PROBLEM, audience="ward nurses doing shift handovers",
        personal_context="I worked six years of night shifts as a nurse before retraining",
        success_criteria="flags 95% of abnormal vitals in 50 anonymised notes",
        repo="/home/demo/handover-helper",
        mvp_scope=["summarise a note", "flag abnormal vitals", "copy as text"],
        usage_note="I ran it on 12 anonymised notes from my old ward; it flagged 11 of 12 low "
                   "blood pressures", capabilities=["structured_output", "evals_ci"]))
    b["audit"] = {"path": "/home/demo/handover-helper", "is_git": True, "commits": 1,
                  "files_scanned": 6, "tests": ["tests/test_app.py"],
                  "evals": ["evals/cases.jsonl"], "ci": [".github/workflows/evals.yml"],
                  "tracing": ["tracing.py"], "cost_tracking": ["app.py"],
                  "findings": ["1 commit on 2026-12-01", "1 test file (tests/test_app.py)",
                               "1 eval file (evals/cases.jsonl)",
                               "1 CI configuration file (.github/workflows/evals.yml)",
                               "1 file with tracing (tracing.py)",
                               "1 file tracking token usage or cost (app.py)"],
                  "recorded_on": "2026-12-01", "verified": True}
    b["deployments"] = [{"url": "https://handover.example.com/", "final_url":
                         "https://handover.example.com/", "ok": True, "status_code": 200,
                         "latency_ms": 111, "reason": "HTTP 200", "warnings": [],
                         "checked_on": "2026-12-01"}]
    b["evals"] = {"cases": 24, "pass_rate": 0.91, "grader": "exact match on flags",
                  "recorded_on": "2026-12-01", "verified": False}
    b["ci_gate"] = {"provider": "GitHub Actions", "config_path": ".github/workflows/evals.yml",
                    "description": "GitHub Actions .github/workflows/evals.yml blocks merges "
                                   "under 90%", "recorded_on": "2026-12-01", "verified": False}
    b["observability"] = {"tool": "Langfuse", "link": "https://handover.example.com/traces/1",
                          "recorded_on": "2026-12-01", "verified": False}
    b["cost_tracking"] = {"cost_usd": "0.004", "per": "request", "note": "$0.004 per request",
                          "recorded_on": "2026-12-01", "verified": False}
    b["lessons"] = {"worked": ["starting from real anonymised notes"],
                    "didnt_work": ["one prompt for summary and flags dropped flags on long "
                                   "notes"],
                    "tradeoff": ["two calls, more latency, better recall"], "decision": []}
    b["records"] = _records(1, evidence={"audit": 2, "evals": 4, "ci_gate": 5,
                                         "observability": 6, "cost_tracking": 7},
                            deployments=[3],
                            lessons={"worked": [1], "didnt_work": [2], "tradeoff": [3],
                                     "decision": []})
    return b


def rich() -> dict[str, Any]:
    """Every kind of record, several lessons of each kind, usage and chat notes."""
    b = typical()
    b["project"]["capabilities"] = ["structured_output", "evals_ci", "observability"]
    b["deployments"].insert(0, {"url": "https://handover-old.example.com/", "final_url": None,
                                "ok": False, "status_code": 503, "latency_ms": 40,
                                "reason": "HTTP 503", "warnings": [],
                                "checked_on": "2026-11-30"})
    b["records"]["deployments"] = [8, 3]
    b["lessons"] = {
        "worked": ["starting from real anonymised notes",
                   "flag thresholds written as data, not prompt text"],
        "didnt_work": ["one prompt for summary and flags dropped flags on long notes",
                       "abbreviations differ between wards, so the first grader was too strict"],
        "tradeoff": ["two calls, more latency, better recall",
                     "a smaller model to keep each request under half a cent"],
        "decision": ["exact-match grading instead of an LLM judge"],
    }
    b["records"]["lessons"] = {"worked": [1, 4], "didnt_work": [2, 5], "tradeoff": [3, 6],
                               "decision": [7]}
    b["project_usage"] = [{"model": "claude-haiku-5-5", "input_tokens": 52000,
                           "output_tokens": 7300, "requests": 40, "period": "day",
                           "cost_usd": "0.00885"}]
    b["records"]["usage"] = [1]
    b["transcript_excerpts"] = ["What didn't work at first was the grader on abbreviations"]
    b["records"]["transcript"] = [41]
    return b


def contradicted() -> dict[str, Any]:
    """The demo's records, but the stated CI gate is not what the audit found."""
    b = typical()
    b["ci_gate"] = {"provider": "GitHub Actions", "config_path": ".github/workflows/ci.yml",
                    "description": "GitHub Actions .github/workflows/ci.yml blocks merges",
                    "recorded_on": "2026-12-01", "verified": False}
    b["audit"]["ci"] = []
    b["audit"]["findings"] = [f for f in b["audit"]["findings"] if "CI" not in f]
    return b


BUNDLES = {"thin": thin, "typical": typical, "rich": rich, "contradicted": contradicted}


def answered(bundle: dict[str, Any], answers: dict[str, str], first_id: int = 900
             ) -> dict[str, Any]:
    """The bundle after the learner answered interview questions (key → answer), each
    stored as a note, as the interview stores them."""
    b = copy.deepcopy(bundle)
    for i, (key, text) in enumerate(answers.items()):
        b["interview"][key] = {"answer": text, "question": key, "kind": "note",
                               "skipped": False}
        b["records"]["interview"][key] = first_id + i
    return b
