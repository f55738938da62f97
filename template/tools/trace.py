"""Trace the paper's numbered equations: checklist → code citing Eq. N → tests citing Eq. N.

Reads the equation numbers listed in ``docs/CHECKLIST.md``, then every citation in the code
(``src/``) and in the tests (``tests/``): "Eq. 57", "Eq. (3)", "Eqs. 83-93" (ranges expanded),
"Eqs. 48, 50", "Equation 12". Prints the table (equation | code | tests), one row per equation, and
writes it to ``docs/TRACE.md``. A Python citation is located by its enclosing function or class
(``src/pkg/core/attention.py::scaled_dot_product_attention``), so the table does not change
when lines move.

    uv run python tools/trace.py            # print and write docs/TRACE.md
    uv run python tools/trace.py --check    # exit 1, naming each offender (nothing written)

``--check`` fails when the code cites an equation the checklist does not list, or when an equation
cited in the code has no test citing it. A checklist equation with neither code nor tests is shown
as "not implemented" (not an error: the checklist says what is still to do). With ``--readme
README.md`` the table is also written between ``<!-- trace:start -->`` and ``<!-- trace:end -->``
of that file, and ``--check`` fails if that block is stale.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITATION = re.compile(
    r"\b(?:eqs?\.|equations?)\s*"
    r"(\(?\d+\)?(?:\s*(?:[-–—]|to|,|and|&)\s*\(?\d+\)?)*)(?!\.?\d)",
    re.IGNORECASE,
)
NUMBER = re.compile(r"\d+")
START, END = "<!-- trace:start -->", "<!-- trace:end -->"
MAX_RANGE = 200  # "Eqs. 1-9999" is a typo, not a citation of 9999 equations


class TraceError(ValueError):
    """Input the tracer cannot read (named in the message)."""


def equations(text: str) -> list[int]:
    """Every equation number ``text`` cites, ranges expanded, in order of appearance.

    Raises TraceError on a range that ends before it starts or spans more than MAX_RANGE.
    """
    found: list[int] = []
    for match in CITATION.finditer(text):
        body = match.group(1)
        for part in re.split(r"\s*(?:,|and|&)\s*", body):
            nums = [int(n) for n in NUMBER.findall(part)]
            if len(nums) == 2:
                lo, hi = nums
                if not 0 <= hi - lo <= MAX_RANGE:
                    raise TraceError(f"{match.group(0)!r}: not a range of equations")
                found.extend(range(lo, hi + 1))
            else:
                found.extend(nums)
    return found


@dataclass
class Trace:
    """Where each equation is listed (checklist), implemented (code) and tested (tests)."""

    checklist: set[int] = field(default_factory=set)
    code: dict[int, set[str]] = field(default_factory=dict)
    tests: dict[int, set[str]] = field(default_factory=dict)

    def numbers(self) -> list[int]:
        """Every equation that appears anywhere, ascending."""
        return sorted(self.checklist | set(self.code) | set(self.tests))

    def status(self, n: int) -> str:
        """ok | no test | not in checklist | not implemented | tests only."""
        if n in self.code and n not in self.checklist:
            return "not in checklist"
        if n in self.code:
            return "ok" if n in self.tests else "no test"
        return "tests only" if n in self.tests else "not implemented"

    def offenders(self) -> list[str]:
        """What ``--check`` reports, one line per equation."""
        out = []
        for n in self.numbers():
            where = ", ".join(sorted(self.code.get(n, ())))
            if n in self.code and n not in self.checklist:
                out.append(f"Eq. {n}: cited in {where} but not listed in docs/CHECKLIST.md")
            if n in self.code and n not in self.tests:
                out.append(f"Eq. {n}: implemented in {where} but no test cites it")
        return out


def scopes(source: str) -> list[tuple[int, int, str]]:
    """``(first line, last line, qualified name)`` of every function and class, outermost first."""
    found: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                found.append((child.lineno, child.end_lineno or child.lineno, name))
                visit(child, f"{name}.")

    visit(ast.parse(source), "")
    return found


def citations(path: Path, root: Path) -> dict[int, set[str]]:
    """Equation → locations citing it in ``path`` (``file::qualname`` for Python, else ``file``)."""
    rel = path.relative_to(root).as_posix()
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        spans = scopes(text) if path.suffix == ".py" else []
    except SyntaxError as err:
        raise TraceError(f"{rel}: not valid Python ({err.msg}, line {err.lineno})") from err
    out: dict[int, set[str]] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        try:
            cited = equations(line)
        except TraceError as err:
            raise TraceError(f"{rel}:{lineno}: {err}") from err
        inner = [name for a, b, name in spans if a <= lineno <= b]
        where = f"{rel}::{inner[-1]}" if inner else rel
        for n in cited:
            out.setdefault(n, set()).add(where)
    return out


def source_files(folder: Path) -> Iterable[Path]:
    """Python and Markdown files under ``folder`` (none if it does not exist), sorted."""
    if not folder.is_dir():
        return []
    skip = {".venv", "__pycache__", ".ipynb_checkpoints"}
    files = (p for p in folder.rglob("*") if p.suffix in (".py", ".md") and p.is_file())
    return sorted(p for p in files if not skip & set(p.parts))


def collect(root: Path) -> Trace:
    """Read ``docs/CHECKLIST.md``, ``src/`` and ``tests/`` of the project at ``root``."""
    checklist = root / "docs" / "CHECKLIST.md"
    if not checklist.is_file():
        raise TraceError(f"{checklist}: no checklist (the paper's equations are listed there)")
    try:
        listed = set(equations(checklist.read_text(encoding="utf-8")))
    except TraceError as err:
        raise TraceError(f"docs/CHECKLIST.md: {err}") from err
    trace = Trace(checklist=listed)
    for folder, into in (("src", trace.code), ("tests", trace.tests)):
        for path in source_files(root / folder):
            for n, where in citations(path, root).items():
                into.setdefault(n, set()).update(where)
    return trace


def table(trace: Trace) -> str:
    """The Markdown table: equation | status | code | tests."""
    lines = ["| Paper | Status | Code | Checked by |", "|---|---|---|---|"]
    for n in trace.numbers():
        code = "<br>".join(f"`{w}`" for w in sorted(trace.code.get(n, ()))) or "—"
        tests = "<br>".join(f"`{w}`" for w in sorted(trace.tests.get(n, ()))) or "—"
        lines.append(f"| Eq. {n} | {trace.status(n)} | {code} | {tests} |")
    return "\n".join(lines) + "\n"


def document(trace: Trace) -> str:
    """``docs/TRACE.md``: a heading, how it was made, the table."""
    return (
        "# Equation trace\n\n"
        "Generated by `uv run python tools/trace.py` from `docs/CHECKLIST.md`, `src/` and `tests/`;"
        " do not edit by hand. One row per equation listed in the checklist or cited.\n\n"
        + table(trace)
    )


def with_block(text: str, block: str, name: str) -> str:
    """``text`` with the part between the trace markers replaced by ``block``."""
    if START not in text or END not in text.split(START, 1)[1]:
        raise TraceError(f"{name}: no {START} … {END} block to fill")
    head, rest = text.split(START, 1)
    return f"{head}{START}\n{block}{END}{rest.split(END, 1)[1]}"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table and write docs/TRACE.md, or with ``--check`` report the offenders."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--root", type=Path, default=ROOT, help="project root (default: this one)")
    ap.add_argument("--readme", type=Path, default=None, help="also fill its trace block")
    ap.add_argument("--check", action="store_true", help="exit 1 on an untraced equation")
    args = ap.parse_args(argv)
    try:
        trace = collect(args.root)
        readme = args.readme and args.readme.read_text(encoding="utf-8")
        new_readme = readme and with_block(readme, table(trace), str(args.readme))
    except (TraceError, OSError) as err:
        print(f"trace: {err}", file=sys.stderr)
        return 1
    if args.check:
        problems = trace.offenders()
        if readme and new_readme != readme:
            problems.append(f"{args.readme}: the trace block is stale (run tools/trace.py)")
        for line in problems:
            print(f"trace: {line}", file=sys.stderr)
        return 1 if problems else 0
    print(table(trace), end="")
    (args.root / "docs").mkdir(exist_ok=True)
    (args.root / "docs" / "TRACE.md").write_text(document(trace), encoding="utf-8")
    if args.readme and new_readme:
        args.readme.write_text(new_readme, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
