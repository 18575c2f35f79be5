"""Step-4 claims held against what the coach saw itself: the repository audit and the
traces the learner's app sent. A pure function of stored evidence, like every gate.

What an auditable repository can show (eval files, a CI config that runs them, tracing
code), it must show; a stated figure that received traces contradict never passes.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from memory.models import Evidence
from tools.repo_facts import CHECK_COMMANDS, OTLP_LIBRARIES, library_for_tool

# Where the audit looks, said in the refusal so the learner knows what would count.
CI_PLACES = (".github/workflows/*.yml, .gitlab-ci.yml, .circleci/config.yml, "
             "azure-pipelines.yml, bitbucket-pipelines.yml, .travis.yml, Jenkinsfile, "
             ".buildkite/, .ci/")
EVAL_PLACES = ("evals/, eval/ or evaluations/ folders, *eval*.py files, promptfoo configs, "
               "imports of inspect_ai, deepeval, ragas, pydantic_evals, braintrust")
TRACING_PLACES = ("imports of OpenTelemetry, OpenInference, Langfuse, LangSmith, Logfire, "
                  "Phoenix, Weave, Helicone, ddtrace")
# A stated cost per request more than this factor away from the measured one is contradicted.
COST_TOLERANCE = Decimal(2)
ACK_HINT = ("reply `Acknowledge: step 4 rests on my word` to continue on stated evidence "
            "(it stays labelled as stated)")

Found = tuple[str, str]  # (field, message) of one contradiction
Latest = Callable[[str], Evidence | None]


def _looked(audit: dict[str, Any]) -> str:
    commit = str(audit.get("commit") or "")[:7] or "(no commit)"
    where = audit.get("url") or audit.get("path") or "the repository"
    return f"the repository {where} at commit {commit}"


def _at(audit: dict[str, Any]) -> str:
    commit = str(audit.get("commit") or "")[:7]
    return f"at commit {commit}" if commit else "in the working tree"


def ci_contradiction(ci: dict[str, Any], audit: dict[str, Any]) -> str | None:
    configs: list[str] = list(audit.get("ci", []))
    runs: dict[str, list[str]] = audit.get("ci_runs", {})
    path = str(ci.get("config_path") or "").strip().removeprefix("./")
    looked_for = ", ".join(CHECK_COMMANDS)
    if path:
        # "evals.yml" names .github/workflows/evals.yml as well as the full path does.
        path = next((c for c in configs if c == path or c.endswith("/" + path)), path)
        if path not in configs:
            kind = "workflow" if path.startswith(".github/") else "CI config"
            others = f"CI configs there: {', '.join(configs)}" if configs \
                else f"no CI configuration found; looked in {CI_PLACES}"
            return f"the {kind} {path} is not in the repository {_at(audit)} ({others})"
        if not runs.get(path):
            return (f"the CI config {path} {_at(audit)} runs no tests or evals (looked for "
                    f"{looked_for}): make it run them so it can block a regression")
        return None
    if not configs:
        return (f"no CI configuration in {_looked(audit)} (looked in {CI_PLACES})")
    if not any(runs.get(c) for c in configs):
        return (f"none of the CI configs {_at(audit)} ({', '.join(configs)}) runs tests or "
                f"evals (looked for {looked_for})")
    return None


def eval_contradiction(evals: dict[str, Any], audit: dict[str, Any]
                       ) -> tuple[str | None, str | None]:
    """(contradiction, note) for stated evals against the eval files found."""
    files: list[str] = list(audit.get("evals", []))
    if not files:
        return f"no eval files in {_looked(audit)} (looked for {EVAL_PLACES})", None
    counts: dict[str, int | None] = audit.get("eval_cases", {})
    counted = {p: n for p, n in counts.items() if n is not None}
    total = sum(counted.values())
    shown = ", ".join(f"{p}: {n}" for p, n in sorted(counted.items())[:4])
    note = (f"eval files {_at(audit)}: {len(files)}" + (f"; {total} cases counted ({shown})"
                                                         if counted else ""))
    stated = evals.get("cases")
    if not isinstance(stated, int) or not counted or stated <= total:
        return None, note
    if all(counts.get(f) is not None for f in files):
        return (f"you stated {stated} eval cases; the eval files {_at(audit)} hold {total} "
                f"({shown})"), note
    return None, note + "; the rest may come from code the coach cannot count"


def tracing_contradiction(obs: dict[str, Any], audit: dict[str, Any]) -> str | None:
    tools: dict[str, list[str]] = audit.get("tracing_tools", {})
    if not audit.get("tracing") and not tools:
        return f"no tracing code in {_looked(audit)} (looked for {TRACING_PLACES})"
    library = library_for_tool(str(obs.get("tool", "")))
    if library is None or library in tools or OTLP_LIBRARIES & tools.keys():
        return None
    seen = ", ".join(f"{name} ({files[0]})" for name, files in sorted(tools.items()))
    return (f"you named {obs.get('tool')} as the tracing tool; the code {_at(audit)} "
            f"imports {seen}, not {library}")


def _money(value: Any) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def trace_contradictions(latest_stated: Latest, traces: dict[str, Any]) -> list[Found]:
    """A stated tool the spans do not show, a stated cost per request > 2x off."""
    found: list[Found] = []
    obs = latest_stated("observability")
    seen: list[str] = list(traces.get("tools", []))
    if obs is not None and seen:
        library = library_for_tool(str(obs.details.get("tool", "")))
        libraries = {library_for_tool(t) or t for t in seen}
        if library and library not in libraries and not OTLP_LIBRARIES & libraries:
            found.append(("observability",
                          f"you named {obs.details.get('tool')} as the tracing tool; the "
                          f"{traces.get('spans', 0)} spans received show {', '.join(seen)}"))
    cost = latest_stated("cost_tracking")
    measured = _money((traces.get("cost") or {}).get("per_request_mean_usd"))
    if cost is not None and cost.details.get("per") == "request" and measured:
        stated = _money(cost.details.get("cost_usd"))
        if stated is not None and (stated == 0 or not (
                measured / COST_TOLERANCE <= stated <= measured * COST_TOLERANCE)):
            n = traces["cost"].get("requests_priced", 0)
            found.append(("cost_tracking",
                          f"you stated ${stated} per request; the {n} traces received "
                          f"measure ${measured:.6f} per request (mean), more than "
                          f"{COST_TOLERANCE}x apart"))
    return found


def repository_contradictions(latest_stated: Latest, audit: Evidence | None,
                              acknowledged: bool, traced: bool
                              ) -> tuple[list[Found], list[str]]:
    """(contradictions, notes) of the stated step-4 claims against the latest audit."""
    if audit is None:
        return [], []
    details = audit.details
    if not audit.ok or details.get("auditable") is False:
        if acknowledged:
            return [], ["the repository could not be audited; step 4 rests on the "
                        "learner's word (acknowledged)"]
        reason = details.get("reason", "it could not be read")
        return [("repo", f"the coach could not audit the repository ({reason}); make it "
                         f"readable to the coach, or {ACK_HINT}")], []
    found: list[Found] = []
    notes: list[str] = []
    ci = latest_stated("ci_gate")
    if ci is not None and (problem := ci_contradiction(ci.details, details)):
        found.append(("ci_gate", problem))
    evals = latest_stated("evals")
    if evals is not None:
        problem, note = eval_contradiction(evals.details, details)
        if problem:
            found.append(("evals", problem))
        if note:
            notes.append(note)
    obs = latest_stated("observability")
    if obs is not None and not traced and (problem := tracing_contradiction(obs.details,
                                                                            details)):
        found.append(("observability", problem))
    return found, notes
