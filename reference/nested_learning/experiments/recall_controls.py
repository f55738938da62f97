"""The controls of experiment 1: memories whose recall error on the stream is known in advance.

Positive: the least-squares fit of each phase (a batch oracle) recalls the map, so the stream is
learnable and the error metric can reach its floor. Negative: a never-written memory, DGD fed
values shuffled against their keys, and Hebbian GD after the switch cannot recall, so a low error
cannot be reached without storing the current key-value pairing. Thresholds follow from the
metric's scale (0 = perfect recall, 1 = the zero memory), not from observed numbers.
"""

from __future__ import annotations

from ledger import Control
from recall_rules import GD
from recall_stream import StreamConfig, least_squares_floor

LSQ = "least squares (oracle)"  # positive control: batch fit of each phase
ZERO = "never-written memory"  # negative control: W = 0
SHUFFLED = "DGD | values shuffled"  # negative control: pairing destroyed
NO_RECALL = 0.5  # half-way between the zero memory (1) and perfect recall (0)
RECALLED = 0.1  # ≥ 90 % of the target energy recalled


def controls(cfg: StreamConfig) -> list[Control]:
    """Positive: the stream is learnable (least squares). Negative: a memory that stores nothing,
    one that cannot pair values with keys, and one that cannot overwrite all fail."""
    floor = least_squares_floor(cfg, cfg.switch)
    ls_why = (
        f"the batch least-squares fit of the phase's {cfg.switch} tokens (an oracle) has expected"
        f" error σ_v²d²/(n E‖k‖²) ≈ {floor:.3f}; reaching {RECALLED} (90 % of the target energy)"
        " shows the map is recoverable by a linear memory from these tokens"
    )
    old_share = 1 / (1 + cfg.adapt_window)
    return [
        Control(
            "least_squares_recalls_phase_1",
            "positive",
            "pre_switch_error",
            LSQ,
            RECALLED,
            higher_is_better=False,
            why=ls_why + " (first map)",
        ),
        Control(
            "least_squares_recalls_phase_2",
            "positive",
            "final_error",
            LSQ,
            RECALLED,
            higher_is_better=False,
            why=ls_why + " (map after the switch)",
        ),
        Control(
            "never_written_memory",
            "negative",
            "final_error",
            ZERO,
            NO_RECALL,
            higher_is_better=False,
            why="W = 0 scores exactly 1 by the metric's normalisation: a memory that stores"
            f" nothing must not reach {NO_RECALL}, half-way to perfect recall",
        ),
        Control(
            "shuffled_values_not_recalled",
            "negative",
            "final_error",
            SHUFFLED,
            NO_RECALL,
            higher_is_better=False,
            why="DGD at its tuned η on the same tokens with the values permuted within each"
            " phase: W is built from values independent of their keys, so E⟨Wk, Ak⟩ ≈ 0 and"
            " the error is ≈ 1 + ‖Wk‖²/‖Ak‖² ≥ 1; reaching"
            f" {NO_RECALL} would mean the metric rewards something other than recall",
        ),
        Control(
            "hebbian_cannot_overwrite",
            "negative",
            "after_switch_error",
            GD,
            NO_RECALL,
            higher_is_better=False,
            why="GD (Hebbian) only adds outer products: in the window after the switch ≥"
            f" {old_share:.0%} of the tokens it stored follow the old map, whose error"
            " against an independent new map is ≈ 2, so no η brings it to"
            f" {NO_RECALL}; if one did, the stream would not test overwriting",
        ),
    ]
