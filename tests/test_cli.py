"""The `coach` command line, run as a real executable in subprocesses (SPEC "Command line")."""

from __future__ import annotations

import re
import shlex
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from agent.demo import local_app, make_repo, script
from tests.learner import (
    COACH,
    assert_turn_shape,
    coach_env,
    json_turns,
    learner_messages,
    lines_in,
    one_error_line,
    run_coach,
    run_together,
    start_coach,
)

pytestmark = pytest.mark.slow

STEPS = ["problem", "build", "deploy", "harden", "postmortem", "repeat"]


@pytest.fixture
def app_url() -> Iterator[str]:
    with local_app() as url:
        yield url


@pytest.fixture
def repo(tmp_path) -> Path:
    return make_repo(tmp_path)


@pytest.fixture
def env(coach_home) -> dict[str, str]:
    return coach_env(coach_home, private_urls=True)


def projects(*args: str, env: dict[str, str]) -> list[dict]:
    done = run_coach(*args, "projects", "list", "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json_turns(done.stdout)[0]["projects"]


def query(db: Path, sql: str, *params: object) -> list[tuple]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, params).fetchall()


def transcript_turns(db: Path, thread_id: str) -> int:
    return query(db, "SELECT COUNT(DISTINCT turn) FROM transcript WHERE thread_id=?",
                 thread_id)[0][0]


# -- 1. end to end ---------------------------------------------------------------------


def test_chat_json_takes_a_learner_through_all_six_steps(env, repo, app_url):
    messages = learner_messages(repo, app_url)
    assert any("What worked" in m and "Tradeoffs" in m for m in messages)  # one-line post-mortem

    done = run_coach("--user", "alice", "chat", "--json", env=env, stdin=lines_in(messages))

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    turns = json_turns(done.stdout)
    assert len(turns) == len(messages)
    for turn in turns:
        assert_turn_shape(turn)
        assert turn["model"] == "offline"
        assert turn["cost_usd"] == 0
        assert turn["usage"]["input_tokens"] > 0 and turn["usage"]["output_tokens"] > 0
    assert [t["turn"] for t in turns] == list(range(1, len(messages) + 1))
    assert len({t["thread_id"] for t in turns}) == 1
    assert len({t["trace_id"] for t in turns}) == len(turns)  # one trace per turn
    # Project 1 goes through the six steps in order, one gate at a time; then project 2.
    names = [[c["name"] for c in t["tool_calls"]] for t in turns]
    assert "create_project" in names[0]
    [switch] = [i for i, n in enumerate(names) if "start_next_project" in n]
    assert [t["project_id"] for t in turns] == [1] * switch + [2] * (len(turns) - switch)
    journey = ["problem"] + [t["step"] for t in turns[:switch]]
    assert [s for i, s in enumerate(journey) if i == 0 or s != journey[i - 1]] == STEPS
    for i, turn in enumerate(turns[:switch]):
        if turn["step"] != journey[i]:
            assert "advance_step" in names[i], turn
    assert {t["step"] for t in turns[switch:]} == {"problem"}
    assert all(c["ok"] for t in turns for c in t["tool_calls"]), names

    first, second = projects("--user", "alice", env=env)
    assert (first["id"], first["step"]) == (1, "done")
    assert (second["id"], second["step"]) == (2, "problem")
    assert first["difficulty"] < second["difficulty"]


# -- 2. resume across processes --------------------------------------------------------


def test_a_named_thread_resumes_in_a_later_process(env):
    first = run_coach("chat", "--json", "--thread", "mythread", env=env,
                      stdin="Title: Resume test\n")
    assert first.returncode == 0, first.stderr
    [turn1] = json_turns(first.stdout)
    assert (turn1["thread_id"], turn1["turn"], turn1["step"]) == ("mythread", 1, "problem")

    second = run_coach("chat", "--json", "--thread", "mythread", env=env, stdin="status\n")
    assert second.returncode == 0, second.stderr
    [turn2] = json_turns(second.stdout)
    assert_turn_shape(turn2)
    assert (turn2["thread_id"], turn2["turn"]) == ("mythread", 2)
    assert "Resume test" in turn2["reply"]
    assert turn2["project_id"] == turn1["project_id"]


def test_without_thread_a_new_thread_is_created_and_its_id_printed(env):
    as_json, plain = run_together(("--user", "someone", "chat", "--json"), ("chat",), env=env,
                                  stdin="Title: Plain mode\n")
    [first] = json_turns(as_json.stdout)
    assert first["turn"] == 1

    assert plain.returncode == 0, plain.stderr
    header = plain.stdout.splitlines()[0]  # the resume hint is one unbroken line
    m = re.search(r"thread (\S+) .*resume with: coach chat --thread (\S+)$", header)
    assert m, plain.stdout
    assert m.group(1) == m.group(2) != first["thread_id"]
    assert "Plain mode" in plain.stdout

    resumed = run_coach("chat", "--json", "--thread", m.group(1), env=env, stdin="status\n")
    [turn] = json_turns(resumed.stdout)
    assert turn["turn"] == 2 and "Plain mode" in turn["reply"]


# -- 3. projects list / show -----------------------------------------------------------


def test_projects_list_and_show_for_their_owner_only(env, repo, app_url):
    two_steps = learner_messages(repo, app_url)[:2]
    chat = run_coach("--user", "alice", "chat", "--json", "--thread", "alices", env=env,
                     stdin=lines_in(two_steps))
    assert chat.returncode == 0, chat.stderr

    listed, shown, missing, bobs_list, bobs_show, bobs_chat = run_together(
        ("--user", "alice", "projects", "list", "--json"),
        ("--user", "alice", "projects", "show", "1", "--json"),
        ("--user", "alice", "projects", "show", "99"),
        ("--user", "bob", "projects", "list", "--json"),
        ("--user", "bob", "projects", "show", "1", "--json"),
        ("--user", "bob", "chat", "--json", "--thread", "alices"),
        env=env, stdin="status\n")

    assert listed.returncode == 0, listed.stderr
    [item] = json_turns(listed.stdout)[0]["projects"]
    assert {"id", "title", "step", "difficulty"} <= set(item)
    assert (item["id"], item["title"], item["step"]) == (1, "Handover Helper", "deploy")
    assert item["difficulty"] == 2  # structured_output, evals_ci

    assert shown.returncode == 0, shown.stderr
    view = json_turns(shown.stdout)[0]
    assert view["id"] == 1 and view["step"] == "deploy"
    assert view["evidence"]["audit"]["is_git"] is True
    assert view["evidence"]["audit"]["commits"] == 1
    assert view["gate"]["step"] == "deploy" and view["gate"]["passed"] is False
    assert view["gate"]["missing"], view["gate"]

    assert missing.returncode == 1 and missing.stdout == ""
    assert "99" in one_error_line(missing.stderr)

    # Another learner sees none of it: not the list, not the project, not the thread.
    assert bobs_list.returncode == 0, bobs_list.stderr
    assert json_turns(bobs_list.stdout)[0]["projects"] == []
    assert bobs_show.returncode == 1 and bobs_show.stdout == ""
    one_error_line(bobs_show.stderr)
    assert bobs_chat.returncode == 1 and bobs_chat.stdout == ""
    assert "another learner" in one_error_line(bobs_chat.stderr)


# -- 4. exit codes and errors ----------------------------------------------------------


def test_usage_errors_exit_2(env):
    usage_errors = [("bogus",), ("--nope", "projects", "list"),
                    ("projects", "show", "not-a-number")]
    for args, done in zip(usage_errors, run_together(*usage_errors, env=env), strict=True):
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        assert done.stdout == ""


def test_failures_are_one_line_on_stderr_and_a_traceback_only_when_debugging(env, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    db = str(blocker / "sub" / "coach.db")  # its parent is a regular file

    plain, debug, bad_thread = run_together(
        ("--db", db, "projects", "list"),
        ("--debug", "--db", db, "projects", "list"),
        ("chat", "--json", "--thread", "no spaces/please"),
        env=env, stdin="status\n")
    assert plain.returncode == 1
    assert str(blocker) in one_error_line(plain.stderr)

    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith("coach: error:")

    assert bad_thread.returncode == 1 and bad_thread.stdout == ""
    assert "bad thread id" in one_error_line(bad_thread.stderr)

    env_debug = run_coach("--db", db, "projects", "list", env={**env, "COACH_DEBUG": "1"})
    assert env_debug.returncode == 1 and "Traceback" in env_debug.stderr


def test_an_oversized_line_is_refused_and_the_next_line_still_answered(env, coach_home):
    big = "x" * 40_000
    done = run_coach("chat", "--json", "--thread", "big", env=env,
                     stdin=lines_in([big, "Title: After the big one"]))

    assert done.returncode == 1
    assert "too long" in one_error_line(done.stderr)
    [turn] = json_turns(done.stdout)
    assert turn["turn"] == 1  # the big line took no turn number
    assert "After the big one" in turn["reply"]
    db = Path(coach_home) / "coach.db"
    assert transcript_turns(db, "big") == 1
    assert query(db, "SELECT turns FROM threads WHERE id='big'") == [(1,)]
    [(longest,)] = query(db, "SELECT MAX(LENGTH(content)) FROM transcript")
    assert longest < 10_000  # the big line is nowhere in the transcript


# -- 5. coach demo ---------------------------------------------------------------------


def show_hint(demo_stdout: str) -> list[str]:
    """The `coach ... projects show 1` command the demo suggests, as argv without `coach`,
    after checking that its program runs from here as printed (no `coach: command not found`:
    the test's `coach` is not on PATH, so the demo must print a path to it)."""
    hints = [line.strip() for line in demo_stdout.splitlines()
             if "projects show 1" in line]
    assert len(hints) == 1, demo_stdout
    program, *args = shlex.split(hints[0])
    found = shutil.which(program)
    assert found and Path(found).resolve() == COACH.resolve(), hints[0]
    return args


def test_demo_runs_all_six_steps_and_can_run_again(coach_home, tmp_path):
    env = coach_env(coach_home)  # no COACH_ALLOW_PRIVATE_URLS: the demo allows its own app
    headings = [heading for heading, _ in script("repo", "http://app/")]
    demo_db = Path(coach_home) / "demo.db"
    named_db = tmp_path / "named.db"

    first, named = run_together(("demo",), ("--db", str(named_db), "demo"), env=env)
    again = run_coach("demo", env=env)
    for done in (first, named, again):
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        for heading in headings:
            assert heading in done.stdout
        assert "One project went through all six steps and is done" in done.stdout
    assert demo_db.exists() and named_db.exists()

    # "Where to look next" names commands that work as printed, --db included.
    listing, follow, follow_named = run_together(
        ("--db", str(demo_db), "--user", "demo", "projects", "list", "--json"),
        (*show_hint(again.stdout), "--json"), (*show_hint(named.stdout), "--json"), env=env)

    assert listing.returncode == 0, listing.stderr
    listed = json_turns(listing.stdout)[0]["projects"]
    assert [p["id"] for p in listed] == [1, 2]  # the second run started afresh
    assert [p["step"] for p in listed] == ["done", "problem"]
    assert listed[0]["difficulty"] < listed[1]["difficulty"]
    assert not (Path(coach_home) / "coach.db").exists()  # the learner's own store untouched

    for shown in (follow, follow_named):
        assert shown.returncode == 0, shown.stderr
        assert json_turns(shown.stdout)[0]["step"] == "done"


# -- 6. PostgreSQL ---------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_first_two_steps_resumed_across_processes(env, pg_url, repo, app_url):
    problem, build = learner_messages(repo, app_url)[:2]
    chat = ("--db", pg_url, "--user", "alice", "chat", "--json", "--thread", "pgthread")

    first = run_coach(*chat, env=env, stdin=lines_in([problem]))
    assert first.returncode == 0, first.stderr
    second = run_coach(*chat, env=env, stdin=lines_in([build, "status"]))
    assert second.returncode == 0, second.stderr

    turns = json_turns(first.stdout) + json_turns(second.stdout)
    for turn in turns:
        assert_turn_shape(turn)
        assert turn["thread_id"] == "pgthread"
        assert turn["model"] == "offline" and turn["cost_usd"] == 0
    assert [t["turn"] for t in turns] == [1, 2, 3]  # the second process resumed the thread
    assert [t["step"] for t in turns] == ["build", "deploy", "deploy"]
    assert "Handover Helper" in turns[2]["reply"]

    [item] = projects("--db", pg_url, "--user", "alice", env=env)
    assert (item["title"], item["step"]) == ("Handover Helper", "deploy")
    assert not (Path(env["COACH_HOME"]) / "coach.db").exists()  # nothing went to SQLite


# -- 7. two processes on one thread ----------------------------------------------------


def test_two_processes_on_one_thread_never_duplicate_a_turn(env, coach_home):
    db = Path(coach_home) / "coach.db"
    setup = run_coach("chat", "--json", "--thread", "same", env=env, stdin="Title: Busy test\n")
    assert setup.returncode == 0, setup.stderr
    sent = {who: [f"Worked: lesson {n} from process {who}" for n in range(1, 6)]
            for who in "AB"}

    procs = {who: start_coach("chat", "--json", "--thread", "same", env=env) for who in "AB"}
    for who, proc in procs.items():  # both have all their input before either is read
        assert proc.stdin is not None
        proc.stdin.write(lines_in(sent[who]))
        proc.stdin.flush()
    outputs = {}
    for who, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)  # closes stdin: end of input
        outputs[who] = (proc.returncode, stdout, stderr)

    answered: list[str] = []
    numbers: list[int] = []
    for who, (code, stdout, stderr) in outputs.items():
        turns = json_turns(stdout)
        # Lines are answered in order; a refusal stops that process with one clear line.
        answered += sent[who][:len(turns)]
        numbers += [t["turn"] for t in turns]
        for turn in turns:
            assert turn["thread_id"] == "same" and "worked" in turn["reply"].lower()
        if len(turns) == len(sent[who]):
            assert (code, stderr) == (0, ""), stderr
        else:
            assert code == 1
            assert "busy" in one_error_line(stderr)

    assert len(numbers) == len(set(numbers)), numbers  # no turn number given out twice
    assert sorted(numbers) == list(range(2, 2 + len(numbers)))
    assert transcript_turns(db, "same") == 1 + len(answered)
    learner_texts = query(db, "SELECT json_extract(content, '$[0].text') FROM transcript"
                              " WHERE thread_id='same' AND seq=0 AND turn > 1")
    assert sorted(text for (text,) in learner_texts) == sorted(answered)
    lessons = query(db, "SELECT text FROM lessons")
    assert sorted(text for (text,) in lessons) == sorted(
        m.removeprefix("Worked: ") for m in answered)  # each recorded once
    assert query(db, "SELECT lease_owner FROM threads WHERE id='same'") == [(None,)]
