"""The layer contract (pyproject's [tool.importlinter]) covers every module of `agent`, so a
new module cannot slip past it, and `lint-imports` keeps it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = config["contracts"][0]["layers"]
    return [m.strip() for layer in layers for m in layer.replace(":", "|").split("|")]


def test_every_agent_module_has_a_layer() -> None:
    named = set(_layers())
    modules = {f"agent.{p.stem}" for p in (ROOT / "agent").glob("*.py") if p.stem != "__init__"}
    modules |= {f"agent.{p.name}" for p in (ROOT / "agent").iterdir()
                if (p / "__init__.py").exists()}
    assert modules - named == set(), "give each new agent module a layer in pyproject.toml"
    assert {"seam", "memory", "tools", "telemetry", "evals"} <= named


def test_the_contract_holds() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 kept, 0 broken" in done.stdout
