"""Slow network checks cannot hold every turn worker: each `coach serve` worker runs at
most `network_checks` of them at once, and a check beyond that is refused at once with a
reason (nothing recorded) while other turns go on. Real uvicorn, real HTTP servers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from memory.models import Evidence
from memory.store import session_scope
from memory.users import ensure_user
from tests.sites import HeldSite
from tests.test_tools import FULL_PROBLEM, call, put_at_step
from tests.webserver import Server, running
from tools import ToolContext
from tools.base import ToolError
from tools.outbound import Outbound


@pytest.fixture
def site() -> Iterator[HeldSite]:
    s = HeldSite()
    yield s
    s.close()


def at_deploy(srv: Server, name: str) -> tuple[httpx.Client, str, int]:
    """A learner whose project is at the deploy step, and a thread coaching it."""
    client = srv.client(srv.learner(name))
    ctx = ToolContext(srv.engine, ensure_user(srv.engine, name), "setup")
    project_id = int(call(ctx, "create_project", FULL_PROBLEM).content["project_id"])
    put_at_step(srv.engine, project_id, "deploy")
    return client, client.post("/api/threads").json()["thread_id"], project_id


def deployments(srv: Server, project_id: int) -> list[Evidence]:
    with session_scope(srv.engine) as s:
        return list(s.exec(select(Evidence).where(Evidence.project_id == project_id,
                                                  Evidence.kind == "deployment")).all())


def say(client: httpx.Client, thread: str, text: str) -> dict[str, Any]:
    r = client.post(f"/api/threads/{thread}/messages", json={"text": text})
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def test_a_check_beyond_the_bound_is_refused_at_once_and_others_go_on(
        sqlite_url: str, tmp_path: Path, site: HeldSite) -> None:
    with running(sqlite_url, tmp_path / "home", private_urls=True, network_checks=1) as srv:
        ada, ada_thread, ada_project = at_deploy(srv, "ada")
        bob, bob_thread, bob_project = at_deploy(srv, "bob")
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(say, ada, ada_thread, f"It is live at {site.url}")
            assert site.arrived.acquire(timeout=30)  # ada's check holds the only slot
            started = time.monotonic()
            refused = say(bob, bob_thread, f"It is live at {site.url}")
            waited = time.monotonic() - started
            assert "network checks" in refused["reply"], refused["reply"]
            assert deployments(srv, bob_project) == []  # nothing recorded for the refusal
            assert say(bob, bob_thread, "help")["reply"]  # other turns still answer
            assert not held.done()  # while ada's check is still running
            site.release.set()
            assert "network checks" not in held.result(timeout=30)["reply"]
        assert [e.ok for e in deployments(srv, ada_project)] == [True]
        # The slot came back: bob's check runs now.
        say(bob, bob_thread, f"It is live at {site.url}")
        assert [e.ok for e in deployments(srv, bob_project)] == [True]
        # The refusal did not wait for ada's check (which was held until released).
        assert waited < 25


def test_a_slot_is_given_back_however_the_check_ends() -> None:
    bound = Outbound(2)
    with bound.slot("a check"), bound.slot("another"):
        with pytest.raises(ToolError, match=r"busy with other network checks \(at most 2 "):
            with bound.slot("a third"):
                pass
    with pytest.raises(RuntimeError):
        with bound.slot("a check that fails"):
            raise RuntimeError("the fetch blew up")
    with bound.slot("one"), bound.slot("two"):  # both slots are free again
        pass
    with pytest.raises(ValueError):
        Outbound(0)
