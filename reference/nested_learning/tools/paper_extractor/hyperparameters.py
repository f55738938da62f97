"""Finder: hyperparameter values in the text and tables (learning rate, batch size, layers, ...)."""

from __future__ import annotations

import re

from .records import Hyperparameter
from .text_flow import Flow

_BEFORE_NUM = r"(?<![\w.+\-^/=<>\u2264\u2265\u223c~\u2212])"
_NUM = (
    _BEFORE_NUM + r"(?P<value>(?:\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)"
    r"(?:\s*[\u00d7x]\s*10\s*\^?\s*[-\u2212\u2013]?\d+|[eE][-\u2212\u2013+]?\d+)?"
    r"(?:[kKMBT](?![\w])|%)?)(?![\w])(?!\.\d)"
)
_CONNECT = (  # "learning rate (lr) of 3e-4", "batch size = 256", "layers: 12", "Dropout 0.1"
    r"\s*(?:\([^()]{1,12}\)\s*)?"
    r"(?:[:=|\u2248~]|\b(?:of|is|was|were|set\s+to|equal\s+to|to)\b)?\s*"
)


def _key_first(keyword: str) -> re.Pattern[str]:
    """'learning rate of 3e-4'."""
    return re.compile(r"\b(?:" + keyword + r")\b" + _CONNECT + _NUM, re.IGNORECASE)


def _value_first(keyword: str) -> re.Pattern[str]:
    """'12 layers'."""
    return re.compile(_NUM + r"\s*(?:" + keyword + r")\b", re.IGNORECASE)


# (name, regex) in priority order: a value claimed by an earlier pattern is not reused. In the
# value-first patterns value and keyword may sit on two lines only in running text: in a table,
# the value ending one row must not pair with the keyword that opens the next row.
_HYPER_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "sequence length",
        _key_first(
            r"(?:max(?:imum)?\s+)?(?:sequence|context|input)\s+length|seq(?:uence)?[\s_-]?len"
            r"|context\s+(?:window|size)"
        ),
    ),
    ("model size (parameters)", _value_first(r"params|parameters?")),
    ("training tokens", _value_first(r"(?:training\s+)?tokens")),
    ("warmup", _value_first(r"warm[\s-]?up\s+(?:steps|iterations)")),
    ("warmup", _key_first(r"warm[\s-]?up(?:\s+(?:steps|iterations))?")),
    ("training steps", _key_first(r"(?:training|total|optimi[sz]ation)\s+(?:steps|iterations)")),
    (
        "training steps",
        _value_first(r"(?:(?:training|optimi[sz]ation|gradient)\s+)?(?:steps|iterations)"),
    ),
    (
        "learning rate",
        _key_first(r"(?:(?:peak|initial|base|max(?:imum)?)\s+)?(?:learning[\s-]rate|lr)s?"),
    ),
    ("batch size", _key_first(r"(?:(?:global|mini)[\s-]?)?batch[\s-]?sizes?")),
    ("layers", _key_first(r"(?:number\s+of\s+)?layers")),
    ("layers", _value_first(r"(?:(?:transformer|hidden|attention)\s+)?layers")),
    (
        "d_model",
        _key_first(
            r"d[\s_-]?model|model\s+(?:dimension|dim|width)|hidden\s+(?:size|dimension|dim)"
            r"|embedding\s+(?:size|dimension|dim)"
        ),
    ),
    ("attention heads", _key_first(r"(?:number\s+of\s+)?(?:attention\s+)?heads")),
    ("attention heads", _value_first(r"(?:attention\s+)?heads")),
    ("dropout", _key_first(r"dropout(?:\s+(?:rate|probability))?")),
    ("weight decay", _key_first(r"weight[\s-]decay")),
    ("epochs", _value_first(r"(?:training\s+)?epochs")),
    ("epochs", _key_first(r"(?:number\s+of\s+)?epochs")),
    ("model size (parameters)", re.compile(_BEFORE_NUM + r"(?P<value>\d+(?:\.\d+)?[MB])(?![\w.])")),
]
_BOUND_SIGNS = set("\u2265\u2264<>=\u223c~\u00b1")
_NOT_A_SIZE_BEFORE = re.compile(r"(?:Figure|Fig\.|Table|Section|Sec\.|Appendix|Eq\.|Equation)\s*$")


def find_hyperparameters(flow: Flow) -> list[Hyperparameter]:
    claimed: list[tuple[int, int]] = []
    found: list[Hyperparameter] = []
    for name, pattern in _HYPER_PATTERNS:
        for match in pattern.finditer(flow.text):
            start, end = match.span("value")
            if any(s < end and start < e for s, e in claimed):
                continue
            if "\n" in flow.text[end : match.end()] and flow.role_at(start) != "prose":
                continue  # value-first across a line break: only in running text
            before = flow.text[max(start - 12, 0) : start]
            if _NOT_A_SIZE_BEFORE.search(before) or before.rstrip()[-1:] in _BOUND_SIGNS:
                continue
            page, section, skip = flow.where(start)
            if skip:
                continue
            claimed.append((start, end))
            value = re.sub(r"\s+", " ", match.group("value"))
            context = flow.context(match.start(), match.end(), 50)
            found.append(Hyperparameter(name, value, context, page, section))
    found.sort(key=lambda h: (_HYPER_ORDER.index(h.name), h.page))
    return found


_HYPER_ORDER = list(dict.fromkeys(name for name, _ in _HYPER_PATTERNS))
