"""What a new user sees at 80 columns: help, a project, costs, users (issue 15, items 10-11)."""

from __future__ import annotations

import json
import re

import pytest

from agent.demo import local_app, make_repo
from tests.learner import coach_env, json_turns, lines_in, run_coach, run_together

pytestmark = pytest.mark.slow


def test_help_has_no_type_placeholders_for_flags_and_no_broken_sentences(coach_home):
    env = coach_env(coach_home)
    top, evaluate, serve = run_together(("--help",), ("eval", "--help"), ("serve", "--help"),
                                        env=env)
    for shown in (top, evaluate, serve):
        assert shown.returncode == 0, shown.stderr
        assert "<bool>" not in shown.stdout
        assert all(len(line) <= 80 for line in shown.stdout.splitlines())
    # The command list shows each command's first sentence, whole.
    rows = {m.group(1): m.group(2).strip() for m in
            re.finditer(r"^│ (\w+) +(.*?)│$", top.stdout, re.M)}
    assert rows["chat"] == "Talk to the coach."
    assert rows["serve"] == "Serve the web app and the JSON API."
    assert "--check" in evaluate.stdout and "--debug" in top.stdout
    # A docstring's own line break no longer breaks the sentence ("With a / Claude model").
    assert "With a\n" not in evaluate.stdout.replace("│", "").replace(" \n", "\n")


@pytest.fixture
def worked(coach_home, tmp_path):
    """A learner who took a project to step 4 with the offline coach."""
    env = coach_env(coach_home, private_urls=True)
    repo = make_repo(tmp_path)
    db = str(tmp_path / "t.db")
    with local_app() as url:
        messages = [
            "Title: Handover Helper Problem: Night-shift nurses hand over ten to twenty "
            "patients in a few minutes from handwritten notes, and abnormal vitals get lost "
            "in the noise. Audience: ward nurses Why me: six years of night shifts "
            "Success: flags 95% of abnormal vitals",
            f"Repo: {repo} MVP: summarise; flag vitals Usage: ran it on 12 notes",
            f"URL: {url}"]
        done = run_coach("--db", db, "chat", "--json", stdin=lines_in(messages), env=env)
    assert done.returncode == 0, done.stderr
    return db, env


def test_a_project_shows_its_evidence_as_lines_not_json(worked):
    db, env = worked
    shown = run_coach("--db", db, "projects", "show", "1", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "{" not in shown.stdout and '"' not in shown.stdout
    assert "evidence audit (verified):" in shown.stdout
    assert "evidence deployment (verified):" in shown.stdout
    assert "  status code: 200" in shown.stdout
    # Nothing is cut: every field of the stored audit has its line.
    raw = json_turns(run_coach("--db", db, "projects", "show", "1", "--json",
                               env=env).stdout)[0]
    for key in raw["evidence"]["audit"]:
        if key not in ("ok", "verified", "checked_at") and raw["evidence"]["audit"][key]:
            assert f"  {key.replace('_', ' ')}: " in shown.stdout, key


def test_costs_fit_80_columns_and_call_offline_tokens_estimates(worked):
    db, env = worked
    by_day, as_json = run_together(("--db", db, "costs", "--by", "day"),
                                   ("--db", db, "costs", "--json"), env=env)
    assert by_day.returncode == 0, by_day.stderr
    lines = by_day.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), by_day.stdout
    [row] = [line for line in lines if re.match(r"^\d{4}-\d\d-\d\d ", line)]  # one line
    assert "~" in row and row.split()[-2:] == ["$0", "$0"]
    assert "estimated" in by_day.stdout
    report = json.loads(as_json.stdout)
    [offline] = report["rows"]
    # The offline coach's guesses are not reported as real usage.
    assert offline["input_tokens"] == offline["output_tokens"] == 0
    assert offline["estimated_calls"] == offline["calls"] > 0
    assert offline["estimated_input_tokens"] > 0 and report["estimated_calls"] == offline["calls"]
