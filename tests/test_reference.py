"""The worked reference is a render of the template: it never drifts, and its own suite passes."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, render, rendered_files, run

REFERENCE = ROOT / "reference" / "nested_learning"

# Template-managed files the reference may change, each with the reason. Keep this list short.
ALLOWED_DIFFERENCES: dict[str, str] = {}


def skip_if_exists_patterns() -> list[str]:
    config = yaml.safe_load((ROOT / "copier.yml").read_text())
    return list(config["_skip_if_exists"])


def is_user_owned(path: str) -> bool:
    return any(fnmatch.fnmatch(path, pattern) for pattern in skip_if_exists_patterns())


def recorded_answers() -> dict[str, Any]:
    answers = yaml.safe_load((REFERENCE / ".copier-answers.yml").read_text())
    return {k: v for k, v in answers.items() if not k.startswith("_")}


def test_reference_records_its_paper() -> None:
    answers = recorded_answers()
    assert answers["package_name"] == "nested_learning" and answers["venue"] == "NeurIPS"
    assert answers["year"] == 2025 and answers["arxiv_id"] == "2512.24695"
    assert "Behrouz" in answers["paper_authors"]


def test_template_managed_files_are_identical_and_user_owned_files_exist(
    template_snapshot: Path, tmp_path: Path
) -> None:
    fresh = render(template_snapshot, tmp_path / "fresh", recorded_answers())
    drift, missing = [], []
    for rel in sorted(rendered_files(fresh)):
        if rel == ".copier-answers.yml":
            continue
        ours = REFERENCE / rel
        if is_user_owned(rel):
            if not ours.is_file():
                missing.append(rel)
        elif rel not in ALLOWED_DIFFERENCES and (
            not ours.is_file() or ours.read_bytes() != (fresh / rel).read_bytes()
        ):
            drift.append(rel)
    assert missing == [], f"user-owned files missing from the reference: {missing}"
    assert drift == [], (
        f"template-managed files differ from a fresh render: {drift}. Re-render the reference "
        "(see reference/nested_learning/README.md, 'Keeping in step with the template')."
    )


def test_allowed_differences_still_differ(template_snapshot: Path, tmp_path: Path) -> None:
    fresh = render(template_snapshot, tmp_path / "fresh", recorded_answers())
    for rel, reason in ALLOWED_DIFFERENCES.items():
        assert reason and (REFERENCE / rel).read_bytes() != (fresh / rel).read_bytes(), rel


@pytest.mark.slow
def test_the_reference_suite_passes() -> None:
    """`uv run pytest` inside the reference, with its own lockfile (slow tests included)."""
    run(["uv", "sync", "--locked", "-q"], REFERENCE)
    run(
        ["uv", "run", "--locked", "pytest", "-q", "-p", "no:cacheprovider"], REFERENCE, timeout=2400
    )


@pytest.mark.slow
def test_the_reference_passes_lint_and_types() -> None:
    run(["uv", "run", "--locked", "ruff", "check", "."], REFERENCE)
    run(["uv", "run", "--locked", "ruff", "format", "--check", "."], REFERENCE)
    run(["uv", "run", "--locked", "mypy"], REFERENCE)
