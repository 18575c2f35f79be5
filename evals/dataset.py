"""Eval cases: learner personas, what they send, and what must come of it.

Cases live in `evals/cases/*.yaml`, each file a list of cases. Messages may use
placeholders filled per run: `{url}` (a local app), `{repo}` (a local git repo),
`{app}` (the app's base, for paths like `{app}streamlit`), `{big}` (40 KB of text).
`start_at` first takes the demo learner's project to that step. A message `RESUME`
closes the session and opens a new one on the same thread, as a learner returning days
later would. `{git_url}` is the repository served over git's smart HTTP on 127.0.0.1;
`FIX_REPO` and `IMPORT_TRACES` act on the learner's repository and app between messages
(evals/repo_actions.py).
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

CASES_DIR = Path(__file__).with_name("cases")
BASELINE = Path(__file__).with_name("baseline.json")


class Expect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: list[str] | None = None            # each project's final step, in creation order
    projects: int | None = None
    tools_called: list[str] = Field(default_factory=list)
    tools_not_called: list[str] = Field(default_factory=list)
    tool_inputs: list[dict[str, Any]] = Field(default_factory=list)  # {name, input: subset}
    last_turn_tools: list[str] | None = None  # exactly the tools the last turn called
    gates_passed: list[str] = Field(default_factory=list)    # steps whose gate passed
    gates_refused: list[str] = Field(default_factory=list)   # steps refused at least once
    evidence: dict[str, dict[str, Any]] = Field(default_factory=dict)  # kind -> field subset
    no_evidence: list[str] = Field(default_factory=list)
    lessons: dict[str, int] = Field(default_factory=dict)
    project_fields: dict[str, Any] = Field(default_factory=dict)  # first project's fields
    replies_contain: list[str] = Field(default_factory=list)
    last_reply_contains: list[str] = Field(default_factory=list)
    replies_exclude: list[str] = Field(default_factory=list)
    errors: int | None = None                 # messages refused before a turn ran
    turns: int | None = None                  # turns stored in the transcript
    spans: list[str] = Field(default_factory=list)
    postmortem: dict[str, Any] | None = None  # latest version: source, min_words, …


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    persona: str
    tags: list[str] = Field(default_factory=list)
    # Reach this step first with the demo learner's answers, then send `messages`.
    start_at: Literal["build", "deploy", "harden", "postmortem", "repeat"] | None = None
    messages: list[str]
    # The learner's repository: files changed (None deletes) before the case starts, and
    # what a `FIX_REPO` message writes and commits later.
    repo_files: dict[str, str | None] = Field(default_factory=dict)
    fix_files: dict[str, str | None] = Field(default_factory=dict)
    spent_usd: float = 0.0        # spend already in today's ledger before the case runs
    budget_usd: float | None = None
    expect: Expect


def load_cases(directory: Path = CASES_DIR, pattern: str | None = None) -> list[Case]:
    cases: list[Case] = []
    for path in sorted(directory.glob("*.yaml")):
        for raw in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            cases.append(Case.model_validate(raw))
    ids = [c.id for c in cases]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise ValueError(f"duplicate eval case ids: {sorted(duplicates)}")
    if pattern:
        cases = [c for c in cases if fnmatch(c.id, pattern) or pattern in c.id]
    return cases
