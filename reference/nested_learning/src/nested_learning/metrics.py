"""Metrics as a CSV file (one row per logged step) and a loss-curve PNG drawn from it."""

from __future__ import annotations

import csv
from pathlib import Path

FIELDS = ("step", "split", "loss", "lr", "tokens_per_s")


class MetricsLogger:
    """Append rows to ``metrics.csv``; on resume the rows after the resumed step are dropped."""

    def __init__(self, path: str | Path, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = read_metrics(self.path) if resume_step is not None and self.path.exists() else []
        kept = [r for r in rows if resume_step is not None and int(r["step"]) <= resume_step]
        with self.path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(kept)

    def log(self, step: int, split: str, loss: float, lr: float, tokens_per_s: float = 0.0) -> None:
        row = {"step": step, "split": split, "loss": f"{loss:.6f}", "lr": f"{lr:.6g}"}
        row["tokens_per_s"] = f"{tokens_per_s:.1f}"
        with self.path.open("a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=FIELDS).writerow(row)


def read_metrics(path: str | Path) -> list[dict[str, str]]:
    """Rows of a metrics CSV as dicts of strings."""
    with Path(path).open(newline="") as handle:
        return list(csv.DictReader(handle))


def plot_loss_curve(csv_path: str | Path, png_path: str | Path) -> Path:
    """Draw train and validation loss against step from ``csv_path`` into ``png_path``."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display needed
    import matplotlib.pyplot as plt

    rows = read_metrics(csv_path)
    fig, ax = plt.subplots(figsize=(6, 4))
    for split in ("train", "val"):
        points = [(int(r["step"]), float(r["loss"])) for r in rows if r["split"] == split]
        if points:
            steps, losses = zip(*points, strict=True)
            ax.plot(steps, losses, marker="o" if split == "val" else None, label=split)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy loss (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    png_path = Path(png_path)
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path
