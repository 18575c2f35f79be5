"""Reading a learner's message: labelled answers (`Title: …`), commands, plain answers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from memory.vocabulary import LESSON_KINDS

# Longer spellings first so that "Why me:" wins over "Why:".
LABELS: dict[str, str] = {
    "success criteria": "success_criteria", "success criterion": "success_criteria",
    "success": "success_criteria", "metric": "success_criteria",
    "personal context": "personal_context", "why me": "personal_context",
    "why": "personal_context", "context": "personal_context",
    "what didn't work": "didnt_work", "didn't work": "didnt_work", "didnt work": "didnt_work",
    "did not work": "didnt_work", "what didn’t work": "didnt_work", "didn’t work": "didnt_work",
    "what worked": "worked", "worked": "worked",
    "trade-offs": "tradeoff", "tradeoffs": "tradeoff", "trade-off": "tradeoff",
    "tradeoff": "tradeoff", "decision": "decision",
    "usage note": "usage_note", "usage": "usage_note",
    "capabilities": "capabilities",
    "post-mortem": "postmortem", "postmortem": "postmortem",
    "repository": "repo", "repo": "repo",
    "title": "title", "problem": "problem", "audience": "audience",
    "mvp": "mvp_scope", "scope": "mvp_scope", "features": "mvp_scope",
    "url": "url", "deployed at": "url", "deployment": "url",
    "evals": "evals", "eval": "evals", "ci": "ci_gate",
    "tracing": "observability", "observability": "observability",
    "cost": "cost_tracking", "costs": "cost_tracking",
    "audit": "audit", "confirm": "confirm", "confirmed": "confirm",
    "acknowledge": "acknowledge", "acknowledged": "acknowledge",
}
_LABEL_RE = re.compile(
    r"(?:^|(?<=[\s;.,!?]))(" + "|".join(re.escape(k) for k in LABELS).replace(r"\ ", r"\s+")
    + r")\s*:(?!//)", re.IGNORECASE)

COMMANDS = {
    "status": "status", "portfolio": "portfolio", "next": "next", "help": "help", "?": "help",
    "draft post-mortem": "draft", "draft postmortem": "draft", "draft": "draft",
}
URL_RE = re.compile(r"https?://[^\s<>\"')]+", re.IGNORECASE)
CI_PROVIDERS = ("GitHub Actions", "GitLab CI", "CircleCI", "Jenkins", "Buildkite",
                "Azure Pipelines", "Bitbucket Pipelines", "Travis CI", "Drone")


class AnswerError(ValueError):
    """A labelled answer that could not be read; the message shows the expected form."""


@dataclass
class Reading:
    command: str | None = None
    answers: dict[str, str] = field(default_factory=dict)
    plain: str = ""


def read_message(text: str) -> Reading:
    stripped = text.strip()
    command = COMMANDS.get(stripped.lower().lstrip("/").rstrip(".!"))
    if command:
        return Reading(command=command)
    matches = list(_LABEL_RE.finditer(stripped))
    if not matches:
        return Reading(plain=stripped)
    # A post-mortem runs to the end of the message: its own text may contain labels.
    for i, m in enumerate(matches):
        if LABELS[re.sub(r"\s+", " ", m.group(1).lower())] == "postmortem":
            matches = matches[: i + 1]
            break
    answers: dict[str, str] = {}
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(stripped)
        key = LABELS[re.sub(r"\s+", " ", m.group(1).lower())]
        value = stripped[m.end():end].strip().rstrip(";").strip()
        # Several lessons of one kind in one message are kept, not overwritten.
        answers[key] = f"{answers[key]}\n{value}" if key in answers and key in LESSON_KINDS \
            else value
    return Reading(answers=answers, plain=stripped[:matches[0].start()].strip())


def split_list(value: str) -> list[str]:
    sep = ";" if ";" in value else ","
    return [v.strip().rstrip(".") for v in value.split(sep) if v.strip()]


def parse_evals(value: str) -> dict[str, Any]:
    cases = re.search(r"(\d[\d,]*)\s*(?:eval\s+)?(?:cases|examples|tests|items|questions)",
                      value, re.I)
    rate = re.search(r"(\d+(?:\.\d+)?)\s*%", value) or \
        re.search(r"pass(?:\s*rate)?\s*(?:of|=|:)?\s*(0?\.\d+|1\.0)", value, re.I)
    grader = re.search(r"(?:graded\s+by|grader\s*[:=]?|grading\s*[:=]?|judged\s+by)\s*(.+)",
                       value, re.I)
    if not cases:
        raise AnswerError("I couldn't read the number of eval cases. Write it like "
                          "`Evals: 24 cases, 91% pass, graded by exact match`.")
    details: dict[str, Any] = {"cases": int(cases.group(1).replace(",", ""))}
    if rate:
        number = float(rate.group(1))
        details["pass_rate"] = round(number / 100 if "%" in rate.group(0) else number, 4)
    if grader:
        details["grader"] = grader.group(1).strip().rstrip(".")
    return details


def parse_ci(value: str) -> dict[str, Any]:
    provider = next((p for p in CI_PROVIDERS if p.lower().split()[0] in value.lower()), None)
    path = re.search(r"[\w./-]*(?:\.ya?ml|Jenkinsfile|/ci/[\w.-]+|\.ci/run)", value)
    details: dict[str, Any] = {"provider": provider or value[:200], "description": value}
    if path:
        details["config_path"] = path.group(0)
    return details


def parse_tracing(value: str) -> dict[str, Any]:
    link = URL_RE.search(value)
    tool = URL_RE.sub("", value).strip(" ,;:-()") or None
    if not tool:
        raise AnswerError("Name the tracing tool too, e.g. `Tracing: Langfuse https://…`.")
    return {"tool": tool, "link": link.group(0).rstrip(".,") if link else None}


def parse_cost(value: str) -> dict[str, Any]:
    amount = re.search(r"\$?\s*(\d+(?:\.\d+)?)", value)
    lowered = value.lower()
    per = ("request" if re.search(r"request|call|query|message|run", lowered) else
           "day" if re.search(r"day|daily", lowered) else
           "month" if re.search(r"month|monthly", lowered) else None)
    if not amount or per is None:
        raise AnswerError("I couldn't read that cost. Write it like "
                          "`Cost: $0.004 per request` (or per day, per month).")
    return {"cost_usd": amount.group(1), "per": per, "note": value}


def first_url(value: str) -> str | None:
    m = URL_RE.search(value)
    return m.group(0).rstrip(".,;") if m else None
