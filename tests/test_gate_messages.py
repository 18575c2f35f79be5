"""What each gate says, word for word: the step, the verdict, every missing requirement
with its message, and the warnings, as the learner and the model read them (pinned after
mutation testing showed messages, step names and keys could change unnoticed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memory.models import PostmortemVersion
from tests.test_gates import evidence, make_repo, project
from tools.gates import ProjectRecord, check_gate


def pm(report: dict[str, Any], version: int = 1, source: str = "submission") -> PostmortemVersion:
    return PostmortemVersion(
        project_id=1, version=version, source=source, text="x", words=1, report=report
    )


def scenarios() -> dict[str, ProjectRecord]:
    return {
        "problem_empty": ProjectRecord(
            project(
                "problem",
                title="",
                problem="",
                audience="",
                personal_context="",
                success_criteria="",
            )
        ),
        "problem_no_number": ProjectRecord(
            project("problem", success_criteria="answers most questions")
        ),
        "build_empty": ProjectRecord(project("build", repo="", mvp_scope=[], usage_note="")),
        "build_four": ProjectRecord(project("build", mvp_scope=["a", "b", "c", "d"])),
        "deploy_none": ProjectRecord(project("deploy")),
        "deploy_failed": ProjectRecord(
            project("deploy"),
            [evidence("deployment", {"url": "https://x.example/", "reason": "HTTP 503"}, ok=False)],
        ),
        "deploy_failed_no_reason": ProjectRecord(
            project("deploy"), [evidence("deployment", {"url": "https://x.example/"}, ok=False)]
        ),
        "deploy_ok": ProjectRecord(
            project("deploy"),
            [
                evidence(
                    "deployment",
                    {"url": "https://x.example/", "warnings": ["looks like Streamlit"]},
                )
            ],
        ),
        "harden_none": ProjectRecord(project("harden")),
        "harden_partial": ProjectRecord(
            project("harden"),
            [
                evidence("evals", {"grader": ""}),
                evidence("ci_gate", {}),
                evidence("observability", {"tool": "Langfuse"}),
                evidence("cost_tracking", {"per": "day"}),
            ],
        ),
        "harden_few": ProjectRecord(
            project("harden"),
            [
                evidence("evals", {"cases": 5, "pass_rate": 0.9, "grader": "exact"}),
                evidence("ci_gate", {"config_path": ".github/workflows/ci.yml"}),
                evidence("observability", {"tool": "Langfuse", "link": "http://x"}),
                evidence("cost_tracking", {"cost_usd": 0}),
            ],
        ),
        "postmortem_none": ProjectRecord(
            project("postmortem"), postmortems=[pm({}, source="draft")]
        ),
        "postmortem_failed": ProjectRecord(
            project("postmortem"),
            postmortems=[
                pm({"failed": ["sections on tradeoffs"]}, 1),
                pm({"failed": ["a length of 1200–2000 words (it has 900)"]}, 2),
            ],
        ),
        "postmortem_rechecked": ProjectRecord(
            project("postmortem"), postmortems=[pm({"failed": ["x"]})], postmortem_recheck=["y"]
        ),
        "postmortem_passed": ProjectRecord(
            project("postmortem"),
            postmortems=[pm({"passed": ["length"]})],
            postmortem_recheck=["stale"],
        ),
        "repeat_none": ProjectRecord(project("repeat", difficulty=1)),
        "repeat_equal": ProjectRecord(
            project("repeat", difficulty=1), successors=[project("problem", id=2, difficulty=1)]
        ),
        "repeat_harder": ProjectRecord(
            project("repeat", difficulty=1), successors=[project("problem", id=2, difficulty=2)]
        ),
        "done": ProjectRecord(project("done")),
    }


GOLDEN: dict[str, tuple[str, bool, list[tuple[str, str]], list[str]]] = {
    "problem_empty": (
        "problem",
        False,
        [
            ("title", "a title"),
            ("problem", "a problem statement of at least 20 words (it has 0)"),
            ("audience", "who has the problem (the audience)"),
            ("personal_context", "your personal context: why you"),
            ("success_criteria", "a measurable success criterion"),
        ],
        [],
    ),
    "problem_no_number": (
        "problem",
        False,
        [
            (
                "success_criteria",
                "a success criterion with a number in it, so you can tell whether you met it",
            )
        ],
        [],
    ),
    "build_empty": (
        "build",
        False,
        [
            ("repo", "a repository (a URL or a local git checkout)"),
            ("mvp_scope", "the MVP scope: 1 to 3 core features"),
            ("usage_note", "a usage note from a real run of the tool"),
        ],
        [],
    ),
    "build_four": (
        "build",
        False,
        [("mvp_scope", "an MVP scope of at most 3 features (it has 4)")],
        [],
    ),
    "deploy_none": (
        "deploy",
        False,
        [("deployment", "a deployment URL the coach has fetched successfully")],
        [],
    ),
    "deploy_failed": (
        "deploy",
        False,
        [("deployment", "a deployment that passes the check (https://x.example/: HTTP 503)")],
        [],
    ),
    "deploy_failed_no_reason": (
        "deploy",
        False,
        [
            (
                "deployment",
                "a deployment that passes the check (https://x.example/: the last check failed)",
            )
        ],
        [],
    ),
    "deploy_ok": ("deploy", True, [], ["looks like Streamlit"]),
    "harden_none": (
        "harden",
        False,
        [
            ("evals", "evals: the eval-set size, grading method and pass rate"),
            ("ci_gate", "a CI gate that blocks regressions"),
            ("observability", "the tracing tool you use"),
            ("cost_tracking", "a recorded cost figure (per request, per day or per month)"),
        ],
        [],
    ),
    "harden_partial": (
        "harden",
        False,
        [
            ("evals", "an eval set of at least 10 cases (recorded: none)"),
            ("evals", "the latest eval pass rate"),
            ("evals", "how the evals are graded"),
            ("ci_gate", "a CI gate that blocks regressions"),
            ("observability", "a link to a trace or dashboard"),
            ("cost_tracking", "a recorded cost figure (per request, per day or per month)"),
        ],
        [],
    ),
    "harden_few": (
        "harden",
        False,
        [("evals", "an eval set of at least 10 cases (recorded: 5)")],
        [],
    ),
    "postmortem_none": (
        "postmortem",
        False,
        [("postmortem", "a post-mortem of 1200–2000 words")],
        [],
    ),
    "postmortem_failed": (
        "postmortem",
        False,
        [("postmortem", "a length of 1200–2000 words (it has 900)")],
        [],
    ),
    "postmortem_rechecked": ("postmortem", False, [("postmortem", "y")], []),
    "postmortem_passed": ("postmortem", True, [], []),
    "repeat_none": (
        "repeat",
        False,
        [
            (
                "next_project",
                "a next project with difficulty above 1 (declare more capabilities than this one)",
            )
        ],
        [],
    ),
    "repeat_equal": (
        "repeat",
        False,
        [
            (
                "next_project",
                "a next project with difficulty above 1 (declare more capabilities than this one)",
            )
        ],
        [],
    ),
    "repeat_harder": ("repeat", True, [], []),
    "done": ("done", True, [], []),
}


@pytest.mark.parametrize("name", list(GOLDEN))
def test_each_gate_answers_exactly_this(name: str) -> None:
    step, passed, missing, warnings = GOLDEN[name]
    assert check_gate(scenarios()[name]).as_dict() == {
        "step": step,
        "passed": passed,
        "missing": [{"field": f, "message": m} for f, m in missing],
        "warnings": warnings,
    }


def test_the_latest_evidence_wins_and_a_saved_row_beats_an_unsaved_one_at_the_same_time() -> None:
    for order in ([None, 1], [1, None], [1, 2], [2, 1]):
        rows = [evidence("evals", {"cases": i or 0}, id=i) for i in order]
        latest = ProjectRecord(project("harden"), rows).latest("evals")
        assert latest is not None and latest.id == max(i or 0 for i in order), order


def test_a_commit_count_is_reused_within_its_ttl_and_asked_again_after(tmp_path: Path) -> None:
    import time as clock

    from tools import gates

    plain = str(tmp_path)  # not a git checkout: asking git again gives None
    gates._COMMITS[plain] = (clock.monotonic() - gates.COMMITS_TTL_S + 5, 7)
    assert gates.recent_commit_count(plain) == 7
    gates._COMMITS[plain] = (clock.monotonic() - gates.COMMITS_TTL_S - 1, 7)
    assert gates.recent_commit_count(plain) is None
    repo = make_repo(tmp_path / "r", commits=2)
    assert gates.recent_commit_count(str(repo)) == 2
    assert gates._COMMITS[str(repo)][1] == 2
    gates._COMMITS.clear()


def test_section_names_are_found_in_any_case_and_missing_ones_named() -> None:
    from tools.gates import missing_sections

    assert missing_sections("WHAT WORKED: a. What Didn't: b. TRADE-OFFS: c.") == []
    assert missing_sections("What worked: a. Tradeoffs: c.") == ["what didn't"]
    assert missing_sections("nothing here") == ["what worked", "what didn't", "tradeoffs"]


def test_an_http_repository_url_and_a_ci_provider_alone_are_accepted() -> None:
    assert check_gate(ProjectRecord(project("build", repo="http://git.example.com/ada/t"))).passed
    rec = ProjectRecord(project("harden"), [
        evidence("evals", {"cases": 12, "pass_rate": 0.9, "grader": "exact"}),
        evidence("ci_gate", {"provider": "GitHub Actions"}),
        evidence("observability", {"tool": "Langfuse", "link": "https://x.example/t/1"}),
        evidence("cost_tracking", {"cost_usd": 0.01})])
    assert check_gate(rec).passed
