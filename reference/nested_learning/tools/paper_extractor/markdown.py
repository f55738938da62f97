"""Rendering paper/paper.md: the text with page markers, headings and fenced equation blocks."""

from __future__ import annotations

import re

from .records import DocLine, PaperExtract


def _escape_md(text: str) -> str:
    if re.match(r"^(?:#|>|<|=+\s*$|-{3,}\s*$|\+\s|\*\s)", text):
        return "\\" + text
    return text


def render_markdown(extract: PaperExtract) -> str:
    out: list[str] = [
        f"# {extract.title}",
        "",
        f"<!-- Extracted from {extract.source.name} ({extract.page_count} pages) by"
        f" tools/extract_paper.py, text backend {extract.backend}. Line breaks follow the PDF;"
        " equations, algorithms and table bodies are kept as extracted, in text blocks. -->",
    ]
    page = 0
    block = ""  # the role of the fenced block we are in ("" outside one)
    for line in extract.lines:
        if line.page != page:
            block = _close_block(out, block)
            page = line.page
            out += ["", f"<!-- page {page} -->", ""]
        if line.role == "title":
            continue
        if line.role == "algorithm" and line.label:
            _close_block(out, block)
            out += ["", f"**{line.text}**", "", "```text"]
            block = "algorithm"
        elif line.role in ("equation", "algorithm", "table"):
            if block != line.role:
                _close_block(out, block)
                out += ["", "```text"]
                block = line.role
            out.append(line.text)
        else:
            block = _close_block(out, block)
            out += _plain_line(line)
    _close_block(out, block)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip() + "\n"


def _plain_line(line: DocLine) -> list[str]:
    if line.role == "heading":
        return ["", "#" * min(line.level + 1, 6) + " " + line.text, ""]
    text = (
        _bold_prefix(line) if line.role in ("runin", "statement", "caption") and line.label else []
    )
    text = text or [_escape_md(line.text)]
    return text + ([""] if line.para_end else [])


def _close_block(out: list[str], block: str) -> str:
    if block:
        out += ["```", ""]
    return ""


def _bold_prefix(line: DocLine) -> list[str]:
    text = line.text
    if line.role == "runin" and text.startswith(line.label):
        rest = text[len(line.label) :].strip()
        return ["", f"**{line.label}** {rest}".rstrip()]
    match = re.match(
        r"^((?:Table|Figure|Fig\.)\s+\S+?[:.]|(?:Definition|Theorem|Lemma|Proposition|"
        r"Corollary|Assumption)\s+[^.:]+[.:])\s*(.*)$",
        text,
    )
    if match:
        return ["", f"**{match.group(1)}** {match.group(2)}".rstrip()]
    return [_escape_md(text)]
