"""The grounding check: every figure in a post-mortem must come from the evidence.

Numbers, percentages, money, URLs, dates and model names found in a text are
compared with the evidence bundle, allowing formatting differences (1500 and 1,500;
0.91 and 91%). Claims inside `[TODO: …]` are exempt; the learner can confirm a fact
(`Confirm: …`), which puts it in the bundle.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from tools.sentences import first_person_outside_quotes, in_learner_words, learner_words

URL = re.compile(r"https?://[^\s<>\"')\]]+", re.I)
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|"
          "december|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec")
NAMED_DATE = re.compile(rf"\b(?:\d{{1,2}}\s+(?:{MONTHS})\.?\s+\d{{4}}|(?:{MONTHS})\.?\s+"
                        rf"\d{{1,2}},?\s+\d{{4}}|(?:{MONTHS})\.?\s+\d{{4}})\b", re.I)
MODEL = re.compile(r"\b(?:claude|gpt|gemini|llama|mistral|mixtral|qwen|deepseek|command-r|"
                   r"o[134](?:-mini)?)(?:[-.][\w.]+)*\b", re.I)
NUMBER = re.compile(r"(?<![\w.])\$?\d[\d,]*(?:\.\d+)?(?:\s?%)?(?![\w])")
TODO = re.compile(r"\[TODO:[^\]]*\]", re.I)
# A sentence ends at . ! ? followed by a space (not inside 0.91 or a URL) or a line end.
SENTENCE = re.compile(r"(?:[^\n.!?]|[.!?](?!\s|$))+[.!?]?", re.M)


def _decimal(token: str) -> Decimal | None:
    try:
        return Decimal(token.replace("$", "").replace(",", "").replace("%", "").strip())
    except InvalidOperation:
        return None


def number_forms(token: str) -> set[Decimal]:
    """A number and the forms it may take elsewhere (a share and its percentage).

    Only a percentage (91%) or a plain share (0.91) gets the other form: scaling every
    number both ways would let 1 (any project id) vouch for 10,000, and 24 for 240,000.
    """
    value = _decimal(token)
    if value is None:
        return set()
    forms = {value.normalize()}
    if "%" in token:
        forms.add((value / 100).normalize())
    elif "$" not in token and 0 < value <= 1:
        forms.add((value * 100).normalize())
    return forms


class Evidence:
    """The figures and names an evidence bundle supports."""

    def __init__(self, bundle: dict[str, Any]):
        # Record ids say where a sentence came from; they vouch for no figure.
        bundle = {k: v for k, v in bundle.items() if k != "records"}
        text = json.dumps(bundle, ensure_ascii=False, default=str)
        self.text = text.lower()
        self.urls = {u.rstrip(".,;:/").lower() for u in URL.findall(text)}
        self.numbers: set[Decimal] = set()
        scrubbed = URL.sub(" ", text)
        for date in ISO_DATE.findall(scrubbed):
            self.text += " " + date
        for token in NUMBER.findall(scrubbed):
            self.numbers |= number_forms(token)

    def supports_number(self, token: str) -> bool:
        value = _decimal(token)
        if value is None:
            return True
        return bool(number_forms(token) & self.numbers)

    def supports_url(self, url: str) -> bool:
        return url.rstrip(".,;:/").lower() in self.urls

    def mentions(self, phrase: str) -> bool:
        return phrase.lower() in self.text

    def supports_date(self, phrase: str) -> bool:
        """A written-out date counts when the bundle has the same day (or month)."""
        cleaned = re.sub(r"[.,]", "", phrase).strip()
        for fmt, iso in (("%d %B %Y", "%Y-%m-%d"), ("%d %b %Y", "%Y-%m-%d"),
                         ("%B %d %Y", "%Y-%m-%d"), ("%b %d %Y", "%Y-%m-%d"),
                         ("%B %Y", "%Y-%m"), ("%b %Y", "%Y-%m")):
            try:
                return datetime.strptime(cleaned, fmt).strftime(iso) in self.text
            except ValueError:
                continue
        return self.mentions(phrase)


def _sentence(text: str, start: int) -> str:
    for m in SENTENCE.finditer(text):
        if m.start() <= start < m.end():
            return " ".join(m.group(0).split())
    return ""


def sentence_claims(sentences: list[dict[str, Any]], bundle: dict[str, Any]
                    ) -> list[dict[str, str]]:
    """A draft's sentences that rest on nothing: a factual sentence with no source, and a
    first-person sentence that is not the learner's own recorded words (the voice rule)."""
    words = learner_words(bundle)
    out = []
    for s in sentences:
        text, kind = s["text"], s.get("kind", "fact")
        if kind in ("fact", "quote") and not s.get("sources"):
            out.append({"kind": "sentence", "item": "no source", "sentence": text})
        elif first_person_outside_quotes(text) and not in_learner_words(text, words):
            out.append({"kind": "voice", "item": "first person not in the records",
                        "sentence": text})
    return out


def grounding_report(text: str, bundle: dict[str, Any],
                     sentences: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Each unsupported claim with its sentence; `[TODO: …]` placeholders are exempt. With a
    draft's sentences, also each sentence that rests on no record."""
    evidence = Evidence(bundle)
    body = TODO.sub(lambda m: " " * len(m.group(0)), text)
    unsupported: list[dict[str, str]] = []
    checked = 0

    def claim(kind: str, item: str, start: int) -> None:
        unsupported.append({"kind": kind, "item": item, "sentence": _sentence(text, start)})

    masked = body
    for pattern, kind, ok in ((URL, "url", evidence.supports_url),
                              (ISO_DATE, "date", evidence.mentions),
                              (NAMED_DATE, "date", evidence.supports_date),
                              (MODEL, "model", evidence.mentions)):
        for m in pattern.finditer(masked):
            checked += 1
            item = m.group(0).rstrip(".,;:!?") if kind == "url" else m.group(0)
            if not ok(item):
                claim(kind, item, m.start())
        # Mask what was checked so its digits are not checked again as numbers.
        masked = pattern.sub(lambda m: " " * len(m.group(0)), masked)
    for m in NUMBER.finditer(masked):
        checked += 1
        token = m.group(0)
        if not evidence.supports_number(token):
            kind = "money" if "$" in token else "percentage" if "%" in token else "number"
            claim(kind, token.strip(), m.start())
    if sentences is not None:
        checked += len(sentences)
        unsupported += sentence_claims(sentences, bundle)
    return {"checked": checked, "unsupported": unsupported, "grounded": not unsupported}
