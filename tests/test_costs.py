"""`coach costs` and `telemetry.costs.cost_report` over a ledger written by hand: every
grouping sums correctly, unknown costs stay unknown, cache savings match a hand count."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from memory.models import LedgerEntry
from memory.store import open_engine, session_scope
from memory.users import ensure_user
from telemetry.costs import cost_report

COACH = str(Path(sys.executable).with_name("coach"))
SONNET, HAIKU, UNKNOWN = "claude-sonnet-5-5", "claude-haiku-5-5", "claude-nova-1"


def entry(user_id: int, model: str, when: str, purpose: str, thread: str | None,
          project: int | None, cost: str | None, **tokens: int) -> LedgerEntry:
    w5m, w1h = tokens.pop("w5m", 0), tokens.pop("w1h", 0)
    return LedgerEntry(user_id=user_id, model=model, purpose=purpose, thread_id=thread,
                       project_id=project, cost_usd=None if cost is None else Decimal(cost),
                       cache_creation_input_tokens=w5m + w1h,
                       cache_creation_5m_input_tokens=w5m, cache_creation_1h_input_tokens=w1h,
                       created_at=datetime.fromisoformat(when).replace(tzinfo=UTC),
                       request_id="req_test", **tokens)


# Costs by hand, USD per million tokens from the reference table:
#   claude-sonnet-5-5: input 2, 5m write 2.50, read 0.20 (0.10 from 2026-10-07), output 10
#   claude-haiku-5-5:  input 0.10, 1h write 0.20, read 0.01, output 0.50
# "saved" = every prompt token at the input rate (plus the same output) minus the cost.
ANN_ROWS = [
    # (500·2 + 10000·0.20 + 200·10)/1e6 = 0.005; uncached (10500·2 + 2000)/1e6 = 0.023
    (SONNET, "2026-09-30T12:00", "coach", "t1", 1, "0.005",
     {"input_tokens": 500, "output_tokens": 200, "cache_read_input_tokens": 10000}),
    # (1000·2 + 2000·2.50 + 9000·0.10 + 500·10)/1e6 = 0.0129; uncached 0.029; saved 0.0161
    (SONNET, "2026-11-01T10:00", "coach", "t1", 1, "0.0129",
     {"input_tokens": 1000, "output_tokens": 500, "cache_read_input_tokens": 9000,
      "w5m": 2000}),
    # (3000·2 + 1000·10)/1e6 = 0.016; nothing cached, nothing saved
    (SONNET, "2026-11-02T09:00", "coach", "t1", 1, "0.016",
     {"input_tokens": 3000, "output_tokens": 1000}),
    # (20000·0.10 + 10000·0.01 + 4000·0.50)/1e6 = 0.0041; uncached 0.005; saved 0.0009
    (HAIKU, "2026-11-02T15:00", "postmortem", "t2", 2, "0.0041",
     {"input_tokens": 20000, "output_tokens": 4000, "cache_read_input_tokens": 10000}),
    # a model the price table does not know: cost unknown
    (UNKNOWN, "2026-11-03T08:00", "eval", None, None, None,
     {"input_tokens": 700, "output_tokens": 300}),
    # (1000·0.10 + 4000·0.20 + 100·0.50)/1e6 = 0.00095; uncached 0.00055: the 1h write
    # cost more than it saved (-0.0004) since nothing read it back
    (HAIKU, "2026-11-03T09:00", "judge", "t2", 2, "0.00095",
     {"input_tokens": 1000, "output_tokens": 100, "w1h": 4000}),
]
# (100·2 + 100·10)/1e6 = 0.0012
BOB_ROW = (SONNET, "2026-11-03T10:00", "coach", "t3", 3, "0.0012",
           {"input_tokens": 100, "output_tokens": 100})

ANN_TOTAL = 0.03895          # 0.005 + 0.0129 + 0.016 + 0.0041 + 0.00095
ANN_SAVED = 0.0346           # 0.018 + 0.0161 + 0 + 0.0009 - 0.0004

# group key → (calls, cost_usd or None when every call's cost is unknown, unknown calls)
EXPECTED: dict[str, dict[str, tuple[int, float | None, int]]] = {
    "model": {SONNET: (3, 0.0339, 0), HAIKU: (2, 0.00505, 0), UNKNOWN: (1, None, 1)},
    "day": {"2026-11-02": (2, 0.0201, 0), "2026-11-01": (1, 0.0129, 0),
            "2026-09-30": (1, 0.005, 0), "2026-11-03": (2, 0.00095, 1)},
    "user": {"ann": (6, ANN_TOTAL, 1)},
    "thread": {"t1": (3, 0.0339, 0), "t2": (2, 0.00505, 0), "-": (1, None, 1)},
    "project": {"1": (3, 0.0339, 0), "2": (2, 0.00505, 0), "-": (1, None, 1)},
    "purpose": {"coach": (3, 0.0339, 0), "postmortem": (1, 0.0041, 0),
                "judge": (1, 0.00095, 0), "eval": (1, None, 1)},
}
ROW_KEYS = {"key", "calls", "input_tokens", "output_tokens", "cache_read_input_tokens",
            "cache_creation_input_tokens", "cost_usd"}


@pytest.fixture
def home(coach_home: str) -> Path:
    return Path(coach_home)


@pytest.fixture
def db(home: Path) -> Iterator[Engine]:
    """The default database of COACH_HOME, with ann's and bob's ledger rows."""
    engine = open_engine(f"sqlite:///{home / 'coach.db'}")
    ann, bob = ensure_user(engine, "ann"), ensure_user(engine, "bob")
    with session_scope(engine) as s:
        for model, when, purpose, thread, project, cost, tokens in ANN_ROWS:
            s.add(entry(ann, model, when, purpose, thread, project, cost, **tokens))
        model, when, purpose, thread, project, cost, tokens = BOB_ROW
        s.add(entry(bob, model, when, purpose, thread, project, cost, **tokens))
    yield engine
    engine.dispose()


def ann_id(engine: Engine) -> int:
    return ensure_user(engine, "ann")


def by_key(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["key"]: row for row in report["rows"]}


def coach_costs(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COACH_HOME": str(home), "COACH_USER": "ann"}
    env.pop("COACH_DATABASE_URL", None)
    return subprocess.run([COACH, "costs", *args], capture_output=True, text=True, env=env,
                          timeout=120)


# -- the report ------------------------------------------------------------------------------


@pytest.mark.parametrize("by", list(EXPECTED))
def test_each_grouping_sums_calls_and_costs(db, by):
    report = cost_report(db, by=by, user_id=ann_id(db))
    got = {key: (row["calls"], row["cost_usd"], row["unknown_cost_calls"])
           for key, row in by_key(report).items()}
    assert got == EXPECTED[by]
    assert report["total_usd"] == ANN_TOTAL and report["unknown_cost_calls"] == 1
    assert report["calls"] == 6
    assert sum(row["calls"] for row in report["rows"]) == 6
    # Dearest first; a group of unknown cost is never ranked as if it were free.
    costs = [row["cost_usd"] for row in report["rows"] if row["cost_usd"] is not None]
    assert costs == sorted(costs, reverse=True)


def test_token_sums_and_cache_savings_by_model(db):
    rows = by_key(cost_report(db, by="model", user_id=ann_id(db)))
    assert {k: rows[SONNET][k] for k in ROW_KEYS - {"key", "calls", "cost_usd"}} == {
        "input_tokens": 4500, "output_tokens": 1700, "cache_read_input_tokens": 19000,
        "cache_creation_input_tokens": 2000}
    assert (rows[HAIKU]["cache_read_input_tokens"],
            rows[HAIKU]["cache_creation_input_tokens"]) == (10000, 4000)
    # 0.018 (priced at September's 0.20 read rate) + 0.0161 (November's 0.10)
    assert rows[SONNET]["cache_savings_usd"] == pytest.approx(0.0341, abs=1e-12)
    assert rows[HAIKU]["cache_savings_usd"] == pytest.approx(0.0005, abs=1e-12)
    assert rows[UNKNOWN]["cache_savings_usd"] == 0
    report = cost_report(db, by="model", user_id=ann_id(db))
    assert report["cache_savings_usd"] == pytest.approx(ANN_SAVED, abs=1e-12)
    # 29,000 of 61,200 prompt tokens (26,200 input + 29,000 read + 6,000 written) were read
    assert report["cache_hit_share"] == round(29000 / 61200, 4)


def test_since_and_users_filter_the_rows(db):
    since = cost_report(db, by="model", user_id=ann_id(db),
                        since=datetime(2026, 11, 1, tzinfo=UTC))
    assert by_key(since)[SONNET]["calls"] == 2 and by_key(since)[SONNET]["cost_usd"] == 0.0289
    assert since["total_usd"] == pytest.approx(ANN_TOTAL - 0.005, abs=1e-12)
    everyone = by_key(cost_report(db, by="user"))
    assert {k: (r["calls"], r["cost_usd"]) for k, r in everyone.items()} == {
        "ann": (6, ANN_TOTAL), "bob": (1, 0.0012)}


def test_only_unknown_costs_total_unknown_not_zero(db):
    report = cost_report(db, by="purpose", user_id=ann_id(db),
                         since=datetime(2026, 11, 3, tzinfo=UTC))
    assert by_key(report)["eval"]["cost_usd"] is None
    carl = ensure_user(db, "carl")
    with session_scope(db) as s:
        s.add(entry(carl, UNKNOWN, "2026-11-04T08:00", "coach", "t9", None, None,
                    input_tokens=10, output_tokens=10))
    only_unknown = cost_report(db, user_id=carl)
    assert only_unknown["total_usd"] is None and only_unknown["unknown_cost_calls"] == 1
    assert cost_report(db, user_id=ensure_user(db, "dora"))["total_usd"] == 0


# -- the command line ------------------------------------------------------------------------


def test_cli_json_is_the_contract_shape_for_this_learner_only(db, home):
    result = coach_costs(home, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"total_usd", "rows"} <= set(report)
    assert all(ROW_KEYS <= set(row) for row in report["rows"])
    assert report["total_usd"] == ANN_TOTAL  # bob's $0.0012 is not in it
    rows = by_key(report)
    assert set(rows) == {SONNET, HAIKU, UNKNOWN}
    assert rows[UNKNOWN]["cost_usd"] is None and rows[UNKNOWN]["unknown_cost_calls"] == 1
    assert report["unknown_cost_calls"] == 1
    assert report["cache_savings_usd"] == pytest.approx(ANN_SAVED, abs=1e-12)


def test_cli_all_users(db, home):
    result = coach_costs(home, "--by", "user", "--all-users", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {k: r["cost_usd"] for k, r in by_key(report).items()} == {
        "ann": ANN_TOTAL, "bob": 0.0012}
    assert report["total_usd"] == pytest.approx(ANN_TOTAL + 0.0012, abs=1e-12)


def test_cli_csv_since_a_date(db, home):
    result = coach_costs(home, "--by", "day", "--since", "2026-11-01", "--csv")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = lines[0].split(",")
    assert header[0] == "key" and ROW_KEYS <= set(header)
    rows = {r["key"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert len(lines) == 1 + len(rows) == 4  # header and one line per day; not September
    assert set(rows) == {"2026-11-01", "2026-11-02", "2026-11-03"}
    assert float(rows["2026-11-02"]["cost_usd"]) == 0.0201
    assert rows["2026-11-03"]["calls"] == "2"
    assert rows["2026-11-03"]["unknown_cost_calls"] == "1"


def test_cli_rejects_an_unknown_grouping(db, home):
    result = coach_costs(home, "--by", "colour")
    assert result.returncode == 2
    assert "--by" in result.stderr and "model" in result.stderr
