"""Data at rest: the coach's folder and database files are readable by their owner only."""

from __future__ import annotations

import stat
from pathlib import Path

from sqlalchemy import text

from memory.store import open_engine
from tests.learner import coach_env, lines_in, run_coach


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_data_folder_is_0700_and_the_database_files_0600(tmp_path: Path) -> None:
    home = tmp_path / "a" / "coach-home"
    engine = open_engine(f"sqlite:///{home / 'coach.db'}")
    try:
        with engine.begin() as conn:  # a write, so the -wal and -shm files exist
            conn.execute(text("CREATE TABLE probe (x INTEGER)"))
        files = sorted(p.name for p in home.iterdir())
        assert {"coach.db", "coach.db-wal", "coach.db-shm"} <= set(files), files
        assert {p.name: mode(p) for p in home.iterdir()} == dict.fromkeys(files, 0o600)
    finally:
        engine.dispose()
    assert mode(home) == 0o700 and mode(home.parent) == 0o700  # both created here


def test_an_existing_folder_keeps_its_mode_and_an_old_0644_database_is_tightened(
        tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    old = folder / "coach.db"
    old.touch()
    old.chmod(0o644)
    open_engine(f"sqlite:///{old}").dispose()
    assert mode(folder) == 0o755
    assert mode(old) == 0o600


def test_coach_chat_creates_coach_home_private(tmp_path: Path) -> None:
    home = tmp_path / "fresh-home"
    done = run_coach("chat", "--json", env=coach_env(home), stdin=lines_in(["help"]))
    assert done.returncode == 0, done.stderr
    assert mode(home) == 0o700
    dbs = [p for p in home.iterdir() if p.name.startswith("coach.db")]
    assert dbs and all(mode(p) == 0o600 for p in dbs)
