"""The product's words, defined once: step ids, lesson kinds, evidence kinds, capabilities.

They are values the store keeps and the SPEC fixes (contract), so every module imports
them from here instead of spelling them again.
"""

from __future__ import annotations

from typing import Literal, get_args

StepId = Literal["problem", "build", "deploy", "harden", "postmortem", "repeat"]
STEPS: tuple[StepId, ...] = get_args(StepId)
# The step a project reaches after `repeat`: finished, part of the portfolio.
DONE: Literal["done"] = "done"

LessonKind = Literal["worked", "didnt_work", "tradeoff", "decision"]
LESSON_KINDS: tuple[LessonKind, ...] = get_args(LessonKind)

EvidenceKind = Literal["evals", "ci_gate", "observability", "cost_tracking", "other"]
EVIDENCE_KINDS: tuple[EvidenceKind, ...] = get_args(EvidenceKind)

Capability = Literal["retrieval", "tool_use", "agents", "structured_output", "evals_ci",
                     "observability", "streaming", "multi_user", "fine_tuning", "multimodal",
                     "scale"]
CAPABILITIES: tuple[Capability, ...] = get_args(Capability)
