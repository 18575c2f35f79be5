"""Load: concurrent learners coaching over HTTP, against real `coach serve` processes.

20 learners × 20 turns each (by default), all at once, with the offline model: on SQLite
with one worker, then on PostgreSQL with 4 workers (a fresh schema in the test database,
dropped afterwards). Reports turn latency p50/p95, throughput and errors, then checks
the database: every turn stored exactly once (thread counters, one learner message per
turn) and every ledger row exactly once (one per model call span of each turn's trace,
no duplicates, tokens matching what the API returned). Writes `## Load: …` to
BENCHMARKS.md. Only 127.0.0.1 is used.

    .venv/bin/python bench/load.py [--learners 20] [--turns 20] [--pg URL] [--no-write]

`LOAD_KEEP_LOG=DIR` copies each server's log there (it lives in a temporary folder).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, func  # noqa: E402
from sqlmodel import select  # noqa: E402

from bench.turns import LEARNER, write_section  # noqa: E402
from evals.serving import free_port, wait_until_healthy  # noqa: E402
from memory.accounts import add_user  # noqa: E402
from memory.models import LedgerEntry, StoredSpan, Thread, TranscriptEntry  # noqa: E402
from memory.store import open_engine, session_scope  # noqa: E402

COACH = Path(sys.executable).with_name("coach")
PG = os.environ.get("COACH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
STEP_ONE = ("Title: Shift Notes Problem: Night-shift nurses hand over ten to twenty patients "
            "in a few minutes from handwritten notes, and abnormal vitals get lost when the ward "
            "is busy. Audience: ward nurses Why me: six years of night shifts Success: flags 95% "
            "of abnormal vitals Capabilities: structured_output")


@dataclass
class Learner:
    token: str
    thread: str = ""
    latencies: list[float] = field(default_factory=list)
    turns: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@contextmanager
def pg_schema(base: str) -> Iterator[str]:
    import psycopg

    schema = f"load_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"{base}?options=-csearch_path%3D{schema}"
        finally:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def coach_serve(db: str, workers: int, home: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "COACH_HOME": str(home), "COACH_BUDGET_USD": "none"}
    with (home.parent / "serve.log").open("w") as log:
        proc = subprocess.Popen([str(COACH), "--db", db, "--model", "offline", "serve",
                                 "--port", str(port), "--workers", str(workers)],
                                env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base + "/healthz", proc, 120,
                           "coach serve did not start (LOAD_KEEP_LOG=DIR keeps its log)")
        time.sleep(1.0 * workers)  # let every worker finish starting, not only the first
        yield base
    finally:
        proc.terminate()
        proc.wait(60)
        if os.environ.get("LOAD_KEEP_LOG"):
            keep = Path(os.environ["LOAD_KEEP_LOG"]) / "serve.log"  # for a failed run
            keep.write_text((home.parent / "serve.log").read_text())


def coach_learner(base: str, learner: Learner, turns: int) -> None:
    headers = {"Authorization": f"Bearer {learner.token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=120) as c:
        learner.thread = c.post("/api/threads").json()["thread_id"]
        for i in range(turns):
            text = STEP_ONE if i == 0 else LEARNER[i % len(LEARNER)].format(i=i)
            started = time.perf_counter()
            try:
                r = c.post(f"/api/threads/{learner.thread}/messages", json={"text": text})
            except httpx.HTTPError as exc:
                learner.errors.append(type(exc).__name__)
                continue
            learner.latencies.append(time.perf_counter() - started)
            if r.status_code != 200 or "error" in r.json():
                learner.errors.append(f"{r.status_code}: {r.text[:120]}")
                continue
            learner.turns.append(r.json())


def stored_once(engine: Engine, learners: list[Learner], turns: int) -> dict[str, Any]:
    """What the database holds, against what the API said happened."""
    problems: list[str] = []
    ledger_rows = 0
    with session_scope(engine) as s:
        for lr in learners:
            thread = s.get(Thread, lr.thread)
            if thread is None or thread.turns != turns:
                problems.append(f"{lr.thread}: {thread and thread.turns} turns, not {turns}")
            asked = Counter(s.exec(select(TranscriptEntry.turn).where(
                TranscriptEntry.thread_id == lr.thread, TranscriptEntry.role == "user",
                TranscriptEntry.seq == 0)).all())
            if asked != Counter(range(1, turns + 1)):
                problems.append(f"{lr.thread}: learner messages per turn {dict(asked)}")
            rows = s.exec(select(LedgerEntry).where(LedgerEntry.thread_id == lr.thread)).all()
            ledger_rows += len(rows)
            ids = Counter((r.trace_id, r.span_id) for r in rows)
            if max(ids.values(), default=1) > 1:
                problems.append(f"{lr.thread}: a ledger row stored twice")
            traces = [t["trace_id"] for t in lr.turns]
            calls = s.exec(select(func.count()).select_from(StoredSpan).where(
                StoredSpan.trace_id.in_(traces),  # type: ignore[attr-defined]
                StoredSpan.name.like("chat %"))).one()  # type: ignore[attr-defined]
            if calls != len(rows):
                problems.append(f"{lr.thread}: {len(rows)} ledger rows, {calls} model calls")
            sent = sum(t["usage"]["input_tokens"] for t in lr.turns)
            if sent != sum(r.input_tokens for r in rows):
                problems.append(f"{lr.thread}: ledger tokens differ from the API's")
    return {"ledger_rows": ledger_rows, "problems": problems}


def run(name: str, db: str, workers: int, n_learners: int, turns: int) -> dict[str, Any]:
    print(f"{name}: {n_learners} learners × {turns} turns, {workers} worker(s)…",
          file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_engine(db)
        try:
            learners = [Learner(add_user(engine, f"learner-{i:02d}")) for i in range(n_learners)]
            with coach_serve(db, workers, Path(tmp) / "home") as base:
                started = time.perf_counter()
                with ThreadPoolExecutor(n_learners) as pool:
                    list(pool.map(lambda lr: coach_learner(base, lr, turns), learners))
                wall = time.perf_counter() - started
            check = stored_once(engine, learners, turns)
        finally:
            engine.dispose()
    latencies = sorted(t * 1000 for lr in learners for t in lr.latencies)
    return {"name": name, "workers": workers, "wall": wall, "latencies": latencies,
            "ok": sum(len(lr.turns) for lr in learners),
            "errors": [e for lr in learners for e in lr.errors], **check}


def row(r: dict[str, Any], total: int) -> str:
    lat = r["latencies"]
    p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))]
    check = "each once ✓" if not r["problems"] else f"{len(r['problems'])} problems"
    return (f"| {r['name']} | {r['workers']} | {r['ok']}/{total} | {len(r['errors'])} | "
            f"{statistics.median(lat):.0f} | {p95:.0f} | {lat[-1]:.0f} | "
            f"{r['ok'] / r['wall']:.1f} | {r['ledger_rows']} | {check} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learners", type=int, default=20)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--pg", default=PG, help="PostgreSQL URL (a schema is made in it)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    n, turns = args.learners, args.turns
    with tempfile.TemporaryDirectory() as tmp:
        results = [run("SQLite", f"sqlite:///{Path(tmp) / 'load.db'}", 1, n, turns)]
    with pg_schema(args.pg) as url:
        results.append(run("PostgreSQL", url, 4, n, turns))
    lines = [
        f"## Load: {n} learners × {turns} turns over HTTP (offline model)",
        "",
        f"Run on {time.strftime('%Y-%m-%d')} with `python bench/load.py` on this project's "
        f"machine ({os.cpu_count()} cores): `coach serve` subprocesses on 127.0.0.1, every "
        f"learner at once on its own thread, each turn a `POST /api/threads/{{id}}/messages` "
        "(the non-streaming variant); the load generator shares the machine.",
        "",
        "| database | workers | turns ok | errors | p50 (ms) | p95 (ms) | max (ms) | "
        "turns/s | ledger rows | stored |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *[row(r, n * turns) for r in results],
        "",
        "Stored: each thread's turn counter equals the turns sent, each turn has exactly one "
        "learner message in the transcript, and the ledger has one row per model-call span of "
        "each turn's trace (no duplicate trace/span ids) whose input tokens add up to what the "
        "API returned.",
        "",
        f"An offline turn is CPU work, so throughput is bounded by the {os.cpu_count()} cores "
        "(shared with the load generator) and latency is mostly queueing; Claude turns mostly "
        "wait on the network, and each worker runs up to 16 turns at once.",
        "",
    ]
    for r in results:
        errors = [f"{count}× {e}" for e, count in Counter(r["errors"]).most_common(3)]
        lines += [f"- {r['name']}: {p}" for p in r["problems"][:5] + errors]
    report = "\n".join(lines).rstrip() + "\n"
    print(report)
    if not args.no_write:
        write_section(ROOT / "BENCHMARKS.md", "## Load:", report)


if __name__ == "__main__":
    main()
