"""Every bad answer is refused with a message that alone says what to do; nothing is left."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, render

BAD_ANSWERS: list[tuple[dict[str, Any], str]] = [
    ({"package_name": "My-Paper"}, "contains a dash"),
    ({"package_name": "my-paper"}, "contains a dash"),
    ({"package_name": "2fast"}, "starts with a digit"),
    ({"package_name": "MyPaper"}, "must be a lowercase Python identifier"),
    ({"package_name": "my paper"}, "must be a lowercase Python identifier"),
    ({"package_name": "class"}, "is a Python keyword"),
    ({"package_name": "lambda"}, "is a Python keyword"),
    ({"package_name": "torch"}, "would shadow the 'torch' module"),
    ({"package_name": "numpy"}, "would shadow the 'numpy' module"),
    ({"package_name": "yaml"}, "would shadow the 'yaml' module"),
    ({"package_name": "gradio"}, "would shadow the 'gradio' module"),
    ({"package_name": "src"}, "would shadow the 'src' module"),
    ({"package_name": "test"}, "would shadow the 'test' module"),
    ({"package_name": "tests"}, "would shadow the 'tests' module"),
    ({"package_name": "json"}, "would shadow the 'json' module"),
    ({"package_name": "random"}, "would shadow the 'random' module"),
    ({"author_email": "not-an-email"}, "author_email must be an address like"),
    ({"author_email": "a@b"}, "author_email must be an address like"),
    ({"arxiv_id": "2512.246"}, "arxiv_id must look like"),
    ({"arxiv_id": "arXiv:2512.24695"}, "arxiv_id must look like"),
    ({"paper_url": "arxiv.org/abs/2512.24695"}, "paper_url must be an http(s) URL"),
    ({"paper_url": "ftp://example.com/paper.pdf"}, "paper_url must be an http(s) URL"),
    ({"year": 1949}, "year must be between 1950 and"),
    ({"year": datetime.date.today().year + 2}, "year must be between 1950 and"),
    ({"repo_slug": "My Repo"}, "repo_slug must be lowercase letters and digits"),
    ({"paper_title": "  "}, "The paper title must not be empty"),
    ({"paper_pdf": "paper.docx"}, "paper_pdf must be a path to a .pdf file"),
    ({"tracker": "mlflow"}, "Invalid choice for 'tracker': 'mlflow' is not in"),
]


@pytest.mark.parametrize(("answers", "message"), BAD_ANSWERS, ids=[str(a) for a, _ in BAD_ANSWERS])
def test_bad_answer_is_refused_with_its_message(
    template_snapshot: Path, tmp_path: Path, answers: dict[str, Any], message: str
) -> None:
    dst = tmp_path / "project"
    with pytest.raises(ValueError, match=None) as err:
        render(template_snapshot, dst, {**answers, "run_setup": False})
    assert message in str(err.value)
    assert not dst.exists(), "a refused answer must leave nothing on disk"


@pytest.mark.parametrize(
    "answers",
    [
        {"package_name": "my_paper"},
        {"package_name": "hope_v2"},
        {"arxiv_id": "2512.24695v1"},
        {"arxiv_id": "hep-th/9901001"},
        {"arxiv_id": "", "paper_url": ""},
        {"year": datetime.date.today().year + 1},
        {"author_email": "first.last+tag@uni.example.ac.uk"},
    ],
)
def test_good_answers_are_accepted(
    template_snapshot: Path, tmp_path: Path, answers: dict[str, Any]
) -> None:
    dst = render(template_snapshot, tmp_path / "p", {**answers, "run_setup": False})
    assert (dst / "pyproject.toml").is_file()


def test_reserved_names_cover_the_standard_library() -> None:
    import sys

    config = yaml.safe_load((ROOT / "copier.yml").read_text())
    reserved = set(config["reserved_names"]["default"])
    stdlib = {
        name for name in sys.stdlib_module_names if not name.startswith("_") and name.islower()
    }
    assert stdlib <= reserved, sorted(stdlib - reserved)


def test_computed_defaults_follow_the_project_name(template_snapshot: Path, tmp_path: Path) -> None:
    dst = render(
        template_snapshot,
        tmp_path / "p",
        {"project_name": "Hope: Nested Learning!", "run_setup": False},
    )
    answers = yaml.safe_load((dst / ".copier-answers.yml").read_text())
    assert answers["repo_slug"] == "hope-nested-learning"
    assert answers["package_name"] == "hope_nested_learning"
    assert (dst / "src" / "hope_nested_learning" / "__init__.py").is_file()
    assert (
        "reserved_names" not in answers and "python_keywords" not in answers
    )  # computed, not asked
