"""`copier update` never loses a user's work (issue: update path, conflicts, convergence, refusals).

Tests never depend on tags of this repository: each builds a throw-away git copy of the template and
tags releases there.
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import DEFAULT_PACKAGE, ROOT, clean_env, render, run, task_env

pytestmark = pytest.mark.slow

PKG = DEFAULT_PACKAGE
Edit = Callable[[Path], None]


def git(repo: Path, *args: str) -> str:
    return run(["git", *args], repo).stdout


def template_repo(tmp_path: Path) -> Path:
    """A git copy of the template with release v1.0.0 tagged."""
    repo = tmp_path / "template-repo"
    repo.mkdir()
    shutil.copy2(ROOT / "copier.yml", repo / "copier.yml")
    for folder in ("template", "hooks"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "release 1.0.0")
    git(repo, "tag", "v1.0.0")
    return repo


def release(repo: Path, tag: str, *edits: Edit) -> None:
    for edit in edits:
        edit(repo)
    git(repo, "commit", "-q", "-am", f"release {tag}")
    git(repo, "tag", tag)


def append(path: str, text: str) -> Edit:
    def edit(root: Path) -> None:
        (root / path).write_text((root / path).read_text() + text)

    return edit


def replace(path: str, old: str, new: str) -> Edit:
    def edit(root: Path) -> None:
        content = (root / path).read_text()
        assert old in content, f"{old!r} not in {path}"
        (root / path).write_text(content.replace(old, new, 1))

    return edit


def commit_all(project: Path, message: str) -> None:
    git(project, "add", "-A")
    git(project, "commit", "-q", "--no-verify", "-m", message)


def update(project: Path) -> None:
    from copier import run_update

    run_update(str(project), defaults=True, overwrite=True, unsafe=True, quiet=True)


def conflicts(project: Path) -> list[str]:
    sys.path.insert(0, str(project / "tools"))
    try:
        import check_conflicts

        return list(check_conflicts.find_problems(project))
    finally:
        sys.path.pop(0)
        sys.modules.pop("check_conflicts", None)


# Template-side edits of release 1.1.0 (T = template path, rendered path in the comment).
T_METRICS = "template/src/{{package_name}}/metrics.py"  # template-managed
T_MODEL = "template/src/{{package_name}}/models/transformer.py"  # user-owned
NEW_HELPER = """

def best_val_loss(rows: list[dict[str, str]]) -> float:
    \"\"\"Lowest validation loss in metrics rows.\"\"\"
    return min(float(r["loss"]) for r in rows if r["split"] == "val")
"""
USER_MODEL_HELPER = "\n\ndef my_paper_block() -> str:\n    return 'the user wrote this'\n"


def test_update_keeps_user_edits_and_merges_template_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_log = tmp_path / "tasks.log"
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    repo = template_repo(tmp_path)
    project = tmp_path / "project"
    with task_env(PAPER_TO_CODE_TASK_LOG=str(task_log), PAPER_TO_CODE_STRICT="1"):
        render(repo, project, {}, tasks=True)  # release 1.0.0, full setup: .venv, uv.lock, commit
    assert task_log.read_text().splitlines() == [str(project)]
    lock_before = (project / "uv.lock").read_bytes()

    # The user edits a user-owned file and a template-managed file, and commits.
    append(f"src/{PKG}/models/transformer.py", USER_MODEL_HELPER)(project)
    replace("train.py", "def parse_args(", "# user: note kept across updates\ndef parse_args(")(
        project
    )
    commit_all(project, "my work")

    # Release 1.1.0 changes a managed file, .gitignore and a user-owned file elsewhere.
    release(
        repo,
        "v1.1.0",
        append(T_METRICS, NEW_HELPER),
        append("template/.gitignore", "profiles/\n"),
        replace(T_MODEL, "THE EXAMPLE TO REPLACE", "THE EXAMPLE TO REPLACE (v1.1)"),
    )
    with task_env(PAPER_TO_CODE_TASK_LOG=str(task_log), PAPER_TO_CODE_STRICT="1"):
        update(project)

    model = (project / f"src/{PKG}/models/transformer.py").read_text()
    assert "my_paper_block" in model and "(v1.1)" not in model  # user-owned: never overwritten
    assert "# user: note kept across updates" in (project / "train.py").read_text()
    assert "def best_val_loss" in (project / f"src/{PKG}/metrics.py").read_text()
    assert "profiles/" in (project / ".gitignore").read_text()
    assert conflicts(project) == []
    assert not list(project.rglob("*.rej"))
    assert (project / "uv.lock").read_bytes() == lock_before
    assert task_log.read_text().splitlines() == [str(project)], "no task may run on update"
    answers = (project / ".copier-answers.yml").read_text()
    assert "_commit: v1.1.0" in answers
    run(
        ["uv", "run", "--frozen", "python", "-c", f"import {PKG}.metrics as m; m.best_val_loss"],
        project,
    )
    run(
        ["uv", "run", "--frozen", "pytest", "-m", "not slow", "-q", "-p", "no:cacheprovider"],
        project,
    )


def test_overlapping_edits_leave_markers_that_the_check_reports(tmp_path: Path) -> None:
    repo = template_repo(tmp_path)
    project = render(repo, tmp_path / "project", {"run_setup": False})
    git(project, "init", "-q")
    commit_all(project, "initial")
    line = '    """Linear warmup to ``lr``, then cosine decay to ``min_lr`` at ``steps``."""'
    replace("train.py", line, '    """USER: my own schedule."""')(project)
    commit_all(project, "my schedule")
    release(
        repo,
        "v1.1.0",
        replace("template/train.py.jinja", line, '    """TEMPLATE: new schedule."""'),
    )
    update(project)

    text = (project / "train.py").read_text()
    assert "USER: my own schedule" in text and "TEMPLATE: new schedule" in text  # nothing lost
    problems = conflicts(project)
    assert any(p.startswith("train.py:") for p in problems), problems
    check = subprocess.run(
        [sys.executable, "tools/check_conflicts.py"],
        cwd=project,
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert check.returncode == 1 and "train.py" in check.stdout
    assert "unresolved-conflicts" in (project / ".pre-commit-config.yaml").read_text()


def test_updating_an_unmodified_project_equals_a_fresh_render(tmp_path: Path) -> None:
    """Template-managed files converge exactly; a user-owned file the release changed keeps the
    content it was scaffolded with (by design: `_skip_if_exists`)."""
    repo = template_repo(tmp_path)
    answers = {"run_setup": False, "license": "Apache-2.0", "include_notebook": False}
    project = render(repo, tmp_path / "project", answers)
    scaffolded_model = (project / f"src/{PKG}/models/transformer.py").read_text()
    git(project, "init", "-q")
    commit_all(project, "initial")
    release(
        repo,
        "v1.1.0",
        append(T_METRICS, NEW_HELPER),
        append("template/.gitignore", "profiles/\n"),
        replace(T_MODEL, "THE EXAMPLE TO REPLACE", "THE EXAMPLE TO REPLACE (v1.1)"),
    )
    update(project)
    fresh = render(repo, tmp_path / "fresh", answers)
    diff = filecmp.dircmp(project, fresh, ignore=[".git", ".copier-answers.yml"])
    assert _differences(diff) == [f"src/{PKG}/models/transformer.py"]
    assert (project / f"src/{PKG}/models/transformer.py").read_text() == scaffolded_model
    assert "def best_val_loss" in (project / f"src/{PKG}/metrics.py").read_text()


def _differences(diff: filecmp.dircmp[str], prefix: str = "") -> list[str]:
    found = [f"{prefix}{name}" for name in diff.left_only + diff.right_only + diff.diff_files]
    for name, sub in diff.subdirs.items():
        found += _differences(sub, f"{prefix}{name}/")
    return found


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("dirty", "Destination repository is dirty"),
        ("no-git", "Updating is only supported in git-tracked subprojects"),
    ],
)
def test_refusals_are_surfaced(tmp_path: Path, setup: str, message: str) -> None:
    repo = template_repo(tmp_path)
    project = render(repo, tmp_path / "project", {"run_setup": False})
    if setup == "dirty":
        git(project, "init", "-q")
        commit_all(project, "initial")
        (project / "notes.txt").write_text("uncommitted work\n")
    result = subprocess.run(
        [sys.executable, "-m", "copier", "update", "--trust", "--defaults"],
        cwd=project,
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert result.returncode != 0 and message in result.stdout + result.stderr
    readme = (ROOT / "README.md").read_text()
    assert "Destination repository is dirty" in readme and "not a git repository" in readme


def test_updating_a_copy_of_the_reference_is_a_no_op(tmp_path: Path) -> None:
    """The reference is what the template renders: a template update finds nothing to change."""
    import yaml

    repo = template_repo(tmp_path)
    reference = ROOT / "reference" / "nested_learning"
    copy = tmp_path / "reference"
    tracked = git(ROOT, "ls-files", "-z", "--", str(reference)).split("\0")
    for rel in filter(None, tracked):
        source = ROOT / rel
        target = copy / source.relative_to(reference)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    answers_path = copy / ".copier-answers.yml"
    answers = yaml.safe_load(answers_path.read_text())
    answers.update({"_src_path": str(repo), "_commit": "v1.0.0"})
    answers_path.write_text(yaml.safe_dump(answers, sort_keys=True))
    git(copy, "init", "-q")
    commit_all(copy, "the reference")
    git(repo, "commit", "-q", "--allow-empty", "-m", "release 1.0.1")
    git(repo, "tag", "v1.0.1")
    update(copy)
    changed = git(copy, "status", "--porcelain").splitlines()
    assert changed == [" M .copier-answers.yml"], changed
    after = yaml.safe_load(answers_path.read_text())
    assert after.pop("_commit") == "v1.0.1" and answers.pop("_commit") == "v1.0.0"
    assert after == answers  # every recorded answer survives the update
