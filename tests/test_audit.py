"""tools.audit against real git repositories built in tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tools.audit import AuditError, audit_repository, git_commit_count

DATES = ("2026-01-02T10:00:00+00:00", "2026-01-20T12:30:00+00:00", "2026-02-11T08:15:00+00:00")
TRACING_CODE = "from opentelemetry import trace\n\ntracer = trace.get_tracer(__name__)\n"
COST_CODE = (
    "def cost(response):\n"
    "    usage = response.usage\n"
    "    return usage.input_tokens * 3e-6 + usage.output_tokens * 15e-6\n"
)


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Host git config must not matter, and git must not discover a repo above tmp_path."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)


def git(repo: Path, *args: str, date: str = DATES[0]) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Learner", "GIT_AUTHOR_EMAIL": "l@example.com",
           "GIT_COMMITTER_NAME": "Learner", "GIT_COMMITTER_EMAIL": "l@example.com",
           "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    proc = subprocess.run(["git", "-C", str(repo), *args], env=env, check=True,
                          capture_output=True, text=True)
    return proc.stdout


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)


def init_repo(path: Path) -> Path:
    path.mkdir()
    git(path, "-c", "init.defaultBranch=main", "init", "-q")
    return path


def commit_all(repo: Path, message: str, date: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message, date=date)


@pytest.fixture
def rich_repo(tmp_path: Path) -> Path:
    repo = init_repo(tmp_path / "rich")
    write(repo, {"README.md": "# Project\nUses opentelemetry and input_tokens.\n",
                 "app/__init__.py": "", "app/main.py": TRACING_CODE})
    commit_all(repo, "start", DATES[0])
    write(repo, {"tests/__init__.py": "", "tests/test_x.py": "def test_x():\n    assert True\n",
                 "evals/cases.jsonl": '{"input": "hi", "expected": "hello"}\n'})
    commit_all(repo, "tests and evals", DATES[1])
    write(repo, {".github/workflows/ci.yml": "on: push\njobs: {}\n", "app/cost.py": COST_CODE})
    commit_all(repo, "ci and cost", DATES[2])
    return repo


def test_rich_repository_reports_every_category(rich_repo: Path) -> None:
    audit = audit_repository(rich_repo)

    assert audit.path == str(rich_repo.resolve())
    assert audit.is_git is True
    assert audit.commits == 3
    assert audit.first_commit_at == DATES[0]
    assert audit.last_commit_at == DATES[2]
    assert audit.files_scanned == 8
    assert audit.tests == ("tests/test_x.py",)
    assert audit.evals == ("evals/cases.jsonl",)
    assert audit.ci == (".github/workflows/ci.yml",)
    assert audit.tracing == ("app/main.py",)  # README.md mentions it but is not code
    assert audit.cost_tracking == ("app/cost.py",)
    assert audit.findings[0] == "3 commits from 2026-01-02 to 2026-02-11"
    assert "1 test file (tests/test_x.py)" in audit.findings
    assert "1 CI configuration file (.github/workflows/ci.yml)" in audit.findings

    as_dict = json.loads(json.dumps(audit.as_dict()))
    assert as_dict["tests"] == ["tests/test_x.py"]
    assert as_dict["commits"] == 3
    assert as_dict["first_commit_at"] == DATES[0]


def test_git_commit_count(rich_repo: Path, tmp_path: Path) -> None:
    empty = init_repo(tmp_path / "empty")
    plain = tmp_path / "plain"
    plain.mkdir()

    assert git_commit_count(rich_repo) == 3
    assert git_commit_count(str(rich_repo / "tests")) == 3  # inside the work tree counts
    assert git_commit_count(empty) == 0
    assert git_commit_count(plain) is None
    assert git_commit_count(rich_repo / ".git") is None  # not a work tree


def test_git_commit_count_without_git_binary(
        rich_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_git = tmp_path / "empty-path"
    no_git.mkdir()
    monkeypatch.setenv("PATH", str(no_git))

    assert git_commit_count(rich_repo) is None
    audit = audit_repository(rich_repo)  # falls back to walking the directory
    assert audit.is_git is False
    assert audit.tests == ("tests/test_x.py",)
    assert not any(path.startswith(".git/") for path in audit.as_dict()["evals"])


def test_empty_git_repository(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "empty")

    audit = audit_repository(repo)

    assert audit.is_git is True
    assert audit.commits == 0
    assert audit.first_commit_at is None and audit.last_commit_at is None
    assert audit.files_scanned == 0
    assert audit.findings[0] == "git repository with no commits"
    assert "no CI configuration found" in audit.findings


def test_plain_directory_is_audited_without_git(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    write(plain, {"test_app.py": "def test_app():\n    pass\n",
                  "node_modules/pkg/test_dep.py": "",
                  ".venv/lib/site.py": TRACING_CODE,
                  "src/__pycache__/x_test.py": ""})

    audit = audit_repository(plain)

    assert audit.is_git is False
    assert audit.commits == 0
    assert audit.first_commit_at is None
    assert audit.files_scanned == 1
    assert audit.tests == ("test_app.py",)
    assert audit.tracing == ()
    assert audit.findings[0] == "not a git repository"


def test_single_commit_finding(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "one")
    write(repo, {"main.py": "print('hi')\n"})
    commit_all(repo, "one", DATES[1])

    audit = audit_repository(repo)

    assert audit.commits == 1
    assert audit.first_commit_at == audit.last_commit_at == DATES[1]
    assert audit.findings[0] == "1 commit on 2026-01-20"


def test_missing_path_raises(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(AuditError, match=r"nope does not exist$"):
        audit_repository(missing)


def test_file_path_raises(tmp_path: Path) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("hi")
    with pytest.raises(AuditError, match=r"notes\.txt is not a directory$"):
        audit_repository(file)


def test_gitignored_files_are_not_reported(rich_repo: Path) -> None:
    write(rich_repo, {".gitignore": "scratch/\nlocal_trace.py\n",
                      "local_trace.py": "import langfuse\n",
                      "scratch/test_tmp.py": "def test_tmp():\n    pass\n",
                      "wip/run_evals.py": "print('untracked but not ignored')\n"})

    audit = audit_repository(rich_repo)

    assert audit.tracing == ("app/main.py",)
    assert audit.tests == ("tests/test_x.py",)
    assert audit.evals == ("evals/cases.jsonl", "wip/run_evals.py")


def test_oversized_and_binary_files_are_skipped(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    write(plain, {"big.py": TRACING_CODE + "# padding\n" * 2000,
                  "packed.py": b"\x00\x01" + TRACING_CODE.encode(),
                  "weights.bin": os.urandom(600_000),
                  "small.py": "import logfire\n"})

    audit = audit_repository(plain, max_file_bytes=10_000)

    assert audit.files_scanned == 4
    assert audit.tracing == ("small.py",)
    assert "2 source files not read (binary or over 10000 bytes)" in audit.findings


@pytest.mark.parametrize("use_git", [True, False])
def test_symlink_outside_repository_is_not_followed(tmp_path: Path, use_git: bool) -> None:
    outside = tmp_path / "outside"
    write(outside, {"secret.py": TRACING_CODE, "tests/test_secret.py": COST_CODE})
    repo = init_repo(tmp_path / "repo") if use_git else tmp_path / "repo"
    write(repo, {"app/real.py": COST_CODE})
    try:
        (repo / "leak.py").symlink_to(outside / "secret.py")
        (repo / "linked").symlink_to(outside, target_is_directory=True)
        (repo / "alias.py").symlink_to(repo / "app" / "real.py")
    except OSError:
        pytest.skip("symlinks not supported here")
    if use_git:
        commit_all(repo, "links", DATES[0])

    audit = audit_repository(repo)

    assert audit.is_git is use_git
    assert audit.tracing == ()
    assert audit.tests == ()
    assert audit.cost_tracking == ("alias.py", "app/real.py")  # inside links are fine
    assert audit.files_scanned == 2


@pytest.mark.parametrize("use_git", [True, False])
def test_undecodable_file_names_are_skipped(tmp_path: Path, use_git: bool) -> None:
    repo = init_repo(tmp_path / "repo") if use_git else tmp_path / "repo"
    write(repo, {"tests/test_ok.py": ""})
    try:
        (repo / os.fsdecode(b"tests/test_\xff.py")).write_text("")
    except (OSError, UnicodeError):
        pytest.skip("file system rejects non-UTF-8 names")

    audit = audit_repository(repo)

    assert audit.tests == ("tests/test_ok.py",)
    json.dumps(audit.as_dict(), ensure_ascii=False).encode("utf-8")  # no lone surrogates


def test_max_files_cap(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "many")
    write(repo, {f"tests/test_{i:02d}.py": "" for i in range(10)})
    commit_all(repo, "many", DATES[0])

    audit = audit_repository(repo, max_files=4)

    assert audit.files_scanned == 4
    assert audit.tests == tuple(f"tests/test_{i:02d}.py" for i in range(4))
    assert "stopped after 4 files (max_files); results may be incomplete" in audit.findings
    assert audit_repository(repo, max_files=10).files_scanned == 10


def test_repository_config_cannot_run_programs(rich_repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\ntouch '{marker}'\nexit 1\n")
    hook.chmod(0o755)
    git(rich_repo, "config", "core.fsmonitor", str(hook))
    write(rich_repo, {"untracked.py": ""})
    git(rich_repo, "status")  # proves plain git would run it
    assert marker.exists()
    marker.unlink()

    audit = audit_repository(rich_repo)

    assert audit.commits == 3
    assert not marker.exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_foreign_owned_checkout_is_still_read(rich_repo: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(rich_repo):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            os.lchown(name, 12345, 12345)
    plain = subprocess.run(["git", "-C", str(rich_repo), "rev-list", "--count", "HEAD"],
                           capture_output=True, text=True)
    assert plain.returncode != 0  # git itself refuses: "dubious ownership"

    assert git_commit_count(rich_repo) == 3
    assert audit_repository(rich_repo).tests == ("tests/test_x.py",)


@pytest.mark.parametrize(("rel", "content", "category"), [
    ("run_evals.py", "print('x')\n", "evals"),
    ("evaluate.py", "", "evals"),
    ("promptfooconfig.yaml", "prompts: []\n", "evals"),
    ("quality.py", "from deepeval import evaluate\n", "evals"),
    ("task.py", "from inspect_ai import Task, task\n", "evals"),
    ("scorer.ts", 'import { Eval } from "braintrust";\n', "evals"),
    (".gitlab-ci.yml", "test: {}\n", "ci"),
    (".circleci/config.yml", "version: 2.1\n", "ci"),
    ("Jenkinsfile", "pipeline {}\n", "ci"),
    (".buildkite/pipeline.yml", "steps: []\n", "ci"),
    ("azure-pipelines.yml", "steps: []\n", "ci"),
    ("bitbucket-pipelines.yml", "pipelines: {}\n", "ci"),
    (".github/workflows/release.yaml", "on: push\n", "ci"),
    ("web/app.test.ts", "", "tests"),
    ("web/button.spec.jsx", "", "tests"),
    ("pkg/store_test.go", "", "tests"),
    ("obs.py", "import logfire\nlogfire.configure()\n", "tracing"),
    ("obs2.py", "from phoenix.otel import register\n", "tracing"),
    ("obs3.py", "import weave\n", "tracing"),
    ("obs4.ts", 'import { Langfuse } from "langfuse";\n', "tracing"),
    ("obs5.py", "from ddtrace import tracer\n", "tracing"),
    ("bill.py", "cost = litellm.completion_cost(completion_response=r)\n", "cost_tracking"),
    ("bill2.py", "total = usage.prompt_tokens * PRICE_PER_TOKEN\n", "cost_tracking"),
    ("bill3.py", "record(cost_usd=0.01)\n", "cost_tracking"),
    ("bill4.ts", "log(result.usage.inputTokens);\n", "cost_tracking"),
])
def test_detects_category(tmp_path: Path, rel: str, content: str, category: str) -> None:
    plain = tmp_path / "plain"
    write(plain, {rel: content})

    found = audit_repository(plain).as_dict()

    assert found[category] == [rel]
    others = {"tests", "evals", "ci", "tracing", "cost_tracking"} - {category}
    assert all(found[name] == [] for name in others)


@pytest.mark.parametrize(("rel", "content"), [
    ("rag/retrieval.py", "def retrieve():\n    pass\n"),
    ("notes/observability.md", "We should add opentelemetry and track cost_usd.\n"),
    (".github/workflows/README.md", "how CI works\n"),
    ("deploy/ci.yml", "not a recognised CI location\n"),
    ("stats.py", "n = usage.total\nprompt_tokens = 3\n"),  # counts without any cost word
    ("phoenix_city.py", "city = 'phoenix'\n"),
])
def test_ignores_lookalikes(tmp_path: Path, rel: str, content: str) -> None:
    plain = tmp_path / "plain"
    write(plain, {rel: content})

    audit = audit_repository(plain)

    assert audit.files_scanned == 1
    assert (audit.tests, audit.evals, audit.ci, audit.tracing, audit.cost_tracking) == (
        (), (), (), (), ())
