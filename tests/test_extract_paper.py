"""Tests of template/tools/extract_paper.py, the Phase 1 extractor (PDF → paper.md + CHECKLIST.md).

Synthetic PDFs with known content are generated with reportlab; every planted item must be found
and nothing else (precision and recall 1.0). The real paper in ../shared/papers is checked against
a hand-made ground truth (tests/paper_truth/nested_learning.json) when it is present.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pypdfium2", reason="the extractor needs pypdfium2 (dependency group 'paper')")
pytest.importorskip("reportlab", reason="the synthetic test PDFs are generated with reportlab")

from reportlab.lib.pagesizes import letter
from reportlab.lib.utils import simpleSplit
from reportlab.pdfgen import canvas

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "template" / "tools"))
import paper_extractor as tool  # the package behind tools/extract_paper.py
from paper_extractor import hyperparameters, outputs, parser, text_flow

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "template" / "tools"
TOOL_PATH = TOOLS / "extract_paper.py"  # the entry point; the extractor is tools/paper_extractor/
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REAL_PDF = SHARED / "papers" / "nested_learning_neurips2025.pdf"
TRUTH = Path(__file__).resolve().parent / "paper_truth" / "nested_learning.json"


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL_PATH), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        timeout=60,
    )


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


# ----------------------------------------------------------------------------------------------
# A small two-column layout engine that records where every planted item lands


BODY = ("Helvetica", 9.0)
BOLD = ("Helvetica-Bold", 9.0)
LEADING = 11.0
PAGE_W, PAGE_H = letter
MARGIN, GUTTER, TOP, BOTTOM = 54.0, 18.0, 740.0, 72.0


@dataclass
class Planted:
    """What the synthetic paper contains, with the page of each item."""

    title: str = ""
    sections: list[tuple[str, str, int]] = field(default_factory=list)  # number, title, page
    equations: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # text, intro, page
    statements: list[tuple[str, str, str, int]] = field(default_factory=list)
    algorithms: list[tuple[str, str, list[str], int]] = field(default_factory=list)
    captions: list[tuple[str, str, int]] = field(default_factory=list)
    pages: int = 0


class PaperWriter:
    def __init__(self, path: Path, title: str, columns: int = 2) -> None:
        self.c = canvas.Canvas(str(path), pagesize=letter)
        self.cols = columns
        self.width = float((PAGE_W - 2 * MARGIN - GUTTER * (columns - 1)) / columns)
        self.page, self.col = 1, 0
        self.planted = Planted(title=title)
        self.c.setFont("Helvetica-Bold", 16)
        self.c.drawString(MARGIN, 750, title)
        self.c.setFont(*BODY)
        self.c.drawString(MARGIN, 734, "Anonymous Authors")
        self.y = 712.0

    # -- layout ------------------------------------------------------------------------------
    @property
    def x(self) -> float:
        return MARGIN + self.col * (self.width + GUTTER)

    def need(self, height: float) -> None:
        if self.y - height < BOTTOM:
            if self.col + 1 < self.cols:
                self.col += 1
                self.y = 712.0 if self.page == 1 else TOP
            else:
                self.new_page()

    def new_page(self) -> None:
        self.c.setFont(*BODY)
        self.c.drawCentredString(PAGE_W / 2, 36, str(self.page))
        self.c.showPage()
        self.page, self.col, self.y = self.page + 1, 0, TOP

    def line(self, text: str, font: tuple[str, float] = BODY, indent: float = 0.0) -> int:
        self.need(LEADING)
        self.c.setFont(*font)
        self.c.drawString(self.x + indent, self.y, text)
        self.y -= LEADING
        return self.page

    def para(self, text: str, lead: str = "", lead_font: tuple[str, float] = BOLD) -> int:
        """A paragraph, optionally opening with a bold run (a run-in title or a statement head)."""
        self.y -= 4
        page = self.page
        first_width = self.width
        if lead:
            first_width -= self.c.stringWidth(lead + " ", *lead_font)
        lines = simpleSplit(text, BODY[0], BODY[1], first_width)
        first, rest = (lines[0], " ".join(lines[1:])) if lines else ("", "")
        self.need(LEADING)
        page = self.page
        if lead:
            self.c.setFont(*lead_font)
            self.c.drawString(self.x, self.y, lead)
            self.c.setFont(*BODY)
            self.c.drawString(self.x + self.c.stringWidth(lead + " ", *lead_font), self.y, first)
            self.y -= LEADING
        else:
            self.line(first)
        for text_line in simpleSplit(rest, BODY[0], BODY[1], self.width) if rest else []:
            self.line(text_line)
        return page

    # -- planted items -----------------------------------------------------------------------
    def heading(self, number: str, title: str, wrap_after: str = "") -> None:
        """A bold section heading; `wrap_after` breaks it onto a second line after that word."""
        self.y -= 6
        self.need(4 * LEADING)
        text = f"{number} {title}" if number else title
        first, _, second = text.partition(f"{wrap_after} ") if wrap_after else (text, "", "")
        font = ("Helvetica-Bold", 11.0)
        page = self.line(first.strip() if not second else f"{first}{wrap_after}", font)
        if second:
            self.y += 1  # headings wrap with a tighter leading
            self.line(second, font)
        self.planted.sections.append((number, title, page))
        self.y -= 2

    def equation(self, number: str, text: str, intro: str) -> None:
        self.y -= 3
        self.need(LEADING)
        self.c.setFont(*BODY)
        self.c.drawString(self.x + 24, self.y, text)
        self.c.drawRightString(self.x + self.width, self.y, f"({number})")
        self.planted.equations[number] = (text, intro, self.page)
        self.y -= LEADING + 3

    def statement(self, kind: str, number: str, name: str, text: str) -> None:
        head = f"{kind} {number}" + (f" ({name})" if name else "") + "."
        page = self.para(text, lead=head)
        self.planted.statements.append((kind, number, name, page))

    def algorithm(self, number: str, caption: str, require: str, steps: list[str]) -> None:
        self.y -= 4
        self.need(LEADING * (len(steps) + 3))
        page = self.page
        self.c.setFont(*BOLD)
        head = f"Algorithm {number}"
        self.c.drawString(self.x, self.y, head)
        self.c.setFont(*BODY)
        self.c.drawString(self.x + self.c.stringWidth(head + " ", *BOLD), self.y, caption)
        self.y -= LEADING
        self.line(f"Require: {require}", indent=4)
        for n, step in enumerate(steps, 1):
            self.line(f"{n}: {step}", indent=4)
        self.planted.algorithms.append((number, caption, steps, page))
        self.y -= 4

    def table(self, number: str, caption: str, rows: list[tuple[str, str]]) -> None:
        self.y -= 4
        self.need(LEADING * (len(rows) + 2))
        page = self.line(f"Table {number}: {caption}")
        for name, value in rows:
            self.c.setFont(*BODY)
            self.c.drawString(self.x + 8, self.y, name)
            self.c.drawString(self.x + 120, self.y, value)
            self.y -= LEADING
        self.planted.captions.append(("Table", number, page))

    def figure(self, number: str, caption: str) -> None:
        self.y -= 4
        self.need(70 + LEADING)
        self.c.rect(self.x + 10, self.y - 56, self.width - 20, 56)
        self.y -= 68
        self.planted.captions.append(("Figure", number, self.line(f"Figure {number}: {caption}")))

    def save(self) -> Planted:
        self.c.setFont(*BODY)
        self.c.drawCentredString(PAGE_W / 2, 36, str(self.page))
        self.c.showPage()
        self.c.save()
        self.planted.pages = self.page
        return self.planted


FILLER = [
    "The method is simple to implement and easy to analyse in practice.",
    "It relies on standard components that are widely available today.",
    "We describe each part in turn and then report what we observed.",
    "The analysis below covers both the forward pass and the training signal.",
    "Results are averaged over several runs that differ only in their seeds.",
    "The same settings are used for every baseline to keep the comparison fair.",
    "We found the approach robust to small changes in its settings.",
    "Longer inputs are handled without changes to the procedure.",
]


def filler(n: int, start: int = 0) -> str:
    return " ".join(FILLER[(start + i) % len(FILLER)] for i in range(n))


HYPER_ROWS = [
    ("Learning rate", "3e-4"),
    ("Batch size", "256"),
    ("Layers", "12"),
    ("d_model", "768"),
    ("Attention heads", "12"),
    ("Dropout", "0.1"),
    ("Warmup steps", "2000"),
    ("Sequence length", "1024"),
    ("Weight decay", "0.1"),
]
EXPECTED_HYPER = {
    ("learning rate", "3e-4"),
    ("batch size", "256"),
    ("layers", "12"),
    ("d_model", "768"),
    ("attention heads", "12"),
    ("dropout", "0.1"),
    ("warmup", "2000"),
    ("sequence length", "1024"),
    ("weight decay", "0.1"),
    ("model size (parameters)", "125M"),
    ("model size (parameters)", "350M"),
    ("training tokens", "15B"),
    ("training steps", "100k"),
}
ALGO_STEPS = [
    "for each chunk of the sequence do",
    "compute the gate with Equation 1",
    "keep the largest gate entries",
    "update the state with Equation 2",
    "end for",
]


def write_full_paper(path: Path) -> Planted:
    """Several two-column pages with every kind of item the extractor looks for."""
    w = PaperWriter(path, "Sparse Gated Recurrence for Efficient Sequence Modeling")
    w.heading("", "Abstract")
    w.para(
        "We study recurrent sequence models whose state is updated through a sparse gate. "
        "We call this model Sparse Gated Recurrence (SGR). It keeps a compact memory of the "
        "past and reads it out with a single linear map. " + filler(3)
    )
    w.heading("1", "Introduction")
    w.para(
        "Sequence models must balance quality and cost. Our contributions are: (1) Sparse "
        "Gating: a gate that touches only a few state entries per step; (2) Chunked Readout: "
        "a readout that is computed once per chunk; and (3) a study of the trade-offs "
        "involved. Further details are given in Appendix A."
    )
    for k in range(8):
        w.para(filler(8, k))
    w.heading("2", "SGR: The Proposed Model")
    w.para(
        filler(4, 2) + " The model keeps a state vector for every layer and updates it at "
        "each position. The gate is computed from the current input as follows:"
    )
    w.equation(
        "1",
        "g_t = sigmoid(W_g x_t + b_g)",
        "The gate is computed from the current input as follows:",
    )
    w.para("Only the largest entries of the gate are kept, which makes the update sparse.")
    w.statement(
        "Definition",
        "1",
        "Sparse Gate",
        "A gate is sparse when at most a fixed share of its entries is nonzero at every step.",
    )
    for k in range(4):
        w.para(filler(8, k + 2))
    w.heading("2.1", "Gated Update")
    w.para(filler(3, 5) + " The state is then updated with the gated rule below:")
    w.equation(
        "2",
        "h_t = g_t * h_prev + (1 - g_t) * x_t",
        "The state is then updated with the gated rule below:",
    )
    w.line("Both variants appear in earlier surveys (2)")
    w.para(
        "This rule was studied before in a dense form, see Equation 2 and case (1) of the "
        "survey. " + filler(4, 6)
    )
    w.statement("Lemma", "1", "", "The update keeps the state bounded when the input is bounded.")
    w.statement(
        "Theorem",
        "1",
        "Stability",
        "The recurrence is stable for every gate value in the unit interval.",
    )
    w.algorithm(
        "1", "Sparse gated recurrence training", "a sequence and the gate weights", ALGO_STEPS
    )
    w.para(filler(8, 7))
    w.heading("2.2", "Readout")
    w.para("The output is read from the state with a linear map:", lead="Chunked Readout.")
    w.equation("3", "y_t = W_o h_t", "The output is read from the state with a linear map:")
    w.para(
        "Each readout uses a few attention heads over the chunk, so attention stays local. "
        + filler(4, 1)
    )
    w.para("The model is trained with the usual next-token loss:", lead="Training Objective.")
    w.equation(
        "4",
        "L = - sum_t log p(x_t | x_prev)",
        "The model is trained with the usual next-token loss:",
    )
    w.statement("Corollary", "1", "", "The loss decreases monotonically for small steps.")
    w.statement(
        "Proposition", "1", "Cost", "The cost of one update grows linearly with the state size."
    )
    w.figure("1", "Overview of the sparse gated recurrence.")
    w.heading("3", "Experiments")
    w.para(
        "We train a 125M parameter model on 15B tokens for 100k steps, and a larger 350M "
        "variant with the same recipe. The settings are listed below; the remaining details "
        "are in Appendix B.2."
    )
    w.table("1", "Training hyperparameters.", HYPER_ROWS)
    for k in range(6):
        w.para(filler(8, k + 4))
    w.heading("4", "Conclusion")
    w.para(
        "Sparse gating gives a compact recurrent memory that is cheap to update. Each layer "
        "stays small, and the approach scales to long inputs. " + filler(5, 3)
    )
    w.heading("", "References")
    w.line("[1] A. Author. Gated recurrent networks revisited. Journal of Examples, 2020.")
    w.line("[2] B. Writer. Scaling recurrent models to 7B parameters. Proceedings, 2021.")
    w.line("[3] C. Person. A memory block module and optimizer study. Notes, 2019.")
    w.heading("A", "Training Details and the Settings Shared by All Runs", wrap_after="the")
    w.para(filler(6, 4))
    return w.save()


def write_plain_paper(path: Path) -> Planted:
    """One column of plain prose: there is nothing for the checklist to list."""
    w = PaperWriter(path, "Plain Notes on Reading Papers", columns=1)
    w.heading("1", "Introduction")
    w.para(filler(8))
    w.para(filler(8, 3))
    return w.save()


# ----------------------------------------------------------------------------------------------
# Fixtures


@dataclass
class Synthetic:
    pdf: Path
    planted: Planted
    result: Any


@pytest.fixture(scope="session")
def full(tmp_path_factory: pytest.TempPathFactory) -> Synthetic:
    pdf = tmp_path_factory.mktemp("full") / "sgr.pdf"
    planted = write_full_paper(pdf)
    return Synthetic(pdf, planted, tool.extract(pdf))


@pytest.fixture(scope="session")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Synthetic:
    pdf = tmp_path_factory.mktemp("plain") / "plain.pdf"
    planted = write_plain_paper(pdf)
    return Synthetic(pdf, planted, tool.extract(pdf))


def precision_recall(found: set[Any], expected: set[Any]) -> tuple[float, float]:
    hits = len(found & expected)
    return hits / max(len(found), 1) if found else 1.0, hits / max(len(expected), 1)


def assert_exact(found: set[Any], expected: set[Any], what: str) -> None:
    precision, recall = precision_recall(found, expected)
    assert (precision, recall) == (1.0, 1.0), (
        f"{what}: precision {precision:.2f}, recall {recall:.2f}; "
        f"invented {sorted(found - expected, key=str)}, missed {sorted(expected - found, key=str)}"
    )


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# ----------------------------------------------------------------------------------------------
# Synthetic paper: every planted item, nothing else


def test_synthetic_pdf_has_several_two_column_pages(full: Synthetic) -> None:
    assert full.planted.pages >= 3
    assert full.result.page_count == full.planted.pages
    assert full.result.title == full.planted.title


def test_sections(full: Synthetic) -> None:
    found = {(s.number or "", s.title, s.page) for s in full.result.sections}
    assert_exact(found, set(full.planted.sections), "sections")


def test_equations_number_text_intro_page(full: Synthetic) -> None:
    found = {e.number: e for e in full.result.equations}
    assert_exact(set(found), set(full.planted.equations), "equation numbers")
    for number, (text, intro, page) in full.planted.equations.items():
        eq = found[number]
        assert norm(eq.text) == norm(text), number
        assert norm(eq.intro) == norm(intro), number
        assert eq.page == page, number


def test_algorithm_with_steps(full: Synthetic) -> None:
    [algo] = full.result.algorithms
    number, caption, steps, page = full.planted.algorithms[0]
    assert (algo.number, algo.caption, list(algo.steps), algo.page) == (
        number,
        caption,
        steps,
        page,
    )
    assert algo.inputs == ("Require: a sequence and the gate weights",)


def test_definitions_theorems_lemmas(full: Synthetic) -> None:
    found = {(s.kind, s.number, s.name, s.page) for s in full.result.statements}
    assert_exact(found, set(full.planted.statements), "statements")
    texts = {s.kind: s.text for s in full.result.statements}
    assert texts["Definition"] == (
        "A gate is sparse when at most a fixed share of its entries is nonzero at every step."
    )
    assert texts["Theorem"] == "The recurrence is stable for every gate value in the unit interval."


def test_hyperparameters(full: Synthetic) -> None:
    found = {(h.name, h.value) for h in full.result.hyperparameters}
    assert_exact(found, EXPECTED_HYPER, "hyperparameters")
    lr = next(h for h in full.result.hyperparameters if h.name == "learning rate")
    table_page = next(p for kind, _, p in full.planted.captions if kind == "Table")
    assert lr.page == table_page and lr.section == "§3 Experiments"


def test_captions(full: Synthetic) -> None:
    found = {(c.kind, c.number, c.page) for c in full.result.captions}
    assert_exact(found, set(full.planted.captions), "captions")
    texts = {c.kind: c.text for c in full.result.captions}
    assert texts == {
        "Table": "Training hyperparameters.",
        "Figure": "Overview of the sparse gated recurrence.",
    }


def test_appendix_references(full: Synthetic) -> None:
    assert_exact({r.label for r in full.result.appendix_refs}, {"A", "B.2"}, "appendix refs")


def test_named_methods_and_acronyms(full: Synthetic) -> None:
    found = {(m.name, m.acronym) for m in full.result.methods}
    expected = {("Sparse Gated Recurrence", "SGR"), ("Sparse Gating", ""), ("Chunked Readout", "")}
    assert_exact(found, expected, "methods")
    sgr = next(m for m in full.result.methods if m.acronym == "SGR")
    assert sgr.equations == ("1",)  # the equation of §2, whose heading names SGR
    assert {(a.acronym, a.expansion) for a in full.result.acronyms} == {
        ("SGR", "Sparse Gated Recurrence")
    }


def test_equation_bearing_parts(full: Synthetic) -> None:
    found = {(p.section, p.paragraph, p.equations) for p in full.result.parts}
    expected = {
        ("§2 SGR: The Proposed Model", "", ("1",)),
        ("§2.1 Gated Update", "", ("2",)),
        ("§2.2 Readout", "Chunked Readout", ("3",)),
        ("§2.2 Readout", "Training Objective", ("4",)),
    }
    assert_exact(found, expected, "parts")


def test_architecture_vocabulary(full: Synthetic) -> None:
    found = {v.term for v in full.result.vocabulary}
    assert_exact(found, {"layer", "attention", "head", "memory"}, "vocabulary")  # refs skipped


def test_plain_paper_invents_nothing(plain: Synthetic, tmp_path: Path) -> None:
    r = plain.result
    assert r.sections == (tool.Section("1", "Introduction", 1, 1),)
    for name in (
        "algorithms",
        "statements",
        "equations",
        "hyperparameters",
        "captions",
        "appendix_refs",
        "acronyms",
        "methods",
        "parts",
        "vocabulary",
    ):
        assert getattr(r, name) == (), name
    _, checklist = tool.write_outputs(r, tmp_path)
    text = checklist.read_text(encoding="utf-8")
    assert "- [ ]" not in text and "| Parameter |" not in text
    assert text.count("_None found in the extracted text._") == 9


def scan_hyperparameters(*texts: str) -> set[tuple[str, str]]:
    """Run the hyperparameter patterns over lines of running text on one page."""
    lines = [tool.Line(1, t, 10.0, 0.0, "", None, 700.0 - 12 * k) for k, t in enumerate(texts)]
    doc = parser.Parser([lines])
    doc.run()
    return {(h.name, h.value) for h in hyperparameters.find_hyperparameters(text_flow.Flow(doc))}


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (
            ["We use a sequence length of 2048 tokens and a batch size of 512 sequences."],
            {("sequence length", "2048"), ("batch size", "512")},
        ),
        (
            ["with a peak learning rate of 3 \u00d7 10\u22124 and 2,000 warmup steps over the run"],
            {("learning rate", "3 \u00d7 10\u22124"), ("warmup", "2,000")},
        ),
        (
            [
                "We apply dropout of 10% after every block of the network we trained for",
                "3 epochs.",
            ],
            {("dropout", "10%"), ("epochs", "3")},
        ),
        (["simple MLPs with LM ≥ 1 layers and residual connections as the memory"], set()),
        (["the adaptive learning rate of ηt+1, and we let learning rate ηt = 1 here"], set()),
        (["as shown in Figure 3B and Table 2, the gate is sparse in all settings"], set()),
        (["Dropout 0.1", "Warmup steps 2000"], {("dropout", "0.1"), ("warmup", "2000")}),
    ],
)
def test_hyperparameter_patterns(texts: list[str], expected: set[tuple[str, str]]) -> None:
    assert scan_hyperparameters(*texts) == expected


# ----------------------------------------------------------------------------------------------
# The written files


def test_checklist_lists_every_planted_item_with_its_page(full: Synthetic, tmp_path: Path) -> None:
    paper_md, checklist = tool.write_outputs(full.result, tmp_path)
    text = checklist.read_text(encoding="utf-8")
    assert text.startswith(f"# Implementation checklist: {full.planted.title}\n")
    assert "`sgr.pdf`" in text.splitlines()[3]
    sections = re.findall(r"^## (.+)$", text, re.MULTILINE)
    assert sections[:5] == [
        "Core algorithms",
        "Model components",
        "Definitions and theorems",
        "Key equations",
        "Hyperparameters",
    ]
    a_page = full.planted.algorithms[0][3]
    assert (
        f"- [ ] Algorithm 1: Sparse gated recurrence training — p. {a_page}, §2.1 Gated Update"
        in text
    )
    for n, step in enumerate(ALGO_STEPS, 1):
        assert f"  - [ ] step {n}: {step}\n" in text
    for number, (_, _, page) in full.planted.equations.items():
        assert re.search(rf"^- \[ \] Eq\. \({number}\) — p\. {page}, ", text, re.MULTILINE)
    rows = re.findall(r"^\| ([^|]+) \| ([^|]+) \| (p\. \d+, [^|]+) \|$", text, re.MULTILINE)
    assert {(n, v) for n, v, _ in rows if n != "Term"} == EXPECTED_HYPER
    assert "| learning rate | 3e-4 | p. " in text
    assert "- [ ] Sparse Gated Recurrence (SGR) — named on p. 1, Abstract — equations (1)" in text
    for kind, number, name, page in full.planted.statements:
        head = f"{kind} {number}" + (f" ({name})" if name else "")
        assert f"- [ ] {head} — p. {page}, " in text
    assert "- [ ] Table 1: Training hyperparameters." in text
    assert "- [ ] Appendix B.2 — cited on p." in text
    for line in text.splitlines():
        if line.startswith(("- [ ]", "  - [ ] step")):
            assert re.search(r"\bp\. \d+", line) or line.startswith("  - [ ] step"), line
    assert "7B" not in text and "optimizer" not in text  # only in the skipped references
    assert paper_md.is_file()


def test_paper_md_has_page_markers_headings_and_blocks(full: Synthetic, tmp_path: Path) -> None:
    paper_md, _ = tool.write_outputs(full.result, tmp_path)
    text = paper_md.read_text(encoding="utf-8")
    assert text.startswith(f"# {full.planted.title}\n")
    markers = [int(n) for n in re.findall(r"^<!-- page (\d+) -->$", text, re.MULTILINE)]
    assert markers == list(range(1, full.planted.pages + 1))
    for number, title, _ in full.planted.sections:
        level = "#" * (number.count(".") + 2) if number else "##"
        assert f"\n{level} {(number + ' ') if number else ''}{title}\n" in text
    order = [text.index(f"{n} {t}" if n else t) for n, t, _ in full.planted.sections]
    assert order == sorted(order), "two-column reading order is kept"
    assert "```text\ng_t = sigmoid(W_g x_t + b_g) (1)\n```" in text
    assert "**Algorithm 1 Sparse gated recurrence training**" in text
    flat = norm(text)
    assert "**Chunked Readout.** The output is read from the state with a linear map:" in flat
    assert "**Definition 1 (Sparse Gate).** A gate is sparse" in flat


def test_cli_writes_both_files_under_out(full: Synthetic, tmp_path: Path) -> None:
    proc = run_cli(str(full.pdf), "--out", str(tmp_path / "proj"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert files_under(tmp_path / "proj") == [
        tmp_path / "proj" / "docs" / "CHECKLIST.md",
        tmp_path / "proj" / "paper" / "paper.md",
    ]
    assert "4 numbered equations" in proc.stdout


def test_cli_default_out_is_the_project_root(full: Synthetic, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n", encoding="utf-8")
    (tmp_path / "src").mkdir()
    proc = run_cli(str(full.pdf), cwd=tmp_path / "src")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "paper" / "paper.md").is_file()
    assert (tmp_path / "docs" / "CHECKLIST.md").is_file()


def test_writes_are_atomic(
    full: Synthetic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    (out / "paper").mkdir(parents=True)
    old_paper = out / "paper" / "paper.md"
    old_paper.write_text("old paper\n", encoding="utf-8")
    real_replace = os.replace
    calls: list[str] = []

    def failing_replace(src: Any, dst: Any) -> None:
        calls.append(str(dst))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(outputs.os, "replace", failing_replace)
    with pytest.raises(tool.ExtractError, match="cannot write the outputs"):
        tool.write_outputs(full.result, out)
    assert files_under(out) == [old_paper]  # no temp files, no half-written docs/
    assert old_paper.read_text(encoding="utf-8") == "old paper\n"
    assert not (out / "docs").exists()


def test_ticked_generated_checklist_is_kept_without_force(full: Synthetic, tmp_path: Path) -> None:
    _, checklist = tool.write_outputs(full.result, tmp_path)
    ticked = checklist.read_text(encoding="utf-8").replace("- [ ] Eq. (1)", "- [x] Eq. (1)")
    checklist.write_text(ticked, encoding="utf-8")
    proc = run_cli(str(full.pdf), "--out", str(tmp_path))
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert checklist.read_text(encoding="utf-8") == ticked
    assert run_cli(str(full.pdf), "--out", str(tmp_path), "--force").returncode == 0
    assert "- [x]" not in checklist.read_text(encoding="utf-8")


def test_template_checklist_without_marker_is_replaced(full: Synthetic, tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "CHECKLIST.md").write_text("# Sample\n- [x] done\n", encoding="utf-8")
    tool.write_outputs(full.result, tmp_path)
    assert "Sparse Gated" in (tmp_path / "docs" / "CHECKLIST.md").read_text(encoding="utf-8")


def test_tool_is_not_a_jinja_template() -> None:
    for path in [TOOL_PATH, *sorted((TOOLS / "paper_extractor").glob("*.py"))]:
        source = path.read_text(encoding="utf-8")
        assert "{{" not in source and "{%" not in source and "{#" not in source, path


def test_the_package_runs_as_a_module_like_the_entry_point(full: Synthetic, tmp_path: Path) -> None:
    args = [str(full.pdf), "--out", str(tmp_path / "module")]
    module = subprocess.run(
        [sys.executable, "-m", "paper_extractor", *args],
        capture_output=True,
        text=True,
        cwd=TOOLS,
        check=False,
        timeout=60,
    )
    script = run_cli(str(full.pdf), "--out", str(tmp_path / "script"))
    assert module.returncode == script.returncode == 0, module.stderr
    for rel in ("paper/paper.md", "docs/CHECKLIST.md"):
        assert (tmp_path / "module" / rel).read_bytes() == (tmp_path / "script" / rel).read_bytes()


# ----------------------------------------------------------------------------------------------
# Bad input: one line on stderr, exit 2, no output files


def _encrypted(path: Path) -> None:
    c = canvas.Canvas(str(path), encrypt="pw")
    c.drawString(72, 720, "A secret paper about gated recurrence.")
    c.showPage()
    c.save()


def _scanned(path: Path, stamp: str = "") -> None:
    """Two pages that are images only (optionally with a scanner's stamp as the only text)."""
    from PIL import Image
    from reportlab.lib.utils import ImageReader

    image = Image.new("RGB", (400, 200), "white")
    for x in range(40, 360):
        image.putpixel((x, 100), (0, 0, 0))
    c = canvas.Canvas(str(path))
    for _ in range(2):
        c.drawImage(ImageReader(image), 72, 500, width=400, height=200)
        if stamp:
            c.drawString(72, 40, stamp)
        c.showPage()
    c.save()


def _scanned_with_stamp(path: Path) -> None:
    _scanned(path, stamp="Scanned with PhoneScan")


def _blank(path: Path) -> None:
    c = canvas.Canvas(str(path))
    c.showPage()
    c.save()


def _zero_pages(path: Path) -> None:
    import pypdfium2

    pypdfium2.PdfDocument.new().save(str(path))


def _not_pdf(path: Path) -> None:
    path.write_text("This is a text file named like a PDF.\n", encoding="utf-8")


def _damaged(path: Path) -> None:
    path.write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 50)


BAD_INPUTS: dict[str, tuple[Callable[[Path], None] | None, str]] = {
    "missing": (None, "no such file"),
    "not-a-pdf": (_not_pdf, "not a PDF file"),
    "damaged": (_damaged, "not a readable PDF"),
    "encrypted": (_encrypted, "encrypted"),
    "scanned": (_scanned, "no extractable text"),
    "scanned-with-stamp": (_scanned_with_stamp, "no extractable text"),
    "blank-page": (_blank, "the PDF is empty"),
    "zero-pages": (_zero_pages, "the PDF is empty (it has no pages)"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_one_message_exit_2_and_no_files(case: str, tmp_path: Path) -> None:
    make, message = BAD_INPUTS[case]
    pdf = tmp_path / "in" / f"{case}.pdf"
    pdf.parent.mkdir()
    if make is not None:
        make(pdf)
    out = tmp_path / "out"
    proc = run_cli(str(pdf), "--out", str(out))
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("extract_paper: error: ") and message in lines[0], lines[0]
    if case.startswith("scanned"):
        assert "OCR" in lines[0] and "ocrmypdf" in lines[0]
    assert not out.exists()
    with pytest.raises(tool.ExtractError):
        tool.extract(pdf)


# ----------------------------------------------------------------------------------------------
# The real paper against the hand-made ground truth


@pytest.fixture(scope="module")
def real() -> Any:
    if not REAL_PDF.is_file():
        pytest.skip(f"real paper not available: {REAL_PDF} (../shared beside the checkout)")
    return tool.extract(REAL_PDF)


@pytest.fixture(scope="module")
def truth() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(TRUTH.read_text(encoding="utf-8"))
    return data


def _method_keys(method: dict[str, Any]) -> set[str]:
    return {method["name"].lower(), *(a.lower() for a in method["aliases"])}


def _real_scores(r: Any, t: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    """category -> (true positives, extracted, in the ground truth)."""

    def score(found: set[Any], expected: set[Any]) -> tuple[int, int, int]:
        return len(found & expected), len(found), len(expected)

    methods_found = 0
    for m in r.methods:
        names = {m.name.lower(), m.acronym.lower()} - {""}
        methods_found += any(names & _method_keys(tm) for tm in t["methods"])
    return {
        "sections": score(
            {(s.number, s.title, s.page) for s in r.sections},
            {(s["number"], s["title"], s["page"]) for s in t["sections"]},
        ),
        "equations": score(
            {(e.number, e.page) for e in r.equations},
            {(e["number"], e["page"]) for e in t["equations"]},
        ),
        "statements": score(
            {(s.kind, s.number, s.name, s.page) for s in r.statements},
            {(s["kind"], s["number"], s["name"], s["page"]) for s in t["statements"]},
        ),
        "algorithms": score(
            {a.number for a in r.algorithms}, {a["number"] for a in t["algorithms"]}
        ),
        "methods": (methods_found, len(r.methods), len(t["methods"])),
        "hyperparameters": score(
            {(h.name, h.value) for h in r.hyperparameters},
            {(h["name"], h["value"]) for h in t["hyperparameters"]},
        ),
        "captions": score(
            {(c.kind, c.number, c.page) for c in r.captions},
            {(c["kind"], c["number"], c["page"]) for c in t["captions"]},
        ),
        "appendix refs": score({a.label for a in r.appendix_refs}, set(t["appendix_refs"])),
    }


def test_real_paper_against_ground_truth(real: Any, truth: dict[str, Any]) -> None:
    scores = _real_scores(real, truth)
    print("\nreal paper vs hand-made truth   precision  recall  (tp/extracted/truth)")
    for name, (tp, found, expected) in scores.items():
        p = tp / found if found else 1.0
        rc = tp / expected if expected else 1.0
        print(f"  {name:<16} {p:>14.3f} {rc:>7.3f}  ({tp}/{found}/{expected})")
    tp = sum(s[0] for s in scores.values())
    found = sum(s[1] for s in scores.values())
    expected = sum(s[2] for s in scores.values())
    print(f"  {'overall':<16} {tp / found:>14.3f} {tp / expected:>7.3f}  ({tp}/{found}/{expected})")
    eq_tp, _, eq_total = scores["equations"]
    assert eq_tp / eq_total >= 0.9, "recall of numbered equations"
    assert tp / found >= 0.9, "overall precision"


def test_real_paper_names_only_what_the_pdf_contains(
    real: Any, truth: dict[str, Any], tmp_path: Path
) -> None:
    absent = truth["not_in_this_pdf"]["names"]
    _, checklist = tool.write_outputs(real, tmp_path)
    text = checklist.read_text(encoding="utf-8")
    named = {m.name for m in real.methods} | {m.acronym for m in real.methods}
    for name in absent:
        assert name not in named
        assert not re.search(rf"\b{re.escape(name)}\b", text), name
    sizes = [h.value for h in real.hyperparameters if h.name == "model size (parameters)"]
    assert set(sizes) == {"340M", "760M", "1.3B"}


def test_real_paper_cli(tmp_path: Path) -> None:
    if not REAL_PDF.is_file():
        pytest.skip(f"real paper not available: {REAL_PDF} (../shared beside the checkout)")
    proc = run_cli(str(REAL_PDF), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "paper" / "paper.md").read_text(encoding="utf-8")
    assert text.startswith("# Nested Learning: The Illusion of Deep Learning Architectures\n")
    assert text.count("<!-- page ") == 23
    assert "\n### 2.3 Optimizers as Learning Modules\n" in text
    assert "simultaneously designing" in text  # the line-break hyphen is repaired
