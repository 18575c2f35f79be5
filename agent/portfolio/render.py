"""The portfolio document as files: a static HTML site, Markdown, or JSON.

Output depends only on the records (no export time, sorted keys, fixed file names), so
the same portfolio gives the same bytes and a learner can keep it in git. The HTML needs
no JavaScript and loads nothing from another host: its own `style.css`, and every value
escaped; post-mortems are Markdown rendered by markdown-it-py with raw HTML disabled.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

from agent.errors import CoachError

FORMATS = ("html", "md", "json")
# Files an export owns: a project that is no longer published loses its page.
OWNED = re.compile(r"project-\d+\.(html|md)")
# CommonMark without raw HTML: a post-mortem cannot inject markup or script.
_MD = MarkdownIt("commonmark", {"html": False})
ROWS = (("evals", "Evals"), ("ci_gate", "CI gate"), ("observability", "Observability"),
        ("cost", "Cost per request"))

CSS = """\
:root { --ink: #1d2330; --muted: #5b6475; --line: #dfe3ea; --ok: #1f7a4d; --warn: #9a5b00;
  --bad: #b3261e; --bg: #fbfbfd; --accent: #2f5bd3; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.55 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--ink); background: var(--bg); }
main { max-width: 52rem; margin: 0 auto; padding: 2rem 1.25rem 4rem; }
h1 { font-size: 1.9rem; margin: 0 0 .25rem; line-height: 1.2; }
h2 { font-size: 1.3rem; margin: 2rem 0 .5rem; }
h3 { font-size: 1.05rem; margin: 1.5rem 0 .4rem; }
a { color: var(--accent); overflow-wrap: anywhere; }
.muted { color: var(--muted); }
.small { font-size: .9rem; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px;
  padding: 1rem 1.25rem; margin: 1rem 0; }
.card h2 { margin-top: 0; }
.badge { display: inline-block; font-size: .75rem; font-weight: 600; padding: .05rem .5rem;
  border-radius: 999px; border: 1px solid currentColor; white-space: nowrap; }
.verified { color: var(--ok); }
.stated { color: var(--warn); }
.down { color: var(--bad); }
table.claims { width: 100%; border-collapse: collapse; }
.claims th, .claims td { text-align: left; vertical-align: top; padding: .5rem .4rem;
  border-top: 1px solid var(--line); }
.claims th { width: 11rem; font-weight: 600; }
.caps { display: flex; flex-wrap: wrap; gap: .35rem; list-style: none; padding: 0; }
.caps li { background: #eef2fb; border-radius: 6px; padding: .1rem .5rem; font-size: .85rem; }
.postmortem { border-left: 3px solid var(--line); padding-left: 1rem; }
footer { margin-top: 3rem; font-size: .85rem; color: var(--muted); }
@media (max-width: 600px) {
  main { padding: 1.25rem .9rem 3rem; }
  .claims th, .claims td { display: block; width: auto; padding: .25rem 0; }
  .claims td { border-top: 0; padding-bottom: .6rem; }
}
"""


def markdown_html(text: str) -> str:
    """A learner's Markdown as HTML, its headings moved two levels down so that they sit
    under the page's own "Post-mortem" heading (one h1 per page)."""
    tokens = _MD.parse(text)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1]) + 2)}"
    return str(_MD.renderer.render(tokens, _MD.options, {}))


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# -- Markdown ------------------------------------------------------------------------------

def _md_label(c: dict[str, Any]) -> str:
    if c.get("verified"):
        return f"verified: {c['how']}, {c['when']}"
    return f"stated by the learner, {c.get('when')}"


def project_markdown(p: dict[str, Any]) -> str:
    lines = [f"# {p['title']}", "", f"*{p['status']}*", ""]
    for key, label in (("problem", "Problem"), ("audience", "Who has it"),
                       ("why_me", "Why me"), ("success_criteria", "Success looks like")):
        if p.get(key):
            lines += [f"**{label}:** {p[key]}", ""]
    if "mvp" in p:
        lines += ["## What I built", ""]
        lines += [f"- {f}" for f in p["mvp"]["features"]]
        if p["mvp"].get("usage_note"):
            lines += ["", f"From a real run: {p['mvp']['usage_note']}"]
        lines.append("")
    if p.get("repository"):
        lines += [f"**Repository:** <{p['repository']}>", ""]
    if "deployment" in p or any(k in p for k, _ in ROWS):
        lines += ["## Evidence", ""]
    if "deployment" in p:
        d = p["deployment"]
        lines.append(f"- **Live URL:** <{d['url']}> — {d['status']} "
                     f"(verified: {d['how']}; last verified {d['last_verified'] or 'never'})")
    for key, label in ROWS:
        if key in p:
            lines.append(f"- **{label}:** {p[key]['summary']} ({_md_label(p[key])})")
    if "deployment" in p or any(k in p for k, _ in ROWS):
        lines.append("")
    if "capabilities" in p:
        caps = ", ".join(p["capabilities"]) or "none declared"
        lines += [f"**Capabilities:** {caps} (difficulty {p['difficulty']})", ""]
    if "postmortem" in p:
        pm = p["postmortem"]
        lines += ["## Post-mortem", "",
                  f"*Version {pm['version']}, {pm['words']} words, submitted {pm['submitted_on']}*",
                  "", pm["text"].strip(), ""]
    if p.get("lessons"):
        lines += ["## Lessons", ""]
        lines += [f"- *{lesson['kind'].replace('_', ' ')}:* {lesson['text']}"
                  for lesson in p["lessons"]]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def index_markdown(doc: dict[str, Any]) -> str:
    lines = [f"# {doc['learner']}'s AI engineering portfolio", ""]
    for p in doc["projects"]:
        lines.append(f"- [{p['title']}](project-{p['id']}.md) — {p['status']}")
    if not doc["projects"]:
        lines.append("Nothing published yet.")
    return "\n".join(lines) + "\n"


# -- HTML ----------------------------------------------------------------------------------

def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _link(url: str) -> str:
    # Only web addresses become links (no javascript: or file: from a record).
    if not url.startswith(("https://", "http://")):
        return _e(url)
    return f'<a href="{_e(url)}" rel="noopener noreferrer">{_e(url)}</a>'


def _badge(c: dict[str, Any]) -> str:
    if c.get("verified"):
        return (f'<span class="badge verified">verified</span> '
                f'<span class="muted small">{_e(c["how"])}, {_e(c["when"])}</span>')
    return (f'<span class="badge stated">stated</span> '
            f'<span class="muted small">by the learner, {_e(c.get("when"))}</span>')


def _page(title: str, css: str, body: str) -> str:
    return (f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta name="referrer" content="no-referrer">\n'
            f'<title>{_e(title)}</title>\n<link rel="stylesheet" href="{_e(css)}">\n'
            f'</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n')


def project_html(p: dict[str, Any], *, css: str, back: str) -> str:
    out = [f'<p class="small"><a href="{_e(back)}">← All projects</a></p>',
           f"<h1>{_e(p['title'])}</h1>", f'<p class="muted">{_e(p["status"])}</p>']
    for key, label in (("problem", "Problem"), ("audience", "Who has it"),
                       ("why_me", "Why me"), ("success_criteria", "Success looks like")):
        if p.get(key):
            out.append(f"<p><strong>{label}:</strong> {_e(p[key])}</p>")
    if "mvp" in p:
        out.append("<h2>What was built</h2><ul>")
        out += [f"<li>{_e(f)}</li>" for f in p["mvp"]["features"]]
        out.append("</ul>")
        if p["mvp"].get("usage_note"):
            out.append(f'<p class="small">From a real run: {_e(p["mvp"]["usage_note"])}</p>')
    if p.get("repository"):
        out.append(f"<p><strong>Repository:</strong> {_link(p['repository'])}</p>")
    rows = []
    if "deployment" in p:
        d = p["deployment"]
        state = "verified" if d["live"] else "down"
        rows.append(f'<tr><th>Live URL</th><td>{_link(d["url"])}<br>'
                    f'<span class="badge {state}">{_e(d["status"])}</span> '
                    f'<span class="muted small">{_e(d["how"])}</span></td></tr>')
    for key, label in ROWS:
        if key in p:
            rows.append(f"<tr><th>{label}</th><td>{_e(p[key]['summary'])}<br>"
                        f"{_badge(p[key])}</td></tr>")
    if rows:
        out.append('<h2>Evidence</h2><table class="claims">' + "".join(rows) + "</table>")
    if "capabilities" in p:
        out.append(f"<h2>Capabilities <span class=\"muted small\">difficulty "
                   f"{_e(p['difficulty'])}</span></h2><ul class=\"caps\">")
        out += [f"<li>{_e(c)}</li>" for c in p["capabilities"]]
        out.append("</ul>")
    if "postmortem" in p:
        pm = p["postmortem"]
        out.append(f'<h2>Post-mortem</h2><p class="muted small">Version {_e(pm["version"])}, '
                   f'{_e(pm["words"])} words, submitted {_e(pm["submitted_on"])}</p>'
                   f'<div class="postmortem">{markdown_html(pm["text"])}</div>')
    if p.get("lessons"):
        out.append("<h2>Lessons</h2><ul>")
        out += [f"<li><strong>{_e(lesson['kind'].replace('_', ' '))}:</strong> "
                f"{_e(lesson['text'])}</li>" for lesson in p["lessons"]]
        out.append("</ul>")
    out.append('<footer>Every claim says how it is known: <em>verified</em> means the coach '
               'checked it itself; <em>stated</em> means the learner reported it.</footer>')
    return _page(f"{p['title']} · portfolio", css, "\n".join(out))


def index_html(doc: dict[str, Any], *, css: str, href: Callable[[int], str]) -> str:
    out = [f"<h1>{_e(doc['learner'])}'s AI engineering portfolio</h1>",
           f'<p class="muted">{len(doc["projects"])} project(s)</p>']
    for p in doc["projects"]:
        live = ""
        if "deployment" in p:
            state = "verified" if p["deployment"]["live"] else "down"
            live = f' <span class="badge {state}">{_e(p["deployment"]["status"])}</span>'
        out.append(f'<article class="card"><h2><a href="{_e(href(p["id"]))}">'
                   f'{_e(p["title"])}</a></h2><p class="muted small">{_e(p["status"])}{live}</p>'
                   + (f"<p>{_e(p['problem'])}</p>" if p.get("problem") else "")
                   + "</article>")
    if not doc["projects"]:
        out.append('<p class="muted">Nothing published yet.</p>')
    return _page(f"{doc['learner']} · portfolio", css, "\n".join(out))


# -- files ---------------------------------------------------------------------------------

def files(doc: dict[str, Any], fmt: str) -> dict[str, str]:
    """File name -> text of the export in `fmt`."""
    if fmt == "json":
        return {"portfolio.json": to_json(doc)}
    if fmt == "md":
        out = {f"project-{p['id']}.md": project_markdown(p) for p in doc["projects"]}
        return {"README.md": index_markdown(doc), **out}
    if fmt == "html":
        out = {f"project-{p['id']}.html": project_html(p, css="style.css", back="index.html")
               for p in doc["projects"]}
        return {"index.html": index_html(doc, css="style.css",
                                         href=lambda pid: f"project-{pid}.html"),
                "style.css": CSS, **out}
    raise CoachError(f"unknown format {fmt!r}: choose html, md or json")


def write(doc: dict[str, Any], out: Path, fmt: str) -> list[str]:
    """Write the export into `out` (created if needed); returns the file names written."""
    written = files(doc, fmt)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for old in out.iterdir():
            if OWNED.fullmatch(old.name) and old.name not in written:
                old.unlink()
        for name, text in written.items():
            (out / name).write_text(text, encoding="utf-8", newline="\n")
    except OSError as exc:
        raise CoachError(f"cannot write the portfolio to {out}: {exc.strerror or exc}") from exc
    return sorted(written)
