"""The example experiment (experiments/exp_attention_recall.py) end to end, at its --quick size.

Yours, like the experiment: when you replace it with your paper's claims, keep a quick run of each
experiment here (it writes a valid result, and the report lists it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

import exp_attention_recall as experiment
import report
import runner
from ledger import kind

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"

NAME = "exp_attention_recall"


@pytest.fixture
def run_in_process() -> Iterator[None]:
    """The experiment runs in this process (no second torch import); its thread count is undone."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("run_in_process")
def test_the_example_runs_quick_and_the_report_lists_it(tmp_path: Path) -> None:
    assert experiment.main(["--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    payload = json.loads((tmp_path / f"{NAME}.json").read_text(encoding="utf-8"))
    runner.validate_payload(payload)  # keys, per-seed lengths, verdicts follow from the numbers
    assert payload["size"] == "quick" and len(payload["seeds"]) == 2 and kind(payload["verdict"])
    accuracy = payload["per_seed"]["accuracy"]
    assert set(accuracy) == {"self-attention", "bag of tokens", "lookup rule"}
    assert accuracy["lookup rule"] == [1.0, 1.0]  # the positive control is exact
    assert [c["name"] for c in payload["controls"]] == ["lookup", "bag"]
    assert payload["git_commit"] and payload["wall_time_s"] > 0
    assert (tmp_path / f"{NAME}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.main(["--results", str(tmp_path)]) == 0
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert f"## {NAME}: " in text and f"![{NAME}]({NAME}.png)" in text
    assert text.index("| `lookup` | positive |") < text.index("| `attention_beats_bag` |")
    assert report.main(["--results", str(tmp_path), "--check"]) == 0


def test_a_bad_command_line_is_one_message_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        experiment.main(["--seeds", "0", "--out", str(tmp_path)])
    assert stop.value.code == 2 and "--seeds must be >= 1" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing half-written


@pytest.mark.slow
def test_the_script_runs_as_a_command(tmp_path: Path) -> None:
    """The same quick run, as a user types it: a fresh interpreter, output files, exit 0."""
    cmd = [sys.executable, str(EXPERIMENTS / f"{NAME}.py"), "--quick", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    runner.validate_payload(json.loads((tmp_path / f"{NAME}.json").read_text(encoding="utf-8")))
    assert (tmp_path / f"{NAME}.png").is_file()
