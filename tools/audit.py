"""Inspect a learner's local checkout for evidence: history, tests, evals, CI, tracing, cost.

The coach cites what the repository shows rather than what the learner says. Nothing from the
audited repository is ever executed: git only reads, with the settings that could make it start
a program switched off, and file contents are only searched as text.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from tools.repo_facts import ClaimFacts

GIT_TIMEOUT_S = 10
# A repository's own .git/config can name a program for git to run (an fsmonitor hook, gpg for
# log.showSignature); command-line config overrides it. safe.directory=* lets us read checkouts
# owned by another user (mounted volumes, clones made as root) that git would otherwise refuse.
_GIT_CONFIG = ("-c", "core.fsmonitor=false", "-c", "log.showSignature=false",
               "-c", "safe.directory=*")
# Inherited from a calling git hook, these would point git at some other repository than `-C`.
_GIT_ENV_DROP = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
                 "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE")

SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", "dist", "build"})
CODE_EXTS = frozenset({".py", ".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".go", ".rs",
                       ".java", ".kt", ".rb", ".cs"})
_TEST_DIRS = frozenset({"tests", "test", "__tests__", "spec"})
_EVAL_DIRS = frozenset({"evals", "eval", "evaluations"})
_TEST_NAME = re.compile(r"test_.+\.py|.+_test\.(py|go|rb)|.+\.(test|spec)\.[cm]?[jt]sx?"
                        r"|.+_spec\.rb|.+Tests?\.(java|kt|cs)")
# Word-ish match so that "retrieval.py" is not mistaken for an eval runner.
_EVAL_NAME = re.compile(r"(?:^|[_.-])eval(?:s|uate|uation|uations|uator)?(?:[_.-]|$)", re.I)
_CI_FILES = frozenset({".gitlab-ci.yml", ".circleci/config.yml", "azure-pipelines.yml",
                       "bitbucket-pipelines.yml", ".travis.yml"})

_EVAL_IMPORT = re.compile(
    r"""(?:^\s*(?:from|import)\s+|require\(\s*["']|from\s+["'])"""
    r"(?:inspect_ai|deepeval|ragas|pydantic_evals|braintrust|autoevals)\b", re.M)
_TRACING = re.compile(
    r"\b(?:opentelemetry|openinference|langfuse|langsmith|logfire|helicone|ddtrace|dd-trace"
    r"|honeycomb|arize)\b|^\s*(?:from|import)\s+(?:phoenix|weave)\b|\bweave\.(?:init|op)\b",
    re.I | re.M)
_COST_DIRECT = re.compile(r"\b(?:cost_usd|completion_cost|tokencost)\b"
                          r"|\busage\.(?:input|output|prompt|completion)_?tokens\b", re.I)
_INPUT_TOKENS = re.compile(r"\binput_?tokens\b", re.I)
_OUTPUT_TOKENS = re.compile(r"\boutput_?tokens\b", re.I)
_PROMPT_TOKENS = re.compile(r"\b(?:prompt|completion)_?tokens\b", re.I)
_PRICE_WORDS = re.compile(r"pric|cost", re.I)


class AuditError(Exception):
    """The path given cannot be audited; the message says why in one line."""


@dataclass(frozen=True)
class RepositoryAudit:
    path: str
    is_git: bool
    commits: int
    first_commit_at: str | None
    last_commit_at: str | None
    files_scanned: int
    tests: tuple[str, ...]
    evals: tuple[str, ...]
    ci: tuple[str, ...]
    tracing: tuple[str, ...]
    cost_tracking: tuple[str, ...]
    findings: tuple[str, ...]
    # What a harden claim is checked against: the commit audited (None outside git), what
    # each CI config runs, the cases each eval data file holds (None: not countable), and
    # which tracing libraries each file imports.
    commit: str | None = None
    ci_runs: dict[str, list[str]] = field(default_factory=dict)
    eval_cases: dict[str, int | None] = field(default_factory=dict)
    tracing_tools: dict[str, list[str]] = field(default_factory=dict)
    # Where the files came from: "local" checkout, or "remote" (a shallow clone of a URL).
    source: str = "local"

    def as_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in fields(self)}

    @property
    def short_commit(self) -> str:
        return self.commit[:7] if self.commit else "(no commit)"


def _git(cwd: Path, *args: str) -> str | None:
    """Stdout of a read-only git command, or None if git is missing, slow or fails."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_ENV_DROP}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0")
    try:
        proc = subprocess.run(
            ["git", *_GIT_CONFIG, "-C", str(cwd), *args], stdin=subprocess.DEVNULL,
            capture_output=True, env=env, timeout=GIT_TIMEOUT_S, check=False,
            encoding="utf-8", errors="surrogateescape")
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_commit_count(path: str | Path) -> int | None:
    root = Path(path)
    if (_git(root, "rev-parse", "--is-inside-work-tree") or "").strip() != "true":
        return None
    out = _git(root, "rev-list", "--count", "HEAD")
    if out is not None:
        return int(out)
    # rev-list also fails on a corrupt repo; only an unborn HEAD means "no commits yet".
    return 0 if _git(root, "rev-parse", "-q", "--verify", "HEAD") is None else None


def _commit_span(root: Path) -> tuple[str | None, str | None]:
    # Root commits then one log entry each: cheap even for very long histories.
    last = (_git(root, "log", "-1", "--format=%cI", "HEAD") or "").strip() or None
    roots = (_git(root, "rev-list", "--max-parents=0", "HEAD") or "").split()
    if not roots:
        return None, last
    # Merged-in histories have several roots; the earliest one starts the project.
    dates = (_git(root, "log", "--no-walk", "--format=%cI", *roots, "--") or "").split()
    return min(dates, key=datetime.fromisoformat, default=None), last


def _git_files(root: Path) -> list[str] | None:
    # Tracked plus untracked-but-not-ignored: the learner's work in progress counts too.
    excludes = [f"--exclude={d}/" for d in sorted(SKIP_DIRS)]
    out = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard", *excludes)
    return None if out is None else sorted({p for p in out.split("\0") if p})


def _walk_files(root: Path, limit: int) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        base = Path(dirpath).relative_to(root)
        found.extend((base / name).as_posix() for name in sorted(filenames))
        if len(found) > limit:  # one past the cap so the caller can tell it was hit
            break
    return sorted(found)


def _wanted(rel: str) -> bool:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:  # a non-UTF-8 name would reach JSON as a lone surrogate
        return False
    return not SKIP_DIRS.intersection(PurePosixPath(rel).parts[:-1])


def _is_ci(rel: PurePosixPath) -> bool:
    parts = rel.parts
    if parts[:2] == (".github", "workflows") and len(parts) == 3:
        return rel.suffix in {".yml", ".yaml"}
    return (len(parts) > 1 and parts[0] in {".buildkite", ".ci"}) or rel.name == "Jenkinsfile" \
        or rel.as_posix() in _CI_FILES


def _path_categories(rel: PurePosixPath) -> set[str]:
    cats: set[str] = set()
    dirs = {d.lower() for d in rel.parts[:-1]}
    is_code = rel.suffix.lower() in CODE_EXTS and rel.name != "__init__.py"
    if _TEST_NAME.fullmatch(rel.name) or (is_code and dirs & _TEST_DIRS):
        cats.add("tests")
    if (dirs & _EVAL_DIRS and rel.name != "__init__.py") \
            or rel.name.lower().startswith("promptfoo") \
            or (is_code and _EVAL_NAME.search(rel.stem)):
        cats.add("evals")
    if _is_ci(rel):
        cats.add("ci")
    return cats


def _content_categories(text: str) -> set[str]:
    cats: set[str] = set()
    if _EVAL_IMPORT.search(text):
        cats.add("evals")
    if _TRACING.search(text):
        cats.add("tracing")
    if _COST_DIRECT.search(text) \
            or (_INPUT_TOKENS.search(text) and _OUTPUT_TOKENS.search(text)) \
            or (_PROMPT_TOKENS.search(text) and _PRICE_WORDS.search(text)):
        cats.add("cost_tracking")
    return cats


def _read_text(path: Path, max_bytes: int) -> str | None:
    """The file as text, or None when it is too large, binary or unreadable."""
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError:
        return None
    if len(data) > max_bytes or b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def _summary(items: list[str], one: str, many: str, none: str) -> str:
    if not items:
        return none
    shown = ", ".join(items[:3]) + (", …" if len(items) > 3 else "")
    return f"{len(items)} {one if len(items) == 1 else many} ({shown})"


def _history(is_git: bool, commits: int, first: str | None, last: str | None) -> str:
    if not is_git:
        return "not a git repository"
    if commits == 0 or not (first and last):
        return "git repository with no commits"
    if commits == 1:
        return f"1 commit on {last[:10]}"
    return f"{commits} commits from {first[:10]} to {last[:10]}"


def audit_repository(path: str | Path, *, max_files: int = 5000,
                     max_file_bytes: int = 256_000) -> RepositoryAudit:
    given = Path(path).expanduser()
    if not given.exists():
        raise AuditError(f"{given} does not exist")
    if not given.is_dir():
        raise AuditError(f"{given} is not a directory")
    root = given.resolve()

    count = git_commit_count(root)
    is_git, commits = count is not None, count or 0
    first, last = _commit_span(root) if commits else (None, None)
    listed = _git_files(root) if is_git else None
    files = listed if listed is not None else _walk_files(root, max_files)
    files = [f for f in files if _wanted(f)]

    found: dict[str, list[str]] = {k: [] for k in ("tests", "evals", "ci", "tracing",
                                                   "cost_tracking")}
    facts = ClaimFacts()
    scanned = unread = 0
    for rel in files[:max_files]:
        try:
            real = (root / rel).resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        # Symlinks may point anywhere; only what really lies inside the checkout is evidence.
        if not real.is_relative_to(root) or not real.is_file():
            continue
        scanned += 1
        posix = PurePosixPath(rel)
        cats = _path_categories(posix)
        if posix.suffix.lower() in CODE_EXTS:
            text = _read_text(real, max_file_bytes)
            if text is None:
                unread += 1
            else:
                cats |= _content_categories(text)
                facts.tracing(rel, text)
        if "ci" in cats or "evals" in cats:
            facts.read(rel, cats, _read_text(real, max_file_bytes))
        for cat in cats:
            found[cat].append(rel)

    findings = [
        _history(is_git, commits, first, last),
        _summary(found["tests"], "test file", "test files", "no test files found"),
        _summary(found["evals"], "eval file", "eval files", "no evals found"),
        _summary(found["ci"], "CI configuration file", "CI configuration files",
                 "no CI configuration found"),
        _summary(found["tracing"], "file with tracing", "files with tracing",
                 "no tracing instrumentation found"),
        _summary(found["cost_tracking"], "file tracking token usage or cost",
                 "files tracking token usage or cost", "no token-usage or cost tracking found"),
    ]
    if len(files) > max_files:
        findings.append(f"stopped after {max_files} files (max_files); results may be incomplete")
    if unread:
        findings.append(f"{unread} source files not read (binary or over {max_file_bytes} bytes)")

    return RepositoryAudit(
        path=str(root), is_git=is_git, commits=commits, first_commit_at=first,
        last_commit_at=last, files_scanned=scanned, tests=tuple(found["tests"]),
        evals=tuple(found["evals"]), ci=tuple(found["ci"]), tracing=tuple(found["tracing"]),
        cost_tracking=tuple(found["cost_tracking"]), findings=tuple(findings),
        commit=head_commit(root) if commits else None, ci_runs=facts.ci_runs,
        eval_cases=facts.eval_cases, tracing_tools=facts.tracing_tools)


def head_commit(path: str | Path) -> str | None:
    """The full sha of HEAD, or None outside a git checkout with commits."""
    out = (_git(Path(path), "rev-parse", "-q", "--verify", "HEAD") or "").strip()
    return out or None
