"""Speed of tools/extract_paper.py: a 20-page paper must take under 5 s on the build machine.

    uv run python benchmarks/extract_speed.py [--runs N] [--out JSON] [--baseline TOOLS_DIR]

Cases: a generated 20-page two-column paper (reportlab: headings, prose, numbered equations, a
hyperparameter table on every page) and, when ../shared/papers is beside the checkout, the real
Nested Learning paper (23 pages, with figures). For each: `extract()` + writing both files in
process, and the whole command line (`python tools/extract_paper.py PDF --out DIR`: interpreter
start, imports, extraction, atomic writes) in a fresh process. Median and max over the runs are
written to benchmarks/results/extract_speed.json. `--baseline` also times the extractor of another
`tools/` folder (e.g. an older commit's, from `git archive`) on the same PDFs in the same run,
in interleaved rounds (one run of each extractor a round), so that both see the same load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from extract_tool import TOOLS, entry_point, load_tool

ROOT = Path(__file__).resolve().parents[1]
REAL_PDF = ROOT.parent / "shared" / "papers" / "nested_learning_neurips2025.pdf"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "extract_speed.json"
BUDGET_SECONDS = 5.0
BUDGET_PAGES = 20

SENTENCES = [
    "The state of every layer is updated at each position with a gated rule.",
    "We compare against strong baselines trained with the same budget and data.",
    "The attention heads read from a compressed memory of the preceding chunk.",
    "Each variant is trained three times and the mean result is reported here.",
    "Longer sequences are processed in chunks whose size is fixed in advance.",
    "The readout is linear, which keeps the cost of inference predictable.",
]


def make_paper(path: Path, pages: int) -> None:
    """A dense two-column paper: about 110 lines a page, like a conference paper."""
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=letter)
    width, _ = letter
    col_w, leading = (width - 2 * 54 - 18) / 2, 10.5
    equation = 0
    for page in range(1, pages + 1):
        for col in range(2):
            x, y = 54 + col * (col_w + 18), 740.0
            c.setFont("Helvetica-Bold", 11)
            c.drawString(x, y, f"{page}.{col + 1} Section on page {page}")
            y -= 2 * leading
            line_no = 0
            while y > 72:
                line_no += 1
                if line_no % 12 == 0:
                    equation += 1
                    c.setFont("Helvetica", 9)
                    c.drawString(x + 20, y, f"h_t = g_t * h_prev + (1 - g_t) * x_t + c_{equation}")
                    c.drawRightString(x + col_w, y, f"({equation})")
                elif line_no == 30 and col == 1:
                    c.setFont("Helvetica", 9)
                    c.drawString(x, y, f"Table {page}: Settings for page {page}.")
                    for name, value in (("Learning rate", "3e-4"), ("Batch size", "256")):
                        y -= leading
                        c.drawString(x + 8, y, name)
                        c.drawString(x + 120, y, value)
                else:
                    c.setFont("Helvetica", 9)
                    text = SENTENCES[(page + line_no) % len(SENTENCES)]
                    c.drawString(x, y, text[: int(col_w / 4.4)])
                y -= leading
        c.setFont("Helvetica", 9)
        c.drawCentredString(width / 2, 36, str(page))
        c.showPage()
    c.save()


def timings(fns: list[Callable[[], None]], runs: int) -> list[dict[str, float]]:
    """Median, max and min seconds of each function; rounds interleave them, so that a change in
    the machine's load between rounds reaches every function alike."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, seconds in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            seconds.append(time.perf_counter() - start)
    return [{"median": statistics.median(s), "max": max(s), "min": min(s)} for s in times]


def in_process(tool: ModuleType, pdf: Path, out: Path) -> Callable[[], None]:
    """``extract()`` and writing both files, in this process."""

    def run() -> None:
        tool.write_outputs(tool.extract(pdf), out, force=True)

    return run


def command_line(tools: Path, pdf: Path, out: Path) -> Callable[[], None]:
    """The whole command, in a fresh interpreter."""

    def run() -> None:
        proc = subprocess.run(
            [sys.executable, str(entry_point(tools)), str(pdf), "--out", str(out), "--force"],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr)

    return run


def measure(name: str, pdf: Path, runs: int, folders: list[Path]) -> list[dict[str, Any]]:
    """One case per extractor folder, all timed on ``pdf`` in interleaved rounds."""
    tools = [load_tool(folder) for folder in folders]
    with tempfile.TemporaryDirectory() as tmp:
        outs = [Path(tmp) / str(i) for i in range(len(folders))]
        for tool, out in zip(tools, outs, strict=True):
            in_process(tool, pdf, out)()  # warm the file cache
        results = [tool.extract(pdf) for tool in tools]
        api = timings([in_process(t, pdf, o) for t, o in zip(tools, outs, strict=True)], runs)
        cli = timings([command_line(f, pdf, o) for f, o in zip(folders, outs, strict=True)], runs)
    return [
        case(name, folder, pdf, result, a, c)
        for folder, result, a, c in zip(folders, results, api, cli, strict=True)
    ]


def case(
    name: str, tools: Path, pdf: Path, result: Any, api: dict[str, float], cli: dict[str, float]
) -> dict[str, Any]:
    """The record of one extractor on one PDF."""
    pages = int(result.page_count)
    budget = BUDGET_SECONDS * pages / BUDGET_PAGES
    return {
        "name": name,
        "tools": str(tools.relative_to(ROOT) if tools.is_relative_to(ROOT) else tools),
        "pages": pages,
        "found": {
            "sections": len(result.sections),
            "equations": len(result.equations),
            "hyperparameter_mentions": len(result.hyperparameters),
        },
        "pdf_bytes": pdf.stat().st_size,
        "extract_and_write_seconds": api,
        "command_line_seconds": cli,
        "seconds_per_page_command_line": cli["median"] / pages,
        "budget_seconds_for_these_pages": budget,
        "within_budget": cli["max"] < budget,
    }


def version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--baseline", type=Path, default=None, help="another tools/ folder")
    args = parser.parse_args(argv)
    folders = [TOOLS] if args.baseline is None else [TOOLS, args.baseline]
    cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        synthetic = Path(tmp) / "synthetic_20_pages.pdf"
        make_paper(synthetic, BUDGET_PAGES)
        cases += measure("synthetic two-column paper", synthetic, args.runs, folders)
    if REAL_PDF.is_file():
        cases += measure("nested_learning_neurips2025.pdf", REAL_PDF, args.runs, folders)
    report = {
        "requirement": f"a {BUDGET_PAGES}-page paper in under {BUDGET_SECONDS:g} s (command line,"
        " worst run), budget scaled by page count for other papers",
        "cases": cases,
        "all_within_budget": all(c["within_budget"] for c in cases),
        "environment": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "pypdfium2": version("pypdfium2"),
        },
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for c in cases:
        api, cli = c["extract_and_write_seconds"], c["command_line_seconds"]
        print(
            f"{c['name']:<34} {c['tools']:<16} {c['pages']:>3} pages"
            f"  extract+write {api['median']:.2f} s"
            f"  command line {cli['median']:.2f} s (max {cli['max']:.2f})"
            f"  budget {c['budget_seconds_for_these_pages']:.1f} s"
        )
    print(f"→ {args.out}")
    return 0 if report["all_within_budget"] else 1


if __name__ == "__main__":
    sys.exit(main())
