"""`coach serve`: the web app and JSON API (uvicorn), for one learner or a cohort."""

from __future__ import annotations

import ipaddress
import os

import typer

from agent.commands.common import open_engine_for
from agent.errors import CoachError
from agent.portfolio.recheck import interval_hours
from agent.settings import Settings
from memory.accounts import LINK_TTL, create_link, web_users
from memory.users import ensure_user

APP = "agent.web.app:create_app_from_env"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def settings_env(settings: Settings) -> dict[str, str]:
    """What each worker process needs to rebuild these settings (`create_app_from_env`)."""
    budget = settings.budget_usd
    return {
        "COACH_HOME": str(settings.home), "COACH_DATABASE_URL": settings.database_url,
        "COACH_USER": settings.user, "COACH_MODEL": settings.model,
        "COACH_BUDGET_USD": "none" if budget is None else str(budget),
        "COACH_ALLOW_PRIVATE_URLS": "1" if settings.allow_private_urls else "",
    }


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def serve(ctx: typer.Context,
          host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
          port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
          workers: int = typer.Option(1, "--workers", min=1, max=64,
                                      help="Worker processes (use PostgreSQL for several)."),
          ) -> None:
    """Serve the web app and the JSON API. On loopback, prints a sign-in link for you;
    on any other address, at least one user must exist (`coach users add NAME`)."""
    from agent.stack import make_model  # fail here, in one line, if the model is unusable

    settings: Settings = ctx.obj
    make_model(settings.model)
    interval_hours(os.environ.get("COACH_RECHECK_HOURS"))  # a bad value fails here, in one line
    loopback = is_loopback(host)
    with open_engine_for(settings) as engine:
        code = None
        if loopback:
            code = create_link(engine, ensure_user(engine, settings.user))
        elif not web_users(engine):
            raise CoachError(f"serving on {host} (not loopback) needs at least one user with a "
                             "token: run `coach users add NAME` first, or serve on 127.0.0.1")
    # Worker processes read their settings from the environment they inherit.
    os.environ.update(settings_env(settings))
    base = f"http://{_url_host(host)}:{port}"
    if code is not None:
        minutes = int(LINK_TTL.total_seconds() // 60)
        typer.echo(f"Sign in as {settings.user}: {base}/signin?code={code} "
                   f"(works once, within {minutes} minutes)")
    typer.echo(f"coach serve: {base} · {workers} worker(s) · API docs at {base}/docs · "
               f"database {settings.database_url.split('://')[0]}", err=True)
    import uvicorn

    uvicorn.run(APP, factory=True, host=host.strip("[]"), port=port, workers=workers,
                timeout_graceful_shutdown=10)
