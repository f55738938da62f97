"""The example experiment (experiments/exp_attention_recall.py) end to end, at its --quick size.

Yours, like the experiment: when you replace it with your paper's claims, keep a quick run of each
experiment here (it writes a valid result, and the report lists it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

import report
import runner
from ledger import kind

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"

NAME = "exp_attention_recall"


def test_the_example_runs_quick_and_the_report_lists_it(tmp_path: Path) -> None:
    cmd = [sys.executable, str(EXPERIMENTS / f"{NAME}.py"), "--quick", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
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


def test_a_bad_command_line_is_one_message_and_exit_2() -> None:
    cmd = [sys.executable, str(EXPERIMENTS / f"{NAME}.py"), "--seeds", "0"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--seeds must be >= 1" in proc.stderr
    assert "Traceback" not in proc.stderr
