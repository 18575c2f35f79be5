"""The portfolio a hiring manager reads: nothing public by default, the exports (JSON,
Markdown, HTML) checked against the records and byte-for-byte repeatable, what is never
exported, the readiness report, and deployments re-checked against a real local app that
goes down and comes back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from agent.demo import local_app
from agent.offline import OfflineCoach
from agent.portfolio import document, readiness, render, visibility
from agent.portfolio.recheck import (
    HostPacer,
    claim_tick,
    down_notices,
    interval_hours,
    recheck,
    release,
)
from agent.session import Coach
from agent.settings import Settings
from memory.checkpoints import open_checkpointer
from memory.models import DeploymentRecheck, Evidence, Project, RecheckRun, ShareLink
from memory.store import session_scope
from memory.users import ensure_user
from tests.learner import coach_env, run_coach
from tests.portfolio_seed import LOCAL_REPO, POSTMORTEM, SECRET_TRANSCRIPT, seed
from tools.deployment import AddressPolicy

OPEN = AddressPolicy(allow_private=True)  # the local app is on loopback
NEVER = (SECRET_TRANSCRIPT, LOCAL_REPO, "0.123456789", "DRAFT ONLY", "pc_")


@pytest.fixture
def store(store_engine: Engine) -> Engine:
    """The same tests on SQLite and PostgreSQL (dates come back naive from one, aware
    from the other; the lease's atomic update must hold on both)."""
    return store_engine


@pytest.fixture
def app_url() -> Iterator[str]:
    with local_app() as url:
        yield url


def build(engine: Engine, user: str = "ada") -> dict[str, Any]:
    with session_scope(engine) as s:
        return document.build(s, ensure_user(engine, user), user)


def test_nothing_is_public_until_published(engine: Engine) -> None:
    seed(engine, "ada", "https://handover.example.org/")
    doc = build(engine)
    assert doc["projects"] == [] and doc["format"] == "portfolio-coach/portfolio"


def test_published_fields_only_and_each_claim_says_how_it_is_known(store: Engine) -> None:
    pid = seed(store, "ada", "https://handover.example.org/")
    uid = ensure_user(store, "ada")
    visibility.publish(store, uid, pid, ["problem", "deployment", "evals", "ci_gate"])
    [p] = build(store)["projects"]
    assert set(p) == {"id", "title", "status", "problem", "success_criteria", "deployment",
                      "evals", "ci_gate"}
    assert p["status"] == "done"
    assert p["deployment"] == {
        "url": "https://handover.example.org/", "live": True, "last_verified": "2026-11-03",
        "last_checked": "2026-11-03", "down_since": None, "status": "live as of 2026-11-03",
        "verified": True, "how": "the coach fetched the URL itself (HTTP 200)"}
    assert p["evals"] == {"summary": "24 cases, 91% pass, graded by exact match",
                          "verified": False, "how": "stated by the learner",
                          "when": "2026-11-03",
                          "value": {"cases": 24, "pass_rate": 0.91, "grader": "exact match"}}
    assert p["ci_gate"]["verified"] is True
    assert p["ci_gate"]["how"] == "the coach found the CI gate in the repository"

    # Hiding one field keeps the rest; hiding the project hides everything.
    assert "evals" not in visibility.unpublish(store, uid, pid, ["evals"])
    assert "evals" not in build(store)["projects"][0]
    assert visibility.unpublish(store, uid, pid, None) == []
    assert build(store)["projects"] == []


def test_a_learner_cannot_publish_another_learners_project(engine: Engine) -> None:
    pid = seed(engine, "ada", "https://a.example.org/")
    bob = ensure_user(engine, "bob")
    with pytest.raises(Exception, match="no project"):
        visibility.publish(engine, bob, pid, list(visibility.FIELDS))
    assert build(engine, "bob")["projects"] == [] and build(engine)["projects"] == []


def test_unknown_field_is_a_clear_error() -> None:
    with pytest.raises(Exception, match="unknown field.*transcript"):
        visibility.parse_fields(["evals,transcript"])
    assert visibility.parse_fields([]) == list(visibility.FIELDS)


def test_local_repository_path_is_never_exported(engine: Engine) -> None:
    pid = seed(engine, "ada", "https://a.example.org/", repo=LOCAL_REPO)
    visibility.publish(engine, ensure_user(engine, "ada"), pid, list(visibility.FIELDS))
    [p] = build(engine)["projects"]
    assert "repository" not in p
    for fmt in render.FORMATS:
        text = "".join(render.files(build(engine), fmt).values())
        for secret in NEVER:
            assert secret not in text, (fmt, secret)


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(text: str) -> Tags:
    parser = Tags()
    parser.feed(text)
    return parser


def test_cli_exports_every_format_deterministically_and_against_the_records(
        tmp_path: Path, coach_home: str) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    from memory.store import open_engine

    eng = open_engine(db)
    pid = seed(eng, "ada", "https://handover.example.org/")
    eng.dispose()
    env = coach_env(coach_home)
    base = ("--db", db, "--user", "ada")
    done = run_coach(*base, "portfolio", "publish", str(pid), "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["public"][0] == "title"

    outputs: dict[str, dict[str, bytes]] = {}
    for fmt in ("json", "md", "html"):
        for attempt in ("a", "b"):
            out = tmp_path / f"{fmt}-{attempt}"
            r = run_coach(*base, "portfolio", "export", "--out", str(out), "--format", fmt,
                          env=env)
            assert r.returncode == 0, r.stderr
            outputs[f"{fmt}-{attempt}"] = {f.name: f.read_bytes() for f in out.iterdir()}
        assert outputs[f"{fmt}-a"] == outputs[f"{fmt}-b"], fmt  # same records, same bytes

    doc = json.loads(outputs["json-a"]["portfolio.json"])
    [p] = doc["projects"]
    assert (p["title"], p["problem"], p["audience"], p["why_me"]) == (
        "Handover Helper", "Night-shift nurses lose abnormal vitals in rushed handovers.",
        "ward nurses", "six years of night shifts")
    assert p["mvp"] == {"features": ["summarise a note", "flag vitals"],
                        "usage_note": "ran it on 12 notes"}
    assert p["repository"] == "https://github.com/ada/handover-helper"
    assert (p["capabilities"], p["difficulty"]) == (["evals_ci", "structured_output"], 2)
    assert p["cost"]["summary"] == "$0.004 per request" and p["cost"]["verified"] is False
    assert p["observability"]["value"]["tool"] == "Langfuse"
    assert p["postmortem"] == {"version": 2, "words": len(POSTMORTEM.split()),
                               "submitted_on": "2026-11-04", "text": POSTMORTEM}
    assert p["lessons"] == [{"kind": "worked", "text": "evals before features"},
                            {"kind": "tradeoff", "text": "two calls, better recall"}]
    raw = outputs["json-a"]["portfolio.json"].decode()
    assert raw == json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    md = outputs["md-a"][f"project-{pid}.md"].decode()
    assert md.startswith("# Handover Helper\n")
    assert "- **Evals:** 24 cases, 91% pass, graded by exact match (stated by the learner, " \
           "2026-11-03)" in md
    assert "- **CI gate:** GitHub Actions (.github/workflows/evals.yml) blocks regressions " \
           "(verified: the coach found the CI gate in the repository, 2026-11-03)" in md
    assert "live as of 2026-11-03" in md and "## Post-mortem" in md
    assert f"[Handover Helper](project-{pid}.md)" in outputs["md-a"]["README.md"].decode()

    site = outputs["html-a"]
    assert set(site) == {"index.html", "style.css", f"project-{pid}.html"}
    page = parse(site[f"project-{pid}.html"].decode())
    tags = [t for t, _ in page.tags]
    assert "script" not in tags  # the post-mortem's <script> is text, not markup
    assert "&lt;script&gt;" in site[f"project-{pid}.html"].decode()
    hrefs = [a.get("href") or "" for t, a in page.tags if t == "a"]
    assert not any(h.startswith("javascript:") for h in hrefs)
    assert "https://handover.example.org/" in hrefs
    assert [a["href"] for t, a in page.tags if t == "link"] == ["style.css"]
    assert not any("//" in (a.get("src") or "") for _, a in page.tags)  # no CDN
    assert "verified" in "".join(page.text) and "stated" in "".join(page.text)
    index = parse(site["index.html"].decode())
    assert f"project-{pid}.html" in [a.get("href") for t, a in index.tags if t == "a"]

    # Unpublishing removes the project's page from the folder on the next export.
    assert run_coach(*base, "portfolio", "publish", str(pid), "--unpublish",
                     env=env).returncode == 0
    out = tmp_path / "html-a"
    assert run_coach(*base, "portfolio", "export", "--out", str(out), env=env).returncode == 0
    assert sorted(f.name for f in out.iterdir()) == ["index.html", "style.css"]


def test_export_bad_format_is_a_usage_error(tmp_path: Path, coach_home: str) -> None:
    r = run_coach("--db", str(tmp_path / "c.db"), "portfolio", "export", "--out",
                  str(tmp_path / "o"), "--format", "pdf", env=coach_env(coach_home))
    assert r.returncode == 2 and "html, md, json" in r.stderr
    assert not (tmp_path / "o").exists()


def test_share_links_are_stored_hashed_and_replaced(engine: Engine) -> None:
    uid = ensure_user(engine, "ada")
    slug, replaced = visibility.create_share(engine, uid)
    assert len(slug) >= 32 and not replaced
    assert visibility.share_owner(engine, slug) == uid
    with session_scope(engine) as s:
        [row] = s.exec(select(ShareLink)).all()
        assert row.id != slug and slug not in row.id and len(row.id) == 64
    second, replaced = visibility.create_share(engine, uid)
    assert replaced and visibility.share_owner(engine, slug) is None
    assert visibility.share_owner(engine, second) == uid
    assert visibility.revoke_share(engine, uid) is True
    assert visibility.share_owner(engine, second) is None
    assert visibility.revoke_share(engine, uid) is False


# -- readiness ------------------------------------------------------------------------------

def test_readiness_report_reads_the_records(store: Engine) -> None:
    first = seed(store, "ada", "https://a.example.org/")
    uid = ensure_user(store, "ada")
    with session_scope(store) as s:
        # A second project, not harder, fine-tuned before any retrieval, on a demo host,
        # deployed, broken, and only then given evals.
        p = Project(user_id=uid, title="Tuner", step="harden", difficulty=2,
                    capabilities=["fine_tuning", "tool_use"], previous_project_id=first)
        s.add(p)
        s.flush()
        t0 = p.created_at
        s.add(Evidence(project_id=p.id, kind="deployment", verified=True, ok=True,
                       checked_at=t0, details={"url": "https://x.streamlit.app/",
                                               "streamlit": True}))
        s.add(Evidence(project_id=p.id, kind="deployment", verified=True, ok=False,
                       checked_at=t0 + timedelta(hours=1),
                       details={"url": "https://x.streamlit.app/"}))
        s.add(Evidence(project_id=p.id, kind="evals", checked_at=t0 + timedelta(hours=2),
                       details={"cases": 10}))
        third = Project(user_id=uid, title="No evals", step="harden", difficulty=3)
        s.add(third)
        s.flush()
        s.add(Evidence(project_id=third.id, kind="deployment", verified=True, ok=True,
                       details={"url": "https://n.example.org/"}))
        second, third_id = p.id, third.id
    with session_scope(store) as s:
        r = readiness.report(s, uid)
    assert (r["done"], r["readiness"], r["to_next_bar"]) == (1, "building", 2)
    assert r["difficulty"]["rising"] is False
    assert r["difficulty"]["not_rising"] == [[first, second]]
    pillars = r["pillars"]
    assert pillars["software_engineering"]["covered"] is True
    assert pillars["llm_intuition"]["models"] == ["claude-haiku-5-5"]
    assert pillars["llm_intuition"]["shipped"] == 3
    assert pillars["retrieval"]["covered"] is False
    assert pillars["evaluation"]["covered"] is False  # evals stated, not verified
    found = {m["id"]: m["projects"] for m in r["mistakes"]}
    assert found == {"no_evals": [third_id], "fine_tuning_before_retrieval": [second],
                     "demo_host": [second], "evals_after_breakage": [second]}
    assert r["next_capability"]["capability"] == "retrieval"
    assert "difficulty is 4" in r["next_capability"]["reason"]
    lines = readiness.report_lines(r)
    assert lines[0].startswith("Done projects: 1") and "NOT rising" in lines[1]


def test_readiness_with_nothing_yet(engine: Engine) -> None:
    with session_scope(engine) as s:
        r = readiness.report(s, ensure_user(engine, "new"))
    assert r["done"] == 0 and r["mistakes"] == [] and r["difficulty"]["rising"] is True
    assert not any(p["covered"] for p in r["pillars"].values())


# -- re-checks ------------------------------------------------------------------------------

def test_recheck_follows_a_site_that_goes_down_and_comes_back(store: Engine) -> None:
    no_wait = HostPacer(gap_s=0)
    with local_app() as url:
        pid = seed(store, "ada", url)
        other = seed(store, "bob", url, title="Bob's")
        mine = recheck(store, user_id=ensure_user(store, "ada"), trigger="command",
                       policy=OPEN, pacer=no_wait)
        assert [(r["project_id"], r["ok"]) for r in mine["results"]] == [(pid, True)]
    # The app is gone: refused connection.
    down = recheck(store, user_id=None, trigger="command", policy=OPEN, pacer=no_wait)
    assert {r["project_id"] for r in down["results"]} == {pid, other}
    assert down["down"] == 2 and all(not r["ok"] for r in down["results"])
    visibility.publish(store, ensure_user(store, "ada"), pid, ["deployment"])
    dep = build(store)["projects"][0]["deployment"]
    assert dep["live"] is False and dep["status"].startswith("down since ")
    assert dep["last_verified"] is not None

    # The learner hears about it once, at the start of their next turn.
    settings = Settings.load(db=store.url.render_as_string(hide_password=False), user="ada",
                             model="offline")
    with open_checkpointer(settings.database_url) as saver:
        coach = Coach(store, saver, user="ada", model=OfflineCoach())
        thread = coach.thread()
        first = coach.turn(thread, "status")
        assert first.reply.startswith("Heads-up: Handover Helper's live URL")
        assert "down since" in first.reply.split("\n")[0]
        assert "Heads-up" not in coach.turn(thread, "status").reply
        # Still down at the next re-check: the same outage is not announced again.
        recheck(store, user_id=None, trigger="command", policy=OPEN, pacer=no_wait)
        assert "Heads-up" not in coach.turn(thread, "status").reply

    # The history is kept: every re-check, and every run with its counts.
    with session_scope(store) as s:
        rows = s.exec(select(DeploymentRecheck).where(DeploymentRecheck.project_id == pid)
                      ).all()
        assert [r.ok for r in rows] == [True, False, False]
        runs = s.exec(select(RecheckRun)).all()
        assert [(r.checked, r.down, r.trigger) for r in runs] == [
            (1, 0, "command"), (2, 2, "command"), (2, 2, "command")]
        assert all(r.finished_at is not None for r in runs)


def test_recheck_comes_back_up_on_the_same_address(engine: Engine) -> None:
    from http.server import ThreadingHTTPServer

    from agent.demo import _handler

    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler({"/": (200, {}, b"<p>up</p>")}))
    port = server.server_address[1]
    url = f"http://127.0.0.1:{port}/"
    server.server_close()  # the address is recorded but nothing listens: down
    pid = seed(engine, "ada", url)
    uid = ensure_user(engine, "ada")
    visibility.publish(engine, uid, pid, ["deployment"])
    assert recheck(engine, user_id=uid, trigger="command", policy=OPEN,
                   pacer=HostPacer(gap_s=0))["down"] == 1
    assert down_notices(engine, uid) and not down_notices(engine, uid)
    with local_app_on(port):
        assert recheck(engine, user_id=uid, trigger="command", policy=OPEN,
                       pacer=HostPacer(gap_s=0))["down"] == 0
    dep = build(engine)["projects"][0]["deployment"]
    assert dep["live"] is True and dep["down_since"] is None
    assert dep["status"].startswith("live as of ")
    assert down_notices(engine, uid) == []


def local_app_on(port: int) -> Any:
    import threading
    from contextlib import contextmanager
    from http.server import ThreadingHTTPServer

    from agent.demo import APP_PAGE, _handler

    @contextmanager
    def run() -> Iterator[None]:
        ThreadingHTTPServer.allow_reuse_address = True
        server = ThreadingHTTPServer(("127.0.0.1", port), _handler({"/": (200, {}, APP_PAGE)}))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield
        finally:
            server.shutdown()
            server.server_close()
            thread.join()

    return run()


def test_recheck_keeps_the_address_policy(engine: Engine, app_url: str) -> None:
    seed(engine, "ada", app_url)
    result = recheck(engine, user_id=None, trigger="command", policy=AddressPolicy(),
                     pacer=HostPacer(gap_s=0))
    [r] = result["results"]
    assert r["ok"] is False and "loopback" in r["reason"]


def test_fetches_to_one_host_are_spaced() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = HostPacer(gap_s=2.0, clock=lambda: now[0], sleep=sleep)
    pacer.wait("https://a.example.org/x")
    pacer.wait("https://b.example.org/")  # another host: no wait
    now[0] += 0.5
    pacer.wait("https://a.example.org/y")
    assert slept == [pytest.approx(1.5)]


def test_schedule_setting() -> None:
    assert interval_hours(None) == 24.0 and interval_hours("6") == 6.0
    assert interval_hours("0") is None and interval_hours("off") is None
    with pytest.raises(ValueError, match="COACH_RECHECK_HOURS"):
        interval_hours("daily")


def test_one_claim_per_tick(store: Engine) -> None:
    every = timedelta(hours=1)
    assert claim_tick(store, every, "a") is None  # the first start only records the time
    assert claim_tick(store, every, "b") is None  # not an hour yet
    assert claim_tick(store, timedelta(0), "a") is not None
    assert claim_tick(store, timedelta(0), "b") is None  # a holds the lease
    release(store, "b")  # only the holder can release
    assert claim_tick(store, timedelta(0), "b") is None
    release(store, "a")
    assert claim_tick(store, timedelta(0), "b") is not None


def test_cli_recheck_share_and_report(tmp_path: Path, coach_home: str, app_url: str) -> None:
    from memory.store import open_engine

    db = f"sqlite:///{tmp_path / 'c.db'}"
    eng = open_engine(db)
    pid = seed(eng, "ada", app_url)
    seed(eng, "bob", "http://127.0.0.1:9/", title="Bob's")  # nothing listens on port 9
    env = coach_env(coach_home, private_urls=True)
    base = ("--db", db, "--user", "ada")

    mine = run_coach(*base, "recheck", "--json", env=env)
    assert mine.returncode == 0, mine.stderr
    summary = json.loads(mine.stdout)
    assert [(r["project_id"], r["ok"]) for r in summary["results"]] == [(pid, True)]
    every = json.loads(run_coach(*base, "recheck", "--all", "--json", env=env).stdout)
    assert (every["checked"], every["down"]) == (2, 1)
    text = run_coach(*base, "recheck", env=env)
    assert "up" in text.stdout and "1 checked, 0 down." in text.stdout

    made = run_coach(*base, "portfolio", "share", "--json", "--base-url",
                     "https://coach.example.org/", env=env)
    assert made.returncode == 0, made.stderr
    link = json.loads(made.stdout)
    assert link["url"] == f"https://coach.example.org/p/{link['slug']}"
    assert link["path"] == f"/p/{link['slug']}" and link["replaced"] is False
    with session_scope(eng) as s:
        assert s.exec(select(ShareLink)).one().id != link["slug"]
    assert visibility.share_owner(eng, link["slug"]) == ensure_user(eng, "ada")
    gone = run_coach(*base, "portfolio", "share", "--revoke", "--json", env=env)
    assert json.loads(gone.stdout) == {"revoked": True}
    assert visibility.share_owner(eng, link["slug"]) is None

    report = json.loads(run_coach(*base, "portfolio", "report", "--json", env=env).stdout)
    assert report["done"] == 1 and report["next_capability"]["capability"] == "retrieval"
    lines = run_coach(*base, "portfolio", "report", env=env).stdout
    assert "Next project should add: retrieval" in lines

    bad = run_coach(*base, "portfolio", "publish", "999", env=env)
    assert bad.returncode == 1 and "no project 999" in bad.stderr
    eng.dispose()


def test_chosen_lessons_only(tmp_path: Path, coach_home: str) -> None:
    from memory.models import Lesson
    from memory.store import open_engine

    db = f"sqlite:///{tmp_path / 'c.db'}"
    eng = open_engine(db)
    pid = seed(eng, "ada", "https://a.example.org/")
    with session_scope(eng) as s:
        first, second = [lesson.id for lesson in s.exec(
            select(Lesson).where(Lesson.project_id == pid).order_by(Lesson.id)).all()]
    env = coach_env(coach_home)
    base = ("--db", db, "--user", "ada")
    r = run_coach(*base, "portfolio", "publish", str(pid), "--lesson", str(second), "--json",
                  env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["public"] == ["title", f"lesson:{second}"]
    assert [(x["id"], x["public"]) for x in out["lessons"]] == [(first, False), (second, True)]
    [p] = build(eng)["projects"]
    assert p["lessons"] == [{"kind": "tradeoff", "text": "two calls, better recall"}]
    assert "evals" not in p  # only what was named
    bad = run_coach(*base, "portfolio", "publish", str(pid), "--lesson", "999", env=env)
    assert bad.returncode == 1 and "no lesson 999" in bad.stderr
    r = run_coach(*base, "portfolio", "publish", str(pid), "--lesson", str(second),
                  "--unpublish", env=env)
    assert r.returncode == 0 and f"lesson {second} [private]" in r.stdout
    assert "lessons" not in build(eng)["projects"][0]
    eng.dispose()
