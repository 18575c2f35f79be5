"""What a repository shows for each step-4 claim: what its CI runs, how many eval cases its
data files hold, which tracing libraries its code imports.

The audit collects these while it walks the checkout; `tools.claims` holds a learner's
stated evidence against them. Everything here only reads text: nothing is executed.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import yaml

# Commands in a CI config that run tests or evals. Matched as words, so that a job merely
# *named* "test" with `run: echo hi` does not count.
CHECK_COMMANDS: dict[str, str] = {
    "pytest": r"\bpytest\b",
    "unittest": r"\bpython3?\s+-m\s+unittest\b",
    "tox/nox": r"\b(?:tox|nox)\b",
    "make test/eval": r"\bmake\s+(?:[\w-]+\s+)*(?:test|tests|check|eval|evals)\b",
    "npm/yarn/pnpm test": r"\b(?:npm|yarn|pnpm|bun)\s+(?:run\s+)?(?:test|eval|evals)\b",
    "jest/vitest/mocha": r"\b(?:jest|vitest|mocha|playwright\s+test)\b",
    "go test": r"\bgo\s+test\b",
    "cargo test": r"\bcargo\s+(?:test|nextest)\b",
    "promptfoo": r"\bpromptfoo\b",
    "an eval runner": r"\b(?:inspect\s+eval|deepeval|braintrust\s+eval|coach\s+eval)\b"
                      r"|\bevals?/[\w./-]*\.(?:py|ts|js)\b|\brun_?evals?\b|\bevals?\.py\b",
}
_CHECKS = {name: re.compile(pattern, re.I) for name, pattern in CHECK_COMMANDS.items()}

# Tracing libraries by the name a learner would give, with the import that shows each.
# OpenTelemetry and OpenInference export OTLP, which every one of these backends accepts.
TRACING_LIBRARIES: dict[str, str] = {
    "opentelemetry": r"\bopentelemetry\b|@opentelemetry/",
    "openinference": r"\bopeninference\b",
    "langfuse": r"\blangfuse\b",
    "langsmith": r"\blangsmith\b",
    "logfire": r"\blogfire\b",
    "phoenix": r"^\s*(?:from|import)\s+phoenix\b|\barize\b",
    "weave": r"^\s*(?:from|import)\s+weave\b|\bweave\.(?:init|op)\b",
    "helicone": r"\bhelicone\b",
    "datadog": r"\bddtrace\b|\bdd-trace\b",
    "honeycomb": r"\bhoneycomb\b|\bbeeline\b",
}
_TRACING = {name: re.compile(p, re.I | re.M) for name, p in TRACING_LIBRARIES.items()}
OTLP_LIBRARIES = frozenset({"opentelemetry", "openinference"})

# The names learners give their tracing tool, to the library that would show it in code.
TOOL_NAMES: dict[str, str] = {
    "langfuse": "langfuse", "langsmith": "langsmith", "logfire": "logfire",
    "pydantic logfire": "logfire", "phoenix": "phoenix", "arize": "phoenix",
    "arize phoenix": "phoenix", "openinference": "openinference", "weave": "weave",
    "weights & biases": "weave", "w&b": "weave", "wandb": "weave", "helicone": "helicone",
    "datadog": "datadog", "ddtrace": "datadog", "honeycomb": "honeycomb",
    "opentelemetry": "opentelemetry", "otel": "opentelemetry", "jaeger": "opentelemetry",
    "grafana": "opentelemetry", "tempo": "opentelemetry", "zipkin": "opentelemetry",
    "signoz": "opentelemetry", "uptrace": "opentelemetry",
}

DATA_EXTS = frozenset({".jsonl", ".json", ".yaml", ".yml", ".csv"})
_LIST_KEYS = ("cases", "tests", "examples", "data", "samples", "items", "rows")


def library_for_tool(tool: str) -> str | None:
    """The library a stated tool name stands for, or None when the coach does not know it."""
    words = " ".join(tool.lower().replace("-", " ").split())
    if words in TOOL_NAMES:
        return TOOL_NAMES[words]
    for name in sorted(TOOL_NAMES, key=len, reverse=True):
        if re.search(rf"(?<![\w&]){re.escape(name)}(?![\w&])", words):
            return TOOL_NAMES[name]
    return None


def ci_checks(text: str) -> list[str]:
    """What a CI config runs that looks like tests or evals (comment lines ignored)."""
    # YAML comments (whole-line or after a space) say nothing about what runs.
    body = "\n".join(re.sub(r"(?:^|\s)#.*$", "", line) for line in text.splitlines())
    return [name for name, pattern in _CHECKS.items() if pattern.search(body)]


def count_cases(rel: str, text: str) -> int | None:
    """How many cases an eval data file holds, or None when its format does not say."""
    suffix = PurePosixPath(rel).suffix.lower()
    try:
        if suffix == ".jsonl":
            return sum(1 for line in text.splitlines() if line.strip())
        if suffix == ".csv":
            rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
            return max(len(rows) - 1, 0)  # the first row names the columns
        if suffix == ".json":
            return _count_loaded(json.loads(text))
        if suffix in (".yaml", ".yml"):
            return _count_loaded(yaml.safe_load(text))
    except (ValueError, yaml.YAMLError, csv.Error):
        return None
    return None


def _count_loaded(data: object) -> int | None:
    if isinstance(data, list):
        return len(data)
    if isinstance(data, dict):
        for key in _LIST_KEYS:
            if isinstance(data.get(key), list):
                return len(data[key])
    return None


@dataclass
class ClaimFacts:
    ci_runs: dict[str, list[str]] = field(default_factory=dict)
    eval_cases: dict[str, int | None] = field(default_factory=dict)
    tracing_tools: dict[str, list[str]] = field(default_factory=dict)

    def tracing(self, rel: str, text: str) -> None:
        for name, pattern in _TRACING.items():
            if pattern.search(text):
                self.tracing_tools.setdefault(name, []).append(rel)

    def read(self, rel: str, categories: set[str], text: str | None) -> None:
        if "ci" in categories:
            self.ci_runs[rel] = ci_checks(text) if text is not None else []
        if "evals" in categories:
            data = PurePosixPath(rel).suffix.lower() in DATA_EXTS
            self.eval_cases[rel] = count_cases(rel, text) if data and text is not None \
                else None
