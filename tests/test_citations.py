"""Claude drafts with citations, through the real anthropic SDK against the local
Messages-API server (evals/messages_api.py): the server returns citation-bearing text blocks
and streams `citations_delta` as the API does; the drafter sends the records as search
results, turns citations into sentence sources, and catches an uncited factual sentence."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx
import pytest

from agent.claude import ClaudeModel
from agent.drafting import ClaudeDrafter, cited_draft, search_results
from evals.bundles import contradicted, typical
from evals.messages_api import MessagesAPI, cited_reply
from seam.model import ModelRequest
from tools.grounding import grounding_report

MODEL = "claude-sonnet-5-5"
RESULTS = [{"type": "search_result", "source": "evidence:4", "title": "evals (stated)",
            "content": [{"type": "text", "text": '{"cases": 24, "pass_rate": 0.91}'}],
            "citations": {"enabled": True}},
           {"type": "search_result", "source": "lesson:1", "title": "lesson: worked",
            "content": [{"type": "text", "text": "starting from real anonymised notes"}],
            "citations": {"enabled": True}}]
ASKED = [{"role": "user", "content": [*RESULTS, {"type": "text", "text": "Write it."}]}]


@pytest.fixture
def api() -> Iterator[MessagesAPI]:
    with MessagesAPI() as server:
        yield server


@pytest.fixture
def client(api: MessagesAPI) -> Iterator[anthropic.Anthropic]:
    c = anthropic.Anthropic(api_key="test-key", base_url=api.base_url, max_retries=0)
    yield c
    c.close()


def test_the_server_streams_citations_delta_and_the_sdk_assembles_them(
        api: MessagesAPI, client: anthropic.Anthropic) -> None:
    reply = cited_reply([("The eval set has 24 cases.", ["evidence:4"]),
                         (" It went well.", []), (" What worked: real notes.", [1])])
    api.queue(reply, reply)
    # The raw stream, as the API sends it.
    raw = httpx.post(f"{api.base_url}/v1/messages", json={
        "model": MODEL, "max_tokens": 100, "messages": ASKED, "stream": True},
        headers={"x-api-key": "k"})
    events = [json.loads(line[len("data: "):]) for line in raw.text.splitlines()
              if line.startswith("data: ")]
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    citation_deltas = [d["citation"] for d in deltas if d["type"] == "citations_delta"]
    assert [c["source"] for c in citation_deltas] == ["evidence:4", "lesson:1"]
    assert citation_deltas[0] == {
        "type": "search_result_location", "search_result_index": 0, "source": "evidence:4",
        "title": "evals (stated)", "cited_text": '{"cases": 24, "pass_rate": 0.91}',
        "start_block_index": 0, "end_block_index": 1}
    # Through the SDK's stream and the coach's Claude model: the citations arrive intact.
    response = ClaudeModel(MODEL, client=client).complete(ModelRequest(
        system="s", messages=ASKED, tools=[], max_tokens=100, records={}, metadata={}))
    texts = [b for b in response.content if b["type"] == "text"]
    assert [b.get("citations", []) and [c["source"] for c in b["citations"]]
            for b in texts] == [["evidence:4"], [], ["lesson:1"]]
    assert texts[2]["citations"][0]["cited_text"] == "starting from real anonymised notes"


def test_citing_a_result_sent_without_citations_is_a_400(api: MessagesAPI,
                                                         client: anthropic.Anthropic) -> None:
    api.queue(cited_reply([("The eval set has 24 cases.", [0])]))
    plain = [{**RESULTS[0], "citations": {"enabled": False}}]
    with pytest.raises(anthropic.BadRequestError, match="without citations enabled"):
        client.messages.create(model=MODEL, max_tokens=10, messages=[
            {"role": "user", "content": [*plain, {"type": "text", "text": "Write it."}]}])


def test_records_become_search_results_and_contradictions_are_marked() -> None:
    b = typical()
    results = search_results(b)
    sources = [r["source"] for r in results]
    assert len(sources) == len(set(sources))
    assert {"project:1:problem", "evidence:4", "evidence:3", "lesson:1", "lesson:2"} <= set(
        sources)
    assert all(r["citations"] == {"enabled": True} and r["content"][0]["text"]
               for r in results)
    [audit] = [r for r in results if r["source"] == "evidence:2"]
    assert audit["title"] == "repository audit (verified by the coach)"
    marked = [r for r in search_results(contradicted()) if r["source"].startswith("contra")]
    assert [r["source"] for r in marked] == ["contradiction:ci_gate"]
    assert "ask, do not state" in marked[0]["title"]


def test_cited_sentences_get_their_sources_and_an_uncited_fact_is_flagged() -> None:
    b = typical()
    content = [
        {"type": "text", "text": "# Post-mortem: Handover Helper\n\n## Evals\n\n"},
        {"type": "text", "text": "The eval set has 24 cases.", "citations": [
            {"type": "search_result_location", "source": "evidence:4"}]},
        {"type": "text", "text": " Every nurse on the ward now uses it daily. "},
        {"type": "text", "text": "[TODO: Where did the cases come from?]"},
    ]
    draft = cited_draft(content, b)
    assert [(s.text, s.kind, s.sources) for s in draft.sentences] == [
        ("The eval set has 24 cases.", "fact", ["evidence:4"]),
        ("Every nurse on the ward now uses it daily.", "framing", []),
        ("[TODO: Where did the cases come from?]", "todo", [])]
    assert [t.question for t in draft.todos] == ["Where did the cases come from?"]
    uncited = cited_draft([{"type": "text", "text": "I saw 24 cases fail first."}], b)
    report = grounding_report(uncited.markdown, b, [s.as_dict() for s in uncited.sentences])
    assert {"kind": "sentence", "item": "no source",
            "sentence": "I saw 24 cases fail first."} in report["unsupported"]


def test_a_claude_draft_with_an_uncited_sentence_is_revised_once(
        api: MessagesAPI, client: anthropic.Anthropic) -> None:
    b = typical()
    head = "# Post-mortem: Handover Helper\n\n## What worked\n\n"
    invented = "It is the reason I trusted my own judgement when the first users disagreed."
    api.queue(
        cited_reply([(head, []), ("What worked: “starting from real anonymised notes”.",
                                  ["lesson:1"]), (" " + invented, [])]),
        cited_reply([(head, []), ("What worked: “starting from real anonymised notes”.",
                                  ["lesson:1"]),
                     (" [TODO: Why did starting from real notes work?]", [])]))
    drafter = ClaudeDrafter(ClaudeModel(MODEL, client=client), 1)
    draft = drafter(b)
    first, second = api.message_requests
    findings = second["messages"][-1]["content"][0]["text"]
    assert f"in: {invented}" in findings and "no source" in findings
    assert invented not in draft.markdown
    [quote] = [s for s in draft.sentences if s.kind == "quote"]
    assert quote.sources == ["lesson:1"]
    assert [t.question for t in draft.todos] == ["Why did starting from real notes work?"]
    assert grounding_report(draft.markdown, b, [s.as_dict() for s in draft.sentences])[
        "grounded"] is True
