"""`coach chat`: a coaching conversation in the terminal or through a pipe."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import HTML
from prompt_toolkit.history import FileHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output
from rich.console import Console
from rich.markdown import Markdown

from agent.commands.common import json_option
from agent.errors import MAX_MESSAGE_BYTES, CoachError, ThreadBusy
from agent.replies import WELCOME, recap_text, status_text, step_labels
from agent.settings import Settings
from agent.steps import GUIDES
from memory.models import Project, Thread
from memory.store import session_scope
from tools.projects import project_view

if TYPE_CHECKING:
    from agent.session import Coach, TurnResult

# `@file` anywhere in a message, as its own word: "Post-mortem: @draft.md", "see @notes.txt".
FILE_REF = re.compile(r"(?<!\S)@((?:~|\.{1,2})?/?[\w.~/-]*[\w/-]\.\w+|(?:~|\.{1,2})?/[\w.~/-]+)")
QUIT = ("quit", "exit", ":q", "bye")
HELP_PASTE = ("Type `help` for commands, `quit` or Ctrl-D to leave. A pasted block of text is "
              "one message; `@file.md` anywhere sends a file's text.")


def expand_file(text: str) -> str:
    """Each `@path` sends that file's text; only the CLI reads local files."""
    def read(m: re.Match[str]) -> str:
        path = Path(m.group(1)).expanduser()
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CoachError(f"cannot read {path}: {exc.strerror}") from exc
        if len(data) > MAX_MESSAGE_BYTES:
            raise CoachError(f"{path} is {len(data):,} bytes; a message takes at most "
                             f"{MAX_MESSAGE_BYTES:,}")
        return data.decode("utf-8", errors="replace")
    return FILE_REF.sub(read, text)


def interactive_lines(history: Path, toolbar: Callable[[], str], *,
                      input: Input | None = None, output: Output | None = None
                      ) -> Iterator[str]:
    """A real line editor: arrow keys, history kept in $COACH_HOME, and a bracketed paste
    (what terminals send for a pasted block) arrives as one message, not one per line."""
    history.parent.mkdir(parents=True, exist_ok=True)
    # What a learner typed is theirs alone: the history file is readable by them only.
    history.touch(mode=0o600, exist_ok=True)
    session: PromptSession[str] = PromptSession(
        history=FileHistory(str(history)), bottom_toolbar=toolbar, input=input, output=output,
        enable_history_search=True)
    while True:
        try:
            line = session.prompt(HTML("<ansigreen><b>you&gt;</b></ansigreen> "))
        except (EOFError, KeyboardInterrupt):  # Ctrl-D, Ctrl-C: leave, nothing is lost
            return
        if line.strip().lower() in QUIT:
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
                opening(console, coach, thread_id, resumed=thread is not None)
        step = [project_of(coach, thread_id)]
        streaming = tty and not as_json and coach.model.name != "offline"
        on_text = (lambda t: console.print(t, end="")) if streaming else None
        lines = interactive_lines(settings.home / "chat_history", lambda: footer(step[0])) \
            if tty else piped_lines()
        for line in lines:
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
            step[0] = project_of(coach, thread_id)
    if failures and not tty:
        raise typer.Exit(1)


def project_of(coach: Coach, thread_id: str) -> dict[str, Any] | None:
    """The thread's project as the coach sees it (its view and gate), or None."""
    project_id = coach.threads.project_of(thread_id)
    if project_id is None:
        return None
    with session_scope(coach.engine) as s:
        project = s.get(Project, project_id)
        return project_view(s, project) if project else None


def opening(console: Console, coach: Coach, thread_id: str, resumed: bool) -> None:
    """A greeting that says what the coach does on a new thread; a recap on a resumed one."""
    project = project_of(coach, thread_id)
    with session_scope(coach.engine) as s:
        record = s.get(Thread, thread_id)
        turns = record.turns if record else 0
    if resumed and turns:
        console.print(recap_text(project))
    else:
        console.print(WELCOME)
        console.print(status_text({"project": project}))
    console.print(f"[dim]{HELP_PASTE}[/dim]\n")


def footer(project: dict[str, Any] | None) -> str:
    step = GUIDES[project["step"]] if project else GUIDES["problem"]
    return f" step {step.number}/6 {step.id} · plain sentences, or: {step_labels(project)}"
