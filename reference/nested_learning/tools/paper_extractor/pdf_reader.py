"""Reading the PDF: pypdfium2's character API, one text line at a time, with its typography."""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .classify import EQ_TAIL, is_prose
from .layout import repair_hyphens
from .records import ExtractError, Line


def _pdfium() -> Any:
    try:
        import pypdfium2
    except ImportError as exc:
        raise ExtractError(
            "pypdfium2 is not installed; run `uv run --group paper python tools/extract_paper.py`"
            " (or `pip install pypdfium2`)"
        ) from exc
    return pypdfium2


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ExtractError(f"{path}: no such file")
    if not path.is_file():
        raise ExtractError(f"{path}: not a file (a PDF file is expected)")
    try:
        with path.open("rb") as fh:
            head = fh.read(1024)
    except OSError as exc:
        raise ExtractError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if not head.strip():
        raise ExtractError(f"{path}: the file is empty (0 bytes), not a PDF")
    if b"%PDF-" not in head:
        raise ExtractError(f"{path}: not a PDF file (it does not start with the %PDF- header)")


def _open_document(path: Path) -> Any:
    _check_file(path)
    pdfium = _pdfium()
    try:
        doc = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == 4 or "password" in str(exc).lower():
            raise ExtractError(
                f"{path}: the PDF is encrypted (password-protected); save a decrypted copy first,"
                " e.g. `qpdf --decrypt --password=PASSWORD in.pdf out.pdf`"
            ) from exc
        if _pageless(path):
            raise ExtractError(f"{path}: the PDF is empty (it has no pages)") from exc
        raise ExtractError(f"{path}: not a readable PDF (PDFium: {exc})") from exc
    if len(doc) == 0:
        doc.close()
        raise ExtractError(f"{path}: the PDF is empty (it has no pages)")
    return doc


def _pageless(path: Path) -> bool:
    """True for a PDF whose page tree is empty (PDFium refuses to open those)."""
    try:
        data = path.read_bytes()[:50_000_000]
    except OSError:
        return False
    return (
        re.search(rb"/Type\s*/Pages\b", data) is not None
        and re.search(rb"/Count\s+0\b|/Count\s*0\s*/", data) is not None
        and re.search(rb"/Count\s*[1-9]", data) is None
    )


_BOLD_FONT = re.compile(r"bold|black|heavy|semibold|demi|-medi\b|medi$|cmbx|\bbx", re.IGNORECASE)

_LIGATURES = str.maketrans(
    {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\xa0": " "}
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass
class _Char:
    ch: str
    index: int
    size: float
    bold: bool


class _PageReader:
    """Reads a page character by character through pdfium's C API (via pypdfium2.raw)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self._name = ctypes.create_string_buffer(256)
        self._flags = ctypes.c_int()
        self._x, self._y = ctypes.c_double(), ctypes.c_double()

    def read(self, page_no: int, page: Any) -> list[Line]:
        textpage = page.get_textpage()
        try:
            lines: list[Line] = []
            chars: list[_Char] = []
            for index in range(textpage.count_chars()):
                char = self._char(textpage.raw, index)
                if char is None:  # end of a line
                    lines += self._line(page_no, chars, textpage)
                    chars = []
                elif char.ch:
                    chars.append(char)
            lines += self._line(page_no, chars, textpage)
            return _drop_page_number(lines)
        finally:
            textpage.close()

    def _char(self, tp: Any, index: int) -> _Char | None:
        code = int(self.raw.FPDFText_GetUnicode(tp, index))
        if code == 10:
            return None
        if code == 2:  # pdfium's mark for a hyphen at a line break (the halves are joined)
            code = 0xFFFE
        valid = 0 < code < 0xD800 or 0xE000 <= code < 0x110000
        ch = chr(code) if valid and code != 13 else ""
        if not ch or ch.isspace():
            return _Char(" " if ch else "", index, 0.0, False)
        size = float(self.raw.FPDFText_GetFontSize(tp, index))
        return _Char(ch, index, size, self._bold(tp, index))

    def _bold(self, tp: Any, index: int) -> bool:
        if int(self.raw.FPDFText_GetFontWeight(tp, index)) >= 600:
            return True
        self.raw.FPDFText_GetFontInfo(tp, index, self._name, 256, ctypes.byref(self._flags))
        return bool(_BOLD_FONT.search(self._name.value.decode("latin-1", "replace")))

    def _baseline(self, textpage: Any, index: int) -> float:
        ok = self.raw.FPDFText_GetCharOrigin(
            textpage.raw, index, ctypes.byref(self._x), ctypes.byref(self._y)
        )
        return float(self._y.value) if ok else float(textpage.get_charbox(index)[1])

    def _line(self, page: int, chars: list[_Char], textpage: Any) -> list[Line]:
        text = _clean("".join(c.ch for c in chars)).strip()
        visible = [c for c in chars if not c.ch.isspace()]
        if not text or not visible:
            return []
        sizes = sorted(c.size for c in visible)
        bold = sum(c.bold for c in visible) / len(visible)
        lead = ""
        if chars[0].bold:
            plain = next((k for k, c in enumerate(chars) if not (c.bold or c.ch.isspace())), None)
            lead = _clean("".join(c.ch for c in chars[:plain])).strip()
        baseline = self._baseline(textpage, visible[0].index)
        eq_number = _equation_number(chars, textpage)
        return [Line(page, text, sizes[len(sizes) // 2], bold, lead, eq_number, baseline)]


def _equation_number(chars: list[_Char], textpage: Any) -> str | None:
    """The "(N)" that ends the line when it stands apart from the rest (an equation number)."""
    raw_text = "".join(c.ch for c in chars)
    match = EQ_TAIL.search(raw_text)
    if match is None:
        return None
    opening = chars[match.start()]
    before = [c for c in chars[: match.start()] if not c.ch.isspace()]
    if not before:
        return match.group(1)
    left = textpage.get_charbox(opening.index)[0]
    right = textpage.get_charbox(before[-1].index)[2]
    gap = (left - right) / (opening.size or 10.0)  # in ems
    if gap >= 1.5 or (gap >= 0.6 and not is_prose(raw_text[: match.start()])):
        return match.group(1)
    return None


def _clean(text: str) -> str:
    return _CONTROL.sub("", text.translate(_LIGATURES)).replace("\t", " ")


def _drop_page_number(lines: list[Line]) -> list[Line]:
    if lines and re.fullmatch(r"\d{1,4}", lines[-1].text):
        return lines[:-1]
    return lines


def _page_has_images(page: Any, pdfium: Any) -> bool:
    image_type = pdfium.raw.FPDF_PAGEOBJ_IMAGE
    return any(True for _ in page.get_objects(filter=[image_type]))


_MIN_CHARS_PER_PAGE = 50  # fewer, on pages that are images: a scan with a stray text line


def read_pdf(path: Path) -> list[list[Line]]:
    """All text lines of the PDF, page by page; raises ExtractError for unusable input."""
    doc = _open_document(path)
    pdfium = _pdfium()
    try:
        reader = _PageReader(pdfium.raw)
        pages = [reader.read(i + 1, doc[i]) for i in range(len(doc))]
        characters = sum(len(line.text) for page in pages for line in page)
        if characters < _MIN_CHARS_PER_PAGE * len(pages):
            imaged = sum(_page_has_images(doc[i], pdfium) for i in range(len(doc)))
            if imaged and imaged * 2 >= len(doc):
                raise ExtractError(
                    f"{path}: the PDF has no extractable text ({characters} characters on"
                    f" {len(doc)} pages, which are images: it looks scanned); add a text layer"
                    " with OCR first, e.g. `ocrmypdf in.pdf out.pdf`"
                )
            if characters == 0:
                raise ExtractError(f"{path}: the PDF is empty (no text and no images)")
        return repair_hyphens(pages)
    finally:
        doc.close()
