"""Playbook entries: Markdown files with YAML front matter, validated on load."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from memory.vocabulary import CAPABILITIES, STEPS

ENTRIES_DIR = Path(__file__).with_name("entries")

FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n(.*)\Z", re.DOTALL)


class PlaybookError(Exception):
    """A playbook entry that cannot be used; the message names the file and the problem."""


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str = Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
    title: str = Field(min_length=3)
    steps: tuple[str, ...] = Field(min_length=1)
    capabilities: tuple[str, ...] = ()
    try_this: str = Field(min_length=10)
    # Words learners use for this topic that the text may not (names of tools, slang).
    keywords: tuple[str, ...] = ()
    body: str = Field(min_length=40)

    @field_validator("steps")
    @classmethod
    def _known_steps(cls, steps: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [s for s in steps if s not in STEPS]
        if unknown:
            raise ValueError(f"unknown step(s) {unknown}; steps are {list(STEPS)}")
        return steps

    @field_validator("capabilities")
    @classmethod
    def _known_capabilities(cls, caps: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [c for c in caps if c not in CAPABILITIES]
        if unknown:
            raise ValueError(f"unknown capabilities {unknown}; known: {list(CAPABILITIES)}")
        return caps

    def paragraphs(self) -> list[str]:
        return [p.strip() for p in self.body.split("\n\n") if p.strip()]

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def parse_entry(path: Path) -> Entry:
    """One entry file, or a PlaybookError saying what is wrong with it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlaybookError(f"{path.name}: cannot read it ({exc})") from exc
    match = FRONT_MATTER.match(text.replace("\r\n", "\n"))
    if not match:
        raise PlaybookError(f"{path.name}: no front matter (the file must start with a "
                            "`---` line, YAML fields, and another `---` line)")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise PlaybookError(f"{path.name}: the front matter is not valid YAML ({exc})") from exc
    if not isinstance(meta, dict):
        raise PlaybookError(f"{path.name}: the front matter must be a mapping of fields")
    try:
        entry = Entry.model_validate({**meta, "body": match.group(2)})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}"
                             for e in exc.errors(include_url=False))
        raise PlaybookError(f"{path.name}: {problems}") from exc
    if entry.id != path.stem:
        raise PlaybookError(f"{path.name}: id {entry.id!r} must match the file name")
    return entry


def load_entries(folder: Path = ENTRIES_DIR) -> list[Entry]:
    """Every entry in a folder, in id order; the first malformed one stops the load."""
    paths = sorted(folder.glob("*.md"))
    if not paths:
        raise PlaybookError(f"no playbook entries in {folder}")
    entries = [parse_entry(p) for p in paths]
    seen: set[str] = set()
    for e in entries:
        if e.id in seen:
            raise PlaybookError(f"{e.id}.md: duplicate id {e.id!r}")
        seen.add(e.id)
    return entries
