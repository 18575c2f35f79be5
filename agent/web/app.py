"""The FastAPI application: built from settings, with no module-level state.

`create_app(settings)` is what tests and a single process use; uvicorn's worker
processes call `create_app_from_env()` (an import-string factory), which reads the
settings `coach serve` put in the environment.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from langgraph.checkpoint.base import BaseCheckpointSaver
from opentelemetry import trace
from sqlalchemy import Engine
from starlette.middleware.trustedhost import TrustedHostMiddleware

from agent.errors import MAX_MESSAGE_BYTES
from agent.portfolio.recheck import interval_hours, recheck
from agent.portfolio.schedule import Schedule
from agent.settings import Settings
from agent.web.errors import install_handlers
from agent.web.middleware import BodyLimit, SecurityHeaders
from agent.web.ratelimit import LIMITS_VARIABLE, make_guard
from memory.checkpoints import open_checkpointer
from memory.store import open_engine
from seam.model import Model
from telemetry.tracing import coach_provider, flush
from tools.deployment import AddressPolicy
from tools.outbound import Outbound

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
# Request bodies above this are refused with 413. A message is at most 32 KB of UTF-8, and
# JSON may escape each non-ASCII character as six bytes (\u00e9), hence the margin.
MAX_BODY_BYTES = 6 * MAX_MESSAGE_BYTES + 4096
# Turns running at once in one worker; Claude turns mostly wait on the network.
TURN_THREADS = 16
# Slow network checks (a deployment fetch, a repository clone) running at once in one
# worker: half the turn pool, so the other half always answers everyone else.
NETWORK_CHECKS = TURN_THREADS // 2
# How long a web turn waits for another turn on the same thread before answering 409.
LEASE_WAIT_S = 2.0

# Set by `coach serve --allowed-hosts` for its worker processes.
ALLOWED_HOSTS_VARIABLE = "COACH_ALLOWED_HOSTS"

ModelFactory = Callable[[], Model]


@dataclass
class Web:
    """What every request of one worker process shares: connections, not user state."""

    settings: Settings
    engine: Engine
    checkpointer: BaseCheckpointSaver
    tracer_provider: trace.TracerProvider
    model_factory: ModelFactory
    turns: ThreadPoolExecutor
    outbound: Outbound


def web(request: Request) -> Web:
    """FastAPI dependency: the worker's shared resources."""
    state: Web = request.app.state.web
    return state


def default_factory(settings: Settings) -> ModelFactory:
    from agent.stack import make_model

    return lambda: make_model(settings.model)


def recheck_schedule(settings: Settings, engine: Engine) -> Schedule | None:
    """The daily deployment re-check (COACH_RECHECK_HOURS; `0`/`off` disables), started in
    every worker; the lease row in the database lets one of them run each tick."""
    hours = interval_hours(os.environ.get("COACH_RECHECK_HOURS"))
    if hours is None:
        return None
    policy = AddressPolicy(allow_private=settings.allow_private_urls)
    schedule = Schedule(engine, hours, lambda tick: recheck(
        engine, user_id=None, trigger="schedule", policy=policy, tick=tick))
    schedule.start()
    return schedule


def create_app(settings: Settings, model_factory: ModelFactory | None = None, *,
               allowed_hosts: list[str] | None = None,
               rate_limits: str | None = None,
               network_checks: int = NETWORK_CHECKS) -> FastAPI:
    """`rate_limits` overrides COACH_RATE_LIMITS (same `name=N/period;…` form)."""
    factory = model_factory or default_factory(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        factory()  # a model that cannot be made (no API key) stops start-up with its reason
        engine = open_engine(settings.database_url)
        provider = coach_provider(engine)
        try:
            with open_checkpointer(settings.database_url) as saver, \
                    ThreadPoolExecutor(TURN_THREADS, thread_name_prefix="turn") as pool:
                app.state.web = Web(settings, engine, saver, provider, factory, pool,
                                    Outbound(network_checks))
                env = dict(os.environ)
                if rate_limits is not None:
                    env[LIMITS_VARIABLE] = rate_limits
                app.state.guard = make_guard(engine, env)
                schedule = recheck_schedule(settings, engine)
                try:
                    yield
                finally:
                    if schedule is not None:
                        schedule.stop()
        finally:
            flush(provider)
            engine.dispose()

    app = FastAPIOffline(
        title="portfolio-coach", version="0.1.0", lifespan=lifespan,
        static_url="/docs-static",  # Swagger UI shipped with fastapi-offline: no CDN
        description="Coaching sessions, portfolio, costs and traces of the signed-in "
                    "learner. Authenticate with `Authorization: Bearer TOKEN` (from `coach "
                    "users add NAME`) or the session cookie of the sign-in page.")
    install_handlers(app)
    app.add_middleware(SecurityHeaders)
    from agent.web import api, auth, dashboards, ingest, pages, playbook, portfolio_api, share

    # Before anything reads the body. OTLP exports are batches of spans, hence their own.
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES,
                       overrides={"/v1/traces": ingest.INGEST_MAX_BODY})
    if allowed_hosts:
        # Outermost: a request for another Host (DNS rebinding, a stray vhost) is refused
        # with 400 before anything else runs.
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)

    app.include_router(api.router)
    app.include_router(dashboards.router)
    app.include_router(playbook.router)
    app.include_router(auth.router)
    app.include_router(pages.router)
    app.include_router(share.router)
    app.include_router(portfolio_api.router)
    app.include_router(ingest.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def create_app_from_env() -> FastAPI:
    """The import-string factory for `uvicorn --workers N` (settings from COACH_* vars)."""
    hosts = [h.strip() for h in os.environ.get(ALLOWED_HOSTS_VARIABLE, "").split(",")
             if h.strip()]
    return create_app(Settings.load(), allowed_hosts=hosts or None)
