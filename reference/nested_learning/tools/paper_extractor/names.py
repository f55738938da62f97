"""Finders: abbreviations the text defines, the methods it names, the parts with equations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .records import Acronym, Equation, Method, Part
from .text_flow import Flow

_CAP_WORD = r"[A-Z][\w\u2019'-]*"
_NAME = (
    r"(?P<name>"
    + _CAP_WORD
    + r"(?:\s+(?:(?:of|for|with|and|via|on|in|to)\s+)?"
    + _CAP_WORD
    + r"){0,5})(?:\s*\((?P<acr>[A-Z][A-Za-z0-9-]{1,12})\))?"
)
_NAMING = re.compile(
    r"(?<!so-)\b(?:called|named|dubbed|termed|coined|"
    r"(?:refer\s+to|denote|call)\s+(?:this|it|these|them|our)(?:\s+[a-z][\w-]*)?(?:\s+as)?)\s+"
    r"(?:(?:the|a|an|our)\s+)?" + _NAME
)
_CONTRIBUTION = re.compile(r"\((?:\d{1,2}|[ivx]{1,4})\)\s+" + _NAME + r"\s*:")
_ACRONYM_DEF = re.compile(
    r"(?P<long>(?:[A-Z][\w\u2019'-]*|of|for|and|with|the|to|in|on)"
    r"(?:\s+(?:[A-Z][\w\u2019'-]*|of|for|and|with|the|to|in|on)){0,7})\s+\((?P<acr>[A-Z][A-Za-z0-9-]*[A-Z][A-Za-z0-9-]*)\)"
)
_NOT_A_NAME = set(
    [
        "the",
        "this",
        "these",
        "that",
        "a",
        "an",
        "our",
        "we",
        "it",
        "in",
        "equation",
        "eq",
        "section",
        "figure",
        "table",
        "appendix",
        "algorithm",
        "definition",
        "theorem",
        "lemma",
    ]
)


def _acronym_expansion(words: list[str], acronym: str) -> str:
    """The shortest tail of `words` whose initials spell the acronym, or ""."""
    letters = acronym.rstrip("s").upper().replace("-", "")
    for start in range(len(words) - 1, -1, -1):
        tail = words[start:]
        if tail[0][:1].islower():
            continue
        initials = "".join(
            part[0] for w in tail if w[:1].isupper() for part in w.split("-") if part[:1].isupper()
        )
        simple = "".join(w[0] for w in tail if w[:1].isupper())
        if letters in (initials.upper(), simple.upper()):
            return " ".join(tail)
    return ""


def find_acronyms(flow: Flow) -> list[Acronym]:
    seen: set[str] = set()
    found: list[Acronym] = []
    for match in _ACRONYM_DEF.finditer(flow.text):
        acr = match.group("acr")
        expansion = _acronym_expansion(match.group("long").split(), acr)
        page, section, skip = flow.where(match.start("acr"))
        if not expansion or skip or acr in seen:
            continue
        seen.add(acr)
        found.append(Acronym(acr, expansion, page, section))
    return found


def _valid_name(name: str) -> bool:
    words = name.split()
    if not words or words[0].lower() in _NOT_A_NAME:
        return False
    return len(words) >= 2 or (len(name) >= 3 and sum(ch.isupper() for ch in name) >= 2)


@dataclass
class _NameHit:
    name: str
    acronym: str
    offset: int
    evidence: str


def _name_hits(flow: Flow) -> list[_NameHit]:
    hits = [*_text_name_hits(flow), *_heading_name_hits(flow)]
    hits.sort(key=lambda h: h.offset)
    return hits


def _text_name_hits(flow: Flow) -> Iterator[_NameHit]:
    """'... called Nested Learning (NL)', '(2) Self-Modifying Titans: ...'."""
    for pattern in (_NAMING, _CONTRIBUTION):
        for match in pattern.finditer(flow.text):
            name = " ".join(match.group("name").split())
            acr = match.group("acr") or ""
            if acr and not _acronym_expansion(name.split(), acr):
                acr = ""
            if _valid_name(name) and not flow.where(match.start())[2]:
                evidence = flow.context(match.start(), match.end(), 60)
                yield _NameHit(name, acr, match.start("name"), evidence)


_HEADING_NAME = re.compile(r"^([A-Z][\w\u2019'-]*(?:\s+[A-Z][\w\u2019'-]*){0,3})\s*:\s+\S")


def _heading_name_hits(flow: Flow) -> Iterator[_NameHit]:
    """'3 HOPE: A Self-Referential Learning Module' names HOPE."""
    p = flow.parser
    for i, role in enumerate(p.roles):
        if role != "heading" or not p.labels[i]:
            continue
        found = _HEADING_NAME.match(re.sub(r"^\S+\s+", "", p.lines[i].text))
        if found is None:
            continue
        name = found.group(1)
        if sum(ch.isupper() for ch in name) >= 2 and _valid_name(name):
            yield _NameHit(name, "", flow.starts[i], p.lines[i].text)


def find_methods(flow: Flow, acronyms: list[Acronym], equations: list[Equation]) -> list[Method]:
    by_long = {a.expansion.lower(): a for a in acronyms}
    by_acr = {a.acronym.lower(): a for a in acronyms}
    merged: dict[str, _NameHit] = {}
    alias: dict[str, str] = {}  # lower-cased name or acronym -> key in merged
    for hit in _name_hits(flow):
        if hit.name.lower() in by_acr:  # "SGR: ..." names the method defined as "... (SGR)"
            hit.name, hit.acronym = by_acr[hit.name.lower()].expansion, hit.name
        key = hit.name.lower()
        if not hit.acronym and key in by_long:
            hit.acronym = by_long[key].acronym
        known = alias.get(key) or alias.get(hit.acronym.lower() if hit.acronym else "")
        if known is not None:
            if hit.acronym and not merged[known].acronym:
                merged[known].acronym = hit.acronym
                alias[hit.acronym.lower()] = known
            continue
        merged[key] = hit
        alias[key] = key
        if hit.acronym:
            alias[hit.acronym.lower()] = key
    methods: list[Method] = []
    for hit in merged.values():
        page, section, _ = flow.where(hit.offset)
        eqs = _method_equations(flow, hit, by_long, equations)
        methods.append(Method(hit.name, hit.acronym, hit.evidence, page, section, eqs))
    return methods


def _method_equations(
    flow: Flow, hit: _NameHit, by_long: dict[str, Acronym], equations: list[Equation]
) -> tuple[str, ...]:
    """Equations of the units that define the method or carry its name in their heading."""
    p = flow.parser
    units: set[tuple[str, str]] = {
        (p.sections_at[flow.line_at(hit.offset)], p.paragraphs_at[flow.line_at(hit.offset)])
    }
    acr = by_long.get(hit.name.lower())
    if acr is not None:
        spelled = r"\s+".join(re.escape(w) for w in acr.expansion.split())
        for match in re.finditer(spelled + r"\s+\(" + re.escape(acr.acronym) + r"\)", flow.text):
            i = flow.line_at(match.start())
            units.add((p.sections_at[i], p.paragraphs_at[i]))
    names = [hit.name] + ([hit.acronym] if hit.acronym else [])
    headed = {
        s.label
        for s in p.sections
        if any(re.search(rf"\b{re.escape(n)}\b", s.title) for n in names)
    }
    numbers = [
        eq.number for eq in equations if (eq.section, eq.paragraph) in units or eq.section in headed
    ]
    return tuple(dict.fromkeys(numbers))


def find_parts(equations: list[Equation]) -> list[Part]:
    groups: dict[tuple[str, str], list[Equation]] = {}
    for eq in equations:
        groups.setdefault((eq.section, eq.paragraph), []).append(eq)
    return [
        Part(section, paragraph, eqs[0].page, tuple(e.number for e in eqs))
        for (section, paragraph), eqs in groups.items()
    ]
