"""Prompt caching over a long conversation: how much of each prompt comes from the cache.

A scripted 30-turn conversation (each turn: the learner's note, a record_lesson tool call,
then a text reply) runs through the real Coach and ClaudeModel, with the real anthropic
client talking to the local Messages-API server of the tests, which emulates prompt
caching by prefix (a breakpoint whose prefix was written before is read; 20-block
lookback). Token counts are the server's estimates (4 characters a token); money comes
from seam.pricing. Writes its section to BENCHMARKS.md unless --no-write.

    .venv/bin/python bench/caching.py [--turns 30] [--model claude-sonnet-5-5] [--no-write]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import anthropic

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from turns import write_section  # noqa: E402

from agent.claude import ClaudeModel, min_cacheable  # noqa: E402
from agent.session import Coach  # noqa: E402
from evals.messages_api import MessagesAPI, text_reply, tool_reply  # noqa: E402
from memory.checkpoints import open_checkpointer  # noqa: E402
from memory.store import open_engine  # noqa: E402
from seam.pricing import Usage, price_table  # noqa: E402

PROJECT = {
    "title": "Handover Helper",
    "problem": "Night-shift nurses hand over ten to twenty patients in a few minutes from "
               "handwritten notes, and abnormal vitals get lost when the ward is busy.",
    "audience": "ward nurses on night shifts",
    "personal_context": "six years of night shifts on a surgical ward",
    "success_criteria": "flags 95% of abnormal vitals in a week of real handovers",
    "capabilities": ["structured_output", "evals_ci"],
}
KINDS = ("worked", "didnt_work", "tradeoff", "decision")
NOTES = (
    "keeping the first version to one ward and one shift made the feedback loop short",
    "parsing free-text vitals with regexes broke on every second nurse's shorthand",
    "two model calls per note: slower, but recall on abnormal vitals went from 81% to 94%",
    "store the raw handover next to the summary so every flag can be traced to a source",
)
REPLY = ("Recorded. That is exactly the kind of evidence your post-mortem needs: say what you "
         "measured, what you changed, and what it cost you. Next, tell me how you checked it "
         "on a real shift, or what you would try differently.")
CACHE_TARGET, COST_TARGET = 0.70, 0.40


@dataclass
class Turn:
    number: int
    calls: int
    input: int
    read: int
    written: int
    output: int
    cost: Decimal

    @property
    def sent(self) -> int:
        return self.input + self.read + self.written

    @property
    def share(self) -> float:
        return self.read / self.sent if self.sent else 0.0


def script(api: MessagesAPI, number: int, project_id: int | None) -> str:
    """Queue the model's side of a turn and return the learner's message."""
    if project_id is None:
        api.queue(tool_reply("create_project", PROJECT),
                  text_reply("Created. What is the repository, and what are its 1-3 core "
                             "features?"))
        return ("I want to help night-shift nurses with handovers: " + PROJECT["problem"])
    kind, note = KINDS[number % len(KINDS)], NOTES[number % len(NOTES)]
    api.queue(tool_reply("record_lesson", {"project_id": project_id, "kind": kind,
                                           "text": f"{note} (week {number})"}),
              text_reply(REPLY))
    return f"{kind.replace('_', ' ').capitalize()}: {note} (week {number})"


def run(model: str, turns: int, db: Path) -> list[Turn]:
    url = f"sqlite:///{db}"
    engine = open_engine(url)
    out: list[Turn] = []
    try:
        with MessagesAPI(cache=True) as api, open_checkpointer(url) as saver:
            client = anthropic.Anthropic(api_key="bench-key", base_url=api.base_url,
                                         max_retries=0, timeout=30)
            coach = Coach(engine, saver, user="bench", model=ClaudeModel(model, client=client))
            thread = coach.thread()
            project_id: int | None = None
            for number in range(1, turns + 1):
                calls = len(api.message_requests)
                result = coach.turn(thread, script(api, number, project_id))
                if result.error or result.cost_usd is None:
                    raise SystemExit(f"turn {number} failed: {result.error or 'no price'}")
                project_id = result.project_id
                u = result.usage
                out.append(Turn(number, len(api.message_requests) - calls, u["input_tokens"],
                                u["cache_read_input_tokens"], u["cache_creation_input_tokens"],
                                u["output_tokens"], result.cost_usd))
            client.close()
    finally:
        engine.dispose()
    return out


def uncached_cost(model: str, turns: list[Turn]) -> Decimal:
    """The same tokens priced as if nothing were cached: every prompt token as input."""
    prices = price_table()
    total = Decimal(0)
    for t in turns:
        cost = prices.cost(model, Usage(input_tokens=t.sent, output_tokens=t.output),
                           date.today())
        assert cost is not None
        total += cost
    return total


def note(before: Turn | None, turn: Turn) -> str:
    if not turn.read and not turn.written:
        return "prompt below the cacheable minimum"
    if before is not None and turn.sent < before.sent:
        return "window folded: older turns left for the summary, the prefix is rewritten"
    if not turn.read:
        return "first cache write"
    return ""


def report(model: str, turns: list[Turn]) -> str:
    n = len(turns)
    later = turns[2:]
    later_share = sum(t.read for t in later) / max(1, sum(t.sent for t in later))
    below = [t.number for t in later if t.share < CACHE_TARGET]
    cached = sum((t.cost for t in turns), Decimal(0))
    plain = uncached_cost(model, turns)
    ratio = float(cached / plain)
    lines = [
        f"## Caching: {n}-turn Claude conversation ({model}, emulated prompt cache)",
        "",
        f"Run on {time.strftime('%Y-%m-%d')} with `python bench/caching.py --turns {n} "
        f"--model {model}`: the real Coach and ClaudeModel (anthropic SDK) against the local "
        "Messages-API server of the tests, which caches by prefix (20-block lookback) and "
        f"counts 4 characters a token. Each turn: learner note → record_lesson → reply "
        f"(turn 1 creates the project). {model} caches prompts from "
        f"{min_cacheable(model):,} tokens.",
        "",
        "| turn | calls | input tokens sent | uncached | cache read | cache write | "
        "read from cache | note |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for before, t in zip([None, *turns], turns, strict=False):
        lines.append(f"| {t.number} | {t.calls} | {t.sent:,} | {t.input:,} | {t.read:,} | "
                     f"{t.written:,} | {t.share:.0%} | {note(before, t)} |")
    lines += [
        "",
        f"Turns 3–{n}: {later_share:.1%} of input tokens read from the cache (lowest turn "
        f"{min(t.share for t in later):.0%}"
        + (f"; below {CACHE_TARGET:.0%} on turns {', '.join(map(str, below))}" if below
           else "") + ").",
        f"Cost with caching ${cached:.4f} vs ${plain:.4f} for the same tokens uncached: "
        f"{ratio:.1%}.",
        f"Targets: ≥ {CACHE_TARGET:.0%} of input tokens from cache from turn 3 on "
        f"({'met' if later_share >= CACHE_TARGET else 'NOT met'} in aggregate, "
        f"{'met' if not below else 'NOT met'} on every turn); total cost ≤ "
        f"{COST_TARGET:.0%} of uncached ({'met' if ratio <= COST_TARGET else 'NOT met'}).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--model", default="claude-sonnet-5-5")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"running {args.turns} turns on {args.model}…", file=sys.stderr)
        turns = run(args.model, args.turns, Path(tmp) / "caching.db")
    section = report(args.model, turns)
    print(section)
    if not args.no_write:
        write_section(ROOT / "BENCHMARKS.md", "## Caching:", section)


if __name__ == "__main__":
    main()
