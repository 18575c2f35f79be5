"""`coach chat`: a coaching conversation in the terminal or through a pipe."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markdown import Markdown

from agent.commands.common import json_option
from agent.errors import MAX_MESSAGE_BYTES, CoachError, ThreadBusy
from agent.settings import Settings

if TYPE_CHECKING:
    from agent.session import TurnResult

FILE_REF = re.compile(r"^(post-?mortem)\s*:\s*@(\S.*)$", re.IGNORECASE)


def expand_file(text: str) -> str:
    """`Post-mortem: @draft.md` sends the file's text; only the CLI reads local files."""
    m = FILE_REF.match(text.strip())
    if not m:
        return text
    path = Path(m.group(2).strip()).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CoachError(f"cannot read {path}: {exc.strerror}") from exc
    if len(data) > MAX_MESSAGE_BYTES:
        raise CoachError(f"{path} is {len(data):,} bytes; a message takes at most "
                         f"{MAX_MESSAGE_BYTES:,}")
    return f"{m.group(1)}: {data.decode('utf-8', errors='replace')}"


def interactive_lines(console: Console) -> Iterator[str]:
    while True:
        try:
            line = console.input("[bold green]you>[/bold green] ")
        except EOFError:
            return
        if line.strip().lower() in ("quit", "exit", ":q"):
            return
        if line.strip():
            yield line


def piped_lines() -> Iterator[str]:
    for line in sys.stdin:
        if line.strip():
            yield line.rstrip("\n")


def show(console: Console, result: TurnResult, as_json: bool, streamed: bool) -> None:
    if as_json:
        print(json.dumps(result.as_json(), default=str), flush=True)
        return
    if not streamed:
        console.print(Markdown(result.reply))
    if result.error:
        console.print(f"[red]{result.error}[/red]")
    console.print()


def chat(ctx: typer.Context,
         thread: str | None = typer.Option(None, "--thread", help="Resume (or name) a thread."),
         as_json: bool = json_option("One JSON object per turn.")) -> None:
    """Talk to the coach. In a terminal, type messages; piped, one message per line."""
    from agent.session import Coach  # the graph loads only for commands that run it

    settings: Settings = ctx.obj
    console = Console(stderr=as_json)
    failures = 0
    with Coach.open(settings) as coach:
        thread_id = coach.thread(thread)
        tty = sys.stdin.isatty()
        if not as_json:
            console.print(f"[dim]thread {thread_id} · model {coach.model.name} · "
                          f"resume with: coach chat --thread {thread_id}[/dim]",
                          soft_wrap=True)  # never split the command across lines
            if tty:
                console.print("Type `help` for commands, `quit` to leave.\n")
        streaming = tty and not as_json and coach.model.name != "offline"
        on_text = (lambda t: console.print(t, end="")) if streaming else None
        for line in interactive_lines(console) if tty else piped_lines():
            try:
                result = coach.turn(thread_id, expand_file(line), on_text=on_text)
            except ThreadBusy:
                raise
            except CoachError as exc:
                failures += 1
                print(f"coach: error: {exc}", file=sys.stderr, flush=True)
                continue
            failures += bool(result.error)
            show(console, result, as_json, streamed=streaming)
    if failures and not tty:
        raise typer.Exit(1)
