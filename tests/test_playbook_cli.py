"""`coach playbook` through the real executable."""

from __future__ import annotations

import json

import pytest

from tests.learner import coach_env, one_error_line, run_coach, run_together

pytestmark = pytest.mark.slow


@pytest.fixture
def env(coach_home) -> dict[str, str]:
    return coach_env(coach_home)


def test_search_list_read_and_json(env) -> None:
    search, listed, step_json, read = run_together(
        ("playbook", "whats the differnce between evals and unit tests?", "--json"),
        ("playbook",),
        ("playbook", "--step", "deploy", "--json"),
        ("playbook", "deploy-streamlit-demo"),
        env=env)
    for done in (search, listed, step_json, read):
        assert done.returncode == 0, done.stderr
    found = json.loads(search.stdout)
    assert found["entries"][0]["id"] == "evals-vs-unit-tests"
    assert {"id", "title", "steps", "capabilities", "try_this", "body", "score"} <= \
        set(found["entries"][0])
    assert "The playbook: " in listed.stdout and "four-pillars" in listed.stdout
    deploy = json.loads(step_json.stdout)["entries"]
    assert len(deploy) >= 5 and all("deploy" in e["steps"] for e in deploy)
    assert "What a Streamlit demo does not show" in read.stdout
    assert "Try this:" in read.stdout


def test_a_search_with_no_match_says_so_and_an_unknown_step_is_a_usage_error(env) -> None:
    nothing, bad_step = run_together(("playbook", "zzzz qqqq"),
                                     ("playbook", "--step", "ship"), env=env)
    assert nothing.returncode == 0 and "Nothing in the playbook matches" in nothing.stdout
    assert bad_step.returncode == 2 and "'ship' is not a step" in bad_step.stderr


def test_a_broken_entry_is_one_clear_error_line(env, tmp_path) -> None:
    # The executable reads the installed package; a broken copy is loaded via PYTHONPATH.
    import shutil

    from playbook.entries import ENTRIES_DIR
    fake = tmp_path / "site" / "playbook"
    shutil.copytree(ENTRIES_DIR.parent, fake, ignore=shutil.ignore_patterns("__pycache__"))
    (fake / "entries" / "zz-broken.md").write_text("---\nid: zz-broken\n---\nshort\n")
    done = run_coach("playbook", env={**env, "PYTHONPATH": str(tmp_path / "site")})
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert "zz-broken.md:" in line and "title: Field required" in line
