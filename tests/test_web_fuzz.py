"""Property-based fuzzing of the API from its own OpenAPI schema (schemathesis) against a
real uvicorn, signed in: whatever the input, no 5xx, and every answer is JSON or SSE as
documented. Bounded: 20 examples per operation, derandomized (same cases every run)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance

from agent.settings import Settings
from agent.web.app import create_app
from tests.webserver import STEP_ONE, Server, running

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    with running(f"sqlite:///{tmp / 'fuzz.db'}", tmp / "home") as srv:
        token = srv.learner("fuzzer")
        client = srv.client(token)
        thread_id = client.post("/api/threads").json()["thread_id"]
        client.post(f"/api/threads/{thread_id}/messages", json={"text": STEP_ONE})
        yield {"server": srv, "token": token, "thread_id": thread_id}


# The schema the app itself serves, built without a server (no lifespan, no database).
SPEC = create_app(Settings.load(db="sqlite://", user="fuzzer", model="offline",
                                env={"COACH_HOME": "/nonexistent"})).openapi()
SCHEMA = schemathesis.openapi.from_dict(SPEC)
OPERATIONS = [(method.upper(), path) for path, item in SPEC["paths"].items() for method in item]
# Invalid input can only be made for operations that take some.
CASES = [(m, p, GenerationMode.POSITIVE) for m, p in OPERATIONS] + [
    (m, p, GenerationMode.NEGATIVE) for m, p in OPERATIONS
    if {"parameters", "requestBody"} & set(SPEC["paths"][p][m.lower()])]


def test_every_api_route_is_fuzzed() -> None:
    assert len(OPERATIONS) >= 12 and ("POST", "/api/threads/{thread_id}/messages") in OPERATIONS


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_no_input_makes_the_server_fail(method: str, path: str, mode: GenerationMode,
                                        fuzzed: dict[str, Any]) -> None:
    server: Server = fuzzed["server"]
    headers = {"Authorization": f"Bearer {fuzzed['token']}"}

    @given(case=SCHEMA[path][method].as_strategy(generation_mode=mode))
    @settings(max_examples=20, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        if "thread_id" in (case.path_parameters or {}):
            # The learner's real thread, so fuzzed messages run real turns, not only 404s.
            case.path_parameters["thread_id"] = fuzzed["thread_id"]
        case.call_and_validate(base_url=server.url, headers=headers,
                               checks=[not_a_server_error, content_type_conformance])

    check()
