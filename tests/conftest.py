"""Helpers for testing the template: render it with copier, run commands inside a render."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ARTIFACTS = ROOT / "test-artifacts"
DEFAULT_PACKAGE = "attention_is_all_you_need"


def clean_env(**extra: str) -> dict[str, str]:
    """Environment for subprocesses: no active virtualenv, no git or copier settings leaking in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH") and not k.startswith(("GIT_", "COPIER_"))
    }
    env.update(extra)
    return env


def run(
    cmd: list[str], cwd: Path, timeout: float = 900, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` and fail the test with its output when it exits non-zero."""
    result = subprocess.run(
        cmd, cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} exited {result.returncode} in {cwd}\n"
            f"--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-6000:]}"
        )
    return result


@pytest.fixture(scope="session", autouse=True)
def _isolated_copier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """User settings can change copier's defaults: point it at an empty settings file."""
    settings = tmp_path_factory.mktemp("copier-settings") / "settings.yml"
    settings.write_text("{}\n")
    old = os.environ.get("COPIER_SETTINGS_PATH")
    os.environ["COPIER_SETTINGS_PATH"] = str(settings)
    yield
    if old is None:
        os.environ.pop("COPIER_SETTINGS_PATH", None)
    else:
        os.environ["COPIER_SETTINGS_PATH"] = old


@pytest.fixture(scope="session")
def template_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template's files (working tree, uncommitted edits included) outside git.

    Rendering from a plain directory skips copier's git clone, which makes the render matrix fast.
    """
    dst = tmp_path_factory.mktemp("template-snapshot")
    shutil.copy2(ROOT / "copier.yml", dst / "copier.yml")
    for folder in ("template", "hooks"):
        shutil.copytree(
            ROOT / folder,
            dst / folder,
            ignore=shutil.ignore_patterns("__pycache__", ".venv", "*.pyc"),
        )
    return dst


@contextlib.contextmanager
def task_env(**values: str) -> Iterator[None]:
    """Set environment variables for copier's tasks.

    Copier runs tasks with plumbum's ``local.env``, a copy of ``os.environ`` taken when plumbum was
    first imported, so setting ``os.environ`` after that (e.g. with monkeypatch) never reaches them.
    """
    from plumbum import local

    old = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        with local.env(**values):
            yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def render(
    src: Path, dst: Path, data: dict[str, Any] | None = None, tasks: bool = False, **kwargs: Any
) -> Path:
    """``copier copy --defaults`` of ``src`` into ``dst`` with ``data`` as answers."""
    from copier import run_copy

    run_copy(
        str(src),
        str(dst),
        data=data or {},
        defaults=True,
        unsafe=True,
        quiet=True,
        skip_tasks=not tasks,
        **kwargs,
    )
    return dst


def rendered_files(root: Path) -> set[str]:
    """Relative paths of all files under ``root`` (outside .git, .venv and caches)."""
    skip = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not skip.intersection(p.relative_to(root).parts)
    }
