"""Layout repair: the words pdfium split at a line break, joined with or without their hyphen."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter

from .records import Line

_SOFT_HYPHEN = "\ufffe"
_COMPOUND_TAILS = set(
    [
        "based",
        "like",
        "wise",
        "level",
        "free",
        "aware",
        "specific",
        "scale",
        "term",
        "time",
        "order",
        "dependent",
        "independent",
        "agnostic",
        "shot",
        "trained",
        "tuned",
        "valued",
    ]
)
_HYPHEN_SPLIT = re.compile(r"(\w+)\ufffe\s*(\w+)")


def repair_hyphens(pages: list[list[Line]]) -> list[list[Line]]:
    """pdfium marks a hyphen at a line break with U+FFFE and joins the two halves.

    The halves are joined without the hyphen ("simul-taneously") unless the document itself
    spells the word with a hyphen elsewhere ("step-by-step").
    """
    words: Counter[str] = Counter()
    for line in (ln for page in pages for ln in page):
        words.update(w.lower() for w in re.findall(r"\w+(?:-\w+)*", line.text))

    def join(match: re.Match[str]) -> str:
        left, right = match.group(1), match.group(2)
        hyphenated = f"{left}-{right}".lower()
        compound = (
            right.lower() in _COMPOUND_TAILS or match.string[match.end() : match.end() + 1] == "-"
        )
        seen = any(hyphenated in w for w in words if "-" in w)
        if (compound or seen) and f"{left}{right}".lower() not in words:
            return f"{left}-{right}"
        return f"{left}{right}"

    repaired: list[list[Line]] = []
    for page in pages:
        fixed: list[Line] = []
        for line in page:
            if _SOFT_HYPHEN in line.text:
                text = _HYPHEN_SPLIT.sub(join, line.text).replace(_SOFT_HYPHEN, "-")
                line = dataclasses.replace(line, text=text)
            fixed.append(line)
        repaired.append(fixed)
    return repaired
