"""Part (b) of experiment 5: a class-incremental toy trained with CMS and MLP update rules.

Class-incremental toy, arXiv 2512.24695 §7 (CMS, Eq. 70-71). Gaussian clusters, C classes
arriving in S stages (C/S new classes per stage, only the current stage's data is seen). Model:
``embed (Linear) → CMS chain of K residual MLPs (ContinuumMemory) → head (Linear)``, trained as one
stream. Adaptation of the paper's sequence-level CMS to a stream of mini-batches (documented
choice): the whole stream is one "sequence" of batch size 1 whose "tokens" are the training
samples, one segment = one mini-batch of N samples; level l's chunk is ``N · C^(l)`` tokens, i.e.
it applies its accumulated task-loss gradient (Eq. 71) every C^(l) steps. The CMS meta-learned
initial states θ0 stay at their random init (there is no outer loop across sequences in a single
stream); the embed and head are updated every step by SGD with the same lr. "MLP" is the same
model and rule with every level updated every step (C = 1/1/1), i.e. plain SGD; "CMS" uses
C = 1/8/64. Eq. 71 sums the chunk's per-token gradients with one η, so a slow level moves as far
as a fast one, only later; the secondary pair "η/C per level" gives level l the step η/C^(l)
(it applies the *mean* gradient of its chunk) - once updated every C^(l) steps (CMS) and once
every step (MLP) - which separates the effect of the update frequency from that of a smaller
step on the slow levels. Reported: accuracy matrix (accuracy on stage j's classes after stage
i, prediction over the classes seen so far), average final accuracy and forgetting, over the
seeds. The lr of each model is picked on a separate seed by its average final accuracy.

Two reference learners serve as controls (``run_class_inc``'s ``mode``): ``"joint"`` sees every
class from the first step (i.i.d. batches over all classes), which shows the model can separate
all of them; ``"reset"`` re-initialises the model at each stage, which must forget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nested_learning.core.cms import CMSConfig, CMSState, ContinuumMemory

MLP, CMS = "MLP (all levels every step)", "CMS (levels every 1/8/64 steps)"
CMS_SLOW = "CMS, η/C per level"
MLP_SLOW = "MLP, η/C per level (every step)"
Mode = Literal["sequential", "joint", "reset"]


@dataclass(frozen=True)
class ClassIncConfig:
    """Sizes of the class-incremental toy."""

    d_in: int = 32
    n_classes: int = 10
    n_stages: int = 5
    cluster_std: float = 1.5
    d_model: int = 64
    hidden: int = 128
    steps_per_stage: int = 300
    batch: int = 32
    n_test_per_class: int = 200
    cms_chunks: tuple[int, ...] = (1, 8, 64)
    lr_grid: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3)

    @property
    def classes_per_stage(self) -> int:
        return self.n_classes // self.n_stages


@dataclass(frozen=True)
class Variant:
    """Level l applies its accumulated gradient every ``chunks[l]`` steps with per-token step
    η / ``lr_div[l]`` (Eq. 71 leaves η^(l) free per level)."""

    chunks: tuple[int, ...]
    lr_div: tuple[int, ...]

    def inner_lrs(self, lr: float) -> tuple[float, ...]:
        return tuple(lr / d for d in self.lr_div)


def variants(cfg: ClassIncConfig) -> dict[str, Variant]:
    """MLP = every level every step (plain SGD); CMS = Eq. 71 with the same η per token. With
    η/C^(l), level l applies the *mean* gradient of its chunk, so slow levels also move slowly; its
    control updates every level every step with the same per-level η/C^(l), so the pair isolates
    the update frequency from the per-level step size."""
    ones, chunks = (1,) * len(cfg.cms_chunks), cfg.cms_chunks
    return {
        MLP: Variant(ones, ones),
        CMS: Variant(chunks, ones),
        MLP_SLOW: Variant(ones, chunks),
        CMS_SLOW: Variant(chunks, chunks),
    }


class CMSClassifier(nn.Module):
    """embed → ContinuumMemory chain → head; the CMS fast state is carried by the caller."""

    def __init__(self, cfg: ClassIncConfig, variant: Variant, lr: float) -> None:
        super().__init__()
        self.embed = nn.Linear(cfg.d_in, cfg.d_model)
        cms_cfg = CMSConfig(
            d_model=cfg.d_model,
            chunk_sizes=tuple(c * cfg.batch for c in variant.chunks),  # tokens = samples
            hidden=cfg.hidden,
            inner_lr=variant.inner_lrs(lr),
        )
        self.cms = ContinuumMemory(cms_cfg)
        self.head = nn.Linear(cfg.d_model, cfg.n_classes)

    def logits(self, x: Tensor, state: CMSState, seen: Tensor) -> Tensor:
        """x [N, d_in] → logits [N, C]; classes not seen yet are masked out."""
        h = self.cms(self.embed(x)[None], state)[0]
        out: Tensor = self.head(h)
        return out.masked_fill(~seen, float("-inf"))

    def outer_params(self) -> list[nn.Parameter]:
        """The embed and head weights, trained by plain SGD every step."""
        return [*self.embed.parameters(), *self.head.parameters()]


@dataclass
class ClassIncData:
    """One seed's class means and the test set (``n_test_per_class`` samples per class)."""

    means: Tensor  # [C, d_in]
    test_x: Tensor  # [C * n_test, d_in]
    test_y: Tensor


def make_class_data(cfg: ClassIncConfig, g: torch.Generator) -> ClassIncData:
    """Class means ~ N(0, I) and isotropic Gaussian test clusters of std ``cluster_std``."""
    means = torch.randn(cfg.n_classes, cfg.d_in, generator=g)
    test_y = torch.arange(cfg.n_classes).repeat_interleave(cfg.n_test_per_class)
    test_x = means[test_y] + cfg.cluster_std * torch.randn(len(test_y), cfg.d_in, generator=g)
    return ClassIncData(means, test_x, test_y)


def cms_train_step(
    model: CMSClassifier, state: CMSState, x: Tensor, y: Tensor, seen: Tensor, lr: float
) -> CMSState:
    """One mini-batch: task loss → CMS inner grads (Eq. 71) + SGD on embed/head."""
    cms, outer = model.cms, model.outer_params()
    with torch.enable_grad():
        st = cms.prepare_for_inner_grad(state)
        loss = F.cross_entropy(model.logits(x, st, seen), y)
        fast = cms.fast_weights(st)
        grads = torch.autograd.grad(loss, [*fast, *outer])
    with torch.no_grad():
        for p, gp in zip(outer, grads[len(fast) :], strict=True):
            p.sub_(lr * gp)
    return cms.step(st, grads[: len(fast)], n_tokens=x.shape[0])


def stage_accuracies(
    model: CMSClassifier, state: CMSState, data: ClassIncData, seen: Tensor, cfg: ClassIncConfig
) -> list[float]:
    """Accuracy on each stage's classes (prediction among the classes seen so far)."""
    with torch.no_grad():
        pred = model.logits(data.test_x, state, seen).argmax(-1)
    correct = (pred == data.test_y).float()
    stage = data.test_y // cfg.classes_per_stage
    return [float(correct[stage == s].mean()) for s in range(cfg.n_stages)]


def run_class_inc(
    cfg: ClassIncConfig, variant: Variant, lr: float, seed: int, mode: Mode = "sequential"
) -> Tensor:
    """Accuracy matrix A [n_stages, n_stages]: A[i, j] = acc on stage j after stage i.

    ``mode="joint"``: every stage's batches are drawn from all classes (all seen from the start);
    ``mode="reset"``: a freshly initialised model (and CMS state) at the start of each stage.
    """
    g = torch.Generator().manual_seed(seed)
    data = make_class_data(cfg, g)
    torch.manual_seed(seed)  # model init
    model = CMSClassifier(cfg, variant, lr)
    state = model.cms.init_state(1)
    seen = torch.full((cfg.n_classes,), mode == "joint")
    A = torch.zeros(cfg.n_stages, cfg.n_stages)
    k = cfg.classes_per_stage
    for s in range(cfg.n_stages):
        seen[s * k : (s + 1) * k] = True
        if mode == "reset" and s > 0:
            model = CMSClassifier(cfg, variant, lr)
            state = model.cms.init_state(1)
        for _ in range(cfg.steps_per_stage):
            if mode == "joint":
                y = torch.randint(cfg.n_classes, (cfg.batch,), generator=g)
            else:
                y = s * k + torch.randint(k, (cfg.batch,), generator=g)
            x = data.means[y] + cfg.cluster_std * torch.randn(cfg.batch, cfg.d_in, generator=g)
            state = cms_train_step(model, state, x, y, seen, lr)
        A[s] = torch.tensor(stage_accuracies(model, state, data, seen, cfg))
    return A


def acc_metrics(A: Tensor) -> dict[str, float]:
    """Average final accuracy, forgetting (best earlier − final) and just-learned accuracy."""
    n = A.shape[0]
    forget = [float(A[j : n - 1, j].max() - A[n - 1, j]) for j in range(n - 1)]
    return {
        "avg_final_accuracy": float(A[n - 1].mean()),
        "avg_forgetting_acc": sum(forget) / len(forget),
        "avg_just_learned_accuracy": float(A.diagonal().mean()),
    }


def tune_class_inc(cfg: ClassIncConfig, seed: int) -> dict[str, float]:
    """lr per model with the best average final accuracy on ``seed``."""
    best = {}
    for name, variant in variants(cfg).items():
        scores = [
            acc_metrics(run_class_inc(cfg, variant, lr, seed))["avg_final_accuracy"]
            for lr in cfg.lr_grid
        ]
        best[name] = cfg.lr_grid[max(range(len(scores)), key=scores.__getitem__)]
    return best


def bayes_accuracy_bound(cfg: ClassIncConfig) -> float:
    """Union-bound estimate of the Bayes accuracy over all classes: two means ~ N(0, I) are
    ``≈ √(2 d_in)`` apart, so a point is closer to another class's mean with probability
    ``Φ(−√(2 d_in) / (2σ))`` per rival class, and ``1 − (C − 1) Φ(…)`` is about the accuracy
    of the (linear) nearest-mean rule, the best any classifier can do."""
    z = math.sqrt(2 * cfg.d_in) / (2 * cfg.cluster_std)
    phi = 0.5 * math.erfc(z / math.sqrt(2))
    return 1 - (cfg.n_classes - 1) * phi
