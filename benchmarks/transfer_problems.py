"""The problems of the rate-transfer benchmark, and their training curves, cached.

``lrjax.transfer`` (issue 29) trains a grid of rates x seeds at a few small
sizes (model widths, or run lengths) and predicts the best rate at a
``target`` size. This file holds the problems it is judged on and the
expensive part of judging it, done once: the small sizes' curves (what any
transfer rule reads) and the ground truth at the target (what it is scored
against), written to ``results/transfer_curves_cpu/NAME.npz`` so that rules
and defaults can be compared in seconds (``load_curves``).

Each problem is a :class:`TransferProblem`: ``along`` ``"width"`` (``model(size,
key)`` builds the model at a width, ``optimizer(learning_rate)`` trains it for
``num_steps``) or ``"steps"`` (``model(key)`` builds the one model,
``optimizer(learning_rate, num_steps)`` builds the schedule for the run's own
length, and the sizes are run lengths); ``loss_fn``, a fixed train /
validation / test split (the training batches in one fixed order for every
run; a run of ``n`` steps reads the first ``n``), the small sizes, the target
and the two rate ranges. The models are written in the three ways users write
them: plain JAX pytrees, Flax NNX modules and Equinox modules. The problems
(``python benchmarks/transfer_problems.py --list`` prints this table):

- ``digits_mlp_adam`` (width; Equinox): digits (1000 / 300 / 497), ``eqx.nn.MLP``
  64-w-w-10, Adam on ``cosine(lr, 400)``, batch 128, widths 16-128 -> 512.
- ``noisy_mlp_momentum`` (width; pytree): synthetic 4 classes, 20% label noise
  (1600 / 1000 / 1400), MLP 20-w-w-4 of ``lrjax.data``, SGD + momentum 0.9 on
  ``cosine(lr, 400)``, batch 64, widths 16-128 -> 1024.
- ``digits_cnn_adam`` and ``digits_cnn_nesterov`` (width = channels; NNX): the
  NNX CNN of ``suggestion_quality.py`` (conv3x3 x w - BatchNorm - conv3x3 x 2w,
  stride 2 - BatchNorm - Dropout 0.2 - linear) on digits images, batch 32, 300
  steps of ``one_cycle``; Adam, or SGD + Nesterov momentum 0.9; channels 4-32 -> 128.
- ``char_transformer_adamw`` (width = model width; pytree): the one-block
  character transformer of ``suggestion_quality.py`` (2 heads, context 16,
  tied embeddings) on Python standard-library source, AdamW (weight decay
  0.01) on a warmup (10%) + cosine schedule, 300 steps, batches of 8 windows,
  widths 8-64 -> 256.
- ``noisy_mlp_momentum_steps`` (steps; pytree): the 4-class data, MLP 20-64-64-4,
  SGD + momentum 0.9 on ``cosine(lr, n)``, batch 64, lengths 100-800 -> 3,200.
- ``digits_mlp_adam_steps`` (steps; Equinox): digits, ``eqx.nn.MLP`` 64-64-64-10,
  Adam on ``one_cycle(lr, n)``, batch 64, lengths 100-800 -> 3,200.
- ``char_transformer_steps`` (steps; pytree): the transformer at width 16, AdamW
  on warmup (10%) + cosine over ``n``, lengths 100-800 -> 3,200.

Held out (``held_out=True``; declared here before any default of
``lrjax.transfer`` was chosen, to be reported apart and never used to choose
one). They differ in kind from the rest: regression with a squared loss on
data no other problem uses (every other problem is a classifier or a language
model), and along steps a model, optimizer and schedule found nowhere else:

- ``sines_eqx_adam`` (width; Equinox): regression of ``sin(2 x0) cos(x1) +
  0.5 x2 x3`` + noise (2000 / 1000 / 2000), ``eqx.nn.MLP`` 4-w-w-1, MSE, Adam on
  warmup (10%) + cosine over 400 steps, batch 32, widths 16-128 -> 512.
- ``friedman_nnx_nesterov_wsd`` (steps; NNX): Friedman #1 regression (2000 / 1000
  / 2000), an NNX MLP 10-64-64-1 with LayerNorm, MSE, SGD + Nesterov momentum
  0.9 on warmup-stable-decay (``lrjax.wsd``: 5% warmup, the last 20% decayed),
  batch 32, lengths 100-800 -> 3,200. Its best rate *rises* with the run's
  length (the warmup lengthens with it, and the best rate sits at the edge of
  stability).

How they were chosen: a scout (below) of each candidate; a problem stays when
its best rate moves by 2x or more from the smallest small size to the target
and every grid is interior (its minimum two or more points from either end,
its top rate failing). Dropped after scouting, for a best rate that did not
move: the sines regression with SGD + Nesterov (with and without warmup, 2 or
3 hidden layers: 1.8-2.5x, the optima flat and noisy), Friedman with AdamW +
WSD (1.6x); and a 6-class noisy classifier with AdamW + WSD whose test curve
at 3,200 steps had two minima (overfitting between them). The digits width
problem trains with batch 128 (at batch 64 its optima did not move from 16 to
128: 2.8x in all). Results: ``results/transfer_problems_scout_cpu.txt``.

**What is cached** (``run_small``, ``run_target``), per problem:

- at every small size, 31 log-spaced rates over ``small_range`` (every other one
  is a 16-rate grid) x 5 seeds (seed ``s``: the model's init key
  ``PRNGKey(s)``; the copies' dropout streams ``key=PRNGKey(1000 + s)``), one
  ``lrjax.sweep`` per size and seed, divergence as ``sweep``'s default
  (``diverge_factor=4``); each run scored after its last step on the
  validation split (``val_batches``, lrjax's own evaluation) and on the test
  split (the returned parameters evaluated here the same way; the validation
  scores computed both ways must agree, which checks that evaluation), the
  mean training loss over the last 10% of steps (``sweep``'s score without
  validation data), the training loss at step 0, and the validation and test
  loss at initialization;
- at the target, the ground truth: ``target_num`` (24) log-spaced rates over
  ``target_range`` x 3 seeds (the first three seeds' init keys), one
  ``lrjax.sweep`` per seed with ``val_batches`` = the test split and
  ``diverge_factor=None`` (a run stops only on a non-finite loss: the truth is
  what training at that rate gives), and the test loss at initialization;
- per call, the wall time and JAX's compile time; per size, the forward +
  backward FLOPs of one training step of one copy (XLA's cost analysis of the
  jitted ``value_and_grad`` of the loss).

**The scout** (``--scout``): 2 seeds, every other rate of the full grids (16
small rates, 12 to 16 at the target), nothing written (``--save DIR`` keeps its
curves): for each problem, the best rate (``best_rate``: the vertex of a parabola
over log-rate through the points near the minimum of the mean test curve that
trained) at each small size and at the target, whether every grid is interior
(``interior``: the minimum two points or more inside, the top rate failing), and what three
naive rules give at the target, as ``excess`` on the target's mean test curve:
reuse the largest small size's rate; that rate x (largest small / target); a
power law fitted over the small sizes' optima. The same table is printed from
the cache after a full run (``--report``).

    python benchmarks/transfer_problems.py --list
    python benchmarks/transfer_problems.py --scout [--problem NAME ...]
    nice -n 19 python benchmarks/transfer_problems.py --all [--log FILE]
    python benchmarks/transfer_problems.py --problem NAME [--force]
    python benchmarks/transfer_problems.py --report
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import Report, compile_seconds, load_note, machine_info, table
from flax import nnx
from suggestion_quality import (
    char_tokens,
    char_windows,
    cnn_loss,
    digits_cnn,
    splits,
    standardize,
    transformer_init,
    transformer_loss,
)
from tune_problems import stack_val, warmup_cosine

import lrjax
from lrjax import data

HERE = os.path.dirname(os.path.abspath(__file__))
#: Where ``main`` writes and ``load_curves`` reads, one ``NAME.npz`` per problem.
CACHE_DIR = os.path.join(HERE, "results", "transfer_curves_cpu")
SMALL_RATES = 31  # every other one: a 16-rate grid
SMALL_SEEDS = 5
TARGET_SEEDS = 3
SMALL_DIVERGE = 4.0  # sweep's default: what transfer's small runs see
DROPOUT_KEY = 1000  # the copies' random streams: key=PRNGKey(DROPOUT_KEY + seed)


class Split(NamedTuple):
    """A problem's data: training batches in one fixed order, stacked evaluation batches."""

    train: Any  # a pytree with a leading step axis: the longest run's batches
    val: Any  # [n, B, ...]: what the small runs are scored on
    test: Any  # [n, B, ...]: what the ground truth is measured on


@dataclasses.dataclass(frozen=True)
class TransferProblem:
    """One problem of the transfer benchmark (see the module docstring).

    Attributes:
      name: a short identifier.
      about: data, model, optimizer and schedule in words.
      along: ``"width"`` or ``"steps"``.
      model: ``(size, key) -> model`` along width, ``key -> model`` along steps
        (a pytree, an ``nnx.Module`` or an ``eqx.Module``).
      loss_fn: ``(model, batch) -> scalar``.
      optimizer: ``learning_rate -> GradientTransformation`` along width,
        ``(learning_rate, num_steps) -> GradientTransformation`` along steps.
      split: ``() -> Split`` (built on first use and kept).
      sizes: the small sizes (widths or run lengths), increasing.
      target: the size whose best rate is predicted.
      num_steps: along width, the steps of every run; ``None`` along steps.
      small_range: ``(low, high)`` of the small sizes' rates.
      target_range: ``(low, high)`` of the target's dense grid.
      framework: ``"pytree"``, ``"nnx"`` or ``"equinox"``.
      model_name, optimizer_name, schedule_name: for the tables.
      held_out: declared held out (never used to choose a default).
      target_num: rates in the target's grid.
    """

    name: str
    about: str
    along: str
    model: Callable[..., Any]
    loss_fn: Callable[[Any, Any], jax.Array]
    optimizer: Callable[..., optax.GradientTransformation]
    split: Callable[[], Split]
    sizes: tuple[int, ...]
    target: int
    num_steps: int | None
    small_range: tuple[float, float]
    target_range: tuple[float, float]
    framework: str
    model_name: str
    optimizer_name: str
    schedule_name: str
    held_out: bool = False
    target_num: int = 24

    def build(self, size: int, key: jax.Array) -> Any:
        """The model trained at ``size`` (along steps the size does not change it)."""
        return self.model(size, key) if self.along == "width" else self.model(key)

    def steps_at(self, size: int) -> int:
        """Training steps of a run at ``size``."""
        return self.num_steps if self.along == "width" else size

    def make_optimizer(self, size: int) -> Callable[..., optax.GradientTransformation]:
        """``learning_rate -> transform`` for a run at ``size``."""
        if self.along == "width":
            return self.optimizer
        return lambda learning_rate: self.optimizer(learning_rate, size)

    def small_lrs(self) -> np.ndarray:
        return np.geomspace(*self.small_range, SMALL_RATES).astype(np.float32)

    def target_lrs(self) -> np.ndarray:
        return np.geomspace(*self.target_range, self.target_num).astype(np.float32)


# -------------------------------------------------------------------------- data


@functools.cache
def digits_arrays():
    """Digits, split 1000 / 300 / 497 (``splits(seed=3)``)."""
    X, y = data.load_digits()
    return X, y, *splits(len(X), 1000, 300, seed=3)


@functools.cache
def noisy_arrays():
    """Synthetic 4 classes, 8 of 20 features informative, 20% label noise: 1600 / 1000 / 1400."""
    from sklearn.datasets import make_classification

    X, y = make_classification(4000, 20, n_informative=8, n_classes=4, flip_y=0.2, random_state=14)
    tr, va, te = splits(len(X), 1600, 1000, seed=14)
    return standardize(X, tr), y.astype(np.int32), tr, va, te


@functools.cache
def sines_arrays():
    """``sin(2 x0) cos(x1) + 0.5 x2 x3`` + noise 0.1, standardised: 2000 / 1000 / 2000."""
    rng = np.random.default_rng(18)
    X = rng.normal(size=(5000, 4)).astype(np.float32)
    y = np.sin(2 * X[:, 0]) * np.cos(X[:, 1]) + 0.5 * X[:, 2] * X[:, 3]
    y = y + 0.1 * rng.normal(size=len(X))
    tr, va, te = splits(len(X), 2000, 1000, seed=18)
    return X, ((y - y[tr].mean()) / y[tr].std()).astype(np.float32), tr, va, te


@functools.cache
def friedman_arrays():
    """Friedman #1 (10 features, 5 used, noise 0.5), standardised: 2000 / 1000 / 2000."""
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(5000, n_features=10, noise=0.5, random_state=22)
    tr, va, te = splits(len(X), 2000, 1000, seed=22)
    y = (y - y[tr].mean()) / y[tr].std()
    return standardize(X, tr), y.astype(np.float32), tr, va, te


def tabular(arrays: Callable[[], tuple], steps: int, batch: int, image: bool = False) -> Split:
    """Training batches (order: ``make_batches(seed=0)``), validation and test as 4 batches."""
    X, y, tr, va, te = arrays()
    if image:
        X = X.reshape(-1, 8, 8, 1)
    return Split(
        data.make_batches(X[tr], y[tr], steps, batch, seed=0),
        stack_val(X[va], y[va], 4),
        stack_val(X[te], y[te], 4),
    )


@functools.cache
def char_split(steps: int, batch: int = 8, ctx: int = 16) -> Split:
    """Random training windows (NumPy seed 1); 256 validation and 512 test windows, 4 batches."""
    tr, va, te = char_tokens()
    stack = lambda w: (w.reshape(4, -1, ctx + 1),)
    return Split(
        (char_windows(tr, steps * batch, ctx, 1).reshape(steps, batch, ctx + 1),),
        stack(char_windows(va, 256, ctx, 0)),
        stack(char_windows(te, 512, ctx, 0)),
    )


# ------------------------------------------------------------------------ models


def eqx_mlp(n_in: int, n_out: int, width: int, key: jax.Array) -> eqx.nn.MLP:
    """An Equinox ReLU MLP with two hidden layers of ``width`` (torch ``Linear``'s init)."""
    return eqx.nn.MLP(n_in, n_out, width, depth=2, activation=jax.nn.relu, key=key)


def eqx_ce_loss(model, batch):
    """Mean cross-entropy of an Equinox classifier (one example per call) on ``(x, y)``."""
    x, y = batch
    return optax.softmax_cross_entropy_with_integer_labels(jax.vmap(model)(x), y).mean()


def eqx_mse_loss(model, batch):
    """Mean squared error of an Equinox regressor with one output on ``(x, y)``."""
    x, y = batch
    return jnp.mean((jax.vmap(model)(x)[:, 0] - y) ** 2)


class LayerNormMLP(nnx.Module):
    """An NNX MLP: Linear - LayerNorm - ReLU, twice, then a Linear to ``n_out``."""

    def __init__(self, n_in: int, n_out: int, width: int, rngs: nnx.Rngs):
        self.l1 = nnx.Linear(n_in, width, rngs=rngs)
        self.n1 = nnx.LayerNorm(width, rngs=rngs)
        self.l2 = nnx.Linear(width, width, rngs=rngs)
        self.n2 = nnx.LayerNorm(width, rngs=rngs)
        self.out = nnx.Linear(width, n_out, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.n1(self.l1(x)))
        x = nnx.relu(self.n2(self.l2(x)))
        return self.out(x)


def nnx_mse_loss(model, batch):
    """Mean squared error of an NNX regressor with one output on ``(x, y)``."""
    x, y = batch
    return jnp.mean((model(x)[:, 0] - y) ** 2)


# ---------------------------------------------------------------------- problems


def _momentum_cosine(steps: int):
    return lambda learning_rate: optax.sgd(lrjax.cosine(learning_rate, steps), momentum=0.9)


def _adamw_warmup(steps: int):
    return lambda learning_rate: optax.adamw(
        warmup_cosine(learning_rate, steps, steps // 10), weight_decay=0.01
    )


#: The two CNN problems' split: the same images, read and batched once for both.
digits_image_split = functools.cache(lambda: tabular(digits_arrays, 300, 32, image=True))

PROBLEMS: tuple[TransferProblem, ...] = (
    TransferProblem(
        name="digits_mlp_adam",
        about="digits 1000/300/497, eqx.nn.MLP 64-w-w-10, Adam, cosine over 400 steps, batch 128",
        along="width",
        model=lambda size, key: eqx_mlp(64, 10, size, key),
        loss_fn=eqx_ce_loss,
        optimizer=lambda learning_rate: optax.adam(lrjax.cosine(learning_rate, 400)),
        split=functools.cache(lambda: tabular(digits_arrays, 400, 128)),
        sizes=(16, 32, 64, 128),
        target=512,
        num_steps=400,
        small_range=(1e-4, 1.0),
        target_range=(1e-4, 0.3),
        framework="equinox",
        model_name="MLP 64-w-w-10",
        optimizer_name="Adam",
        schedule_name="cosine",
    ),
    TransferProblem(
        name="noisy_mlp_momentum",
        about="4 classes, 20% label noise, 1600/1000/1400, MLP 20-w-w-4 (lrjax.data), "
        "SGD + momentum 0.9, cosine over 400 steps, batch 64",
        along="width",
        model=lambda size, key: data.init_mlp(key, (20, size, size, 4)),
        loss_fn=data.mlp_loss,
        optimizer=_momentum_cosine(400),
        split=functools.cache(lambda: tabular(noisy_arrays, 400, 64)),
        sizes=(16, 32, 64, 128),
        target=1024,
        num_steps=400,
        small_range=(1e-3, 10.0),
        target_range=(1e-4, 1.0),
        framework="pytree",
        model_name="MLP 20-w-w-4",
        optimizer_name="SGD momentum 0.9",
        schedule_name="cosine",
    ),
    TransferProblem(
        name="digits_cnn_adam",
        about="digits images 1000/300/497, NNX CNN conv3x3xw-BN-conv3x3x2w/2-BN-Dropout 0.2-"
        "linear, Adam, one-cycle over 300 steps, batch 32",
        along="width",
        model=lambda size, key: digits_cnn(size, key),
        loss_fn=cnn_loss,
        optimizer=lambda learning_rate: optax.adam(lrjax.one_cycle(learning_rate, 300)),
        split=digits_image_split,
        sizes=(4, 8, 16, 32),
        target=128,
        num_steps=300,
        small_range=(1e-4, 30.0),
        target_range=(1e-4, 3.0),
        framework="nnx",
        model_name="CNN, w and 2w channels",
        optimizer_name="Adam",
        schedule_name="one-cycle",
    ),
    TransferProblem(
        name="digits_cnn_nesterov",
        about="digits images 1000/300/497, NNX CNN conv3x3xw-BN-conv3x3x2w/2-BN-Dropout 0.2-"
        "linear, SGD + Nesterov 0.9, one-cycle over 300 steps, batch 32",
        along="width",
        model=lambda size, key: digits_cnn(size, key),
        loss_fn=cnn_loss,
        optimizer=lambda learning_rate: optax.sgd(
            lrjax.one_cycle(learning_rate, 300), momentum=0.9, nesterov=True
        ),
        split=digits_image_split,
        sizes=(4, 8, 16, 32),
        target=128,
        num_steps=300,
        small_range=(1e-3, 30.0),
        target_range=(1e-3, 10.0),
        framework="nnx",
        model_name="CNN, w and 2w channels",
        optimizer_name="SGD Nesterov 0.9",
        schedule_name="one-cycle",
    ),
    TransferProblem(
        name="char_transformer_adamw",
        about="Python stdlib source, 1-block transformer width w (2 heads, context 16, tied "
        "embeddings), AdamW (wd 0.01), warmup 10% + cosine over 300 steps, 8 windows per batch",
        along="width",
        model=lambda size, key: transformer_init(key, size),
        loss_fn=transformer_loss,
        optimizer=_adamw_warmup(300),
        split=functools.partial(char_split, 300),
        sizes=(8, 16, 32, 64),
        target=256,
        num_steps=300,
        small_range=(1e-4, 30.0),
        target_range=(1e-4, 30.0),
        framework="pytree",
        model_name="transformer, width w",
        optimizer_name="AdamW",
        schedule_name="warmup + cosine",
        target_num=32,  # 5.5 decades: the loss plateaus near the unigram's above 0.05
    ),
    TransferProblem(
        name="noisy_mlp_momentum_steps",
        about="4 classes, 20% label noise, 1600/1000/1400, MLP 20-64-64-4 (lrjax.data), "
        "SGD + momentum 0.9, cosine over the run, batch 64",
        along="steps",
        model=lambda key: data.init_mlp(key, (20, 64, 64, 4)),
        loss_fn=data.mlp_loss,
        optimizer=lambda learning_rate, num_steps: optax.sgd(
            lrjax.cosine(learning_rate, num_steps), momentum=0.9
        ),
        split=functools.cache(lambda: tabular(noisy_arrays, 3200, 64)),
        sizes=(100, 200, 400, 800),
        target=3200,
        num_steps=None,
        small_range=(1e-4, 10.0),
        target_range=(1e-4, 0.1),
        framework="pytree",
        model_name="MLP 20-64-64-4",
        optimizer_name="SGD momentum 0.9",
        schedule_name="cosine",
    ),
    TransferProblem(
        name="digits_mlp_adam_steps",
        about="digits 1000/300/497, eqx.nn.MLP 64-64-64-10, Adam, one-cycle over the run, batch 64",
        along="steps",
        model=lambda key: eqx_mlp(64, 10, 64, key),
        loss_fn=eqx_ce_loss,
        optimizer=lambda learning_rate, num_steps: optax.adam(
            lrjax.one_cycle(learning_rate, num_steps)
        ),
        split=functools.cache(lambda: tabular(digits_arrays, 3200, 64)),
        sizes=(100, 200, 400, 800),
        target=3200,
        num_steps=None,
        small_range=(1e-5, 1.0),
        target_range=(3e-4, 1.0),
        framework="equinox",
        model_name="MLP 64-64-64-10",
        optimizer_name="Adam",
        schedule_name="one-cycle",
    ),
    TransferProblem(
        name="char_transformer_steps",
        about="Python stdlib source, 1-block transformer width 16 (2 heads, context 16, tied "
        "embeddings), AdamW (wd 0.01), warmup 10% + cosine over the run, 8 windows per batch",
        along="steps",
        model=lambda key: transformer_init(key, 16),
        loss_fn=transformer_loss,
        optimizer=lambda learning_rate, num_steps: _adamw_warmup(num_steps)(learning_rate),
        split=functools.partial(char_split, 3200),
        sizes=(100, 200, 400, 800),
        target=3200,
        num_steps=None,
        small_range=(1e-4, 30.0),
        target_range=(3e-4, 30.0),
        framework="pytree",
        model_name="transformer, width 16",
        optimizer_name="AdamW",
        schedule_name="warmup + cosine",
        target_num=28,  # 5 decades: the loss plateaus near the unigram's above 0.1
    ),
    TransferProblem(
        name="sines_eqx_adam",
        about="regression sin(2 x0) cos(x1) + 0.5 x2 x3 + noise, 2000/1000/2000, "
        "eqx.nn.MLP 4-w-w-1, MSE, Adam, warmup 10% + cosine over 400 steps, batch 32",
        along="width",
        model=lambda size, key: eqx_mlp(4, 1, size, key),
        loss_fn=eqx_mse_loss,
        optimizer=lambda learning_rate: optax.adam(warmup_cosine(learning_rate, 400, 40)),
        split=functools.cache(lambda: tabular(sines_arrays, 400, 32)),
        sizes=(16, 32, 64, 128),
        target=512,
        num_steps=400,
        small_range=(1e-5, 1.0),
        target_range=(3e-4, 0.3),
        framework="equinox",
        model_name="MLP 4-w-w-1",
        optimizer_name="Adam",
        schedule_name="warmup + cosine",
        held_out=True,
    ),
    TransferProblem(
        name="friedman_nnx_nesterov_wsd",
        about="Friedman #1 regression, 2000/1000/2000, NNX MLP 10-64-64-1 with LayerNorm, MSE, "
        "SGD + Nesterov 0.9, warmup-stable-decay (5% warmup, last 20% decayed), batch 32",
        along="steps",
        model=lambda key: LayerNormMLP(10, 1, 64, nnx.Rngs(key)),
        loss_fn=nnx_mse_loss,
        optimizer=lambda learning_rate, num_steps: optax.sgd(
            lrjax.wsd(learning_rate, num_steps, warmup_steps=num_steps // 20, decay_fraction=0.2),
            momentum=0.9,
            nesterov=True,
        ),
        split=functools.cache(lambda: tabular(friedman_arrays, 3200, 32)),
        sizes=(100, 200, 400, 800),
        target=3200,
        num_steps=None,
        small_range=(1e-4, 10.0),
        target_range=(1e-3, 1.0),
        framework="nnx",
        model_name="MLP 10-64-64-1 + LayerNorm",
        optimizer_name="SGD Nesterov 0.9",
        schedule_name="warmup-stable-decay",
        held_out=True,
    ),
)

BY_NAME: dict[str, TransferProblem] = {p.name: p for p in PROBLEMS}


# -------------------------------------------------------------- models as arrays


def parts(model: Any, train: bool) -> tuple[Any, Any, Callable[[Any, Any], Any]]:
    """``(trained, rest, rebuild)``: the model's trained arrays, its other per-copy arrays
    and ``rebuild(trained, rest) -> model``, in train or eval (inference) mode.

    NNX: ``nnx.Param`` and the other variables (BatchNorm statistics, RNG state),
    the graph in ``.eval()`` mode when ``train`` is false; Equinox: the inexact
    arrays, under ``eqx.nn.inference_mode``; a pytree: itself.
    """
    if isinstance(model, nnx.Module):
        model = nnx.clone(model)
        if not train:
            model.eval()
        graphdef, trained, rest = nnx.split(model, nnx.Param, ...)
        return trained, rest, lambda t, r: nnx.merge(graphdef, t, r, copy=True)
    if isinstance(model, eqx.Module):
        model = eqx.nn.inference_mode(model, not train)
        trained, static = eqx.partition(model, eqx.is_inexact_array)
        return trained, (), lambda t, r: eqx.combine(t, static)
    return model, (), lambda t, r: t


def result_parts(model: Any, result: lrjax.SweepResult) -> tuple[Any, Any]:
    """``(trained, rest)`` of every copy of a one-seed sweep (``return_params=True``),
    stacked ``[K, ...]``."""
    first = lambda t: jax.tree.map(lambda a: a[0], t)
    if isinstance(model, nnx.Module):
        return first(result.params), first(result.state)
    if isinstance(model, eqx.Module):
        return first(eqx.filter(result.params, eqx.is_inexact_array)), ()
    return first(result.params), ()


def evaluator(problem: TransferProblem, model: Any) -> Callable[[Any, Any, Any], jax.Array]:
    """``eval(trained [K], rest [K], batches [n, ...]) -> [K]``: each copy's mean loss over
    the batches, the model in eval mode (what ``val_batches`` computes inside lrjax)."""
    _, _, rebuild = parts(model, train=False)

    def one(trained, rest, batches):
        return jax.lax.map(lambda b: problem.loss_fn(rebuild(trained, rest), b), batches).mean()

    return jax.jit(jax.vmap(one, in_axes=(0, 0, None)))


def initial_loss(problem: TransferProblem, model: Any, batches: Any) -> float:
    """The model's loss on ``batches`` before training (eval mode)."""
    trained, rest, _ = parts(model, train=False)
    add = lambda t: jax.tree.map(lambda a: a[None], t)
    return float(evaluator(problem, model)(add(trained), add(rest), batches)[0])


def step_flops(problem: TransferProblem, model: Any, batch: Any) -> float:
    """Forward + backward FLOPs of one training step of one copy (XLA's cost analysis)."""
    trained, rest, rebuild = parts(model, train=True)
    f = jax.value_and_grad(lambda t, r, b: problem.loss_fn(rebuild(t, r), b))
    cost = jax.jit(f).lower(trained, rest, batch).compile().cost_analysis()
    if isinstance(cost, (list, tuple)):  # older jax: one dict per device program
        cost = cost[0]
    return float(cost.get("flops", np.nan)) if cost else np.nan


# ------------------------------------------------------------------------ runner


class Run(NamedTuple):
    """One sweep call: a grid of rates for one seed at one size."""

    scores: np.ndarray  # [K] lrjax's evaluation after the last step (val or test split)
    test: np.ndarray | None  # [K] the test split, evaluated here (small sizes)
    train: np.ndarray  # [K] mean training loss over the last 10% of steps
    stop_step: np.ndarray  # [K] step a copy diverged at, -1 if never
    train0: float  # training loss at step 0
    wall_s: float
    compile_s: float
    strategy: str


def train_grid(
    problem: TransferProblem, size: int, lrs: np.ndarray, seed: int, *, target: bool
) -> Run:
    """Trains ``lrs`` at ``size`` from seed ``seed``'s initialization (one ``lrjax.sweep``).

    Small sizes (``target=False``): scored on the validation split by lrjax, and
    on the test split here from the returned parameters (the validation scores
    are recomputed here too, and must agree). Target: scored on the test split
    by lrjax, runs stopped only on non-finite losses.
    """
    split = problem.split()
    steps = problem.steps_at(size)
    model = problem.build(size, jax.random.PRNGKey(seed))
    with compile_seconds() as compiled:
        t0 = time.perf_counter()
        res = lrjax.sweep(
            problem.loss_fn,
            model,
            split.train,
            problem.make_optimizer(size),
            {"learning_rate": lrs},
            num_steps=steps,
            key=jax.random.PRNGKey(DROPOUT_KEY + seed),
            val_batches=split.test if target else split.val,
            diverge_factor=None if target else SMALL_DIVERGE,
            return_params=not target,
            progress=False,
        )
        wall = time.perf_counter() - t0
    stop = np.asarray(res.stop_step[0])
    losses = np.asarray(res.losses[0], np.float64)
    window = max(1, steps // 10)  # sweep's training score: the last 10% of steps
    with np.errstate(invalid="ignore"):
        train = np.where(stop >= 0, np.nan, losses[:, steps - window :].mean(-1))
    scores = np.where(stop >= 0, np.nan, np.asarray(res.val_losses[0], np.float64))
    test = None
    if not target:
        trained, rest = result_parts(model, res)
        ev = evaluator(problem, model)
        mine = np.asarray(ev(trained, rest, split.val), np.float64)
        ok = np.isfinite(scores)
        gap = np.max(np.abs(mine[ok] - scores[ok]) / np.maximum(1.0, np.abs(scores[ok])), initial=0)
        # both are float32 means of the same numbers, reduced in other orders
        if gap > 1e-4:
            raise AssertionError(
                f"{problem.name} size {size}: evaluation differs from lrjax's by {gap:.2e}"
            )
        test = np.where(ok, np.asarray(ev(trained, rest, split.test), np.float64), np.nan)
    return Run(scores, test, train, stop, float(losses[0, 0]), wall, compiled[0], res.strategy)


def run_small(
    problem: TransferProblem,
    *,
    seeds: int = SMALL_SEEDS,
    every: int = 1,
    log: Callable[[str], None] = print,
) -> dict[str, np.ndarray]:
    """The small sizes' runs: the ``small_*`` arrays of ``Curves`` (and the sizes).

    ``every`` keeps every n-th rate of the grid (the scout).
    """
    split = problem.split()
    S = len(problem.sizes)
    lrs = problem.small_lrs()[::every]
    K = len(lrs)
    nan = lambda *shape: np.full(shape, np.nan)
    out: dict[str, Any] = {
        "sizes": np.array(problem.sizes, np.int64),
        "steps": np.array([problem.steps_at(s) for s in problem.sizes], np.int64),
        "small_lrs": lrs,
        "small_val": nan(S, seeds, K),
        "small_test": nan(S, seeds, K),
        "small_train": nan(S, seeds, K),
        "small_stop_step": np.full((S, seeds, K), -1, np.int32),
        "small_train0": nan(S, seeds),
        "small_val0": nan(S, seeds),
        "small_test0": nan(S, seeds),
        "small_wall_s": nan(S, seeds),
        "small_compile_s": nan(S, seeds),
        "small_flops": nan(S),
    }
    first_batch = jax.tree.map(lambda a: a[0], split.train)
    for i, size in enumerate(problem.sizes):
        for s in range(seeds):
            model = problem.build(size, jax.random.PRNGKey(s))
            if s == 0:
                out["small_flops"][i] = step_flops(problem, model, first_batch)
            out["small_val0"][i, s] = initial_loss(problem, model, split.val)
            out["small_test0"][i, s] = initial_loss(problem, model, split.test)
            r = train_grid(problem, size, lrs, s, target=False)
            out["small_val"][i, s] = r.scores
            out["small_test"][i, s] = r.test
            out["small_train"][i, s] = r.train
            out["small_stop_step"][i, s] = r.stop_step
            out["small_train0"][i, s] = r.train0
            out["small_wall_s"][i, s] = r.wall_s
            out["small_compile_s"][i, s] = r.compile_s
            log(
                f"  {problem.name} size {size} seed {s}: {K} rates x {problem.steps_at(size)} "
                f"steps, {r.wall_s:.1f} s (compile {r.compile_s:.1f} s, {r.strategy}), "
                f"diverged {int(np.sum(r.stop_step >= 0))}"
            )
    return out


def run_target(
    problem: TransferProblem,
    *,
    seeds: int = TARGET_SEEDS,
    every: int = 1,
    log: Callable[[str], None] = print,
) -> dict[str, np.ndarray]:
    """The ground truth at the target: the ``target*`` arrays of ``Curves``."""
    split = problem.split()
    lrs = problem.target_lrs()[::every]
    N = len(lrs)
    nan = lambda *shape: np.full(shape, np.nan)
    out: dict[str, Any] = {
        "target": np.int64(problem.target),
        "target_steps": np.int64(problem.steps_at(problem.target)),
        "target_lrs": lrs,
        "target_test": nan(seeds, N),
        "target_train": nan(seeds, N),
        "target_stop_step": np.full((seeds, N), -1, np.int32),
        "target_train0": nan(seeds),
        "target_test0": nan(seeds),
        "target_wall_s": nan(seeds),
        "target_compile_s": nan(seeds),
        "target_flops": np.float64(np.nan),
    }
    first_batch = jax.tree.map(lambda a: a[0], split.train)
    for s in range(seeds):
        model = problem.build(problem.target, jax.random.PRNGKey(s))
        if s == 0:
            out["target_flops"] = np.float64(step_flops(problem, model, first_batch))
        out["target_test0"][s] = initial_loss(problem, model, split.test)
        r = train_grid(problem, problem.target, lrs, s, target=True)
        out["target_test"][s] = r.scores
        out["target_train"][s] = r.train
        out["target_stop_step"][s] = r.stop_step
        out["target_train0"][s] = r.train0
        out["target_wall_s"][s] = r.wall_s
        out["target_compile_s"][s] = r.compile_s
        log(
            f"  {problem.name} target {problem.target} seed {s}: {N} rates x "
            f"{problem.steps_at(problem.target)} steps, {r.wall_s:.1f} s (compile "
            f"{r.compile_s:.1f} s, {r.strategy}), stopped {int(np.sum(r.stop_step >= 0))}"
        )
    return out


# ------------------------------------------------------------------------- cache


class Curves(NamedTuple):
    """One problem's cached runs (``load_curves``). ``S`` small sizes, ``K`` small rates,
    ``N`` target rates; losses are NaN where a run diverged (stopped).

    Attributes:
      name, along, held_out, framework, about, model, optimizer, schedule: the problem.
      sizes: ``[S]`` small sizes (widths or run lengths).
      target: the target size.
      steps: ``[S]`` training steps of a small run; ``target_steps``: of a target run.
      small_lrs: ``[K]`` rates trained at every small size (31: every other one
        is a 16-rate grid).
      small_val, small_test: ``[S, seeds, K]`` validation / test loss after the
        last step.
      small_train: ``[S, seeds, K]`` mean training loss over the last 10% of steps.
      small_stop_step: ``[S, seeds, K]`` int, the step a run diverged at
        (``diverge_factor=4``), ``-1`` if it never did.
      small_train0: ``[S, seeds]`` training loss at step 0 (first batch, initial model).
      small_val0, small_test0: ``[S, seeds]`` validation / test loss at initialization.
      small_wall_s, small_compile_s: ``[S, seeds]`` seconds of each sweep call and of
        JAX compiling inside it (the first seed of a size compiles).
      small_flops: ``[S]`` forward + backward FLOPs of one step of one copy.
      target_lrs: ``[N]`` the target's dense grid.
      target_test: ``[seeds, N]`` test loss after the last step (the ground truth).
      target_train: ``[seeds, N]`` mean training loss over the last 10% of steps.
      target_stop_step: ``[seeds, N]`` (only non-finite losses stop a target run).
      target_train0, target_test0: ``[seeds]`` losses at initialization.
      target_wall_s, target_compile_s: ``[seeds]`` seconds per call.
      target_flops: forward + backward FLOPs of one step of one copy at the target.
      machine: where it ran.
      date: when it was written (UTC).
    """

    name: str
    along: str
    held_out: bool
    framework: str
    about: str
    model: str
    optimizer: str
    schedule: str
    sizes: np.ndarray
    target: int
    steps: np.ndarray
    target_steps: int
    small_lrs: np.ndarray
    small_val: np.ndarray
    small_test: np.ndarray
    small_train: np.ndarray
    small_stop_step: np.ndarray
    small_train0: np.ndarray
    small_val0: np.ndarray
    small_test0: np.ndarray
    small_wall_s: np.ndarray
    small_compile_s: np.ndarray
    small_flops: np.ndarray
    target_lrs: np.ndarray
    target_test: np.ndarray
    target_train: np.ndarray
    target_stop_step: np.ndarray
    target_train0: np.ndarray
    target_test0: np.ndarray
    target_wall_s: np.ndarray
    target_compile_s: np.ndarray
    target_flops: float
    machine: str
    date: str


_STRINGS = (
    "name", "along", "framework", "about", "model", "optimizer", "schedule", "machine", "date",
)  # fmt: skip


def curves_from(problem: TransferProblem, arrays: dict[str, Any], machine: str = "") -> Curves:
    """The ``Curves`` of a run's arrays (``run_small | run_target``)."""
    f32 = lambda a: np.asarray(a, np.float32) if np.asarray(a).dtype.kind == "f" else np.asarray(a)
    fields = {k: f32(v) for k, v in arrays.items()}
    fields["target"] = int(arrays["target"])
    fields["target_steps"] = int(arrays["target_steps"])
    fields["target_flops"] = float(arrays["target_flops"])
    return Curves(
        name=problem.name,
        along=problem.along,
        held_out=problem.held_out,
        framework=problem.framework,
        about=problem.about,
        model=problem.model_name,
        optimizer=problem.optimizer_name,
        schedule=problem.schedule_name,
        machine=machine,
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        **fields,
    )


def save_curves(curves: Curves, folder: str = CACHE_DIR) -> str:
    """Writes ``folder/NAME.npz`` (float32 losses, no parameters); returns the path."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{curves.name}.npz")
    arrays = {k: np.asarray(v) for k, v in curves._asdict().items()}
    np.savez_compressed(path, **arrays)
    return path


def load_curves(name: str, folder: str = CACHE_DIR) -> Curves:
    """One problem's cached runs (see ``Curves``), read with NumPy only.

    Example:
      >>> c = load_curves("digits_mlp_adam")  # doctest: +SKIP
      >>> c.small_test.shape, c.target_test.shape  # doctest: +SKIP
      ((4, 5, 31), (3, 24))
    """
    with np.load(os.path.join(folder, f"{name}.npz")) as z:
        f = {k: z[k] for k in z.files}
    for k in _STRINGS:
        f[k] = str(f[k])
    f["held_out"] = bool(f["held_out"])
    f["target"] = int(f["target"])
    f["target_steps"] = int(f["target_steps"])
    f["target_flops"] = float(f["target_flops"])
    return Curves(**f)


def load_all(folder: str = CACHE_DIR) -> dict[str, Curves]:
    """Every cached problem, in suite order (those not cached yet are left out)."""
    return {
        p.name: load_curves(p.name, folder)
        for p in PROBLEMS
        if os.path.exists(os.path.join(folder, f"{p.name}.npz"))
    }


# ---------------------------------------------------------------------- analysis


def mean_curve(losses: np.ndarray, l0: np.ndarray) -> np.ndarray:
    """The mean over seeds of ``losses [seeds, K]``, a diverged run or one worse than
    its seed's initial loss ``l0 [seeds]`` counted as ``l0`` (excess 1)."""
    l0 = np.asarray(l0, np.float64)[:, None]
    losses = np.asarray(losses, np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(losses) & (losses < l0), losses, l0).mean(0)


def best_rate(lrs: np.ndarray, curve: np.ndarray, l0: float, half: int = 2) -> float:
    """The vertex of a parabola in log-rate fitted (least squares) to the points within
    ``half`` of the curve's minimum that trained (excess below 0.25: a failing run says
    where the cliff is, not the curve's shape); the grid's best rate where fewer than
    three points remain or the fit has no minimum inside them (a curve that falls up
    to a cliff, or is flat)."""
    x = np.log(np.asarray(lrs, np.float64))
    i = int(np.argmin(curve))
    best = curve[i]
    idx = [j for j in range(max(0, i - half), min(len(x), i + half + 1))]
    idx = [j for j in idx if curve[j] - best < 0.25 * (l0 - best)]
    if len(idx) < 3:
        return float(lrs[i])
    a, b, _ = np.polyfit(x[idx], curve[idx], 2)
    if a <= 0:
        return float(lrs[i])
    v = -b / (2 * a)
    return float(np.exp(v)) if x[idx[0]] <= v <= x[idx[-1]] else float(lrs[i])


def excess(lr: float, lrs: np.ndarray, curve: np.ndarray, l0: float) -> float:
    """``(L(lr) - L*) / (L0 - L*)`` with ``L`` interpolated linearly in log-rate.

    Above the grid (whose top diverges): 1. Below it: the grid's first point
    (an underestimate, where the curve still falls).
    """
    lrs = np.asarray(lrs, np.float64)
    if not np.isfinite(lr) or lr <= 0 or lr > lrs[-1]:
        return 1.0
    best = float(np.min(curve))
    loss = float(np.interp(np.log(max(lr, lrs[0])), np.log(lrs), curve))
    return (loss - best) / (l0 - best)


def naive_rules(sizes: np.ndarray, optima: np.ndarray, target: int) -> dict[str, float]:
    """The target's rate by three naive rules from the small sizes' optima."""
    sizes = np.asarray(sizes, np.float64)
    slope, intercept = np.polyfit(np.log(sizes), np.log(optima), 1)
    return {
        "reuse": float(optima[-1]),
        "scaled": float(optima[-1] * sizes[-1] / target),
        "power": float(np.exp(intercept + slope * np.log(target))),
        "exponent": float(slope),
    }


def interior(curve: np.ndarray, l0: float, margin: int = 2) -> str:
    """``"yes"`` when the curve's minimum lies ``margin`` points or more inside the grid and
    its top rate fails (excess above 0.3: diverged, or little better than not training);
    else what is wrong."""
    i = int(np.argmin(curve))
    wrong = []
    if i < margin:
        wrong.append("min at low end")
    if i > len(curve) - 1 - margin:
        wrong.append("min at high end")
    if curve[-1] - curve.min() < 0.3 * (l0 - curve.min()):
        wrong.append("top rate still trains")
    return "yes" if not wrong else "NO: " + ", ".join(wrong)


def summary_row(c: Curves) -> tuple[list[str], dict[str, Any]]:
    """The scout table's row for a problem, and its numbers."""
    optima, checks = [], []
    for i in range(len(c.sizes)):
        curve = mean_curve(c.small_test[i], c.small_test0[i])
        optima.append(best_rate(c.small_lrs, curve, float(np.mean(c.small_test0[i]))))
        checks.append(interior(curve, float(np.mean(c.small_test0[i]))))
    optima = np.array(optima)
    tcurve = mean_curve(c.target_test, c.target_test0)
    l0 = float(np.mean(c.target_test0))
    star = best_rate(c.target_lrs, tcurve, l0)
    rules = naive_rules(c.sizes, optima, c.target)
    ex = {k: excess(rules[k], c.target_lrs, tcurve, l0) for k in ("reuse", "scaled", "power")}
    bad_small = [f"{s}: {m}" for s, m in zip(c.sizes, checks) if m != "yes"]
    row = [
        c.name + (" (held out)" if c.held_out else ""),
        c.along,
        " / ".join(f"{o:.2g}" for o in optima),
        f"{star:.2g}",
        f"{optima[0] / star:.1f}x",
        interior(tcurve, l0),
        "yes" if not bad_small else "NO (" + "; ".join(bad_small) + ")",
        f"{rules['reuse']:.2g}: {ex['reuse']:.3f}",
        f"{rules['scaled']:.2g}: {ex['scaled']:.3f}",
        f"{rules['power']:.2g} ({rules['exponent']:+.2f}): {ex['power']:.3f}",
        f"{np.nansum(c.small_wall_s):.0f} / {np.nansum(c.target_wall_s):.0f}",
    ]
    return row, {"optima": optima, "target_best": star, "excess": ex, "rules": rules}


SUMMARY_HEADER = [
    "problem", "along", "best rate at the small sizes", "best at target", "move",
    "target grid interior", "small grids interior", "reuse: rate, excess",
    "x small/target: rate, excess", "power law (exponent): rate, excess", "small / target s",
]  # fmt: skip


def compute_row(c: Curves) -> list[str]:
    """The compute table's row: FLOPs per step, one copy at every small size against one
    at the target, and the cached grids' FLOPs and wall times."""
    one_small = float(np.sum(c.small_flops * c.steps))  # one copy at each small size
    one_target = c.target_flops * c.target_steps
    seeds, K = c.small_test.shape[1:]
    small_total = one_small * seeds * K
    target_total = one_target * c.target_test.size
    return [
        c.name,
        " / ".join(f"{f / 1e6:.3g}" for f in c.small_flops) + f" -> {c.target_flops / 1e6:.3g}",
        f"{one_small / one_target:.3f}",
        f"{small_total / 1e12:.3g} ({seeds} x {K})",
        f"{target_total / 1e12:.3g} ({c.target_test.shape[0]} x {c.target_test.shape[1]})",
        f"{np.nansum(c.small_wall_s):.0f} / {np.nansum(c.target_wall_s):.0f}",
        f"{np.nansum(c.small_compile_s) + np.nansum(c.target_compile_s):.0f}",
    ]


COMPUTE_HEADER = [
    "problem", "MFLOP per step: small sizes -> target", "one copy per small size / one at target",
    "small grids TFLOP (seeds x rates)", "target grid TFLOP (seeds x rates)",
    "wall s: small / target", "of which compile s",
]  # fmt: skip


def problems_table() -> str:
    rows = [
        [
            p.name,
            p.along,
            p.framework,
            p.model_name,
            p.optimizer_name,
            p.schedule_name,
            "/".join(map(str, p.sizes)),
            p.target,
            p.num_steps or "-",
            "yes" if p.held_out else "",
        ]
        for p in PROBLEMS
    ]
    header = [
        "problem", "along", "model as", "model", "optimizer", "schedule", "small sizes",
        "target", "steps per run", "held out",
    ]  # fmt: skip
    return table(rows, header)


# -------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--list", action="store_true", help="print the problems")
    mode.add_argument("--scout", action="store_true", help="2 seeds, every other rate; no cache")
    mode.add_argument("--all", action="store_true", help="the full runs of every problem")
    mode.add_argument("--report", action="store_true", help="the summary table from the cache")
    mode.add_argument("--problem", action="append", help="the full runs of this problem")
    ap.add_argument("--only", action="append", help="with --scout / --report: these problems")
    ap.add_argument("--force", action="store_true", help="rerun problems already cached")
    ap.add_argument(
        "--target-only",
        action="store_true",
        help="rerun the target's grid of cached problems (after changing target_range)",
    )
    ap.add_argument("--cache", default=CACHE_DIR, help="the cache folder")
    ap.add_argument("--log", default=None, help="also write the report to this file")
    ap.add_argument("--save", default=None, help="with --scout: write its curves to this folder")
    args = ap.parse_args(argv)
    report = Report()
    if args.list:
        report(problems_table())
        return
    report(machine_info())
    report(load_note())
    if args.report:
        curves = load_all(args.cache)
        names = args.only or list(curves)
        report(problems_table())
        report()
        report("Best rates (test loss) and three naive rules at the target, from the cache:")
        report(table([summary_row(curves[n])[0] for n in names], SUMMARY_HEADER))
        report()
        report("Compute (forward + backward FLOPs of one step of one copy, XLA cost analysis):")
        report(table([compute_row(curves[n]) for n in names], COMPUTE_HEADER))
        report.write(args.log)
        return
    names = args.only or [p.name for p in PROBLEMS]
    if args.problem:
        names = args.problem
    elif args.all:
        names = [p.name for p in PROBLEMS]
    scout = args.scout
    rows = []
    t_all = time.perf_counter()
    for name in names:
        problem = BY_NAME[name]
        path = os.path.join(args.cache, f"{name}.npz")
        if not scout and os.path.exists(path) and not (args.force or args.target_only):
            report(f"{name}: cached ({path}); --force reruns it")
            rows.append(summary_row(load_curves(name, args.cache))[0])
            continue
        report(f"{name}: {problem.about}")
        t0 = time.perf_counter()
        if scout:
            arrays = run_small(problem, seeds=2, every=2, log=report)
            arrays |= run_target(problem, seeds=2, every=2, log=report)
        elif args.target_only:
            old = load_curves(name, args.cache)._asdict()
            arrays = {k: v for k, v in old.items() if k.startswith(("small", "sizes", "steps"))}
            arrays |= run_target(problem, log=report)
        else:
            arrays = run_small(problem, log=report) | run_target(problem, log=report)
        curves = curves_from(problem, arrays, machine_info())
        if not scout or args.save:
            report(f"  wrote {save_curves(curves, args.save if scout else args.cache)}")
        row = summary_row(curves)[0]
        rows.append(row)
        report(f"{name}: {time.perf_counter() - t0:.0f} s; " + " | ".join(row[2:]))
    report()
    report(
        f"{'scout: 2 seeds, every other rate' if scout else 'full runs'}; "
        f"total {time.perf_counter() - t_all:.0f} s; {load_note()}"
    )
    report(table(rows, SUMMARY_HEADER))
    report.write(args.log)


if __name__ == "__main__":
    main()
