"""Post-copy setup of a rendered paper-to-code project (run by copier's `_tasks`, on copy only).

Steps, each reported on one line:
  1. extract the paper (when `paper_pdf` was given): copy it to paper/, run tools/extract_paper.py
  2. `git init` when the project is not inside a git work tree
  3. `uv sync` (creates .venv and uv.lock)
  4. `uv export` → requirements.txt for people without uv
  5. the fast tests: `uv run pytest -m "not slow"`
  6. a first commit, when this script created the repository and git knows who you are

Bad input (a paper PDF that does not exist or cannot be read) fails the copy with one message, and
copier removes the half-made project. A setup step that fails (no uv, no network, a failing test)
does NOT fail the copy: the project stays, and one message says what failed and how to continue.
PAPER_TO_CODE_STRICT=1 turns setup failures into a non-zero exit (the template's tests set it).
Standard library only: it runs on the Python that runs copier.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

INITIAL_COMMIT = "Initial commit from the paper-to-code template"


class StepFailed(Exception):
    """A setup step failed; the message says what failed and how to continue."""


def say(message: str) -> None:
    print(f"[paper-to-code] {message}", flush=True)


def clean_env() -> dict[str, str]:
    """The environment minus an active virtualenv (uv would warn and may use the wrong one)."""
    return {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX")}


def run(cmd: list[str], what: str, fix: str, quiet: bool = True) -> str:
    """Run ``cmd``; on failure raise :class:`StepFailed` naming ``what`` and ``fix``."""
    try:
        result = subprocess.run(cmd, capture_output=quiet, text=True, env=clean_env(), check=False)
    except FileNotFoundError as err:
        raise StepFailed(f"{what}: '{cmd[0]}' was not found. {fix}") from err
    if result.returncode != 0:
        tail = (result.stdout or "")[-1500:] + (result.stderr or "")[-1500:] if quiet else ""
        raise StepFailed(f"{what} failed (exit {result.returncode}). {fix}\n{tail.strip()}")
    return result.stdout or ""


def inside_git_work_tree() -> bool:
    if shutil.which("git") is None:
        return False
    probe = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"], capture_output=True, text=True, check=False
    )
    return probe.returncode == 0 and probe.stdout.strip() == "true"


def git_identity_known() -> bool:
    return all(
        subprocess.run(["git", "config", key], capture_output=True, check=False).returncode == 0
        for key in ("user.name", "user.email")
    )


def resolve_pdf(path_text: str) -> Path:
    """The PDF path as the user typed it: relative paths are relative to where copier was run."""
    path = Path(path_text).expanduser()
    if not path.is_absolute():
        path = Path(os.environ.get("PWD", os.getcwd())) / path
    return path


def extract_paper(path_text: str) -> None:
    """Copy the PDF into paper/ and write paper/paper.md and docs/CHECKLIST.md from it."""
    pdf = resolve_pdf(path_text)
    if not pdf.is_file():
        raise SystemExit(
            f"paper_pdf: no file at {pdf}. Pass the path of the paper's PDF "
            "(absolute, or relative to where you run copier), or leave it empty."
        )
    Path("paper").mkdir(exist_ok=True)
    target = Path("paper") / pdf.name
    shutil.copyfile(pdf, target)
    say(f"extracting {target} → paper/paper.md, docs/CHECKLIST.md")
    # The extractor needs pypdfium2; uv brings it without touching the project's environment.
    runner = ["uv", "run", "--no-project", "--with", "pypdfium2>=4.30", "python"]
    if shutil.which("uv") is None:
        runner = [sys.executable]
    result = subprocess.run(
        [*runner, "tools/extract_paper.py", str(target)],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=False,
    )
    if result.returncode != 0:
        message = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise SystemExit(f"paper_pdf: could not extract {pdf.name}: {message}")


def setup(run_setup: bool) -> list[str]:
    """Steps 2–6; returns the next steps to print."""
    next_steps = ["uv run pytest", "uv run python train.py --config small"]
    created_repo = False
    if shutil.which("git") and not inside_git_work_tree():
        run(["git", "init", "-q"], "git init", "Install git, then run `git init` in the project.")
        created_repo = True
    if not run_setup:
        return ["uv sync", *next_steps]
    if shutil.which("uv") is None:
        raise StepFailed(
            "uv is not installed, so the environment was not created. Install it "
            "(https://docs.astral.sh/uv/ or `pip install uv`), then run `uv sync`."
        )
    say("uv sync (first time: downloads PyTorch, which can take a few minutes)")
    run(["uv", "sync"], "uv sync", "Check your network / Python version, then run `uv sync`.")
    run(
        [
            "uv",
            "export",
            "--no-hashes",
            "--no-dev",
            "--no-emit-project",
            "--quiet",
            "--output-file",
            "requirements.txt",
        ],
        "uv export",
        "Run `uv export --no-hashes --no-dev --no-emit-project -o requirements.txt`.",
    )
    say("fast tests: uv run pytest -m 'not slow'")
    run(
        ["uv", "run", "pytest", "-m", "not slow", "-q", "-p", "no:cacheprovider"],
        "The fast tests",
        "Run `uv run pytest -m 'not slow'` to see the failure.",
    )
    if created_repo and git_identity_known():
        run(["git", "add", "-A"], "git add", "Commit the project by hand.")
        run(
            ["git", "commit", "-q", "--no-verify", "-m", INITIAL_COMMIT],
            "git commit",
            "Commit the project by hand: `git add -A && git commit`.",
        )
        say("committed the project (a clean tree is what `copier update` needs later)")
    elif created_repo:
        next_steps.insert(
            0, "git add -A && git commit -m 'Initial commit'   # git has no user.name/email yet"
        )
    return next_steps


def main(argv: list[str] | None = None) -> int:
    if log := os.environ.get("PAPER_TO_CODE_TASK_LOG"):  # the template's tests: where tasks ran
        with open(log, "a") as handle:
            handle.write(f"{Path.cwd()}\n")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--paper-pdf", default="")
    parser.add_argument("--run-setup", default="True")
    args = parser.parse_args(argv)
    if args.paper_pdf:
        extract_paper(args.paper_pdf)  # bad input: SystemExit with one message, copy is undone
    try:
        next_steps = setup(args.run_setup.lower() in ("true", "1", "yes"))
    except StepFailed as err:
        say(f"setup did not finish: {err}")
        say(f"your project is rendered in {Path.cwd()}; continue from the step that failed.")
        return 1 if os.environ.get("PAPER_TO_CODE_STRICT") == "1" else 0
    say("setup done. Next:")
    for step in next_steps:
        print(f"    {step}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
