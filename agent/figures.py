"""Figures and names in plain sentences: numbers in words, eval results, costs, CI, tracing.

The labelled parsers in `agent.answers` expect a field's value on its own; these read the
same facts out of whatever sentence a learner wrote, and return None rather than guess.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlparse

# Hand-written rather than `word2number`: that package is unmaintained and raises on any
# sentence that is not only a number; here numbers sit inside sentences.
UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen".split())}
TENS = {w: 10 * i for i, w in enumerate(
    "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if w != "_"}
SCALES = {"hundred": 100, "thousand": 1000}
SPECIAL = {"a dozen": "12", "dozen": "12", "a couple of": "2", "a hundred": "100",
           "a thousand": "1000", "half a": "0.5", "a half": "0.5", "a": "1", "an": "1"}
_NUMBER_WORD = "|".join(sorted([*UNITS, *TENS, *SCALES], key=len, reverse=True))
_NUMBER_RUN = re.compile(rf"\b(?:{_NUMBER_WORD})(?:[\s-]+(?:and\s+)?(?:{_NUMBER_WORD}))*\b",
                         re.IGNORECASE)


def words_to_number(run: str) -> int:
    total, current = 0, 0
    for word in re.split(r"[\s-]+", run.lower()):
        if word == "and":
            continue
        if word in UNITS:
            current += UNITS[word]
        elif word in TENS:
            current += TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word == "thousand":
            total += max(current, 1) * 1000
            current = 0
    return total + current


def digits(text: str) -> str:
    """`text` with number words as digits: "ten of twelve" -> "10 of 12"."""
    out = re.sub(r"\ba dozen\b|\bdozen\b", "12", text, flags=re.IGNORECASE)
    return _NUMBER_RUN.sub(lambda m: str(words_to_number(m.group(0))), out)


URL_RE = re.compile(r"https?://[^\s<>\"'()\[\]]+", re.IGNORECASE)


def urls(text: str) -> list[str]:
    return [u.rstrip(".,;:!?") for u in URL_RE.findall(text)]


# -- evals ---------------------------------------------------------------------------------

_CASES = r"(?:eval(?:uation)?\s+|test\s+|labelled\s+|labeled\s+|golden\s+)?" \
         r"(?:cases|examples|tests|questions|items|evals|prompts|samples|conversations)"
GRADERS = ("llm-as-a-judge", "llm as a judge", "llm-as-judge", "llm judge", "exact match",
           "exact-match", "string match", "regex", "rubric", "human review", "unit tests",
           "f1", "bleu", "rouge", "embedding similarity", "cosine similarity", "pytest",
           "assertions", "a judge model", "claude as judge")


def _rate(number: str, percent: bool) -> float:
    value = float(number)
    return round(value / 100 if percent or value > 1 else value, 4)


def read_evals(text: str) -> dict[str, Any] | None:
    """Eval-set size, pass rate and grader from a sentence; None without any of them."""
    t = digits(text.replace(",000", "000"))
    details: dict[str, Any] = {}
    ratio = re.search(r"(\d+)\s*(?:/|out\s+of|of(?:\s+the)?|from)\s*(\d+)(?:\s+" + _CASES +
                      r")?(?:\s+(?:of\s+them\s+)?(?:pass|passed|are\s+passing|passing|"
                      r"succeed|succeeded|green|correct|right|ok))?", t, re.IGNORECASE)
    cases = re.search(r"(\d+)\s+" + _CASES, t, re.IGNORECASE) or \
        re.search(r"(?:eval(?:uation)?\s+|test\s+)?(?:set|dataset|suite)\s*(?:of|has|with|:|=)\s*"
                  r"(\d+)", t, re.IGNORECASE) or \
        re.search(r"(\d+)\s+(?:test|eval|labell?ed|golden)\s+\w+", t, re.IGNORECASE) or \
        re.search(r"\b(?:evaluate[sd]?|eval|test(?:ed)?|run)\s+(?:it\s+|them\s+)?(?:on|against)\s+"
                  r"(\d+)\b", t, re.IGNORECASE)
    percent = re.search(r"(\d+(?:\.\d+)?)\s*(?:%|percent|per\s+cent)", t, re.IGNORECASE)
    fraction = re.search(r"(?:pass(?:\s*rate)?|rate|score|accuracy)\s*(?:of|is|=|:|at|was)?\s*"
                         r"(0?\.\d+|1\.0)\b|\b(0\.\d+)\s*(?:pass|passing|pass\s+rate)", t,
                         re.IGNORECASE)
    passed = re.search(r"(\d+)\s+(?:of\s+them\s+|of\s+those\s+)?(?:pass|passed|are\s+passing|"
                       r"succeed|are\s+green|come\s+out\s+(?:right|correct|ok|fine)|are\s+(?:right|correct)|"
                       r"get\s+it\s+right)\b", t, re.IGNORECASE)
    every = re.search(r"\ball\s+(?:of\s+them\s+|\d+\s+)?(?:pass|passed|passing|green)\b", t,
                      re.IGNORECASE)
    if ratio and (not cases or int(ratio.group(2)) >= int(ratio.group(1))):
        details["cases"] = int(ratio.group(2))
        details["pass_rate"] = round(int(ratio.group(1)) / max(1, int(ratio.group(2))), 4)
    elif cases:
        details["cases"] = int(cases.group(1))
        if passed and passed.start() != cases.start():
            details["pass_rate"] = round(int(passed.group(1)) / max(1, details["cases"]), 4)
        elif every:
            details["pass_rate"] = 1.0
    if percent:
        details["pass_rate"] = _rate(percent.group(1), True)
    elif fraction:
        details["pass_rate"] = _rate(fraction.group(1) or fraction.group(2), False)
    grader = read_grader(text)
    if grader:
        details["grader"] = grader
    return details or None


def read_grader(text: str) -> str | None:
    m = re.search(r"(?:graded|scored|judged|checked|marked|evaluated|checks?|grades?|score)\s+"
                  r"(?:them\s+|each\s+|it\s+)?(?:by|with|using)\s+"
                  r"(.+?)(?:[.;!?](?:\s|$)|,|\s+and\s+|$)|(?:grader|grading)\s+(?:is|was|:)\s*"
                  r"(.+?)(?:[.;!?](?:\s|$)|,|$)", text, re.IGNORECASE)
    if m:
        return (m.group(1) or m.group(2)).strip().rstrip(".")
    lowered = text.lower()
    found = next((g for g in GRADERS if re.search(rf"\b{re.escape(g)}\b", lowered)), None)
    return found


# -- cost ----------------------------------------------------------------------------------

_PER = {"request": r"request|call|query|queries|message|run|question|answer|conversation|"
                   r"ticket|note|document|user\s+message",
        "day": r"day|daily", "month": r"month|monthly|mo\b"}


def read_cost(text: str) -> dict[str, Any] | None:
    """A cost figure and what it is per: "half a cent per request" -> 0.005 per request."""
    t = text.lower().replace("¢", " cents")
    per = next((k for k, pattern in _PER.items()
                if re.search(rf"(?:per|a|an|each|every|/)\s*(?:{pattern})|\b(?:{pattern})\b", t)
                and re.search(rf"\b(?:{pattern})", t)), None)
    if per is None and re.search(r"\b(?:per|each|every|for\s+each)\s+[a-z]", t):
        # "per incident summary", "each contract review": one unit of work is a request.
        per = "request"
    amount = _amount(t)
    if amount is None or per is None:
        return None
    return {"cost_usd": format(amount.normalize(), "f"), "per": per, "note": text.strip()}


def _amount(t: str) -> Decimal | None:
    t = re.sub(r"\bhalf\s+a\s+cent\b|\ba\s+half\s+cent\b", "0.5 cents", t)
    t = re.sub(r"\ba\s+(cent|penny|dollar|buck)\b", r"1 \1", t)
    t = re.sub(r"\bhalf\s+a\s+(dollar|buck)\b", r"0.5 \1", t)
    t = digits(t)
    m = re.search(r"\$\s*(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\s*(?:usd|dollars?|bucks?)\b", t)
    if m:
        return _decimal(m.group(1) or m.group(2))
    m = re.search(r"(\d+(?:\.\d+)?)\s*(?:cents?|pennies|penny)\b", t)
    if m:
        value = _decimal(m.group(1))
        return value / 100 if value is not None else None
    return None


def _decimal(number: str) -> Decimal | None:
    try:
        return Decimal(number)
    except InvalidOperation:
        return None


# -- CI ------------------------------------------------------------------------------------

CI_NAMES = {"github actions": "GitHub Actions", "github action": "GitHub Actions",
            "gh actions": "GitHub Actions", "gitlab ci": "GitLab CI", "gitlab": "GitLab CI",
            "circleci": "CircleCI", "circle ci": "CircleCI", "jenkins": "Jenkins",
            "buildkite": "Buildkite", "azure pipelines": "Azure Pipelines",
            "azure devops": "Azure Pipelines", "bitbucket pipelines": "Bitbucket Pipelines",
            "bitbucket": "Bitbucket Pipelines", "travis": "Travis CI", "drone": "Drone",
            "woodpecker": "Woodpecker CI", "forgejo actions": "Forgejo Actions",
            "gitea actions": "Gitea Actions"}
CI_PATH = re.compile(r"(?:\.github/workflows/[\w.-]+\.ya?ml|\.gitlab-ci\.ya?ml|"
                     r"\.circleci/config\.ya?ml|Jenkinsfile|\.travis\.ya?ml|"
                     r"azure-pipelines\.ya?ml|bitbucket-pipelines\.ya?ml|\.buildkite/[\w./-]+|"
                     r"\.woodpecker\.ya?ml|\.drone\.ya?ml|\.forgejo/workflows/[\w.-]+\.ya?ml|"
                     r"\.gitea/workflows/[\w.-]+\.ya?ml)")
_PATH_PROVIDER = {".github/": "GitHub Actions", ".gitlab-ci": "GitLab CI",
                  ".circleci": "CircleCI", "Jenkinsfile": "Jenkins", ".travis": "Travis CI",
                  "azure-pipelines": "Azure Pipelines", "bitbucket": "Bitbucket Pipelines",
                  ".buildkite": "Buildkite", ".woodpecker": "Woodpecker CI",
                  ".drone": "Drone", ".forgejo": "Forgejo Actions", ".gitea": "Gitea Actions"}


def read_ci(text: str) -> dict[str, Any] | None:
    lowered = text.lower()
    provider = next((name for key, name in CI_NAMES.items()
                     if re.search(rf"\b{re.escape(key)}\b", lowered)), None)
    path = CI_PATH.search(text)
    if path and provider is None:
        provider = next(n for k, n in _PATH_PROVIDER.items() if k in path.group(0))
    if provider is None:
        return None
    details: dict[str, Any] = {"provider": provider, "description": text.strip()}
    if path:
        details["config_path"] = path.group(0)
    return details


# -- tracing -------------------------------------------------------------------------------

TRACING_TOOLS = {
    "arize phoenix": "Arize Phoenix", "phoenix": "Arize Phoenix", "arize": "Arize Phoenix",
    "langfuse": "Langfuse", "langsmith": "LangSmith", "lang smith": "LangSmith",
    "logfire": "Logfire", "honeycomb": "Honeycomb", "datadog": "Datadog", "jaeger": "Jaeger",
    "grafana tempo": "Grafana Tempo", "tempo": "Grafana Tempo", "grafana": "Grafana",
    "opentelemetry": "OpenTelemetry", "open telemetry": "OpenTelemetry",
    "otel": "OpenTelemetry", "helicone": "Helicone", "w&b weave": "W&B Weave",
    "weave": "W&B Weave", "weights & biases": "W&B Weave", "wandb": "W&B Weave",
    "braintrust": "Braintrust", "lunary": "Lunary", "new relic": "New Relic",
    "sentry": "Sentry", "openlit": "OpenLIT", "traceloop": "Traceloop",
    "openllmetry": "OpenLLMetry", "laminar": "Laminar", "agentops": "AgentOps",
    "mlflow": "MLflow", "zipkin": "Zipkin", "signoz": "SigNoz", "opik": "Opik",
}
_HOST_TOOLS = {"langfuse": "Langfuse", "smith.langchain": "LangSmith", "phoenix": "Arize Phoenix",
               "arize": "Arize Phoenix", "logfire": "Logfire", "honeycomb": "Honeycomb",
               "datadoghq": "Datadog", "helicone": "Helicone", "wandb": "W&B Weave",
               "jaeger": "Jaeger", "grafana": "Grafana", "braintrust": "Braintrust"}


def read_tracing(text: str) -> dict[str, Any] | None:
    """A tracing tool by its real name, and a trace link apart from it."""
    links = urls(text)
    words = URL_RE.sub(" ", text).lower()
    tool = next((name for key, name in TRACING_TOOLS.items()
                 if re.search(rf"(?<![\w/]){re.escape(key)}\b", words)), None)
    if tool is None and links:
        host = urlparse(links[0]).netloc.lower()
        tool = next((name for key, name in _HOST_TOOLS.items() if key in host), None)
    if tool is None:
        return None
    return {"tool": tool, "link": links[0] if links else None}


def sentence_evidence(kind: str, value: str) -> dict[str, Any] | None:
    """A labelled evidence value read as a sentence; None if it still says too little."""
    if kind == "evals":
        found = read_evals(value)
        lead = re.match(r"\s*(\d[\d,]*)\s+[a-z]", digits(value), re.IGNORECASE)
        if found is not None and "cases" not in found and lead:
            # After `Evals:`, a leading count is the eval-set size: "100 replayed incidents".
            found["cases"] = int(lead.group(1).replace(",", ""))
            passed = re.search(r"(\d+)\s+(?:pass|passed|are\s+passing|are\s+green)\b",
                               digits(value), re.IGNORECASE)
            if passed and "pass_rate" not in found:
                found["pass_rate"] = round(int(passed.group(1)) / max(1, found["cases"]), 4)
        return found if found and "cases" in found else None
    readers = {"ci_gate": read_ci, "observability": read_tracing, "cost_tracking": read_cost}
    return readers[kind](value) if kind in readers else None
