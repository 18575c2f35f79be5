"""Audit a repository given as an http(s) URL: a shallow clone, then the same audit as a
local checkout.

The URL is untrusted like a deployment URL. dulwich speaks git's smart-HTTP protocol
through a urllib3 pool whose every connection (the first and each redirect) goes to an
address the deployment check's policy allowed, and to exactly that address. The clone
fetches only HEAD at depth 1, is bounded in bytes and time, writes regular files only (no
symlinks, no submodules, no LFS smudging; a bare repository runs no hooks), and lives in a
temporary folder that is removed whatever happens.
"""

from __future__ import annotations

import os
import socket
import stat
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import urllib3
from dulwich.client import HTTPUnauthorized, Urllib3HttpGitClient
from dulwich.errors import GitProtocolError, HangupException, NotGitRepository
from dulwich.objects import Commit
from dulwich.repo import Repo
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from tools.audit import RepositoryAudit, audit_repository
from tools.deployment import AddressPolicy, AddressRefused, Resolver, validated_addresses

USER_AGENT = "portfolio-coach-repository-audit/1"
MAX_CLONE_BYTES = 50_000_000
CLONE_TIMEOUT_S = 30.0
MAX_FILES = 5000


class CloneRefused(Exception):
    """The clone was stopped: too big, too slow, or the address was refused."""


@dataclass
class _Budget:
    max_bytes: int
    deadline: float
    used: int = 0

    def spend(self, n: int) -> None:
        self.used += n
        if self.used > self.max_bytes:
            raise CloneRefused(f"the repository is bigger than {self.max_bytes:,} bytes at "
                               "depth 1")
        if time.monotonic() > self.deadline:
            raise CloneRefused("the clone took too long")


@dataclass
class RemoteAudit:
    """A clone-and-audit's outcome: the audit when it worked, else why not."""

    url: str
    ok: bool
    reason: str
    private: bool = False
    audit: RepositoryAudit | None = None
    clone_ms: int = 0
    bytes_fetched: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def as_details(self) -> dict[str, Any]:
        base = {"url": self.url, "path": self.url, "source": "remote",
                "auditable": self.ok, "reason": self.reason, "private": self.private,
                "clone_ms": self.clone_ms, "bytes_fetched": self.bytes_fetched}
        if self.audit is None:
            return base
        how = f"the coach cloned and audited the repository at commit {self.audit.short_commit}"
        return {**self.audit.as_dict(), **base, "how": how}


def _pinned(base: type[HTTPConnection], policy: AddressPolicy, resolver: Resolver | None,
            budget: _Budget) -> type[HTTPConnection]:
    class Pinned(base):  # type: ignore[valid-type,misc]
        def _new_conn(self) -> socket.socket:
            if time.monotonic() > budget.deadline:
                raise CloneRefused("the clone took too long")
            error: Exception | None = None
            for ip in validated_addresses(self._dns_host, self.port or self.default_port, policy,
                                          resolver):
                try:
                    # Connect to the validated IP; TLS still verifies the certificate
                    # against the host name (urllib3 wraps this socket with server_hostname).
                    return socket.create_connection((str(ip), self.port), self.timeout,
                                                    source_address=self.source_address)
                except OSError as exc:
                    error = exc
            raise NewConnectionError(self, f"could not connect to {self.host}: {error}")

    return Pinned


def pinned_pool(policy: AddressPolicy, resolver: Resolver | None, budget: _Budget,
                timeout: float) -> urllib3.PoolManager:
    """A urllib3 pool whose connections go only to addresses `policy` allows."""
    http_conn = _pinned(HTTPConnection, policy, resolver, budget)
    https_conn = _pinned(HTTPSConnection, policy, resolver, budget)
    http_pool = type("PinnedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn})
    https_pool = type("PinnedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn})
    manager = urllib3.PoolManager(
        headers={"User-Agent": USER_AGENT}, timeout=urllib3.Timeout(timeout),
        retries=urllib3.Retry(total=1, redirect=5, raise_on_redirect=True))
    # No proxy from the environment: a proxy would make the connection, not us.
    manager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}
    return manager


class _BoundedClient(Urllib3HttpGitClient):
    """dulwich's HTTP client with every response body counted against the budget."""

    def __init__(self, base_url: str, budget: _Budget, **kw: Any) -> None:
        super().__init__(base_url, **kw)
        self._budget = budget

    def _http_request(self, url: str, headers: dict[str, str] | None = None,
                      data: Any = None, raise_for_status: bool = True) -> Any:
        try:
            resp, read = super()._http_request(url, headers, data, raise_for_status)
        except GitProtocolError as exc:
            # dulwich reports 403 as a protocol error; a forge answers it for private repos.
            if "resp 403" in str(exc):
                raise HTTPUnauthorized(None, url) from exc
            raise

        def bounded(n: int = -1) -> bytes:
            chunk: bytes = read(n)
            self._budget.spend(len(chunk))
            return chunk

        return resp, bounded


def _head_only(refs: Mapping[bytes, bytes], depth: int | None = None) -> list[bytes]:
    head = refs.get(b"HEAD")
    if head is None:
        raise NotGitRepository("the repository has no HEAD (no commits yet?)")
    return [head]


def _safe_target(root: Path, path: bytes) -> Path | None:
    try:
        rel = PurePosixPath(path.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    if rel.is_absolute() or any(p in ("..", ".git", "") for p in rel.parts):
        return None
    return root.joinpath(*rel.parts)


def _check_out(repo: Repo, commit: Commit, root: Path, max_files: int) -> int:
    """Write the commit's regular files under `root`; returns how many were written."""
    written = 0
    for entry in repo.object_store.iter_tree_contents(commit.tree):
        if written >= max_files:
            break
        if entry.path is None or entry.mode is None or entry.sha is None:
            continue
        # Symlinks (could point anywhere) and gitlinks (submodules) are not followed.
        if not stat.S_ISREG(entry.mode):
            continue
        target = _safe_target(root, entry.path)
        if target is None:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(repo.object_store[entry.sha].as_raw_string())
        written += 1
    return written


def _reason(exc: Exception, url: str, timeout: float) -> tuple[str, bool]:
    """(why the clone failed, whether the repository is private rather than unreachable)."""
    if isinstance(exc, HTTPUnauthorized):
        return f"{url} needs sign-in (HTTP 401/403): the coach can read public repositories", \
            True
    if isinstance(exc, NotGitRepository):
        detail = str(exc) or "HTTP 404"
        return f"{url} is not a git repository ({detail})", False
    if isinstance(exc, AddressRefused | CloneRefused):
        return str(exc), False
    if isinstance(exc, NewConnectionError):
        return f"{url} is not reachable: {str(exc).rsplit(': ', 1)[-1]}", False
    if isinstance(exc, TimeoutError | socket.timeout | urllib3.exceptions.TimeoutError):
        return f"the clone timed out after {timeout:g} s", False
    if isinstance(exc, GitProtocolError) and isinstance(exc.__cause__, Exception):
        return _reason(exc.__cause__, url, timeout)  # dulwich wraps urllib3's errors
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        return _reason(exc.reason, url, timeout)
    if isinstance(exc, GitProtocolError | HangupException | urllib3.exceptions.HTTPError):
        return f"{url} is not a reachable git repository: {exc}", False
    return f"{url} could not be cloned: {type(exc).__name__}: {exc}", False


def clone_problem(url: str) -> str | None:
    """Why `url` is not something the coach will clone, before any connection."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"only http(s) repository URLs can be cloned, got {url!r}"
    if parts.username or parts.password:
        return "a repository URL must not carry credentials"
    return None


def audit_remote(url: str, *, policy: AddressPolicy | None = None,
                 resolver: Resolver | None = None, timeout: float = CLONE_TIMEOUT_S,
                 max_bytes: int = MAX_CLONE_BYTES, max_files: int = MAX_FILES,
                 clock: Callable[[], float] = time.monotonic) -> RemoteAudit:
    """Clone `url` at depth 1 into a temporary folder and audit it; never raises."""
    problem = clone_problem(url)
    if problem:
        return RemoteAudit(url, False, problem)
    started = clock()
    budget = _Budget(max_bytes, started + timeout)
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}/"
    with tempfile.TemporaryDirectory(prefix="coach-clone-") as tmp:
        try:
            client = _BoundedClient(
                base, budget, pool_manager=pinned_pool(policy or AddressPolicy(), resolver,
                                                       budget, timeout),
                timeout=timeout, quiet=True)
            repo = Repo.init_bare(os.path.join(tmp, "git"), mkdir=True)
            try:
                result = client.fetch(parts.path or "/", repo,
                                      determine_wants=_head_only,  # type: ignore[arg-type]
                                      depth=1)
                commit = repo[result.refs[b"HEAD"]]  # type: ignore[index]
                assert isinstance(commit, Commit)
                work = Path(tmp) / "tree"
                work.mkdir()
                _check_out(repo, commit, work, max_files)
            finally:
                repo.close()
            audit = audit_repository(work, max_files=max_files)
        except Exception as exc:  # the gate reports, never crashes the coach
            reason, private = _reason(exc, url, timeout)
            return RemoteAudit(url, False, reason, private, clone_ms=_ms(started, clock),
                               bytes_fetched=budget.used)
    when = datetime.fromtimestamp(commit.commit_time, UTC).isoformat()
    sha = commit.id.decode()
    findings = (f"shallow clone of {url}: HEAD {sha[:7]} committed {when[:10]}",
                *audit.findings[1:])
    audit = replace(audit, path=url, is_git=True, commits=1, first_commit_at=when,
                    last_commit_at=when, commit=sha, findings=findings, source="remote")
    return RemoteAudit(url, True, f"cloned at {sha[:7]}", audit=audit,
                       clone_ms=_ms(started, clock), bytes_fetched=budget.used)


def _ms(started: float, clock: Callable[[], float]) -> int:
    return int((clock() - started) * 1000)
