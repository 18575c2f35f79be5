"""HTML pages from the files in `templates/`: `$name` placeholders, every value escaped.

The pages are shells; their data comes from the JSON API through the page's script, so
the server renders only the learner's name and a few fixed strings.
"""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from string import Template

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
