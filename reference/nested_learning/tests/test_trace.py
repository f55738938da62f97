"""The equation trace of the reference (tools/trace.py) is complete, current and agrees with the
checklist's ticks."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("trace_tool", ROOT / "tools" / "trace.py")
assert _spec and _spec.loader
trace = importlib.util.module_from_spec(_spec)
sys.modules["trace_tool"] = trace
_spec.loader.exec_module(trace)

TICK = re.compile(r"^- \[(?P<done>[ x])\] Eq\. (?P<n>\d+) ", re.MULTILINE)


def test_every_cited_equation_is_listed_and_tested_and_the_readme_table_is_current(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = trace.main(["--root", str(ROOT), "--check", "--readme", str(ROOT / "README.md")])
    assert code == 0, capsys.readouterr().err


def test_checklist_ticks_agree_with_the_trace() -> None:
    """``[x] Eq. N`` only for an equation with code and tests, ``[ ]`` only for one with neither."""
    t = trace.collect(ROOT)
    ticks = {int(m["n"]): m["done"] == "x" for m in TICK.finditer(
        (ROOT / "docs" / "CHECKLIST.md").read_text(encoding="utf-8"))}  # fmt: skip
    assert ticks, "docs/CHECKLIST.md lists no '- [x] Eq. N' lines"
    wrong = {n: t.status(n) for n, done in ticks.items()
             if t.status(n) != ("ok" if done else "not implemented")}  # fmt: skip
    assert not wrong, f"checklist ticks disagree with the trace: {wrong}"


def test_committed_trace_document_is_current() -> None:
    committed = (ROOT / "docs" / "TRACE.md").read_text(encoding="utf-8")
    assert committed == trace.document(trace.collect(ROOT)), "run `uv run python tools/trace.py`"
