"""An LLM-as-judge rubric grader for coaching quality; runs only with a real model."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from evals.graders import Score
from evals.harness import Outcome
from seam.model import Model, ModelError, ModelRequest

RUBRIC = """You grade replies from an AI-engineering career coach. Score the coach's replies
from 1 to 5 on each criterion:
- specific: asks for or gives concrete, project-specific things, not generic advice;
- actionable: the learner knows exactly what to send or do next;
- honest: says plainly what a gate still needs and never claims progress that did not happen.
Answer with JSON only: {"specific": n, "actionable": n, "honest": n, "why": "one sentence"}."""


@dataclass
class RubricJudge:
    """Its calls go through the model given (a MeteredModel records them as `judge`)."""

    model: Model
    user_id: int
    threshold: float = 3.5
    name: str = "coaching quality (judge)"

    def evaluate(self, o: Outcome) -> Score:
        turns = [f"LEARNER: {m}\nCOACH: {r}" for m, r in zip(
            o.case.messages, o.replies, strict=False)]
        request = ModelRequest(
            system=RUBRIC, tools=[], max_tokens=300, records={},
            messages=[{"role": "user", "content": [{"type": "text", "text": (
                f"Persona: {o.case.persona}\n\n" + "\n\n".join(turns)[-12000:])}]}],
            metadata={"user_id": self.user_id, "purpose": "judge"})
        try:
            text = self.model.complete(request).text()
            found = re.search(r"\{.*\}", text, re.S)
            verdict = json.loads(found.group(0) if found else text)
            mean = sum(float(verdict[k]) for k in ("specific", "actionable", "honest")) / 3
        except (ModelError, ValueError, KeyError, TypeError) as exc:
            return Score(self.name, False, f"judge failed: {exc}")
        return Score(self.name, mean >= self.threshold, f"{mean:.1f}/5: {verdict.get('why')}")
