"""Rate limits and the per-learner running-turn cap of `coach serve`.

Counters live where every worker process and machine sees them: the coach's database
by default, Redis when `COACH_REDIS_URL` is set (the `limits` library's fixed windows
on either). A refused request answers 429 with `Retry-After`. Limits can be changed
with `COACH_RATE_LIMITS`, e.g. `signin=5/minute;messages=120/hour`.

What is limited, and keyed by what:
- `signin`: failed sign-ins (token form and one-time links), per client address;
- `bad_token`: requests with an unknown Bearer token, per client address;
- `threads`: thread creation, per learner;
- `messages`: learner messages (turns), per learner;
- `ingest`: OTLP exports (`POST /v1/traces`), per ingest token (an unknown ingest
  token counts as a `bad_token` of its address).
Apart from the rates, a learner may have at most `COACH_TURNS_PER_LEARNER` turns running
at once (default 3), so one learner's slow turns (a deployment check against a slow host)
can never hold every turn worker of the server.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from fastapi import HTTPException, Request
from limits import RateLimitItem, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import Engine

from memory.ratelimits import DatabaseStorage, TurnSlots

LIMITS_VARIABLE = "COACH_RATE_LIMITS"
REDIS_VARIABLE = "COACH_REDIS_URL"
TURNS_VARIABLE = "COACH_TURNS_PER_LEARNER"
DEFAULT_LIMITS = {"signin": "10/minute", "bad_token": "30/minute", "threads": "30/minute",
                  "messages": "60/minute", "ingest": "600/minute"}
DEFAULT_TURNS_PER_LEARNER = 3
# Refused keys a worker remembers (addresses of a flood); beyond it, storage answers.
MAX_REMEMBERED = 10_000


class RateLimited(HTTPException):
    def __init__(self, detail: str, retry_after: int):
        super().__init__(429, detail, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


def limits_from(text: str | None) -> dict[str, RateLimitItem]:
    """The limits, with `name=N/period` overrides separated by `;` (or `,`)."""
    chosen = dict(DEFAULT_LIMITS)
    for part in (text or "").replace(",", ";").split(";"):
        name, _, value = part.partition("=")
        if name.strip():
            if name.strip() not in DEFAULT_LIMITS:
                raise ValueError(f"{LIMITS_VARIABLE}: unknown limit {name.strip()!r} "
                                 f"(known: {', '.join(DEFAULT_LIMITS)})")
            chosen[name.strip()] = value.strip()
    return {name: parse(value) for name, value in chosen.items()}


@dataclass
class Guard:
    limiter: FixedWindowRateLimiter
    items: dict[str, RateLimitItem]
    slots: TurnSlots
    # (limit, who) → when its window ends, for keys the shared storage has refused. A fixed
    # window only opens again when it ends, so until then this worker refuses from memory:
    # a flood past its limit costs no storage write or read per request.
    refused: dict[tuple[str, str], float] = field(default_factory=dict)

    def hit(self, name: str, who: str) -> None:
        """Count one request; RateLimited when it is one too many."""
        self._known_refusal(name, who)
        if not self.limiter.hit(self.items[name], name, who):
            raise self.refusal(name, who)

    def check(self, name: str, who: str) -> None:
        """RateLimited if `who` is already over the limit (counts nothing)."""
        self._known_refusal(name, who)
        if not self.limiter.test(self.items[name], name, who):
            raise self.refusal(name, who)

    def _known_refusal(self, name: str, who: str) -> None:
        reset = self.refused.get((name, who))
        if reset is not None:
            if reset > time.time():
                raise self._refusal_until(name, reset)
            self.refused.pop((name, who), None)

    def refusal(self, name: str, who: str) -> RateLimited:
        reset = self.limiter.get_window_stats(self.items[name], name, who).reset_time
        if len(self.refused) >= MAX_REMEMBERED:
            now = time.time()
            for key in [k for k, until in list(self.refused.items()) if until <= now]:
                self.refused.pop(key, None)
        if len(self.refused) < MAX_REMEMBERED:
            self.refused[(name, who)] = reset
        return self._refusal_until(name, reset)

    def _refusal_until(self, name: str, reset: float) -> RateLimited:
        item = self.items[name]
        wait = max(1, math.ceil(reset - time.time()))
        return RateLimited(f"too many requests ({name}: at most {item.amount} per "
                           f"{item.multiples} {item.GRANULARITY.name}); try again in "
                           f"{wait} s", wait)

    def take_turn(self, user_id: int) -> str:
        slot = self.slots.take(user_id)
        if slot is None:
            raise RateLimited(f"you already have {self.slots.limit} turns running; wait for "
                              "one of them to answer, then send this again", 2)
        return slot


def storage_for(engine: Engine, env: Mapping[str, str]) -> Storage:
    url = env.get(REDIS_VARIABLE, "").strip()
    if not url:
        return DatabaseStorage(engine)
    # Counters are per database: every worker and machine serving it shares them, and
    # servers of other databases on the same Redis do not.
    where = engine.url.render_as_string(hide_password=True)
    storage = storage_from_string(url, key_prefix="coach:" + hashlib.sha256(
        where.encode()).hexdigest()[:16])
    assert isinstance(storage, Storage)  # a redis:// URL gives the synchronous storage
    return storage


def make_guard(engine: Engine, env: Mapping[str, str] | None = None) -> Guard:
    env = os.environ if env is None else env
    turns = int(env.get(TURNS_VARIABLE) or DEFAULT_TURNS_PER_LEARNER)
    return Guard(FixedWindowRateLimiter(storage_for(engine, env)),
                 limits_from(env.get(LIMITS_VARIABLE)), TurnSlots(engine, turns))


def guard_of(request: Request) -> Guard:
    guard: Guard = request.app.state.guard
    return guard


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def ingest_key(token: str) -> str:
    """The `ingest` counter of one ingest token: a digest, so no part of the token is kept
    in the counters' store."""
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]
