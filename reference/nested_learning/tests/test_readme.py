"""README.md quotes the results files; it must agree with them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_verdicts() -> dict[str, str]:
    rows = re.findall(r"^\| \d \| `uv run python experiments/(\w+)\.py` \| .*? \| (.+?) \|$",
                      (ROOT / "README.md").read_text(), flags=re.M)  # fmt: skip
    return dict(rows)


def test_readme_verdicts_match_the_results_files() -> None:
    quoted = readme_verdicts()
    assert len(quoted) == 5, quoted
    for name, verdict in quoted.items():
        path = ROOT / "results" / f"{name}.json"
        if not path.is_file():
            pytest.fail(f"README quotes {name} but results/{name}.json does not exist")
        assert json.loads(path.read_text())["verdict"] == verdict, name


def test_readme_points_at_files_that_exist() -> None:
    text = (ROOT / "README.md").read_text()
    for link in re.findall(r"\]\(((?!https?:)[^)#]+)\)", text):
        assert (ROOT / link).exists(), link
