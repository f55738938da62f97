"""The whole extraction: read, parse, run every finder, and classify the lines paper.md shows."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from .hyperparameters import find_hyperparameters
from .mentions import find_appendix_refs, find_vocabulary
from .names import find_acronyms, find_methods, find_parts
from .parser import Parser
from .pdf_reader import read_pdf
from .records import BACKEND, DocLine, PaperExtract
from .text_flow import Flow


def extract(pdf_path: Path) -> PaperExtract:
    """Read the PDF and return everything the checklist needs; raises ExtractError."""
    pages = read_pdf(Path(pdf_path))
    parser = Parser(pages)
    parser.run()
    flow = Flow(parser)
    acronyms = find_acronyms(flow)
    methods = find_methods(flow, acronyms, parser.equations)
    return PaperExtract(
        source=Path(pdf_path),
        title=parser.title or Path(pdf_path).stem,
        backend=BACKEND,
        page_count=len(pages),
        lines=_doc_lines(parser),
        sections=tuple(parser.sections),
        algorithms=tuple(parser.algorithms),
        statements=tuple(parser.statements),
        equations=tuple(parser.equations),
        hyperparameters=tuple(find_hyperparameters(flow)),
        captions=tuple(parser.captions),
        appendix_refs=tuple(find_appendix_refs(flow)),
        acronyms=tuple(acronyms),
        methods=tuple(methods),
        parts=tuple(find_parts(parser.equations)),
        vocabulary=tuple(find_vocabulary(flow)),
    )


def _doc_lines(parser: Parser) -> tuple[DocLine, ...]:
    lines = parser.lines
    roles = _mark_tables(parser)
    out: list[DocLine] = []
    for i, line in enumerate(lines):
        role = roles[i]
        if role == "heading-cont" and out:
            out[-1] = dataclasses.replace(out[-1], text=f"{out[-1].text} {line.text}")
            continue
        if role == "caption":
            para_end = (
                i + 1 == len(lines) or roles[i + 1] != "caption" or bool(parser.labels[i + 1])
            )
        else:
            para_end = role in ("prose", "math") and parser.ends_paragraph(i)
        out.append(
            DocLine(line.page, line.text, role, parser.levels[i], parser.labels[i], para_end)
        )
    return tuple(out)


def _mark_tables(parser: Parser) -> list[str]:
    """Runs of non-prose lines with two or more rows of numbers are table bodies."""
    roles = list(parser.roles)
    i = 0
    while i < len(roles):
        j = i
        while (
            j < len(roles) and roles[j] == "math" and parser.lines[j].page == parser.lines[i].page
        ):
            j += 1
        rows = sum(len(_NUMBER_CELL.findall(parser.lines[k].text)) >= 3 for k in range(i, j))
        if rows >= 2:
            roles[i:j] = ["table"] * (j - i)
        i = max(j, i + 1)
    return roles


_NUMBER_CELL = re.compile(r"(?<!\S)[-+]?\d+(?:[.,]\d+)*%?(?!\S)")
