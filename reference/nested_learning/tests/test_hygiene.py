"""Repository hygiene: no unresolved merge conflicts (e.g. after `copier update`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_checker() -> ModuleType:
    path = ROOT / "tools" / "check_conflicts.py"
    spec = importlib.util.spec_from_file_location("check_conflicts", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_conflict_markers_or_rejected_hunks() -> None:
    problems = load_checker().find_problems(ROOT)
    assert problems == [], "resolve these, then commit:\n" + "\n".join(problems)


def test_the_checker_finds_markers_and_rej_files(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(
        "x = 1\n<<<<<<< before updating\nx = 2\n=======\nx = 3\n>>>>>>> after\n"
    )
    (tmp_path / "b.py.rej").write_text("@@ hunk\n")
    (tmp_path / "c.md").write_text("A heading\n=========\n")  # a longer setext underline is fine
    problems = load_checker().find_problems(tmp_path)
    assert len(problems) == 4 and any("b.py.rej" in p for p in problems)
