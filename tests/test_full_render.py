"""Full runs: `copier copy` with the real setup task, then the render's own checks all pass.

The render is made from a git clone of the template (as users get it), with its setup task
(git init, uv sync, requirements.txt, fast tests, first commit) in strict mode.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    ARTIFACTS,
    CHROMIUM_FLAGS,
    DEFAULT_PACKAGE,
    ROOT,
    http_server,
    render,
    rendered_files,
    run,
    task_env,
)

pytestmark = pytest.mark.slow

MINIMAL = {
    "include_demo": False,
    "include_notebook": False,
    "ci": False,
    "license": "none",
    "tracker": "tensorboard",  # a chosen tracker is installed by the plain `uv sync`
    "project_name": "Minimal Paper",
    "package_name": "minimal_paper",
}


def full_render(dst: Path, data: dict[str, Any]) -> Path:
    """Render from the repository (git), running the setup task; setup failures fail the test."""
    with task_env(PAPER_TO_CODE_STRICT="1"):
        render(ROOT, dst, data, tasks=True, vcs_ref="HEAD")
    return dst


def readme_commands() -> list[str]:
    """The two commands that open README.md (its first code block)."""
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("  #")[0].strip() for line in block.strip().splitlines()]


def test_readme_opens_with_the_render_and_the_test_command() -> None:
    render_cmd, test_cmd = readme_commands()
    assert render_cmd.startswith("uvx copier copy --trust --defaults ")
    assert test_cmd == "uv run pytest"


@pytest.fixture(scope="module")
def default_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's first command, verbatim, run from the repository root.

    Only the destination changes (a temporary folder), and `--vcs-ref HEAD` is added so that
    uncommitted template edits are what gets tested.
    """
    dst = tmp_path_factory.mktemp("full") / "my-paper"
    render_cmd = readme_commands()[0].replace("../my-paper", str(dst)) + " --vcs-ref HEAD"
    run(["bash", "-c", render_cmd], ROOT, PAPER_TO_CODE_STRICT="1")
    return dst


@pytest.fixture(scope="module")
def minimal_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return full_render(tmp_path_factory.mktemp("full") / "minimal", MINIMAL)


def test_setup_task_left_a_committed_synced_project(default_project: Path) -> None:
    assert (default_project / "uv.lock").is_file() and (default_project / ".venv").is_dir()
    requirements = (default_project / "requirements.txt").read_text()
    assert "torch==" in requirements and "pytest" not in requirements  # runtime deps only
    status = run(["git", "status", "--porcelain"], default_project).stdout
    assert status == "", f"the setup commit must leave a clean tree:\n{status}"
    log = run(["git", "log", "--format=%s"], default_project).stdout
    assert "Initial commit from the paper-to-code template" in log


@pytest.mark.parametrize("project", ["default_project", "minimal_project"])
def test_render_passes_its_own_checks(project: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(project)
    run(["uv", "run", "ruff", "check", "."], path)
    run(["uv", "run", "ruff", "format", "--check", "."], path)
    run(["uv", "run", "mypy"], path)
    # The default project runs its slow (multi-process) tests too; the minimal one, whose plumbing
    # is the same files, only the fast ones, to keep CI inside its time limit.
    marks = [] if project == "default_project" else ["-m", "not slow"]
    result = run(["uv", "run", "pytest", "-q", "-p", "no:cacheprovider", *marks], path)
    assert " passed" in result.stdout and "failed" not in result.stdout
    if project == "default_project":
        assert (
            "quickstart.ipynb"
            in run(
                ["uv", "run", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"], path
            ).stdout
        )  # the notebook runs under nbmake


def test_the_chosen_tracker_is_installed_and_logs(minimal_project: Path) -> None:
    run(["uv", "run", "python", "-c", "import tensorboard"], minimal_project)
    result = run(
        ["uv", "run", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "tests/test_tracking.py"],
        minimal_project,
    )
    assert "3 passed, 1 skipped" in result.stdout  # wandb, not installed here, is skipped


def test_both_trackers_log_for_real_from_their_dependency_groups(default_project: Path) -> None:
    """The default project (tracker none) with both groups: TensorBoard's reader and W&B offline."""
    groups = ["--group", "tensorboard", "--group", "wandb"]
    cmd = ["uv", "run", *groups, "pytest", "-q", "-p", "no:cacheprovider", "tests/test_tracking.py"]
    result = run(cmd, default_project, WANDB_MODE="offline")
    assert "4 passed" in result.stdout
    run(["uv", "sync", "-q"], default_project)  # back to the default groups for the other tests


def test_minimal_render_has_no_optional_parts(minimal_project: Path) -> None:
    files = rendered_files(minimal_project)
    assert not any(f.startswith(("demo/", "notebooks/", ".github/")) for f in files)
    assert "LICENSE" not in files and "tests/test_demo.py" not in files
    assert "gradio" not in (minimal_project / "uv.lock").read_text()


def test_train_cli_small_preset_runs(default_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run(
        [
            "uv",
            "run",
            "python",
            "train.py",
            "--config",
            "small",
            "--steps",
            "20",
            "--out-dir",
            str(out),
        ],
        default_project,
    )
    assert (out / "checkpoint.pt").is_file() and (out / "loss.png").is_file()


@pytest.fixture(scope="module")
def demo_server(default_project: Path) -> Iterator[str]:
    cmd = ["uv", "run", "python", "demo/app.py"]
    with http_server(cmd, default_project, timeout=120, GRADIO_ANALYTICS_ENABLED="False") as url:
        yield url


def test_demo_answers_over_http(demo_server: str) -> None:
    from gradio_client import Client

    client = Client(demo_server, verbose=False)
    completion = client.predict("The model", 8, 0.0, 0, api_name="/generate")
    assert isinstance(completion, str) and completion.startswith("The model")


@pytest.mark.browser
def test_a_person_uses_the_demo_in_a_real_browser(demo_server: str, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip(
            "Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=CHROMIUM_FLAGS,  # Playwright makes a fresh profile
        )
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(demo_server, wait_until="networkidle")
        prompt = page.get_by_label("Prompt")
        prompt.fill("Attention is")
        page.get_by_role("button", name="Generate").click()
        output = page.get_by_label("Completion")
        page.wait_for_function(
            "el => el.value.startsWith('Attention is')", arg=output.element_handle(), timeout=60_000
        )
        text = output.input_value()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "template-demo.png"), full_page=True)
        browser.close()
    assert text.startswith("Attention is") and len(text) > len("Attention is")
    assert (ARTIFACTS / "template-demo.png").stat().st_size > 10_000


def test_default_package_name(default_project: Path) -> None:
    assert (default_project / "src" / DEFAULT_PACKAGE / "__init__.py").is_file()
