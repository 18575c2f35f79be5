"""Post-mortem drafts as one Message Batch: half price, collected even after a crash.

`submit` sends the drafts of every stale step-5 project (of one learner, or of every
learner for an operator) as one batch and stores its id and what each `custom_id` stands
for *before* polling; `collect` polls until the batch has ended, matches every result by
its `custom_id` (results come back in any order), stores each succeeded draft as a new
version with its cited sentences, and writes one ledger row per result through the same
ledger wrapper as any other call — the usage says `service_tier: batch`, so the price
table's batch multiplier halves it. Errored and expired requests are reported with their
reasons; their projects stay stale, so the next batch drafts them again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anthropic
from sqlalchemy import Engine
from sqlmodel import select

from agent.claude import usage_of
from agent.drafting import SYSTEM, cited_draft, request_message
from memory.models import PostmortemBatch, Project, utcnow
from memory.store import session_scope
from seam.model import ModelRequest, ModelResponse
from seam.pricing import PriceTable
from telemetry.ledger import MeteredModel
from tools.bundle import evidence_bundle
from tools.postmortem import postmortem_report, stale_projects, store_version
from tools.sentences import as_json

MAX_TOKENS = 4096
Progress = Callable[[dict[str, int], str], None]


@dataclass
class Collected:
    batch_id: str
    drafted: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)


class _Answered:
    """A model whose answer is already here (a batch result): passing it through the
    ledger wrapper records the call exactly as a live one would be recorded."""

    provider = "anthropic"
    server_address: str | None = None

    def __init__(self, name: str, response: ModelResponse):
        self.name = name
        self.response = response

    def complete(self, request: ModelRequest) -> ModelResponse:
        return self.response

    def count_tokens(self, request: ModelRequest) -> int | None:
        return None


def pending_batches(engine: Engine, user_id: int | None = None) -> list[PostmortemBatch]:
    with session_scope(engine) as s:
        query = select(PostmortemBatch).where(PostmortemBatch.status == "submitted")
        if user_id is not None:
            query = query.where(PostmortemBatch.user_id == user_id)
        rows = list(s.exec(query.order_by(PostmortemBatch.id)).all())  # type: ignore[arg-type]
        for row in rows:
            s.expunge(row)
        return rows


def stale_everywhere(engine: Engine, user_id: int, all_users: bool) -> list[tuple[int, int]]:
    """(user id, project id) of every stale step-5 project, leaving out projects already
    in a batch that has not been collected."""
    with session_scope(engine) as s:
        users = sorted({p.user_id for p in s.exec(select(Project).where(
            Project.step == "postmortem")).all()}) if all_users else [user_id]
    waiting = {r["project_id"] for b in pending_batches(engine) for r in b.requests.values()}
    return [(uid, pid) for uid in users for pid in stale_projects(engine, uid)
            if pid not in waiting]


def submit(engine: Engine, client: anthropic.Anthropic, model: str, user_id: int,
           projects: list[tuple[int, int]]) -> PostmortemBatch | None:
    """One batch request per project, the same request a one-by-one draft sends."""
    if not projects:
        return None
    requests, mapping = [], {}
    with session_scope(engine) as s:
        for uid, pid in projects:
            project = s.get(Project, pid)
            assert project is not None
            custom_id = f"pm-{pid}-u{uid}"
            mapping[custom_id] = {"project_id": pid, "user_id": uid}
            requests.append({"custom_id": custom_id, "params": {
                "model": model, "max_tokens": MAX_TOKENS,
                "system": [{"type": "text", "text": SYSTEM}],
                "messages": [request_message(evidence_bundle(s, project))]}})
    batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    row = PostmortemBatch(batch_id=batch.id, user_id=user_id, model=model, requests=mapping)
    with session_scope(engine) as s:  # stored before any polling: a crash loses nothing
        s.add(row)
        s.flush()
        s.expunge(row)
    return row


def collect(engine: Engine, client: anthropic.Anthropic, row: PostmortemBatch,
            prices: PriceTable, *, poll_seconds: float = 10.0,
            progress: Progress | None = None) -> Collected:
    """Wait for the batch to end, then store what it produced."""
    while True:
        batch = client.messages.batches.retrieve(row.batch_id)
        counts = batch.request_counts.model_dump()
        if progress:
            progress(counts, batch.processing_status)
        if batch.processing_status == "ended":
            break
        time.sleep(poll_seconds)
    out = Collected(row.batch_id)
    for line in client.messages.batches.results(row.batch_id):
        meant = row.requests.get(line.custom_id)
        if meant is None:  # not one of ours: never guess which project it belongs to
            out.failed.append({"custom_id": line.custom_id, "project_id": None,
                               "error": "a result for a request this batch did not hold"})
            continue
        result = line.result
        if result.type == "succeeded":
            out.drafted.append(_store(engine, row.model, meant, result.message, prices))
        else:
            out.failed.append({"custom_id": line.custom_id, "project_id": meant["project_id"],
                               "status": result.type, "error": _reason(result)})
    with session_scope(engine) as s:
        stored = s.get(PostmortemBatch, row.id)
        if stored is not None:
            stored.status, stored.collected_at = "collected", utcnow()
    out.drafted.sort(key=lambda d: d["project_id"])
    return out


def _reason(result: Any) -> str:
    if result.type == "errored":
        err = result.error.error
        return f"{err.type}: {err.message}"
    if result.type == "expired":
        return "expired: the batch ended (24 h at most) before this request was processed"
    return "canceled before it was processed"


def _store(engine: Engine, model: str, meant: dict[str, Any], message: Any,
           prices: PriceTable) -> dict[str, Any]:
    pid, uid = meant["project_id"], meant["user_id"]
    content = [b.model_dump(exclude_none=True) for b in message.content]
    response = ModelResponse(content=content, stop_reason=message.stop_reason or "end_turn",
                             usage=usage_of(message), model=message.model or model,
                             id=message.id)
    with session_scope(engine) as s:
        project = s.get(Project, pid)
        assert project is not None
        bundle = evidence_bundle(s, project)
        step = project.step
    metered = MeteredModel(_Answered(model, response), engine, prices, purpose="postmortem")
    priced = metered.complete(ModelRequest(
        system=SYSTEM, messages=[], tools=[], max_tokens=MAX_TOKENS, records={},
        metadata={"user_id": uid, "project_id": pid, "step": step, "purpose": "postmortem"}))
    draft = cited_draft(priced.content, bundle)
    sentences = as_json(draft.sentences)
    report = postmortem_report(draft.markdown, bundle, sentences) | {
        "sentences": sentences, "todos": [t.as_dict() for t in draft.todos]}
    with session_scope(engine) as s:
        version = store_version(s, pid, "draft", draft.markdown, report)
    return {"project_id": pid, "version": version, "words": report["words"],
            "unsupported": len(report["grounding"]["unsupported"]),
            "cost_usd": None if priced.cost_usd is None else float(priced.cost_usd)}
