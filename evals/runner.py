"""Run the eval set, score it, and compare it with the baseline."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.dataset import BASELINE, Case
from evals.graders import Grader, graders_for
from evals.harness import Outcome, run_case
from seam.model import Model
from telemetry.budget import Budget


@dataclass
class CaseResult:
    id: str
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pass_rate(self) -> float:
        return sum(r["passed"] for r in self.runs) / len(self.runs) if self.runs else 0.0

    @property
    def score(self) -> float:
        return sum(r["score"] for r in self.runs) / len(self.runs) if self.runs else 0.0

    def as_dict(self) -> dict[str, Any]:
        last = self.runs[-1]
        return {"id": self.id, "passed": self.pass_rate == 1.0, "pass_rate": self.pass_rate,
                "score": round(self.score, 4), "graders": last["graders"],
                "tokens": last["tokens"], "cost_usd": last["cost_usd"],
                "latency_s": last["latency_s"], "errors": last["errors"]}


def grade(outcome: Outcome, extra: Sequence[Grader] = ()) -> dict[str, Any]:
    scores = [g.evaluate(outcome) for g in [*graders_for(outcome.case.expect), *extra]]
    passed = sum(s.passed for s in scores)
    return {
        "passed": passed == len(scores),
        "score": passed / len(scores) if scores else 1.0,
        "graders": [s.as_dict() for s in scores],
        "tokens": outcome.tokens,
        "cost_usd": None if outcome.cost_usd is None else float(outcome.cost_usd),
        "latency_s": round(outcome.latency_s, 3),
        "errors": outcome.errors,
        "ledger": outcome.ledger,
    }


def run_one(case: Case, make_model: Callable[[], Model],
            extra: Sequence[Grader] = (), budget: Budget | None = None) -> dict[str, Any]:
    try:
        return grade(run_case(case, make_model(), budget=budget), extra)
    except Exception as exc:  # one broken case must not hide the others' results
        return {"passed": False, "score": 0.0, "tokens": 0, "cost_usd": None, "latency_s": 0,
                "errors": [f"{type(exc).__name__}: {exc}"],
                "graders": [{"grader": "run", "passed": False, "detail": str(exc)}]}


def run_cases(cases: list[Case], make_model: Callable[[], Model], *, repeat: int = 1,
              workers: int = 4, on_done: Callable[[str], None] | None = None,
              judges: Sequence[Grader] = (),
              on_ledger: Callable[[list[dict[str, Any]]], None] | None = None,
              budget: Budget | None = None) -> dict[str, Any]:
    """Every case `repeat` times, each on its own temporary database, in parallel. With a
    `budget` (the learner's), every model call is held to it and is recorded as `eval`."""
    results = {c.id: CaseResult(c.id) for c in cases}
    jobs = [c for c in cases for _ in range(repeat)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for case, run in zip(jobs, pool.map(lambda c: run_one(c, make_model, judges, budget), jobs),
                             strict=True):
            if on_ledger:
                on_ledger(run.pop("ledger", []))
            run.pop("ledger", None)
            results[case.id].runs.append(run)
            if on_done:
                on_done(case.id)
    rows = [results[c.id].as_dict() for c in cases]
    costs = [r["cost_usd"] for r in rows]
    return {
        "cases": rows,
        "passed": sum(r["passed"] for r in rows),
        "total": len(rows),
        "repeat": repeat,
        "tokens": sum(r["tokens"] for r in rows),
        "cost_usd": None if None in costs else sum(c or 0 for c in costs),
    }


def load_baseline(path: Path = BASELINE) -> dict[str, Any]:
    if not path.exists():
        return {"cases": {}}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def baseline_from(report: dict[str, Any]) -> dict[str, Any]:
    return {"cases": {r["id"]: {"passed": r["passed"], "min_score": r["score"]}
                      for r in report["cases"]}}


def regressions(report: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """Per case: a case that passed in the baseline and now fails, or a score below its
    threshold. New cases and cases that already failed are not regressions."""
    out = []
    for row in report["cases"]:
        base = baseline["cases"].get(row["id"])
        if base is None:
            continue
        if base["passed"] and not row["passed"]:
            failing = [g["grader"] + ": " + g["detail"] for g in row["graders"]
                       if not g["passed"]]
            out.append(f"{row['id']}: passed in the baseline, fails now ({'; '.join(failing)})")
        elif row["score"] < base.get("min_score", 0):
            out.append(f"{row['id']}: score {row['score']:.2f} below {base['min_score']:.2f}")
    return out


def markdown(report: dict[str, Any], found: list[str]) -> str:
    lines = [f"# Eval report: {report['passed']}/{report['total']} cases passed",
             "", f"Tokens: {report['tokens']:,}; cost: "
             + ("unknown" if report["cost_usd"] is None else f"${report['cost_usd']:.4f}"), "",
             "| case | pass rate | score | latency (s) | failing graders |",
             "|---|---:|---:|---:|---|"]
    for r in report["cases"]:
        failing = ", ".join(g["grader"] for g in r["graders"] if not g["passed"]) or "-"
        lines.append(f"| {r['id']} | {r['pass_rate']:.0%} | {r['score']:.2f} | "
                     f"{r['latency_s']:.2f} | {failing} |")
    if found:
        lines += ["", "## Regressions", "", *[f"- {f}" for f in found]]
    return "\n".join(lines) + "\n"
