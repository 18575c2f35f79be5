"""Where the learner's stated evidence and the coach's own audit disagree.

A contradiction is never written into a draft as a sentence: it becomes a question for
the learner (a `[TODO: …]` in the draft, asked first in the post-mortem interview).
"""

from __future__ import annotations

from typing import Any


def _files(audit: dict[str, Any], key: str) -> list[str]:
    return [str(f) for f in audit.get(key) or []]


def contradictions(bundle: dict[str, Any]) -> dict[str, str]:
    """Evidence kind → the question its contradiction raises; empty without an audit of a
    git checkout (nothing to contradict a statement with)."""
    audit = bundle.get("audit") or {}
    if not audit or audit.get("is_git") is False or not audit.get("files_scanned", 1):
        return {}
    out: dict[str, str] = {}
    ci = bundle.get("ci_gate")
    if ci:
        found = _files(audit, "ci")
        stated = ci.get("config_path")
        what = f"{ci.get('provider') or 'a CI gate'}" + (f" ({stated})" if stated else "")
        if not found:
            out["ci_gate"] = (f"The CI gate is stated as {what}, but the repository audit "
                              "found no CI configuration. Which is right, and does the gate "
                              "block a merge when the evals fail?")
        elif stated and stated not in found:
            out["ci_gate"] = (f"The CI gate is stated as {what}, but the repository audit "
                              f"found {', '.join(found)} instead. Which file runs the evals, "
                              "and does it block a merge when they fail?")
    evals = bundle.get("evals")
    if evals and not _files(audit, "evals"):
        out["evals"] = ("An eval set is recorded, but the repository audit found no eval "
                        "files. Where do the cases live, and how are they run?")
    if bundle.get("observability") and not _files(audit, "tracing"):
        out["observability"] = ("Tracing is recorded, but the repository audit found no "
                                "tracing code. Where is the tracing set up?")
    if bundle.get("cost_tracking") and not _files(audit, "cost_tracking"):
        out["cost_tracking"] = ("A cost figure is recorded, but the repository audit found no "
                                "code that records token usage or cost. How was the figure "
                                "measured?")
    return out
