"""HTML pages from the files in `templates/`: `$name` placeholders, every value escaped.

The pages are shells; their data comes from the JSON API through the page's script, so
the server renders only the learner's name and a few fixed strings.
"""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from string import Template

from markdown_it import MarkdownIt

TEMPLATES = Path(__file__).parent / "templates"


@cache
def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


def render(name: str, **values: str) -> str:
    return _template(name).substitute({k: html.escape(v) for k, v in values.items()})


def page(name: str, *, title: str, user: str, script: str) -> str:
    """A signed-in page: the shared layout around the page's own body."""
    body = _template(name).substitute(user=html.escape(user))
    return _template("layout.html").substitute(
        title=html.escape(title), user=html.escape(user), script=html.escape(script),
        body=body)


@cache
def _markdown() -> MarkdownIt:
    # CommonMark with tables; `html: False` escapes any raw HTML in the text, and
    # markdown-it's own link check refuses javascript:, vbscript:, file: and data: URLs
    # (except images), so a reply can format but never inject markup or script.
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False,
                                     "breaks": True}).enable("table")


def markdown_html(text: str) -> str:
    """The coach's Markdown as safe HTML, rendered on the server (the page needs no
    Markdown script, and its CSP stays `script-src 'self'`)."""
    return _markdown().render(text)

