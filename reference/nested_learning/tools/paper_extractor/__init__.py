"""Phase 1 of the paper-to-code method: the paper's PDF to Markdown and a pre-filled checklist.

Usage (from the project root)::

    uv run --group paper python tools/extract_paper.py paper/PAPER.pdf [--out DIR] [--force]

writes ``DIR/paper/paper.md`` (the text, with ``<!-- page N -->`` markers, section headings,
equation blocks and algorithm blocks) and ``DIR/docs/CHECKLIST.md`` (the implementation checklist:
core algorithms, model components with their equations, key equations, a hyperparameter table,
tables/figures and appendix references). ``DIR`` defaults to the project root: the nearest folder
at or above the current directory that holds a ``pyproject.toml`` (else the current directory).

Every checklist entry cites its page and section, and nothing is invented: an item appears only
when the extracted text contains it; an empty category says so instead of guessing. Both files
are written atomically (temporary files moved into place only once everything succeeded). A
regenerated checklist that already has ticked boxes is kept unless ``--force`` is given.

Bad input (a missing file, a file that is not a PDF, an encrypted PDF, a scanned PDF without a
text layer, an empty PDF) gives one line on stderr, exit code 2 and no output files.

Text backend: measured by ``benchmarks/extract_quality.py`` on the Nested Learning paper (NeurIPS
2025 camera-ready, 23 pages) against a third-party transcription; the numbers are copied from
``benchmarks/results/extract_quality.json``. tok>25: share of tokens longer than 25 characters
(glued words); recall/prec.: overlap of the lower-cased word multisets outside math; anchors:
share of 5-word anchors (one every 25 words) found; order: share of the found anchors in reading
order; page: share found on their own page; eq.no: share of the 31 equation numbers "(N)" that end
the line holding their equation; seconds: best of three runs on a shared 2-core machine:

    backend                          tok>25  recall  prec.  anchors  order  page   eq.no  seconds
    markitdown 0.1.9 (pdfplumber)    17.8 %   0.211  0.541   0.099   1.000   n/a   0.68     1.70
    pdfminer.six extract_text        0.21 %   0.996  0.966   0.936   1.000  1.000  0.00     0.73
    pypdfium2 get_text_range         0.21 %   0.996  0.966   0.941   1.000  1.000  0.77     0.03
    this tool (pypdfium2 + cleanup)  0.21 %   0.999  0.973   0.973   1.000  1.000  0.77     0.54

markitdown glues words on this paper, so it is not used for PDFs. pdfminer and pypdfium2 give the
same text; pypdfium2 is chosen because it keeps an equation's number on the equation's line
(pdfminer puts every number in a box of its own), it is 20 times faster, and its character API
gives each character's font size, weight and position: the tool reads pages character by
character to find headings, bold run-in paragraph titles and right-aligned equation numbers, drops
page numbers, and repairs line-break hyphens using the document's own vocabulary. Reading order is
the PDF's content order, which is column by column for LaTeX two-column papers. Speed:
``benchmarks/extract_speed.py`` (results in ``benchmarks/results/extract_speed.json``) times the
command on a generated 20-page two-column paper against a 5 s budget, on a shared 2-core machine:
0.95 s (median; worst 1.01 s) when it was quiet, 3.0 s (worst 3.8 s) at a load average near 4.

The package, one module a stage (in the order the text flows through them):

- ``pdf_reader``: pypdfium2's character API, page by page, to text lines with their typography;
  ``layout``: line-break hyphens repaired from the document's own vocabulary.
- ``classify``: what a line is (prose or mathematics, a heading, a run-in paragraph title);
  ``parser``: one pass in reading order collecting sections, algorithms, statements, equations and
  captions; ``sentences``: sentence splitting and shortening.
- The finders, over ``text_flow`` (the running text with a map back to lines): ``hyperparameters``,
  ``names`` (abbreviations, the methods the paper names, the parts with equations) and
  ``mentions`` (appendix references, the architecture vocabulary).
- ``pipeline``: ``extract()``, all of the above; ``markdown`` and ``checklist`` render
  ``paper.md`` and ``CHECKLIST.md``; ``outputs`` writes both atomically; ``__main__`` is the command
  line (``tools/extract_paper.py`` is its entry point). ``records`` holds what every stage returns.
"""

from __future__ import annotations

from .checklist import render_checklist
from .markdown import render_markdown
from .outputs import output_paths, write_outputs
from .pdf_reader import read_pdf
from .pipeline import extract
from .records import (
    Acronym,
    Algorithm,
    AppendixRef,
    Caption,
    DocLine,
    Equation,
    ExtractError,
    Hyperparameter,
    Line,
    Method,
    PaperExtract,
    Part,
    Section,
    Statement,
    VocabTerm,
)

__all__ = [
    "Acronym",
    "Algorithm",
    "AppendixRef",
    "Caption",
    "DocLine",
    "Equation",
    "ExtractError",
    "Hyperparameter",
    "Line",
    "Method",
    "PaperExtract",
    "Part",
    "Section",
    "Statement",
    "VocabTerm",
    "extract",
    "output_paths",
    "read_pdf",
    "render_checklist",
    "render_markdown",
    "write_outputs",
]
