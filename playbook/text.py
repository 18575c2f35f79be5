"""Words as the search sees them: lower case, stop words out, suffixes trimmed, typos fixed."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

WORD = re.compile(r"[a-z0-9][a-z0-9_.']*[a-z0-9]|[a-z0-9]")
# Spellings of one idea that would otherwise be two or three different words.
JOINED = ((re.compile(r"post[\s-]+mortem"), "postmortem"),
          (re.compile(r"fine[\s-]+tun"), "finetun"),
          (re.compile(r"trade[\s-]+off"), "tradeoff"),
          (re.compile(r"open[\s-]+telemetry"), "opentelemetry"),
          (re.compile(r"hugging[\s-]+face"), "huggingface"),
          (re.compile(r"\bllm[\s-]+as[\s-]+a?[\s-]*judge"), "llmjudge"),
          (re.compile(r"\bcold[\s-]+start"), "coldstart"),
          (re.compile(r"\bcloud[\s-]+run\b"), "cloudrun"),
          (re.compile(r"\bunit[\s-]+test"), "unittest"),
          (re.compile(r"\bhealth[\s-]?check"), "healthcheck"),
          (re.compile(r"\btools?[\s_-]+(?:use|usage|calling|calls?)\b"), "tooluse"),
          (re.compile(r"\bfunction[\s-]+call(?:ing|s)?\b"), "tooluse"))
STOP = frozenset("""
a about above after again all am an and any are as at be because been before being below
between both but by can could did do does doing don't down during each few for from further
had has have having he her here hers him his how i i'd i'm i've if in into is it it's its
itself just me more most my myself no nor not now of off on once only or other our ours out
over own really same she should so some such than that that's the their theirs them then
there these they this those through to too under until up very was we were what what's when
where which while who whom why will with would you your yours yourself yourselves am im
ok okay please thanks thank hi hey anyone someone something thing things get got gonna
wanna kind sort like need want should shall also one use using used make way actually
whats hows wheres whos whys dont doesnt cant isnt im ive id youre u ur pls plz
supposed even good great nice exactly maybe
""".split())
SYNONYMS = {"evalu": "eval", "evaluat": "eval", "evaluat_": "eval", "llm": "model",
            "llms": "model", "hosting": "host", "hosted": "host", "hoster": "host",
            "cheap": "cost", "cheaper": "cost", "expensive": "cost", "price": "cost",
            "pric": "cost", "spend": "cost", "money": "cost", "bill": "cost",
            "observability": "trac", "telemetry": "trac", "otel": "opentelemetry",
            "rag": "retriev", "dockerfil": "docker", "k8s": "kubernet", "gh": "github",
            "interviewer": "hir", "recruiter": "hir", "employ": "hir", "job": "hir",
            "pm": "postmortem", "writeup": "postmortem", "api_key": "secret", "key": "secret",
            "keys": "secret", "credential": "secret", "password": "secret",
            "cheapest": "cost", "costly": "cost", "pricey": "cost", "https": "tls",
            "ssl": "tls", "certificate": "tls", "inconsistent": "flaky", "flakey": "flaky"}
SUFFIXES = ("ations", "ation", "ments", "ment", "ings", "ing", "ies", "ied", "es", "ed", "al",
            "ly", "er", "s")


def stem(word: str) -> str:
    """A deliberately small stemmer: enough to join deploy/deployed/deployment."""
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
            break
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return SYNONYMS.get(word, word)


def words(text: str) -> list[str]:
    """Lower-case words with stop words removed (before stemming)."""
    text = text.lower().replace("’", "'")
    for pattern, joined in JOINED:
        text = pattern.sub(joined, text)
    return [w.strip(".'") for w in WORD.findall(text) if w.strip(".'") not in STOP]


def terms(text: str) -> list[str]:
    return [stem(SYNONYMS.get(w, w)) for w in words(text)]


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


class Speller:
    """Typo repair against the playbook's own words (one edit away, SymSpell style)."""

    def __init__(self, vocabulary: Iterable[str]):
        counts = Counter(vocabulary)
        self.known = set(counts)
        self.frequency = counts
        self.by_delete: dict[str, set[str]] = {}
        for word in self.known:
            if len(word) >= 4:
                for d in _deletes(word) | {word}:
                    self.by_delete.setdefault(d, set()).add(word)

    def correct(self, word: str) -> str:
        if word in self.known or len(word) < 4 or not word.isalpha():
            return word
        candidates: set[str] = set(self.by_delete.get(word, ()))
        for d in _deletes(word):
            candidates |= self.by_delete.get(d, set())
        candidates = {c for c in candidates if one_edit(word, c)}
        if not candidates:
            return word
        # The most common of the nearest words; the alphabet breaks ties, so it is stable.
        return max(sorted(candidates), key=lambda w: self.frequency[w])


def one_edit(a: str, b: str) -> bool:
    """Whether b is a insertion, deletion, substitution or swap of neighbours away from a."""
    if a == b or abs(len(a) - len(b)) > 1:
        return a == b
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))
