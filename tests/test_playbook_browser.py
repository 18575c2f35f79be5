"""The chat page's playbook panel in headless Chromium: the step's entries, a search, and an
entry body rendered from Markdown, with the page's strict CSP and no script errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_web_browser import ARGS, CHROMIUM, shot
from tests.webserver import STEP_ONE, Server, running

pytestmark = pytest.mark.slow


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Server]:
    with running(f"sqlite:///{tmp_path / 'web.db'}", tmp_path / "home") as srv:
        yield srv


@pytest.fixture
def tab(site: Server) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(base_url=site.url, viewport={"width": 1280,
                                                                   "height": 900})
        page = context.new_page()
        problems: list[str] = []  # script errors and CSP violations fail the test
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on("console", lambda msg: problems.append(f"console: {msg.text}")
                if msg.type == "error" else None)
        page.set_default_timeout(20_000)
        yield page
        browser.close()
        assert problems == []


def test_the_side_panel_shows_the_steps_entries_and_searches(site: Server, tab: Any) -> None:
    tab.goto("/")
    tab.wait_for_url("**/signin?next=/")
    tab.fill("#token", site.learner("robin"))
    tab.click("button[type=submit]")
    tab.wait_for_url(site.url + "/")

    # Before any project: the getting-started entries.
    tab.locator("#playbook-caption").filter(has_text="getting started").wait_for()
    assert tab.locator("#playbook-entries details.entry").count() >= 1

    # Step 1 passes in one message: the panel follows the project to the build step.
    tab.fill("#message", STEP_ONE)
    tab.click("#send")
    tab.locator("#playbook-caption").filter(has_text="the build step").wait_for()
    titles = tab.locator("#playbook-entries summary").all_inner_texts()
    assert "Build the smallest useful tool first" in titles

    # A search opens the best entry, its Markdown body rendered as HTML.
    tab.fill("#playbook-query", "whats the differnce between evals and unit tests")
    tab.click("#playbook-search button")
    tab.locator("#playbook-caption").filter(has_text="Best matches").wait_for()
    first = tab.locator("#playbook-entries details.entry").first
    assert first.get_attribute("data-id") == "evals-vs-unit-tests"
    assert first.evaluate("node => node.open") is True
    assert "A unit test checks deterministic code" in first.locator(".entry-body p").first \
        .inner_text()
    assert "Try this:" in first.locator(".try-this").inner_text()
    shot(tab, "chat-playbook")
