"""Rendering docs/CHECKLIST.md: every extracted item with its page and section, nothing invented."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from .records import (
    GENERATED_MARKER,
    NEST,
    Algorithm,
    AppendixRef,
    Caption,
    Equation,
    Hyperparameter,
    Method,
    PaperExtract,
    Part,
    Statement,
    VocabTerm,
)
from .sentences import shorten


def _ref(page: int, section: str) -> str:
    return f"p. {page}, {section}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def _eq_list(numbers: Sequence[str]) -> str:
    return ", ".join(f"({n})" for n in numbers)


def render_checklist(extract: PaperExtract) -> str:
    out = [
        f"# Implementation checklist: {extract.title}",
        "",
        GENERATED_MARKER,
        f"> Pre-filled from `{extract.source.name}` ({extract.page_count} pages) by"
        " `tools/extract_paper.py`; the text is in `paper/paper.md`.",
        "> Every item points to its page and section of the PDF, and an item is listed only when"
        " the extracted text contains it: read the paper to add what the extractor missed.",
        "> Tick a box only when the code exists *and* a test checks it.",
    ]
    for title, body in _checklist_sections(extract):
        out += ["", f"## {title}", *(body or ["_None found in the extracted text._"])]
    return "\n".join(out) + "\n"


def _checklist_sections(x: PaperExtract) -> Iterator[tuple[str, list[str]]]:
    yield "Core algorithms", list(_algorithm_items(x.algorithms))
    yield "Model components", list(_component_items(x.methods, x.parts))
    yield "Definitions and theorems", [_statement_item(s) for s in x.statements]
    yield "Key equations", [_equation_item(e) for e in x.equations]
    yield "Hyperparameters", list(_hyper_table(x.hyperparameters))
    yield "Tables and figures", [_caption_item(c) for c in x.captions]
    yield "Appendix references", list(_appendix_items(x.appendix_refs))
    yield "Architecture vocabulary", list(_vocabulary_table(x.vocabulary))
    yield (
        "Abbreviations defined in the text",
        [f"- {a.acronym}: {a.expansion} — {_ref(a.page, a.section)}" for a in x.acronyms],
    )


def _algorithm_items(algorithms: Sequence[Algorithm]) -> Iterator[str]:
    for a in algorithms:
        caption = f": {a.caption}" if a.caption else ""
        yield f"- [ ] Algorithm {a.number}{caption} — {_ref(a.page, a.section)}"
        for text in a.inputs:
            yield f"  - {text}"
        for n, step in enumerate(a.steps, 1):
            yield f"  - [ ] step {n}: {step}"


def _component_items(methods: Sequence[Method], parts: Sequence[Part]) -> Iterator[str]:
    for m in methods:
        name = f"{m.name} ({m.acronym})" if m.acronym else m.name
        eqs = f" — equations {_eq_list(m.equations)}" if m.equations else ""
        quote = shorten(m.evidence, 160)
        yield f"- [ ] {name} — named on {_ref(m.page, m.section)}{eqs} — “{quote}”"
    for part in parts:
        yield f"- [ ] {part.label} — p. {part.page} — equations {_eq_list(part.equations)}"


def _statement_item(s: Statement) -> str:
    name = f" ({s.name})" if s.name else ""
    return f"- [ ] {s.kind} {s.number}{name} — {_ref(s.page, s.section)}: {s.text}"


def _equation_item(e: Equation) -> str:
    place = f"{e.section}{NEST}{e.paragraph}" if e.paragraph else e.section
    intro = f" — introduced by: “{shorten(e.intro, 200)}”" if e.intro else ""
    return (
        f"- [ ] Eq. ({e.number}) — {_ref(e.page, place)} — `{_cell(shorten(e.text, 160))}`{intro}"
    )


def _caption_item(c: Caption) -> str:
    return f"- [ ] {c.kind} {c.number}: {shorten(c.text, 200)} — {_ref(c.page, c.section)}"


def _vocabulary_table(terms: Sequence[VocabTerm]) -> Iterator[str]:
    if terms:
        yield "| Term | Mentions | Pages |"
        yield "|---|---|---|"
        for v in terms:
            yield f"| {v.term} | {v.count} | {', '.join(str(p) for p in v.pages)} |"


def _hyper_table(items: Sequence[Hyperparameter]) -> Iterator[str]:
    if not items:
        return
    yield "| Parameter | Value | Paper reference |"
    yield "|---|---|---|"
    rows: dict[tuple[str, str], list[Hyperparameter]] = {}
    for h in items:
        rows.setdefault((h.name, h.value), []).append(h)
    for (name, value), hits in rows.items():
        refs = "; ".join(f"{_ref(h.page, h.section)}: “{_cell(h.context)}”" for h in hits[:3])
        more = f" (+{len(hits) - 3} more)" if len(hits) > 3 else ""
        yield f"| {name} | {value} | {refs}{more} |"


def _appendix_items(refs: Sequence[AppendixRef]) -> Iterator[str]:
    by_label: dict[str, list[AppendixRef]] = {}
    for r in refs:
        by_label.setdefault(r.label, []).append(r)
    for label, hits in sorted(by_label.items()):
        where = "; ".join(dict.fromkeys(_ref(h.page, h.section) for h in hits))
        yield f"- [ ] Appendix {label} — cited on {where} — “{shorten(hits[0].context, 120)}”"
