"""Reliability under faults and load, against real processes on 127.0.0.1 only.

Writes `## Reliability: …` to BENCHMARKS.md with four tables:
- the fault matrix: fault × turns completed / failed clearly / records lost / duplicated
  (a `coach chat` SIGKILLed mid model call and mid tool call, then resumed; upstream 401,
  529 and a stream cut after message_start; a `coach serve` worker SIGKILLed under load;
  with `--pg-restart`, PostgreSQL restarted while learners are mid-conversation);
- the secret-leak sweep: a gateway answers 401 quoting the request's headers (the key);
  every sink is searched for the key;
- a rate-limit flood (bad tokens, bad sign-ins, thread creation) from another process at
  100 requests/s against a learner's turns: 429s counted, the learner's p95 during the
  flood against quiet;
- fairness: one learner sends 17 turns at once that fetch a slow host (with the per-learner
  turn cap and without), or six learners three each; another learner asks `help`: their
  p95 while the slow checks are held against quiet, and how many checks were refused as
  busy by the worker's bound on network checks.
Every loop is bounded. `--pg-restart` restarts the shared PostgreSQL server
(`pg_ctlcluster 15 main restart`): run it only when nothing else uses that server.

    .venv/bin/python bench/reliability.py [--no-write] [--pg-restart] [--only flood|fairness]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlmodel import select  # noqa: E402

from agent.demo import script  # noqa: E402
from bench.turns import write_section  # noqa: E402
from evals.messages_api import MessagesAPI, error, text_reply, tool_reply  # noqa: E402
from evals.serving import free_port, wait_until_healthy  # noqa: E402
from memory.accounts import add_user  # noqa: E402
from memory.models import Project, Thread, TranscriptEntry  # noqa: E402
from memory.store import open_engine, session_scope  # noqa: E402
from memory.users import ensure_user  # noqa: E402
from tools import TOOLS, ToolContext  # noqa: E402

COACH = Path(sys.executable).with_name("coach")
MODEL = "claude-sonnet-5-5"
PG = os.environ.get("COACH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PROJECT = {"title": "Handover Helper", "problem": "Night-shift nurses hand over ten to twenty "
           "patients in a few minutes from handwritten notes, and abnormal vitals get lost.",
           "audience": "ward nurses", "personal_context": "six years of night shifts",
           "success_criteria": "flags 95% of abnormal vitals"}
STEPS = [m for _, m in script("https://github.com/example/handover-helper", "https://x/")]


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else values[0]


def base_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COACH_", "ANTHROPIC_",
                                                                    "OTEL_"))}
    return {**env, "COACH_HOME": str(home), "COACH_BUDGET_USD": "none", **extra}


@contextmanager
def serve(db: str, home: Path, env: dict[str, str], workers: int = 1) -> Iterator[tuple[str, Any]]:
    port = free_port()
    log = (home.parent / f"serve-{port}.log").open("w")
    proc = subprocess.Popen([str(COACH), "--db", db, "serve", "--port", str(port),
                             "--workers", str(workers)], env=env, stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base + "/healthz", proc, 90,
                           f"coach serve did not start: see {log.name}")
        time.sleep(1.0 * workers)
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()


class SlowSite:
    """A deployed app that answers after `delay` seconds (longer than the 10 s check)."""

    def __init__(self, delay: float = 12.0):
        stop = self.stop = threading.Event()

        class Slow(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                stop.wait(delay)
                try:
                    self.send_response(200)
                    self.end_headers()
                except OSError:
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


class Collector:
    """An OTLP/HTTP receiver keeping each request's raw (decompressed) bytes."""

    def __init__(self) -> None:
        bodies = self.bodies = []  # type: list[bytes]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                bodies.append(body)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def run_chat(db: str, env: dict[str, str], lines: list[str], *args: str,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(COACH), "--db", db, "chat", "--json", *args],
                          input="".join(m + "\n" for m in lines), env=env,
                          capture_output=True, text=True, timeout=timeout)


def stored(db: str) -> dict[str, Any]:
    engine = open_engine(db)
    try:
        with session_scope(engine) as s:
            rows = s.exec(select(TranscriptEntry)).all()
            users = [json.dumps(r.content) for r in rows if r.role == "user"]
            return {"users": users, "keys": [(r.thread_id, r.turn, r.seq) for r in rows],
                    "projects": len(s.exec(select(Project)).all()),
                    "leases": [t.lease_owner for t in s.exec(select(Thread)).all()]}
    finally:
        engine.dispose()


# -- the fault matrix -------------------------------------------------------------------------

def outcome(db: str, sent: list[str], completed: int, failed: int) -> dict[str, Any]:
    """Lost: a message the learner sent that is not in the transcript; duplicated: a
    transcript key or learner message stored twice, or a second project."""
    got = stored(db)
    lost = sum(1 for m in sent if not any(json.dumps(m)[1:-1] in u for u in got["users"]))
    dup = (len(got["keys"]) - len(set(got["keys"]))) + max(0, got["projects"] - 1)
    return {"completed": completed, "failed": failed, "lost": lost, "duplicated": dup}


def chat_killed(tmp: Path, where: str) -> dict[str, Any]:
    db = f"sqlite:///{tmp / f'kill-{where}.db'}"
    slow = SlowSite(20)
    with MessagesAPI() as api:
        env = base_env(tmp / "home", ANTHROPIC_API_KEY="bench-key", COACH_MODEL=MODEL,
                       ANTHROPIC_BASE_URL=api.base_url, COACH_ALLOW_PRIVATE_URLS="1")
        api.queue(tool_reply("create_project", PROJECT), text_reply("Created."))
        done = run_chat(db, env, ["I want a handover helper"], "--thread", "t")
        completed = int(done.returncode == 0)
        if where == "model call":
            api.queue({**text_reply("never seen"), "sleep": 8})
        else:
            api.queue(tool_reply("check_deployment", {"project_id": 1, "url": slow.url}))
        before = len(api.message_requests)
        proc = subprocess.Popen([str(COACH), "--db", db, "chat", "--json", "--thread", "t"],
                                env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, text=True)
        assert proc.stdin is not None
        proc.stdin.write("URL: it is live\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 30
        while len(api.message_requests) <= before and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5 if where == "model call" else 1.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc.stdin.close()
        api.script.clear()
        api.queue(text_reply("Welcome back."))
        started = time.monotonic()
        again = run_chat(db, env, ["status please"], "--thread", "t")
        resumed_s = time.monotonic() - started
        completed += int(again.returncode == 0)
    slow.close()
    result = outcome(db, ["I want a handover helper", "URL: it is live", "status please"],
                     completed, 1)  # the killed turn: closed as unfinished in the transcript
    result["note"] = f"resumed in {resumed_s:.1f} s; leases left {stored(db)['leases']}"
    return result


def upstream_fault(tmp: Path, name: str, item: dict[str, Any]) -> dict[str, Any]:
    db = f"sqlite:///{tmp / f'fault-{name}.db'}"
    with MessagesAPI() as api:
        env = base_env(tmp / "home", ANTHROPIC_API_KEY="bench-key", COACH_MODEL=MODEL,
                       ANTHROPIC_BASE_URL=api.base_url)
        api.queue(item, text_reply("Back again."))
        done = run_chat(db, env, ["hello", "hello again"], "--thread", "t")
        turns = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    failed = sum(1 for t in turns if t.get("error"))
    return {**outcome(db, ["hello", "hello again"], len(turns) - failed, failed),
            "note": (turns[0].get("error") or "")[:60]}


def worker_killed(tmp: Path, learners: int = 8, turns: int = 8) -> dict[str, Any]:
    db = f"sqlite:///{tmp / 'workers.db'}"
    engine = open_engine(db)
    tokens = [add_user(engine, f"w{i}") for i in range(learners)]
    engine.dispose()
    env = base_env(tmp / "home", COACH_MODEL="offline")
    sent: list[str] = []
    stats = {"completed": 0, "failed": 0}
    lock = threading.Lock()
    with serve(db, tmp / "home", env, workers=2) as (base, proc):
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                  text=True).stdout.split()

        def learner(i: int) -> None:
            with httpx.Client(base_url=base, timeout=60,
                              headers={"Authorization": f"Bearer {tokens[i]}"}) as c:
                thread = None
                for _ in range(5):
                    try:
                        thread = c.post("/api/threads").json()["thread_id"]
                        break
                    except (httpx.HTTPError, ValueError):
                        time.sleep(0.5)
                for n in range(turns):
                    text = STEPS[0] if n == 0 else f"status {i}-{n}"
                    for _attempt in range(5):  # a learner retries a turn that failed
                        try:
                            r = c.post(f"/api/threads/{thread}/messages", json={"text": text})
                        except httpx.HTTPError:
                            with lock:
                                stats["failed"] += 1
                            time.sleep(0.5)
                            continue
                        with lock:
                            if r.status_code == 200:
                                stats["completed"] += 1
                                sent.append(text)
                                break
                            stats["failed"] += 1
                        time.sleep(0.5)

        with ThreadPoolExecutor(learners) as pool:
            futures = [pool.submit(learner, i) for i in range(learners)]
            time.sleep(1.5)
            if children:
                os.kill(int(children[0]), signal.SIGKILL)
            for f in futures:
                f.result()
    got = stored(db)
    lost = sum(1 for m in sent if not any(json.dumps(m)[1:-1] in u for u in got["users"]))
    dup = len(got["keys"]) - len(set(got["keys"]))
    return {**stats, "lost": lost, "duplicated": dup,
            "note": f"{learners} learners × {turns} turns, 2 workers, one SIGKILLed; "
                    "failed requests retried"}


def pg_restarted(tmp: Path, learners: int = 20, turns: int = 6) -> dict[str, Any]:
    import psycopg

    schema = f"rel_{secrets.token_hex(4)}"
    admin = PG.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    db = f"{PG}?options=-csearch_path%3D{schema}"
    try:
        engine = open_engine(db)
        tokens = [add_user(engine, f"p{i}") for i in range(learners)]
        engine.dispose()
        env = base_env(tmp / "home", COACH_MODEL="offline")
        sent: list[str] = []
        stats = {"completed": 0, "failed": 0}
        answers: dict[str, int] = {}
        lock = threading.Lock()
        with serve(db, tmp / "home", env, workers=2) as (base, _):
            def learner(i: int) -> None:
                with httpx.Client(base_url=base, timeout=60,
                                  headers={"Authorization": f"Bearer {tokens[i]}"}) as c:
                    thread = c.post("/api/threads").json()["thread_id"]
                    for n in range(turns):
                        text = f"status {i}-{n}"
                        for _attempt in range(10):
                            try:
                                r = c.post(f"/api/threads/{thread}/messages",
                                           json={"text": text})
                                ok, answer = r.status_code == 200, str(r.status_code)
                            except httpx.HTTPError as exc:
                                ok, answer = False, type(exc).__name__
                            with lock:
                                stats["completed" if ok else "failed"] += 1
                                answers[answer] = answers.get(answer, 0) + 1
                                if ok:
                                    sent.append(text)
                            if ok:
                                break
                            time.sleep(1.0)
                        time.sleep(0.3)

            with ThreadPoolExecutor(learners) as pool:
                futures = [pool.submit(learner, i) for i in range(learners)]
                time.sleep(1.0)
                subprocess.run(["pg_ctlcluster", "15", "main", "restart"], check=True)
                for f in futures:
                    f.result()
        got = stored(db)
        lost = sum(1 for m in sent if not any(json.dumps(m)[1:-1] in u for u in got["users"]))
        dup = len(got["keys"]) - len(set(got["keys"]))
        return {**stats, "lost": lost, "duplicated": dup,
                "note": f"{learners} learners × {turns} turns, 2 workers, PostgreSQL restarted "
                        f"mid-way; failed turns retried (answers {dict(sorted(answers.items()))})"}
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


# -- the secret-leak sweep -----------------------------------------------------------------

def leak_sweep(tmp: Path) -> dict[str, int]:
    key = "gw-" + secrets.token_hex(20)
    found: dict[str, int] = {}
    collector = Collector()
    gateway = error(401, "authentication_error", "invalid x-api-key", echo_headers=True)
    with MessagesAPI(default=gateway) as api:
        env = base_env(tmp / "home", ANTHROPIC_API_KEY=key, ANTHROPIC_BASE_URL=api.base_url,
                       COACH_MODEL=MODEL, OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
                       OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
        data = tmp / "leak"
        db = f"sqlite:///{data / 'coach.db'}"
        plain = run_chat(db, env, ["hello"])
        debug = run_chat(db, {**env, "COACH_DEBUG": "1"}, ["hello again"])
        found["coach chat stdout (replies)"] = (plain.stdout + debug.stdout).count(key)
        found["coach chat stderr (with and without --debug)"] = \
            (plain.stderr + debug.stderr).count(key)
        engine = open_engine(db)
        token = add_user(engine, "web")
        engine.dispose()
        bodies = []
        with serve(db, tmp / "home", env) as (base, _), httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
            thread = c.post("/api/threads").json()["thread_id"]
            bodies.append(c.post(f"/api/threads/{thread}/messages", json={"text": "hi"}).text)
            bodies.append(c.post(f"/api/threads/{thread}/messages", json={"text": "hi"},
                                 headers={"Accept": "text/event-stream"}).text)
            for path in (f"/api/threads/{thread}", "/api/traces", "/api/costs?by=model"):
                bodies.append(c.get(path).text)
        found["web API responses (JSON and SSE)"] = "".join(bodies).count(key)
        raw = b"".join(p.read_bytes() for p in data.rglob("coach.db*"))
        found["database file bytes (ledger, transcript, spans, checkpoints)"] = \
            raw.count(key.encode())
        time.sleep(1)
        found["spans exported over OTLP"] = b"".join(collector.bodies).count(key.encode())
        sent = sum(1 for r in api.requests if key in json.dumps(r["headers"]))
        found["(requests that carried the key to the gateway)"] = sent
    collector.close()
    return found


# -- rate-limit flood and fairness -----------------------------------------------------------

def learner_turns(base: str, token: str, text: str, n: int) -> list[float]:
    out = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"},
                      timeout=60) as c:
        thread = c.post("/api/threads").json()["thread_id"]
        c.post(f"/api/threads/{thread}/messages", json={"text": STEPS[0]})
        for _ in range(n):
            started = time.perf_counter()
            r = c.post(f"/api/threads/{thread}/messages", json={"text": text})
            if r.status_code == 200:
                out.append(time.perf_counter() - started)
    return out


FLOOD_RATE = 100  # requests per second: 200× the bad-token limit, 10× every limit summed


def flood(base: str, noisy: str, rate: float, phase: Any, until: Any, codes: Any) -> None:
    """Run in its own process (an attacker is not the learner's process), paced at `rate`
    requests per second while `phase` says what to send: "refused" (bad tokens, bad
    sign-ins and thread creation, in turn), "healthz" (the cheapest request there is, for
    comparison) or "" (nothing)."""
    found: dict[str, int] = {}
    with httpx.Client(base_url=base, timeout=30) as c:
        while not until.is_set():
            kind = phase.value.decode()
            if not kind:
                time.sleep(0.01)
                continue
            started, sent = time.perf_counter(), 0
            while phase.value.decode() == kind and not until.is_set():
                try:
                    if kind == "healthz":
                        r = c.get("/healthz")
                    elif sent % 3 == 0:
                        r = c.get("/api/threads", headers={"Authorization": "Bearer pc_bad"})
                    elif sent % 3 == 1:
                        r = c.post("/signin", content=b"token=nope",
                                   headers={"content-type": "application/x-www-form-urlencoded"})
                    else:
                        r = c.post("/api/threads", headers={"Authorization": f"Bearer {noisy}"})
                    answer = f"{kind} {r.status_code}"
                except httpx.HTTPError as exc:
                    answer = f"{kind} {type(exc).__name__}"
                found[answer] = found.get(answer, 0) + 1
                sent += 1
                time.sleep(max(0.0, started + sent / rate - time.perf_counter()))
    codes.put(found)


def rate_flood(tmp: Path, rounds: int = 3, turns: int = 30,
               rate: float = FLOOD_RATE) -> dict[str, Any]:
    """The learner's turns quiet, during the flood of refused requests, and during as many
    health checks, interleaved over `rounds` so the machine's drift falls on all three."""
    import multiprocessing

    db = f"sqlite:///{tmp / 'flood.db'}"
    engine = open_engine(db)
    good, noisy = add_user(engine, "good"), add_user(engine, "noisy")
    engine.dispose()
    # The learner's own 280 turns would pass the default 60 messages a minute.
    env = base_env(tmp / "home", COACH_MODEL="offline", COACH_RATE_LIMITS="messages=6000/minute")
    spawn = multiprocessing.get_context("spawn")
    taken: dict[str, list[float]] = {"": [], "refused": [], "healthz": []}
    with serve(db, tmp / "home", env) as (base, _):
        learner_turns(base, good, "status", 10)  # warm-up: connections, caches
        phase, until, answers = spawn.Array("c", 16), spawn.Event(), spawn.Queue()
        attacker = spawn.Process(target=flood, args=(base, noisy, rate, phase, until, answers))
        attacker.start()
        for _ in range(rounds):
            for kind in taken:
                phase.value = kind.encode()
                time.sleep(0.5 if kind else 0.2)  # the flood is under way (or over)
                taken[kind] += learner_turns(base, good, "status", turns)
        phase.value = b""
        until.set()
        codes = answers.get(timeout=60)
        attacker.join(30)
    refused = {int(k.split()[1]) if k.split()[1].isdigit() else k.split()[1]: n
               for k, n in codes.items() if k.startswith("refused")}
    return {"requests": sum(refused.values()), "codes": refused,
            "healthz": sum(n for k, n in codes.items() if k.startswith("healthz")),
            "quiet_p95": p95(taken[""]), "flood_p95": p95(taken["refused"]),
            "healthz_p95": p95(taken["healthz"]), "rate": rate, "turns": len(taken[""])}


def at_deploy(engine: Any, learner: str) -> None:
    """A project of the learner's at the deploy step (set directly: the build gate would
    clone a GitHub repository, which this machine cannot reach)."""
    ctx = ToolContext(engine, ensure_user(engine, learner), "setup")
    project_id = TOOLS["create_project"](ctx, PROJECT).content["project_id"]
    with session_scope(engine) as s:
        project = s.get(Project, project_id)
        assert project is not None
        project.step = "deploy"
        s.add(project)


def fairness(tmp: Path, capped: bool, flooders: int = 1, each: int = 17,
             helps: int = 60) -> dict[str, Any]:
    """`flooders` learners each send `each` turns at once that fetch a host answering after
    12 s, while another learner asks `help`."""
    db = f"sqlite:///{tmp / f'fair-{capped}-{flooders}.db'}"
    engine = open_engine(db)
    slowpokes = [add_user(engine, f"slowpoke{i}") for i in range(flooders)]
    for i in range(flooders):
        at_deploy(engine, f"slowpoke{i}")
    other = add_user(engine, "other")
    engine.dispose()
    # 60 quiet and 60 measured turns of the other learner would pass 60 messages a minute.
    env = base_env(tmp / "home", COACH_MODEL="offline", COACH_ALLOW_PRIVATE_URLS="1",
                   COACH_RATE_LIMITS="messages=600/minute",
                   **({} if capped else {"COACH_TURNS_PER_LEARNER": "1000"}))
    site = SlowSite(12)
    codes: dict[int, int] = {}
    busy = [0]
    try:
        with serve(db, tmp / "home", env) as (base, _):
            quiet = learner_turns(base, other, "help", helps)
            sends: list[tuple[str, str]] = []
            for token in slowpokes:
                with httpx.Client(base_url=base, timeout=60,
                                  headers={"Authorization": f"Bearer {token}"}) as c:
                    sends += [(token, c.post("/api/threads").json()["thread_id"])
                              for _ in range(each)]

            took: list[float] = []

            def deploy(token: str, thread: str) -> None:
                with httpx.Client(base_url=base, timeout=60,
                                  headers={"Authorization": f"Bearer {token}"}) as c:
                    started = time.perf_counter()
                    r = c.post(f"/api/threads/{thread}/messages", json={"text": f"URL: {site.url}"})
                    codes[r.status_code] = codes.get(r.status_code, 0) + 1
                    if r.status_code == 200:
                        took.append(time.perf_counter() - started)
                        busy[0] += "busy with other network checks" in r.json()["reply"]

            with ThreadPoolExecutor(len(sends)) as pool:
                flood = [pool.submit(deploy, *send) for send in sends]
                time.sleep(2.0)  # the burst is answered; the slow checks are held
                during = learner_turns(base, other, "help", helps)
                for f in flood:
                    f.result()
    finally:
        site.close()
    return {"quiet_p95": p95(quiet), "flood_p95": p95(during), "codes": codes,
            "busy": busy[0], "flood_max": max(took, default=0.0)}


# -- report ------------------------------------------------------------------------------------

def fair_runs(tmp: Path) -> dict[str, dict[str, Any]]:
    return {
        "1 learner × 17 turns | 3 per learner (default)": fairness(tmp, capped=True),
        "1 learner × 17 turns | none (1000)": fairness(tmp, capped=False),
        "6 learners × 3 turns | 3 per learner (default)": fairness(tmp, capped=True,
                                                                 flooders=6, each=3),
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--pg-restart", action="store_true")
    parser.add_argument("--only", choices=["flood", "fairness", "pg"],
                        help="run one measure and print it (writes nothing)")
    args = parser.parse_args()
    if args.only:
        with tempfile.TemporaryDirectory(prefix="coach-reliability-") as tmp_name:
            tmp = Path(tmp_name)
            found = rate_flood(tmp) if args.only == "flood" else fair_runs(tmp) \
                if args.only == "fairness" else pg_restarted(tmp)
        print(json.dumps(found, indent=2, default=str))
        return
    with tempfile.TemporaryDirectory(prefix="coach-reliability-") as tmp_name:
        tmp = Path(tmp_name)
        matrix: list[tuple[str, dict[str, Any]]] = []
        runs: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("`coach chat` SIGKILLed during a model call, resumed", lambda: chat_killed(
                tmp, "model call")),
            ("`coach chat` SIGKILLed during a tool call (slow deployment fetch), resumed",
             lambda: chat_killed(tmp, "tool call")),
            ("upstream 401 (key refused)", lambda: upstream_fault(
                tmp, "401", error(401, "authentication_error", "invalid x-api-key"))),
            ("upstream 529 overloaded", lambda: upstream_fault(
                tmp, "529", error(529, "overloaded_error", "Overloaded"))),
            ("stream cut after message_start", lambda: upstream_fault(tmp, "cut", {
                **text_reply("never finished"), "stream_error": {
                    "type": "overloaded_error", "message": "Overloaded"},
                "events": [{"type": "message_start", "message": {
                    "id": "msg_cut", "type": "message", "role": "assistant", "model": MODEL,
                    "content": [], "stop_reason": None, "stop_sequence": None,
                    "usage": {"input_tokens": 900, "output_tokens": 1}}}, "ERROR"]})),
            ("`coach serve` worker SIGKILLed under load", lambda: worker_killed(tmp)),
        ]
        for name, run in runs:
            print(f"fault: {name}…", file=sys.stderr)
            matrix.append((name, run()))
        print("secret-leak sweep…", file=sys.stderr)
        leaks = leak_sweep(tmp)
        print("rate-limit flood…", file=sys.stderr)
        flood = rate_flood(tmp)
        print("fairness…", file=sys.stderr)
        fair = fair_runs(tmp)
        if args.pg_restart:  # last: other work on that server sees it restart once, briefly
            print("fault: PostgreSQL restart…", file=sys.stderr)
            matrix.append(("PostgreSQL restarted while 20 learners are mid-conversation",
                           pg_restarted(tmp)))

    lines = [f"## Reliability: faults, secret leaks, rate limits, fairness ({date.today()})", "",
             "From `python bench/reliability.py" + (" --pg-restart" if args.pg_restart else "")
             + "`: real `coach` processes, the local Messages-API server and local HTTP "
             "servers on 127.0.0.1, SQLite unless said. Targets: 0 lost, 0 duplicated, "
             "0 leaks, p95 ratios ≤ 1.5×.", "",
             "### Fault matrix", "",
             "| fault | turns completed | failed clearly | records lost | duplicated | note |",
             "|---|---:|---:|---:|---:|---|"]
    for name, r in matrix:
        lines.append(f"| {name} | {r['completed']} | {r['failed']} | {r['lost']} | "
                     f"{r['duplicated']} | {r.get('note', '')} |")
    lines += ["", "### Secret-leak sweep (a gateway's 401 quotes the request headers)", "",
              "| sink | occurrences of the key |", "|---|---:|"]
    lines += [f"| {sink} | {n} |" for sink, n in leaks.items()]
    refused = flood["codes"].get(429, 0)
    ratio = flood["flood_p95"] / flood["quiet_p95"]
    lines += ["", "### Rate-limit flood", "",
              f"{flood['requests']} requests from 127.0.0.1 at {flood['rate']:.0f}/s from "
              "another process (bad tokens, bad sign-ins, thread creation over the limit) "
              f"while a well-behaved learner sends {flood['turns']} turns; for comparison, "
              f"{flood['healthz']} health checks at the same rate; quiet, flood and health "
              "checks interleaved over 3 rounds, one worker, default limits but "
              "messages=6000/minute (the learner's own turns). Status codes of the flood: "
              f"{dict(sorted(flood['codes'].items(), key=str))}.", "",
              "| refused with 429 | learner p95 quiet | during the flood | ratio | "
              "during as many health checks | ratio |",
              "|---:|---:|---:|---:|---:|---:|",
              f"| {refused} | {ms(flood['quiet_p95'])} | {ms(flood['flood_p95'])} | "
              f"{ratio:.2f}× | {ms(flood['healthz_p95'])} | "
              f"{flood['healthz_p95'] / flood['quiet_p95']:.2f}× |", "",
              "### Per-learner fairness (turns at once fetching a host that answers after "
              "12 s; another learner asks `help` 60 times meanwhile)", "",
              "One worker: 16 turn workers, at most 8 network checks at once; default limits "
              "but messages=600/minute (the other learner's 120 turns).", "",
              "| who floods | turn cap | answers | refused as busy | slowest turn | "
              "other p95 quiet | other p95 during | ratio |",
              "|---|---|---|---:|---:|---:|---:|---:|"]
    for label, r in fair.items():
        lines.append(f"| {label} | {dict(sorted(r['codes'].items()))} | {r['busy']} | "
                     f"{ms(r['flood_max'])} | {ms(r['quiet_p95'])} | "
                     f"{ms(r['flood_p95'])} | {r['flood_p95'] / r['quiet_p95']:.2f}× |")
    section = "\n".join(lines) + "\n"
    print(section)
    if not args.no_write:
        write_section(ROOT / "BENCHMARKS.md", "## Reliability", section)


if __name__ == "__main__":
    main()
