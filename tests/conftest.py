"""Helpers for testing the template: render it with copier, run commands inside a render, serve
its demo over HTTP."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ARTIFACTS = ROOT / "test-artifacts"
DEFAULT_PACKAGE = "attention_is_all_you_need"
#: Headless Chromium for the browser tests: no GPU, sandbox, QUIC or background traffic.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@contextlib.contextmanager
def http_server(cmd: list[str], cwd: Path, timeout: float, **env: str) -> Iterator[str]:
    """Run ``cmd --port PORT`` in ``cwd`` and yield its URL once it answers over HTTP.

    Polls the URL every 0.5 s; fails the test with the server's output if it exits first, or after
    ``timeout`` seconds. On exit the server is terminated (killed if it does not stop in 30 s).
    """
    port = free_port()
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)],
        cwd=cwd,
        env=clean_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    out = proc.stdout.read() if proc.stdout else ""
                    pytest.fail(f"{' '.join(cmd)} exited before answering:\n{out[-4000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"{' '.join(cmd)} did not answer on {url} within {timeout:g} s")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


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
