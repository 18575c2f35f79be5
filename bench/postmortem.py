"""Grounded post-mortems: what the offline drafter writes, and what batch drafting costs.

Drafts: the demo project (the demo's scripted learner run to step 5 on a scratch database)
and the thin, typical, rich and contradicted bundles of evals/bundles.py. For each: words,
sentences, the share of sentences with a source (all, and factual ones), unsupported claims
(the grounding check with sentences: target 0), [TODO]s left, and how many interview
answers it takes to pass the step-5 checks and to leave no [TODO] (the interview's own
storage rules applied to the bundle: a `lesson:KIND` answer becomes a lesson, any other a
note). Cost: N drafts one by one (ClaudeDrafter → ClaudeModel → the real anthropic SDK →
the local Messages-API server) against the same N as one Message Batch (agent/batch.py),
both read back from the ledger (baseline and batch measured in the same run). Token counts
are the server's estimates (4 characters a token). Writes its section to BENCHMARKS.md
unless --no-write.

    .venv/bin/python bench/postmortem.py [--projects 5] [--no-write]
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sqlmodel import select  # noqa: E402
from turns import write_section  # noqa: E402

from agent.batch import collect, stale_everywhere, submit  # noqa: E402
from agent.claude import ClaudeModel  # noqa: E402
from agent.demo import local_app, make_repo, script  # noqa: E402
from agent.drafting import ClaudeDrafter  # noqa: E402
from agent.offline import OfflineCoach  # noqa: E402
from agent.session import Coach  # noqa: E402
from evals.bundles import BUNDLES, answered  # noqa: E402
from evals.messages_api import MessagesAPI, cited_reply  # noqa: E402
from memory.checkpoints import open_checkpointer  # noqa: E402
from memory.models import Evidence, LedgerEntry, Lesson, Project  # noqa: E402
from memory.store import open_engine, session_scope  # noqa: E402
from memory.users import ensure_user  # noqa: E402
from seam.pricing import Usage, price_table  # noqa: E402
from telemetry.ledger import MeteredModel  # noqa: E402
from tools.bundle import evidence_bundle  # noqa: E402
from tools.drafter import offline_compose  # noqa: E402
from tools.postmortem import postmortem_report  # noqa: E402
from tools.sentences import Draft, as_json  # noqa: E402

MODEL = "claude-sonnet-5-5"
ANSWER = ("I can say more about that: I checked it on my old ward with two colleagues, and "
          "what we saw there is what shaped the next version.")


def demo_bundle() -> dict[str, Any]:
    """The demo project's bundle at step 5, from the demo's own scripted learner."""
    with tempfile.TemporaryDirectory() as tmp, local_app() as url:
        db = f"sqlite:///{Path(tmp) / 'demo.db'}"
        engine = open_engine(db)
        repo = make_repo(Path(tmp))
        with open_checkpointer(db) as saver:
            coach = Coach(engine, saver, user="demo", model=OfflineCoach(),
                          allow_private_urls=True)
            thread = coach.thread()
            for heading, message in script(str(repo), url):
                if heading.startswith("Step 5"):
                    break
                coach.turn(thread, message)
        with session_scope(engine) as s:
            project = s.exec(select(Project)).first()
            assert project is not None
            bundle = evidence_bundle(s, project)
        engine.dispose()
        return bundle


def measure(draft: Draft, bundle: dict[str, Any]) -> dict[str, Any]:
    sentences = as_json(draft.sentences)
    report = postmortem_report(draft.markdown, bundle, sentences)
    factual = [s for s in sentences if s["kind"] in ("fact", "quote")]
    return {"words": report["words"], "sentences": len(sentences),
            "sourced": sum(1 for s in sentences if s.get("sources")) / len(sentences),
            "factual_sourced": (sum(1 for s in factual if s["sources"]) / len(factual)
                                if factual else 1.0),
            "unsupported": len(report["grounding"]["unsupported"]),
            "todos": len(draft.todos), "passes": not report["failed"]}


def answer(bundle: dict[str, Any], todo: Any, n: int) -> dict[str, Any]:
    """The bundle after one interview answer, stored as the interview stores it."""
    where, _, kind = todo.store.partition(":")
    if where == "lesson":
        b = copy.deepcopy(bundle)
        b["lessons"][kind].append(ANSWER)
        b["records"]["lessons"][kind].append(5000 + n)
        return b
    return answered(bundle, {todo.key: ANSWER}, first_id=9000 + n)


def interview(bundle: dict[str, Any]) -> tuple[int | None, int, dict[str, Any]]:
    """Answers until the draft passes the step-5 checks, and until no [TODO] is left."""
    to_pass, n = None, 0
    while n < 80:
        draft = offline_compose(bundle)
        m = measure(draft, bundle)
        if m["passes"] and to_pass is None:
            to_pass = n
        if not draft.todos:
            return to_pass, n, m
        todo = sorted(draft.todos, key=lambda t: not t.key.startswith("contradiction:"))[0]
        bundle = answer(bundle, todo, n)
        n += 1
    raise RuntimeError("the interview did not end")


def drafts_table() -> list[str]:
    bundles = {"demo project": demo_bundle(), **{k: f() for k, f in BUNDLES.items()}}
    lines = ["| bundle | words | sentences | with a source | factual with a source | "
             "unsupported | TODOs | answers to pass | answers to no TODO | words then | "
             "unsupported then |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, b in bundles.items():
        m = measure(offline_compose(b), b)
        to_pass, to_clear, end = interview(b)
        passed = to_pass if to_pass is not None else f"never ({end['words']:,} words)"
        lines.append(f"| {name} | {m['words']:,} | {m['sentences']} | {m['sourced']:.0%} | "
                     f"{m['factual_sourced']:.0%} | {m['unsupported']} | {m['todos']} | "
                     f"{passed} | {to_clear} | {end['words']:,} | {end['unsupported']} |")
    return lines


def add_projects(engine: Any, n: int) -> tuple[int, list[int]]:
    uid = ensure_user(engine, "bench")
    ids = []
    with session_scope(engine) as s:
        for i in range(n):
            p = Project(user_id=uid, title=f"Project {i}", step="postmortem",
                        audience="junior SREs", mvp_scope=["search"],
                        problem="Engineers lose hours searching runbooks before a fix.")
            s.add(p)
            s.flush()
            assert p.id is not None
            ids.append(p.id)
            s.add(Evidence(project_id=p.id, kind="evals",
                           details={"cases": 24, "pass_rate": 0.91, "grader": "llm judge"}))
            s.add(Lesson(project_id=p.id, kind="worked", text="search was fast"))
    return uid, ids


def reply(pid: int) -> dict[str, Any]:
    body = "The eval set has 24 cases, graded by llm judge. " * 40
    return cited_reply([("# Post-mortem: Project\n\n## What worked\n\n", []),
                        (body.strip(), [f"project:{pid}:problem"])])


def costs(projects: int) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp, MessagesAPI(batch_polls=1) as api:
        engine = open_engine(f"sqlite:///{Path(tmp) / 'cost.db'}")
        client = anthropic.Anthropic(api_key="bench-key", base_url=api.base_url,
                                     max_retries=0)
        prices = price_table()
        # One by one: the drafter's own calls, each metered into the ledger.
        uid, ids = add_projects(engine, projects)
        drafter = ClaudeDrafter(MeteredModel(ClaudeModel(MODEL, client=client), engine,
                                             prices), uid)
        with session_scope(engine) as s:
            bundles = [evidence_bundle(s, s.get(Project, pid)) for pid in ids]
        for pid, b in zip(ids, bundles, strict=True):
            api.queue(reply(pid))
            drafter(b)
        # The same projects again as one batch (their drafts are now stale again).
        with session_scope(engine) as s:
            for pid in ids:
                s.add(Lesson(project_id=pid, kind="tradeoff", text="slower, cited"))
        for pid in ids:
            api.batch_script[f"pm-{pid}-u{uid}"] = reply(pid)
        row = submit(engine, client, MODEL, uid, stale_everywhere(engine, uid, False))
        assert row is not None
        collect(engine, client, row, prices, poll_seconds=0)
        with session_scope(engine) as s:
            entries = s.exec(select(LedgerEntry)).all()
            by_tier: dict[str, list[LedgerEntry]] = {}
            for e in entries:
                by_tier.setdefault(e.service_tier or "standard", []).append(e)
        client.close()
        engine.dispose()
    one = by_tier["standard"]
    batch = by_tier["batch"]
    cost_one = sum((e.cost_usd or Decimal(0) for e in one), Decimal(0))
    cost_batch = sum((e.cost_usd or Decimal(0) for e in batch), Decimal(0))
    tok_one = sum(e.input_tokens + e.output_tokens for e in one)
    tok_batch = sum(e.input_tokens + e.output_tokens for e in batch)
    prices = price_table()
    # The batch rows' own tokens at the standard rate: the discount with nothing else varying.
    standard = Decimal(0)
    for e in batch:
        cost = prices.cost(MODEL, Usage(input_tokens=e.input_tokens,
                                        output_tokens=e.output_tokens), e.created_at.date())
        standard += cost or Decimal(0)
    return [
        "| drafting | ledger rows | input + output tokens | cost (USD) |", "|---|---|---|---|",
        f"| one by one (standard tier) | {len(one)} | {tok_one:,} | {cost_one:.6f} |",
        f"| one Message Batch (batch tier) | {len(batch)} | {tok_batch:,} | "
        f"{cost_batch:.6f} |",
        "",
        f"Batch / one-by-one: **{cost_batch / cost_one:.1%}** of the cost (target 50%); the "
        f"batch's own tokens at the standard rate would cost {standard:.6f}, so the batch tier "
        f"charges **{cost_batch / standard:.1%}** of it. The totals differ from exactly half "
        "only because the two request shapes differ slightly (a one-by-one request carries "
        "prompt-cache breakpoints and streams), which changes the server's token estimate.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--projects", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    section = "\n".join([
        "## Post-mortems: grounded drafts, interview, batch cost (offline drafter; "
        "local Messages-API server)", "",
        "`bench/postmortem.py`. Offline drafts of the demo project and of the bundles in "
        "`evals/bundles.py`; \"answers\" are interview answers (the interview's storage "
        "rules applied to the bundle, each answer 27 words); \"then\" is the draft with "
        "every question answered. \"With a source\" counts every sentence, framing and "
        "[TODO]s included; every factual sentence has one. A draft at step 5 passes the "
        "length check before any answer when the records are as full as the demo's; the "
        "thin bundle (a problem and evals only, which no real project reaches step 5 with) "
        "stays short even with every question answered.",
        "", *drafts_table(), "",
        f"Cost of drafting {args.projects} post-mortems with {MODEL}, from the ledger:", "",
        *costs(args.projects)])
    print(section)
    if not args.no_write:
        write_section(ROOT / "BENCHMARKS.md", "## Post-mortems:", section)


if __name__ == "__main__":
    main()
