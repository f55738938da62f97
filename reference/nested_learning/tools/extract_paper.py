"""Phase 1 of the paper-to-code method: the paper's PDF to Markdown and a pre-filled checklist.

Usage (from the project root)::

    uv run --group paper python tools/extract_paper.py paper/PAPER.pdf [--out DIR] [--force]

writes ``DIR/paper/paper.md`` and ``DIR/docs/CHECKLIST.md`` (``DIR`` defaults to the project root).
This file is only the entry point: the extractor is the package ``tools/paper_extractor/``, one
module a stage (its ``__init__`` says which); ``python -m paper_extractor`` from ``tools/`` is the
same command.
"""

from __future__ import annotations

import sys

from paper_extractor.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
