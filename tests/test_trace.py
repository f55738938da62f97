"""tools/trace.py (template-managed) on a fixture project with every case it must tell apart."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import ROOT

SCRIPT = ROOT / "template" / "tools" / "trace.py"


def load_trace() -> ModuleType:
    spec = importlib.util.spec_from_file_location("trace_tool", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["trace_tool"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


trace = load_trace()

# The fixture: Eq. 1 fully traced, Eqs. 4-6 a range cited by code and partly by tests, Eq. 9 cited
# in code but not in the checklist, Eq. 7 implemented but untested, Eq. 8 listed with neither.
CHECKLIST = "# Checklist\n- [x] Eq. 1 — attention\n- [ ] Eqs. 4–7\n- [ ] Equation 8 (todo)\n"
CODE = '''"""Module docstring citing Eq. (1)."""


class Memory:
    def write(self) -> None:
        """Eqs. 4-6: the update."""

    def read(self) -> None:
        return None  # Eq. 7 and Eq. 9


def helper() -> None:
    """Equations 1 to 1 (a one-equation range)."""
'''
TESTS = '''def test_attention() -> None:
    """Eq. 1 against a reference."""


def test_update() -> None:
    """Eqs. 4, 5 and 6."""
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "CHECKLIST.md").write_text(CHECKLIST, encoding="utf-8")
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "memory.py").write_text(CODE, encoding="utf-8")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_memory.py").write_text(TESTS, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("Eq. 57", [57]),
        ("see Eqs. 83-86 and Eq. (3).", [83, 84, 85, 86, 3]),
        ("Eq. 56–57 (corrected)", [56, 57]),
        ("Equation 12, Sec. 3.2.1", [12]),
        ("equations 2 to 4", [2, 3, 4]),
        ("Eqs. 48, 50 & 52", [48, 50, 52]),
        ("Eq. 3.2 is section-numbered; Freq. 5 is not a citation", []),
        ("the end of a sentence: Eq. 7.", [7]),
    ],
)
def test_citations_and_ranges_are_read(text: str, numbers: list[int]) -> None:
    assert trace.equations(text) == numbers


def test_a_backwards_or_huge_range_is_a_clear_error() -> None:
    with pytest.raises(trace.TraceError, match="not a range"):
        trace.equations("Eqs. 9-3")
    with pytest.raises(trace.TraceError, match="not a range"):
        trace.equations("Eqs. 1-9999")


def test_each_equation_gets_its_status_and_locations(project: Path) -> None:
    t = trace.collect(project)
    assert t.checklist == {1, 4, 5, 6, 7, 8}
    assert {n: t.status(n) for n in t.numbers()} == {
        1: "ok",
        4: "ok",
        5: "ok",
        6: "ok",
        7: "no test",
        8: "not implemented",
        9: "not in checklist",
    }
    assert t.code[1] == {"src/pkg/memory.py", "src/pkg/memory.py::helper"}
    assert t.code[5] == {"src/pkg/memory.py::Memory.write"}
    assert t.tests[5] == {"tests/test_memory.py::test_update"}


def test_check_names_every_offender_and_nothing_else(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert trace.main(["--root", str(project), "--check"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "trace: Eq. 7: implemented in src/pkg/memory.py::Memory.read but no test cites it",
        "trace: Eq. 9: cited in src/pkg/memory.py::Memory.read but not listed in docs/CHECKLIST.md",
        "trace: Eq. 9: implemented in src/pkg/memory.py::Memory.read but no test cites it",
    ]
    assert not (project / "docs" / "TRACE.md").exists()  # --check writes nothing


def test_a_fully_traced_project_passes_and_the_table_is_written(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = project / "src" / "pkg" / "memory.py"
    code.write_text(CODE.replace(" and Eq. 9", ""), encoding="utf-8")
    (project / "tests" / "test_read.py").write_text("# Eq. 7\n", encoding="utf-8")
    assert trace.main(["--root", str(project), "--check"]) == 0
    assert trace.main(["--root", str(project)]) == 0
    out = capsys.readouterr().out
    doc = (project / "docs" / "TRACE.md").read_text(encoding="utf-8")
    assert out in doc and doc.startswith("# Equation trace")
    assert "| Eq. 8 | not implemented | — | — |" in out
    assert "| Eq. 7 | ok | `src/pkg/memory.py::Memory.read` | `tests/test_read.py` |" in out
    assert trace.main(["--root", str(project)]) == 0
    assert (project / "docs" / "TRACE.md").read_text(encoding="utf-8") == doc  # deterministic


def test_the_readme_block_is_filled_and_checked(project: Path) -> None:
    readme = project / "README.md"
    readme.write_text("intro\n<!-- trace:start -->\nold\n<!-- trace:end -->\nrest\n")
    args = ["--root", str(project), "--readme", str(readme)]
    assert trace.main(args) == 0
    text = readme.read_text()
    assert text.startswith("intro\n<!-- trace:start -->\n| Paper | Status |")
    assert text.endswith("|\n<!-- trace:end -->\nrest\n")
    readme.write_text(text.replace("not implemented", "done"))
    (project / "src" / "pkg" / "memory.py").write_text("# Eq. 1\n")  # otherwise clean
    assert trace.main([*args, "--check"]) == 1  # stale block


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: (p / "docs" / "CHECKLIST.md").unlink(), "no checklist"),
        (lambda p: (p / "src" / "bad.py").write_text("def (:\n"), "src/bad.py: not valid Python"),
        (lambda p: (p / "tests" / "t.py").write_text("# Eqs. 5-2\n"), "tests/t.py:1:"),
    ],
)
def test_bad_input_is_one_clear_message(
    project: Path, capsys: pytest.CaptureFixture[str], setup: object, message: str
) -> None:
    setup(project)  # type: ignore[operator]
    assert trace.main(["--root", str(project), "--check"]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
