"""Coach sessions: bad input, the transcript, failures, leases, concurrency, bounded state,
and resuming a thread from another process's point of view (a new engine and checkpointer)."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, text
from sqlmodel import select

from agent.demo import make_repo
from agent.errors import MAX_MESSAGE_BYTES, CoachError, ThreadBusy
from agent.graph import turn_starts
from agent.offline import OfflineCoach
from agent.session import Coach
from agent.settings import Settings
from evals.git_server import git_http
from memory.checkpoints import open_checkpointer
from memory.models import LedgerEntry, Project, Thread, utcnow
from memory.store import open_engine, session_scope
from seam.model import Message
from tests.doubles import FlakyModel

FIRST_MESSAGE = (
    "Title: Handover Helper Problem: Night-shift nurses hand over ten to twenty patients in a "
    "few minutes from handwritten notes, and abnormal vitals get lost when the ward is busy. "
    "Audience: ward nurses Why me: six years of night shifts Success: flags 95% of abnormal "
    "vitals")


@contextmanager
def open_coach(url: str, user: str = "ann", model: Any = None) -> Iterator[Coach]:
    """A coach with its own engine and checkpointer, as a separate process would have."""
    engine = open_engine(url)
    try:
        with open_checkpointer(url) as saver:
            yield Coach(engine, saver, user=user, model=model or OfflineCoach())
    finally:
        engine.dispose()


@pytest.fixture
def coach(sqlite_url: str) -> Iterator[Coach]:
    with open_coach(sqlite_url) as c:
        yield c


def count(engine: Engine, model: type, *where: Any) -> int:
    with session_scope(engine) as s:
        return s.exec(select(func.count()).select_from(model).where(*where)).one()


def thread_row(engine: Engine, thread_id: str) -> Thread:
    with session_scope(engine) as s:
        row = s.get(Thread, thread_id)
        assert row is not None
        return row


def window(coach: Coach, thread_id: str) -> dict[str, Any]:
    return coach.graph.get_state({"configurable": {"thread_id": thread_id}}).values


def assert_no_dangling_tool_use(messages: list[Message]) -> None:
    """Every tool_use is answered by a tool_result in the very next message."""
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        ids = {b["id"] for b in m["content"] if b.get("type") == "tool_use"}
        if not ids:
            continue
        assert i + 1 < len(messages), "a tool_use ends the window"
        answered = {b["tool_use_id"] for b in messages[i + 1]["content"]
                    if b.get("type") == "tool_result"}
        assert answered == ids


# -- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("message", ["", "   ", "\n\t \n"])
def test_an_empty_message_is_refused_and_nothing_is_recorded(coach: Coach, message: str
                                                             ) -> None:
    tid = coach.thread()
    with pytest.raises(CoachError, match="empty message"):
        coach.turn(tid, message)
    assert thread_row(coach.engine, tid).turns == 0
    assert coach.transcript(tid) == []
    assert count(coach.engine, LedgerEntry) == 0


def test_a_message_over_the_limit_is_refused_and_nothing_is_recorded(coach: Coach) -> None:
    tid = coach.thread()
    message = "Problem: " + "x" * (33 * 1024)
    with pytest.raises(CoachError, match="32,768") as info:
        coach.turn(tid, message)
    assert "too long" in str(info.value)
    assert thread_row(coach.engine, tid).turns == 0
    assert coach.transcript(tid) == []
    assert count(coach.engine, LedgerEntry) == 0
    assert count(coach.engine, Project) == 0


def test_the_limit_counts_bytes_not_characters(coach: Coach) -> None:
    tid = coach.thread()
    # 11,000 three-byte characters: under 32 KB in characters, over it in bytes.
    with pytest.raises(CoachError, match="too long"):
        coach.turn(tid, "€" * 11_000)
    assert coach.turn(tid, "x" * (MAX_MESSAGE_BYTES - 10)).error is None


@pytest.mark.parametrize("bad", ["", "has space", "../etc", "a" * 65, "-leading"])
def test_a_bad_thread_id_is_refused(coach: Coach, bad: str) -> None:
    with pytest.raises(CoachError):
        coach.turn(bad, "status")
    assert count(coach.engine, Thread) == 0


def test_another_learners_thread_is_refused(sqlite_url: str, coach: Coach) -> None:
    tid = coach.thread()
    coach.turn(tid, "Title: Mine")
    with open_coach(sqlite_url, user="bob") as bob:
        with pytest.raises(CoachError, match="another learner"):
            bob.turn(tid, "status")
        with pytest.raises(CoachError):
            bob.transcript(tid)
        assert bob.threads.all() == []
    assert thread_row(coach.engine, tid).turns == 1
    assert [e.turn for e in coach.transcript(tid)] == [1] * len(coach.transcript(tid))


# -- the transcript -------------------------------------------------------------------------

def test_a_turn_is_recorded_once_in_order(coach: Coach) -> None:
    tid = coach.thread("my-thread")
    result = coach.turn(tid, FIRST_MESSAGE)
    assert (result.thread_id, result.turn) == ("my-thread", 1)
    assert thread_row(coach.engine, tid).turns == 1
    entries = coach.transcript(tid)
    assert [e.seq for e in entries] == list(range(len(entries)))
    assert {e.turn for e in entries} == {1}
    assert entries[0].role == "user"
    assert entries[0].content == [{"type": "text", "text": FIRST_MESSAGE}]
    assert entries[-1].role == "assistant"
    assert entries[-1].content == [{"type": "text", "text": result.reply}]
    kinds = [(e.role, [b["type"] for b in e.content]) for e in entries]
    # create_project, then the gate, then the reply: each tool_use answered by a result.
    assert kinds == [("user", ["text"]), ("assistant", ["tool_use"]), ("user", ["tool_result"]),
                     ("assistant", ["tool_use"]), ("user", ["tool_result"]),
                     ("assistant", ["text"])]
    # The transcript holds exactly this turn's messages as the graph saw them.
    state = window(coach, tid)
    assert [e.content for e in entries] == [m["content"]
                                            for m in state["messages"][state["turn_start"]:]]

    second = coach.turn(tid, "status")
    assert second.turn == 2
    assert thread_row(coach.engine, tid).turns == 2
    entries = coach.transcript(tid)
    assert [(e.turn, e.seq, e.role) for e in entries][-2:] == [(2, 0, "user"),
                                                               (2, 1, "assistant")]
    assert len([e for e in entries if e.turn == 1]) == 6
    assert thread_row(coach.engine, tid).project_id == result.project_id


def test_turn_json_has_the_contract_keys(coach: Coach) -> None:
    out = coach.turn(coach.thread(), FIRST_MESSAGE).as_json()
    assert set(out) == {"thread_id", "turn", "reply", "step", "project_id", "tool_calls",
                        "usage", "cost_usd", "model", "trace_id"}
    assert set(out["usage"]) == {"input_tokens", "output_tokens", "cache_read_input_tokens",
                                 "cache_creation_input_tokens"}
    assert out["tool_calls"][0] == {"name": "create_project", "ok": True,
                                    "input": out["tool_calls"][0]["input"]}
    assert out["cost_usd"] == 0.0 and out["model"] == "offline" and out["step"] == "build"


# -- a model that fails -----------------------------------------------------------------------

def test_a_model_error_mid_turn_keeps_the_message_and_the_next_turn_works(
        sqlite_url: str) -> None:
    model = FlakyModel()
    with open_coach(sqlite_url, model=model) as coach:
        tid = coach.thread()
        first = coach.turn(tid, "Title: Handover Helper")  # calls 1 and 2
        assert first.error is None and model.calls == 2
        before = coach.transcript(tid)
        with session_scope(coach.engine) as s:
            project_before = s.get(Project, first.project_id)
            assert project_before is not None
            snapshot = project_before.model_dump()

        # `portfolio`: call 3 asks for get_portfolio (which runs), call 4 fails.
        model.fail_on = {4}
        failed = coach.turn(tid, "portfolio")
        assert model.calls == 4
        assert failed.error is not None and "overloaded" in failed.error
        assert failed.turn == 2
        assert "send it again" in failed.reply
        assert failed.project_id == first.project_id and failed.step == "problem"

        entries = coach.transcript(tid)
        assert entries[:len(before)] == before
        turn2 = [(e.seq, e.role, e.content[0]["text"]) for e in entries if e.turn == 2]
        assert turn2 == [(0, "user", "portfolio"), (1, "error", failed.error)]
        assert thread_row(coach.engine, tid).turns == 2
        with session_scope(coach.engine) as s:
            assert s.get(Project, first.project_id).model_dump() == snapshot  # type: ignore[union-attr]
        with session_scope(coach.engine) as s:
            ledger = s.exec(select(LedgerEntry).order_by(LedgerEntry.id)).all()  # type: ignore[arg-type]
            assert [r.status for r in ledger] == ["ok", "ok", "ok", "error"]
            assert ledger[-1].request_id == "req_123" and "overloaded" in (ledger[-1].error or "")

        # The next turn works, and its window holds no trace of the broken turn.
        nxt = coach.turn(tid, "status")
        assert nxt.error is None and nxt.turn == 3
        assert "“Handover Helper” is at step 1/6" in nxt.reply
        messages = window(coach, tid)["messages"]
        assert_no_dangling_tool_use(messages)
        learner = [messages[i]["content"][0]["text"] for i in turn_starts(messages)]
        assert learner == ["Title: Handover Helper", "status"]


def test_a_model_error_on_the_first_call_changes_nothing(sqlite_url: str) -> None:
    model = FlakyModel()
    model.fail_on = {1}
    with open_coach(sqlite_url, model=model) as coach:
        tid = coach.thread()
        failed = coach.turn(tid, FIRST_MESSAGE)
        assert failed.error is not None
        assert failed.project_id is None and failed.step is None
        assert failed.tool_calls == []
        assert count(coach.engine, Project) == 0
        assert [e.role for e in coach.transcript(tid)] == ["user", "error"]
        again = coach.turn(tid, FIRST_MESSAGE)
        assert again.error is None and again.step == "build" and again.turn == 2
        assert_no_dangling_tool_use(window(coach, tid)["messages"])


# -- the lease ----------------------------------------------------------------------------------

def test_a_busy_thread_is_refused_and_nothing_is_recorded(sqlite_url: str, coach: Coach
                                                          ) -> None:
    tid = coach.thread()
    with open_coach(sqlite_url) as other:
        assert other.user_id == coach.user_id
        with coach.threads.lease(tid):
            with pytest.raises(ThreadBusy, match="busy"):
                other.turn(tid, FIRST_MESSAGE)
            assert thread_row(coach.engine, tid).lease_owner == coach.threads.owner
        assert thread_row(coach.engine, tid).lease_owner is None
        assert thread_row(coach.engine, tid).turns == 0
        assert coach.transcript(tid) == []
        assert count(coach.engine, LedgerEntry) == 0
        assert count(coach.engine, Project) == 0
        # Once the lease is released, the other session can take its turn.
        assert other.turn(tid, FIRST_MESSAGE).turn == 1


def test_an_expired_lease_can_be_taken_over(sqlite_url: str, coach: Coach) -> None:
    tid = coach.thread()
    with session_scope(coach.engine) as s:
        row = s.get(Thread, tid)
        assert row is not None
        row.lease_owner, row.lease_until = "crashed-process", utcnow() - timedelta(seconds=1)
        s.add(row)
    result = coach.turn(tid, "status")
    assert result.turn == 1
    assert thread_row(coach.engine, tid).lease_owner is None


def test_the_lease_is_released_when_a_turn_fails(sqlite_url: str) -> None:
    model = FlakyModel()
    model.fail_on = {1}
    with open_coach(sqlite_url, model=model) as coach:
        tid = coach.thread()
        assert coach.turn(tid, "status").error is not None
        assert thread_row(coach.engine, tid).lease_owner is None
        assert coach.turn(tid, "status").error is None


def test_two_threads_run_concurrently_on_one_sqlite_file(sqlite_url: str) -> None:
    turns = 5
    errors: list[BaseException] = []
    results: dict[str, list[int]] = {}
    with ExitStack() as stack:
        coaches = [stack.enter_context(open_coach(sqlite_url)) for _ in range(2)]
        tids = [c.thread() for c in coaches]
        barrier = threading.Barrier(2)

        def run(coach: Coach, tid: str) -> None:
            try:
                barrier.wait(timeout=10)
                results[tid] = [coach.turn(tid, m).turn for m in
                                [FIRST_MESSAGE] + [f"Worked: lesson {i}" for i in range(turns - 1)]]
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        workers = [threading.Thread(target=run, args=(c, t)) for c, t in zip(coaches, tids,
                                                                            strict=True)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=60)
        assert not any(w.is_alive() for w in workers)
        assert errors == []
        engine = coaches[0].engine
        for tid in tids:
            assert results[tid] == list(range(1, turns + 1))
            assert thread_row(engine, tid).turns == turns
            assert sorted({e.turn for e in coaches[0].transcript(tid)}) == list(
                range(1, turns + 1))
        # Each thread created its own project and it reached step 2.
        with session_scope(engine) as s:
            steps = [p.step for p in s.exec(select(Project)).all()]
        assert steps == ["build", "build"]


def test_one_coach_serves_two_threads_at_once_and_keeps_their_usage_apart(coach: Coach
                                                                          ) -> None:
    # A web server shares one Coach between requests: each turn must report its own calls.
    tids = [coach.thread(), coach.thread()]
    results: dict[str, list[Any]] = {tid: [] for tid in tids}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(tid: str) -> None:
        try:
            barrier.wait(timeout=10)
            for message in [FIRST_MESSAGE] + [f"Worked: lesson {i}" for i in range(5)]:
                results[tid].append(coach.turn(tid, message))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(tid,)) for tid in tids]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert errors == []
    with session_scope(coach.engine) as s:
        for tid in tids:
            assert [r.turn for r in results[tid]] == [1, 2, 3, 4, 5, 6]
            ledger = s.exec(select(LedgerEntry).where(LedgerEntry.thread_id == tid)).all()
            for key in ("input_tokens", "output_tokens"):
                assert sum(r.usage[key] for r in results[tid]) == sum(
                    getattr(row, key) for row in ledger)
            assert all(r.usage["input_tokens"] > 0 for r in results[tid])


# -- bounded state ------------------------------------------------------------------------------

def test_state_stays_bounded_over_many_turns(coach: Coach, sqlite_url: str) -> None:
    tid = coach.thread()
    coach.turn(tid, "Title: Handover Helper")
    for i in range(39):
        coach.turn(tid, f"Worked: lesson number {i}")
    assert thread_row(coach.engine, tid).turns == 40
    state = window(coach, tid)
    keep = coach.runtime(tid, None).window_turns
    starts = turn_starts(state["messages"])
    # The window folds in chunks: fewer than 2 * keep earlier turns, plus the latest one.
    assert keep < len(starts) <= 2 * keep
    assert state["messages"][starts[-1]]["content"][0]["text"] == "Worked: lesson number 38"
    assert 0 < len(state["summary"].splitlines()) <= 12
    # Pruning leaves one checkpoint (and only its writes) per thread.
    with coach.engine.connect() as conn:
        checkpoints = conn.execute(text("SELECT checkpoint_id FROM checkpoints "
                                        "WHERE thread_id = :t"), {"t": tid}).scalars().all()
        writes = conn.execute(text("SELECT DISTINCT checkpoint_id FROM writes "
                                   "WHERE thread_id = :t"), {"t": tid}).scalars().all()
    assert len(checkpoints) == 1
    assert set(writes) <= set(checkpoints)
    # The full history is still in the transcript.
    assert len([e for e in coach.transcript(tid) if e.seq == 0]) == 40


# -- resuming --------------------------------------------------------------------------------

def resume_in_a_new_process(url: str, open_one: Callable[[], Any]) -> None:
    with open_one() as first:
        tid = first.thread("resume-me")
        created = first.turn(tid, FIRST_MESSAGE)
        assert created.step == "build"
        first.turn(tid, "Worked: starting from real notes")
    with open_one() as second:
        assert [t.id for t in second.threads.all()] == [tid]
        result = second.turn(tid, "status")
        assert result.turn == 3
        assert result.project_id == created.project_id
        assert result.step == "build"
        assert "“Handover Helper” is at step 2/6" in result.reply
        learner = [m["content"][0]["text"] for m in window(second, tid)["messages"]
                   if m["role"] == "user" and m["content"][0]["type"] == "text"]
        assert learner == [FIRST_MESSAGE, "Worked: starting from real notes", "status"]
        # A plain answer goes to the build step's current question in the new process too.
        # (A repository URL is cloned and audited: serve one on 127.0.0.1.)
        second.allow_private_urls = True
        with tempfile.TemporaryDirectory() as tmp, \
                git_http({"/handover.git": make_repo(Path(tmp))}) as base:
            repo = second.turn(tid, f"{base}/handover.git")
        assert [c["name"] for c in repo.tool_calls] == ["update_project"]
        with session_scope(second.engine) as s:
            project = s.get(Project, created.project_id)
            assert project is not None and project.repo == f"{base}/handover.git"
        assert [e.turn for e in second.transcript(tid) if e.seq == 0] == [1, 2, 3, 4]


def test_a_new_process_resumes_the_thread_on_sqlite(sqlite_url: str) -> None:
    resume_in_a_new_process(sqlite_url, lambda: open_coach(sqlite_url))


def test_coach_open_resumes_the_thread_on_sqlite(sqlite_url: str) -> None:
    settings = Settings.load(db=sqlite_url, user="ann", model="offline")
    resume_in_a_new_process(sqlite_url, lambda: Coach.open(settings))


@pytest.mark.postgres
def test_a_new_process_resumes_the_thread_on_postgres(pg_url: str) -> None:
    settings = Settings.load(db=pg_url, user="ann", model="offline")
    resume_in_a_new_process(pg_url, lambda: Coach.open(settings))


@pytest.mark.postgres
def test_turns_go_on_after_the_servers_connections_are_dropped(pg_url: str) -> None:
    """What a PostgreSQL restart does to a running coach: every connection it holds is cut.
    The checkpointer's pool and the store's pre-ping replace them; no turn fails after."""
    import psycopg

    from tests.conftest import PG_URL

    settings = Settings.load(db=pg_url, user="ann", model="offline")
    with Coach.open(settings) as coach:
        tid = coach.thread()
        first = coach.turn(tid, FIRST_MESSAGE)
        assert first.error is None
        admin = PG_URL.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as conn:
            cut = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = 'coach-checkpoints' AND pid <> pg_backend_pid()"
            ).fetchone()
        assert cut is not None and cut[0] >= 1
        after = [coach.turn(tid, text) for text in ("status", "Worked: starting from real notes")]
        assert [r.error for r in after] == [None, None]
        assert [r.turn for r in after] == [2, 3]
        assert after[0].project_id == first.project_id
