"""Mutation testing of the safety-critical modules, one module at a time (`make mutation`).

Each module is mutated by mutmut (comparison flips, boundaries ±1, removed calls and
branches, changed constants) in a scratch copy of the working tree, and every mutant is
run against that module's own tests. The score counts killed mutants over all mutants;
survivors are printed with their diffs so each can be killed by a test or explained as
equivalent in BENCHMARKS.md. CPU-heavy: not part of `make test`.

    python bench/mutation.py [MODULE ...] [--children N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Each module and the tests that are its specification.
MODULES = {
    "tools/gates.py": ["tests/test_gates.py", "tests/test_gate_messages.py"],
    "tools/deployment.py": ["tests/test_deployment.py"],
    "seam/pricing.py": ["tests/test_pricing.py"],
    "tools/grounding.py": ["tests/test_grounding.py"],
}
PACKAGES = ["seam", "agent", "tools", "memory", "telemetry", "evals", "langgraph.json"]
STATUS = re.compile(r"^\s*(\S+): (killed|survived|timeout|suspicious|no tests|skipped|"
                    r"segfault|not checked|caught by type check)\s*$")


def scratch_copy(into: Path) -> None:
    """The working tree as it is (committed or not), without build and cache folders."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        source = ROOT / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)


def mutmut_config(module: str, tests: list[str]) -> str:
    lines = "\n    ".join(PACKAGES)
    return (f"[mutmut]\nsource_paths={module}\npytest_add_cli_args_test_selection="
            + "\n    ".join(tests) + f"\nalso_copy=\n    {lines}\n"
            "pytest_add_cli_args=-p no:cacheprovider -q\n")


def run_module(module: str, children: int) -> dict[str, object]:
    tests = MODULES[module]
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        work = Path(tmp)
        scratch_copy(work)
        # pyproject's [tool.mutmut] would win over setup.cfg; the project keeps none.
        (work / "setup.cfg").write_text(mutmut_config(module, tests))
        env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
        started = time.monotonic()
        run = subprocess.run([str(BIN / "mutmut"), "run", "--max-children", str(children)],
                             cwd=work, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - started
        listed = subprocess.run([str(BIN / "mutmut"), "results", "--all", "true"], cwd=work,
                                env=env, capture_output=True, text=True).stdout
        statuses: dict[str, str] = {}
        for line in listed.splitlines():
            m = STATUS.match(line)
            if m:
                statuses[m.group(1)] = m.group(2)
        survivors = {}
        for name, status in statuses.items():
            if status != "killed":
                survivors[name] = subprocess.run(
                    [str(BIN / "mutmut"), "show", name], cwd=work, env=env,
                    capture_output=True, text=True).stdout
    killed = sum(1 for s in statuses.values() if s == "killed")
    total = len(statuses)
    if not total:
        print(run.stdout[-3000:], run.stderr[-3000:], file=sys.stderr)
    return {"module": module, "tests": tests, "mutants": total, "killed": killed,
            "score": round(100 * killed / total, 1) if total else None,
            "seconds": round(seconds), "survivors": survivors,
            "statuses": {s: list(statuses.values()).count(s) for s in set(statuses.values())}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", default=list(MODULES))
    parser.add_argument("--children", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    for module in args.modules:  # one at a time: each run already loads the CPU
        result = run_module(module, args.children)
        results.append(result)
        print(f"{module}: {result['killed']}/{result['mutants']} killed "
              f"({result['score']}%) in {result['seconds']} s {result['statuses']}")
        for name, diff in result["survivors"].items():  # type: ignore[union-attr]
            print(f"--- survivor {name}\n{diff}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
