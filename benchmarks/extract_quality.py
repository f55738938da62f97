"""Measure the candidate PDF text backends of tools/extract_paper.py on the real paper.

    uv run python benchmarks/extract_quality.py [--pdf PDF] [--reference MD] [--out JSON]
        [--baseline TOOLS_DIR]

Defaults: the Nested Learning paper and its third-party transcription in ../shared/papers/ (beside
the repository checkout), and benchmarks/results/extract_quality.json. markitdown is measured when
it is installed (`markitdown[pdf]`), and recorded as skipped otherwise. `--baseline` also measures
the extractor of another `tools/` folder (e.g. an older commit's, from `git archive`) in the same
run, as the row `extract_paper_baseline`.

Metrics, each computed on the backend's raw output:
- long_token_share: share of whitespace-separated tokens longer than 25 characters (glued words).
- word_recall / word_precision / word_f1: overlap of the multisets of lower-cased words (runs of
  2+ ASCII letters) with the transcription, whose LaTeX math, images, HTML tags and Markdown
  table syntax are removed first (so the PDF's math symbols count against precision a little).
- anchor_found / order_score: 5-word anchors sampled every 25 words of the transcription (those
  that occur once); share found in the output, and the longest in-order run of the found ones
  over the found ones (1.0 = reading order preserved).
- page_accuracy: share of found anchors that lie on the transcription's page (needs page breaks).
- equation_numbers_on_line: share of the paper's numbered equations (tests/paper_truth) whose
  "(N)" ends a line that also holds the equation, which lets the extractor pair number and text.
- seconds: best of three wall-clock runs.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import json
import os
import platform
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from extract_tool import TOOLS, load_tool

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEFAULT_PDF = SHARED / "papers" / "nested_learning_neurips2025.pdf"
DEFAULT_REFERENCE = SHARED / "papers" / "nested_learning_neurips2025.md"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "extract_quality.json"
TRUTH = ROOT / "tests" / "paper_truth" / "nested_learning.json"

Pages = list[str] | None  # None: the backend gives no page breaks
Backend = Callable[[Path], tuple[str, Pages]]


def run_markitdown(pdf: Path) -> tuple[str, Pages]:
    from markitdown import MarkItDown

    return str(MarkItDown().convert(str(pdf)).text_content), None


def run_pdfminer(pdf: Path) -> tuple[str, Pages]:
    from pdfminer.high_level import extract_text

    text = extract_text(str(pdf))
    pages = text.split("\f")
    if pages and not pages[-1].strip():
        pages = pages[:-1]
    return text, pages


def run_pypdfium2(pdf: Path) -> tuple[str, Pages]:
    import pypdfium2

    doc = pypdfium2.PdfDocument(str(pdf))
    try:
        pages = [str(doc[i].get_textpage().get_text_range()) for i in range(len(doc))]
    finally:
        doc.close()
    return "\n".join(pages), pages


def tool_backend(tools: Path) -> Backend:
    """The extractor in `tools` as a backend: its lines, page by page."""
    tool = load_tool(tools)

    def run_tool(pdf: Path) -> tuple[str, Pages]:
        result = tool.extract(pdf)
        pages = ["" for _ in range(result.page_count)]
        for line in result.lines:
            pages[line.page - 1] += line.text + "\n"
        return "".join(pages), pages

    return run_tool


def backends(baseline: Path | None) -> list[tuple[str, str, Backend]]:
    """The raw backends, this extractor, and (with --baseline) the one in that folder."""
    rows: list[tuple[str, str, Backend]] = [
        ("markitdown", "markitdown 0.1.x MarkItDown().convert (pdfplumber inside)", run_markitdown),
        ("pdfminer", "pdfminer.six high_level.extract_text", run_pdfminer),
        ("pypdfium2", "pypdfium2 PdfTextPage.get_text_range", run_pypdfium2),
        (
            "extract_paper",
            "tools/extract_paper.py: pypdfium2 per character + cleanup",
            tool_backend(TOOLS),
        ),
    ]
    if baseline is not None:
        label = f"the extractor in {baseline} (baseline)"
        rows.append(("extract_paper_baseline", label, tool_backend(baseline)))
    return rows


# ----------------------------------------------------------------------------------------------
# The reference transcription


def reference_pages(md: str) -> list[str]:
    pages = re.split(r"^PAGE \d+\s*$", md, flags=re.MULTILINE)
    return [clean_reference(p) for p in pages if p.strip()]


def clean_reference(text: str) -> str:
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.DOTALL)
    text = re.sub(r"\$[^$]*\$", " ", text)
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", text)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"[|#*]|^-{3,}$", " ", text, flags=re.MULTILINE)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]{2,}", text.lower())


# ----------------------------------------------------------------------------------------------
# Metrics


def long_token_share(text: str) -> float:
    tokens = text.split()
    return sum(len(t) > 25 for t in tokens) / max(len(tokens), 1)


def overlap(reference: list[str], candidate: list[str]) -> dict[str, float]:
    common = sum((Counter(reference) & Counter(candidate)).values())
    recall = common / max(len(reference), 1)
    precision = common / max(len(candidate), 1)
    f1 = 2 * recall * precision / max(recall + precision, 1e-12)
    return {"word_recall": recall, "word_precision": precision, "word_f1": f1}


def anchors(
    ref_pages: list[str], step: int = 25, size: int = 5
) -> list[tuple[tuple[str, ...], int]]:
    stream = [(w, page) for page, text in enumerate(ref_pages) for w in words(text)]
    grams = Counter(tuple(w for w, _ in stream[i : i + size]) for i in range(len(stream) - size))
    picked = []
    for i in range(0, len(stream) - size, step):
        gram = tuple(w for w, _ in stream[i : i + size])
        if grams[gram] == 1:
            picked.append((gram, stream[i][1]))
    return picked


def longest_increasing(values: list[int]) -> int:
    tails: list[int] = []
    for v in values:
        k = bisect.bisect_left(tails, v)
        tails[k : k + 1] = [v]
    return len(tails)


def order_metrics(ref_pages: list[str], text: str, pages: Pages) -> dict[str, float | None]:
    stream = words(text)
    page_of: list[int] = []
    if pages is not None:
        for number, page in enumerate(pages):
            page_of += [number] * len(words(page))
    first: dict[tuple[str, ...], int] = {}
    for i in range(len(stream) - 5, -1, -1):
        first[tuple(stream[i : i + 5])] = i
    picked = anchors(ref_pages)
    hits = [(first[g], page) for g, page in picked if g in first]
    found = len(hits) / max(len(picked), 1)
    order = longest_increasing([pos for pos, _ in hits]) / max(len(hits), 1)
    page_accuracy = None
    if pages is not None and len(page_of) == len(stream):
        page_accuracy = sum(page_of[pos] == page for pos, page in hits) / max(len(hits), 1)
    return {
        "anchors": len(picked),
        "anchor_found": found,
        "order_score": order,
        "page_accuracy": page_accuracy,
    }


def equation_numbers_on_line(text: str, numbers: list[str]) -> float:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    inline = set(re.findall(r"^[ \t]*\S.*?\S[ \t]*\((\d{1,3})\)[ \t]*$", text, re.MULTILINE))
    return sum(n in inline for n in numbers) / max(len(numbers), 1)


def timed(backend: Backend, pdf: Path, repeats: int) -> tuple[str, Pages, float]:
    best = float("inf")
    text, pages = "", None
    for _ in range(repeats):
        start = time.perf_counter()
        text, pages = backend(pdf)
        best = min(best, time.perf_counter() - start)
    return text, pages, best


def version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def measure(
    pdf: Path, reference: Path, repeats: int, baseline: Path | None = None
) -> dict[str, Any]:
    ref_pages = reference_pages(reference.read_text(encoding="utf-8"))
    ref_words = [w for page in ref_pages for w in words(page)]
    numbers = [e["number"] for e in json.loads(TRUTH.read_text(encoding="utf-8"))["equations"]]
    results: dict[str, Any] = {}
    for key, label, backend in backends(baseline):
        try:
            text, pages, seconds = timed(backend, pdf, repeats)
        except ImportError as exc:
            results[key] = {"label": label, "skipped": f"not installed: {exc.name}"}
            continue
        results[key] = {
            "label": label,
            "characters": len(text),
            "tokens": len(text.split()),
            "long_token_share": long_token_share(text),
            **overlap(ref_words, words(text)),
            **order_metrics(ref_pages, text, pages),
            "equation_numbers_on_line": equation_numbers_on_line(text, numbers),
            "pages": len(pages) if pages is not None else None,
            "seconds": seconds,
        }
    return results


def choose(results: dict[str, Any]) -> dict[str, str]:
    """Best raw backend: highest word F1; within 0.005, fewer glued tokens, then faster."""
    raw = {
        k: v for k, v in results.items() if not k.startswith("extract_paper") and "skipped" not in v
    }
    best_f1 = max(v["word_f1"] for v in raw.values())
    close = [k for k, v in raw.items() if v["word_f1"] >= best_f1 - 0.005]
    chosen = min(
        close,
        key=lambda k: (
            round(raw[k]["long_token_share"], 3),
            -raw[k]["equation_numbers_on_line"],
            raw[k]["seconds"],
        ),
    )
    return {
        "backend": chosen,
        "rule": "highest word F1 against the transcription; candidates within 0.005 of it are"
        " ranked by glued-token share, then by equation numbers kept on their line, then"
        " by speed",
    }


def table(results: dict[str, Any]) -> str:
    head = (
        f"{'backend':<23}{'tok>25':>8}{'recall':>8}{'prec':>8}{'F1':>8}{'found':>7}{'order':>7}"
        f"{'page':>7}{'eq#':>6}{'sec':>7}"
    )
    rows = [head]
    for key, r in results.items():
        if "skipped" in r:
            rows.append(f"{key:<23}skipped ({r['skipped']})")
            continue
        page = "n/a" if r["page_accuracy"] is None else f"{r['page_accuracy']:.3f}"
        rows.append(
            f"{key:<23}{r['long_token_share'] * 100:>7.2f}%{r['word_recall']:>8.3f}"
            f"{r['word_precision']:>8.3f}{r['word_f1']:>8.3f}{r['anchor_found']:>7.3f}"
            f"{r['order_score']:>7.3f}{page:>7}"
            f"{r['equation_numbers_on_line']:>6.2f}{r['seconds']:>7.2f}"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf", type=Path, default=DEFAULT_PDF)
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", type=Path, default=None, help="another tools/ folder")
    args = parser.parse_args(argv)
    for path in (args.pdf, args.reference):
        if not path.is_file():
            print(
                f"extract_quality: missing {path} (expected ../shared/papers beside the checkout)",
                file=sys.stderr,
            )
            return 2
    results = measure(args.pdf, args.reference, args.repeats, args.baseline)
    report = {
        "pdf": args.pdf.name,
        "reference": f"{args.reference.name} (a third-party transcription, for measuring only)",
        "metrics": __doc__.split("Metrics, each computed on the backend's raw output:")[1].strip(),
        "results": results,
        "chosen": choose(results),
        "tool_backend": "pypdfium2 (per character, with fonts and positions) + cleanup",
        "environment": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "packages": {
                d: version(d) for d in ("markitdown", "pdfminer.six", "pypdfium2", "pdfplumber")
            },
        },
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(table(results))
    print(f"chosen: {report['chosen']['backend']} → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
