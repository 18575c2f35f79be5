"""Tools that gather evidence: deployment checks, audits, evals, lessons, usage."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from memory.models import Evidence, Lesson, ProjectUsage, utcnow
from memory.store import session_scope
from memory.vocabulary import EvidenceKind, LessonKind
from seam.pricing import Usage, price_table
from tools.audit import AuditError, audit_repository
from tools.base import Args, Tool, ToolContext, ToolError, own_project
from tools.deployment import AddressPolicy, check_deployment_url
from tools.effects import record_call
from tools.outbound import network_check


class CheckDeploymentArgs(Args):
    project_id: int
    url: str = Field(min_length=1, max_length=2000)


def check_deployment(ctx: ToolContext, args: CheckDeploymentArgs) -> dict[str, Any]:
    """Fetch the project's deployed URL from the coach itself (2xx within 5 redirects and
    10 s) and record the result as evidence. Internal addresses are refused; a Streamlit
    Community Cloud host fails the deploy gate (a real URL, not a Streamlit demo)."""
    with session_scope(ctx.engine) as s:
        own_project(s, ctx, args.project_id)
    extra = [*ctx.extra_allowed_networks]
    policy = AddressPolicy(allow_private=ctx.allow_private_urls, extra_allowed=extra)
    # The fetch runs outside any transaction: it can take seconds.
    with network_check(ctx, "the deployment check"):
        check = check_deployment_url(args.url, policy=policy, timeout=ctx.fetch_timeout)
    result = check.as_dict()
    with session_scope(ctx.engine) as s:
        s.add(Evidence(project_id=args.project_id, kind="deployment", details=result,
                       verified=True, ok=check.ok))
        return record_call(s, ctx, {"project_id": args.project_id, **result})


class RecordEvidenceArgs(Args):
    project_id: int
    kind: EvidenceKind
    details: dict[str, Any] = Field(description=(
        "evals {cases, pass_rate, grader}; ci_gate {provider, config_path}; "
        "observability {tool, link}; cost_tracking {cost_usd, per: request|day|month}"))

    @model_validator(mode="after")
    def _shape(self) -> RecordEvidenceArgs:
        d = self.details
        if self.kind == "evals":
            cases, rate = d.get("cases"), d.get("pass_rate")
            if not isinstance(cases, int) or isinstance(cases, bool) or cases < 1:
                raise ValueError("evals need details.cases, a whole number of eval cases")
            if rate is not None:
                try:
                    rate = float(rate)
                except (TypeError, ValueError) as exc:
                    raise ValueError("details.pass_rate must be a number (0-1 or 0-100%)") from exc
                d["pass_rate"] = rate / 100 if rate > 1 else rate
                if not 0 <= d["pass_rate"] <= 1:
                    raise ValueError("details.pass_rate must be between 0 and 1 (or 0-100%)")
        if self.kind == "cost_tracking":
            try:
                cost = Decimal(str(d.get("cost_usd")))
            except ArithmeticError as exc:
                raise ValueError("cost_tracking needs details.cost_usd, an amount in USD") from exc
            if not cost.is_finite() or cost < 0:
                raise ValueError("details.cost_usd must be a finite amount of USD, 0 or more")
            d["cost_usd"] = str(cost)
            if d.get("per") not in ("request", "day", "month"):
                raise ValueError("cost_tracking needs details.per: request, day or month")
        if self.kind == "observability":
            tool = str(d.get("tool") or "")
            if len(tool) > 60 or len(tool.split()) > 5:
                raise ValueError("details.tool names the tracing tool (e.g. Langfuse, Arize "
                                 "Phoenix), not a sentence")
        if len(str(d)) > 8000:
            raise ValueError("details are too large (8 KB at most)")
        return self


def record_evidence(ctx: ToolContext, args: RecordEvidenceArgs) -> dict[str, Any]:
    """Record evidence the learner reports for step 4 (harden): evals, a CI gate that blocks
    regressions, observability (tracing tool and a trace or dashboard link), cost tracking.
    A fact the learner confirms for the post-mortem is kind 'other' with details.confirmed;
    when the repository cannot be audited, the learner's acknowledgement that step 4 rests on
    their word is kind 'other' with details.acknowledged (their words)."""
    for key, verb in (("confirmed", "confirm a fact"), ("acknowledged", "acknowledge")):
        said = args.details.get(key)
        if said is not None and not _learner_said(ctx, str(said)):
            # Both let a claim past a check: only the learner may give them.
            raise ToolError(f"only the learner can {verb}, in their own words in this turn")
    with session_scope(ctx.engine) as s:
        own_project(s, ctx, args.project_id)
    verified, note = False, None
    link = str(args.details.get("link") or "")
    if args.kind == "observability" and ctx.check_links \
            and link.startswith(("http://", "https://")):
        # Outside any transaction: the fetch can take seconds.
        args.details["link_check"], verified, note = check_trace_link(ctx, link)
        if verified:
            args.details["how"] = args.details["link_check"]["how"]
    with session_scope(ctx.engine) as s:
        ev = Evidence(project_id=args.project_id, kind=args.kind, details=args.details,
                      verified=verified)
        s.add(ev)
        s.flush()
        out = {"project_id": args.project_id, "evidence_id": ev.id, "kind": ev.kind,
               "details": ev.details, "verified": verified}
        return record_call(s, ctx, {**out, "note": note} if note else out)


# Reserved for examples (RFC 2606, RFC 6761): such a link cannot be a real dashboard.
_EXAMPLE_HOSTS = re.compile(r"(?:^|\.)(?:example(?:\.com|\.net|\.org)?|invalid|test)$", re.I)
_SIGN_IN = re.compile(r"/(?:log-?in|sign-?in|auth|sso|oauth2?)(?:[/?#]|$)", re.I)


def check_trace_link(ctx: ToolContext, link: str) -> tuple[dict[str, Any], bool, str | None]:
    """(what the fetch found, whether it verifies the link, what to tell the learner)."""
    host = (urlsplit(link).hostname or "").rstrip(".")
    if _EXAMPLE_HOSTS.search(host):
        return ({"ok": False, "reason": f"{host} is a reserved example domain"}, False,
                "that link is an example address, so it stays stated")
    policy = AddressPolicy(allow_private=ctx.allow_private_urls,
                           extra_allowed=[*ctx.extra_allowed_networks])
    with network_check(ctx, "the trace link check"):
        check = check_deployment_url(link, policy=policy, timeout=ctx.fetch_timeout)
    found = {"ok": check.ok, "status_code": check.status_code, "final_url": check.final_url,
             "latency_ms": check.latency_ms, "reason": check.reason,
             "checked_at": utcnow().isoformat(timespec="seconds")}
    behind_login = check.status_code in (401, 403) or \
        bool(check.final_url and _SIGN_IN.search(urlsplit(check.final_url).path))
    if check.ok and not behind_login:
        found["how"] = f"the coach fetched the trace link (HTTP {check.status_code})"
        return found, True, None
    why = "it is behind a sign-in" if behind_login else f"it did not answer ({check.reason})"
    return found, False, (f"the coach could not open that trace link: {why}. It counts as "
                          "stated; to verify your tracing, send your app's traces to the coach "
                          "(`coach projects ingest-token PROJECT_ID`)")


def _learner_said(ctx: ToolContext, text: str) -> bool:
    said = " ".join((ctx.learner_message or "").split()).lower()
    return bool(text.strip()) and " ".join(text.split()).lower() in said


class RecordLessonArgs(Args):
    project_id: int
    kind: LessonKind
    text: str = Field(min_length=3, max_length=4000)


def record_lesson(ctx: ToolContext, args: RecordLessonArgs) -> dict[str, Any]:
    """Record a lesson for the post-mortem: what worked, what didn't work, a tradeoff, or a
    decision and why."""
    with session_scope(ctx.engine) as s:
        own_project(s, ctx, args.project_id)
        lesson = Lesson(project_id=args.project_id, kind=args.kind, text=args.text)
        s.add(lesson)
        s.flush()
        return record_call(s, ctx, {"project_id": args.project_id, "lesson_id": lesson.id,
                                    "kind": lesson.kind, "text": lesson.text})


class AuditArgs(Args):
    project_id: int
    path: str = Field(min_length=1, max_length=2000)


def audit_repository_tool(ctx: ToolContext, args: AuditArgs) -> dict[str, Any]:
    """Inspect the learner's local git checkout: commit history, tests and evals, CI
    configuration, tracing and cost-tracking code. The findings are stored as evidence."""
    if not ctx.allow_local_paths:
        raise ToolError("this coach runs on a server and cannot audit local folders")
    with session_scope(ctx.engine) as s:
        own_project(s, ctx, args.project_id)
    try:
        audit = audit_repository(args.path)
    except AuditError as exc:
        raise ToolError(str(exc)) from exc
    details = audit.as_dict()
    with session_scope(ctx.engine) as s:
        if audit.commit:
            details["how"] = f"the coach audited the repository at commit {audit.short_commit}"
        s.add(Evidence(project_id=args.project_id, kind="audit", details=details,
                       verified=True, ok=audit.is_git and audit.commits > 0))
        return record_call(s, ctx, {"project_id": args.project_id, **details})


class ProjectUsageArgs(Args):
    project_id: int
    model: str = Field(min_length=1, max_length=100)
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cache_read_input_tokens: int = Field(default=0, ge=0)
    cache_creation_input_tokens: int = Field(default=0, ge=0)
    requests: int = Field(default=1, ge=1)
    period: Literal["request", "day", "month", "total"] | None = None

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        return value.lower()


def record_project_usage(ctx: ToolContext, args: ProjectUsageArgs) -> dict[str, Any]:
    """Record token usage of the learner's own project (not the coach's) and cost it with the
    coach's price table. An unknown model is recorded with an unknown cost, never $0."""
    usage = Usage(args.input_tokens, args.output_tokens, args.cache_read_input_tokens,
                  args.cache_creation_input_tokens)
    cost = (ctx.prices or price_table()).cost(args.model, usage)
    with session_scope(ctx.engine) as s:
        own_project(s, ctx, args.project_id)
        row = ProjectUsage(project_id=args.project_id, model=args.model,
                           input_tokens=args.input_tokens, output_tokens=args.output_tokens,
                           cache_read_input_tokens=args.cache_read_input_tokens,
                           cache_creation_input_tokens=args.cache_creation_input_tokens,
                           requests=args.requests, period=args.period, cost_usd=cost)
        s.add(row)
        return record_call(s, ctx, {
            "project_id": args.project_id, "model": args.model,
            "cost_usd": None if cost is None else str(cost), "cost_known": cost is not None,
            "period": args.period, "requests": args.requests})


EVIDENCE_TOOLS = [
    Tool("check_deployment", CheckDeploymentArgs, check_deployment, writes=True),
    Tool("record_evidence", RecordEvidenceArgs, record_evidence, writes=True),
    Tool("record_lesson", RecordLessonArgs, record_lesson, writes=True),
    Tool("audit_repository", AuditArgs, audit_repository_tool, writes=True),
    Tool("record_project_usage", ProjectUsageArgs, record_project_usage, writes=True),
]
