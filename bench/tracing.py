"""Tracing overhead: offline turn time with tracing and the local span store on vs
`OTEL_SDK_DISABLED=true`, and the database bytes the span store adds per turn.

All variants run in one process, on SQLite, turn by turn in lockstep (so machine
noise hits them alike), N turns each (200 by default). Besides the shipped set-up
(spans written once per turn by `TurnSpanProcessor`), it times the span store behind
the SDK's SimpleSpanProcessor and BatchSpanProcessor, which is how the shipped one
was chosen.

    .venv/bin/python bench/tracing.py [--turns 200] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from opentelemetry.sdk.trace import SpanProcessor, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    SimpleSpanProcessor,
)
from sqlalchemy import func, select  # noqa: E402

from agent.offline import OfflineCoach  # noqa: E402
from agent.session import Coach  # noqa: E402
from bench.turns import LEARNER, db_bytes, write_section  # noqa: E402
from memory.checkpoints import open_checkpointer  # noqa: E402
from memory.models import StoredSpan  # noqa: E402
from memory.store import open_engine  # noqa: E402
from telemetry.spanstore import SpanStoreExporter  # noqa: E402
from telemetry.tracing import flush  # noqa: E402

TARGET = 1.15


@contextmanager
def env(**values: str | None) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def open_coach(stack: ExitStack, path: Path, disabled: bool,
               processor: Callable[[SpanStoreExporter], SpanProcessor] | None = None) -> Coach:
    """A Coach wired as `coach chat` wires one, or with the span store behind `processor`."""
    url = f"sqlite:///{path}"
    engine = open_engine(url)
    stack.callback(engine.dispose)
    saver = stack.enter_context(open_checkpointer(url))
    provider = None
    if processor is not None:
        provider = TracerProvider()
        provider.add_span_processor(processor(SpanStoreExporter(engine)))
        stack.callback(provider.shutdown)
    # The Coach reads OTEL_* when it is built, as it does in the CLI.
    with env(OTEL_SDK_DISABLED="true" if disabled else None, OTEL_EXPORTER_OTLP_ENDPOINT=None,
             OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=None, COACH_TRACE_STORE=None):
        return Coach(engine, saver, user="bench", model=OfflineCoach(),
                     tracer_provider=provider)


def span_count(coach: Coach) -> int:
    with coach.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(StoredSpan)).scalar_one())


def run(n: int, tmp: Path) -> dict[str, dict[str, float]]:
    variants: dict[str, tuple[bool, Callable[[SpanStoreExporter], SpanProcessor] | None]] = {
        "OTEL_SDK_DISABLED=true": (True, None),
        "tracing + span store (shipped: one write per turn)": (False, None),
        "span store behind SimpleSpanProcessor": (False, SimpleSpanProcessor),
        "span store behind BatchSpanProcessor": (False, BatchSpanProcessor),
    }
    out: dict[str, dict[str, float]] = {}
    with ExitStack() as stack:
        coaches = {}
        for i, (name, (disabled, processor)) in enumerate(variants.items()):
            path = tmp / f"v{i}.db"
            coach = open_coach(stack, path, disabled, processor)
            thread = coach.thread()
            coach.turn(thread, "Title: Handover Helper")
            coaches[name] = (coach, thread, path, [])
        print(f"running {len(variants)} variants × {n} turns in lockstep…", file=sys.stderr)
        for i in range(1, n + 1):
            message = LEARNER[i % len(LEARNER)].format(i=i)
            for coach, thread, _, times in coaches.values():
                started = time.perf_counter()
                coach.turn(thread, message)
                times.append(time.perf_counter() - started)
        for name, (coach, _, _, times) in coaches.items():
            flush(coach.tracer_provider)
            out[name] = {"median_ms": statistics.median(times) * 1000,
                         "spans": span_count(coach)}
    for name, (_, _, path, _) in coaches.items():
        out[name]["bytes"] = float(db_bytes(path))
    return out


def report(n: int, results: dict[str, dict[str, float]]) -> str:
    names = list(results)
    off, on = results[names[0]], results[names[1]]
    ratio = on["median_ms"] / off["median_ms"]
    per_turn = (on["bytes"] - off["bytes"]) / (n + 1)
    lines = [
        f"## Tracing: turn overhead and span-store size ({n} offline turns each, SQLite)",
        "",
        f"Run on {time.strftime('%Y-%m-%d')} with `python bench/tracing.py --turns {n}`. "
        "Variants run in lockstep in one process; times are medians over all turns.",
        "",
        "| variant | median turn (ms) | vs disabled | spans stored | database |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | {r['median_ms']:.1f} | {r['median_ms'] / off['median_ms']:.3f}× "
                     f"| {int(r['spans']):,} | {r['bytes'] / 1e6:.2f} MB |")
    spans_per_turn = on["spans"] / (n + 1)
    lines += [
        "",
        f"Tracing with the local span store costs {ratio:.3f}× the disabled turn time "
        f"(target ≤ {TARGET:.2f}×: {'met' if ratio <= TARGET else 'NOT met'}). The store adds "
        f"{spans_per_turn:.1f} spans and about {per_turn / 1024:.1f} KB of database per turn "
        f"(≈ {per_turn * 600 / 1e6:.1f} MB per 600 turns); `coach prune --keep-days N` bounds it.",
        "The BatchSpanProcessor moves the writes to a background thread, so a turn does not "
        "wait for them, but the trace is readable only after the next flush and every Coach "
        "needs its own thread; one write at the end of each turn keeps turns within the "
        "target with neither cost.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = run(args.turns, Path(tmp))
    text = report(args.turns, results)
    print(text)
    if not args.no_write:
        write_section(ROOT / "BENCHMARKS.md", "## Tracing:", text)


if __name__ == "__main__":
    main()
