"""The six steps and the gate each one must pass before a project advances.

A gate is a pure function of what the store holds about a project; it returns
every requirement still missing, so the learner gets the whole list at once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from memory.models import Evidence, PostmortemVersion, Project
from memory.vocabulary import CAPABILITIES, DONE, STEPS
from tools.audit import git_commit_count
from tools.claims import repository_contradictions, trace_contradictions

# The one tool that changes a project's step, run by the graph's gate node.
GATE_TOOL = "advance_step"

MIN_PROBLEM_WORDS = 20
MAX_MVP_FEATURES = 3
MIN_EVAL_CASES = 10
POSTMORTEM_WORDS = (1200, 2000)
POSTMORTEM_SECTIONS: dict[str, str] = {
    "what worked": r"what\s+(?:has\s+)?worked",
    "what didn't": r"what\s+(?:didn['’]?t|did\s+not|hasn['’]?t|failed)",
    "tradeoffs": r"trade-?\s?offs?",
}


def next_step(step: str) -> str:
    index = STEPS.index(step)
    return STEPS[index + 1] if index + 1 < len(STEPS) else DONE


def difficulty(capabilities: Sequence[str]) -> int:
    return len({c for c in capabilities if c in CAPABILITIES})


def word_count(text: str) -> int:
    return len(re.findall(r"[\w'’-]+", text))


def missing_sections(text: str) -> list[str]:
    lowered = text.lower()
    return [name for name, pattern in POSTMORTEM_SECTIONS.items()
            if not re.search(pattern, lowered)]


@dataclass(frozen=True)
class Requirement:
    """One thing a gate still needs; `field` names what answers it."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass
class ProjectRecord:
    """What a gate looks at: the project and everything stored about it."""

    project: Project
    evidence: list[Evidence] = field(default_factory=list)
    postmortems: list[PostmortemVersion] = field(default_factory=list)
    successors: list[Project] = field(default_factory=list)
    # The latest failing submission re-checked against today's evidence, so that a fact the
    # learner confirms (or records) after submitting counts; None when not re-checked.
    postmortem_recheck: list[str] | None = None

    def latest(self, kind: str) -> Evidence | None:
        found = [e for e in self.evidence if e.kind == kind]
        return max(found, key=lambda e: (e.checked_at, e.id or 0)) if found else None

    def latest_where(self, kind: str, test: Callable[[Evidence], bool]) -> Evidence | None:
        found = [e for e in self.evidence if e.kind == kind and test(e)]
        return max(found, key=lambda e: (e.checked_at, e.id or 0)) if found else None

    def stated(self, kind: str) -> Evidence | None:
        """The learner's latest claim of `kind` (its trace link may have been fetched and
        so verified), as opposed to what the coach's own audit or received traces show."""
        return self.latest_where(kind, lambda e: e.details.get("source") not in ("traces",))

    def received(self, kind: str) -> Evidence | None:
        """What the learner's own traces established for `kind`, if any arrived."""
        return self.latest_where(kind, lambda e: e.verified and
                                 e.details.get("source") == "traces")

    def audit(self) -> Evidence | None:
        """The latest audit of the project's current repository (not of another path)."""
        repo = self.project.repo.strip()
        if not repo:
            return None
        return self.latest_where("audit", lambda e: repo in (e.details.get("url"),
                                                             e.details.get("path")))

    def acknowledged(self) -> bool:
        """Whether the learner said step 4 may rest on their word (unauditable repo)."""
        return self.latest_where("other", lambda e: bool(e.details.get("acknowledged"))) \
            is not None


@dataclass
class GateResult:
    step: str
    missing: list[Requirement]
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.missing

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "passed": self.passed,
            "missing": [m.as_dict() for m in self.missing],
            "warnings": self.warnings,
        }


def is_measurable(criterion: str) -> bool:
    return bool(re.search(r"\d", criterion))


def problem_gate(rec: ProjectRecord) -> GateResult:
    p = rec.project
    missing: list[Requirement] = []
    if not p.title.strip():
        missing.append(Requirement("title", "a title"))
    words = word_count(p.problem)
    if words < MIN_PROBLEM_WORDS:
        missing.append(Requirement(
            "problem",
            f"a problem statement of at least {MIN_PROBLEM_WORDS} words (it has {words})"))
    if not p.audience.strip():
        missing.append(Requirement("audience", "who has the problem (the audience)"))
    if not p.personal_context.strip():
        missing.append(Requirement("personal_context", "your personal context: why you"))
    if not p.success_criteria.strip():
        missing.append(Requirement("success_criteria", "a measurable success criterion"))
    elif not is_measurable(p.success_criteria):
        missing.append(Requirement(
            "success_criteria",
            "a success criterion with a number in it, so you can tell whether you met it"))
    return GateResult("problem", missing)


_COMMITS: dict[str, tuple[float, int | None]] = {}
COMMITS_TTL_S = 10.0


def recent_commit_count(path: str) -> int | None:
    """`git_commit_count`, remembered for a few seconds once it has found commits: the gate
    is checked on every model call of a turn, and each check would otherwise start git. A
    repo without commits is asked again, so a first commit counts at once."""
    now = time.monotonic()
    seen = _COMMITS.get(path)
    if seen is not None and now - seen[0] <= COMMITS_TTL_S:
        return seen[1]
    count = git_commit_count(path)
    if count:
        _COMMITS[path] = (now, count)
    return count


def is_local_repo(repo: str) -> bool:
    repo = repo.strip()
    return "://" not in repo and not (repo.startswith("git@") and ":" in repo)


def is_remote_repo(repo: str) -> bool:
    """An http(s) URL: the only kind of remote the coach can clone and audit."""
    return urlparse(repo.strip()).scheme in ("http", "https")


def local_repo_path(repo: str) -> str:
    """A local checkout's absolute path, so that it means the same from any directory."""
    return str(Path(repo.strip()).expanduser().resolve())


def repo_problem(repo: str) -> str | None:
    """Why `repo` is not acceptable evidence of a build, or None if it is."""
    repo = repo.strip()
    if not repo:
        return "a repository (a URL or a local git checkout)"
    if "://" in repo:
        parsed = urlparse(repo)
        if parsed.scheme in ("http", "https") and parsed.netloc:
            return None
        if parsed.scheme in ("ssh", "git", "git+ssh"):
            return (f"a repository the coach can read: {repo} is a {parsed.scheme}:// URL, "
                    "and the coach clones only over http(s); give its https:// URL")
        return f"a repository URL with an http(s) host (got {repo!r})"
    if not is_local_repo(repo):
        return (f"a repository the coach can read: {repo} is an SSH address, and the coach "
                "clones only over http(s); give its https:// URL")
    commits = recent_commit_count(local_repo_path(repo))
    if commits is None:
        return f"a repository: {repo} is not a git checkout"
    if commits == 0:
        return f"a repository with at least one commit ({repo} has none yet)"
    return None


def build_gate(rec: ProjectRecord) -> GateResult:
    p = rec.project
    missing: list[Requirement] = []
    problem = repo_problem(p.repo)
    if problem:
        missing.append(Requirement("repo", problem))
    warnings: list[str] = []
    audit = rec.audit() if not problem and is_remote_repo(p.repo) else None
    if audit is not None and not audit.ok:
        reason = audit.details.get("reason", "it could not be cloned")
        if audit.details.get("private"):
            warnings.append(f"the coach cannot read {p.repo} ({reason}); step 4 will then "
                            "need your acknowledgement that it rests on your word")
        else:
            missing.append(Requirement("repo", f"a repository the coach can read: {reason}"))
    if not p.mvp_scope:
        missing.append(Requirement("mvp_scope", "the MVP scope: 1 to 3 core features"))
    elif len(p.mvp_scope) > MAX_MVP_FEATURES:
        missing.append(Requirement(
            "mvp_scope",
            f"an MVP scope of at most {MAX_MVP_FEATURES} features (it has {len(p.mvp_scope)})"))
    if not p.usage_note.strip():
        missing.append(Requirement("usage_note", "a usage note from a real run of the tool"))
    return GateResult("build", missing, warnings)


def deploy_gate(rec: ProjectRecord) -> GateResult:
    check = rec.latest("deployment")
    if check is None:
        return GateResult("deploy", [Requirement(
            "deployment", "a deployment URL the coach has fetched successfully")])
    details = check.details
    if not check.ok:
        reason = details.get("reason", "the last check failed")
        return GateResult("deploy", [Requirement(
            "deployment", f"a deployment that passes the check ({details.get('url')}: {reason})")])
    warnings = list(details.get("warnings", []))
    return GateResult("deploy", [], warnings)


def _harden_evals(rec: ProjectRecord) -> list[Requirement]:
    ev = rec.latest("evals")
    if ev is None:
        return [Requirement("evals", "evals: the eval-set size, grading method and pass rate")]
    d = ev.details
    out = []
    cases = d.get("cases")
    if not isinstance(cases, int) or cases < MIN_EVAL_CASES:
        out.append(Requirement("evals", f"an eval set of at least {MIN_EVAL_CASES} cases"
                               f" (recorded: {cases if cases is not None else 'none'})"))
    if d.get("pass_rate") is None:
        out.append(Requirement("evals", "the latest eval pass rate"))
    if not d.get("grader"):
        out.append(Requirement("evals", "how the evals are graded"))
    return out


def harden_gate(rec: ProjectRecord) -> GateResult:
    missing = _harden_evals(rec)
    ci = rec.latest("ci_gate")
    if ci is None or not (ci.details.get("provider") or ci.details.get("config_path")):
        missing.append(Requirement("ci_gate", "a CI gate that blocks regressions"))
    traced = rec.received("observability")
    obs = rec.stated("observability")
    if traced is not None:
        pass  # spans arrived from the learner's app: no stated tool or link is needed
    elif obs is None or not obs.details.get("tool"):
        missing.append(Requirement("observability", "the tracing tool you use"))
    elif not str(obs.details.get("link", "")).startswith(("http://", "https://")):
        missing.append(Requirement("observability", "a link to a trace or dashboard"))
    cost = rec.received("cost_tracking") or rec.stated("cost_tracking")
    if cost is None or cost.details.get("cost_usd") is None:
        missing.append(Requirement(
            "cost_tracking", "a recorded cost figure (per request, per day or per month)"))
    found, notes = repository_contradictions(rec.stated, rec.audit(), rec.acknowledged(),
                                             traced is not None)
    if traced is not None:
        found += trace_contradictions(rec.stated, traced.details)
    missing += [Requirement(f, message) for f, message in found]
    return GateResult("harden", missing, notes)


def postmortem_gate(rec: ProjectRecord) -> GateResult:
    submissions = [v for v in rec.postmortems if v.source == "submission"]
    if not submissions:
        return GateResult("postmortem", [Requirement(
            "postmortem", f"a post-mortem of {POSTMORTEM_WORDS[0]}–{POSTMORTEM_WORDS[1]} words")])
    latest = max(submissions, key=lambda v: v.version)
    failed = latest.report.get("failed", [])
    if failed and rec.postmortem_recheck is not None:
        failed = rec.postmortem_recheck
    return GateResult("postmortem", [Requirement("postmortem", f) for f in failed])


def repeat_gate(rec: ProjectRecord) -> GateResult:
    harder = [s for s in rec.successors if s.difficulty > rec.project.difficulty]
    if harder:
        return GateResult("repeat", [])
    return GateResult("repeat", [Requirement(
        "next_project",
        f"a next project with difficulty above {rec.project.difficulty}"
        " (declare more capabilities than this one)")])


GATES: dict[str, Callable[[ProjectRecord], GateResult]] = {
    "problem": problem_gate,
    "build": build_gate,
    "deploy": deploy_gate,
    "harden": harden_gate,
    "postmortem": postmortem_gate,
    "repeat": repeat_gate,
}


def check_gate(rec: ProjectRecord) -> GateResult:
    step = rec.project.step
    if step == DONE:
        return GateResult(DONE, [])
    result = GATES[step](rec)
    from tools.consistency import recheck_requirements  # it builds on this module's gates

    result.missing += recheck_requirements(rec)
    return result
