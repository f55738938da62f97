"""What one line is: prose or mathematics, a section heading, a bold run-in paragraph title."""

from __future__ import annotations

import re
from collections import Counter

from .records import Line

EQ_TAIL = re.compile(r"\((\d{1,3}[a-z]?|[A-Z]\.\d{1,3})\)\s*$")

KNOWN_HEADINGS = set(
    [
        "abstract",
        "introduction",
        "references",
        "bibliography",
        "acknowledgments",
        "acknowledgements",
        "appendix",
        "appendices",
        "conclusion",
        "conclusions",
        "related work",
        "limitations",
        "broader impact",
        "broader impacts",
        "discussion",
        "supplementary material",
        "neurips paper checklist",
    ]
)
NUMBERED_HEADING = re.compile(
    r"^(?P<num>\d{1,2}(?:\.\d{1,2}){0,3}|[A-Z](?:\.\d{1,2}){0,3})(?P<dot>\.?)\s+"
    r"(?P<title>[A-Z][^\n]{1,120})$"
)

_MATH_WORDS = {"arg", "min", "max", "log", "exp", "sin", "cos", "tanh", "sup", "inf", "lim", "mod"}
_PROSE_WORD = re.compile(r"(?<![\w\u2207])[A-Za-z][a-z]{2,}(?:[-\u2019'][a-z]+)*\b")


def is_prose(text: str) -> bool:
    """True for a line of running text, False for a line of mathematics."""
    words = [w for w in _PROSE_WORD.findall(text) if w.lower() not in _MATH_WORDS]
    if text.rstrip().endswith(":") and words:
        return True
    tokens = text.split()
    share = len(words) / max(len(tokens), 1)
    return (
        len(words) >= 6 or (len(words) >= 4 and share >= 0.4) or (len(words) >= 3 and share >= 0.5)
    )


def line_gaps(lines: list[Line]) -> list[float]:
    """Vertical distance from each line to the next one below it in the same column (else 0)."""
    gaps = [0.0] * len(lines)
    for i in range(len(lines) - 1):
        here, below = lines[i], lines[i + 1]
        if here.page == below.page and below.baseline < here.baseline:
            gaps[i] = here.baseline - below.baseline
    return gaps


def body_size(pages: list[list[Line]]) -> float:
    sizes: Counter[float] = Counter()
    for line in (ln for page in pages for ln in page):
        sizes[round(line.size, 1)] += len(line.text)
    return sizes.most_common(1)[0][0] if sizes else 10.0


def as_heading(line: Line, body: float) -> tuple[str | None, str, int] | None:
    """(number, title, level) when the line is a section heading."""
    text = line.text.strip()
    larger = line.size >= body + 0.8
    styled = line.bold >= 0.6 or larger
    if not styled or len(text) > 130:
        return None
    match = NUMBERED_HEADING.match(text)
    if match:
        num, title = match.group("num"), match.group("title").strip()
        plausible = (
            len(title.split()) <= 16
            and not title.endswith((".", ",", ";", ":"))
            and re.search(r"[A-Za-z]{3}", title) is not None
            and (not match.group("dot") or larger)
            and (num[0].isdigit() or line.bold >= 0.6)
        )
        if plausible:
            return num, title, num.count(".") + 1
    if text.lower() in KNOWN_HEADINGS:
        return None, text, 1
    if (
        line.bold >= 0.9
        and larger
        and len(text.split()) <= 8
        and text[:1].isupper()
        and not text.endswith((".", ",", ";", ":"))
    ):
        return None, text, 1
    return None


def runin_title(line: Line) -> str:
    """The bold run-in paragraph title the line starts with ("Extension: More Memory.")."""
    lead = line.lead_bold
    if not lead or len(lead) > 90 or not lead[:1].isupper() or not lead.endswith((".", ":")):
        return ""
    title = lead.rstrip(".:").strip()
    if len(re.findall(r"[A-Za-z]", title)) < 3 or len(title.split()) > 10:
        return ""
    if re.match(
        r"(Definition|Theorem|Lemma|Proposition|Corollary|Assumption|Algorithm|Table|"
        r"Figure|Fig\.|Proof)\b",
        title,
    ):
        return ""
    return title
