"""The coaching playbook: curated entries on the craft, and a ranked search over them.

It sits just above `memory` (it imports only the vocabulary of steps and capabilities), so
tools, the offline coach, the CLI and the web app can all read it.
"""

from playbook.answer import answer_question
from playbook.entries import CAPABILITIES, STEPS, Entry, PlaybookError, load_entries
from playbook.search import Hit, Playbook, default_playbook

__all__ = ["CAPABILITIES", "STEPS", "Entry", "Hit", "Playbook", "PlaybookError",
           "answer_question", "default_playbook", "load_entries"]
