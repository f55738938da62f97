"""The running text as one string, for the finders, with a map back to lines, pages and sections."""

from __future__ import annotations

import bisect
import re

from .parser import Parser


class Flow:
    """The document as one string, with a map from character offsets back to lines."""

    def __init__(self, parser: Parser) -> None:
        self.parser = parser
        self.starts: list[int] = []
        pieces: list[str] = []
        offset = 0
        for line in parser.lines:
            self.starts.append(offset)
            pieces.append(line.text)
            offset += len(line.text) + 1
        self.text = "\n".join(pieces)  # value-first patterns must not cross a line (table rows)

    def line_at(self, offset: int) -> int:
        return max(bisect.bisect_right(self.starts, offset) - 1, 0)

    def role_at(self, offset: int) -> str:
        return self.parser.roles[self.line_at(offset)]

    def where(self, offset: int) -> tuple[int, str, bool]:
        i = self.line_at(offset)
        p = self.parser
        return p.lines[i].page, p.sections_at[i], p.skip_at[i]

    def context(self, start: int, end: int, width: int = 70) -> str:
        left = max(self.text.rfind(" ", 0, max(start - width, 0)) + 1, 0)
        right = self.text.find(" ", min(end + width, len(self.text)))
        right = len(self.text) if right < 0 else right
        snippet = re.sub(r"\s+", " ", self.text[left:right]).strip()
        return ("…" if left > 0 else "") + snippet + ("…" if right < len(self.text) else "")
