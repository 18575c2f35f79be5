"""Answering a learner's question for the step they are at.

`answer_question` is the one seam for question answering in the offline coach: the coaching
playbook (issue #12) answers first; the step guide is the fallback.
"""

from __future__ import annotations

from typing import Any

from agent.replies import WELCOME, gate_text, next_question, status_text
from agent.steps import GUIDES
from playbook import answer_question as playbook_answer


def answer_question(question: str, ctx: dict[str, Any]) -> str:
    """A learner's question, answered from the coaching playbook for the step they are at,
    then one example of the sentence that gives the project what it needs next, and the
    interview's current question. Without a playbook answer, the step guide answers."""
    project = ctx.get("project")
    step = project["step"] if project else None
    answer = playbook_answer(question, step, (project or {}).get("capabilities") or ())
    if answer is None:
        return step_guide_answer(ctx)
    if project is None or step == "done":
        return "\n\n".join([answer, status_text(ctx)])
    # The interview carries on with its current question (the capability nudge can wait).
    return "\n\n".join(x for x in [answer, next_example(project),
                                    next_question(project, capabilities=False)] if x)


def next_example(project: dict[str, Any]) -> str:
    missing = project["gate"]["missing"]
    # One example, for the thing this project needs next, in the words that store it.
    example = FIELD_EXAMPLES.get(missing[0]["field"], "") if missing else ""
    example = example or EXAMPLES.get(project["step"], "")
    return (f"What “{project['title']}” needs next, and a sentence I'd understand: {example}"
            if example else "")


def step_guide_answer(ctx: dict[str, Any]) -> str:
    project = ctx.get("project")
    if project is None:
        return f"{QUESTION_INTRO}\n\n" + "\n\n".join([WELCOME, status_text(ctx)])
    guide = GUIDES[project["step"]]
    if project["step"] == "done":
        return "Good question. " + status_text(ctx)
    return "\n\n".join(x for x in [
        f"{QUESTION_INTRO} At step {guide.number} ({guide.name.lower()}): {guide.why}",
        next_example(project), gate_text(project), next_question(project)] if x)


FIELD_EXAMPLES = {
    "title": "a short name, e.g. “call it Handover Helper”.",
    "problem": "what happens today and what goes wrong, in 20+ words, e.g. “Night nurses hand "
               "over 20 patients in 10 minutes from handwritten notes, and abnormal vitals get "
               "missed when the ward is busy.”",
    "audience": "who has the problem, as specifically as you can, e.g. “it's a problem for "
                "nurses on busy medical wards”.",
    "personal_context": "why you know this problem from the inside, e.g. “I did night shifts "
                        "for six years”.",
    "success_criteria": "a number you can check, e.g. “success would be flagging 95% of "
                        "abnormal vitals on 50 real notes”.",
    "repo": "where the code is, e.g. “the code is in ~/code/my-tool” (a git checkout with a "
            "commit) or a GitHub URL.",
    "mvp_scope": "one to three core features, e.g. “it does two things: summarise a note and "
                 "flag abnormal vitals”.",
    "usage_note": "one real run, e.g. “I ran it on 5 notes from my old ward and it caught 4 of "
                  "the 5 abnormal pulses”.",
    "deployment": "the address where it runs, e.g. “it's live at https://my-tool.fly.dev” — I "
                  "fetch it myself.",
    "evals": "how many cases, how many pass, and how they're graded, e.g. “24 cases, 22 pass, "
             "graded by exact match”.",
    "ci_gate": "what runs the evals on every change, e.g. “GitHub Actions runs "
               ".github/workflows/evals.yml”.",
    "observability": "the tracing tool and a link, e.g. “Langfuse, here's a trace https://…”.",
    "cost_tracking": "what it costs, e.g. “about half a cent per request”.",
}


QUESTION_INTRO = ("Good question. I'm the offline coach, so I answer from the step guide: here "
                  "is where you stand and what helps next.")
EXAMPLES = {
    "problem": "“Night nurses hand over 20 patients in 10 minutes from handwritten notes, and "
               "abnormal vitals get missed” is a problem; “ward nurses” is an audience; “I did "
               "night shifts for 6 years” is personal context; “flags 95% of abnormal vitals "
               "on 50 real notes” is a success criterion.",
    "build": "“the code is in ~/code/my-tool”, “it does three things: a, b and c”, and “I ran "
             "it on 5 real notes and it caught 4 of 5” is a usage note.",
    "deploy": "“it runs at https://my-tool.fly.dev” — I fetch it myself.",
    "harden": "“24 cases, 22 pass, graded by exact match”, “GitHub Actions runs "
              ".github/workflows/evals.yml”, “Langfuse, here's a trace https://…”, “about "
              "half a cent per request”.",
    "postmortem": "“what worked was the tiny scope”, “what didn't work was my first prompt”, "
                  "“I chose regex over an LLM because …”, then `draft post-mortem`.",
    "repeat": "“next: call it Ward Agent, it searches the notes and calls the lab API”.",
}
