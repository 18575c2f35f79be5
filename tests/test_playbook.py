"""The playbook's entries, its loader and its search (in-process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from playbook import CAPABILITIES, STEPS, PlaybookError, answer_question, load_entries
from playbook.entries import ENTRIES_DIR
from playbook.search import Playbook, default_playbook
from playbook.text import Speller, one_edit
from tools import gates

GOOD = """---
id: {id}
title: A good entry
steps: [deploy]
capabilities: [scale]
try_this: Deploy it today and write down the URL.
---
A body long enough to be an entry: it says something useful about deploying.
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_playbook_covers_every_step_with_enough_entries() -> None:
    entries = load_entries()
    assert len(entries) >= 60
    for step in STEPS:
        assert len([e for e in entries if step in e.steps]) >= 5, step
    ids = {e.id for e in entries}
    for topic in ("four-pillars", "mistakes-five-common", "evals-vs-unit-tests",
                  "graders-llm-as-judge", "ci-github-actions", "tracing-tools",
                  "cost-prompt-caching", "retrieval-hybrid-search", "deploy-streamlit-demo",
                  "postmortem-structure", "repeat-next-project", "portfolio-hiring-manager"):
        assert topic in ids


def test_the_vocabulary_is_the_contracts() -> None:
    assert STEPS is gates.STEPS and CAPABILITIES is gates.CAPABILITIES


def test_entries_keep_to_a_few_short_paragraphs() -> None:
    for e in load_entries():
        assert 2 <= len(e.paragraphs()) <= 4, e.id
        assert len(e.body.split()) <= 260, e.id


@pytest.mark.parametrize(("text", "complaint"), [
    ("no front matter here", "no front matter"),
    ("---\ntitle: [unclosed\n---\nbody", "not valid YAML"),
    ("---\n- a list\n---\nbody", "must be a mapping"),
    (GOOD.format(id="bad-entry").replace("steps: [deploy]", "steps: [ship]"), "unknown step"),
    (GOOD.format(id="bad-entry").replace("[scale]", "[telepathy]"), "unknown capabilities"),
    (GOOD.format(id="bad-entry").replace("try_this: Deploy it today and write down the URL.\n",
                                         ""), "try_this: Field required"),
    (GOOD.format(id="other-id"), "must match the file name"),
])
def test_a_malformed_entry_is_refused_with_its_file_and_problem(
        tmp_path: Path, text: str, complaint: str) -> None:
    write(tmp_path, "good-entry.md", GOOD.format(id="good-entry"))
    write(tmp_path, "bad-entry.md", text)
    with pytest.raises(PlaybookError) as err:
        load_entries(tmp_path)
    assert str(err.value).startswith("bad-entry.md: ")
    assert complaint in str(err.value)


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError, match="no playbook entries"):
        load_entries(tmp_path)


def test_a_folder_of_good_entries_loads_and_searches(tmp_path: Path) -> None:
    write(tmp_path, "good-entry.md", GOOD.format(id="good-entry"))
    book = Playbook(load_entries(tmp_path))
    assert [h.entry.id for h in book.search("deploying")] == ["good-entry"]
    assert book.search("knitting patterns") == []


def test_the_step_boost_breaks_a_near_tie_toward_the_learners_step() -> None:
    book = default_playbook()
    question = "should i fine tune"
    at_build = book.search(question, step="build")[0].entry
    assert "build" in at_build.steps
    scores = {h.entry.id: h.score for h in book.search(question, step=None, limit=10)}
    boosted = {h.entry.id: h.score for h in book.search(question, step="build", limit=10)}
    assert all(boosted[i] > scores[i] for i in boosted if "build" in book.by_id[i].steps)


def test_typos_are_repaired_against_the_playbooks_own_words() -> None:
    assert one_edit("mcuh", "much") and one_edit("reqest", "request")
    assert not one_edit("weather", "whether")
    speller = Speller(["request", "request", "requests", "deploy"])
    assert speller.correct("reqest") == "request"
    assert speller.correct("pizza") == "pizza"
    top = default_playbook().search("whats the differnce between evals and unit tets")
    assert top[0].entry.id == "evals-vs-unit-tests"


def test_an_answer_names_its_source_and_its_try_this() -> None:
    answer = answer_question("what is an eval? is it like a unit test?", "problem")
    assert answer is not None
    assert answer.startswith("From the playbook, “Evals versus unit tests”:")
    assert "Try this: Sort your existing checks" in answer
    assert "You're at step 1 (problem); this matters most at step 4 (harden)" in answer


def test_an_answer_at_the_entrys_own_step_needs_no_pointer() -> None:
    answer = answer_question("which tracing tool would you recommend?", "harden")
    assert answer is not None and "“Tracing tools and what each is good at”" in answer
    assert "You're at" not in answer


def test_an_off_topic_question_gets_an_honest_no_and_two_titles() -> None:
    answer = answer_question("who won the football match yesterday?", "build")
    assert answer is not None
    assert answer.startswith("I don't have a playbook entry that answers that")
    assert answer.count("“") == 2


def test_a_message_with_no_words_gets_no_answer() -> None:
    assert answer_question("???", "build") is None


def test_the_entries_folder_ships_in_the_package() -> None:
    assert ENTRIES_DIR.is_dir() and ENTRIES_DIR.parent.name == "playbook"
