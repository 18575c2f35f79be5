"""Keyset pages for the lists (threads, traces, projects), the same from the API and the CLI.

A cursor names where a page ended, the last row's sort key, so the next page starts right
after that row whatever was added or removed meanwhile: an offset would skip or repeat
rows when new ones arrive. To a client it is opaque (URL-safe base64 of a small JSON
list, times as microseconds since the epoch), tagged with the list it pages so that one
list's cursor is refused by another.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

Key = datetime | int | str
EPOCH, MICROSECOND = datetime(1970, 1, 1, tzinfo=UTC), timedelta(microseconds=1)
# Ids are 32-bit columns: a larger one would make PostgreSQL raise instead of find nothing.
MAX_ID = 2**31 - 1
# PostgreSQL refuses NUL in text; no id or timestamp we hand out holds a control character.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BadCursor(ValueError):
    """Not a cursor that this list handed out."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"cursor: not a cursor from the {kind} list (pass back `next_cursor`)")


def make_cursor(kind: str, *key: Key) -> str:
    """Where a page of `kind` ended: its last row's sort key."""
    raw = [kind, *(_micros(k) if isinstance(k, datetime) else k for k in key)]
    encoded = base64.urlsafe_b64encode(json.dumps(raw, separators=(",", ":")).encode())
    return encoded.decode().rstrip("=")


def read_cursor(cursor: str, kind: str, *shape: type[Key]) -> tuple[Any, ...]:
    """The sort key a cursor of `kind` holds, one value per type in `shape`; BadCursor for
    anything else (a cursor of another list, an edited or made-up one)."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(shape) + 1 or raw[0] != kind:
            raise ValueError(kind)
        return tuple(_value(value, want) for value, want in zip(raw[1:], shape, strict=True))
    except (ValueError, TypeError, OverflowError) as exc:
        raise BadCursor(kind) from exc


def _micros(when: datetime) -> int:
    # Whole microseconds since the epoch: exact (a float would round), and short in a
    # command line. A time without its zone cannot be placed, and the store never has one.
    if when.utcoffset() is None:
        raise ValueError(f"{when} has no time zone")
    return (when - EPOCH) // MICROSECOND


def _value(value: object, want: type[Key]) -> Key:
    if want is datetime and type(value) is int:
        return EPOCH + value * MICROSECOND
    if want is int and type(value) is int and 0 <= value <= MAX_ID:
        return value
    if want is str and isinstance(value, str) and not CONTROL.search(value):
        return value
    raise ValueError(f"{value!r} is not a {want.__name__}")
