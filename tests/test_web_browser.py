"""The pages end to end in headless Debian Chromium, driven by Playwright: sign in with a
token, coach through step 1 in the chat, then the portfolio, the cost chart and a trace
waterfall. Screenshots go to test-artifacts/ (kept by CI as test artefacts)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.threads import Threads
from memory.users import ensure_user
from tests.test_paging import seed_projects, seed_turns
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


def sign_in(server: Server, page: Any, name: str) -> int:
    token = server.learner(name)
    page.goto("/signin")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")
    return ensure_user(server.engine, name)


def test_traces_and_projects_pages_load_the_next_page(server: Server, page: Any) -> None:
    """More than a page of turns (the traces page asks for 100) and of projects (20): the
    Older / More projects buttons follow the API's cursor, and each row appears once."""
    learner = sign_in(server, page, "robin")
    turns = seed_turns(server.engine, learner, 130)
    projects = seed_projects(server.engine, learner, ["build"] * 22 + ["done"] * 3)

    page.goto("/traces")
    rows = page.locator("#trace-list tbody tr")
    rows.nth(99).wait_for()
    assert rows.count() == 100 and page.locator("#trace-older").is_visible()
    page.wait_for_selector("#trace-detail .span-row")  # the newest turn's waterfall
    page.click("#trace-older")
    rows.nth(129).wait_for()
    page.locator("#trace-older").wait_for(state="hidden")  # that was the last page
    assert [rows.nth(i).get_attribute("data-trace") for i in range(rows.count())] == turns
    rows.nth(120).click()  # a row of the second page opens like any other
    page.locator("#trace-list tr.selected").wait_for()
    assert page.locator("#trace-list tr.selected").get_attribute("data-trace") == turns[120]
    shot(page, "traces-older")

    page.goto("/portfolio")
    cards = page.locator("article.project")
    cards.nth(19).wait_for()
    assert "ready to apply" in page.inner_text("#readiness")  # counts the unshown pages too
    assert cards.count() == 20
    page.click("#projects-more")
    cards.nth(24).wait_for()
    page.locator("#projects-more").wait_for(state="hidden")
    assert [int(cards.nth(i).get_attribute("data-project")) for i in range(25)] == projects

    # The chat's thread list: 50 at a time, then "older threads…" for the next page.
    threads = Threads(server.engine, learner)
    made = [threads.open() for _ in range(55)]
    page.goto("/")
    options = page.locator("#thread-select option")
    options.nth(50).wait_for(state="attached")
    assert options.count() == 51 and options.nth(50).inner_text() == "older threads…"
    page.select_option("#thread-select", "__older__")
    options.nth(54).wait_for(state="attached")
    options.nth(55).wait_for(state="detached")  # the sentinel is gone: that was the last page
    shown = [options.nth(i).get_attribute("value") for i in range(55)]
    assert sorted(shown) == sorted(made)  # each thread once, the sentinel gone
    assert page.locator("#thread-select").input_value() == shown[0]  # still the open one


# -- every page at a desktop and a phone size (issue 15, items 14-15) -------------------------

SIZES = {"desktop": (1280, 900), "phone": (390, 844)}
PAGES = ("/", "/portfolio", "/costs", "/traces")
MARKDOWN_REPLY = "help"  # the offline coach's help uses `code` and **bold** Markdown

# Every element with its own text: its colour and the backgrounds behind it, innermost
# first, as the browser computed them (the contrast itself is computed in Python below).
TEXT_STYLES = """() => {
  const out = [];
  for (const node of document.querySelectorAll("body *")) {
    if (node.closest("svg")) continue;  // chart labels: fill, not text colour
    const own = [...node.childNodes].some((c) => c.nodeType === 3 && c.textContent.trim());
    const box = node.getBoundingClientRect();
    const style = getComputedStyle(node);
    if (!own || !box.width || !box.height || style.visibility === "hidden") continue;
    const layers = [];
    for (let n = node; n; n = n.parentElement) layers.push(getComputedStyle(n).backgroundColor);
    layers.push("rgb(255, 255, 255)");  // the canvas
    out.push({ text: node.textContent.trim().slice(0, 40), tag: node.tagName,
               color: style.color, opacity: style.opacity, layers });
  }
  return out;
}"""


def _rgba(value: str) -> tuple[float, float, float, float]:
    parts = [float(p) for p in value[value.index("(") + 1:-1].replace("/", ",").split(",")]
    return (parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else 1.0)


def _over(top: tuple[float, ...], under: tuple[float, ...]) -> tuple[float, ...]:
    a = top[3]
    return tuple(top[i] * a + under[i] * (1 - a) for i in range(3)) + (1.0,)


def _luminance(rgb: tuple[float, ...]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(item: dict[str, Any]) -> float:
    """WCAG contrast of an element's text against what is really behind it."""
    background: tuple[float, ...] = (255.0, 255.0, 255.0, 1.0)
    for layer in reversed(item["layers"]):  # from the canvas inwards
        background = _over(_rgba(layer), background)
    color = _rgba(item["color"])
    color = (*color[:3], color[3] * float(item["opacity"]))
    text = _over(color, background)
    lighter, darker = sorted((_luminance(text), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_every_page_reads_at_desktop_and_phone_size_by_keyboard_alone(server: Server,
                                                                     page: Any) -> None:
    token = server.learner("kim")
    page.goto("/signin")
    page.fill("#token", token)
    page.keyboard.press("Enter")
    page.wait_for_url(server.url + "/")

    # Keyboard only: Tab to the message box, type, Tab to Send, press Enter.
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.id") == "message":
            break
    page.keyboard.type(MARKDOWN_REPLY)
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "send"
    ring = page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
                                    return [s.outlineStyle, s.outlineWidth]; }""")
    assert ring[0] != "none" and float(ring[1].removesuffix("px")) >= 2, ring  # focus visible
    page.keyboard.press("Enter")
    page.wait_for_selector(".msg.assistant.rich")

    # The coach's Markdown is rendered: code and bold as elements, no markup left showing.
    reply = page.locator(".msg.assistant.rich").last
    assert reply.locator("code").count() >= 1
    assert "**" not in reply.inner_text() and "`" not in reply.inner_text()

    for size, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        for path in PAGES:
            page.goto(path)
            page.wait_for_load_state("networkidle")
            name = path.strip("/") or "chat"
            shot(page, f"{name}-{size}")
            overflow = page.evaluate("""() => [document.documentElement.scrollWidth,
                                               document.documentElement.clientWidth]""")
            assert overflow[0] <= overflow[1], (path, size, overflow)  # no sideways scroll
            low = [(round(contrast(i), 2), i["tag"], i["text"])
                   for i in page.evaluate(TEXT_STYLES) if contrast(i) < 4.5]
            assert low == [], (path, size, low)

