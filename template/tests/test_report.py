"""experiments/runner.py and experiments/report.py on hand-made per-seed numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from matplotlib.figure import Figure

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

import report
import runner
from ledger import Check, Control


def make_payload(
    name: str, cand: list[float], base: list[float], controls: tuple[Control, ...] = ()
) -> dict[str, Any]:
    args = runner.RunArgs(quick=True, seeds=list(range(len(cand))), out=Path("."), progress=False)
    return runner.build_payload(
        name=name,
        title=f"title of {name}",
        claim=f"claim of {name}",
        paper_ref="Sec. 0",
        args=args,
        command=f"uv run python experiments/{name}.py --quick",
        config={"d": 3},
        per_seed={"err": {"new": cand, "old": base}},
        checks=[Check("c", "new beats old", "err", "new", "old")],
        controls=controls,
        tables=[runner.table("Extra rows", ["model", "err"], [["new", 0.5], ["old", None]])],
        wall_time_s=1.0,
        notes=["a note"],
    )


def write_fake_results(folder: Path) -> None:
    runner.write_result("exp_a", make_payload("exp_a", [0.1, 0.2], [1.0, 1.0]), folder)
    runner.write_result("exp_b", make_payload("exp_b", [2.0, 2.0], [1.0, 1.0]), folder)


def test_the_payload_records_the_run_and_computes_the_verdict() -> None:
    good = make_payload("e", [0.1, 0.1, 0.1], [1.0, 1.0, 1.0])
    assert good["verdict"] == "reproduced" and good["seeds"] == [0, 1, 2]
    assert good["per_seed"]["err"]["new"] == [0.1, 0.1, 0.1] and good["config"] == {"d": 3}
    assert good["torch_version"] and good["python_version"] and good["git_commit"]
    runner.validate_payload(good)
    with pytest.raises(ValueError, match="verdict"):
        runner.validate_payload({**good, "verdict": "not reproduced"})
    with pytest.raises(ValueError, match="missing"):
        runner.validate_payload({k: v for k, v in good.items() if k != "command"})
    with pytest.raises(ValueError, match="would overwrite"):
        runner.build_payload(**{**payload_args(), "verdict": "reproduced"})


def payload_args() -> dict[str, Any]:
    args = runner.RunArgs(quick=True, seeds=[0], out=Path("."), progress=False)
    return {
        "name": "e",
        "title": "t",
        "claim": "c",
        "paper_ref": "p",
        "args": args,
        "command": "x",
        "config": {},
        "per_seed": {"err": {"new": [0.1], "old": [1.0]}},
        "checks": [Check("c", "new beats old", "err", "new", "old")],
        "wall_time_s": 1.0,
    }


def test_bad_command_lines_and_tables_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        runner.parse_args("x", ["--seeds", "0"])
    assert exit_.value.code == 2 and "--seeds must be >= 1" in capsys.readouterr().err
    assert runner.parse_args("x", ["--seed", "3", "--seeds", "2"]).seeds == [3, 4]
    assert runner.parse_args("x", ["--quick"], quick_seeds=2).seeds == [0, 1]
    with pytest.raises(ValueError, match="1 cells, not 2"):
        runner.table("t", ["a", "b"], [[1]])


def test_a_failed_positive_control_reaches_the_readme_before_the_checks(tmp_path: Path) -> None:
    oracle = Control("oracle", "positive", "err", "old", 0.5, higher_is_better=False)
    payload = make_payload("exp_c", [0.1, 0.1], [1.0, 1.0], (oracle,))  # old: 1.0 > 0.5
    assert payload["verdict"] == "inconclusive (positive control failed: oracle)"
    assert payload["checks"][0]["raw_verdict"] == "reproduced"
    runner.write_result("exp_c", payload, tmp_path)
    assert report.main(["--results", str(tmp_path)]) == 0
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert text.index("| `oracle` | positive |") < text.index("| `c` |")  # controls first
    assert "inconclusive (positive control failed: oracle)" in text
    assert "(rule alone: reproduced)" in text


def test_readme_lists_every_result_and_is_byte_identical_on_a_rerun(tmp_path: Path) -> None:
    write_fake_results(tmp_path)
    assert report.main(["--results", str(tmp_path)]) == 0
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "claim of exp_a" in text and "claim of exp_b" in text
    assert "**reproduced**" in text and "**not reproduced**" in text
    assert "![exp_a](exp_a.png)" in text and "uv run python experiments/exp_b.py --quick" in text
    assert "0.15 ± 0.07071" in text  # exp_a's candidate: mean ± sample std of [0.1, 0.2]
    assert "### Extra rows\n\n| model | err |\n|---|---|\n| new | 0.5 |\n| old | n/a |" in text
    assert report.main(["--results", str(tmp_path)]) == 0
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == text


def test_the_printed_rules_are_the_rules_applied(tmp_path: Path) -> None:
    """A result whose stored rule or verdict was edited is refused, with one message."""
    write_fake_results(tmp_path)
    path = tmp_path / "exp_a.json"
    payload = json.loads(path.read_text(encoding="utf-8"))
    rules = [c["rule"] for c in payload["checks"]]
    assert all(f"- `c`: {r}" in report.render(tmp_path) for r in rules)
    payload["checks"][0]["rule"] = "reproduced iff I like it"
    path.write_text(json.dumps(payload), encoding="utf-8")
    assert report.main(["--results", str(tmp_path)]) == 1
    payload["checks"][0]["rule"] = rules[0]
    payload["verdict"] = "not reproduced"
    path.write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(report.ReportError, match=r"exp_a\.json: ValueError: overall verdict"):
        report.render(tmp_path)


def test_check_mode_flags_a_stale_or_missing_readme(tmp_path: Path) -> None:
    write_fake_results(tmp_path)
    assert report.main(["--results", str(tmp_path), "--check"]) == 1  # missing
    assert report.main(["--results", str(tmp_path)]) == 0
    assert report.main(["--results", str(tmp_path), "--check"]) == 0
    runner.write_result("exp_b", make_payload("exp_b", [0.5, 0.5], [1.0, 1.0]), tmp_path)
    assert report.main(["--results", str(tmp_path), "--check"]) == 1  # stale
    assert report.main(["--results", str(tmp_path / "nope")]) == 1  # no such folder


def test_report_extras_set_the_heading_and_add_tables(tmp_path: Path) -> None:
    write_fake_results(tmp_path)
    extras = tmp_path / "report_extras.py"
    extras.write_text(
        'TITLE = "My results"\nINTRO = "CPU-sized."\n\n\n'
        "def tables(payload):\n"
        '    return [{"title": "", "columns": ["x"], "rows": [[payload["experiment"]]]}]\n'
    )
    assert report.main(["--results", str(tmp_path), "--extras", str(extras)]) == 0
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert text.startswith("# My results\n\nGenerated by `experiments/report.py`")
    assert "printed next to it. CPU-sized.\n" in text and "| x |\n|---|\n| exp_b |" in text


def test_a_result_judged_by_an_older_rule_is_refused_until_rejudged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_fake_results(tmp_path)
    path = tmp_path / "exp_a.json"
    old = json.loads(path.read_text(encoding="utf-8"))
    numbers = old["per_seed"]
    path.write_text(json.dumps({**old, "control_rule": "an older rule"}), encoding="utf-8")
    assert report.main(["--results", str(tmp_path)]) == 1
    assert "--rejudge" in capsys.readouterr().err
    assert runner.main(["--rejudge", str(path)]) == 0
    new = json.loads(path.read_text(encoding="utf-8"))
    assert new["control_rule"] == old["control_rule"] and new["per_seed"] == numbers
    assert report.main(["--results", str(tmp_path)]) == 0
    with pytest.raises(SystemExit) as exit_info:
        runner.main(["--rejudge", str(tmp_path / "missing.json")])
    assert exit_info.value.code == 2 and "no such result file" in capsys.readouterr().err


def test_the_timer_records_cpu_seconds() -> None:
    payload = make_payload("e", [0.1], [1.0])
    assert payload["cpu_time_s"] is None  # built by hand, not by finish()
    timer = runner.Timer()
    sum(i * i for i in range(200_000))
    assert 0 < timer.cpu() <= timer.elapsed() + 0.05


def test_the_commit_is_the_one_read_when_the_run_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The code is imported at the start: a commit made while the run trains is not its code."""
    commits = iter(["started-at", "moved-to"])
    monkeypatch.setattr(runner, "git_commit", lambda root=runner.ROOT: next(commits))
    timer = runner.Timer()
    assert runner.git_commit() == "moved-to"  # HEAD moves while the experiment runs
    args = runner.RunArgs(quick=True, seeds=[0], out=tmp_path, progress=False)
    own = ("args", "command", "name", "wall_time_s")
    fields = {k: v for k, v in payload_args().items() if k not in own}
    runner.finish("exp_c", Figure(), args=args, argv=["--quick"], timer=timer, **fields)
    payload = json.loads((tmp_path / "exp_c.json").read_text(encoding="utf-8"))
    assert payload["git_commit"] == "started-at"


def test_dirty_means_changed_code_not_rewritten_results(tmp_path: Path) -> None:
    def git(*cmd: str) -> None:
        subprocess.run(["git", *cmd], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "exp.json").write_text("{}")
    (tmp_path / "model.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    clean = runner.git_commit(tmp_path)
    assert len(clean) == 40 and not clean.endswith("+dirty")
    (tmp_path / "results" / "exp.json").write_text('{"rerun": true}')  # another experiment
    assert runner.git_commit(tmp_path) == clean
    (tmp_path / "model.py").write_text("x = 2\n")
    assert runner.git_commit(tmp_path) == clean + "+dirty"


def test_the_commit_is_read_before_any_output_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rewriting a tracked PNG first would mark every committed result "+dirty"."""
    outputs_at_read: list[list[str]] = []

    def fake_commit(root: Path = runner.ROOT) -> str:
        outputs_at_read.append(sorted(p.name for p in tmp_path.iterdir()))
        return "0123abc"

    monkeypatch.setattr(runner, "git_commit", fake_commit)
    args = runner.RunArgs(quick=True, seeds=[0], out=tmp_path, progress=False)
    own = ("args", "command", "name", "wall_time_s")  # finish() supplies these
    fields = {k: v for k, v in payload_args().items() if k not in own}
    runner.finish("exp_c", Figure(), args=args, argv=["--quick"], timer=runner.Timer(), **fields)
    payload = json.loads((tmp_path / "exp_c.json").read_text(encoding="utf-8"))
    assert outputs_at_read == [[]] and payload["git_commit"] == "0123abc"
