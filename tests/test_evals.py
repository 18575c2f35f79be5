"""The eval runner and its regression gate, tested against real and broken coaches."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from agent.offline import OfflineCoach
from evals.dataset import Case, load_cases
from evals.runner import baseline_from, load_baseline, regressions, run_cases
from tests.doubles import ExplodingCoach
from tools import evidence
from tools.deployment import DeploymentCheck, is_streamlit_cloud_host

COACH = str(Path(sys.executable).with_name("coach"))


def test_dataset_has_the_coverage_the_gate_needs():
    cases = load_cases()
    tags = {t for c in cases for t in c.tags}
    assert len(cases) >= 30
    for needed in ("happy", "streamlit", "ssrf", "injection", "budget", "input", "resume",
                   "contradictions", "postmortem"):
        assert needed in tags, needed
    # Every gate is refused by at least one case.
    refused = {s for c in cases for s in c.expect.gates_refused} | {
        c.start_at or "problem" for c in cases if "gates" in c.tags}
    assert {"problem", "build", "deploy", "harden", "postmortem", "repeat"} <= refused


def test_the_committed_baseline_covers_every_case_and_all_pass():
    baseline = load_baseline()
    ids = {c.id for c in load_cases()}
    assert ids == set(baseline["cases"])
    assert all(entry["passed"] for entry in baseline["cases"].values())


def _run(pattern: str) -> dict:
    return run_cases(load_cases(pattern=pattern), OfflineCoach, workers=2)


def test_a_broken_deploy_gate_is_caught_as_a_regression(monkeypatch):
    baseline = load_baseline()
    healthy = _run("streamlit-cloud-url")
    assert healthy["passed"] == 1 and not regressions(healthy, baseline)

    # The deliberately broken coach: its deployment check lets Streamlit Cloud through.
    real = evidence.check_deployment_url

    def lenient(url, **kw):
        if is_streamlit_cloud_host(urlparse(url).hostname or ""):
            return DeploymentCheck(ok=True, url=url, status_code=200, final_url=url,
                                   latency_ms=1, reason="HTTP 200", streamlit=True,
                                   streamlit_cloud=True)
        return real(url, **kw)

    monkeypatch.setattr(evidence, "check_deployment_url", lenient)
    broken = _run("streamlit-cloud-url")
    found = regressions(broken, baseline)
    assert broken["passed"] == 0
    assert len(found) == 1 and found[0].startswith("streamlit-cloud-url: passed in the baseline")
    assert "steps" in found[0]


def test_a_lower_score_than_the_threshold_is_a_regression():
    report = {"cases": [{"id": "x", "passed": True, "score": 0.5, "graders": []}]}
    assert regressions(report, {"cases": {"x": {"passed": True, "min_score": 0.9}}}) == [
        "x: score 0.50 below 0.90"]
    # New cases and cases that already failed in the baseline are not regressions.
    assert regressions(report, {"cases": {}}) == []
    failing = {"cases": [{"id": "x", "passed": False, "score": 0.0, "graders": []}]}
    assert regressions(failing, {"cases": {"x": {"passed": False, "min_score": 0.0}}}) == []


def test_parallel_cases_do_not_share_state():
    # The same case many times at once: each run must see only its own project.
    case = load_cases(pattern="contradictory-answers")[0]
    report = run_cases([case], OfflineCoach, repeat=6, workers=4)
    row = report["cases"][0]
    assert row["pass_rate"] == 1.0
    assert report["repeat"] == 6


def test_an_exception_in_a_case_fails_that_case_only():
    good = load_cases(pattern="status-help-portfolio")[0]
    bad = Case(id="bad", persona="p", messages=["x"], start_at=None,
               expect=good.expect.model_copy(update={"projects": 0}))

    report = run_cases([good, bad], ExplodingCoach, workers=2)
    by_id = {r["id"]: r for r in report["cases"]}
    assert by_id["status-help-portfolio"]["passed"]
    assert not by_id["bad"]["passed"] and "boom" in by_id["bad"]["errors"][0]


@pytest.mark.slow
def test_cli_check_update_baseline_round_trip(tmp_path, coach_home):
    baseline = tmp_path / "baseline.json"
    env = {"COACH_HOME": coach_home, "PATH": "/usr/bin:/bin"}
    args = [COACH, "eval", "--case", "contradictory-answers", "--baseline", str(baseline)]
    made = subprocess.run([*args, "--update-baseline", "--json"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert made.returncode == 0, made.stderr
    written = json.loads(baseline.read_text())
    assert written == baseline_from(json.loads(made.stdout))
    assert written["cases"]["contradictory-answers"] == {"passed": True, "min_score": 1.0}

    checked = subprocess.run([*args, "--check"], capture_output=True, text=True, env=env,
                             timeout=120)
    assert checked.returncode == 0, checked.stderr
    assert (Path(coach_home) / "eval-reports" / "latest.md").exists()

    # A baseline that demands more than the coach does makes --check fail, naming the case.
    written["cases"]["contradictory-answers"]["min_score"] = 1.5
    baseline.write_text(json.dumps(written))
    failed = subprocess.run([*args, "--check"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert failed.returncode == 1
    assert "regression: contradictory-answers: score 1.00 below 1.50" in failed.stderr


@pytest.mark.slow
def test_a_claude_eval_spends_into_the_learners_ledger_under_purpose_eval(tmp_path, coach_home):
    from evals.messages_api import MessagesAPI, text_reply

    db = tmp_path / "coach.db"
    with MessagesAPI(default=text_reply("Tell me more about the problem.")) as api:
        env = {"COACH_HOME": coach_home, "PATH": "/usr/bin:/bin", "ANTHROPIC_API_KEY": "test-key",
               "ANTHROPIC_BASE_URL": api.base_url}
        run = subprocess.run([COACH, "--db", str(db), "--user", "ada", "eval", "--model",
                              "claude-haiku-4-5", "--case", "status-help-portfolio", "--json"],
                             capture_output=True, text=True, env=env, timeout=120)
        calls = len(api.message_requests)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["model"] == "claude-haiku-4-5" and report["cost_usd"] > 0
    import sqlite3

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT purpose, model, cost_usd FROM ledger").fetchall()
    assert len(rows) == calls == 3  # one model call per learner message
    assert {r[0] for r in rows} == {"eval"} and {r[1] for r in rows} == {"claude-haiku-4-5"}
    assert sum(float(r[2]) for r in rows) == pytest.approx(report["cost_usd"])


@pytest.mark.slow
def test_a_paid_eval_does_not_start_without_budget(tmp_path, coach_home):
    env = {"COACH_HOME": coach_home, "PATH": "/usr/bin:/bin", "ANTHROPIC_API_KEY": "test-key",
           "ANTHROPIC_BASE_URL": "http://127.0.0.1:9", "COACH_BUDGET_USD": "0"}
    run = subprocess.run([COACH, "eval", "--model", "claude-haiku-4-5", "--case", "blank*"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 1
    assert "budget" in run.stderr and "COACH_BUDGET_USD" in run.stderr
