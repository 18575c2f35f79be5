"""The share link `GET /p/{slug}` against a real uvicorn: no sign-in, only the owner's
published fields, no other learner's data, 404 after revocation, caching headers and the
CSP; the portfolio API; the exported site and the share page rendered in real Chromium
(screenshots at desktop and phone widths in test-artifacts/); and the scheduled re-check
run once per tick across `coach serve --workers 2`."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from agent.demo import local_app
from agent.portfolio import document, render, visibility
from agent.web.middleware import CSP
from memory.models import DeploymentRecheck, RecheckRun
from memory.store import open_engine, session_scope
from memory.users import ensure_user
from tests.learner import coach_env, start_coach
from tests.portfolio_seed import LOCAL_REPO, SECRET_TRANSCRIPT, seed
from tests.webserver import Server, running

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
PRIVATE_FIELD = "six years of night shifts"  # why_me: left unpublished below
SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("share")
    with running(f"sqlite:///{tmp / 'web.db'}", tmp / "home") as srv:
        yield srv


@pytest.fixture(scope="module")
def two(server: Server) -> dict[str, Any]:
    """ada publishes some fields of her project; bob publishes all of his."""
    ada_token, bob_token = server.learner("ada"), server.learner("bob")
    ada = seed(server.engine, "ada", "https://handover.example.org/")
    bob = seed(server.engine, "bob", "https://bob.example.org/", title="Bob Private Tool")
    ada_id, bob_id = ensure_user(server.engine, "ada"), ensure_user(server.engine, "bob")
    visibility.publish(server.engine, ada_id, ada,
                       [f for f in visibility.FIELDS if f not in ("why_me", "lessons")])
    visibility.publish(server.engine, bob_id, bob, list(visibility.FIELDS))
    slug, _ = visibility.create_share(server.engine, ada_id)
    return {"ada": ada, "bob": bob, "ada_id": ada_id, "bob_id": bob_id, "slug": slug,
            "ada_token": ada_token, "bob_token": bob_token}


def test_share_page_needs_no_sign_in_and_shows_only_published_fields(
        server: Server, two: dict[str, Any]) -> None:
    index = httpx.get(f"{server.url}/p/{two['slug']}")
    assert index.status_code == 200, index.text
    assert "Handover Helper" in index.text and "ada" in index.text
    page = httpx.get(f"{server.url}/p/{two['slug']}/{two['ada']}")
    assert page.status_code == 200
    for r in (index, page):
        assert r.headers["cache-control"] == "private, no-store"
        assert r.headers["content-security-policy"] == CSP
        assert r.headers["x-robots-tag"] == "noindex, nofollow"
        assert r.headers["content-type"].startswith("text/html")
        for absent in ("Bob Private Tool", "bob.example.org", PRIVATE_FIELD,
                       SECRET_TRANSCRIPT, LOCAL_REPO, "0.123456789", "evals before features",
                       "<script"):
            assert absent not in r.text, absent
    assert "live as of 2026-11-03" in page.text and "24 cases" in page.text
    assert 'href="/p/style.css"' in page.text
    css = httpx.get(f"{server.url}/p/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "max-age" in css.headers["cache-control"]


def test_other_learners_project_and_unknown_slugs_are_404(server: Server,
                                                           two: dict[str, Any]) -> None:
    for path in (f"/p/{two['slug']}/{two['bob']}", f"/p/{two['slug']}/99999",
                 "/p/" + "A" * 32, "/p/short", f"/p/{two['slug']}x"):
        r = httpx.get(server.url + path)
        assert r.status_code == 404, path
        assert "Bob Private Tool" not in r.text


def test_revoked_link_is_404_and_a_new_one_works(server: Server, two: dict[str, Any]) -> None:
    old, _ = visibility.create_share(server.engine, two["bob_id"])
    assert httpx.get(f"{server.url}/p/{old}").status_code == 200
    assert visibility.revoke_share(server.engine, two["bob_id"])
    gone = httpx.get(f"{server.url}/p/{old}")
    assert gone.status_code == 404 and gone.headers["cache-control"] == "private, no-store"
    new, replaced = visibility.create_share(server.engine, two["bob_id"])
    assert not replaced and new != old
    r = httpx.get(f"{server.url}/p/{new}")
    assert r.status_code == 200 and "Bob Private Tool" in r.text
    assert "Handover Helper" not in r.text
    assert httpx.get(f"{server.url}/p/{old}").status_code == 404


def test_unpublishing_takes_effect_at_once(server: Server, two: dict[str, Any]) -> None:
    carol = ensure_user(server.engine, "carol")
    pid = seed(server.engine, "carol", "https://c.example.org/", title="Carol Thing")
    slug, _ = visibility.create_share(server.engine, carol)
    assert "Carol Thing" not in httpx.get(f"{server.url}/p/{slug}").text  # not published
    visibility.publish(server.engine, carol, pid, ["problem"])
    assert "Carol Thing" in httpx.get(f"{server.url}/p/{slug}").text
    visibility.unpublish(server.engine, carol, pid, None)
    assert "Carol Thing" not in httpx.get(f"{server.url}/p/{slug}").text
    assert httpx.get(f"{server.url}/p/{slug}/{pid}").status_code == 404


def test_portfolio_api_is_scoped_to_the_caller(server: Server, two: dict[str, Any]) -> None:
    assert httpx.get(server.url + "/api/portfolio").status_code == 401
    assert httpx.post(server.url + "/api/portfolio/share").status_code == 401
    assert httpx.delete(server.url + "/api/portfolio/share").status_code == 401
    assert httpx.post(server.url + "/api/portfolio/publish",
                      json={"project_id": two["ada"]}).status_code == 401
    bob = server.client(two["bob_token"])
    r = bob.post("/api/portfolio/publish", json={"project_id": two["ada"]})
    assert r.status_code == 404
    r = bob.post("/api/portfolio/publish", json={"project_id": two["bob"],
                                                 "fields": ["nope"]})
    assert r.status_code == 422 and "unknown field" in r.json()["detail"]
    info = bob.get("/api/portfolio").json()
    assert set(info["public"]) == {str(two["bob"])}
    assert info["deployments"][str(two["bob"])]["status"] == "live as of 2026-11-03"
    assert info["report"]["done"] == 1 and "pillars" in info["report"]
    assert bob.get("/api/portfolio/report").json() == info["report"]


# -- in the real browser ---------------------------------------------------------------------

def _browser() -> Any:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            raise RuntimeError(f"{CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    return sync_playwright()


def _check_page(p: Any, url: str, name: str, problems: list[str]) -> None:
    for size, viewport in SIZES.items():
        context = p.new_context(viewport=viewport)
        tab = context.new_page()
        tab.on("pageerror", lambda exc: problems.append(f"{name}: page error: {exc}"))
        tab.on("console", lambda msg: problems.append(f"{name}: console: {msg.text}")
               if msg.type == "error" else None)
        requests: list[str] = []
        tab.on("request", lambda req, seen=requests: seen.append(req.url))
        tab.goto(url)
        tab.locator("h1").wait_for()  # one h1: the post-mortem's headings sit under it
        # The stylesheet applied (its own CSS, no CDN): cards get their border radius.
        assert tab.locator("main").evaluate("e => getComputedStyle(e).maxWidth") != "none"
        box = tab.locator("main").bounding_box()
        assert box is not None and box["width"] <= viewport["width"]
        assert all(r.startswith((url.split("/p/")[0], "file://")) for r in requests), requests
        ARTIFACTS.mkdir(exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / f"portfolio-{name}-{size}.png"), full_page=True)
        context.close()


@pytest.mark.slow
def test_exported_site_and_share_page_render_in_chromium(
        server: Server, two: dict[str, Any], tmp_path: Path) -> None:
    with session_scope(server.engine) as s:
        doc = document.build(s, two["ada_id"], "ada")
    render.write(doc, tmp_path / "site", "html")
    problems: list[str] = []
    with _browser() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        # JavaScript off: the exported site must read without it.
        ctx = browser.new_context(java_script_enabled=False, viewport=SIZES["desktop"])
        tab = ctx.new_page()
        tab.goto((tmp_path / "site" / "index.html").as_uri())
        tab.click(f"a[href='project-{two['ada']}.html']")
        tab.locator("h1", has_text="Handover Helper").wait_for()
        text = tab.inner_text("main")
        assert "live as of 2026-11-03" in text and "24 cases, 91% pass" in text
        assert tab.locator(".badge.verified").count() >= 2
        assert tab.locator(".badge.stated").count() >= 1
        assert tab.locator(".postmortem h4").count() == 3  # markdown rendered, shifted down
        assert tab.locator(".postmortem h3").count() == 1
        assert tab.locator(".postmortem strong", has_text="first").count() == 1
        ctx.close()
        _check_page(browser, (tmp_path / "site" / f"project-{two['ada']}.html").as_uri(),
                    "export", problems)
        _check_page(browser, f"{server.url}/p/{two['slug']}/{two['ada']}", "share", problems)
        _check_page(browser, f"{server.url}/p/{two['slug']}", "share-index", problems)
        browser.close()
    assert problems == []


@pytest.mark.slow
def test_publish_from_the_portfolio_page_and_see_the_report(server: Server) -> None:
    token = server.learner("dana")
    dana = ensure_user(server.engine, "dana")
    pid = seed(server.engine, "dana", "https://dana.example.org/", title="Dana Tool")
    slug, _ = visibility.create_share(server.engine, dana)
    problems: list[str] = []
    with _browser() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        tab = browser.new_context(base_url=server.url, viewport=SIZES["desktop"]).new_page()
        tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        tab.goto("/signin")
        tab.fill("#token", token)
        tab.click("button[type=submit]")
        tab.wait_for_url(server.url + "/")
        tab.goto("/portfolio")
        tab.locator("#next-capability").wait_for()
        assert "retrieval" in tab.inner_text("#next-capability")
        assert tab.locator("#report .pillars li").count() == 4
        assert "null" not in tab.inner_text("#report")
        assert "No common mistakes" in tab.inner_text("#mistakes")
        assert "live as of 2026-11-03" in tab.inner_text("[data-live]")
        box = tab.locator(f"article[data-project='{pid}'] input.publish")
        assert not box.is_checked()
        box.check()
        tab.locator(f"article[data-project='{pid}'] .muted", has_text="fields").wait_for()
        tab.click("#share-make")
        made = tab.locator("#share-url")
        made.wait_for()
        shared = made.get_attribute("href") or ""
        assert shared.startswith("/p/") and made.inner_text() == server.url + shared
        ARTIFACTS.mkdir(exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / "portfolio-page-report.png"), full_page=True)
        assert "Dana Tool" in httpx.get(server.url + shared).text
        assert httpx.get(f"{server.url}/p/{slug}").status_code == 404  # replaced
        tab.click("#share-revoke")
        tab.locator("#share-status", has_text="Revoked").wait_for()
        assert httpx.get(server.url + shared).status_code == 404
        browser.close()
    assert problems == []


# -- the schedule across two worker processes --------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_scheduled_recheck_runs_once_per_tick_across_two_workers(
        tmp_path: Path, coach_home: str) -> None:
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    hours = 0.0005  # a tick every 1.8 s
    every = timedelta(hours=hours)
    with local_app() as url:
        engine = open_engine(db)
        seed(engine, "ada", url)
        port = _free_port()
        env = coach_env(coach_home, private_urls=True, COACH_RECHECK_HOURS=str(hours))
        proc = start_coach("--db", db, "--user", "ada", "serve", "--port", str(port),
                           "--workers", "2", env=env)
        try:
            deadline = time.monotonic() + 90
            runs: list[RecheckRun] = []
            while time.monotonic() < deadline and len(runs) < 4:
                time.sleep(0.5)
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                with session_scope(engine) as s:
                    runs = list(s.exec(select(RecheckRun).where(
                        col(RecheckRun.finished_at).is_not(None))
                        .order_by(col(RecheckRun.id))).all())
        finally:
            proc.terminate()
            proc.communicate(timeout=30)
        with session_scope(engine) as s:
            runs = list(s.exec(select(RecheckRun).order_by(col(RecheckRun.id))).all())
            checks = list(s.exec(select(DeploymentRecheck)).all())
        engine.dispose()
    assert len(runs) >= 4, "the schedule did not run"
    assert {r.trigger for r in runs} == {"schedule"}
    # One run per tick: consecutive runs are at least one interval apart, whichever worker
    # ran them, and each run checked the one deployment once.
    starts = [r.started_at.replace(tzinfo=None) for r in runs]
    # (A scheduled run is stamped with its tick: the time its worker won the lease row.)
    for a, b in zip(starts, starts[1:], strict=False):
        assert b - a >= every, (a, b)
    finished = [r for r in runs if r.finished_at is not None]
    assert sum(r.checked for r in finished) == len([c for c in checks
                                                    if c.run_id in {r.id for r in finished}])
    assert all(r.checked == 1 and r.down == 0 for r in finished)
    assert all(c.ok for c in checks)
