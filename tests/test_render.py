"""Render-only checks over the full cross product of the cheap options.

Each render must have exactly the expected files, no unrendered Jinja, parseable TOML/YAML/JSON and
notebooks, and pass ruff (lint and format) with its own configuration.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DEFAULT_PACKAGE, render, rendered_files

LICENSES = ["MIT", "Apache-2.0", "BSD-3-Clause", "none"]
PYTHONS = ["3.11", "3.12", "3.13"]
BACKENDS = ["pypi", "cpu", "cu126", "cu128"]
TRACKERS = ["none", "tensorboard", "wandb"]
# The tracker only changes pyproject.toml's default groups and one config default: it cycles through
# the cross product of the other options (every tracker appears 128 times) instead of tripling it.
MATRIX = [
    (*combo, TRACKERS[i % len(TRACKERS)])
    for i, combo in enumerate(
        itertools.product([True, False], [True, False], [True, False], LICENSES, PYTHONS, BACKENDS)
    )
]


# tools/paper_extractor/: the extractor behind tools/extract_paper.py, one module a stage
EXTRACTOR_MODULES = (
    "__init__", "__main__", "records", "pdf_reader", "layout", "classify", "parser", "sentences",
    "text_flow", "hyperparameters", "mentions", "names", "pipeline", "markdown", "checklist",
    "outputs",
)  # fmt: skip


def expected_files(answers: dict[str, Any], package: str = DEFAULT_PACKAGE) -> set[str]:
    src = f"src/{package}"
    files = {
        ".copier-answers.yml", ".gitignore", ".pre-commit-config.yaml", ".python-version",
        "CITATION.cff", "README.md", "pyproject.toml", "train.py",
        "configs/small.yaml", "configs/medium.yaml", "configs/large.yaml",
        "docs/ALGORITHMS.md", "docs/CHECKLIST.md",
        "tools/extract_paper.py", "tools/check_conflicts.py",
        f"{src}/__init__.py", f"{src}/py.typed", f"{src}/checkpoint.py", f"{src}/config.py",
        f"{src}/data.py", f"{src}/device.py", f"{src}/distributed.py", f"{src}/metrics.py",
        f"{src}/sampling.py", f"{src}/parallel.py", f"{src}/preemption.py", f"{src}/tracking.py",
        "scripts/slurm/train.sbatch", "tests/test_preemption.py", "tests/test_tracking.py",
        "tests/test_slurm.py", "tests/test_fsdp.py",
        f"{src}/core/__init__.py", f"{src}/core/attention.py",
        f"{src}/models/__init__.py", f"{src}/models/transformer.py",
        "tests/conftest.py", "tests/test_config.py", "tests/test_device.py", "tests/test_model.py",
        "tests/test_train.py", "tests/test_hygiene.py",
        "experiments/ledger.py", "experiments/runner.py", "experiments/report.py",
        "experiments/exp_attention_recall.py", "tools/trace.py",
        "tests/test_ledger.py", "tests/test_report.py", "tests/test_experiments.py",
        "tests/test_trace.py",
    }  # fmt: skip
    files |= {f"tools/paper_extractor/{module}.py" for module in EXTRACTOR_MODULES}
    if answers["license"] != "none":
        files.add("LICENSE")
    if answers["include_demo"]:
        files |= {"demo/app.py", "tests/test_demo.py"}
    if answers["include_notebook"]:
        files.add("notebooks/quickstart.ipynb")
    if answers["ci"]:
        files.add(".github/workflows/ci.yml")
    return files


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("ruff")
    assert exe, "ruff is part of the dev environment: run the tests with `uv run pytest`"
    return subprocess.run([exe, *args], capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    ("demo", "notebook", "ci", "license", "python", "backend", "tracker"),
    MATRIX,
    ids=["-".join(map(str, combo)) for combo in MATRIX],
)
def test_render(
    template_snapshot: Path,
    tmp_path: Path,
    demo: bool,
    notebook: bool,
    ci: bool,
    license: str,
    python: str,
    backend: str,
    tracker: str,
) -> None:
    answers = {
        "tracker": tracker,
        "include_demo": demo,
        "include_notebook": notebook,
        "ci": ci,
        "license": license,
        "python_version": python,
        "torch_backend": backend,
        "run_setup": False,
    }
    dst = render(template_snapshot, tmp_path / "p", answers)

    assert rendered_files(dst) == expected_files(answers)
    for path in dst.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"\{\{|\{%", text), f"unrendered Jinja in {path.name}"

    pyproject = tomllib.loads((dst / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == f">={python}"
    assert (dst / ".python-version").read_text().strip() == python
    sources = pyproject.get("tool", {}).get("uv", {}).get("sources", {})
    if backend == "pypi":
        assert "torch" not in sources
    else:
        (index,) = pyproject["tool"]["uv"]["index"]
        assert index["url"] == f"https://download.pytorch.org/whl/{backend}" and index["explicit"]
        assert sources["torch"][0]["index"] == index["name"]
    groups = pyproject["dependency-groups"]
    assert ("demo" in groups) == demo
    assert any(d.startswith("nbmake") for d in groups["dev"]) == notebook
    assert groups["tensorboard"] == ["tensorboard>=2.17"] and groups["wandb"] == ["wandb>=0.18"]
    defaults = pyproject["tool"]["uv"]["default-groups"]
    assert [g for g in defaults if g in TRACKERS] == ([] if tracker == "none" else [tracker])
    config = (dst / "src" / DEFAULT_PACKAGE / "config.py").read_text()
    assert f'tracker: str = "{tracker}"' in config
    for path in [*dst.rglob("*.yaml"), *dst.rglob("*.yml"), dst / "CITATION.cff"]:
        assert yaml.safe_load(path.read_text()) is not None, path
    if notebook:
        nb = json.loads((dst / "notebooks" / "quickstart.ipynb").read_text())
        assert nb["metadata"]["kernelspec"]["name"] == "python3"  # nbmake finds this kernel
    lint = ruff("check", "--no-cache", "--config", str(dst / "pyproject.toml"), str(dst))
    assert lint.returncode == 0, lint.stdout
    fmt = ruff("format", "--check", "--no-cache", "--config", str(dst / "pyproject.toml"), str(dst))
    assert fmt.returncode == 0, fmt.stdout


def test_the_slurm_batch_script_passes_shellcheck(template_snapshot: Path, tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "install Debian's shellcheck (apt-get install shellcheck; .ci/run does)"
    dst = render(template_snapshot, tmp_path / "p", {"run_setup": False})
    script = dst / "scripts" / "slurm" / "train.sbatch"
    result = subprocess.run([shellcheck, str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    text = script.read_text()
    assert "#SBATCH --job-name=attention-is-all-you-need" in text
    for line in ("#SBATCH --signal=B:USR1@120", "#SBATCH --requeue", "#SBATCH --gpus-per-node="):
        assert line in text
    assert "--rdzv_backend c10d" in text and "train.py --auto-resume" in text
