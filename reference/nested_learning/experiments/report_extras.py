"""What ``experiments/report.py`` adds to ``results/README.md`` for this paper: its title, a
note on scale, and each result's memory-use tables (``memory_ablation`` rows and the trained gate
statistics, written by ``experiments/common.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner import table

TITLE = "Results of the small-scale experiments"
INTRO = (
    "These are CPU-sized tests of the paper's *mechanisms* (spec §12), not of its headline"
    " numbers. Every trained HOPE or Titans number has its twin with the in-context memories"
    " switched off at test time (the memory-use tables)."
)
SETTINGS = ("with_memory", "titans_off", "cms_off", "all_off")


def tables(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The memory-use table (the same trained weights, memories switched off at test time) and
    the trained gates, when the result has them."""
    out = []
    rows = payload.get("memory_ablation") or []
    if rows:
        out.append(
            table(
                "Memory use (test time: the same trained weights, memories switched off)",
                [
                    "model",
                    "metric",
                    "with memory",
                    "Titans writes off",
                    "CMS updates off",
                    "both off",
                ],
                [[r["model"], r["metric"], *(r[k] for k in SETTINGS)] for r in rows],
            )
        )
    gates = payload.get("extra", {}).get("gate_statistics") or {}
    if gates:
        out.append(
            table(
                "Trained write gates",
                ["model", "η mean", "η max", "η bound", "α mean", "non-finite tokens"],
                [
                    [
                        m,
                        *(g.get(k) for k in ("eta_mean", "eta_max", "eta_bound", "alpha_mean")),
                        g.get("nonfinite"),
                    ]
                    for m, g in gates.items()
                ],
            )
        )
    return out
