"""The command line: ``python tools/extract_paper.py PAPER.pdf [--out DIR] [--force]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .outputs import write_outputs
from .pipeline import extract
from .records import EXIT_BAD_INPUT, PROG, ExtractError


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: the current one) with a pyproject.toml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return here


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="extract_paper.py",
        description="Extract a paper's PDF into paper/paper.md and a pre-filled docs/CHECKLIST.md.",
    )
    parser.add_argument("pdf", type=Path, help="the paper's PDF")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder to write paper/paper.md and docs/CHECKLIST.md into (default: project root)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="overwrite a generated checklist even if it has ticked items",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out_dir = args.out if args.out is not None else project_root()
    try:
        result = extract(args.pdf)
        paper_md, checklist = write_outputs(result, out_dir, force=args.force)
    except ExtractError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(
        f"{PROG}: {result.page_count} pages -> {paper_md} and {checklist}"
        f" ({len(result.sections)} sections, {len(result.equations)} numbered equations,"
        f" {len(result.algorithms)} algorithms, {len(result.hyperparameters)} hyperparameter"
        f" mentions)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
