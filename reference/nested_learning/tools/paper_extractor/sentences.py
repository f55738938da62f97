"""Sentences of running text: splitting them (abbreviations aside) and shortening quotes."""

from __future__ import annotations

import re

_ABBREVIATIONS = set(
    ["al.", "e.g.", "i.e.", "eq.", "eqs.", "fig.", "vs.", "cf.", "sec.", "resp.", "etc."]
)


def split_sentences(text: str) -> list[str]:
    text = re.sub(r"\s+", " ", text).strip()
    out: list[str] = []
    start = 0
    for match in re.finditer(r"[.!?]\s+(?=[A-Z(\[])", text):
        before = text[start : match.start() + 1].split()
        last = before[-1].lower() if before else ""
        if last in _ABBREVIATIONS or re.fullmatch(r"[a-z]\.|[A-Z]\.", last):
            continue
        out.append(text[start : match.start() + 1].strip())
        start = match.end()
    if text[start:].strip():
        out.append(text[start:].strip())
    return out


def first_sentences(text: str, count: int, limit: int) -> str:
    return shorten(" ".join(split_sentences(text)[:count]), limit)


def shorten(text: str, limit: int) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
