"""The playbook search as a retrieval system: recall@3, MRR and query time, against a plain
keyword-overlap baseline measured in the same run on the same labelled questions.

Also how often the offline coach answers directly (relevance above its threshold) and how
often it declines the off-topic questions. Writes its section to BENCHMARKS.md (and, with
--update-baseline, the gate's recorded numbers) unless --no-write.

    .venv/bin/python bench/playbook.py [--repeat 20] [--no-write] [--update-baseline]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from turns import write_section  # noqa: E402

from playbook.answer import MIN_RELEVANCE  # noqa: E402
from playbook.entries import load_entries  # noqa: E402
from playbook.quality import (  # noqa: E402
    K,
    Metrics,
    Question,
    baseline_metrics,
    bm25_metrics,
    load_questions,
)
from playbook.search import KeywordOverlap, Playbook  # noqa: E402

QUESTIONS = ROOT / "evals" / "playbook_questions.yaml"
BASELINE = ROOT / "evals" / "playbook_baseline.json"
RECALL_TARGET, MS_TARGET = 0.90, 5.0


def timed_median(fn: object, questions: list[Question], repeat: int) -> float:
    """The median over questions of each question's median time across `repeat` runs."""
    per_question = []
    for q in questions:
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn(q)  # type: ignore[operator]
            runs.append((time.perf_counter() - start) * 1000)
        per_question.append(statistics.median(runs))
    return statistics.median(per_question)


def answered_share(book: Playbook, questions: list[Question]) -> float:
    answered = 0
    for q in questions:
        hits = book.search(q.text, step=q.step)
        answered += bool(hits) and book.relevance(q.text, hits[0].entry) >= MIN_RELEVANCE
    return answered / len(questions)


def declined_share(book: Playbook, off_topic: list[str]) -> float:
    declined = 0
    for text in off_topic:
        hits = book.search(text)
        declined += not hits or book.relevance(text, hits[0].entry) < MIN_RELEVANCE
    return declined / len(off_topic) if off_topic else 1.0


def row(m: Metrics, ms: float) -> str:
    return f"| {m.name} | {m.questions} | {m.recall_at_k:.3f} | {m.mrr:.3f} | {ms:.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--update-baseline", action="store_true")
    args = parser.parse_args()

    start = time.perf_counter()
    entries = load_entries()
    book = Playbook(entries)
    build_ms = (time.perf_counter() - start) * 1000
    overlap = KeywordOverlap(entries)
    questions, off_topic = load_questions(QUESTIONS, set(book.by_id))
    import yaml
    held_texts = {q["q"] for q in yaml.safe_load(QUESTIONS.read_text())["held_out"]}
    held = [q for q in questions if q.text in held_texts]

    ours, base = bm25_metrics(book, questions), baseline_metrics(book, questions)
    ours_held, base_held = bm25_metrics(book, held), baseline_metrics(book, held)
    ours_ms = timed_median(lambda q: book.search(q.text, step=q.step, limit=K), questions,
                           args.repeat)
    base_ms = timed_median(lambda q: overlap.search(q.text, limit=K), questions, args.repeat)
    answered, declined = answered_share(book, questions), declined_share(book, off_topic)

    recall_ok = "meets" if ours.recall_at_k >= RECALL_TARGET else "MISSES"
    ms_ok = "meets" if ours_ms <= MS_TARGET else "MISSES"
    lines = [
        f"## Playbook: search over {len(entries)} entries ({len(questions)} labelled learner "
        "questions)",
        "",
        f"Measured {date.today().isoformat()} on {platform.python_implementation()} "
        f"{platform.python_version()}, 1 process, by `bench/playbook.py` "
        f"(each query's time is the median of {args.repeat} runs; the table shows the median "
        "over questions). recall@3 = share of questions with an entry that answers them in "
        "the top 3; MRR = mean of 1/rank of the first such entry (0 beyond rank 3). The "
        "baseline ranks entries by how many distinct question words they contain (same words "
        "and stop list, no weights, stems, typo repair or step boost).",
        "",
        "| ranking | questions | recall@3 | MRR | median query ms |",
        "|---|---|---|---|---|",
        row(ours, ours_ms),
        row(base, base_ms),
        f"| bm25s, held-out questions only | {ours_held.questions} | "
        f"{ours_held.recall_at_k:.3f} | {ours_held.mrr:.3f} | – |",
        f"| keyword overlap, held-out only | {base_held.questions} | "
        f"{base_held.recall_at_k:.3f} | {base_held.mrr:.3f} | – |",
        "",
        f"- recall@3 {ours.recall_at_k:.3f} vs {base.recall_at_k:.3f} "
        f"(×{ours.recall_at_k / base.recall_at_k:.2f}); MRR {ours.mrr:.3f} vs {base.mrr:.3f} "
        f"(×{ours.mrr / base.mrr:.2f}); query time ×{ours_ms / base_ms:.1f} the baseline's.",
        f"- Targets: recall@3 ≥ {RECALL_TARGET} ({recall_ok}); median query ≤ {MS_TARGET} ms "
        f"({ms_ok}). Building the index: {build_ms:.0f} ms once per process.",
        "- The held-out questions were written after the entries' keywords were tuned on the "
        "rest, and not tuned on.",
        f"- The offline coach answers directly (relevance ≥ {MIN_RELEVANCE}) for "
        f"{answered:.0%} of the labelled questions and declines {declined:.0%} of the "
        f"{len(off_topic)} off-topic ones (offering the two closest titles instead).",
        "- Misses in the top 3: " + ("; ".join(f"“{m}”" for m in ours.misses) or "none") + ".",
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        write_section(ROOT / "BENCHMARKS.md", "## Playbook:", section)
    if args.update_baseline:
        recorded = {k: v for k, v in ours.as_dict().items() if k != "median_ms"}
        BASELINE.write_text(json.dumps(recorded, indent=2) + "\n")


if __name__ == "__main__":
    main()
