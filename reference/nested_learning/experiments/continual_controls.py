"""The controls of experiment 5: learners whose outcome on either part is known in advance.

(a) Orthogonal tasks: joint i.i.d. SGD over all tasks fits them (the capacity premise), plain
sequential SGD keeps them (its gradients for task i never touch another task's subspace), and SGD
restarted at each task forgets them (the forgetting metric can see forgetting). (b) Class-
incremental: the MLP trained on all classes at once separates them, the MLP re-initialised at
each stage forgets, and the plain sequential MLP forgets (there is forgetting for CMS to reduce).
Thresholds follow from the task's construction, not from observed numbers (see each ``why``).
"""

from __future__ import annotations

from class_incremental import MLP, ClassIncConfig, bayes_accuracy_bound
from ledger import Control
from ortho_tasks import SGD

PART_A = "(a) optimizer memory, Eq. 45"
PART_B = "(b) CMS, class-incremental"
SGD_JOINT, SGD_RESET = "SGD, joint (all tasks i.i.d.)", "SGD, reset per task"
CONTROL_FORGETTING = "avg_forgetting of a control learner"  # (a): kept apart from the optimizers
MLP_JOINT, MLP_RESET = "MLP, joint (all classes i.i.d.)", "MLP, reset per stage"
FITS_LOSS = 0.05  # normalised loss (zero model = 1): ≥ 95 % of each task's target energy fitted
KEEPS_LOSS = 0.01  # forgetting of a learner that cannot forget (the former primary check's bound)
FORGETS_LOSS = 0.5  # forgetting (loss units) of a learner that forgets: half the zero model's loss
FITS_ACC = 0.8  # accuracy of a model that separates all classes (chance 0.1, Bayes ≈ 0.97)
FORGETS_ACC = 0.5  # accuracy forgetting of a model that keeps nothing of the old classes
MLP_FORGETS_ACC = 0.2  # forgetting the plain MLP must show for CMS to have something to reduce


def controls(ccfg: ClassIncConfig) -> list[Control]:
    """(a) and (b): joint training fits everything (capacity), memoryless SGD keeps every task
    (the Eq. 45 premise), a reset learner forgets (the metric sees forgetting), and the plain
    sequential MLP forgets (there is forgetting for CMS to reduce)."""
    bayes = bayes_accuracy_bound(ccfg)
    return [
        Control(
            "joint_training_fits_all_tasks",
            "positive",
            "avg_final_loss",
            SGD_JOINT,
            FITS_LOSS,
            higher_is_better=False,
            why="one W* solves every task; batches from the mixture have input covariance I/n, so"
            " SGD at SGD's tuned lr contracts the error by the same factor per task as sequential"
            " training does, and the noise floor is ~1e-4: the model has the capacity for all"
            f" tasks iff it reaches {FITS_LOSS} (95 % of the target energy)",
            part=PART_A,
        ),
        Control(
            "memoryless_sgd_keeps_old_tasks",
            "positive",
            "avg_forgetting",
            SGD,
            KEEPS_LOSS,
            higher_is_better=False,
            why="task i's gradients have rows in U_i only, so plain SGD never touches W U_j for"
            f" j ≠ i and forgets exactly 0 by construction; above {KEEPS_LOSS} the setup or the"
            " metric is broken (the Eq. 45 premise, formerly a primary check)",
            part=PART_A,
        ),
        Control(
            "reset_per_task_forgets",
            "negative",
            CONTROL_FORGETTING,
            SGD_RESET,
            FORGETS_LOSS,
            higher_is_better=False,
            why="W restarted at zero for each task has W U_j = 0 on every earlier task, i.e. its"
            " normalised loss 1 there: forgetting ≈ 1 − just-learned loss; staying below"
            f" {FORGETS_LOSS} would mean the forgetting metric cannot see forgetting",
            part=PART_A,
        ),
        Control(
            "joint_training_fits_all_classes",
            "positive",
            "avg_final_accuracy",
            MLP_JOINT,
            FITS_ACC,
            why="the same MLP and lr trained on i.i.d. batches of all classes; means ~ N(0, I)"
            f" in {ccfg.d_in} dims are ≈ √(2d) apart, {ccfg.cluster_std}σ clusters give a Bayes"
            f" accuracy ≈ {bayes:.3f} (chance {1 / ccfg.n_classes:g}); reaching {FITS_ACC} shows"
            " the model and budget can separate every class",
            part=PART_B,
        ),
        Control(
            "reset_per_stage_forgets",
            "negative",
            "avg_forgetting_acc",
            MLP_RESET,
            FORGETS_ACC,
            higher_is_better=False,
            why="a model re-initialised at each stage has never seen the earlier classes and is"
            " trained to push their logits down: its old-class accuracy falls from ≈ 1 to ≈ 0;"
            f" staying below {FORGETS_ACC} would mean the metric cannot see forgetting",
            part=PART_B,
        ),
        Control(
            "sequential_mlp_forgets",
            "negative",
            "avg_forgetting_acc",
            MLP,
            MLP_FORGETS_ACC,
            higher_is_better=False,
            why="the plain MLP (every level every step = SGD) has no mechanism against"
            " forgetting and sees one stage's classes at a time (catastrophic forgetting); if it"
            f" lost less than {MLP_FORGETS_ACC} (10× the checks' 2-point margin) there would be"
            " too little forgetting for CMS to reduce",
            part=PART_B,
        ),
    ]
