"""Shared helpers for tests that drive the real `coach` executable in subprocesses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agent.demo import script

COACH = Path(sys.executable).with_name("coach")

TURN_KEYS = {"thread_id", "turn", "reply", "step", "project_id", "tool_calls", "usage",
             "cost_usd", "model", "trace_id"}
TOOL_CALL_KEYS = {"name", "input", "ok"}
USAGE_KEYS = {"input_tokens", "output_tokens", "cache_read_input_tokens",
              "cache_creation_input_tokens"}
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def coach_env(home: str | Path, *, private_urls: bool = False, **extra: str) -> dict[str, str]:
    """A copy of the (already cleaned) test environment for a `coach` subprocess."""
    env = dict(os.environ)
    env["COACH_HOME"] = str(home)
    env.pop("OTEL_SDK_DISABLED", None)
    env["COLUMNS"] = "80"  # what a pipe gets; keeps rich's wrapping the same everywhere
    if private_urls:
        env["COACH_ALLOW_PRIVATE_URLS"] = "1"
    env.update(extra)
    return env


def run_coach(*args: str, env: dict[str, str], stdin: str | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(COACH), *args], input=stdin if stdin is not None else "",
                          env=env, capture_output=True, text=True, timeout=timeout)


def run_together(*commands: tuple[str, ...], env: dict[str, str],
                 stdin: str | None = None) -> list[subprocess.CompletedProcess[str]]:
    """Independent commands at once: the interpreter's start-up dominates each run."""
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda args: run_coach(*args, env=env, stdin=stdin), commands))


def start_coach(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([str(COACH), *args], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def lines_in(messages: list[str]) -> str:
    """Learner messages as `coach chat` reads them from a pipe: one per line."""
    assert all("\n" not in m for m in messages)
    return "".join(m + "\n" for m in messages)


def learner_messages(repo: str | Path, url: str) -> list[str]:
    """The demo's scripted learner, each message folded onto one line.

    The post-mortem keeps its section names ("What worked", ...) after folding.
    """
    return [" ".join(message.split()) for _heading, message in script(str(repo), url)]


def json_turns(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def assert_turn_shape(turn: dict[str, Any]) -> None:
    """One `coach chat --json` line has exactly the contract's keys and types."""
    assert set(turn) == TURN_KEYS, set(turn) ^ TURN_KEYS
    assert isinstance(turn["thread_id"], str) and turn["thread_id"]
    assert isinstance(turn["turn"], int) and turn["turn"] >= 1
    assert isinstance(turn["reply"], str) and turn["reply"].strip()
    assert isinstance(turn["tool_calls"], list)
    for call in turn["tool_calls"]:
        assert set(call) == TOOL_CALL_KEYS, call
        assert isinstance(call["name"], str) and isinstance(call["input"], dict)
        assert isinstance(call["ok"], bool)
    assert set(turn["usage"]) == USAGE_KEYS
    assert all(isinstance(v, int) and v >= 0 for v in turn["usage"].values())
    assert turn["trace_id"] is not None and TRACE_ID.match(turn["trace_id"]), turn["trace_id"]


def one_error_line(stderr: str) -> str:
    """stderr of a failed command: one line, `coach: error: ...`, no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("coach: error:"), stderr
    return lines[0]
