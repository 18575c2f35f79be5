"""`coach chat` in a terminal: prompt_toolkit driven through a real pipe input, and `@file`."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from agent.commands.chat import expand_file, interactive_lines
from agent.errors import CoachError
from agent.replies import recap_text

PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"


def typed(keys: str, history: Path) -> list[str]:
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        return list(interactive_lines(history, lambda: "step 1/6", input=pipe,
                                      output=DummyOutput()))


def test_a_pasted_block_is_one_message_and_enter_sends_it(tmp_path: Path) -> None:
    block = "Night nurses hand over twenty patients\nfrom handwritten notes.\nIt's for nurses."
    got = typed(f"{PASTE_START}{block}{PASTE_END}\rstatus\rquit\r", tmp_path / "h")
    assert got == [block, "status"]


def test_ctrl_d_and_ctrl_c_leave_cleanly(tmp_path: Path) -> None:
    assert typed("hello\r\x04", tmp_path / "h") == ["hello"]
    assert typed("hello\r\x03", tmp_path / "h") == ["hello"]


def test_history_is_kept_in_the_coach_home_for_the_learner_only(tmp_path: Path) -> None:
    history = tmp_path / "home" / "chat_history"
    typed("call it Handover Helper\r\x04", history)
    assert "call it Handover Helper" in history.read_text()
    assert stat.S_IMODE(history.stat().st_mode) == 0o600
    # The up arrow brings the last message back in the next session.
    assert typed("\x1b[A\r\x04", history) == ["call it Handover Helper"]


def test_blank_lines_are_not_messages(tmp_path: Path) -> None:
    assert typed("\r   \rhi\r\x04", tmp_path / "h") == ["hi"]


def test_a_file_anywhere_in_a_message_is_sent_as_its_text(tmp_path: Path) -> None:
    notes = tmp_path / "why.md"
    notes.write_text("I was a night nurse for 8 years")
    assert expand_file(f"about me: @{notes} thanks") == \
        "about me: I was a night nurse for 8 years thanks"
    assert expand_file(f"Post-mortem: @{notes}") == "Post-mortem: I was a night nurse for 8 years"


def test_an_email_address_is_not_a_file() -> None:
    assert expand_file("mail me at ann@example.com") == "mail me at ann@example.com"


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CoachError, match="cannot read .*nope.md"):
        expand_file(f"Post-mortem: @{tmp_path / 'nope.md'}")


def test_the_recap_is_two_lines_saying_where_the_project_stands() -> None:
    project = {"id": 3, "title": "Quiz Builder", "step": "build",
               "gate": {"missing": [{"field": "repo", "message": "a repository"},
                                    {"field": "usage_note", "message": "a usage note"}]}}
    recap = recap_text(project).splitlines()
    assert recap == ["Welcome back. Project #3 “Quiz Builder” is at step 2/6: build the "
                     "smallest useful tool.",
                     "Still needed: a repository; a usage note."]
    assert len(recap_text(None).splitlines()) == 2
