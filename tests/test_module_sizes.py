"""Module sizes: whoever opens a file of a render or of the reference sees one stage of one concern.

Limits, in KiB of source: 16 for every Python module of a default render, of this repository's
hooks/, scripts/ and benchmarks/, and of the reference (demo, experiments, tools, benchmarks, tests,
src, train.py, evaluate.py); 25 for the reference's paper modules (``src/*/core/``,
``src/*/models/``), which are equation-dense: one mixer's equations belong together.

EXCEPTIONS lists the files (fnmatch patterns) allowed over their limit, each with its reason and a
ceiling no file it matches may grow past. An exception that no longer matches a file over the limit
fails as well, so the list only shrinks.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from conftest import ROOT, render

KIB = 1024
LIMIT = 16 * KIB
PAPER_LIMIT = 25 * KIB
PAPER_MODULES = ("reference/*/src/*/core/*.py", "reference/*/src/*/models/*.py")
CHECKED = ("hooks", "scripts", "benchmarks", "reference/nested_learning")
SKIP = {".venv", ".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "runs"}

# pattern of paths from the repository root -> (ceiling in KiB, why it may be over for now)
EXCEPTIONS: dict[str, tuple[int, str]] = {}  # none: every module fits (add one with its reason)


def python_modules(root: Path, folders: tuple[str, ...] = (".",)) -> dict[str, int]:
    """Size in bytes of every ``*.py`` under ``root/folder``, keyed by its path from ``root``."""
    sizes: dict[str, int] = {}
    for folder in folders:
        for here, dirs, files in os.walk(root / folder):
            dirs[:] = [d for d in dirs if d not in SKIP]  # never walk into a virtualenv or cache
            for name in fnmatch.filter(files, "*.py"):
                path = Path(here) / name
                sizes[path.relative_to(root).as_posix()] = path.stat().st_size
    return dict(sorted(sizes.items()))


def limit_for(rel: str) -> int:
    """The size limit of the module at ``rel`` (a path from the repository root)."""
    return PAPER_LIMIT if any(fnmatch.fnmatch(rel, p) for p in PAPER_MODULES) else LIMIT


def ceiling_for(rel: str, exceptions: dict[str, tuple[int, str]]) -> int:
    """The size ``rel`` may reach: its exception's ceiling where one matches, else its limit."""
    excepted = [kib for pattern, (kib, _) in exceptions.items() if fnmatch.fnmatch(rel, pattern)]
    return excepted[0] * KIB if excepted else limit_for(rel)


def oversized(sizes: dict[str, int], exceptions: dict[str, tuple[int, str]]) -> list[str]:
    """One line for every module over its limit (or over its exception's ceiling)."""
    problems = []
    for rel, size in sizes.items():
        ceiling = ceiling_for(rel, exceptions)
        if size > ceiling:
            problems.append(f"{rel}: {size / KIB:.1f} KiB > {ceiling // KIB} KiB")
    return problems


def test_a_default_render_has_no_oversized_module(template_snapshot: Path, tmp_path: Path) -> None:
    project = render(template_snapshot, tmp_path / "p")
    sizes = python_modules(project)
    assert "tools/paper_extractor/parser.py" in sizes and "train.py" in sizes
    problems = oversized(sizes, {})
    assert problems == [], "split these modules by concern:\n" + "\n".join(problems)


def test_hooks_scripts_benchmarks_and_the_reference_have_no_oversized_module() -> None:
    sizes = python_modules(ROOT, CHECKED)
    assert "hooks/setup_project.py" in sizes and "reference/nested_learning/demo/app.py" in sizes
    problems = oversized(sizes, EXCEPTIONS)
    assert problems == [], "split these modules by concern:\n" + "\n".join(problems)


def test_every_exception_is_still_needed() -> None:
    sizes = python_modules(ROOT, CHECKED)
    needed = {
        pattern
        for pattern in EXCEPTIONS
        for rel, size in sizes.items()
        if fnmatch.fnmatch(rel, pattern) and size > limit_for(rel)
    }
    stale = sorted(set(EXCEPTIONS) - needed)
    assert stale == [], f"nothing it matches is over the limit now: remove from EXCEPTIONS: {stale}"


def test_the_check_finds_an_oversized_module(tmp_path: Path) -> None:
    files = {
        "reference/r/demo/app.py": LIMIT + 1,
        "reference/r/src/p/core/mixer.py": PAPER_LIMIT,  # a paper module may be larger
        "reference/r/src/p/models/lm.py": PAPER_LIMIT + 1,
        "reference/r/experiments/big.py": 20 * KIB,  # excepted up to 21 KiB
        "reference/r/experiments/bigger.py": 22 * KIB,  # excepted, but over the ceiling
        "hooks/__pycache__/cached.py": 10 * LIMIT,  # not hand-written
    }
    for rel, size in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x" * size)
    sizes = python_modules(tmp_path, ("reference", "hooks"))
    problems = oversized(sizes, {"reference/r/experiments/*.py": (21, "test")})
    assert [p.split(":")[0] for p in problems] == [
        "reference/r/demo/app.py",
        "reference/r/experiments/bigger.py",
        "reference/r/src/p/models/lm.py",
    ]
