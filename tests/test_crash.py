"""Crash safety for real: a `coach chat` process SIGKILLed in the middle of a turn (while
the model is answering, and while a tool is fetching a slow URL), then the same thread
resumed in a new process. Nothing the learner said is lost, nothing is recorded twice,
the dead process's lease does not hold the thread, and transcript and ledger agree."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from agent.threads import UNFINISHED
from evals.messages_api import MessagesAPI, text_reply, tool_reply
from memory.accounts import add_user
from memory.models import Evidence, LedgerEntry, Project, Thread, TranscriptEntry
from memory.store import open_engine, session_scope
from memory.users import ensure_user
from tests.learner import coach_env, json_turns, lines_in, run_coach, start_coach
from tests.sites import HeldSite
from tests.test_tools import FULL_PROBLEM, call, put_at_step
from tests.test_web_serve import serving
from tools import ToolContext

pytestmark = pytest.mark.slow
MODEL = "claude-sonnet-5-5"
PROJECT = {"title": "Handover Helper", "problem": "Night-shift nurses hand over ten to twenty "
           "patients in a few minutes from handwritten notes, and abnormal vitals get lost.",
           "audience": "ward nurses", "personal_context": "six years of night shifts",
           "success_criteria": "flags 95% of abnormal vitals"}


@pytest.fixture
def api() -> Iterator[MessagesAPI]:
    with MessagesAPI() as server:
        yield server


@pytest.fixture
def slow_site() -> Iterator[str]:
    """A deployed app that takes 20 s to answer: a tool call is still fetching it when the
    process is killed."""
    stop = threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            stop.wait(20)
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    worker = threading.Thread(target=server.serve_forever, daemon=True)
    worker.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    stop.set()
    server.shutdown()
    server.server_close()
    worker.join()


def env_for(home: str, api: MessagesAPI) -> dict[str, str]:
    return coach_env(home, private_urls=True, ANTHROPIC_API_KEY="test-key",
                     ANTHROPIC_BASE_URL=api.base_url, COACH_MODEL=MODEL,
                     COACH_BUDGET_USD="none")


def kill_when(process: Any, ready: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "the turn never reached the point to kill it at"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)  # reaped, so the pid is gone for good
    for pipe in (process.stdin, process.stdout, process.stderr):
        pipe.close()


def transcript(db: str) -> list[tuple[int, int, str, str]]:
    engine = open_engine(db)
    try:
        with session_scope(engine) as s:
            rows = s.exec(select(TranscriptEntry).order_by(
                TranscriptEntry.turn, TranscriptEntry.seq)).all()  # type: ignore[arg-type]
            return [(r.turn, r.seq, r.role, json.dumps(r.content)) for r in rows]
    finally:
        engine.dispose()


def counts(db: str) -> dict[str, Any]:
    engine = open_engine(db)
    try:
        with session_scope(engine) as s:
            return {"projects": len(s.exec(select(Project)).all()),
                    "ledger": [r.status for r in s.exec(select(LedgerEntry)).all()],
                    "leases": [t.lease_owner for t in s.exec(select(Thread)).all()]}
    finally:
        engine.dispose()


@pytest.mark.parametrize("where", ["model call", "tool call"])
def test_a_turn_killed_mid_way_loses_nothing_and_the_thread_resumes_at_once(
        api, slow_site, coach_home, tmp_path: Path, where: str) -> None:
    db = f"sqlite:///{tmp_path / 'coach.db'}"
    env = env_for(coach_home, api)
    api.queue(tool_reply("create_project", PROJECT), text_reply("Project created."))
    first = run_coach("--db", db, "chat", "--json", "--thread", "t1", env=env,
                      stdin=lines_in(["I want to build a handover helper"]))
    assert first.returncode == 0, first.stderr
    # The turn to be killed: a model call that hangs, or a tool fetching a hanging URL.
    if where == "model call":
        api.queue({**text_reply("never seen"), "sleep": 8})
    else:
        api.queue(tool_reply("check_deployment", {"project_id": 1, "url": slow_site}))
    requests_before = len(api.message_requests)
    killed = start_coach("--db", db, "chat", "--json", "--thread", "t1", env=env)
    assert killed.stdin is not None
    killed.stdin.write("URL: it is deployed now\n")
    killed.stdin.flush()
    kill_when(killed, lambda: len(api.message_requests) > requests_before
              and (where == "model call" or time.sleep(1.0) is None))
    api.script.clear()

    # A new process resumes the thread at once: the dead process's lease does not hold it.
    api.queue(text_reply("Welcome back."))
    started = time.monotonic()
    resumed = run_coach("--db", db, "chat", "--json", "--thread", "t1", env=env,
                        stdin=lines_in(["status please"]), timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert time.monotonic() - started < 25  # not the 30 s lease wait, nor the 5 min lease
    [turn] = json_turns(resumed.stdout)
    assert turn["turn"] == 3 and turn["reply"] == "Welcome back."

    rows = transcript(db)
    killed_turn = [r for r in rows if r[0] == 2]
    # The learner's message of the killed turn is kept, and the turn says it did not finish.
    assert [(seq, role) for _, seq, role, _ in killed_turn] == [(0, "user"), (1, "error")]
    assert "it is deployed now" in killed_turn[0][3] and UNFINISHED in killed_turn[1][3]
    resumed_turn = [r for r in rows if r[0] == 3]
    assert resumed_turn[0][2] == "user" and "status please" in resumed_turn[0][3]
    assert resumed_turn[-1][2] == "assistant"
    assert {r[0] for r in rows} == {1, 2, 3}  # no turn recorded twice
    assert len({(r[0], r[1]) for r in rows}) == len(rows)
    state = counts(db)
    assert state["projects"] == 1  # the project of turn 1, once
    assert state["leases"] == [None]  # released by the resumed process
    # Turn 1's two calls and turn 3's one, plus (killed in a tool) the call that asked for
    # the tool; a call killed before it finished leaves no row.
    assert state["ledger"] == ["ok"] * (3 if where == "model call" else 4)


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def owner_of_port(port: int, pids: list[int]) -> int:
    """Which of `pids` holds the TCP socket whose local port is `port` (Linux /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(cols[9])
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                link = os.readlink(fd)
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return pid
    raise AssertionError(f"no worker holds the connection from port {port}")


def test_a_serve_worker_killed_mid_turn_loses_and_duplicates_nothing(
        coach_home: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Four learners' deployment checks are in flight across `coach serve --workers 2` when
    the worker holding one of them is SIGKILLed: its learners' requests fail, they send again
    and get their answer; every check is recorded once, every killed turn is closed as
    unfinished, and the supervisor starts a new worker."""
    monkeypatch.setenv("COACH_ALLOW_PRIVATE_URLS", "1")
    db = f"sqlite:///{tmp_path / 'coach.db'}"
    engine = open_engine(db)
    site = HeldSite()
    names = ["ada", "bob", "cy", "dee"]
    tokens = {n: add_user(engine, n) for n in names}
    projects = {}
    for n in names:
        ctx = ToolContext(engine, ensure_user(engine, n), "setup")
        projects[n] = int(call(ctx, "create_project", FULL_PROBLEM).content["project_id"])
        put_at_step(engine, projects[n], "deploy")
    failures: dict[str, int] = dict.fromkeys(names, 0)
    answered: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    try:
        with serving(db, Path(coach_home), "--workers", "2") as (base, _):
            port = int(base.rsplit(":", 1)[1])
            [master] = [p for p in children_of(os.getpid())
                        if f"--port\0{port}".encode() in Path(f"/proc/{p}/cmdline").read_bytes()]
            deadline = time.monotonic() + 30
            while len(children_of(master)) < 2:
                assert time.monotonic() < deadline, "the two workers did not start"
                time.sleep(0.1)
            threads = {}
            for n in names:
                with httpx.Client(base_url=base, headers={
                        "Authorization": f"Bearer {tokens[n]}"}) as c:
                    threads[n] = c.post("/api/threads").json()["thread_id"]

            def learner(n: str, text: str) -> None:
                for _attempt in range(10):  # a learner sends again a turn that failed
                    # A new connection each time, so the turns spread over both workers.
                    with httpx.Client(base_url=base, timeout=60, headers={
                            "Authorization": f"Bearer {tokens[n]}", "Connection": "close"}) as c:
                        try:
                            r = c.post(f"/api/threads/{threads[n]}/messages",
                                       json={"text": text})
                        except httpx.TransportError:
                            failures[n] += 1
                            time.sleep(0.3)
                            continue
                    if r.status_code == 200:
                        answered[n].append(r.json())
                        return
                    failures[n] += 1
                    time.sleep(0.3)
                raise AssertionError(f"{n}'s turn never completed")

            with ThreadPoolExecutor(len(names)) as pool:
                flight = [pool.submit(learner, n, f"It is live at {site.url}") for n in names]
                assert site.wait_for(len(names)), "the checks did not all start"
                victim = owner_of_port(site.client_ports[0], children_of(master))
                os.kill(victim, signal.SIGKILL)
                site.release.set()
                for f in flight:
                    f.result(timeout=120)
            # Each learner's next turn: a killed turn's lease does not hold the thread.
            with ThreadPoolExecutor(len(names)) as pool:
                for f in [pool.submit(learner, n, "status") for n in names]:
                    f.result(timeout=60)
            deadline = time.monotonic() + 30
            while victim in children_of(master) or len(children_of(master)) < 2:
                assert time.monotonic() < deadline, "the supervisor did not replace the worker"
                time.sleep(0.2)
    finally:
        site.close()
    assert sum(failures.values()) >= 1  # the kill did hit a turn in flight
    with session_scope(engine) as s:
        for n in names:
            checks = s.exec(select(Evidence).where(Evidence.project_id == projects[n],
                                                   Evidence.kind == "deployment")).all()
            assert [e.ok for e in checks] == [True], n  # recorded once, by the retry
            rows = s.exec(select(TranscriptEntry).where(
                TranscriptEntry.thread_id == threads[n])).all()
            keys = [(r.turn, r.seq) for r in rows]
            assert len(keys) == len(set(keys)), n  # no entry recorded twice
            by_turn: dict[int, list[str]] = {}
            for r in sorted(rows, key=lambda r: (r.turn, r.seq)):
                by_turn.setdefault(r.turn, []).append(r.role)
            finished = [t for t, roles in by_turn.items() if roles[-1] == "assistant"]
            unfinished = [t for t, roles in by_turn.items() if roles[-1] != "assistant"]
            # Both answered turns, and one closed turn per request lost with the worker.
            assert sorted(a["turn"] for a in answered[n]) == finished, n
            assert all(by_turn[t] == ["user", "error"] for t in unfinished), by_turn
            assert len(unfinished) <= failures[n], n
        assert [t.lease_owner for t in s.exec(select(Thread)).all()] == [None] * len(names)
        assert len(s.exec(select(Project)).all()) == len(names)
    engine.dispose()


@pytest.fixture
def first_fetch_hangs() -> Iterator[tuple[str, threading.Event]]:
    """A trace link whose first fetch hangs (until the test is over) and every later one
    answers at once: the resumed turn can finish. The event says the first fetch began."""
    fetching, release = threading.Event(), threading.Event()

    class FirstHangs(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            if not fetching.is_set():
                fetching.set()
                release.wait(30)
                return  # its client was killed: nobody is left to answer
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html><body>trace 1</body></html>")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), FirstHangs)
    worker = threading.Thread(target=server.serve_forever, daemon=True)
    worker.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/trace/1", fetching
    release.set()
    server.shutdown()
    server.server_close()
    worker.join()


def evidence_kinds(db: str) -> list[str]:
    engine = open_engine(db)
    try:
        with session_scope(engine) as s:
            return sorted(e.kind for e in s.exec(select(Evidence)).all())
    finally:
        engine.dispose()


def test_a_tool_effect_committed_before_the_kill_is_not_repeated_when_the_turn_is_resent(
        first_fetch_hangs, coach_home, tmp_path: Path) -> None:
    """The offline coach turns the message into two calls: record the evals (committed at
    once), then verify the trace link (a fetch that hangs). Killed during the fetch and sent
    again in a new process, the turn makes the same calls with the same ids: the evals are
    recorded once, the link is checked, and the transcript keeps both attempts."""
    link, fetching = first_fetch_hangs
    db = f"sqlite:///{tmp_path / 'coach.db'}"
    engine = open_engine(db)
    try:
        user_id = ensure_user(engine, "ada")
        with session_scope(engine) as s:
            s.add(Project(user_id=user_id, title="Handover Helper", step="harden", **{
                k: v for k, v in PROJECT.items() if k != "title"}))
    finally:
        engine.dispose()
    env = coach_env(coach_home, private_urls=True)  # no API key: the offline coach
    chat = ("--db", db, "--user", "ada", "chat", "--json", "--thread", "t1")
    message = f"Evals: 24 cases, 91% pass, graded by pytest Tracing: Langfuse {link}"
    first = run_coach(*chat, env=env, stdin=lines_in(["status"]))
    assert first.returncode == 0, first.stderr

    killed = start_coach(*chat, env=env)
    assert killed.stdin is not None
    killed.stdin.write(message + "\n")
    killed.stdin.flush()
    kill_when(killed, fetching.is_set)
    assert evidence_kinds(db) == ["evals"]  # the first call's effect was committed

    resumed = run_coach(*chat, env=env, stdin=lines_in([message]), timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    [turn] = json_turns(resumed.stdout)
    assert turn["turn"] == 3
    assert [(c["name"], c["input"]["kind"], c["ok"]) for c in turn["tool_calls"]] == [
        ("record_evidence", "evals", True), ("record_evidence", "observability", True)]
    assert evidence_kinds(db) == ["evals", "observability"]  # the evals once, not twice

    rows = transcript(db)
    assert {r[0] for r in rows} == {1, 2, 3}
    killed_turn = [r for r in rows if r[0] == 2]
    assert [(seq, role) for _, seq, role, _ in killed_turn] == [(0, "user"), (1, "error")]
    assert "91% pass" in killed_turn[0][3] and UNFINISHED in killed_turn[1][3]
    resumed_turn = [r for r in rows if r[0] == 3]
    assert resumed_turn[0][2] == "user" and "91% pass" in resumed_turn[0][3]
    assert resumed_turn[-1][2] == "assistant"
