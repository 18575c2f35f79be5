"""Facts in plain sentences: which of the project's fields a learner's words fill.

A message is cut into clauses; each clause that states a fact is consumed by it. What no
pattern consumed is the leftover, which may answer the coach's current question once it
passes that field's sanity check (agent.reader). Extraction is step-aware: a clause is only
read for the facts the project's current step can store, so "for 8 years" at step 1 is
never a cost and "I ran it" at step 1 is never a usage note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from agent.figures import CI_PATH, URL_RE, read_ci, read_cost, read_evals, read_tracing, urls

_END = r"(?=\s*(?:[.;!?](?:\s|$)|,(?!\s*(?:like|such\s+as|e\.g\.|mostly|especially|usually|" \
       r"mainly|typically)\b)|\s[-–—]\s|\s+(?:and|but|so|because)\s+(?:i|it|i'm|i've|" \
       r"my|we|the|success)\b)|\s*$)"
CLAUSE_SPLIT = re.compile(
    r"(?<=[.!?;])\s+(?=\S)|\n+|(?<!\d),\s+(?=(?:and\s+|but\s+|so\s+)?(?:i|i'm|i've|i'd|it|"
    r"it's|its|it'll|my|we|they|success|call|this|that|what|the\s+thing|there)\b)|"
    r"\s+(?:and|but|so)\s+(?=(?:i|i'm|i've|it|it's|it'll|my|we|success|call|what|the\s+"
    r"(?:thing|trade-?off|decision)|there)\b)|\s+[-–—]\s+|:\s+(?=[a-z])", re.IGNORECASE)

TITLE = re.compile(
    r"\b(?:(?:let'?s|i'?ll|i\s+will|i'?d|we'?ll)\s+call\s+it|call\s+it|name\s+it|"
    r"it'?s\s+called|it\s+is\s+called|(?:the\s+|a\s+|my\s+)?(?:working\s+)?(?:title|name)\s+"
    r"(?:is|will\s+be|would\s+be|could\s+be)|i'?m\s+calling\s+it|called)\s+"
    # "I'd call it a success if …" judges the project; it does not name it.
    r"(?!(?:a\s+)?(?:success|successful|win|failure|done)\b)[\"“'‘]?"
    r"(?P<v>[^\"”’.,;!?]+?)[\"”'’]?" + _END, re.IGNORECASE)
AUDIENCE = (
    re.compile(r"\b(?:it'?s|it\s+is|this\s+is|that'?s)\s+(?:a\s+|an\s+)?(?:real\s+|big\s+|huge\s+)?"
               r"(?:problem|issue|pain(?:\s+point)?|headache|nightmare)\s+for\s+(?P<v>.+?)" + _END,
               re.IGNORECASE),
    re.compile(r"\b(?:the\s+)?(?:audience|users?|target\s+(?:users?|audience)|customers?|"
               r"people\s+(?:affected|concerned|i\s+have\s+in\s+mind)|"
               r"(?=\w+\s+(?:should|could)\s+be)|"
               r"people\s+who\s+have\s+(?:it|this|this\s+problem))\s+(?:is|are|would\s+be|"
               r"will\s+be|should\s+be|could\s+be|is\s+going\s+to\s+be)\s+(?P<v>.+?)" + _END,
               re.IGNORECASE),
    re.compile(r"\b(?:it'?s|it\s+is|the\s+tool\s+is|the\s+app\s+is|this\s+is|it'?s\s+mainly|"
               r"(?:my\s+|the\s+)?idea\s+is|"
               r"(?:a\s+)?(?:tool|app|bot|assistant)|(?:meant|built|made|aimed|designed))\s+"
               r"(?:for|at)\s+(?P<v>(?!\d)(?!me\b)(?!my\b).+?)" + _END, re.IGNORECASE),
    re.compile(r"^(?:mostly\s+|mainly\s+|i\s+think\s+|probably\s+)?(?P<v>[\w' -]{3,80}?)\s+"
               # "teachers all have this": the quantifier belongs to the verb, not the people.
               r"(?:(?:all|both|also|too|often|really)\s+)?"
               r"(?:have|has|face|struggle\s+with|deal\s+with|suffer\s+from)\s+(?:this|that|"
               r"the\s+same|it)\b", re.IGNORECASE),
)
# "…, which is a problem for X" ends a sentence that is itself the problem: X is the
# audience, and the sentence before it stays for the problem statement.
AUDIENCE_TAIL = re.compile(r",?\s*\bwhich\s+is\s+(?:a\s+|an\s+)?(?:real\s+|big\s+|huge\s+)?"
                           r"(?:problem|issue|pain(?:\s+point)?|headache|nightmare)\s+for\s+"
                           r"(?P<v>.+?)" + _END, re.IGNORECASE)
_EXPERIENCE = re.compile(
    r"\bi'?m\s+an?\s+(?=\w)|\bi\s+am\s+an?\s+(?=\w)|"
    r"\b(?:i|i've|i'm)\s+(?:was|am|'m|have\s+been|'ve\s+been|been|worked|work|spent|used\s+to|"
    r"taught|teach|ran|run|managed|manage|did|do|coached|coach|volunteer(?:ed)?|nursed|"
    r"studied|live|lived|grew\s+up|deal\s+with|dealt\s+with|see|saw|watched|had\s+to|"
    r"have\s+to|write|wrote|prepared|handled|built|carried|led|supported)\b|"
    r"\bi'?ve\s+\w+ed\b|\bi\s+have\s+\w+ed\b|\bmy\s+(?:wife|husband|partner|mum|mom|mother|dad|father|"
    r"sister|brother|friend|son|daughter|kids?|boss|team|colleagues?)\b", re.IGNORECASE)
_EXPERIENCE_MARK = re.compile(
    r"\b(?:years?|months?|weeks?|every|each|as\s+an?|since|shifts?|my\s+(?:job|ward|team|"
    r"school|company|clinic|shop|class|students|patients|clients|work)|myself|daily|weekly|"
    r"nightly|at\s+work|on\s+the\s+job|first-?hand|for\s+a\s+living|i'm\s+an?\b|i\s+am\s+an?\b|"
    r"i\s+was\s+an?\b|nurse|teacher|engineer|developer|manager|doctor|\bis\s+an?\b|"
    # "I teach chemistry at a secondary school": a workplace says it is the learner's job.
    r"\b(?:at|in)\s+(?:a|an|the|my|our)\s+(?:[\w-]+\s+){0,2}(?:school|hospital|clinic|"
    r"ward|university|college|lab|firm|company|office|shop|restaurant|startup|bank|charity|"
    r"library|hotel|factory|warehouse|pharmacy|practice|agency)\b|"
    r"complains?)", re.IGNORECASE)
SUCCESS = re.compile(
    r"(?:success\s+(?:would\s+be|is|means|looks\s+like|=|for\s+me\s+is|criteri(?:a|on)\s+"
    r"(?:is|would\s+be|will\s+be))|i'?ll\s+know\s+it\s+works\s+(?:when|if)|i\s+will\s+know\s+it\s+"
    r"works\s+(?:when|if)|it\s+works\s+if|it'?s\s+a\s+success\s+if|it\s+succeeds\s+if|"
    r"(?:the|my)\s+(?:goal|target|aim)\s+is(?:\s+to)?|i'?d\s+call\s+it\s+a\s+success\s+if|"
    r"it'?s\s+working\s+if|good\s+enough\s+(?:is|would\s+be|means))\s+(?P<v>.+?)"
    r"(?=\s*[;!?](?:\s|$)|\.(?:\s|$)|\s*$)", re.IGNORECASE)
SUCCESS_WEAK = re.compile(r"\b(?:i\s+want\s+it\s+to|it\s+should|it\s+must|it\s+has\s+to)\s+"
                          r"(?P<v>.*\d.*?)(?=\s*[;!?](?:\s|$)|\.(?:\s|$)|\s*$)", re.IGNORECASE)
MVP = re.compile(
    r"(?:it\s+(?:does|will\s+do|'ll\s+do|can\s+do)|the\s+mvp\s+(?:is|does|will\s+do|has|"
    r"will|would)|\bmvp\s*[=:-]|(?:the\s+)?(?:core|main|key|first)?\s*features?\s+(?:are|is|"
    r"will\s+be)|"
    r"the\s+(?:first|smallest)\s+version\s+(?:does|(?:will|would)(?:\s+do)?)|(?:for\s+)?the\s+mvp,?\s+(?:it\s+)?)"
    r"\s*(?:(?:just\s+|only\s+)?(?:\d+|a\s+few|a\s+couple\s+of)\s+things?\s*[:,-]?\s*|:\s*)?"
    r"(?P<v>.+)", re.IGNORECASE)
_NUMBER_THINGS = re.compile(r"\b(?:one|two|three|four|\d)\s+things?\s*[:,-]?\s*", re.IGNORECASE)
USAGE = re.compile(
    r"\b(?:i|we|my\s+\w+)\s+(?:ran|tried|used|tested|demoed|piloted|showed|gave)\s+it\b|"
    r"\b(?:i|we)\s+(?:ran|tried|tested)\s+(?:the\s+)?(?:tool|app|bot|script|prototype)\b|"
    r"\b(?:i|we)\s+(?:have\s+|'ve\s+)?(?:run|used|tried|tested)\s+it\b", re.IGNORECASE)
_GIT_HOST = re.compile(r"github\.com|gitlab\.|bitbucket\.org|codeberg\.org|sr\.ht|\.git$|"
                       r"huggingface\.co/spaces", re.IGNORECASE)
LOCAL_PATH = re.compile(r"(?<![\w.:/])((?:~|\.{1,2})?/(?=[A-Za-z_~.])[\w.@~+-]+(?:/[\w.@~+-]*)*|"
                        r"git@[\w.-]+:[\w./-]+)")
LESSONS = (
    ("worked", re.compile(r"(?:the\s+thing\s+that|what|the\s+part\s+that|something\s+that)\s+"
                          r"worked\s*(?:best|well|really\s+well|great)?\s*(?:was|is|:)\s*"
                          r"(?P<v>.+)|(?:the\s+)?best\s+(?:part|thing)\s+was\s+(?P<w>.+)|"
                          r"(?P<x>.+?\s+worked\s+(?:really\s+|much\s+|far\s+)?(?:well|great|nicely|best|"
                          r"better)\b.*)",
                          re.IGNORECASE)),
    ("didnt_work", re.compile(r"(?:the\s+thing\s+that|what|the\s+part\s+that|something\s+that)\s+"
                              r"(?:didn'?t|did\s+not|didn’t)\s+work\s*(?:at\s+all|well)?\s*"
                              r"(?:was|is|:)\s*(?P<v>.+)|(?:the\s+)?worst\s+(?:part|thing)\s+"
                              r"was\s+(?P<w>.+)|(?P<x>.+?\s+(?:didn'?t|did\s+not|didn’t)\s+work\b"
                              r".*|.+?\s+was\s+a\s+(?:mistake|failure|dead\s+end)\b.*)",
                              re.IGNORECASE)),
    ("tradeoff", re.compile(r"(?:the\s+)?(?:main\s+|biggest\s+|big\s+)?trade-?\s?off\s+(?:was|is|:)"
                            r"\s*(?P<v>.+)|(?P<x>\b(?:i|we)\s+(?:chose|picked|went\s+with|"
                            r"preferred|opted\s+for|used)\s+.+?\s+(?:over|instead\s+of|"
                            r"rather\s+than)\s+.+|\b(?:i|we)\s+traded\s+.+?\s+for\s+.+)",
                            re.IGNORECASE)),
    ("decision", re.compile(r"(?:the\s+)?(?:key\s+|biggest\s+|big\s+|main\s+)?decision\s+"
                            r"(?:was|is|:)\s*(?P<v>.+)|(?P<x>\b(?:i|we)\s+decided\s+.+)",
                            re.IGNORECASE)),
)
LESSON_CUE = re.compile(r"\bworked\b|didn'?t\s+work|did\s+not\s+work|didn’t\s+work|trade-?\s?off|"
                        r"\bdecision\b|\bdecided\b|\bchose\b|\bpicked\b|went\s+with|preferred|"
                        r"opted\s+for|\btraded\b|mistake|worst\s+(?:part|thing)|"
                        r"best\s+(?:part|thing)", re.IGNORECASE)
CAPABILITY_WORDS: dict[str, str] = {
    "retrieval": r"\brag\b|retriev\w*|search(?:es|ing)?\s+(?:over|through|across|in)\b|"
                 r"semantic\s+search|vector\s+(?:db|database|store|search)|embeddings?|"
                 r"looks?\s+(?:things\s+)?up\s+in",
    "tool_use": r"tool[\s_-]?use|tool\s+calling|function[\s-]calling|uses?\s+tools|"
                r"call(?:s|ing)?\s+(?:the\s+|an?\s+|our\s+|external\s+|other\s+)?"
                r"(?:[\w-]+\s+){0,4}?(?:apis?|tools|services|endpoints)\b",
    "agents": r"\bagents?\b|agentic|multi-?agent|plans?\s+(?:and|then)\s+acts?",
    "structured_output": r"structured[\s_]output|\bjson\b|pydantic\s+schema|"
                         r"extracts?\s+(?:fields|structured\s+data)|fills?\s+(?:in\s+)?a\s+form",
    "evals_ci": r"evals?[\s_]ci|evals?\s+in\s+ci|ci\s+evals|regression\s+evals",
    "observability": r"observability|\btracing\b",
    "streaming": r"\bstream(?:s|ing|ed)?\b",
    "multi_user": r"multi[\s_-]?user|multiple\s+users|many\s+users|user\s+accounts|log\s?ins?\b|"
                  r"several\s+users",
    "fine_tuning": r"fine[\s_-]?tun\w*|finetun\w*|\blora\b",
    "multimodal": r"multi-?modal|\bimages?\b|\bphotos?\b|screenshots?|\bvoice\b|\baudio\b|"
                  r"\bspeech\b|\bvision\b|scann?ed",
    "scale": r"\bscale\b|thousands\s+of\s+(?:users|requests)|high\s+traffic",
}
_CAP_CUE = re.compile(r"\b(?:it|the\s+tool|the\s+app|the\s+bot|that)(?:'ll|\s+will|\s+would|"
                      r"\s+can|\s+also|\s+should)?\s+(?:use|uses|need|needs|call|calls|does|"
                      r"return|returns|output|outputs|stream|streams|extract|extracts|read|reads|"
                      r"handle|handles|support|supports|search|searches|look|looks)\b|"
                      r"\bit'?s\s+(?:agentic|multimodal|an?\s+agent|streaming)|\bcapabilit\w*|\busing\b|\buses\b|"
                      r"\b(?:i'?ll|i\s+will|i'?m\s+going\s+to)\s+(?:use|add)\b|\brag\b|"
                      r"tool\s+calling|function\s+calling|\bjson\b|^\s*(?:and\s+)?(?:also\s+)?"
                      r"(?:rag|retrieval|tool\s+use|agents|streaming)", re.IGNORECASE)


CONTINUES = re.compile(r"^(?:and\s+|so\s+)?(?:i|i'?ve|i'?m|i\s+have|my)\b(?!'d\b|\s+would\b|"
                       r"\s+want\b|\s+need\b)(?!.*\b(?:success|call\s+it)\b)", re.IGNORECASE)


@dataclass
class Clause:
    start: int
    end: int
    text: str
    used: bool = False
    grow: str | None = None        # a field the next "and I …" clause continues


@dataclass
class Facts:
    values: dict[str, Any] = field(default_factory=dict)
    leftover: str = ""


def clauses(text: str) -> list[Clause]:
    out, pos = [], 0
    for m in CLAUSE_SPLIT.finditer(text):
        out.append(Clause(pos, m.start(), text[pos:m.start()]))
        pos = m.end()
    out.append(Clause(pos, len(text), text[pos:]))
    return [c for c in out if c.text.strip(" ,.;:!?-")]


def clean(value: str) -> str:
    value = re.sub(r"\s+", " ", value).strip(" ,;:-–—\"“”'")
    return value.rstrip(".!?").strip()


def enumerate_items(text: str) -> list[str]:
    """"search notes, cite sources, and export" -> three features."""
    text = _NUMBER_THINGS.sub("", text.strip())
    parts = re.split(r"\s*;\s*|\s*,\s*(?:and\s+|then\s+)?|\s+and\s+(?:then\s+)?|\s+then\s+|"
                     r"\s*\n\s*[-*•]?\s*|^\s*[-*•]\s*|\s*\d\)\s*", text)
    items = [clean(re.sub(r"^(?:it\s+|also\s+|and\s+|just\s+|to\s+)+", "", p, flags=re.I))
             for p in parts if p and p.strip()]
    return [i for i in items if i]


def capabilities_in(text: str) -> list[str]:
    lowered = text.lower()
    return [cap for cap, pattern in CAPABILITY_WORDS.items() if re.search(pattern, lowered)]


def _take(c: Clause, values: dict[str, Any], key: str, value: Any) -> None:
    if value in (None, "", []):
        return
    values.setdefault(key, value)
    c.used = True


def _problem_step(c: Clause, values: dict[str, Any]) -> None:
    t = c.text
    m = SUCCESS.search(t) or (SUCCESS_WEAK.search(t) if re.search(r"\d", t) else None)
    if m:
        # "success would be that 8 out of 10 …": the criterion is what follows "that".
        _take(c, values, "success_criteria", re.sub(r"^that\s+", "", clean(m.group("v")),
                                                   flags=re.IGNORECASE))
        return
    m = AUDIENCE_TAIL.search(t)
    if m and m.start() > 0 and "audience" not in values:
        values["audience"] = clean(m.group("v"))
        c.end, c.text = c.start + m.start(), t[:m.start()]
        return
    for pattern in AUDIENCE:
        m = pattern.search(t)
        if m and not re.match(r"(?:years?|months?|a\s+living|fun|work|free|me|myself)\b",
                              m.group("v"), re.IGNORECASE):
            _take(c, values, "audience", clean(m.group("v")))
            return
    m = _EXPERIENCE.search(t)
    if m and _EXPERIENCE_MARK.search(t[m.start():]):
        _take(c, values, "personal_context", clean(t[m.start():]))
        c.grow = "personal_context"


def _build_step(c: Clause, values: dict[str, Any], whole: str) -> None:
    t = c.text
    usage = USAGE.search(t)
    if usage:
        # A usage note is the whole story of the run: the rest of its sentence.
        start = c.start + usage.start()
        _take(c, values, "usage_note", clean(whole[start:_sentence_end(whole, start)]))
        return
    # The enumeration may run past this clause: read the rest of its sentence.
    sentence = whole[c.start:_sentence_end(whole, c.start)]
    m = MVP.search(sentence)
    if m and "mvp_scope" not in values:
        items = enumerate_items(clean(m.group("v")))
        if items:
            values["mvp_scope"] = items
            c.used = True


_BARE_HOST = re.compile(r"(?<![\w./:])((?:github\.com|gitlab\.com|bitbucket\.org|codeberg\.org)"
                        r"/[\w.-]+/[\w.-]+)")


def _repo(text: str) -> str | None:
    for url in urls(text):
        if _GIT_HOST.search(url):
            return url
    bare = _BARE_HOST.search(text)
    if bare:
        return "https://" + bare.group(1).rstrip(".,;:")
    m = LOCAL_PATH.search(text)
    return m.group(1).rstrip(".,;:") if m else None


def _lesson(c: Clause, values: dict[str, Any]) -> None:
    for kind, pattern in LESSONS:
        m = pattern.search(c.text)
        if m:
            value = next(v for v in (m.group("v") if "v" in pattern.groupindex else None,
                                     m.group("w") if "w" in pattern.groupindex else None,
                                     m.group("x")) if v)
            values.setdefault(kind, []).append(clean(value))
            c.used = True
            return


def _clause(c: Clause, parts: list[Clause], values: dict[str, Any], text: str,
            step: str | None, asked: str | None) -> None:
    m = TITLE.search(c.text)
    if m:
        _take(c, values, "title", clean(m.group("v")))
        return
    if step == "postmortem" or LESSON_CUE.search(c.text):
        _lesson(c, values)
        if c.used:
            return
    if (asked == "capabilities" or _CAP_CUE.search(c.text)) and \
            step in (None, "problem", "build", "repeat"):
        caps = capabilities_in(c.text)
        if caps:
            values["capabilities"] = list(dict.fromkeys([*values.get("capabilities", []),
                                                        *caps]))
            c.used = True
            return
    if step in (None, "problem"):
        _problem_step(c, values)
    elif step == "build":
        _build_step(c, values, text)
        if c.used:
            # The feature list or the run's story runs to the end of its sentence.
            for later in parts:
                if c.start < later.start < _sentence_end(text, c.start):
                    later.used = True


def extract(text: str, step: str | None, asked: str | None = None) -> Facts:
    """The facts `text` states for a project at `step` (None: no project yet)."""
    values: dict[str, Any] = {}
    parts = clauses(text)
    for i, c in enumerate(parts):
        if c.used:
            continue
        before = parts[i - 1] if i else None
        if before and before.grow and CONTINUES.match(c.text) and \
                not re.search(r"[.!?;]\s", text[before.end - 1:c.start + 1]):
            # "I was a nurse for 8 years and I wrote these handovers myself": one story.
            values[before.grow] = clean(text[text.find(values[before.grow]):c.end])
            c.used, c.grow = True, before.grow
            continue
        _clause(c, parts, values, text, step, asked)
    if step in ("build", "harden"):
        repo = _repo(text)
        if repo:
            values["repo"] = repo
            _consume_containing(parts, repo)
    if step == "deploy":
        found = [u for u in urls(text) if not _GIT_HOST.search(u)]
        if found:
            values["url"] = found[0]
            _consume_containing(parts, found[0])
    if step == "harden":
        _harden(text, values, parts, asked)
    if not any(c.used for c in parts):
        return Facts(values, text.strip())
    return Facts(values, _leftover(text, parts))


def _leftover(text: str, parts: list[Clause]) -> str:
    """The unconsumed clauses, as written: runs of neighbours keep what joined them."""
    runs: list[str] = []
    start: int | None = None
    for i, c in enumerate(parts + [Clause(len(text), len(text), "", used=True)]):
        if not c.used and start is None:
            start = c.start
        if c.used and start is not None:
            runs.append(text[start:parts[i - 1].end].strip(" ,;:-–—"))
            start = None
    leftover = " ".join(r for r in runs if r)
    return leftover if leftover.strip(" ,.;:!?") else ""


def _sentence_end(text: str, start: int) -> int:
    m = re.search(r"[.!?](?:\s|$)|\n\n", text[start:])
    return start + m.end() if m else len(text)


def _consume_containing(parts: list[Clause], needle: str) -> None:
    for c in parts:
        if needle in c.text:
            c.used = True


_EVIDENCE_CUE = {
    "evals": re.compile(r"eval|test|case|pass|grad|judge|example|question|score|accura", re.I),
    "ci_gate": re.compile(r".", re.S),
    "observability": re.compile(r".", re.S),
    "cost_tracking": re.compile(r"cost|cent|\$|dollar|usd|buck|spend|pay|price|bill", re.I),
}


def _harden(text: str, values: dict[str, Any], parts: list[Clause], asked: str | None) -> None:
    readers = {"ci_gate": read_ci, "observability": read_tracing, "cost_tracking": read_cost}
    for kind, read in readers.items():
        for c in parts:
            found = read(c.text) if _EVIDENCE_CUE[kind].search(c.text) else None
            if found:
                if kind == "observability" and not found.get("link"):
                    # The link may sit in the next clause: "I added Langfuse, here's a trace …".
                    found["link"] = next(iter(urls(text)), None)
                if kind == "ci_gate":
                    found["description"] = clean(c.text)
                values.setdefault(kind, found)
                c.used = True
                if kind == "observability" and found.get("link"):
                    _consume_containing(parts, found["link"])
                break
    # Eval figures often span clauses ("12 cases, 10 of them pass, graded by …"), and may
    # share one with the CI ("…, graded by exact match, and CI is GitHub Actions").
    cue = _EVIDENCE_CUE["evals"]
    chosen = [c for c in parts if cue.search(c.text) or (asked == "evals" and not c.used)]
    rest = " ; ".join(URL_RE.sub(" ", c.text) for c in chosen)
    evals = read_evals(CI_PATH.sub(" ", rest)) if rest else None
    if evals:
        values["evals"] = evals
        for c in chosen:
            c.used = True
