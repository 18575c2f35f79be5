"""Settings from explicit arguments first, then the environment, then defaults."""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

DEFAULT_CLAUDE_MODEL = "claude-sonnet-5-5"
DEFAULT_BUDGET_USD = Decimal("5.00")


class SettingsError(ValueError):
    pass


def _home(env: Mapping[str, str]) -> Path:
    if env.get("COACH_HOME"):
        return Path(env["COACH_HOME"]).expanduser()
    xdg = env.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "portfolio-coach"


def _user(env: Mapping[str, str]) -> str:
    if env.get("COACH_USER"):
        return env["COACH_USER"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "learner"


def _budget(raw: str | None) -> Decimal | None:
    if raw is None or raw.strip() == "":
        return DEFAULT_BUDGET_USD
    if raw.strip().lower() == "none":
        return None
    try:
        value = Decimal(raw.strip())
    except InvalidOperation as exc:
        raise SettingsError(f"COACH_BUDGET_USD must be an amount or 'none', not {raw!r}") from exc
    if value < 0:
        raise SettingsError("COACH_BUDGET_USD cannot be negative")
    return value


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    user: str
    model: str
    budget_usd: Decimal | None
    allow_private_urls: bool
    debug: bool = False

    @classmethod
    def load(cls, *, db: str | None = None, user: str | None = None, model: str | None = None,
             debug: bool = False, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = _home(env)
        database_url = db or env.get("COACH_DATABASE_URL") or f"sqlite:///{home / 'coach.db'}"
        if "://" not in database_url:
            database_url = f"sqlite:///{Path(database_url).expanduser().resolve()}"
        default_model = DEFAULT_CLAUDE_MODEL if env.get("ANTHROPIC_API_KEY") else "offline"
        name = (_user(env) if user is None else user).strip()
        if not name or len(name) > 200:
            raise SettingsError("the user name must be 1-200 characters")
        return cls(
            home=home,
            database_url=database_url,
            user=name,
            model=model or env.get("COACH_MODEL") or default_model,
            budget_usd=_budget(env.get("COACH_BUDGET_USD")),
            allow_private_urls=env.get("COACH_ALLOW_PRIVATE_URLS") == "1",
            debug=debug or env.get("COACH_DEBUG") == "1",
        )
