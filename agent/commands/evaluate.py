"""`coach eval`: the coach's own eval set, and the gate that blocks regressions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from opentelemetry import trace
from rich.console import Console
from rich.progress import Progress
from sqlalchemy import Engine

from agent.commands.common import json_option
from agent.errors import CoachError
from agent.settings import Settings
from agent.stack import model_for, user_prices
from evals.dataset import BASELINE
from memory.store import open_engine
from memory.users import ensure_user
from telemetry.budget import Budget
from telemetry.ledger import record_spend
from telemetry.tracing import coach_provider, flush

if TYPE_CHECKING:
    from evals.graders import Grader


def evaluate(ctx: typer.Context,
             model: str | None = typer.Option(None, "--model", help="Model to evaluate."),
             case: str | None = typer.Option(None, "--case", help="Only cases matching this."),
             repeat: int = typer.Option(1, "--repeat", min=1, max=50,
                                        help="Runs per case (pass rate per case)."),
             check: bool = typer.Option(False, "--check",
                                        help="Exit 1 on any regression against the baseline."),
             update_baseline: bool = typer.Option(False, "--update-baseline",
                                                  help="Record this run as the baseline."),
             baseline: Path = typer.Option(BASELINE, "--baseline", help="Baseline file."),
             out: Path | None = typer.Option(None, "--out", help="Report folder."),
             workers: int = typer.Option(4, "--workers", min=1, max=16),
             judge: str | None = typer.Option(None, "--judge",
                                              help="A Claude model that grades coaching "
                                                   "quality (needs ANTHROPIC_API_KEY)."),
             as_json: bool = json_option("Print the JSON report.")
             ) -> None:
    """Run the eval set against the coach (offline by default) and grade every case. With a
    Claude model, its spend lands in your ledger under purpose `eval`, within your budget."""
    # The graph and the eval harness load only when evals run, not for --help.
    from agent.stack import make_model
    from evals.dataset import load_cases
    from evals.runner import baseline_from, load_baseline, regressions, run_cases

    settings: Settings = ctx.obj
    name = model or settings.model
    make_model(name)  # fail now, with one clear line, if the model cannot be used
    cases = load_cases(pattern=case)
    if not cases:
        raise CoachError(f"no eval case matches {case!r}")
    engine = open_engine(settings.database_url)
    provider = coach_provider(engine)
    try:
        user_id = ensure_user(engine, settings.user)
        paid = name != "offline" or judge is not None
        budget = learner_budget(settings, engine, user_id)
        if paid:
            check_budget(settings, budget)
        judges = [judge_for(judge, settings, engine, user_id, provider)] if judge else []
        console = Console(stderr=True)
        with Progress(console=console, disable=as_json or not sys.stderr.isatty()) as progress:
            task = progress.add_task(f"eval {name}", total=len(cases) * repeat)
            # A paid model's calls are held to the learner's own budget as they go, and each
            # case's spend reaches the learner's ledger as soon as the case ends.
            report = run_cases(cases, lambda: make_model(name), repeat=repeat,
                               workers=workers, on_done=lambda _id: progress.advance(task),
                               judges=judges, budget=budget if name != "offline" else None,
                               on_ledger=(lambda rows: record_spend(engine, user_id, rows))
                               if name != "offline" else None)
    finally:
        flush(provider)
        engine.dispose()
    report["model"] = name
    found = regressions(report, load_baseline(baseline)) if check else []
    report["regressions"] = found
    folder = write_reports(out or settings.home / "eval-reports", report, found)
    if update_baseline:
        baseline.write_text(json.dumps(baseline_from(report), indent=1, sort_keys=True) + "\n",
                            encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(report))
    else:
        summarize(console, report, name, folder)
    if found:
        for line in found:
            print(f"coach: regression: {line}", file=sys.stderr)
        raise typer.Exit(1)


def learner_budget(settings: Settings, engine: Engine, user_id: int) -> Budget | None:
    if settings.budget_usd is None:
        return None
    return Budget(settings.budget_usd, engine, user_id, user_prices(settings))


def check_budget(settings: Settings, budget: Budget | None) -> None:
    """Paid evals start only with budget left; each case's calls are checked as they go."""
    if budget is not None and budget.spent_today() >= budget.limit:
        raise CoachError(f"today's budget of ${settings.budget_usd} is used up; raise "
                         "COACH_BUDGET_USD (or set it to none) to run paid evals")


def judge_for(name: str, settings: Settings, engine: Engine, user_id: int,
              provider: trace.TracerProvider) -> Grader:
    from evals.judge import RubricJudge

    return RubricJudge(model_for(settings, engine, user_id, purpose="judge", name=name,
                                 tracer_provider=provider), user_id)


def write_reports(folder: Path, report: dict[str, Any], found: list[str]) -> Path:
    from evals.runner import markdown

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "latest.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (folder / "latest.md").write_text(markdown(report, found), encoding="utf-8")
    return folder


def summarize(console: Console, report: dict[str, Any], name: str, folder: Path) -> None:
    for row in report["cases"]:
        if not row["passed"]:
            failing = "; ".join(f"{g['grader']}: {g['detail']}" for g in row["graders"]
                                if not g["passed"])
            console.print(f"[red]FAIL[/red] {row['id']}: {failing}")
    console.print(f"{report['passed']} passed, {report['total'] - report['passed']} failed"
                  f" ({name}); report: {folder / 'latest.md'}")
