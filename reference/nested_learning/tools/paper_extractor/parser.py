"""The document parser: one pass over the lines in reading order, collecting sections and blocks."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from .classify import (
    EQ_TAIL,
    KNOWN_HEADINGS,
    NUMBERED_HEADING,
    as_heading,
    body_size,
    is_prose,
    line_gaps,
    runin_title,
)
from .records import Algorithm, Caption, Equation, Line, Section, Statement
from .sentences import first_sentences, shorten, split_sentences

_STATEMENT = re.compile(
    r"^(?P<kind>Definition|Theorem|Lemma|Proposition|Corollary|Assumption)\s+"
    r"(?P<num>\d{1,3}(?:\.\d{1,3})*|[A-Z]\.\d{1,3})\s*(?:\((?P<name>[^()]{1,80})\))?\s*[.:]\s*"
    r"(?P<rest>.*)$"
)
_ALGORITHM = re.compile(r"^Algorithm\s+(?P<num>\d{1,3})\b\s*[:.]?\s*(?P<caption>.*)$")
_STEP = re.compile(r"^(?P<num>\d{1,3})\s*[:.)]?\s+(?P<text>\S.*)$")
_ALGO_INPUT = re.compile(r"^(?:Require|Ensure|Input|Inputs|Output|Outputs|Given|Parameters?)\s*:")
_CAPTION = re.compile(
    r"^(?P<kind>Table|Figure|Fig\.)\s+(?P<num>\d{1,3}|[A-Z]\.?\d{1,3})\s*[:.]\s*(?P<text>\S.*)$"
)
_SKIP_SECTION = re.compile(r"references|bibliography|checklist|acknowledg", re.IGNORECASE)


@dataclass
class _State:
    section: Section | None = None
    paragraph: str = ""

    @property
    def label(self) -> str:
        return self.section.label if self.section else "front matter"


class Parser:
    """Walks the lines once, in reading order, and collects every extracted item."""

    def __init__(self, pages: list[list[Line]]) -> None:
        self.lines: list[Line] = [ln for page in pages for ln in page]
        self.body = body_size(pages)
        widths = sorted(len(ln.text) for ln in self.lines if len(ln.text) > 20)
        self.typical_width = widths[len(widths) // 2] if widths else 80
        self.gap_after = line_gaps(self.lines)
        normal = sorted(g for g in self.gap_after if 0.8 * self.body < g < 2.5 * self.body)
        self.leading = normal[len(normal) // 2] if normal else 1.2 * self.body
        self.roles: list[str] = ["prose"] * len(self.lines)
        self.labels: list[str] = [""] * len(self.lines)
        self.levels: list[int] = [0] * len(self.lines)
        self.sections_at: list[str] = [""] * len(self.lines)
        self.paragraphs_at: list[str] = [""] * len(self.lines)
        self.skip_at: list[bool] = [False] * len(self.lines)
        self.sections: list[Section] = []
        self.algorithms: list[Algorithm] = []
        self.statements: list[Statement] = []
        self.equations: list[Equation] = []
        self.captions: list[Caption] = []
        self.title = ""

    # -- driver ------------------------------------------------------------------------------
    def run(self) -> None:
        self._find_title()
        state = _State()
        i = 0
        while i < len(self.lines):
            if self.roles[i] == "title":
                self._mark(i, state)
                i += 1
                continue
            i = self._classify(i, state)

    def _mark(self, i: int, state: _State) -> None:
        self.sections_at[i] = state.label
        self.paragraphs_at[i] = state.paragraph
        self.skip_at[i] = bool(state.section and _SKIP_SECTION.search(state.section.title))

    def _classify(self, i: int, state: _State) -> int:
        line = self.lines[i]
        if state.section is not None and self._continues_heading(i):
            state.section = dataclasses.replace(
                state.section, title=f"{state.section.title} {line.text}"
            )
            self.sections[-1] = state.section
            self.roles[i] = "heading-cont"
            self._mark(i, state)
            return i + 1
        heading = as_heading(line, self.body)
        if heading is not None:
            number, title, level = heading
            state.section = Section(number, title, level, line.page)
            state.paragraph = ""
            self.sections.append(state.section)
            self.roles[i], self.levels[i], self.labels[i] = "heading", level, number or ""
            self._mark(i, state)
            return i + 1
        self._mark(i, state)
        for handler in (self._algorithm, self._statement, self._caption, self._equation):
            end = handler(i, state)
            if end is not None:
                return end
        title = runin_title(line)
        if title:
            state.paragraph = title
            self._mark(i, state)
            self.roles[i], self.labels[i] = "runin", line.lead_bold
            return i + 1
        self.roles[i] = "prose" if is_prose(line.text) else "math"
        return i + 1

    def _continues_heading(self, i: int) -> bool:
        """The second line of a heading that wrapped: same style, right below, not numbered."""
        if i == 0 or self.roles[i - 1] not in ("heading", "heading-cont"):
            return False
        above, line = self.lines[i - 1], self.lines[i]
        return (
            above.page == line.page
            and abs(above.size - line.size) < 0.3
            and (line.bold >= 0.6) == (above.bold >= 0.6)
            and 0 < self.gap_after[i - 1] <= 1.6 * max(line.size, self.body)
            and NUMBERED_HEADING.match(line.text) is None
            and line.text.lower() not in KNOWN_HEADINGS
            and not line.text.endswith((".", ":"))
            and len(line.text.split()) <= 12
        )

    # -- title -------------------------------------------------------------------------------
    def _find_title(self) -> None:
        first = [
            (i, ln)
            for i, ln in enumerate(self.lines[:12])
            if ln.page == 1
            and not ln.text.startswith("arXiv:")
            and re.search("[A-Za-z]{3}", ln.text)
        ]
        if not first:
            return
        biggest = max(ln.size for _, ln in first)
        if biggest < self.body * 1.25:
            return
        chosen = [i for i, ln in first if ln.size >= biggest - 0.5]
        run = [chosen[0]]
        for i in chosen[1:]:
            if i == run[-1] + 1:
                run.append(i)
        self.title = " ".join(self.lines[i].text for i in run)
        for i in run:
            self.roles[i] = "title"

    # -- blocks ------------------------------------------------------------------------------
    def _algorithm(self, i: int, state: _State) -> int | None:
        line = self.lines[i]
        match = _ALGORITHM.match(line.text)
        if match is None:
            return None
        inputs: list[str] = []
        steps: list[str] = []
        pending: list[str] = []
        end = i + 1
        j = i + 1
        while j < len(self.lines) and j - end <= 2:
            text = self.lines[j].text
            step = _STEP.match(text)
            if step and int(step.group("num")) == len(steps) + 1:
                if steps and pending:
                    steps[-1] = " ".join([steps[-1], *pending])
                steps.append(step.group("text").strip())
                pending, end = [], j + 1
            elif not steps and _ALGO_INPUT.match(text):
                inputs.append(text)
                end = j + 1
            elif steps:
                pending.append(text)
            else:
                break
            j += 1
        bold_head = line.lead_bold.startswith("Algorithm")
        if not steps and not bold_head:
            return None
        number = match.group("num")
        caption = match.group("caption").strip()
        self.algorithms.append(
            Algorithm(number, caption, tuple(inputs), tuple(steps), line.page, state.label)
        )
        for k in range(i, max(end, i + 1)):
            self.roles[k], self.labels[k] = "algorithm", f"Algorithm {number}" if k == i else ""
            self._mark(k, state)
        return max(end, i + 1)

    def _statement(self, i: int, state: _State) -> int | None:
        match = _STATEMENT.match(self.lines[i].text)
        if match is None:
            return None
        text = first_sentences(" ".join([match.group("rest"), *self._statement_body(i)]), 2, 320)
        kind, number = match.group("kind"), match.group("num")
        name = (match.group("name") or "").strip()
        self.statements.append(Statement(kind, number, name, text, self.lines[i].page, state.label))
        head = f"{kind} {number}" + (f" ({name})" if name else "")
        state.paragraph = head
        self._mark(i, state)
        self.roles[i], self.labels[i] = "statement", head
        return i + 1

    def _statement_body(self, i: int) -> list[str]:
        """The lines after a statement's head, up to the end of its paragraph or the next block."""
        body: list[str] = []
        if self.ends_paragraph(i):
            return body
        for j in range(i + 1, min(i + 8, len(self.lines))):
            if self._starts_block(self.lines[j]):
                break
            body.append(self.lines[j].text)
            if self.ends_paragraph(j):
                break
        return body

    def _starts_block(self, line: Line) -> bool:
        text = line.text
        return bool(
            line.eq_number
            or as_heading(line, self.body)
            or runin_title(line)
            or any(p.match(text) for p in (_STATEMENT, _ALGORITHM, _CAPTION))
        )

    def ends_paragraph(self, i: int) -> bool:
        """A sentence end followed by extra vertical space, or a short last line."""
        text = self.lines[i].text
        if not text.endswith((".", "!", "?", ":")):
            return False
        spaced = 1.2 * self.leading < self.gap_after[i] < 10 * self.leading
        return spaced or (len(text) < 0.8 * self.typical_width and not text.endswith(":"))

    def _caption(self, i: int, state: _State) -> int | None:
        line = self.lines[i]
        match = _CAPTION.match(line.text)
        if match is None:
            return None
        kind = "Figure" if match.group("kind").startswith("Fig") else "Table"
        number = match.group("num")
        if any(c.kind == kind and c.number == number for c in self.captions):
            return None
        parts = [match.group("text").strip()]
        end = i + 1
        while not parts[-1].endswith(".") and end < len(self.lines) and end - i <= 6:
            nxt = self.lines[end]
            if nxt.page != line.page or as_heading(nxt, self.body) or nxt.eq_number:
                break
            parts.append(nxt.text)
            end += 1
        text = " ".join(parts)
        self.captions.append(Caption(kind, number, text, line.page, state.label))
        for k in range(i, end):
            self.roles[k], self.labels[k] = "caption", f"{kind} {number}" if k == i else ""
            self._mark(k, state)
        return end

    def _equation(self, i: int, state: _State) -> int | None:
        line = self.lines[i]
        if line.eq_number is None:
            return None
        start = i
        while (
            start - 1 >= 0
            and i - (start - 1) <= 24
            and self.lines[start - 1].page == line.page
            and self.roles[start - 1] in ("math", "prose")
            and self.lines[start - 1].eq_number is None
            and not is_prose(self.lines[start - 1].text)
            and not runin_title(self.lines[start - 1])
        ):
            start -= 1
        body = [self.lines[k].text for k in range(start, i)]
        body.append(EQ_TAIL.sub("", line.text).rstrip())
        text = " ".join(t for t in body if t).strip()
        if any(eq.number == line.eq_number for eq in self.equations):
            return None
        intro = self._intro(start)
        self.equations.append(
            Equation(line.eq_number, text, intro, line.page, state.label, state.paragraph)
        )
        for k in range(start, i + 1):
            self.roles[k] = "equation"
            self.labels[k] = line.eq_number if k == i else ""
        return i + 1

    def _intro(self, start: int) -> str:
        """The sentence just before an equation block (skipping earlier equation blocks)."""
        j = start - 1
        while j >= 0 and self.roles[j] == "equation" and start - j <= 40:
            j -= 1
        collected: list[str] = []
        while j >= 0 and len(collected) < 8 and self.roles[j] in ("prose", "math", "runin"):
            text = self.lines[j].text
            if self.roles[j] == "math" and (len(text) > 12 or "=" in text):
                break
            collected.insert(0, text)
            if self.roles[j] == "runin" or re.search(r"[.!?]\s+\S", text):
                break
            j -= 1
        sentences = split_sentences(" ".join(collected))
        return shorten(sentences[-1], 320) if sentences else ""
