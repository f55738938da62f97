"""The copy task's setup script: clear messages for a missing uv, a bad PDF, failing steps."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, clean_env, render

HOOK = ROOT / "hooks" / "setup_project.py"


def run_hook(
    cwd: Path,
    *args: str,
    path: str | None = None,
    strict: bool = False,
) -> subprocess.CompletedProcess[str]:
    env = clean_env(PAPER_TO_CODE_STRICT="1" if strict else "0")
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, str(HOOK), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def path_without_uv(tmp_path: Path) -> str:
    """PATH with git but without uv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    git = shutil.which("git")
    assert git
    (bin_dir / "git").symlink_to(git)
    return str(bin_dir)


@pytest.mark.parametrize("strict", [False, True])
def test_missing_uv_gives_one_message_and_keeps_the_project(
    template_snapshot: Path, tmp_path: Path, strict: bool
) -> None:
    project = render(template_snapshot, tmp_path / "p", {"run_setup": False})
    result = run_hook(project, "--run-setup=True", path=path_without_uv(tmp_path), strict=strict)
    assert result.returncode == (1 if strict else 0)
    assert "uv is not installed" in result.stdout and "then run `uv sync`" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert (project / "pyproject.toml").is_file() and (project / ".git").is_dir()


def test_no_setup_still_initialises_git_and_prints_next_steps(
    template_snapshot: Path, tmp_path: Path
) -> None:
    project = render(template_snapshot, tmp_path / "p", {"run_setup": False})
    result = run_hook(project, "--run-setup=False")
    assert result.returncode == 0 and (project / ".git").is_dir()
    assert "uv sync" in result.stdout and not (project / ".venv").exists()


def test_a_project_inside_a_repository_gets_no_nested_git(
    template_snapshot: Path, tmp_path: Path
) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    project = render(template_snapshot, tmp_path / "p", {"run_setup": False})
    assert run_hook(project, "--run-setup=False").returncode == 0
    assert not (project / ".git").exists()


@pytest.mark.parametrize(
    ("pdf", "message"),
    [
        ("missing-paper.pdf", "paper_pdf: no file at"),  # relative: to where copier was started
        ("{tmp}/not-a-pdf.pdf", "paper_pdf: could not extract not-a-pdf.pdf"),
    ],
)
def test_bad_paper_pdf_fails_the_copy_and_leaves_nothing(
    template_snapshot: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    pdf: str,
    message: str,
) -> None:
    from copier.errors import TaskError

    (tmp_path / "not-a-pdf.pdf").write_text("this is plain text, not a PDF\n")
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    dst = tmp_path / "project"
    answers = {"paper_pdf": pdf.format(tmp=tmp_path), "run_setup": False}
    with pytest.raises(TaskError):
        render(template_snapshot, dst, answers, tasks=True)
    output = capfd.readouterr()
    assert message in output.out + output.err
    assert not dst.exists(), "copier removes a project whose setup refused its input"


def test_task_runs_only_on_copy() -> None:
    import yaml

    (task,) = yaml.safe_load((ROOT / "copier.yml").read_text())["_tasks"]
    assert task["when"] == "{{ _copier_operation == 'copy' }}"
    assert os.path.basename(task["command"][1]) == "setup_project.py"


def test_paper_pdf_is_extracted_into_the_new_project(
    template_snapshot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--data paper_pdf=...`: the PDF lands in paper/, with paper.md and a pre-filled checklist."""
    from test_extract_paper import write_full_paper

    pdf = tmp_path / "my-paper.pdf"
    write_full_paper(pdf)
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    dst = render(
        template_snapshot, tmp_path / "p", {"paper_pdf": str(pdf), "run_setup": False}, tasks=True
    )
    assert (dst / "paper" / "my-paper.pdf").read_bytes() == pdf.read_bytes()
    paper_md = (dst / "paper" / "paper.md").read_text()
    assert "<!-- page 1 -->" in paper_md and "## 1 Introduction" in paper_md
    checklist = (dst / "docs" / "CHECKLIST.md").read_text()
    assert "my-paper.pdf" in checklist and "Algorithm 1" in checklist
    assert "Attention Is All You Need" not in checklist  # the sample checklist was replaced
