"""Experiments 2-4 at ``--quick`` size (a subprocess each, into tmp_path): JSON fields and PNG."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
sys.path.insert(0, str(EXPERIMENTS))  # the scripts import `common` as a sibling module

import exp4_char_lm as exp4  # noqa: E402
import runner  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_quick(script: str, out: Path, *extra: str) -> dict[str, Any]:
    cmd = [sys.executable, str(EXPERIMENTS / script), "--quick", "--out", str(out)]
    proc = subprocess.run(
        [*cmd, "--no-progress", *extra], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    name = script.removesuffix(".py")
    payload: dict[str, Any] = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
    assert (out / f"{name}.png").read_bytes()[:8] == PNG_MAGIC
    runner.validate_payload(payload)  # verdicts follow from the per-seed numbers
    assert payload["experiment"] == name and payload["size"] == "quick"
    assert payload["command"].startswith(f"uv run python experiments/{name}.py --quick")
    assert "Table" in payload["paper_ref"] and payload["claim"] and payload["wall_time_s"] > 0
    return payload


@pytest.mark.slow
def test_exp2_formal_languages_quick(tmp_path: Path) -> None:
    p = run_quick("exp2_formal_languages.py", tmp_path)
    langs = ("parity", "aa_star", "abab_star", "anbn", "anbncn", "shuffle2")
    models = {"lstm", "static hope", "hope", "hope (negative eigenvalues)", "titans", "transformer"}
    twins = {"hope (titans off)", "hope (cms off)", "hope (all off)", "titans (titans off)"}
    for b in ("bin0", "bin1"):
        for lang in langs:
            accs = p["per_seed"][f"{b} {lang}"]
            assert models | twins <= set(accs)
            assert all(0.0 <= a <= 1.0 for v in accs.values() for a in v)
            assert all(
                d in (0.0, 1.0) for v in p["per_seed"][f"diverged {lang}"].values() for d in v
            )
    params = p["extra"]["parameters"]
    memory_models = [m for m in params if m != "lstm"]
    assert all(abs(params[m] - params["hope"]) <= 0.1 * params["hope"] for m in memory_models)
    assert p["config"]["model_kwargs"]["hope"]["cms_inner_lr"] == 0.0  # no CMS on a foreign loss
    kw = p["config"]["model_kwargs"]
    assert kw["hope"]["eta_scale"] == kw["titans"]["eta_scale"]
    assert kw["hope"]["titans_chunk_memory"] == kw["titans"]["chunk_size"] == 1
    assert p["extra"]["paper_table5_percent_bin0_bin1"]["Hope"]["parity"] == [100, 100]
    assert {c["name"] for c in p["checks"]} >= {"hope_beats_transformer_bin1_regular"}
    roles = {c["name"]: c["role"] for c in p["controls"]}
    assert roles == {
        "lstm_parity": "positive",
        "lstm_aa_star": "positive",
        "lstm_abab_star": "positive",
        "static_hope_regular": "negative",
    }
    rows = {(r["model"], r["metric"]): r for r in p["memory_ablation"]}
    assert rows[("titans", "bin1 mean regular")]["cms_off"] is None
    assert rows[("hope", "bin1 mean regular")]["all_off"] is not None
    per_length = p["extra"]["accuracy_per_length"]["hope parity"]
    assert set(map(int, per_length)) <= set(range(2, p["config"]["bin1_max"] + 1))
    bound = p["extra"]["gate_statistics"]["hope"]["eta_bound"]  # the largest over runs
    assert bound == kw["hope"]["eta_scale"]


@pytest.mark.slow
def test_exp3_mqar_quick(tmp_path: Path) -> None:
    p = run_quick("exp3_mqar.py", tmp_path)
    pairs = p["config"]["pairs"]
    for n in pairs:
        assert {"hope", "titans", "transformer", "static hope", "hope (all off)"} <= set(
            p["per_seed"][f"acc N={n}"]
        )
    assert set(p["per_seed"]["diverged"]["hope"]) <= {0.0, 1.0}
    params = p["extra"]["parameters"]
    assert all(abs(params[m] - params["hope"]) <= 0.1 * params["hope"] for m in params)
    mean = p["per_seed"]["acc mean"]["transformer"][0]
    accs = [p["per_seed"][f"acc N={n}"]["transformer"][0] for n in pairs]
    assert mean == pytest.approx(sum(accs) / len(accs))
    kw = p["config"]["model_kwargs"]
    assert kw["hope"]["eta_scale"] == kw["titans"]["eta_scale"]
    assert {c["role"] for c in p["controls"]} == {"positive", "negative"}
    assert [r["model"] for r in p["memory_ablation"]][:2] == ["hope", "titans"]


def test_exp3_every_query_is_read_after_its_pairs_write() -> None:
    """M_mem's chunk closes at a multiple of chunk_memory: pair i's last token (2i + 1) must be
    written before the first query at position 2N, for every evaluated N."""
    import exp3_mqar

    s = exp3_mqar.Setup()
    for n in s.pairs:
        last_pair_token = 2 * n - 1
        closes = -(-(last_pair_token + 1) // s.chunk_memory) * s.chunk_memory
        assert closes <= 2 * n, (n, s.chunk_memory)
    assert exp3_mqar.stage_pairs(s, 0) == (2,) and exp3_mqar.stage_pairs(s, s.steps - 1) == (
        2,
        4,
        8,
    )


@pytest.mark.slow
def test_exp4_char_lm_quick_with_a_data_file(tmp_path: Path) -> None:
    text = tmp_path / "corpus.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 300, encoding="utf-8")
    p = run_quick("exp4_char_lm.py", tmp_path, "--data", str(text))
    variants = {"hope", "w/o DGD", "w/o CMS", "w/o self-modification", "w/o momentum"}
    variants |= {"w/o weight decay", "w/o inner-projection k", "w/o inner-projection v"}
    variants |= {"static hope", "static hope (no conv)", "no context"}
    assert variants | {"transformer", "hope (all off)"} <= set(p["per_seed"]["val bpc"])
    for v, loss in p["per_seed"]["val loss"].items():
        bpc = p["per_seed"]["val bpc"][v]
        assert bpc[0] == pytest.approx(loss[0] / 0.6931471805599453)
    params = p["extra"]["parameters"]
    assert abs(params["transformer"] - params["hope"]) <= 0.1 * params["hope"]
    assert p["config"]["data"] == str(text)


def test_exp4_ablations_keep_hopes_parameters_and_switch_one_thing() -> None:
    s = exp4.QUICK
    torch.manual_seed(0)
    hope = exp4.build_variant(exp4.HOPE, s).state_dict()
    for variant in (exp4.NO_INNER_K, exp4.NO_INNER_V, exp4.NO_WD, exp4.NO_DGD):
        torch.manual_seed(0)
        model = exp4.build_variant(variant, s)
        # the same initial weights as Hope: only the switched behaviour differs
        assert all(torch.equal(v, hope[k]) for k, v in model.state_dict().items())
        assert set(model.state_dict()) == set(hope)
        mixers = [block.titans.config for block in model.blocks]
        if variant == exp4.NO_WD:
            assert all(not m.retention for m in mixers)
        elif variant == exp4.NO_DGD:
            assert all(not m.dgd for m in mixers)
        else:
            assert all(
                m.static == ({exp4.NO_INNER_K: ("k",), exp4.NO_INNER_V: ("v",)}[variant])
                for m in mixers
            )
