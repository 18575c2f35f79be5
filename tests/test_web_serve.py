"""`coach users` and `coach serve` as a learner or a mentor runs them: real subprocesses,
real uvicorn (one worker, and several on PostgreSQL), only on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from evals.serving import free_port, wait_until_healthy
from memory.accounts import user_for_token
from memory.models import User
from memory.store import open_engine, session_scope
from tests.learner import COACH, coach_env, one_error_line, run_coach
from tests.webserver import STEP_ONE


@contextmanager
def serving(db: str, home: Path, *args: str) -> Iterator[tuple[str, str]]:
    """(base URL, what `coach serve` printed on stdout) while it runs."""
    port = free_port()
    out, err = home.parent / f"serve-{port}.out", home.parent / f"serve-{port}.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen([str(COACH), "--db", db, "--user", "me", "serve", "--port",
                                 str(port), *args], env=coach_env(home), stdout=stdout,
                                stderr=stderr, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_healthy(base + "/healthz", proc, 60, "coach serve did not come up")
        except RuntimeError as exc:
            raise AssertionError(f"{exc}: {err.read_text()}") from None
        yield base, out.read_text()
    finally:
        proc.terminate()  # uvicorn shuts down gracefully on SIGTERM, workers included
        proc.wait(30)


def test_users_add_prints_a_token_that_is_stored_hashed(tmp_path: Path) -> None:
    db, env = f"sqlite:///{tmp_path / 'c.db'}", coach_env(tmp_path / "home")
    added = run_coach("--db", db, "users", "add", "ann", "--json", env=env)
    assert added.returncode == 0, added.stderr
    shown = json.loads(added.stdout)
    assert set(shown) == {"user", "token"} and shown["user"] == "ann"
    engine = open_engine(db)
    try:
        with session_scope(engine) as s:
            stored = s.exec(select(User.token_hash).where(User.name == "ann")).one()
        assert stored == hashlib.sha256(shown["token"].encode()).hexdigest()
        again = run_coach("--db", db, "users", "add", "ann", env=env)
        assert again.returncode == 1 and "coach users token ann" in one_error_line(again.stderr)
        rotated = run_coach("--db", db, "users", "token", "ann", "--json", env=env)
        new = json.loads(rotated.stdout)["token"]
        assert user_for_token(engine, shown["token"]) is None
        assert user_for_token(engine, new) is not None
    finally:
        engine.dispose()
    listed = run_coach("--db", db, "users", "list", "--json", env=env)
    assert json.loads(listed.stdout) == {"users": ["ann"]}
    missing = run_coach("--db", db, "users", "token", "nobody", env=env)
    assert missing.returncode == 1 and "coach users add" in one_error_line(missing.stderr)


def test_serving_beyond_loopback_needs_a_user(tmp_path: Path) -> None:
    # It refuses before binding anything, so no port is opened here.
    r = run_coach("--db", f"sqlite:///{tmp_path / 'c.db'}", "serve", "--host", "0.0.0.0",
                  env=coach_env(tmp_path / "home"))
    assert r.returncode == 1
    assert "coach users add NAME" in one_error_line(r.stderr)


@pytest.mark.slow
def test_serve_on_loopback_prints_a_one_time_sign_in_link(tmp_path: Path) -> None:
    with serving(f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "home") as (base, printed):
        link = re.search(r"Sign in as me: (\S+)", printed)
        assert link and link.group(1).startswith(base + "/signin?code=")
        with httpx.Client() as browser:
            r = browser.get(link.group(1))
            assert r.status_code == 303 and "coach_session" in browser.cookies
            page = browser.get(base + "/")
            assert page.status_code == 200 and ">me<" in page.text
            assert browser.get(base + "/api/threads").json() == {"threads": [], "next_cursor": None}
        assert httpx.get(link.group(1)).status_code == 401  # used once already
    # The learner who signed in through the link is a user, though they hold no token.
    listed = run_coach("--db", f"sqlite:///{tmp_path / 'c.db'}", "users", "list",
                       env=coach_env(tmp_path / "home"))
    assert listed.returncode == 0 and listed.stdout.split() == ["me", "sign-in", "link"]


@pytest.mark.slow
@pytest.mark.postgres
def test_several_workers_serve_one_cohort(tmp_path: Path, pg_url: str) -> None:
    env = coach_env(tmp_path / "home")
    tokens = [json.loads(run_coach("--db", pg_url, "users", "add", name, "--json",
                                   env=env).stdout)["token"] for name in ("ada", "bob", "cy")]
    with serving(pg_url, tmp_path / "home", "--host", "127.0.0.1", "--workers", "3") as (
            base, _):

        def learner(token: str) -> list[int]:
            with httpx.Client(base_url=base, timeout=60,
                              headers={"Authorization": f"Bearer {token}"}) as c:
                thread = c.post("/api/threads").json()["thread_id"]
                turns = [c.post(f"/api/threads/{thread}/messages",
                                json={"text": text}).json()["turn"]
                         for text in (STEP_ONE, "status", "status", "status")]
                # Every request may land on another worker: the thread is the same.
                assert c.get(f"/api/threads/{thread}").json()["turns"] == 4
                return turns

        with ThreadPoolExecutor(3) as pool:
            assert list(pool.map(learner, tokens)) == [[1, 2, 3, 4]] * 3


@pytest.mark.postgres
def test_workers_starting_at_once_set_up_checkpoints_once(pg_url: str) -> None:
    """`coach serve --workers N` on a fresh database: every worker opens the checkpointer
    at the same moment, and LangGraph's own migrations must not race."""
    from memory.checkpoints import open_checkpointer

    starters = 6
    barrier = threading.Barrier(starters)

    def start(_: int) -> bool:
        barrier.wait()
        with open_checkpointer(pg_url):
            return True

    with ThreadPoolExecutor(starters) as pool:
        assert list(pool.map(start, range(starters))) == [True] * starters


def test_serving_beyond_loopback_needs_allowed_hosts(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    env = coach_env(tmp_path / "home")
    assert run_coach("--db", db, "users", "add", "ann", env=env).returncode == 0
    r = run_coach("--db", db, "serve", "--host", "0.0.0.0", env=env)
    assert r.returncode == 1
    assert "--allowed-hosts" in one_error_line(r.stderr)


@pytest.mark.slow
def test_allowed_hosts_refuse_requests_for_any_other_host(tmp_path: Path) -> None:
    with serving(f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "home",
                 "--allowed-hosts", "coach.test, 127.0.0.1") as (base, _):
        assert httpx.get(base + "/healthz", headers={"Host": "coach.test"}).status_code == 200
        refused = httpx.get(base + "/healthz", headers={"Host": "evil.test"})
        assert refused.status_code == 400
        rebound = httpx.get(base + "/api/threads", headers={"Host": "attacker.example:80"})
        assert rebound.status_code == 400
