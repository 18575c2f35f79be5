"""What a learner's message is, before anything is stored.

`understand` classifies the act — small talk, a question, a command (typos tolerated), an
undo, a correction, a rename, a change of mind, an answer, off-topic — and, for the acts
that carry facts, which facts. Only answers, corrections, renames and changes of mind
store anything, and only values that pass their field's sanity check; anything unclear
becomes one short clarifying question instead of a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import process
from rapidfuzz.distance import OSA

from agent.answers import read_message
from agent.facts import clean, enumerate_items, extract

ACTS = ("smalltalk", "question", "command", "undo", "correction", "rename",
        "change_of_mind", "answer", "offtopic")

# Typo-tolerant commands: rapidfuzz's ratio over whole short messages ("stauts").
COMMAND_PHRASES: dict[str, str] = {
    "status": "status", "show status": "status", "show me the status": "status",
    "where am i": "status", "what have you saved": "status", "what did you save": "status",
    "portfolio": "portfolio", "show portfolio": "portfolio", "my portfolio": "portfolio",
    "next": "next", "next step": "next", "check the gate": "next", "move on": "next",
    "help": "help", "draft post-mortem": "draft", "draft postmortem": "draft",
    "draft the post-mortem": "draft", "draft my post-mortem": "draft",
    "write a draft": "draft", "draft": "draft", "undo": "undo", "revert": "undo",
}
UNDO = re.compile(
    r"^(?:please\s+|pls\s+|can\s+you\s+|could\s+you\s+)?(?:undo|revert|take\s+(?:that|it)\s+back|"
    r"scratch\s+that|roll\s+(?:that|it)\s+back|remove\s+(?:that|the\s+last\s+(?:one|thing|change))|"
    r"delete\s+(?:that|the\s+last\s+(?:one|thing|change))|forget\s+(?:that|the\s+last)|"
    r"go\s+back|cancel\s+(?:that|the\s+last)|don'?t\s+save\s+that|unsave|put\s+it\s+back)\b",
    re.IGNORECASE)
RENAME = re.compile(
    r"\b(?:rename\s+(?:the\s+|my\s+|this\s+)?(?:project|it|title|thing)?\s*(?:to|as|into)?|"
    r"change\s+(?:the|its|my)\s+(?:title|name)\s+to|(?:new|better)\s+(?:title|name)\s*(?::|is|-)|"
    r"re-?title\s+it(?:\s+to)?|call\s+it(?=.*\binstead\b)|"
    r"(?:title|name)\s+should\s+be|let'?s\s+rename\s+it(?:\s+to)?)\s+[\"“'‘]?(?P<v>[^\"”’]+?)"
    r"[\"”'’]?(?:\s+instead)?\s*[.!?]*\s*$", re.IGNORECASE)
CHANGE_OF_MIND = re.compile(
    r"(?:let\s+me\s+start\s+(?:again|over)|let'?s\s+start\s+(?:again|over)|start\s+over|"
    r"i(?:'ve|\s+have)?\s+changed\s+my\s+mind|new\s+idea|different\s+idea|scrap\s+(?:that|it|"
    r"this)|forget\s+(?:it|all\s+that|everything)|on\s+second\s+thought|"
    r"i\s+want\s+to\s+do\s+something\s+else|my\s+real\s+idea|actually\s+i\s+want\s+to\s+"
    r"(?:build|make|do)\s+(?:a|an|something)\s+(?:different|else|other))[\s,.:;!-]*",
    re.IGNORECASE)
IDEA_PREFIX = re.compile(r"^(?:ok(?:ay)?[,.!\s]*)?(?:so\s+)?(?:(?:my\s+|a\s+)?(?:real\s+|actual\s+|"
                         r"new\s+)?idea\s*(?:is|:)?|the\s+(?:real\s+|new\s+)?idea\s*(?:is|:)|"
                         r"instead,?|let\s+me\s+start\s+(?:again|over)[.,!]*)\s*",
                         re.IGNORECASE)
CORRECTION = re.compile(
    r"^(?:(?:no+[,.!:\s]+)+|nope[,.!\s]+|wrong[,.!\s]+|not\s+quite[,.!\s]+|oops[,.!\s]+|"
    r"sorry[,.!\s]+(?:i\s+meant\s+)?|wait[,.!\s]+|hm+[,.!\s]+wait[,.!\s]+|"
    r"correction\s*[:,-]?\s*|(?:that'?s|that\s+is)\s+(?:wrong|not\s+right|incorrect)[,.!\s]*|"
    r"i\s+meant\s+|(?:actually|sorry),?\s+(?=(?:the|it'?s|it\s+is|i\s+meant|its)\b))"
    r"(?:i\s+meant\s+|it\s+should\s+(?:be|say)\s+|make\s+it\s+)?", re.IGNORECASE)
PROTEST = re.compile(
    r"that'?s\s+not|not\s+what\s+i|i\s+was\s+(?:just|only)|i\s+didn'?t\s+(?:mean|say|ask)|wrong|"
    r"not\s+right|incorrect|misunderst|misread|don'?t\s+save|^no+\W*$|^nope\W*$|not\s+my\s+project",
    re.IGNORECASE)
GREETING = re.compile(
    r"^(?:(?:hi|hello|hey|hiya|howdy|yo|(?:good\s+)?(?:morning|afternoon|evening)|greetings|"
    r"hola|ola|bonjour|ciao|hallo|salut|namaste|grazie|merci|gracias|obrigad[oa]|danke|"
    r"um+|uh+|er+m*|"
    r"thanks?(?:\s+you)?(?:\s+so\s+much)?|thx|ty|cheers|ok(?:ay)?|cool|great|awesome|k|kk|"
    r"perfect|sure|yes|yeah|yep|alright|lol|wow|hmm+|bye|see\s+you|good\s+night|"
    r"got\s+it|sounds\s+good|will\s+do)(?:\s+(?:there|coach|again|all|everyone))?\b[\s,.!:;)-]*)+",
    re.IGNORECASE)
# Phrases that say nothing about the project: the whole sentence goes...
FILLER_PHRASE = (
    r"i(?:'?m|\s+am)\s+(?:not\s+(?:really\s+|quite\s+|totally\s+)?sure\s+(?:how|what|where|if)|"
    r"new\s+(?:here|to\s+this)|a\s+beginner|(?:a\s+bit\s+|so\s+|really\s+|very\s+)?"
    r"(?:nervous|excited))|how\s+are\s+you|nice\s+to\s+meet\s+you|"
    r"let\s+me\s+(?:think|see)|i'?ll\s+(?:think\s+about\s+it|tell\s+you\s+later)|"
    r"this\s+is\s+my\s+first\s+time|first\s+time\s+here|"
    r"i\s+(?:just\s+)?(?:want(?:ed)?|would\s+like)\s+to\s+(?:try|see\s+how|chat|say\s+hi|"
    r"get\s+started)|that\s+(?:helps|makes\s+sense|is\s+helpful|'?s\s+(?:helpful|great|clear))|"
    r"makes\s+sense|good\s+to\s+know")
# ... but a single word ("pass", "fine") only when nothing follows it in its sentence.
FILLER_WORD = (
    r"i\s+(?:don'?t|do\s+not)\s+know|not\s+sure|no\s+idea|dunno|idk|later|skip|pass|"
    r"i\s+guess|i'?m\s+(?:excited|back|here)|let'?s\s+(?:go|start|begin|do\s+this)|ready|good|"
    r"fine|understood|i\s+see|noted")
FILLER = re.compile(rf"^(?:(?:{FILLER_PHRASE})\b[^.!?]*[.!?]*|(?:{FILLER_WORD})"
                    r"(?:\s+(?:yet|really|tbh|honestly|for\s+now))?(?:\s*[.!?,;]+|\s*$))",
                    re.IGNORECASE)
QUESTION_START = re.compile(
    r"^(?:what|wat|wut|whats|hows|how|why|when|where|which|who|whose|can|could|should|would|"
    r"do|does|did|is|are|"
    r"will|may|am|isn'?t|aren'?t)\b", re.IGNORECASE)
OFF_TOPIC = re.compile(
    r"\b(?:weather|joke|football|soccer|basketball|recipe|movie|film|song|lyrics|poem|"
    r"horoscope|capital\s+of|stock\s+price|bitcoin|lottery|president|world\s+cup|dinner|"
    r"birthday|pizza|game\s+last\s+night|your\s+favou?rite|are\s+you\s+(?:human|real|alive))\b",
    re.IGNORECASE)
PROJECT_WORDS = re.compile(
    r"\b(?:project|problem|step|gate|eval|deploy|repo|mvp|title|audience|success|post-?mortem|"
    r"trac|cost|capabilit|portfolio|ci\b|url|build|tool|coach|feature|lesson)", re.IGNORECASE)
ALREADY_SAID = re.compile(r"^(?:i\s+(?:already|just)\s+(?:said|told\s+you)|as\s+i\s+said|"
                          r"like\s+i\s+said|i\s+said)\s*[,:;.!–—-]*\s*", re.IGNORECASE)
HEDGE = re.compile(r"^(?:um+|uh+|well|so|i\s+(?:think|guess)|i'?d\s+say|i\s+would\s+say|probably|"
                   r"mostly|mainly|maybe|"
                   r"basically|honestly|it'?s|they'?re|that'?d\s+be|the\s+answer\s+is)[,\s]+",
                   re.IGNORECASE)
FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|me|my|myself|we|our|us)\b", re.IGNORECASE)
MEASURABLE = re.compile(r"\d\s*%|\b\d+\s+(?:of|out\s+of|in)\s+\d+\b|\b(?:under|within|below|"
                        r"at\s+least|less\s+than|fewer\s+than|more\s+than)\s+\d", re.IGNORECASE)
TITLE_ASKED = re.compile(r"\b(?:call|name|called|title)\b", re.IGNORECASE)
MAX_TITLE_WORDS = 10
MIN_POSTMORTEM_WORDS = 100
FREE_TEXT = ("problem", "audience", "personal_context", "success_criteria", "usage_note")


@dataclass
class Understanding:
    act: str
    facts: dict[str, Any] = field(default_factory=dict)
    command: str | None = None
    clarify: str | None = None     # one short question instead of a guess
    labelled: bool = False         # `Title: …` answers: the labelled path, as it always was
    text: str = ""


def command_of(text: str) -> str | None:
    """A command, tolerating case, a slash, punctuation and small typos."""
    phrase = re.sub(r"\s+", " ", text.lower().strip().lstrip("/").rstrip(".!? "))
    phrase = re.sub(r"^(?:please\s+|pls\s+)|\s+(?:please|pls)$", "", phrase)
    if not phrase or len(phrase.split()) > 4:
        return None
    if phrase in COMMAND_PHRASES:
        return COMMAND_PHRASES[phrase]
    # Optimal string alignment counts a swap ("stauts", "hlep") as one edit. A word longer
    # by two or more that merely starts like a command ("helper") is an answer, not "help".
    best = process.extractOne(phrase, list(COMMAND_PHRASES), scorer=OSA.distance,
                              score_cutoff=1 if len(phrase) <= 5 else 2)
    if best and abs(len(best[0]) - len(phrase)) <= 1:
        return COMMAND_PHRASES[best[0]]
    return None


def _strip_small_talk(text: str) -> str:
    rest = text
    for _ in range(4):
        before = rest
        rest = GREETING.sub("", rest).strip()
        rest = FILLER.sub("", rest).lstrip(" ,.;:!-")
        if rest == before:
            break
    return rest


def sane(key: str, value: str) -> tuple[str | None, str | None]:
    """(value to store, or None; a clarifying question, or None) for a plain answer."""
    value = HEDGE.sub("", ALREADY_SAID.sub("", value)).strip()
    # A problem statement is prose: it keeps its punctuation; other values are trimmed.
    value = value.strip(" ,;:-–—") if key == "problem" else clean(value)
    words = value.split()
    if not words or FILLER.fullmatch(value) or GREETING.fullmatch(value):
        return None, None
    if key == "title":
        if len(words) > MAX_TITLE_WORDS:
            short = " ".join(words[:5]).rstrip(",.;:")
            return None, (f"That's long for a title. Shall I call it “{short}”? Say "
                          f"`call it {short}`, or give me a shorter name.")
        return value, None
    if key == "audience" and len(words) > 30:
        return None, "Who exactly has this problem? A few words are enough (e.g. “ward nurses”)."
    if key in ("personal_context", "success_criteria") and len(words) < 2:
        return None, None
    if key == "personal_context" and not FIRST_PERSON.search(value):
        # "Why you?" is answered in the first person; anything else is another fact.
        return None, ("Is that why you, personally, know this problem? Tell me in your own "
                      "words, e.g. “I taught for 8 years and wrote these quizzes myself”.")
    if key == "usage_note" and len(words) < 3:
        return None, "Tell me a bit more about the run: what did you try it on, and what happened?"
    return value, None


def understand(text: str, step: str | None, asked: str | None,
               last_field: str | None = None) -> Understanding:
    """Read one message for a project at `step` whose coach last asked for `asked`."""
    stripped = text.strip()
    labelled = read_message(stripped)
    if labelled.command:
        return Understanding("command", command=labelled.command, text=stripped)
    if labelled.answers:
        return Understanding("answer", labelled=True, text=stripped)
    if not stripped:
        return Understanding("smalltalk", text=stripped)
    if asked == "postmortem" and len(stripped.split()) >= MIN_POSTMORTEM_WORDS:
        # A post-mortem is sent whole; the lessons inside it are its own business.
        return Understanding("answer", facts={"postmortem": stripped}, text=stripped)
    command = command_of(stripped)
    if command == "undo":
        return Understanding("undo", text=stripped)
    if command:
        return Understanding("command", command=command, text=stripped)
    if UNDO.search(stripped) and len(stripped.split()) <= 8:
        return Understanding("undo", text=stripped)
    rename = RENAME.search(stripped)
    if rename and step not in (None, "repeat"):
        return _named(Understanding("rename", text=stripped), clean(rename.group("v")))
    change = CHANGE_OF_MIND.search(stripped)
    if change:
        payload = stripped[change.end():].strip()
        for _ in range(3):
            payload = IDEA_PREFIX.sub("", CHANGE_OF_MIND.sub("", payload, count=1).strip())
        facts = extract(payload, step, "problem").values
        if len(payload.split()) < 4 or (len(payload.split()) < 12 and not facts):
            # A new idea in a few words is a direction, not yet a problem statement.
            return Understanding("change_of_mind", text=stripped,
                                 clarify="No problem. Tell me about the new idea: what goes "
                                         "wrong today, and for whom?")
        return _answer(Understanding("change_of_mind", text=stripped), payload, step,
                       "problem" if step in (None, "problem") else asked)
    correction = CORRECTION.match(stripped)
    if correction and (stripped.endswith("?") or QUESTION_START.match(
            stripped[correction.end():])) and not extract(stripped, step, asked).values:
        return Understanding("question", text=stripped)
    if correction:
        payload = stripped[correction.end():].strip()
        return _correction(Understanding("correction", text=stripped), payload, step, asked,
                           last_field)
    return _plain(stripped, step, asked)


def _named(u: Understanding, title: str) -> Understanding:
    value, u.clarify = sane("title", title)
    if value:
        u.facts["title"] = value
    return u


def _correction(u: Understanding, payload: str, step: str | None, asked: str | None,
                last_field: str | None) -> Understanding:
    if not payload or PROTEST.search(payload) or PROTEST.search(u.text[:40]) and \
            not extract(payload, step, asked).values:
        u.clarify = ("Sorry about that. Say `undo` to take back what I saved last, or tell me "
                     "what it should be.")
        return u
    facts = extract(payload, step, last_field or asked)
    u.facts = dict(facts.values)
    if u.facts:
        return u
    if facts.leftover and last_field in (*FREE_TEXT, "title"):
        value, u.clarify = sane(last_field, facts.leftover)
        if value:
            u.facts[last_field] = value
        return u
    if last_field is None and facts.leftover:
        u.clarify = (f"Which should I change to “{clean(facts.leftover)}”? Say, for example, "
                     f"“the audience is {clean(facts.leftover)}”.")
        return u
    return _answer(u, payload, step, asked)


def _plain(text: str, step: str | None, asked: str | None) -> Understanding:
    rest = _strip_small_talk(text)
    if not rest.strip(" ,.;:!?-"):
        return Understanding("smalltalk", text=text)
    if GREETING.match(text) and step is None and len(rest.split()) < 5 and \
            not TITLE_ASKED.search(rest):
        # "good evening! long shift today": the words after a greeting are chat, not a title.
        return Understanding("smalltalk", text=text)
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", rest) if s.strip()]
    asks = [s for s in sentences if s.rstrip().endswith("?") or QUESTION_START.match(s)]
    if OFF_TOPIC.search(rest) and not PROJECT_WORDS.search(rest):
        return Understanding("offtopic", text=text)
    if asks and len(asks) == len(sentences):
        if not any(s.rstrip().endswith("?") for s in asks):
            # "What didn't work was …", "Is running in https://…": statements after all.
            u = _answer(Understanding("answer", text=text), rest, step, None)
            if u.facts and not u.clarify:
                return u
        return Understanding("question", text=text)
    statement = " ".join(s for s in sentences if s not in asks)
    u = _answer(Understanding("answer", text=text), statement, step, asked)
    if asks and not u.facts:
        return Understanding("question", text=text)
    if GREETING.match(text) and not u.facts:
        # "morning! just finished a night shift": a greeting with chat, nothing to store.
        return Understanding("smalltalk", text=text)
    return u


def _answer(u: Understanding, text: str, step: str | None, asked: str | None) -> Understanding:
    facts = extract(text, step, asked)
    u.facts.update(facts.values)
    if "title" in u.facts:
        # "call it <a whole sentence>" is still a title that fails its sanity check.
        title, u.clarify = sane("title", u.facts.pop("title"))
        if title:
            u.facts["title"] = title
        elif not u.facts:
            return u
    key = asked if asked not in (None, "capabilities") else None
    if step is None and facts.leftover and "problem" not in u.facts:
        words = len(facts.leftover.split())
        if words >= 12:
            u.facts["problem"] = facts.leftover
        elif not u.facts and words <= MAX_TITLE_WORDS and not re.search(
                r"\b(?:i|i'm|me|my|we|want|need|would|should|could)\b", facts.leftover, re.I):
            u.facts["title"] = facts.leftover
        elif not u.facts:
            u.clarify = ("Is that the problem you want to solve? Tell me a bit more: what "
                         "happens today, who has the problem, and what goes wrong?")
        return u
    if key in ("audience", "personal_context", "problem") and step == "problem" and \
            "success_criteria" not in u.facts and MEASURABLE.search(facts.leftover) and \
            not FIRST_PERSON.search(facts.leftover):
        # A number to check is a success criterion, whichever question it answers.
        key = "success_criteria"
    if key and key not in u.facts and facts.leftover:
        _leftover(u, key, facts.leftover, step)
    return u


def _leftover(u: Understanding, key: str, leftover: str, step: str | None) -> None:
    if key in FREE_TEXT or key == "title":
        if u.facts and len(leftover.split()) < 2:
            return
        value, u.clarify = sane(key, leftover)
        if value:
            u.facts[key] = value
    elif key == "mvp_scope":
        items = enumerate_items(HEDGE.sub("", leftover))
        if items:
            u.facts["mvp_scope"] = items
    elif key == "repo":
        u.clarify = ("I couldn't find a folder path or URL in that. Where's the code? "
                     "e.g. `~/code/my-tool` or `https://github.com/you/my-tool`")
    elif key in ("evals", "ci_gate", "observability", "cost_tracking", "deployment") and \
            not u.facts:
        u.clarify = CLARIFY.get(key)


CLARIFY = {
    "evals": "How many eval cases, what share pass, and how are they graded? e.g. “24 cases, "
             "22 pass, graded by exact match”.",
    "ci_gate": "Which CI runs the evals? e.g. “GitHub Actions, .github/workflows/evals.yml”.",
    "observability": "Which tracing tool do you use (Langfuse, Phoenix, LangSmith, …), and "
                     "where's a trace link?",
    "cost_tracking": "What does one request (or a day, or a month) cost? e.g. “half a cent per "
                     "request”.",
    "deployment": "What's the URL where it runs? It should start with https://.",
}
