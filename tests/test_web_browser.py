"""The pages end to end in headless Debian Chromium, driven by Playwright: sign in with a
token, coach through step 1 in the chat, then the portfolio, the cost chart and a trace
waterfall. Screenshots go to test-artifacts/ (kept by CI as test artefacts)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.webserver import STEP_ONE, Server, running

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):  # CI installs it (.ci/run): missing there is a failure
        raise RuntimeError(f"{CHROMIUM} is missing: .ci/run must apt-get install chromium")
    pytest.skip(f"{CHROMIUM} is missing: `apt-get install chromium` to run the browser tests",
                allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running(f"sqlite:///{tmp_path / 'web.db'}", tmp_path / "home") as srv:
        yield srv


@pytest.fixture
def page(server: Server) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(base_url=server.url, viewport={"width": 1280,
                                                                     "height": 900})
        tab = context.new_page()
        problems: list[str] = []  # script errors and CSP violations fail the test
        tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        tab.on("console", lambda msg: problems.append(f"console: {msg.text}")
               if msg.type == "error" else None)
        tab.set_default_timeout(20_000)
        yield tab
        browser.close()
        assert problems == []


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_sign_in_coach_step_one_and_see_every_dashboard(server: Server, page: Any) -> None:
    token = server.learner("casey")
    page.goto("/")
    page.wait_for_url("**/signin?next=/")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")
    assert page.inner_text("#user-name") == "casey"

    # Chat: step 1 in one message; the reply streams in, the side panel follows the step.
    page.fill("#message", STEP_ONE)
    page.click("#send")
    reply = page.locator(".msg.assistant").last
    reply.wait_for()
    page.wait_for_selector(".msg.assistant:not(.streaming)")
    # A locator wait, not wait_for_function: polling a string predicate evaluates it in the
    # page, which the pages' strict CSP (rightly) refuses.
    page.locator("#step-info").filter(has_text="2/6").wait_for()
    assert "Handover Helper" in page.inner_text("#step-info")
    assert page.locator("#gate-missing li").count() >= 1
    assert "trace" in page.inner_text("#turn-meta")
    shot(page, "chat")

    # The thread survives a reload: the transcript comes back from the server.
    page.reload()
    page.wait_for_selector(".msg.user")
    assert STEP_ONE[:40] in page.locator(".msg.user").first.inner_text()

    page.goto("/portfolio")
    card = page.locator("article.project").first
    card.wait_for()
    assert "Handover Helper" in card.inner_text()
    assert card.locator(".steps span.done").count() == 1  # problem done, build current
    assert "building" in page.inner_text("#readiness")
    card.locator("button", has_text="Draft post-mortem").click()
    card.locator("details summary", has_text="v1").wait_for()
    shot(page, "portfolio")

    page.goto("/costs")
    page.wait_for_selector("#chart-model svg rect.bar")
    assert page.locator("#chart-model svg rect.bar").count() >= 1
    assert page.locator("#chart-tokens svg rect.bar").count() == 4
    assert "%" in page.inner_text("#summary")
    page.wait_for_selector("#top-threads tbody a")
    shot(page, "costs")

    page.goto("/traces")
    page.wait_for_selector("#trace-detail .span-row")
    assert page.locator("#trace-detail .span-row").count() >= 3
    assert page.locator("#trace-detail .span-bar.chat").count() >= 1
    assert "invoke_agent coach" in page.inner_text("#trace-detail")
    page.check("#f-errors")
    page.click("#filters button[type=submit]")
    page.wait_for_selector("#trace-list td.muted")  # no failed turns: the filter empties it
    shot(page, "traces")
