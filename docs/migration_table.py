"""The migration tables: PyTorch, Keras and Optax schedules mapped to lrjax.

Each :class:`Row` holds the other library's call and the lrjax call *as code*.
``docs/build_pages.py`` writes the rows into ``docs/migration.md``; ``tests/test_docs.py``
evaluates both sides of every row that has a ``check`` and compares the rates
step by step against the real library, so a translation on the page cannot be
wrong without a test failing.

PyTorch rows are written for ``opt = torch.optim.SGD(params, lr=0.1,
momentum=0.9)`` and one ``scheduler.step()`` per optimizer step.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: The optimizer's ``lr`` every PyTorch row assumes.
BASE_LR = 0.1

#: Loss values fed to the plateau rows: falls, stalls, falls a little, stalls.
PLATEAU_LOSSES = (
    1.0, 0.8, 0.7, 0.69, 0.69, 0.7, 0.69, 0.68, 0.5, 0.5, 0.5, 0.51,
    0.5, 0.5, 0.49, 0.499, 0.5, 0.5, 0.5, 0.4, 0.4, 0.4, 0.4, 0.4,
)  # fmt: skip


@dataclass(frozen=True)
class Row:
    """One line of a migration table.

    ``check`` names how the test verifies it: ``"torch"`` (the optimizer's ``lr``
    after each ``scheduler.step()``), ``"torch-momentum"`` (its ``momentum``),
    ``"torch-plateau"`` (``lr`` after ``scheduler.step(loss)`` on
    :data:`PLATEAU_LOSSES`), ``"keras"``, ``"keras-plateau"``,
    ``"keras-early-stopping"`` (whether training stops, epoch by epoch, on
    :data:`PLATEAU_LOSSES`), ``"optax"``, ``"optax-plateau"``, or ``None`` for
    rows that state a composition with no single call to compare (said in
    ``notes``).
    """

    lib: str
    name: str
    source: str
    lrjax: str
    args: str
    notes: str = ""
    check: str | None = None
    steps: int = 100


R = Row
ROWS: tuple[Row, ...] = (
    # ------------------------------------------------------------------ PyTorch
    R(
        "torch",
        "StepLR",
        "StepLR(opt, step_size=30, gamma=0.1)",
        "lrjax.step_decay(init_value=0.1, step_size=30, gamma=0.1)",
        "`lr` → `init_value`; `step_size`, `gamma` unchanged",
        check="torch",
    ),
    R(
        "torch",
        "MultiStepLR",
        "MultiStepLR(opt, milestones=[30, 80], gamma=0.1)",
        "lrjax.multistep(init_value=0.1, milestones=[30, 80], gamma=0.1)",
        "`lr` → `init_value`; `milestones`, `gamma` unchanged",
        "The new value applies at the milestone step, as in PyTorch.",
        check="torch",
    ),
    R(
        "torch",
        "ConstantLR",
        "ConstantLR(opt, factor=0.5, total_iters=10)",
        "lrjax.piecewise_constant(boundaries=[10], values=[0.05, 0.1])",
        "`values=[lr * factor, lr]`, `boundaries=[total_iters]`",
        "No dedicated class: it is a two-piece constant.",
        check="torch",
        steps=30,
    ),
    R(
        "torch",
        "LinearLR",
        "LinearLR(opt, start_factor=0.1, end_factor=1.0, total_iters=10)",
        "lrjax.linear(init_value=0.01, end_value=0.1, steps=10)",
        "`init_value = lr * start_factor`, `end_value = lr * end_factor`, `steps = total_iters`",
        "PyTorch's defaults (`start_factor=1/3`, `total_iters=5`) have no lrjax "
        "counterpart: every value is explicit.",
        check="torch",
        steps=30,
    ),
    R(
        "torch",
        "ExponentialLR",
        "ExponentialLR(opt, gamma=0.95)",
        "lrjax.exponential(init_value=0.1, decay_rate=0.95)",
        "`lr` → `init_value`; `gamma` → `decay_rate` (`decay_steps=1`)",
        check="torch",
    ),
    R(
        "torch",
        "PolynomialLR",
        "PolynomialLR(opt, total_iters=50, power=2.0)",
        "lrjax.polynomial(init_value=0.1, end_value=0.0, steps=50, power=2.0)",
        "`lr` → `init_value`; `total_iters` → `steps`; `power` unchanged; `end_value=0.0`",
        "PyTorch's default `total_iters=5` is not carried over: `steps` is required.",
        check="torch",
    ),
    R(
        "torch",
        "CosineAnnealingLR",
        "CosineAnnealingLR(opt, T_max=100, eta_min=0.001)",
        "lrjax.cosine(init_value=0.1, steps=100, end_value=0.001)",
        "`lr` → `init_value`; `T_max` → `steps`; `eta_min` → `end_value`",
        "Equal for steps `0..T_max`. Past `T_max` PyTorch keeps following the cosine "
        "back up; lrjax holds `end_value`. For restarts use `cosine_restarts`.",
        check="torch",
        steps=101,
    ),
    R(
        "torch",
        "CosineAnnealingWarmRestarts",
        "CosineAnnealingWarmRestarts(opt, T_0=10, T_mult=2, eta_min=0.001)",
        "lrjax.cosine_restarts(init_value=0.1, period=10, period_mult=2, end_value=0.001)",
        "`lr` → `init_value`; `T_0` → `period`; `T_mult` → `period_mult`; `eta_min` → `end_value`",
        "lrjax adds `decay` (each cycle's peak times `decay**i`, Keras' `m_mul`). "
        "Restarts use exact integer arithmetic. PyTorch's fractional-epoch "
        "`step(epoch=1.5)` is `s(1.5)`: float steps interpolate.",
        check="torch",
        steps=150,
    ),
    R(
        "torch",
        "CyclicLR",
        'CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=20, mode="triangular2")',
        'lrjax.cyclic(base_value=0.01, max_value=0.1, step_size_up=20, mode="triangular2")',
        "`base_lr` → `base_value`; `max_lr` → `max_value`; `step_size_up`, "
        "`step_size_down`, `mode`, `gamma` unchanged",
        "PyTorch's default `step_size_up=2000` is not carried over. "
        "`cycle_momentum=True` (PyTorch's default) also cycles the momentum: in lrjax "
        "that is a second schedule for the momentum (see `one_cycle_momentum` and "
        "`optax.inject_hyperparams`). A custom `scale_fn` is a `product` with your "
        "own schedule, or a plain function.",
        check="torch",
        steps=160,
    ),
    R(
        "torch",
        "OneCycleLR",
        "OneCycleLR(opt, max_lr=0.1, total_steps=100)",
        "lrjax.one_cycle(max_value=0.1, total_steps=100, pct_start=0.3, "
        'final_div_factor=1e4, convention="torch")',
        "`max_lr` → `max_value`; `total_steps` (or `epochs * steps_per_epoch`) → "
        "`total_steps`; `pct_start`, `div_factor`, `final_div_factor`, `three_phase` "
        'unchanged; `anneal_strategy` → `anneal`; add `convention="torch"`',
        "lrjax's defaults are fastai's (`pct_start=0.25`, `final_div_factor=1e5`, "
        "final value `max_value / final_div_factor`, phase ends at "
        "`pct_start * total_steps`). To get PyTorch's numbers pass PyTorch's values "
        'and `convention="torch"`. Past `total_steps` PyTorch raises; lrjax holds '
        "the final value.",
        check="torch",
    ),
    R(
        "torch",
        "OneCycleLR (momentum)",
        "OneCycleLR(opt, max_lr=0.1, total_steps=100)",
        'lrjax.one_cycle_momentum(total_steps=100, pct_start=0.3, convention="torch")',
        "`base_momentum`, `max_momentum`, `pct_start`, `three_phase` unchanged; "
        "`anneal_strategy` → `anneal`",
        "PyTorch sets the momentum (or Adam's `beta1`) itself; in Optax pass this "
        "schedule as `momentum=` / `b1=` through `optax.inject_hyperparams`.",
        check="torch-momentum",
    ),
    R(
        "torch",
        "ReduceLROnPlateau",
        "ReduceLROnPlateau(opt, factor=0.5, patience=2, threshold=0.01, cooldown=1, min_lr=0.01)",
        "optax.chain(optax.sgd(0.1), lrjax.reduce_on_plateau(factor=0.5, patience=2, "
        "threshold=0.01, cooldown=1, min_scale=0.1))",
        "`mode`, `factor`, `patience`, `threshold`, `threshold_mode`, `cooldown` "
        "unchanged; `min_lr` → `min_scale = min_lr / lr`",
        "A transform, not a schedule: it scales the updates, so chain it after the "
        "optimizer and pass `value=loss` to `update` "
        "(`tx.update(grads, state, params, value=loss)`). One check per update; "
        "`accumulation_steps=n` checks once per `n` updates on their mean, like "
        "calling `scheduler.step(loss)` once per epoch of `n` batches. Once the best "
        "value is negative, the relative threshold differs on purpose: lrjax's margin "
        "is `threshold * |best|`, while PyTorch's `best * (1 - threshold)` lies above "
        "a negative best, so a flat negative loss counts as an improvement every time "
        "and is never cut (pytorch#38622, #47513). For `best >= 0` the two agree.",
        check="torch-plateau",
        steps=len(PLATEAU_LOSSES),
    ),
    R(
        "torch",
        "LambdaLR",
        "LambdaLR(opt, lr_lambda=lambda epoch: 0.95 ** epoch)",
        "lambda step: 0.1 * 0.95 ** step",
        "`lr * lr_lambda(step)`, written with `jax.numpy`",
        "No lrjax class: any `step -> rate` function written with `jax.numpy` is an "
        "Optax schedule. Build it from lrjax pieces (`*`, `+`, `join`, `clip`) when "
        "you want it to be a pytree (jit without recompiling, vmap, `to_dict`).",
        check="torch",
    ),
    R(
        "torch",
        "MultiplicativeLR",
        "MultiplicativeLR(opt, lr_lambda=lambda epoch: 0.95)",
        "lrjax.exponential(init_value=0.1, decay_rate=0.95)",
        "a constant factor `f` → `exponential(decay_rate=f)`",
        "No lrjax class. A factor that varies with the step is a cumulative product: "
        "precompute it (`table = lr * np.cumprod(...)`) and use "
        "`lambda step: jnp.asarray(table)[step]`.",
        check="torch",
    ),
    R(
        "torch",
        "SequentialLR",
        "SequentialLR(opt, [LinearLR(opt, start_factor=0.1, total_iters=10), "
        "CosineAnnealingLR(opt, T_max=90)], milestones=[10])",
        "lrjax.join([lrjax.linear(init_value=0.01, end_value=0.1, steps=10), "
        "lrjax.cosine(init_value=0.1, steps=90)], boundaries=[10])",
        "`schedulers` → `schedules` (each translated); `milestones` → `boundaries`",
        "As in PyTorch, each piece counts its steps from its own boundary. A linear "
        "warmup is also `lrjax.warmup(s, steps, init_value)`.",
        check="torch",
    ),
    R(
        "torch",
        "ChainedScheduler",
        "ChainedScheduler([ConstantLR(opt, factor=0.5, total_iters=10), "
        "ExponentialLR(opt, gamma=0.95)])",
        "lrjax.piecewise_constant(boundaries=[10], values=[0.05, 0.1]) * "
        "lrjax.exponential(init_value=1.0, decay_rate=0.95)",
        "the factors multiply: one piece carries `lr`, the others start at `1.0`",
        "`s1 * s2` builds `lrjax.product`; it is a schedule like any other.",
        check="torch",
        steps=40,
    ),
    R(
        "torch",
        "LRScheduler",
        "class MySched(LRScheduler): ...",
        "def my_schedule(step): ...",
        "`get_lr()` → a function of the step",
        "Write a pure `step -> rate` function with `jax.numpy` (no Python `if` on "
        "the step: use `jnp.where`); Optax accepts it wherever it takes a schedule.",
    ),
    # -------------------------------------------------------------------- Keras
    R(
        "keras",
        "ExponentialDecay",
        "ExponentialDecay(initial_learning_rate=0.1, decay_steps=20, decay_rate=0.5, "
        "staircase=True)",
        "lrjax.exponential(init_value=0.1, decay_rate=0.5, decay_steps=20, staircase=True)",
        "`initial_learning_rate` → `init_value`; `decay_steps`, `decay_rate`, "
        "`staircase` unchanged",
        "Mind the positional order: Keras is `(lr, decay_steps, decay_rate)`, lrjax "
        "`(init_value, decay_rate, decay_steps=1)`. Pass keywords.",
        check="keras",
    ),
    R(
        "keras",
        "InverseTimeDecay",
        "InverseTimeDecay(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5)",
        "lrjax.inverse_time(init_value=0.1, decay_rate=0.5, decay_steps=10)",
        "`initial_learning_rate` → `init_value`; `decay_steps`, `decay_rate`, "
        "`staircase` unchanged",
        "This is also the `decay=` argument of the old Keras optimizers "
        "(`lr / (1 + decay * iterations)`): `inverse_time(lr, decay_rate=decay)`.",
        check="keras",
    ),
    R(
        "keras",
        "PiecewiseConstantDecay",
        "PiecewiseConstantDecay(boundaries=[30, 60], values=[0.1, 0.01, 0.001])",
        "lrjax.piecewise_constant(boundaries=[30, 60], values=[0.1, 0.01, 0.001], "
        'at_boundary="old")',
        '`boundaries`, `values` unchanged; add `at_boundary="old"`',
        "Keras keeps the old value at the boundary step itself; lrjax's default "
        '`"new"` (PyTorch, Optax) switches there.',
        check="keras",
    ),
    R(
        "keras",
        "PolynomialDecay",
        "PolynomialDecay(initial_learning_rate=0.1, decay_steps=30, "
        "end_learning_rate=0.001, power=2.0, cycle=True)",
        "lrjax.polynomial(init_value=0.1, end_value=0.001, steps=30, power=2.0, cycle=True)",
        "`initial_learning_rate` → `init_value`; `end_learning_rate` → `end_value`; "
        "`decay_steps` → `steps`; `power`, `cycle` unchanged",
        "Keras' default `end_learning_rate=1e-4` is not carried over: `end_value` is required.",
        check="keras",
    ),
    R(
        "keras",
        "CosineDecay",
        "CosineDecay(initial_learning_rate=0.1, decay_steps=100, alpha=0.01)",
        "lrjax.cosine(init_value=0.1, steps=100, end_value=0.001)",
        "`initial_learning_rate` → `init_value`; `decay_steps` → `steps`; "
        "`end_value = alpha * initial_learning_rate`",
        "Keras' `alpha` is a fraction of the initial rate; lrjax's `end_value` is the rate itself.",
        check="keras",
        steps=120,
    ),
    R(
        "keras",
        "CosineDecay (warmup)",
        "CosineDecay(initial_learning_rate=0.0, decay_steps=90, alpha=0.1, "
        "warmup_target=0.1, warmup_steps=10)",
        "lrjax.warmup(lrjax.cosine(init_value=0.1, steps=90, end_value=0.01), steps=10, "
        "init_value=0.0)",
        "`warmup_target` → the cosine's `init_value`; `end_value = alpha * "
        "warmup_target`; `warmup_steps` → `warmup(steps=)`; `initial_learning_rate` → "
        "`warmup(init_value=)`",
        "Keras counts `decay_steps` after the warmup, as lrjax's `warmup` does.",
        check="keras",
    ),
    R(
        "keras",
        "CosineDecayRestarts",
        "CosineDecayRestarts(initial_learning_rate=0.1, first_decay_steps=10, "
        "t_mul=2.0, m_mul=0.8, alpha=0.05)",
        "lrjax.cosine_restarts(init_value=0.1, period=10, period_mult=2, decay=0.8, "
        "end_value=0.005)",
        "`first_decay_steps` → `period`; `t_mul` → `period_mult`; `m_mul` → `decay`; "
        "`end_value = alpha * initial_learning_rate`",
        "Keras' default `t_mul=2.0` is lrjax's `period_mult=2` only when passed: "
        "lrjax's default is 1. `period_mult` must be an integer (exact restart steps; "
        "Keras finds the cycle with a float logarithm).",
        check="keras",
        steps=150,
    ),
    R(
        "keras",
        "LearningRateSchedule",
        "class MySchedule(LearningRateSchedule): ...",
        "def my_schedule(step): ...",
        "`__call__(step)` → a function of the step",
        "Any pure `step -> rate` function written with `jax.numpy` is an Optax schedule.",
    ),
    R(
        "keras",
        "callbacks.ReduceLROnPlateau",
        'ReduceLROnPlateau(monitor="loss", factor=0.5, patience=3, min_delta=0.01, cooldown=2)',
        "lrjax.reduce_on_plateau(factor=0.5, patience=2, threshold=0.01, "
        'threshold_mode="abs", cooldown=1)',
        "`patience` → `patience - 1`; `min_delta` → `threshold` with "
        '`threshold_mode="abs"`; `cooldown` → `cooldown - 1`; `min_lr` → '
        "`min_scale = min_lr / lr`",
        "Keras reduces on the `patience`-th bad epoch, PyTorch and lrjax on the "
        "`patience + 1`-th, and Keras' cooldown includes the epoch that ends it. "
        "Keras' default `min_delta=1e-4` is absolute, PyTorch's and lrjax's "
        "`threshold=1e-4` relative.",
        check="keras-plateau",
        steps=len(PLATEAU_LOSSES),
    ),
    R(
        "keras",
        "callbacks.EarlyStopping",
        'EarlyStopping(monitor="val_loss", patience=4, min_delta=0.005)',
        "lrjax.callbacks.early_stopping(patience=4, min_delta=0.005)",
        "`mode`, `min_delta`, `patience`, `baseline` unchanged; `start_from_epoch` → "
        "`start_from_step`; `monitor` → the value you pass to `update`",
        "Not a callback but a pure state machine: `state = stopper.init()`, then "
        "`state = stopper.update(state, val_loss)` once per epoch, and stop when "
        "`state.should_stop`. It also runs inside `jax.jit` and `lax.while_loop`. "
        "`restore_best_weights=True`: keep the parameters of the epoch "
        "`state.best_step` yourself.",
        check="keras-early-stopping",
        steps=len(PLATEAU_LOSSES),
    ),
    R(
        "keras",
        "callbacks.LearningRateScheduler",
        "LearningRateScheduler(lambda epoch, lr: 0.1 * 0.9 ** epoch)",
        "lambda step: lrjax.exponential(init_value=0.1, decay_rate=0.9)(step // steps_per_epoch)",
        "the function of the epoch → a schedule of the step",
        "Keras calls it once per epoch; an Optax schedule sees every update. "
        "Divide by the number of updates per epoch, or scale the schedule's step "
        "counts by it.",
    ),
    # -------------------------------------------------------------------- Optax
    R(
        "optax",
        "constant_schedule",
        "optax.constant_schedule(0.1)",
        "lrjax.constant(0.1)",
        "`value` unchanged",
        check="optax",
    ),
    R(
        "optax",
        "linear_schedule",
        "optax.linear_schedule(init_value=0.1, end_value=0.01, transition_steps=80, "
        "transition_begin=10)",
        "lrjax.linear(init_value=0.1, end_value=0.01, steps=80, transition_begin=10)",
        "`transition_steps` → `steps`; the rest unchanged",
        "`transition_steps <= 0` is an error in lrjax (Optax logs and returns a constant).",
        check="optax",
    ),
    R(
        "optax",
        "polynomial_schedule",
        "optax.polynomial_schedule(init_value=0.1, end_value=0.001, power=2, transition_steps=80)",
        "lrjax.polynomial(init_value=0.1, end_value=0.001, steps=80, power=2.0)",
        "`transition_steps` → `steps`; `power` unchanged",
        "A `transition_begin=b` is `lrjax.join([lrjax.constant(init), "
        "lrjax.polynomial(...)], [b])`.",
        check="optax",
    ),
    R(
        "optax",
        "exponential_decay",
        "optax.exponential_decay(init_value=0.1, transition_steps=20, decay_rate=0.5, "
        "transition_begin=10, staircase=True, end_value=0.01)",
        "lrjax.exponential(init_value=0.1, decay_rate=0.5, decay_steps=20, "
        "staircase=True, transition_begin=10, end_value=0.01)",
        "`transition_steps` → `decay_steps`; the rest unchanged",
        "`decay_rate=0` or `transition_steps <= 0` raise in lrjax instead of logging.",
        check="optax",
    ),
    R(
        "optax",
        "cosine_decay_schedule",
        "optax.cosine_decay_schedule(init_value=0.1, decay_steps=100, alpha=0.01, exponent=2.0)",
        "lrjax.cosine(init_value=0.1, steps=100, end_value=0.001, exponent=2.0)",
        "`decay_steps` → `steps`; `end_value = alpha * init_value`; `exponent` unchanged",
        "Optax's `alpha` is a fraction of `init_value`; lrjax's `end_value` is absolute.",
        check="optax",
        steps=120,
    ),
    R(
        "optax",
        "warmup_constant_schedule",
        "optax.warmup_constant_schedule(init_value=0.0, peak_value=0.1, warmup_steps=10)",
        "lrjax.warmup(lrjax.constant(0.1), steps=10, init_value=0.0)",
        "`peak_value` → the constant; `warmup_steps` → `steps`",
        check="optax",
        steps=30,
    ),
    R(
        "optax",
        "warmup_cosine_decay_schedule",
        "optax.warmup_cosine_decay_schedule(init_value=0.0, peak_value=0.1, "
        "warmup_steps=10, decay_steps=100, end_value=0.001)",
        "lrjax.warmup(lrjax.cosine(init_value=0.1, steps=90, end_value=0.001), "
        "steps=10, init_value=0.0)",
        "`peak_value` → cosine `init_value`; cosine `steps = decay_steps - "
        "warmup_steps`; `warmup_steps` → `warmup(steps=)`",
        "Optax's `decay_steps` includes the warmup; lrjax's `cosine(steps=)` counts "
        "only the decay.",
        check="optax",
        steps=120,
    ),
    R(
        "optax",
        "warmup_exponential_decay_schedule",
        "optax.warmup_exponential_decay_schedule(init_value=0.0, peak_value=0.1, "
        "warmup_steps=10, transition_steps=20, decay_rate=0.5, end_value=0.01)",
        "lrjax.warmup(lrjax.exponential(init_value=0.1, decay_rate=0.5, decay_steps=20, "
        "end_value=0.01), steps=10, init_value=0.0)",
        "`peak_value` → `init_value` of the decay; `transition_steps` → `decay_steps`",
        check="optax",
    ),
    R(
        "optax",
        "piecewise_constant_schedule",
        "optax.piecewise_constant_schedule(init_value=0.1, "
        "boundaries_and_scales={30: 0.1, 60: 0.1})",
        "lrjax.piecewise_constant(boundaries=[30, 60], values=[0.1, 0.01, 0.001])",
        "scales → absolute `values` (running products of the scales)",
        'Both switch at the boundary step (`at_boundary="new"`).',
        check="optax",
    ),
    R(
        "optax",
        "piecewise_interpolate_schedule",
        'optax.piecewise_interpolate_schedule("cosine", init_value=0.1, '
        "boundaries_and_scales={30: 0.5, 60: 0.2})",
        "lrjax.join([lrjax.cosine(init_value=0.1, steps=30, end_value=0.05), "
        "lrjax.cosine(init_value=0.05, steps=30, end_value=0.01), lrjax.constant(0.01)], "
        "boundaries=[30, 60])",
        'one piece per interval: `cosine` for `"cosine"`, `linear` for '
        '`"linear"`; values are running products of the scales',
        "No dedicated class: a `join` of interpolating pieces.",
        check="optax",
    ),
    R(
        "optax",
        "cosine_onecycle_schedule",
        "optax.cosine_onecycle_schedule(transition_steps=100, peak_value=0.1, "
        "pct_start=0.3, div_factor=25.0, final_div_factor=1e4)",
        "lrjax.one_cycle(max_value=0.1, total_steps=100, pct_start=0.3, div_factor=25.0, "
        "final_div_factor=2.5e5)",
        "`transition_steps` → `total_steps`; `peak_value` → `max_value`; "
        "`final_div_factor` → `div_factor * final_div_factor`",
        "Optax puts the peak at step `int(pct_start * transition_steps)` (fastai's "
        "phase ends, lrjax's default convention) and ends at `peak / (div_factor * "
        "final_div_factor)`, so lrjax's `final_div_factor` is the product. Equal when "
        "`pct_start * transition_steps` is a whole number.",
        check="optax",
    ),
    R(
        "optax",
        "linear_onecycle_schedule",
        "optax.linear_onecycle_schedule(transition_steps=100, peak_value=0.1, "
        "pct_start=0.3, pct_final=0.6, div_factor=25.0, final_div_factor=1e4)",
        "lrjax.one_cycle(max_value=0.1, total_steps=100, pct_start=0.3, div_factor=25.0, "
        'final_div_factor=2.5e5, three_phase=True, anneal="linear")',
        "`transition_steps` → `total_steps`; `final_div_factor` → `div_factor * "
        'final_div_factor`; `three_phase=True, anneal="linear"`',
        "Equal when `pct_final = 2 * pct_start` (Optax's default `pct_final=0.85` is "
        "not): otherwise a `join` of three `linear` pieces.",
        check="optax",
    ),
    R(
        "optax",
        "sgdr_schedule",
        "optax.sgdr_schedule([dict(init_value=0.1, peak_value=0.1, warmup_steps=0, "
        "decay_steps=25)] * 4)",
        "lrjax.cosine_restarts(init_value=0.1, period=25)",
        "equal cycles → `period`; peaks falling geometrically → `decay`; lengths "
        "growing geometrically → `period_mult`",
        "Optax's cycles are `warmup_cosine_decay_schedule`s; with `warmup_steps=0` "
        "each is a plain cosine cycle. Cycles with a warmup, or of irregular lengths, "
        "are a `join` of `warmup(cosine(...))` pieces.",
        check="optax",
    ),
    R(
        "optax",
        "join_schedules",
        "optax.join_schedules([optax.constant_schedule(0.1), "
        "optax.cosine_decay_schedule(0.1, 50)], boundaries=[30])",
        "lrjax.join([lrjax.constant(0.1), lrjax.cosine(init_value=0.1, steps=50)], "
        "boundaries=[30])",
        "`schedules` (each translated), `boundaries` unchanged",
        "Same step offsets: each piece counts from its boundary.",
        check="optax",
    ),
    R(
        "optax",
        "contrib.reduce_on_plateau",
        "optax.contrib.reduce_on_plateau(factor=0.5, patience=3, rtol=0.01, cooldown=1)",
        "lrjax.reduce_on_plateau(factor=0.5, patience=2, threshold=0.01, cooldown=1)",
        '`patience` → `patience - 1`; `rtol` → `threshold` (`threshold_mode="rel"`), '
        '`atol` → `threshold` with `threshold_mode="abs"`; `accumulation_size` → '
        "`accumulation_steps`; `factor`, `cooldown`, `min_scale` unchanged",
        "Optax reduces on the `patience`-th check without improvement, PyTorch and "
        "lrjax on the `patience + 1`-th. Optax's relative test `value < (1 - rtol) * "
        "best` counts a flat negative loss as an improvement every time, so it never "
        "cuts once the best loss is negative (optax PR 1767); lrjax's margin is "
        "`threshold * |best|` on either side of zero.",
        check="optax-plateau",
        steps=len(PLATEAU_LOSSES),
    ),
)

LIBS = {
    "torch": ("PyTorch `torch.optim.lr_scheduler`", "PyTorch (`opt = SGD(params, lr=0.1)`)"),
    "keras": ("Keras `keras.optimizers.schedules`", "Keras"),
    "optax": ("Optax", "Optax"),
}


def rows(lib: str) -> list[Row]:
    """The rows of one library as shown, in table order."""
    if lib not in LIBS:
        raise ValueError(f"lib must be one of {sorted(LIBS)}, got {lib!r}")
    return [r for r in ROWS if r.lib == lib]


def markdown(lib: str) -> str:
    """The table for ``lib`` as Markdown."""
    head = LIBS[lib][1]
    out = [
        f"| {head} | lrjax | Arguments | Differences |",
        "|---|---|---|---|",
    ]
    for r in rows(lib):
        verified = "" if r.check else " *(no single call to compare)*"
        cells = [
            f"**{r.name}**<br>`{r.source}`",
            f"`{r.lrjax}`",
            r.args,
            (r.notes or "None.") + verified,
        ]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------- numeric checks


def lrjax_rates(row: Row) -> np.ndarray:
    """The lrjax side of a row at steps ``0 .. row.steps - 1``.

    For a schedule, its rates; for a transform, the rate each update applies;
    for early stopping, 1.0 from the epoch at which training stops.
    """
    import jax.numpy as jnp
    import optax

    import lrjax

    obj = eval(row.lrjax, {"lrjax": lrjax, "optax": optax, "jnp": jnp})
    if row.check == "keras-early-stopping":
        state, stops = obj.init(), []
        for v in PLATEAU_LOSSES[: row.steps]:
            state = obj.update(state, v)
            stops.append(bool(state.should_stop))
        return np.asarray(stops, dtype=np.float64)
    if row.check and row.check.endswith("plateau"):
        return _transform_rates(obj, row.steps)
    steps = jnp.arange(row.steps)
    return np.asarray(obj(steps), dtype=np.float64)


def _transform_rates(tx, n: int) -> np.ndarray:
    """The rate each update applies, with ``value=`` the plateau losses.

    Without a leading optimizer the transform's own scale is reported times
    :data:`BASE_LR`, so it compares with the other library's learning rate.
    """
    import jax.numpy as jnp

    params = {"w": jnp.zeros(())}
    grads = {"w": jnp.ones(())}
    state = tx.init(params)
    out = []
    for v in PLATEAU_LOSSES[:n]:
        updates, state = tx.update(grads, state, params, value=jnp.asarray(v))
        out.append(float(updates["w"]))
    rates = np.asarray(out)
    # A chain that starts with an optimizer gives -lr * scale; a bare transform
    # gives the scale itself (the gradient is 1).
    return -rates if rates[0] < 0 else BASE_LR * rates


def reference_rates(row: Row) -> np.ndarray:
    """The other library's side of a row at steps ``0 .. row.steps - 1``."""
    if row.check in ("torch", "torch-momentum", "torch-plateau"):
        return _torch(row)
    if row.check == "keras":
        return _keras(row)
    if row.check == "keras-plateau":
        return _keras_plateau(row)
    if row.check == "keras-early-stopping":
        return _keras_early_stopping(row)
    if row.check in ("optax", "optax-plateau"):
        return _optax(row)
    raise ValueError(f"row {row.name!r} has no numeric check")


def _torch(row: Row) -> np.ndarray:
    import torch
    from torch.optim import lr_scheduler

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=BASE_LR, momentum=0.9)
    names = {n: getattr(lr_scheduler, n) for n in dir(lr_scheduler) if not n.startswith("_")}
    sched = eval(row.source, {**names, "opt": opt})
    key = "momentum" if row.check == "torch-momentum" else "lr"
    out = []
    for t in range(row.steps):
        if row.check == "torch-plateau":
            sched.step(PLATEAU_LOSSES[t])  # the rate decided after seeing loss t
            out.append(opt.param_groups[0][key])
        else:
            out.append(opt.param_groups[0][key])
            opt.step()
            sched.step()
    return np.asarray(out, dtype=np.float64)


def _keras_module():
    import os

    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    return keras


def _keras(row: Row) -> np.ndarray:
    return np.asarray(_keras_schedule_rates()[row.name], dtype=np.float64)


@functools.cache
def _keras_schedule_rates() -> dict[str, list[float]]:
    """Every Keras schedule row, evaluated step by step in a subprocess.

    The subprocess uses Keras' NumPy backend: the real Keras schedule code,
    called eagerly as Keras calls it, without the per-op dispatch cost of the
    JAX backend (and without XLA turning ``t / k`` into ``t * (1/k)``).
    """
    code = (
        "import json, sys\n"
        "import keras\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "import migration_table as M\n"
        "S = keras.optimizers.schedules\n"
        "names = {n: getattr(S, n) for n in dir(S)}\n"
        "out = {r.name: [float(eval(r.source, names)(t)) for t in range(r.steps)]\n"
        "       for r in M.ROWS if r.check == 'keras'}\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "numpy"}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"evaluating the Keras schedules failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _keras_plateau(row: Row) -> np.ndarray:
    keras = _keras_module()
    cb = eval(row.source, {"ReduceLROnPlateau": keras.callbacks.ReduceLROnPlateau})

    class _Opt:
        learning_rate = BASE_LR

    class _Model:
        optimizer = _Opt()

    cb.set_model(_Model())
    cb.on_train_begin()
    out = []
    for t in range(row.steps):
        cb.on_epoch_end(t, {"loss": PLATEAU_LOSSES[t]})
        out.append(float(_Model.optimizer.learning_rate))
    return np.asarray(out, dtype=np.float64)


def _keras_early_stopping(row: Row) -> np.ndarray:
    """``model.stop_training`` after each ``on_epoch_end`` with ``val_loss`` the plateau losses."""
    keras = _keras_module()
    cb = eval(row.source, {"EarlyStopping": keras.callbacks.EarlyStopping})

    class _Model:
        stop_training = False

    model = _Model()
    cb.set_model(model)
    cb.on_train_begin()
    out = []
    for t in range(row.steps):
        cb.on_epoch_end(t, {"val_loss": PLATEAU_LOSSES[t]})
        out.append(float(model.stop_training))
    return np.asarray(out, dtype=np.float64)


def _optax(row: Row) -> np.ndarray:
    import jax.numpy as jnp
    import optax
    import optax.contrib

    obj = eval(row.source, {"optax": optax})
    if row.check == "optax-plateau":
        return _transform_rates(obj, row.steps)
    return np.asarray([float(obj(jnp.asarray(t))) for t in range(row.steps)])
