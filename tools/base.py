"""What every tool shares: its context, its argument model, its result."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network, IPv6Network
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import Engine
from sqlmodel import Session

from memory.models import Project, ToolCall
from seam.pricing import PriceTable
from tools.effects import recorded_call

if TYPE_CHECKING:
    from tools.outbound import Outbound

log = logging.getLogger(__name__)


class ToolError(Exception):
    """A tool refused its input; the message is shown to the model as is."""


@dataclass
class ToolContext:
    """What a tool may use that the model never sees or sets."""

    engine: Engine
    user_id: int
    thread_id: str | None = None
    allow_private_urls: bool = False
    extra_allowed_networks: Sequence[IPv4Network | IPv6Network] = ()
    # The deployment check's per-request timeout (seconds); tests shorten it.
    fetch_timeout: float = 10.0
    # The whole shallow clone of a remote repository (seconds), for its audit.
    clone_timeout: float = 30.0
    # Whether a stated trace link is fetched to verify it. The coach's sessions turn it on;
    # a bare context (a script, a unit test) does not reach out to the hosts it names.
    check_links: bool = False
    # Whether tools may read this machine's folders (a repo path, an audit). A server
    # shared by learners says no: a path there would point at the server's own disk.
    allow_local_paths: bool = True
    # The learner's message of the current turn: a `confirmed` fact must come from it.
    learner_message: str | None = None
    # The coach's price table (with the learner's own price file), for project usage.
    prices: PriceTable | None = None
    # The process's bound on slow network checks running at once (the web app's); None
    # leaves them unbounded (one learner's CLI).
    outbound: Outbound | None = None
    # Writes a post-mortem from an evidence bundle; the offline drafter when None.
    # A drafter returns the Markdown, or a tools.sentences.Draft with every sentence's sources.
    drafter: Callable[[dict[str, Any]], Any] | None = None
    # The tool_use block being run (its id and tool): a writing tool's effect is recorded
    # under that id, so the same call run again is answered, not repeated (tools.effects).
    call_id: str | None = None
    call_tool: str = ""

    def for_call(self, call_id: str | None, tool: str) -> ToolContext:
        """This context for one tool call. A copy: a turn's calls share one context."""
        return replace(self, call_id=call_id, call_tool=tool)


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


@dataclass
class ToolResult:
    ok: bool
    content: dict[str, Any] = field(default_factory=dict)
    # The project this call created, which the thread coaches from now on.
    opened_project: int | None = None
    # Answered from the record of an earlier run of the same call, which had the effect.
    replayed: bool = False

    @property
    def project_id(self) -> int | None:
        """The project the call acted on, when its result names one."""
        pid = self.content.get("project_id")
        return pid if isinstance(pid, int) else None

    def text(self) -> str:
        return json.dumps(self.content, default=str, ensure_ascii=False)


@dataclass(frozen=True)
class Tool:
    name: str
    args: type[Args]
    run: Callable[[ToolContext, Any], dict[str, Any]]
    # Whether a successful call starts a project that the thread then follows.
    opens_project: bool = False
    # Whether the tool stores something: then its run records the call (tools.effects),
    # and a call already recorded is answered from that record instead of run again.
    writes: bool = False

    @property
    def description(self) -> str:
        return (self.run.__doc__ or "").strip()

    def schema(self) -> dict[str, Any]:
        """The tool definition the Messages API takes."""
        return _definition(self.name, self.description, self.args)

    def __call__(self, ctx: ToolContext, raw: Any) -> ToolResult:
        done = recorded_call(ctx) if self.writes else None
        if done is not None:
            return self._replay(done)
        if not isinstance(raw, dict):
            return ToolResult(False, {"error": f"{self.name} takes an object of arguments"})
        try:
            args = self.args.model_validate(raw)
        except ValidationError as exc:
            return ToolResult(False, {"error": f"invalid arguments for {self.name}",
                                      "problems": format_validation(exc)})
        try:
            content = self.run(ctx, args)
        except ToolError as exc:
            return ToolResult(False, {"error": str(exc)})
        except Exception as exc:  # a bug must not end the learner's turn
            done = recorded_call(ctx) if self.writes else None
            if done is not None:
                # Another process ran this same call meanwhile: its record won the key and
                # this run's effect rolled back with it.
                return self._replay(done)
            log.exception("tool %s failed", self.name)
            return ToolResult(False, {"error": f"{self.name} failed unexpectedly: "
                                               f"{type(exc).__name__}"})
        return self._result(True, content)

    def _result(self, ok: bool, content: dict[str, Any], replayed: bool = False) -> ToolResult:
        pid = content.get("project_id") if self.opens_project and ok else None
        return ToolResult(ok, content, pid if isinstance(pid, int) else None, replayed)

    def _replay(self, done: ToolCall) -> ToolResult:
        if done.tool != self.name:
            return ToolResult(False, {"error": f"call id {done.call_id} was already used for "
                                               f"{done.tool}; a new call needs a new id"})
        return self._result(done.ok, {**done.result, "replayed": True}, replayed=True)


@functools.cache
def _definition(name: str, description: str, args: type[Args]) -> dict[str, Any]:
    # Built once per tool: schema generation is costly and every model call sends it.
    schema = args.model_json_schema()
    schema.pop("title", None)
    return {"name": name, "description": description, "input_schema": schema}


def format_validation(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        out.append(f"{where}: {err['msg']}")
    return out


def own_project(session: Session, ctx: ToolContext, project_id: int) -> Project:
    """The caller's project, or a ToolError; another learner's id looks missing."""
    project = session.get(Project, project_id)
    if project is None or project.user_id != ctx.user_id:
        raise ToolError(f"no project {project_id} in your portfolio")
    return project
