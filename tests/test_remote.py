"""Remote repositories: a real git smart-HTTP server on 127.0.0.1, dulwich's shallow clone
under the deployment check's address policy, and the same audit as a local checkout."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from agent.session import ensure_user
from evals.git_server import git_http
from memory.models import Evidence
from tests.test_claims import GOOD, STATED, commit, new_repo
from tests.test_tools import FULL_PROBLEM, GIT_ENV, call, get_project, put_at_step, rows
from tools import ToolContext
from tools.deployment import AddressPolicy
from tools.remote import audit_remote

LOCAL = AddressPolicy(extra_allowed=[ip_network("127.0.0.1/32")])


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path, _ = new_repo(tmp_path / "tool", GOOD)
    return path


@pytest.fixture
def served(repo: Path) -> Iterator[str]:
    with git_http({"/tool.git": repo, "/private/tool.git": repo}) as base:
        yield base


@pytest.fixture
def clone_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Clones go under a folder the test can inspect afterwards."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


def test_a_public_repository_is_cloned_shallowly_and_audited(
        served: str, repo: Path, clone_dirs: Path) -> None:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                          text=True, check=True).stdout.strip()
    result = audit_remote(f"{served}/tool.git", policy=LOCAL)
    assert result.ok, result.reason
    assert result.audit is not None
    assert result.audit.commit == head
    assert result.audit.ci == (".github/workflows/evals.yml",)
    assert result.audit.ci_runs[".github/workflows/evals.yml"] == ["pytest", "an eval runner"]
    assert result.audit.eval_cases == {"evals/cases.jsonl": 24}
    assert result.audit.tracing_tools == {"langfuse": ["app/trace.py"]}
    assert result.audit.findings[0].startswith(f"shallow clone of {served}/tool.git: HEAD "
                                               f"{head[:7]}")
    details = result.as_details()
    assert details["path"] == details["url"] == f"{served}/tool.git"  # no temp path leaks
    assert result.bytes_fetched > 0
    assert list(clone_dirs.iterdir()) == []  # the temporary clone is gone


def test_only_the_head_commit_is_fetched(served: str, repo: Path) -> None:
    for i in range(3):
        commit(repo, {f"notes/{i}.md": f"note {i}\n" * 200}, f"more {i}")
    commit(repo, {f"notes/{i}.md": "" for i in range(3)}, "trim")
    shallow = audit_remote(f"{served}/tool.git", policy=LOCAL)
    assert shallow.ok and shallow.audit is not None and shallow.audit.commits == 1
    # Depth 1: the notes' earlier, larger versions are not part of the fetch.
    assert shallow.bytes_fetched < 3 * 200 * 7


@pytest.mark.parametrize(("path", "reason", "private"), [
    ("/private/tool.git", "needs sign-in (HTTP 401/403)", True),
    ("/forbidden/tool.git", "needs sign-in (HTTP 401/403)", True),
    ("/missing.git", "is not a git repository (HTTP 404)", False),
])
def test_private_and_missing_repositories(served: str, path: str, reason: str,
                                          private: bool, clone_dirs: Path) -> None:
    result = audit_remote(served + path, policy=LOCAL)
    assert not result.ok and reason in result.reason and result.private is private
    assert list(clone_dirs.iterdir()) == []


def test_loopback_is_refused_without_the_private_url_setting(served: str) -> None:
    refused = audit_remote(f"{served}/tool.git")
    assert not refused.ok
    assert refused.reason == "refused: 127.0.0.1 is a loopback address"
    assert audit_remote(f"{served}/tool.git", policy=AddressPolicy(allow_private=True)).ok


def test_a_name_resolving_to_a_private_address_is_refused_before_connecting() -> None:
    asked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["10.1.2.3"]

    result = audit_remote("http://git.internal.example/app.git", resolver=resolver)
    assert asked == ["git.internal.example"]
    assert result.reason == "refused: git.internal.example resolves to 10.1.2.3, a private address"


@pytest.fixture
def redirector() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254" + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_redirect_into_the_metadata_address_is_refused(redirector: str) -> None:
    result = audit_remote(f"{redirector}/tool.git", policy=LOCAL)
    assert not result.ok
    assert result.reason == "refused: 169.254.169.254 is a link-local address"


def test_size_bound_and_credentials(served: str, clone_dirs: Path) -> None:
    small = audit_remote(f"{served}/tool.git", policy=LOCAL, max_bytes=200)
    assert not small.ok and small.reason == "the repository is bigger than 200 bytes at depth 1"
    assert list(clone_dirs.iterdir()) == []
    creds = audit_remote("https://ann:secret@git.example/tool.git")
    assert creds.reason == "a repository URL must not carry credentials"


def test_symlinks_and_submodules_are_not_followed(tmp_path: Path) -> None:
    repo, _ = new_repo(tmp_path / "links", GOOD)
    (repo / "escape").symlink_to("/etc")
    sub, _ = new_repo(tmp_path / "sub", {"x.py": "import langsmith\n"})
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "-c", "protocol.file.allow=always", "submodule", "add", "-q",
                    str(sub), "vendor/sub"], cwd=repo, check=True, env=env,
                   capture_output=True)
    commit(repo, {}, "links")
    with git_http({"/links.git": repo}) as base:
        result = audit_remote(f"{base}/links.git", policy=LOCAL)
    assert result.ok and result.audit is not None
    assert "langsmith" not in result.audit.tracing_tools  # the submodule was not fetched
    assert result.audit.files_scanned == len(GOOD) + 2  # README and .gitmodules; no symlink


# -- through the tools and gates ---------------------------------------------------------

def ctx_for(engine: Engine) -> ToolContext:
    return ToolContext(engine, ensure_user(engine, "ada"), "t",
                       extra_allowed_networks=[ip_network("127.0.0.1/32")])


def test_a_remote_repository_is_audited_when_given_and_at_the_harden_gate(
        engine: Engine, served: str, repo: Path) -> None:
    ctx = ctx_for(engine)
    pid = call(ctx, "create_project", FULL_PROBLEM).content["project_id"]
    put_at_step(engine, pid, "build")
    url = f"{served}/tool.git"
    updated = call(ctx, "update_project", {"project_id": pid, "repo": url,
                                           "mvp_scope": ["search"], "usage_note": "ran it"})
    assert updated.ok, updated.content
    [audit] = [e for e in rows(engine, Evidence) if e.kind == "audit"]
    assert audit.verified and audit.ok and audit.details["url"] == url
    assert call(ctx, "advance_step", {"project_id": pid}).content["step"] == "deploy"

    put_at_step(engine, pid, "harden")
    for kind, details in {**STATED, "ci_gate": {"config_path": ".gitlab-ci.yml"}}.items():
        assert call(ctx, "record_evidence", {"project_id": pid, "kind": kind,
                                             "details": dict(details)}).ok
    refused = call(ctx, "advance_step", {"project_id": pid}).content
    assert refused["ok"] is False
    assert refused["missing"][0].startswith("the CI config .gitlab-ci.yml is not in the "
                                            "repository at commit")


@pytest.mark.parametrize(("repo", "reason"), [
    ("git@localhost:/some/path", "is an SSH address, and the coach clones only over http(s)"),
    ("ssh://git@host/x.git", "is a ssh:// URL"),
    ("ftp://host/x.git", "a repository URL with an http(s) host"),
])
def test_non_http_repositories_fail_the_build_gate_with_the_reason(
        engine: Engine, repo: str, reason: str) -> None:
    ctx = ctx_for(engine)
    pid = call(ctx, "create_project", FULL_PROBLEM).content["project_id"]
    put_at_step(engine, pid, "build", repo=repo, mvp_scope=["a"], usage_note="ran it")
    refused = call(ctx, "advance_step", {"project_id": pid}).content
    assert refused["ok"] is False and any(reason in m for m in refused["missing"])
    assert reason in call(ctx, "update_project", {"project_id": pid, "repo": repo}
                          ).content["error"]


def test_an_unreachable_url_is_refused_and_a_private_one_kept(engine: Engine,
                                                               served: str) -> None:
    ctx = ctx_for(engine)
    pid = call(ctx, "create_project", FULL_PROBLEM).content["project_id"]
    put_at_step(engine, pid, "build")
    missing = call(ctx, "update_project", {"project_id": pid, "repo": f"{served}/nope.git"})
    assert not missing.ok and "is not a git repository (HTTP 404)" in missing.content["error"]
    assert get_project(engine, pid).repo == ""
    private = call(ctx, "update_project", {"project_id": pid,
                                           "repo": f"{served}/private/tool.git"})
    assert private.ok
    warnings = private.content["project"]["gate"]["warnings"]
    assert any("needs sign-in" in w and "acknowledgement" in w for w in warnings)
