"""`coach postmortem draft|batch`: drafts from the recorded evidence, kept as versions."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import Progress
from sqlalchemy import Engine
from sqlmodel import select

from agent.commands.common import json_option, open_store
from agent.drafting import drafting_context
from agent.errors import CoachError
from agent.settings import Settings
from memory.models import LedgerEntry
from memory.store import session_scope
from telemetry.tracing import coach_provider, flush
from tools import TOOLS, ToolContext
from tools.postmortem import stale_projects

app = typer.Typer(help="Draft post-mortems from recorded evidence.", no_args_is_help=True)


@contextmanager
def drafting(settings: Settings) -> Iterator[tuple[Engine, int, ToolContext]]:
    """The store, the learner and a drafting context whose Claude calls are traced, with
    the spans flushed before the command exits."""
    from agent.stack import make_model  # the SDK loads only for Claude drafting

    with open_store(settings) as (engine, user_id):
        provider = coach_provider(engine)
        try:
            yield engine, user_id, drafting_context(settings, engine, user_id,
                                                    make_model(settings.model),
                                                    tracer_provider=provider)
        finally:
            flush(provider)


def draft_one(ctx: ToolContext, project_id: int) -> dict[str, Any]:
    result = TOOLS["draft_postmortem"](ctx, {"project_id": project_id})
    if not result.ok:
        raise CoachError(result.content.get("error", "drafting failed"))
    return result.content


@app.command("draft")
def draft(ctx: typer.Context, project_id: int = typer.Argument(..., metavar="PROJECT_ID"),
          out: Path | None = typer.Option(None, "--out", help="Write the Markdown here."),
          as_json: bool = json_option()) -> None:
    """Draft a post-mortem for one project; every draft is a new numbered version."""
    settings: Settings = ctx.obj
    with drafting(settings) as (_engine, _user_id, tctx):
        content = draft_one(tctx, project_id)
    if out is not None:
        try:
            out.write_text(content["text"], encoding="utf-8")
        except OSError as exc:
            raise CoachError(f"cannot write {out}: {exc.strerror}") from exc
    if as_json:
        typer.echo(json.dumps({k: content[k] for k in (
            "project_id", "version", "words", "target_words", "sections", "grounding",
            "sentences", "todos")}
            | {"path": str(out) if out else None}))
        return
    if out is None:
        typer.echo(content["text"])
    grounding = content["grounding"]
    where = f" → {out}" if out else ""
    typer.echo(f"version {content['version']}: {content['words']} words (target "
               f"{content['target_words']:,}); {len(grounding['unsupported'])} unsupported "
               f"claim(s){where}", err=True)


@app.command("batch")
def batch(ctx: typer.Context,
          workers: int = typer.Option(2, "--workers", min=1, max=8,
                                      help="Drafts written at once (offline)."),
          resume: bool = typer.Option(False, "--resume", help=(
              "Only collect the results of batches submitted before (after a crash or a "
              "closed terminal); submit nothing new.")),
          all_users: bool = typer.Option(False, "--all-users", help=(
              "Every learner's stale projects (an operator on a cohort database).")),
          poll: float = typer.Option(10.0, "--poll", min=0.0, hidden=True,
                                     help="Seconds between batch status checks."),
          as_json: bool = json_option()) -> None:
    """Draft every project at step 5 that lacks an up-to-date draft. With a Claude model
    the drafts go as one Message Batch at half price; its id is stored, so a later run (or
    --resume) collects the results. Safe to re-run: a project drafted before an
    interruption is skipped the next time."""
    settings: Settings = ctx.obj
    if settings.model != "offline":
        message_batch(settings, resume=resume, all_users=all_users, poll=poll,
                      as_json=as_json)
        return
    if resume:
        raise CoachError("--resume collects Message Batches, which need a Claude model "
                         "(--model claude-…); offline drafts are written at once")
    started = datetime.now(UTC)
    done: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    with drafting(settings) as (engine, user_id, tctx):
        todo = stale_projects(engine, user_id)
        show = sys.stderr.isatty() and not as_json
        with Progress(console=Console(stderr=True), disable=not show) as progress, \
                ThreadPoolExecutor(max_workers=workers) as pool:
            task = progress.add_task("drafting post-mortems", total=len(todo))
            futures = {pool.submit(draft_one, tctx, pid): pid for pid in todo}
            for future in as_completed(futures):
                pid = futures[future]
                try:
                    c = future.result()
                    done.append({"project_id": pid, "version": c["version"], "words": c["words"],
                                 "unsupported": len(c["grounding"]["unsupported"])})
                except CoachError as exc:
                    failed.append({"project_id": pid, "error": str(exc)})
                progress.advance(task)
        with session_scope(engine) as s:
            costs = [row.cost_usd for row in s.exec(select(LedgerEntry).where(
                LedgerEntry.user_id == user_id, LedgerEntry.purpose == "postmortem",
                LedgerEntry.created_at >= started)).all()]
    done.sort(key=lambda d: d["project_id"])
    # A call of unknown price makes the total unknown, not smaller.
    cost = None if None in costs else float(sum(c or 0 for c in costs))
    left = len(todo) - len(done) - len(failed)
    summary = {"drafted": done, "failed": failed, "left": left, "cost_usd": cost}
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        for d in done:
            typer.echo(f"project {d['project_id']}: version {d['version']}, {d['words']} words,"
                       f" {d['unsupported']} unsupported claim(s)")
        for f in failed:
            typer.echo(f"project {f['project_id']}: failed: {f['error']}", err=True)
        typer.echo(f"{len(done)} drafted, {len(failed)} failed, "
                   f"{left} left; cost "
                   + ("unknown" if cost is None else f"${cost:.4f}"))
    if failed:
        raise typer.Exit(1)


def message_batch(settings: Settings, *, resume: bool, all_users: bool, poll: float,
                  as_json: bool) -> None:
    """The Claude path of `coach postmortem batch` (agent/batch.py)."""
    from agent import batch as batches
    from agent.stack import make_model, user_prices

    inner = make_model(settings.model)
    client = getattr(inner, "client", None)
    if client is None:
        raise CoachError(f"model {settings.model!r} cannot run a Message Batch")
    prices = user_prices(settings)
    show = sys.stderr.isatty() and not as_json
    results: list[batches.Collected] = []
    with open_store(settings) as (engine, user_id), \
            Progress(console=Console(stderr=True), disable=not show) as progress:
        waiting = batches.pending_batches(engine, None if all_users else user_id)
        if not resume:
            todo = batches.stale_everywhere(engine, user_id, all_users)
            row = batches.submit(engine, client, settings.model, user_id, todo)
            waiting += [row] if row else []
        for row in waiting:
            task = progress.add_task(f"batch {row.batch_id}", total=len(row.requests))

            def show_counts(counts: dict[str, int], status: str, task: Any = task) -> None:
                done = sum(v for k, v in counts.items() if k != "processing")
                progress.update(task, completed=done, description=(
                    f"batch {status}: {counts.get('succeeded', 0)} drafted, "
                    f"{counts.get('errored', 0)} errored, {counts.get('expired', 0)} "
                    "expired"))

            results.append(batches.collect(engine, client, row, prices, poll_seconds=poll,
                                           progress=show_counts))
    drafted = [d for r in results for d in r.drafted]
    failed = [f for r in results for f in r.failed]
    costs = [d["cost_usd"] for d in drafted]
    cost = None if None in costs else float(sum(c or 0 for c in costs))
    summary = {"batches": [r.batch_id for r in results], "drafted": drafted,
               "failed": failed, "cost_usd": cost, "service_tier": "batch"}
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        for d in drafted:
            typer.echo(f"project {d['project_id']}: version {d['version']}, {d['words']} words,"
                       f" {d['unsupported']} unsupported claim(s)")
        for f in failed:
            typer.echo(f"project {f['project_id']}: {f.get('status', 'failed')}: {f['error']}",
                       err=True)
        typer.echo(f"{len(drafted)} drafted, {len(failed)} failed in {len(results)} "
                   "batch(es) at the batch rate; cost "
                   + ("unknown" if cost is None else f"${cost:.4f}"))
    if failed:
        raise typer.Exit(1)
