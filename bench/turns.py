"""Turn time and database growth: the coach vs a bare LangGraph tool loop.

Runs both in one process, on SQLite, for N turns (600 by default) and writes the
result to BENCHMARKS.md. Baseline: a two-node agent/tool loop with MessagesState
on SqliteSaver, the way LangGraph's quick-starts build one.

    .venv/bin/python bench/turns.py [--turns 600] [--no-write]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, MessagesState, StateGraph

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.offline import OfflineCoach  # noqa: E402
from agent.session import Coach  # noqa: E402
from agent.settings import Settings  # noqa: E402

LEARNER = [
    "status",
    "Worked: keeping the first version to one feature (round {i})",
    "what should I do about flaky evals?",
    "Problem: nurses on night shifts lose abnormal vitals in long handovers because notes are "
    "handwritten, rushed and inconsistent across wards, revision {i}",
    "Tradeoff: two model calls per note, slower but better recall (round {i})",
    "help",
]


def db_bytes(path: Path) -> int:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def timed_turns(turn: Callable[[int], None], n: int) -> list[float]:
    times = []
    for i in range(1, n + 1):
        started = time.perf_counter()
        turn(i)
        times.append(time.perf_counter() - started)
    return times


CHECKPOINT_BYTES: dict[int, int] = {}


def checkpoint_bytes(path: Path) -> int:
    """What the checkpointer keeps for the thread: checkpoints plus pending writes."""
    conn = sqlite3.connect(path)
    total = sum(conn.execute(q).fetchone()[0] or 0 for q in (
        "SELECT SUM(LENGTH(checkpoint) + LENGTH(metadata)) FROM checkpoints",
        "SELECT SUM(LENGTH(value)) FROM writes"))
    conn.close()
    return int(total)


def run_coach(path: Path, n: int) -> list[float]:
    settings = Settings.load(db=f"sqlite:///{path}", user="bench", model="offline", env={})
    with Coach.open(settings, model=OfflineCoach()) as coach:
        thread = coach.thread()
        coach.turn(thread, "Title: Handover Helper")

        def turn(i: int) -> None:
            coach.turn(thread, LEARNER[i % len(LEARNER)].format(i=i))
            if i in (10, n):
                CHECKPOINT_BYTES[i] = checkpoint_bytes(path)

        return timed_turns(turn, n)


def bare_loop(checkpointer: SqliteSaver):  # type: ignore[no-untyped-def]
    def agent(state: MessagesState) -> dict:
        last = state["messages"][-1]
        if isinstance(last, HumanMessage):
            call = {"name": "record_lesson", "args": {"text": last.content},
                    "id": f"c{len(state['messages'])}"}
            return {"messages": [AIMessage(content="", tool_calls=[call])]}
        return {"messages": [AIMessage(content="Noted. What else?")]}

    def tools(state: MessagesState) -> dict:
        call = state["messages"][-1].tool_calls[0]  # type: ignore[union-attr]
        return {"messages": [ToolMessage(content='{"ok": true}', tool_call_id=call["id"])]}

    def route(state: MessagesState) -> str:
        return "tools" if state["messages"][-1].tool_calls else END  # type: ignore[union-attr]

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", tools)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=checkpointer)


def run_bare(path: Path, n: int) -> list[float]:
    conn = sqlite3.connect(path, check_same_thread=False)
    saver = SqliteSaver(conn)
    graph = bare_loop(saver)
    config = {"configurable": {"thread_id": "bench"}}
    times = timed_turns(lambda i: graph.invoke(
        {"messages": [HumanMessage(LEARNER[i % len(LEARNER)].format(i=i))]}, config), n)
    conn.close()
    return times


def window(times: list[float], around: int, half: int = 5) -> float:
    lo, hi = max(0, around - half - 1), min(len(times), around + half - 1)
    return statistics.median(times[lo:hi]) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=600)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    n = args.turns
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        runs = (("bare LangGraph loop (baseline)", run_bare), ("portfolio-coach", run_coach))
        for name, run in runs:
            path = Path(tmp) / f"{name.split()[0]}.db"
            print(f"running {name}: {n} turns…", file=sys.stderr)
            times = run(path, n)
            rows.append((name, window(times, 10), window(times, n), db_bytes(path)))
    base, coach = rows
    lines = [
        f"## Turns: coach vs bare LangGraph loop ({n} turns, SQLite, offline model)",
        "",
        f"Run on {time.strftime('%Y-%m-%d')} with `python bench/turns.py --turns {n}`. "
        "Times are medians of 10 turns around the turn named.",
        "",
        f"| | turn 10 (ms) | turn {n} (ms) | turn {n} / turn 10 | database after {n} turns |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, t10, tn, size in rows:
        lines.append(f"| {name} | {t10:.1f} | {tn:.1f} | {tn / t10:.2f}× | {size / 1e6:.2f} MB |")
    lines += [
        "",
        f"Coach vs baseline: turn {n} time {coach[2] / base[2]:.2f}×, database size "
        f"{coach[3] / base[3]:.3f}×. Targets: coach turn {n} ≤ 1.2× its turn 10 "
        f"({'met' if coach[2] <= 1.2 * coach[1] else 'NOT met'}); ≤ 10 MB after 600 turns "
        f"({'met' if coach[3] <= 10e6 else 'NOT met'}).",
        "",
        f"Checkpoint bytes kept for the coach's thread: {CHECKPOINT_BYTES.get(10, 0):,} after "
        f"turn 10, {CHECKPOINT_BYTES.get(n, 0):,} after turn {n} (one pruned checkpoint of a "
        "bounded window). The rest of the coach's database is the append-only transcript, "
        "ledger and span store, which grow by design (`coach prune` bounds the spans).",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        write_section(ROOT / "BENCHMARKS.md", "## Turns:", report)


def write_section(path: Path, prefix: str, section: str) -> None:
    """Replace this benchmark's section of BENCHMARKS.md, keeping the others."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    parts = text.split("\n## ")
    kept = [p for p in parts[1:] if not ("## " + p).startswith(prefix)]
    head = parts[0].rstrip() + "\n\n"
    body = "".join("## " + p.rstrip() + "\n\n" for p in kept)
    path.write_text(head + body + section.rstrip() + "\n")


if __name__ == "__main__":
    main()
