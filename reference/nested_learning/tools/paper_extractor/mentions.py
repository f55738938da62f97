"""Finders: references to the appendix, and how often the architecture's vocabulary occurs."""

from __future__ import annotations

import re

from .records import AppendixRef, VocabTerm
from .text_flow import Flow

_APPENDIX_REF = re.compile(
    r"\b(?:Appendix|Appendices|App\.)\s+(?P<a>[A-Z](?:\.\d{1,2})*)\b"
    r"|\b(?:Section|Sections|Sec\.|§)\s*(?P<b>[A-Z]\.\d{1,2}(?:\.\d{1,2})*)\b"
)


def find_appendix_refs(flow: Flow) -> list[AppendixRef]:
    refs: list[AppendixRef] = []
    for match in _APPENDIX_REF.finditer(flow.text):
        label = match.group("a") or match.group("b")
        i = flow.line_at(match.start())
        if flow.parser.roles[i] == "heading":
            continue
        page, section, _ = flow.where(match.start())
        refs.append(AppendixRef(label, flow.context(match.start(), match.end(), 40), page, section))
    return refs


_VOCAB = {
    "layer": r"layers?",
    "block": r"blocks?",
    "module": r"modules?",
    "head": r"heads?",
    "attention": r"attention",
    "memory": r"memory|memories",
    "optimizer": r"optimi[sz]ers?",
}


def find_vocabulary(flow: Flow) -> list[VocabTerm]:
    terms: list[VocabTerm] = []
    for term, pattern in _VOCAB.items():
        pages: list[int] = []
        for match in re.finditer(rf"\b(?:{pattern})\b", flow.text, re.IGNORECASE):
            page, _, skip = flow.where(match.start())
            if not skip:
                pages.append(page)
        if pages:
            terms.append(VocabTerm(term, len(pages), tuple(sorted(set(pages)))))
    return terms
