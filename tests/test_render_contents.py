"""What a default render contains, checked file by file (render only, no install)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import DEFAULT_PACKAGE, render


@pytest.fixture(scope="module")
def project(template_snapshot: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = render(template_snapshot, tmp_path_factory.mktemp("contents") / "p", {"run_setup": False})
    subprocess.run(["git", "init", "-q"], cwd=dst, check=True)
    return dst


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        (".env", True), (".env.local", True), ("aws_credentials.json", True),
        (".venv/bin/python", True), ("runs/small/checkpoint.pt", True), ("model.safetensors", True),
        ("wandb/run-1/log.txt", True), ("__pycache__/x.pyc", True),
        ("notebooks/.ipynb_checkpoints/q.ipynb", True), ("configs/small.yaml", False),
        ("notebooks/quickstart.ipynb", False), ("results/exp1.json", False),
        ("uv.lock", False), ("requirements.txt", False), ("paper/paper.md", False),
    ],
)  # fmt: skip
def test_gitignore(project: Path, path: str, ignored: bool) -> None:
    check = subprocess.run(["git", "check-ignore", "-q", path], cwd=project, check=False)
    assert (check.returncode == 0) == ignored, path


def test_pre_commit_has_ruff_format_and_the_conflict_check(project: Path) -> None:
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())
    ids = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff", "ruff-format", "unresolved-conflicts"} <= ids


def test_pyproject(project: Path) -> None:
    data = tomllib.loads((project / "pyproject.toml").read_text())
    assert data["build-system"]["build-backend"] == "hatchling.build"
    assert data["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == [
        f"src/{DEFAULT_PACKAGE}"
    ]
    assert set(data["dependency-groups"]) == {"dev", "demo", "paper", "tensorboard", "wandb"}
    assert data["tool"]["uv"]["default-groups"] == ["dev", "demo"]
    assert data["tool"]["mypy"]["strict"] is True and data["tool"]["mypy"]["files"] == ["src"]
    assert any(d.startswith("torch") for d in data["project"]["dependencies"])


def test_citation_cff_names_the_paper_and_its_authors(project: Path) -> None:
    cff = yaml.safe_load((project / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    ref = cff["preferred-citation"]
    assert ref["title"] == "Attention Is All You Need" and ref["year"] == 2017
    assert ref["authors"][0] == {"given-names": "Ashish", "family-names": "Vaswani"}
    assert len(ref["authors"]) == 8


def test_readme_is_quickstart_first_with_bibtex(project: Path) -> None:
    readme = (project / "README.md").read_text()
    headings = re.findall(r"^## (.+)$", readme, flags=re.M)
    assert headings[0] == "Quickstart"
    assert {"Architecture", "Citation", "Template updates"} <= set(headings)
    for command in (
        "uv sync",
        "uv run pytest",
        "train.py --config small",
        "demo/app.py",
        "--config medium",
        "--config large",
        "torchrun",
    ):
        assert command in readme, command
    assert "@inproceedings{vaswani2017," in readme and "CPU" in readme


def test_answers_file_records_every_question(project: Path) -> None:
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    asked = {
        "paper_title",
        "paper_url",
        "arxiv_id",
        "paper_authors",
        "venue",
        "year",
        "paper_pdf",
        "project_name",
        "repo_slug",
        "package_name",
        "description",
        "author_name",
        "author_email",
        "license",
        "python_version",
        "torch_backend",
        "tracker",
        "include_demo",
        "include_notebook",
        "ci",
        "run_setup",
    }
    assert asked <= set(answers)


def test_ci_workflow_runs_lint_types_tests_and_checks_for_template_updates(project: Path) -> None:
    workflow = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
    steps = " ".join(
        str(s.get("run", "")) for job in workflow["jobs"].values() for s in job["steps"]
    )
    for command in (
        "uv sync --locked",
        "ruff check",
        "ruff format --check",
        "mypy",
        "uv run pytest",
        "copier check-update",
    ):
        assert command in steps, command


def test_the_readme_says_how_to_get_uv_before_its_first_command() -> None:
    from conftest import ROOT

    opening = (ROOT / "README.md").read_text().split("```bash\n", 1)[0]
    assert "`python3 -m pip install uv`" in opening, "a machine with only Python needs uv first"


def test_the_readme_lists_every_user_owned_pattern() -> None:
    from conftest import ROOT

    patterns = yaml.safe_load((ROOT / "copier.yml").read_text())["_skip_if_exists"]
    section = (
        (ROOT / "README.md")
        .read_text()
        .split("## Which files are yours", 1)[1]
        .split("\n## ", 1)[0]
    )
    missing = [p for p in patterns if f"`{p}`" not in section]
    assert missing == [], f"README's 'Which files are yours' does not list {missing}"


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, "1000"), ({"GOMP_SPINCOUNT": "7"}, "7"), ({"OMP_WAIT_POLICY": "PASSIVE"}, "None")],
)
def test_the_notebook_sets_the_openmp_spin_default_before_torch(
    project: Path, env: dict[str, str], expected: str
) -> None:
    """The first code cell, run up to its `import torch`, leaves the spin default (or yours)."""
    nb = json.loads((project / "notebooks" / "quickstart.ipynb").read_text(encoding="utf-8"))
    cell = "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])
    header = cell.split("import torch\n")[0].split("import matplotlib")[0]
    probe = header + "\nprint(os.environ.get('GOMP_SPINCOUNT'))"
    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run(
        [sys.executable, "-c", probe], env={**clean, **env}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected
