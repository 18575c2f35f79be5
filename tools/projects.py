"""Tools that create projects, change their facts, and move them through the steps."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator
from sqlmodel import Session, col, func, select

from memory.models import Evidence, Lesson, PostmortemVersion, Project, StepTransition, utcnow
from memory.paging import make_cursor, read_cursor
from memory.store import session_scope
from tools.base import Args, Tool, ToolContext, ToolError, own_project
from tools.consistency import recheck_record, refusal, resolved_record, weakening
from tools.effects import record_call
from tools.evidence_text import sentence, strength
from tools.gates import (
    CAPABILITIES,
    DONE,
    MAX_MVP_FEATURES,
    check_gate,
    difficulty,
    is_local_repo,
    is_remote_repo,
    local_repo_path,
    next_step,
    repo_problem,
)
from tools.records import load_record
from tools.remote import RemoteAudit
from tools.verification import refresh_audit, remote_audit

Text = Field(default=None, max_length=8000)
RECENT_LESSONS = 20


def _capabilities(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    cleaned = [c.strip().lower().replace("-", "_").replace(" ", "_") for c in value if c.strip()]
    unknown = [c for c in cleaned if c not in CAPABILITIES]
    if unknown:
        raise ValueError(
            f"unknown capabilities {unknown}; choose from: {', '.join(CAPABILITIES)}")
    return list(dict.fromkeys(cleaned))


class ProjectFields(Args):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    problem: str | None = Text
    audience: str | None = Text
    personal_context: str | None = Text
    success_criteria: str | None = Text
    capabilities: list[str] | None = Field(
        default=None, description=f"from: {', '.join(CAPABILITIES)}")

    _check_capabilities = field_validator("capabilities")(_capabilities)


def active_project_id(session: Session, user_id: int) -> int | None:
    """The learner's most recent project that is not done yet: the one a thread coaches."""
    return session.exec(select(Project.id).where(Project.user_id == user_id,
                                                 Project.step != DONE)
                        .order_by(col(Project.id).desc())).first()


def project_view(session: Session, project: Project) -> dict[str, Any]:
    """A project as the model and the CLI see it, with its gate."""
    rec = load_record(session, project)
    # The view goes into every model call: keep it bounded however long the project runs.
    lessons = list(session.exec(select(Lesson).where(Lesson.project_id == project.id)
                                .order_by(Lesson.id.desc()).limit(RECENT_LESSONS)).all())  # type: ignore[union-attr]
    lessons.reverse()
    lesson_count = session.exec(select(func.count()).select_from(Lesson)
                                .where(Lesson.project_id == project.id)).one()
    evidence: dict[str, Any] = {}
    for e in sorted(rec.evidence, key=lambda e: (e.checked_at, e.id or 0)):
        record = {**e.details, "verified": e.verified, "ok": e.ok,
                  "checked_at": e.checked_at.isoformat(timespec="seconds")}
        evidence[e.kind] = {**record, "strength": strength(record),
                            "summary": sentence(e.kind, record)}
    versions = sorted(rec.postmortems, key=lambda v: v.version)
    return {
        "id": project.id,
        "title": project.title,
        "step": project.step,
        "difficulty": project.difficulty,
        "capabilities": project.capabilities,
        "problem": project.problem,
        "audience": project.audience,
        "personal_context": project.personal_context,
        "success_criteria": project.success_criteria,
        "repo": project.repo,
        "mvp_scope": project.mvp_scope,
        "usage_note": project.usage_note,
        "previous_project_id": project.previous_project_id,
        "evidence": evidence,
        "lessons": [{"kind": lesson.kind, "text": lesson.text} for lesson in lessons],
        "lessons_total": lesson_count,
        "postmortems": [{"version": v.version, "source": v.source, "words": v.words}
                        for v in versions],
        "postmortem_draft": latest_draft(versions),
        "gate": check_gate(rec).as_dict(),
    }


def latest_draft(versions: list[PostmortemVersion]) -> dict[str, Any] | None:
    """The newest draft's questions and checks: what the post-mortem interview asks next."""
    drafts = [v for v in versions if v.source == "draft"]
    if not drafts:
        return None
    v = drafts[-1]
    return {"version": v.version, "words": v.words, "failed": v.report.get("failed", []),
            "todos": v.report.get("todos", [])}


def _apply(project: Project, fields: ProjectFields) -> list[str]:
    changed = []
    for name, value in fields.model_dump(exclude_unset=True, exclude={
            "project_id", "from_project_id", "insist"}).items():
        if value is None:
            continue
        setattr(project, name, value)
        changed.append(name)
    project.difficulty = difficulty(project.capabilities)
    project.updated_at = utcnow()
    return changed


class CreateProjectArgs(ProjectFields):
    title: str = Field(min_length=1, max_length=300)


def create_project(ctx: ToolContext, args: CreateProjectArgs) -> dict[str, Any]:
    """Start a new portfolio project at step 1 (problem). Give a title and whatever is already
    known of: the problem (20+ words), who has it (audience), the learner's personal context,
    a measurable success criterion, and the capabilities it will exercise."""
    with session_scope(ctx.engine) as s:
        project = Project(user_id=ctx.user_id, title=args.title)
        _apply(project, args)
        s.add(project)
        s.flush()
        return record_call(s, ctx, {"project_id": project.id, "step": project.step,
                                    "difficulty": project.difficulty,
                                    "gate": project_view(s, project)["gate"]})


class UpdateProjectArgs(ProjectFields):
    project_id: int
    repo: str | None = Field(default=None, max_length=2000)
    mvp_scope: list[str] | None = Field(default=None, max_length=MAX_MVP_FEATURES,
                                        description="1 to 3 core features")
    usage_note: str | None = Text
    insist: bool = Field(default=False, description=(
        "only when the learner insists on a change that an earlier, passed gate would now "
        "refuse: it is recorded and that step marked as needing a re-check"))

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("give a repository URL or a local git checkout path")
        return value

    @field_validator("mvp_scope")
    @classmethod
    def _scope(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            value = [v.strip() for v in value if v.strip()]
            if not value:
                raise ValueError("name 1 to 3 core features")
        return value


def checked_repo(ctx: ToolContext, repo: str) -> tuple[str, RemoteAudit | None]:
    """A repository the build gate can accept, as it will be stored, and for a URL the
    audit of its shallow clone (a URL that is not a reachable git repository is refused;
    a private one is kept, to be acknowledged at step 4)."""
    if is_local_repo(repo):
        if not ctx.allow_local_paths:
            raise ToolError("this coach runs on a server and cannot look at local folders: "
                            "give the repository's URL")
        repo = local_repo_path(repo)
    problem = repo_problem(repo)
    if problem:
        raise ToolError(f"repo needs {problem}")
    if not is_remote_repo(repo):
        return repo, None
    remote = remote_audit(ctx, repo.strip())
    if not remote.ok and not remote.private:
        raise ToolError(f"repo needs a repository the coach can read: {remote.reason}")
    return repo.strip(), remote


def update_project(ctx: ToolContext, args: UpdateProjectArgs) -> dict[str, Any]:
    """Change facts of a project: title, problem, audience, personal_context, success_criteria,
    repo (URL or local git path), mvp_scope (1-3 features), usage_note (from a real run),
    capabilities. Returns the updated project and what its current gate still needs."""
    remote = None
    if args.repo is not None:
        args.repo, remote = checked_repo(ctx, args.repo)
    with session_scope(ctx.engine) as s:
        project = own_project(s, ctx, args.project_id)
        assert project.id is not None
        changes = {k: v for k, v in args.model_dump(exclude_unset=True).items()
                   if v is not None}
        weakened = weakening(load_record(s, project), changes)
        if weakened and not args.insist:
            raise ToolError(refusal(weakened))
        changed = _apply(project, args)
        if not changed:
            raise ToolError("nothing to update: pass at least one field")
        s.add(project)
        mark = recheck_record(project.id, weakened) if weakened \
            else resolved_record(load_record(s, project))
        if mark is not None:
            s.add(mark)
        if remote is not None and project.id is not None:
            s.add(Evidence(project_id=project.id, kind="audit", details=remote.as_details(),
                           verified=True, ok=remote.ok))
        s.flush()
        return record_call(s, ctx, {"project_id": project.id, "updated": changed,
                                    "project": project_view(s, project)})


class ProjectIdArgs(Args):
    project_id: int


def advance_step(ctx: ToolContext, args: ProjectIdArgs) -> dict[str, Any]:
    """Try to move a project to its next step. The coach checks the current step's gate
    against stored evidence; if anything is missing, the step stays and the list of what is
    missing comes back. This is the only way a project's step changes."""
    with session_scope(ctx.engine) as s:
        seen = own_project(s, ctx, args.project_id)
    # The gate is checked against a fresh audit: the learner may just have fixed the repo.
    refresh_audit(ctx, seen)
    with session_scope(ctx.engine) as s:
        project = own_project(s, ctx, args.project_id)
        if project.step == DONE:
            return {"ok": False, "project_id": project.id, "step": DONE,
                    "missing": [], "reason": "this project is already done"}
        gate = check_gate(load_record(s, project))
        if not gate.passed:
            return {"ok": False, "project_id": project.id, "step": project.step,
                    "missing": [m.message for m in gate.missing], "gate": gate.as_dict()}
        before = project.step
        project.step = next_step(before)
        project.updated_at = utcnow()
        s.add(project)
        assert project.id is not None
        s.add(StepTransition(project_id=project.id, from_step=before, to_step=project.step,
                             thread_id=ctx.thread_id))
        # Only a step that moved is recorded: a refusal changed nothing, and may be retried.
        return record_call(s, ctx, {"ok": True, "project_id": project.id, "from_step": before,
                                    "step": project.step, "warnings": gate.warnings})


class NextProjectArgs(ProjectFields):
    from_project_id: int
    title: str = Field(min_length=1, max_length=300)
    capabilities: list[str] = Field(min_length=1,
                                    description=f"from: {', '.join(CAPABILITIES)}")


def start_next_project(ctx: ToolContext, args: NextProjectArgs) -> dict[str, Any]:
    """Start the next, harder project from a project at step 6 (repeat). Its difficulty (the
    number of distinct capabilities) must be strictly higher than the previous project's."""
    with session_scope(ctx.engine) as s:
        previous = own_project(s, ctx, args.from_project_id)
        if previous.step != "repeat":
            raise ToolError(f"project {previous.id} is at step {previous.step!r}; a next project"
                            " starts from step 'repeat'")
        new_difficulty = difficulty(args.capabilities)
        if new_difficulty <= previous.difficulty:
            raise ToolError(
                f"the next project must be harder: difficulty {new_difficulty} is not above"
                f" {previous.difficulty} ({', '.join(previous.capabilities) or 'none'})")
        project = Project(user_id=ctx.user_id, title=args.title, previous_project_id=previous.id)
        _apply(project, args)
        s.add(project)
        s.flush()
        return record_call(s, ctx, {
            "project_id": project.id, "difficulty": project.difficulty,
            "previous": {"project_id": previous.id, "difficulty": previous.difficulty},
            "step": project.step})


class NoArgs(Args):
    pass


def get_portfolio(ctx: ToolContext, _args: NoArgs) -> dict[str, Any]:
    """Every project of the learner with its step, difficulty and evidence summary, and
    portfolio readiness (3 done projects: ready to apply; 5: strong)."""
    with session_scope(ctx.engine) as s:
        projects = s.exec(select(Project).where(Project.user_id == ctx.user_id)
                          .order_by(col(Project.id))).all()
        return {"projects": [_portfolio_item(s, p) for p in projects],
                **_readiness(s, ctx.user_id)}


def portfolio_page(ctx: ToolContext, limit: int | None = None,
                   cursor: str | None = None) -> dict[str, Any]:
    """`get_portfolio` a page at a time: the projects in the order they were started, from
    after `cursor`, at most `limit` (None: all the rest); `next_cursor` continues after the
    page. Readiness always counts every project. BadCursor for a cursor of another list."""
    query = select(Project).where(Project.user_id == ctx.user_id)
    if cursor:
        (after,) = read_cursor(cursor, "projects", int)
        query = query.where(col(Project.id) > after)
    query = query.order_by(col(Project.id))
    with session_scope(ctx.engine) as s:
        projects = list(s.exec(query if limit is None else query.limit(limit + 1)).all())
        more = limit is not None and len(projects) > limit
        projects = projects[:limit]
        page = {"projects": [_portfolio_item(s, p) for p in projects],
                **_readiness(s, ctx.user_id)}
    last = projects[-1].id if more else None
    return {**page, "next_cursor": make_cursor("projects", last) if last is not None else None}


def _portfolio_item(s: Session, p: Project) -> dict[str, Any]:
    kinds = sorted({e.kind for e in s.exec(
        select(Evidence).where(Evidence.project_id == p.id)).all()})
    versions = s.exec(select(PostmortemVersion.version)
                      .where(PostmortemVersion.project_id == p.id)).all()
    return {"id": p.id, "title": p.title, "step": p.step, "difficulty": p.difficulty,
            "capabilities": p.capabilities, "evidence": kinds,
            "postmortem_versions": len(versions)}


def _readiness(s: Session, user_id: int) -> dict[str, Any]:
    done = s.exec(select(func.count()).select_from(Project)
                  .where(Project.user_id == user_id, Project.step == DONE)).one()
    readiness = "strong" if done >= 5 else "ready to apply" if done >= 3 else "building"
    return {"done": done, "readiness": readiness}


PROJECT_TOOLS = [
    Tool("create_project", CreateProjectArgs, create_project, opens_project=True, writes=True),
    Tool("update_project", UpdateProjectArgs, update_project, writes=True),
    Tool("advance_step", ProjectIdArgs, advance_step, writes=True),
    Tool("start_next_project", NextProjectArgs, start_next_project, opens_project=True,
         writes=True),
    Tool("get_portfolio", NoArgs, get_portfolio),
]
