"""The classic single run (:func:`lrjax.lr_find`): the rate ramped along the steps.

fastai ``lr_find`` / torch-lr-finder semantics: at step ``t`` the loss is
computed on batch ``t`` and the update uses rate ``lrs[t]``; the loss is
smoothed by a debiased EMA (beta 0.98) and the run stops (parameters frozen,
later losses NaN) once the smoothed loss exceeds ``diverge_factor`` x its best
or the loss is non-finite. The engine runs it as one copy
whose hyperparameter is the whole ramp.
"""

from __future__ import annotations

import numpy as np

STEP_MODES = ("exp", "linear")


def ramp(min_lr: float, max_lr: float, num_steps: int, step_mode: str = "exp") -> np.ndarray:
    """The rate at each step: from ``min_lr`` at step 0 to ``max_lr`` at the last.

    ``exp``: ``min_lr * (max_lr / min_lr) ** (t / (num_steps - 1))`` (as
    torch-lr-finder; fastai divides by ``num_steps`` and stops one step short of
    ``max_lr``). ``linear``: ``min_lr + (max_lr - min_lr) * t / (num_steps - 1)``.
    """
    t = np.arange(num_steps, dtype=np.float64)
    frac = t / max(num_steps - 1, 1)
    if step_mode == "exp":
        return min_lr * (max_lr / min_lr) ** frac
    if step_mode == "linear":
        return min_lr + (max_lr - min_lr) * frac
    raise ValueError(f"step_mode must be one of {list(STEP_MODES)}, got {step_mode!r}")
