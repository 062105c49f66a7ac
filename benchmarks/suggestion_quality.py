"""How good are the suggested learning rates? Every rule against dense grids, on a suite.

A suite of small problems that differ in data (scikit-learn sets, synthetic sets
with label noise, digits images for an NNX CNN with BatchNorm and Dropout, Python
standard-library source for a character-level transformer), optimizer (SGD,
SGD + momentum, Adam, AdamW), feature scale (inputs multiplied by 1e-2 .. 1e2, so
the best rate moves over several decades) and size (three training sets of
70-120 examples that overfit). The digits MLP of ``lrjax.data`` (the demo) is
not in it. Each problem has a fixed train / validation / test split.

For each problem and each of ``--seeds`` seeds (a new initialisation and batch
order):

1. **Suggestions.** Range tests over the problem's rate range, ``T`` steps
   each, on the first ``T`` training batches: lrjax parallel (``K`` rates;
   once scored on the training loss, once with ``val_batches`` and
   ``eval_every``), ``lrjax.lr_find``, and torch-lr-finder on the same
   model in PyTorch (a twin built from the same initial weights, computing
   the same forward pass, on the same batches; ``_torch_ref.py``) without and
   with its ``val_loader``. Every rule reads one of these results; the candidate
   rules (``cand:``) are written below as functions of a result's public
   arrays (``lrs``, ``scores``, ``curve()``, ``losses``).
2. **Ground truth.** A dense grid of ``--grid`` log-spaced rates over the same
   range, and every suggested rate, train at a constant rate for ``10 T``
   steps from the same start on the same batches with the trainer written
   here (a plain ``jit(vmap(vmap(scan)))`` over seeds and rates, independent
   of lrjax's engine); the test loss is read after ``3 T`` and ``10 T``
   steps.
3. **Score.** With ``L0`` the initial test loss and ``L*`` the best grid test
   loss at that budget, a rule's *excess* is ``(L - L*) / (L0 - L*)`` (0: as
   good as the best grid rate; negative: better; 1: no better than not
   training). A rate that diverges, a test loss above ``L0`` or a rule that
   gives no rate counts as 1.

Tables: mean excess over seeds, per problem, for the 3x and 10x budgets, the
max and mean over problems, and the winner (lowest max, then lowest mean)
among the rules without and with validation data.

    python benchmarks/suggestion_quality.py [--seeds 3] [--grid 32] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import glob
import itertools
import math
import os
import platform
import sysconfig
import time
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import Report, machine_info, table

import lrjax
from lrjax import data

K = 32  # rates in the parallel test
OPTIMIZERS: dict[str, Callable[[Any], optax.GradientTransformation]] = {
    "sgd": optax.sgd,
    "momentum": lambda lr: optax.sgd(lr, momentum=0.9),
    "nesterov": lambda lr: optax.sgd(lr, momentum=0.9, nesterov=True),
    "adam": optax.adam,
    "adamw": lambda lr: optax.adamw(lr, weight_decay=0.01),
}


# ----------------------------------------------------------------------- problems


@dataclasses.dataclass
class Problem:
    """One suite problem: data, model, optimizer, the rate range tested."""

    name: str
    about: str
    optimizer: str
    min_lr: float
    max_lr: float
    test_steps: int
    init: Callable[[int], Any]  # seed -> params (pytree) or nnx.Module
    loss: Callable[[Any, Any], jax.Array]  # (params | model, batch) -> scalar
    batches: Callable[[int, int], Any]  # (seed, steps) -> batches [steps, ...]
    val: Any  # one evaluation batch (stacked [1, ...] for lrjax)
    test: Any  # one evaluation batch
    task: str = "ce"  # "ce", "mse", "lm"
    # the torch twin for torch-lr-finder: a builder of _torch_ref.TWINS (None: no twin)
    twin: str | None = "mlp"
    twin_args: dict[str, Any] = dataclasses.field(default_factory=dict)
    # (params | model, inputs) -> outputs (logits), where the loss does not show it;
    # tests/test_torch_twins.py checks the twins against it
    forward: Callable[[Any, Any], jax.Array] | None = None
    nnx: bool = False
    grid: int | None = None  # rates in the ground-truth grid (None: --grid)

    @property
    def torch(self) -> bool:
        """Whether torch-lr-finder runs on this problem (it has a torch twin)."""
        return self.twin is not None


def splits(n: int, n_train: int, n_val: int, n_test: int | None = None, seed: int = 0):
    order = np.random.default_rng(seed).permutation(n)
    tr, va = order[:n_train], order[n_train : n_train + n_val]
    te = order[n_train + n_val :] if n_test is None else order[n_train + n_val :][:n_test]
    return tr, va, te


def standardize(X, tr, scale=1.0):
    mu, sd = X[tr].mean(0), X[tr].std(0)
    return ((X - mu) / np.where(sd > 0, sd, 1.0) * scale).astype(np.float32)


def mse_loss(params, batch):
    x, y = batch
    return jnp.mean((data.mlp_apply(params, x)[:, 0] - y) ** 2)


def tabular(name, about, X, y, sizes, tr, va, te, optimizer, lr_range, batch, task="ce"):
    X = np.asarray(X, np.float32)
    y = np.asarray(y, np.int32 if task == "ce" else np.float32)

    def init(seed):
        return data.init_mlp(jax.random.PRNGKey(seed), sizes)

    def batches(seed, steps):
        return data.make_batches(X[tr], y[tr], steps, batch, seed + 1)

    n_params = sum(a * b + b for a, b in itertools.pairwise(sizes))
    about = f"{about}; MLP {'-'.join(map(str, sizes))} ({n_params} params), batch {batch}"
    about += f"; {len(tr)}/{len(va)}/{len(te)} train/val/test"
    return Problem(
        name,
        about,
        optimizer,
        *lr_range,
        test_steps=100,
        init=init,
        loss=data.mlp_loss if task == "ce" else mse_loss,
        batches=batches,
        val=(X[va], y[va]),
        test=(X[te], y[te]),
        task=task,
    )


def cancer():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    tr, va, te = splits(len(X), 120, 100)
    X = standardize(X, tr)
    about = "breast cancer (30 features, small: overfits), Adam"
    return tabular("cancer", about, X, y, (30, 32, 2), tr, va, te, "adam", (1e-5, 10.0), 32)


def wine():
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    tr, va, te = splits(len(X), 70, 40)
    X = standardize(X, tr, 10.0)
    about = "wine (13 features x 10, tiny: overfits), SGD"
    return tabular("wine x10", about, X, y, (13, 32, 3), tr, va, te, "sgd", (1e-7, 1.0), 32)


def noisy():
    from sklearn.datasets import make_classification

    X, y = make_classification(3000, 20, n_informative=8, flip_y=0.2, class_sep=1.0, random_state=1)
    tr, va, te = splits(len(X), 2000, 400)
    X = standardize(X, tr, 100.0)
    about = "synthetic, 20% label noise, features x 100, SGD + momentum 0.9"
    sizes = (20, 32, 2)
    return tabular("noisy x100", about, X, y, sizes, tr, va, te, "momentum", (1e-9, 1e-2), 64)


def small():
    from sklearn.datasets import make_classification

    X, y = make_classification(700, 30, n_informative=5, flip_y=0.3, random_state=2)
    tr, va, te = splits(len(X), 100, 100)
    X = standardize(X, tr)
    about = "synthetic, 30% label noise, 100 training examples (overfits), AdamW (wd 0.01)"
    return tabular("small noisy", about, X, y, (30, 64, 2), tr, va, te, "adamw", (1e-5, 10.0), 32)


def diabetes():
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    tr, va, te = splits(len(X), 250, 80)
    X = standardize(X, tr)
    y = (y - y[tr].mean()) / y[tr].std()
    about = "diabetes regression (10 features), MSE, SGD"
    sizes = (10, 32, 1)
    return tabular("diabetes", about, X, y, sizes, tr, va, te, "sgd", (1e-6, 10.0), 32, "mse")


def regression():
    from sklearn.datasets import make_regression

    X, y = make_regression(2000, 20, n_informative=10, noise=30.0, random_state=3)
    y = np.tanh(y / 100.0) * 100.0  # a little nonlinearity
    tr, va, te = splits(len(X), 1500, 200)
    X = standardize(X, tr, 0.01)
    y = (y - y[tr].mean()) / y[tr].std()
    about = "synthetic regression, features x 0.01, MSE, Adam"
    sizes = (20, 32, 1)
    return tabular("reg x0.01", about, X, y, sizes, tr, va, te, "adam", (1e-4, 100.0), 64, "mse")


def logreg():
    from sklearn.datasets import make_classification

    X, y = make_classification(2000, 10, n_informative=6, n_classes=3, flip_y=0.05, random_state=4)
    tr, va, te = splits(len(X), 1200, 300)
    X = standardize(X, tr, 0.1)
    about = "synthetic 3 classes, features x 0.1, logistic regression, plain SGD"
    sizes = (10, 3)
    return tabular("logreg x0.1", about, X, y, sizes, tr, va, te, "sgd", (1e-4, 1e3), 64)


def patches(x, stride: int = 1):
    """``[B, H, W, C] -> [B, H', W', 9 C]``: the 3x3 neighbourhoods (zero padding), by slicing.

    A 3x3 convolution is ``Linear(patches(x))``. Written with slices and a
    matmul rather than ``lax.conv`` because XLA's CPU convolutions are slow
    once vmapped over many copies (the suite trains hundreds side by side).
    """
    H, W = x.shape[1:3]
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    cols = [xp[:, i : i + H : stride, j : j + W : stride] for i in range(3) for j in range(3)]
    return jnp.concatenate(cols, -1)


def digits_cnn(width: int, key: Any) -> Any:
    """The suite's NNX CNN for 8x8 digits with ``width`` channels (then ``2 width``).

    conv3x3 x width - BatchNorm - conv3x3 x 2 width, stride 2 - BatchNorm -
    Dropout 0.2 - Linear to 10 classes; ``key``: a PRNG key or an int seed.
    """
    from flax import nnx

    return _cnn_class()(width, nnx.Rngs(key))


@functools.cache
def _cnn_class() -> type:
    """The CNN's class, made once (Flax imported only when a CNN is built)."""
    from flax import nnx

    class CNN(nnx.Module):
        def __init__(self, width: int, rngs: nnx.Rngs):
            self.conv1 = nnx.Linear(9, width, rngs=rngs)  # 3x3 conv, 1 -> width
            self.bn1 = nnx.BatchNorm(width, rngs=rngs)
            self.conv2 = nnx.Linear(9 * width, 2 * width, rngs=rngs)  # 3x3 conv, stride 2
            self.bn2 = nnx.BatchNorm(2 * width, rngs=rngs)
            self.dropout = nnx.Dropout(0.2, rngs=rngs)
            self.head = nnx.Linear(4 * 4 * 2 * width, 10, rngs=rngs)

        def __call__(self, x):
            x = nnx.relu(self.bn1(self.conv1(patches(x))))
            x = nnx.relu(self.bn2(self.conv2(patches(x, 2))))
            return self.head(self.dropout(x.reshape(x.shape[0], -1)))

    return CNN


def cnn_loss(model, batch):
    """Mean cross-entropy of a classifier ``model(x)`` on ``batch = (x, y)``."""
    x, y = batch
    return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()


def cnn(width: int = 6, batch: int = 32):
    from flax import nnx

    X, y = data.load_digits()
    X = X.reshape(-1, 8, 8, 1)
    tr, va, te = splits(len(X), 1000, 200, 400, seed=1)
    abstract = nnx.eval_shape(lambda: digits_cnn(width, 0))  # shapes only: nothing runs
    n_params = sum(x.size for x in jax.tree.leaves(nnx.state(abstract, nnx.Param)))

    return Problem(
        "digits CNN",
        f"digits 8x8 images, NNX CNN conv3x3x{width}-BN-conv3x3x{2 * width}/2-BN-Dropout 0.2-"
        f"linear (convolutions as patches + Linear)"
        f" ({n_params} params), SGD + Nesterov momentum 0.9, batch {batch}; "
        f"{len(tr)}/{len(va)}/{len(te)} train/val/test",
        "nesterov",
        1e-4,
        100.0,
        test_steps=50,
        init=lambda seed: digits_cnn(width, seed),
        loss=cnn_loss,
        batches=lambda seed, steps: data.make_batches(X[tr], y[tr], steps, batch, seed + 1),
        val=(X[va], y[va]),
        test=(X[te], y[te]),
        twin="cnn",
        forward=lambda model, x: model(x),
        nnx=True,
        grid=24,
    )


def stdlib_text(n_chars: int = 120_000) -> str:
    """Python standard-library source, a fixed list of modules, ASCII only."""
    root = sysconfig.get_paths()["stdlib"]
    names = [
        "textwrap.py",
        "string.py",
        "shlex.py",
        "fnmatch.py",
        "glob.py",
        "bisect.py",
        "heapq.py",
        "colorsys.py",
        "getopt.py",
        "sched.py",
        "queue.py",
        "calendar.py",
    ]
    parts = []
    for n in names:
        path = os.path.join(root, n)
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                parts.append(f.read())
    if not parts:  # pragma: no cover - any stdlib will do
        for path in sorted(glob.glob(os.path.join(root, "*.py")))[:20]:
            with open(path, encoding="utf-8", errors="replace") as f:
                parts.append(f.read())
    text = "\n".join(parts)
    return "".join(c if ord(c) < 128 else "?" for c in text)[:n_chars]


def char_tokens() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stdlib text as byte tokens, split 80/10/10% into train / validation / test."""
    tokens = np.frombuffer(stdlib_text().encode("ascii"), np.uint8).astype(np.int32)
    n = len(tokens)
    return tokens[: int(0.8 * n)], tokens[int(0.8 * n) : int(0.9 * n)], tokens[int(0.9 * n) :]


def char_windows(tok: np.ndarray, count: int, ctx: int, seed: int) -> np.ndarray:
    """``count`` windows of ``ctx + 1`` tokens at random starts (NumPy ``seed``)."""
    start = np.random.default_rng(seed).integers(0, len(tok) - ctx - 1, count)
    return tok[start[:, None] + np.arange(ctx + 1)]


def transformer_init(key: Any, d: int, ctx: int = 16, vocab: int = 128) -> dict[str, jax.Array]:
    """The char transformer's parameters (width ``d``); ``key``: a PRNG key or an int seed."""
    if jnp.ndim(key) == 0 and not jax.dtypes.issubdtype(
        getattr(key, "dtype", np.int32), jax.dtypes.prng_key
    ):  # an int seed (also traced, as under jax.eval_shape)
        key = jax.random.PRNGKey(key)
    ks = jax.random.split(key, 6)
    nrm = lambda k, shape, s: s * jax.random.normal(k, shape)
    return {
        "emb": nrm(ks[0], (vocab, d), 0.1),
        "pos": nrm(ks[1], (ctx, d), 0.1),
        "qkv": nrm(ks[2], (d, 3 * d), d**-0.5),
        "out": nrm(ks[3], (d, d), d**-0.5),
        "w1": nrm(ks[4], (d, 2 * d), d**-0.5),
        "b1": jnp.zeros(2 * d),
        "w2": nrm(ks[5], (2 * d, d), (2 * d) ** -0.5),
        "g1": jnp.ones(d),
        "g2": jnp.ones(d),
        "gf": jnp.ones(d),
    }


def _norm(x, g):
    return g * (x - x.mean(-1, keepdims=True)) * jax.lax.rsqrt(x.var(-1, keepdims=True) + 1e-5)


def transformer_apply(p, x, heads: int = 2):
    """Logits ``[B, L, vocab]`` of tokens ``x`` ``[B, L]``; the width is read from ``p``."""
    d = p["qkv"].shape[0]
    h = p["emb"][x] + p["pos"][: x.shape[1]]
    B, L, _ = h.shape
    q, k, v = jnp.split(_norm(h, p["g1"]) @ p["qkv"], 3, -1)
    sh = lambda t: t.reshape(B, L, heads, d // heads).transpose(0, 2, 1, 3)
    q, k, v = sh(q), sh(k), sh(v)
    att = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d // heads)
    att = jnp.where(jnp.tril(jnp.ones((L, L), bool)), att, -1e9)
    o = (jax.nn.softmax(att, -1) @ v).transpose(0, 2, 1, 3).reshape(B, L, d)
    h = h + o @ p["out"]
    h = h + jax.nn.gelu(_norm(h, p["g2"]) @ p["w1"] + p["b1"]) @ p["w2"]
    return _norm(h, p["gf"]) @ p["emb"].T


def transformer_loss(p, batch):
    """Next-token cross-entropy of the 2-head transformer on ``batch = (windows,)``."""
    (x,) = batch
    logits = transformer_apply(p, x[:, :-1])
    return optax.softmax_cross_entropy_with_integer_labels(logits, x[:, 1:]).mean()


def transformer(d: int = 16, ctx: int = 16, batch: int = 8, heads: int = 2):
    tr_tok, va_tok, te_tok = char_tokens()
    n = len(stdlib_text())
    init = functools.partial(transformer_init, d=d, ctx=ctx)
    apply = functools.partial(transformer_apply, heads=heads)

    def loss(p, batch):
        (x,) = batch
        logits = apply(p, x[:, :-1])
        return optax.softmax_cross_entropy_with_integer_labels(logits, x[:, 1:]).mean()

    windows = lambda tok, count, seed: char_windows(tok, count, ctx, seed)
    n_params = sum(x.size for x in jax.tree.leaves(jax.eval_shape(init, 0)))
    return Problem(
        "char transformer",
        f"Python stdlib source ({n} chars, bytes), 1-block pre-LN transformer d={d}, "
        f"{heads} heads, context {ctx}, tied embeddings ({n_params} params), AdamW (wd 0.01), "
        f"batch {batch}; 80/10/10% train/val/test text",
        "adamw",
        1e-5,
        10.0,
        test_steps=50,
        init=init,
        loss=loss,
        batches=lambda seed, steps: (
            windows(tr_tok, steps * batch, seed + 1).reshape(steps, batch, -1),
        ),
        val=(windows(va_tok, 32, 0),),
        test=(windows(te_tok, 64, 0),),
        task="lm",
        twin="transformer",
        twin_args={"heads": heads},
        forward=apply,
        grid=24,
    )


def iris():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    tr, va, te = splits(len(X), 60, 40, seed=5)
    X = standardize(X, tr)
    about = "iris (4 features, tiny: overfits), SGD + momentum 0.9"
    return tabular("iris", about, X, y, (4, 32, 3), tr, va, te, "momentum", (1e-5, 10.0), 16)


def moons():
    from sklearn.datasets import make_moons

    X, y = make_moons(2000, noise=0.3, random_state=6)
    tr, va, te = splits(len(X), 1000, 300, seed=6)
    X = standardize(X, tr)
    about = "two moons, noise 0.3, Adam"
    return tabular("moons", about, X, y, (2, 32, 2), tr, va, te, "adam", (1e-5, 10.0), 32)


def friedman():
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(2000, n_features=10, noise=1.0, random_state=7)
    tr, va, te = splits(len(X), 1200, 300, seed=7)
    X = standardize(X, tr, 10.0)
    y = (y - y[tr].mean()) / y[tr].std()
    about = "Friedman #1 regression, features x 10, MSE, SGD"
    sizes = (10, 32, 1)
    return tabular("friedman x10", about, X, y, sizes, tr, va, te, "sgd", (1e-8, 1.0), 32, "mse")


def small_noisy_2():
    from sklearn.datasets import make_classification

    X, y = make_classification(600, 20, n_informative=4, flip_y=0.4, random_state=8)
    tr, va, te = splits(len(X), 80, 100, seed=8)
    X = standardize(X, tr)
    about = "synthetic, 40% label noise, 80 training examples (overfits), Adam"
    return tabular("small noisy 2", about, X, y, (20, 64, 2), tr, va, te, "adam", (1e-5, 10.0), 16)


#: Problems declared after the rules were chosen on :data:`PROBLEMS` and never
#: used to choose anything: ``--problems heldout`` checks the chosen defaults.
HELD_OUT: dict[str, Callable[[], Problem]] = {
    "iris": iris,
    "moons": moons,
    "friedman": friedman,
    "small2": small_noisy_2,
}

PROBLEMS: dict[str, Callable[[], Problem]] = {
    "cancer": cancer,
    "wine": wine,
    "noisy": noisy,
    "small": small,
    "diabetes": diabetes,
    "regression": regression,
    "logreg": logreg,
    "cnn": cnn,
    "transformer": transformer,
}


def add_problem_args(ap: argparse.ArgumentParser) -> None:
    """``--problems`` (names, or ``heldout``) and ``--out``, for this script and its kin."""
    ap.add_argument(
        "--problems",
        default=",".join(PROBLEMS),
        help="comma-separated names, or 'heldout' for the held-out problems",
    )
    ap.add_argument("--out", default=None, help="also write the report to this file")


def selected_problems(spec: str) -> list[Problem]:
    """The problems ``--problems`` names: comma-separated names, or ``heldout``."""
    names = list(HELD_OUT) if spec == "heldout" else spec.split(",")
    return [{**PROBLEMS, **HELD_OUT}[n]() for n in names]


# ------------------------------------------------------------- the evaluation trainer


def functional(prob: Problem, model):
    """``(params, rest, step_loss, eval_loss)`` for a pytree or an NNX model.

    ``step_loss(params, rest, batch) -> (loss, rest)`` trains (NNX: train mode,
    BatchNorm statistics and RNG counters carried in ``rest``);
    ``eval_loss(params, rest, batch)`` evaluates (NNX: eval mode).
    """
    if not prob.nnx:

        def step_loss(p, rest, batch):
            return prob.loss(p, batch), rest

        return model, (), step_loss, lambda p, rest, batch: prob.loss(p, batch)
    from flax import nnx

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    evaluator = nnx.clone(model)
    evaluator.eval()
    graphdef_eval = nnx.split(evaluator, nnx.Param, ...)[0]

    def step_loss(p, rest, batch):
        m = nnx.merge(graphdef, p, rest, copy=True)
        loss = prob.loss(m, batch)
        return loss, nnx.split(m, nnx.Param, ...)[2]

    def eval_loss(p, rest, batch):
        return prob.loss(nnx.merge(graphdef_eval, p, rest, copy=True), batch)

    return params, rest, step_loss, eval_loss


def make_trainer(prob: Problem, step_loss, eval_loss, budgets: tuple[int, ...], schedule=None):
    """``train(lrs [S, N], params [S], rest [S], batches [S]) -> test loss [S, N, budgets]``.

    ``schedule(peak, total_steps)``: train on that schedule over the last budget,
    with ``lrs`` its peaks, instead of at constant rates.
    """
    make_opt = OPTIMIZERS[prob.optimizer]
    test = jax.tree.map(jnp.asarray, prob.test)

    def one(lr, params, rest, batches):
        opt = make_opt(lr if schedule is None else schedule(lr, budgets[-1]))

        def step(carry, batch):
            p, r, s = carry
            (_, r), g = jax.value_and_grad(step_loss, has_aux=True)(p, r, batch)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), r, s), None

        carry, prev, out = (params, rest, opt.init(params)), 0, []
        for b in budgets:
            chunk = jax.tree.map(lambda x, prev=prev, b=b: x[prev:b], batches)
            carry, _ = jax.lax.scan(step, carry, chunk)
            out.append(eval_loss(carry[0], carry[1], test))
            prev = b
        return jnp.stack(out)

    over_rates = jax.vmap(one, in_axes=(0, None, None, None))
    return jax.jit(jax.vmap(over_rates, in_axes=(0, 0, 0, 0)))


# ------------------------------------------------------------------ candidate rules


def _curve(r):
    lrs, scores = r.curve()
    if lrs.size == 0:
        raise ValueError("no usable points")
    return np.asarray(lrs, np.float64), np.asarray(scores, np.float64)


def shrunk(factor: float):
    def rule(r):
        return r.suggest("best") * factor

    return rule


def within(frac: float, side: str):
    """The smallest (or largest) rate whose score is within ``frac`` of the best.

    "Within" is measured against the curve's range: ``score - best <= frac *
    (worst - best)``, with ``worst`` the highest score on the usable curve (about
    the untrained loss, where the smallest rates barely move).
    """

    def rule(r):
        lrs, s = _curve(r)
        b = np.argmin(s)
        ok = s - s[b] <= frac * (s.max() - s[b])
        # the contiguous run around the best
        lo = hi = b
        while lo > 0 and ok[lo - 1]:
            lo -= 1
        while hi + 1 < s.size and ok[hi + 1]:
            hi += 1
        return float(lrs[lo] if side == "smallest" else lrs[hi])

    return rule


def parabola(r):
    """The vertex of a parabola in log-rate through the best score and its neighbours."""
    lrs, s = _curve(r)
    b = int(np.argmin(s))
    if b == 0 or b == s.size - 1:
        return float(lrs[b])
    x = np.log(lrs[b - 1 : b + 2])
    a, bb, _ = np.polyfit(x, s[b - 1 : b + 2], 2)
    if a <= 0:
        return float(lrs[b])
    v = float(np.clip(-bb / (2 * a), x[0], x[2]))
    return float(np.exp(v))


def per_seed_scores(results, use_val: bool) -> np.ndarray:
    """``[n, K]`` scores of ``n`` one-seed results (training: lrjax's window; val: val loss)."""
    out = []
    for r in results:
        if use_val:
            s = np.asarray(r.val_losses[0], np.float64)
        else:
            T = r.losses.shape[-1]
            w = max(1, T // 10)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                s = np.asarray(r.losses[0, :, T - w :], np.float64).mean(-1)
        out.append(np.where(np.asarray(r.diverged) | ~np.isfinite(s), np.inf, s))
    return np.stack(out)


def interval_rule(which: str):
    """From three one-seed tests (other initialisations): lrjax's ``interval`` formula
    (the contiguous run of rates around the best mean score whose mean score is within
    ``sqrt(std_k**2 + std_best**2)`` of it), its geometric middle or its low end; or
    ``best3``: the rate with the best mean score over the three."""

    def rule(results, use_val):
        lrs = np.asarray(results[0].lrs, np.float64)
        s = per_seed_scores(results, use_val)
        with np.errstate(invalid="ignore"):
            mean = s.mean(0)
            std = np.where(np.isfinite(mean), s.std(0), np.inf)
        if not np.isfinite(mean).any():
            raise ValueError("every rate diverged")
        b = int(np.argmin(np.where(np.isfinite(mean), mean, np.inf)))
        if which == "best3":
            return float(lrs[b])
        close = np.isfinite(mean) & (mean - mean[b] <= np.sqrt(std**2 + std[b] ** 2))
        lo = hi = b
        while lo > 0 and close[lo - 1]:
            lo -= 1
        while hi + 1 < close.size and close[hi + 1]:
            hi += 1
        if which == "low":
            return float(lrs[lo])
        return float(np.sqrt(lrs[lo] * lrs[hi]))

    return rule


def horizon_fit(r, total_steps: int) -> float:
    """The validation best moved along its own trend with the horizon.

    From ``eval_every`` curves: the best rate at each evaluation (vertex of a
    parabola in log-rate through the lowest mean validation loss and its two
    neighbours), a line fitted to ``log r*(t)`` against ``log t`` over the test's
    second half, its slope clipped to ``[-1.5, 0]``; the answer is ``best_lr *
    (total_steps / T) ** slope``. (The ``T/B`` rule is this with the slope fixed
    at -1.)
    """
    curves = np.asarray(r.val_curves, np.float64).mean(0)  # [K, evaluations]
    curves = np.where(np.isfinite(curves), curves, np.inf)
    lrs, T = np.asarray(r.lrs, np.float64), r.num_steps
    t = r.eval_every * np.arange(1, curves.shape[1] + 1)
    best = []
    for c in curves.T:
        i = int(np.argmin(c))
        x = np.log(lrs[max(i - 1, 0) : i + 2])
        if 0 < i < c.size - 1 and np.isfinite(c[i - 1 : i + 2]).all():
            a, b, _ = np.polyfit(x, c[i - 1 : i + 2], 2)
            best.append(np.clip(-b / (2 * a), x[0], x[-1]) if a > 0 else np.log(lrs[i]))
        else:
            best.append(np.log(lrs[i]))
    late = t >= T / 2
    slope = float(np.clip(np.polyfit(np.log(t[late]), np.array(best)[late], 1)[0], -1.5, 0.0))
    return r.suggest("best") * (total_steps / T) ** slope


CANDIDATES: dict[str, Callable[[Any], float]] = {
    "cand: best x 1/2": shrunk(0.5),
    "cand: best x 1/3": shrunk(1 / 3),
    "cand: best x 1/10": shrunk(0.1),
    "cand: parabola vertex": parabola,
    "cand: smallest within 5%": within(0.05, "smallest"),
    "cand: smallest within 10%": within(0.10, "smallest"),
    "cand: largest within 5%": within(0.05, "largest"),
}
MULTI = {
    "cand: best of 3 inits": interval_rule("best3"),
    "cand: interval middle (3 inits)": interval_rule("middle"),
    "cand: interval low end (3 inits)": interval_rule("low"),
}


def rule_names(budget_mult: int) -> tuple[list[str], list[str]]:
    """The rows: without validation data, with it."""
    sf = f"suggest_for({budget_mult}T)"
    plain = [
        "suggest() = near_best (default)",
        "best",
        "minimum",
        "valley",
        "steep",
        "slide",
        sf,
        f"cand: best x sqrt(T/{budget_mult}T)",
        f"cand: best x T/{budget_mult}T",
        "ramp valley",
        "ramp steep",
        "ramp minimum",
        "ramp slide",
        "torch-lr-finder",
        *CANDIDATES,
        *MULTI,
    ]
    val = [
        "val: suggest() = budget (default)",
        "val: best",
        "val: minimum",
        "val: valley",
        "val: steep",
        "val: slide",
        f"val: {sf}",
        f"val: cand: best x sqrt(T/{budget_mult}T)",
        f"val: cand: best x T/{budget_mult}T",
        "val: torch-lr-finder (val_loader)",
        *(f"val: {c}" for c in CANDIDATES),
        *(f"val: {c}" for c in MULTI),
        f"val: cand: horizon fit to {budget_mult}T (eval_every)",
    ]
    return plain, val


def diagnostic_names(budget_mult: int) -> list[str]:
    """Rows that score the range test on the test split: not a rule a user has,
    but what the rules would do with validation data as large and as
    representative as the test split (left out of the winners and targets)."""
    return [
        "diag: best, test split as val",
        f"diag: suggest_for({budget_mult}T), test split as val",
    ]


def safe(fn) -> float:
    try:
        v = fn()
    except (ValueError, RuntimeError):
        return math.nan
    return math.nan if v is None else float(v)


# ------------------------------------------------------------------------ the run


def suggestions(prob: Problem, seed: int, T: int, budgets: tuple[int, int], extra_seeds: int):
    """Every rule's rate for one seed: ``{row name: rate}`` (NaN: no suggestion)."""
    model = prob.init(seed)
    batches = prob.batches(seed, T)
    if prob.torch:  # built before the range tests touch the (NNX: mutable) model
        from _torch_ref import TWINS, lr_finder_suggestions

        twin = TWINS[prob.twin](model, batches, prob.val, prob.task, **prob.twin_args)
    val = jax.tree.map(lambda a: np.asarray(a)[None], prob.val)
    opt = OPTIMIZERS[prob.optimizer]
    common = dict(
        optimizer=opt, min_lr=prob.min_lr, max_lr=prob.max_lr, num_steps=T, progress=False
    )
    key = jax.random.PRNGKey(seed)
    par = lrjax.range_test(prob.loss, model, batches, num_lrs=K, key=key, **common)
    parv = lrjax.range_test(
        prob.loss,
        model,
        batches,
        num_lrs=K,
        key=key,
        val_batches=val,
        eval_every=max(1, T // 10),
        **common,
    )
    # the same test from other initialisations (for the multi-seed candidates)
    others = [parv]
    for j in range(1, extra_seeds + 1):
        other = prob.init(1000 * (seed + 1) + j)
        others.append(
            lrjax.range_test(
                prob.loss,
                other,
                batches,
                num_lrs=K,
                key=jax.random.PRNGKey(1000 + j),
                val_batches=val,
                **common,
            )
        )
    # the diagnostic rows: the same test scored on the test split
    test_val = jax.tree.map(lambda a: np.asarray(a)[None], prob.test)
    part = lrjax.range_test(
        prob.loss, model, batches, num_lrs=K, key=key, val_batches=test_val, **common
    )
    ramp = lrjax.lr_find(prob.loss, model, batches, **common)
    out: dict[str, float] = {}
    out["suggest() = near_best (default)"] = safe(lambda: par.suggest())
    out["best"] = safe(lambda: par.suggest("best"))
    out["val: suggest() = budget (default)"] = safe(lambda: parv.suggest())
    for m in ("minimum", "valley", "steep", "slide"):
        out[m] = safe(lambda m=m: par.suggest(m))
        out[f"val: {m}"] = safe(lambda m=m: parv.suggest(m))
    out["val: best"] = safe(lambda: parv.suggest("best"))
    for mult, b in zip((3, 10), budgets):
        out[f"suggest_for({mult}T)"] = safe(lambda b=b: par.suggest_for(b))
        out[f"val: suggest_for({mult}T)"] = safe(lambda b=b: parv.suggest_for(b))
        shrink = math.sqrt(T / b)
        out[f"cand: best x sqrt(T/{mult}T)"] = safe(lambda f=shrink: par.suggest("best") * f)
        out[f"val: cand: best x sqrt(T/{mult}T)"] = safe(lambda f=shrink: parv.suggest("best") * f)
        out[f"cand: best x T/{mult}T"] = safe(lambda f=T / b: par.suggest("best") * f)
        out[f"val: cand: best x T/{mult}T"] = safe(lambda f=T / b: parv.suggest("best") * f)
        out[f"val: cand: horizon fit to {mult}T (eval_every)"] = safe(
            lambda b=b: horizon_fit(parv, b)
        )
        out[f"diag: suggest_for({mult}T), test split as val"] = safe(
            lambda b=b: part.suggest_for(b)
        )
    out["diag: best, test split as val"] = safe(lambda: part.suggest("best"))
    for m in ("valley", "steep", "minimum", "slide"):
        out[f"ramp {m}"] = safe(lambda m=m: ramp.suggest(m))
    for name, rule in CANDIDATES.items():
        out[name] = safe(lambda rule=rule: rule(par))
        out[f"val: {name}"] = safe(lambda rule=rule: rule(parv))
    for name, rule in MULTI.items():
        out[name] = safe(lambda rule=rule: rule(others, False))
        out[f"val: {name}"] = safe(lambda rule=rule: rule(others, True))
    if prob.torch:
        plain, with_val = lr_finder_suggestions(
            twin, prob.min_lr, prob.max_lr, T, prob.optimizer, seed=seed
        )
        out["torch-lr-finder"] = math.nan if plain is None else plain
        out["val: torch-lr-finder (val_loader)"] = math.nan if with_val is None else with_val
    return out, par


def run_problem(prob: Problem, seeds: int, grid_n: int, extra_seeds: int, log):
    T = prob.test_steps
    budgets = (3 * T, 10 * T)
    grid = np.geomspace(prob.min_lr, prob.max_lr, prob.grid or grid_n)
    t0 = time.perf_counter()
    found = []
    for s in range(seeds):
        rates, _ = suggestions(prob, s, T, budgets, extra_seeds)
        found.append(rates)
    t_sugg = time.perf_counter() - t0
    # every seed trains the grid and its own suggested rates (deduplicated, padded)
    per_seed = []
    for rates in found:
        vals = np.array([v for v in rates.values() if np.isfinite(v) and v > 0])
        per_seed.append(np.unique(np.concatenate([grid, vals])))
    n = max(len(u) for u in per_seed)
    lr_mat = np.stack([np.pad(u, (0, n - len(u)), mode="edge") for u in per_seed])
    models = [prob.init(s) for s in range(seeds)]
    fs = [functional(prob, m) for m in models]
    params = jax.tree.map(lambda *x: jnp.stack(x), *[f[0] for f in fs])
    rest = jax.tree.map(lambda *x: jnp.stack(x), *[f[1] for f in fs])
    step_loss, eval_loss = fs[0][2], fs[0][3]
    batches = jax.tree.map(
        lambda *x: jnp.stack(x), *[prob.batches(s, budgets[-1]) for s in range(seeds)]
    )
    train = make_trainer(prob, step_loss, eval_loss, budgets)
    t1 = time.perf_counter()
    test_loss = np.asarray(train(jnp.asarray(lr_mat, jnp.float32), params, rest, batches))
    t_train = time.perf_counter() - t1
    test = jax.tree.map(jnp.asarray, prob.test)
    L0 = np.array([float(jax.jit(eval_loss)(f[0], f[1], test)) for f in fs])
    res = {"grid_best": [], "L0": L0, "Lstar": [], "excess": [], "rates": found}
    for bi in range(len(budgets)):
        ex_b, lstar_b, gbest_b = [], [], []
        for s in range(seeds):
            lookup = dict(zip(lr_mat[s].tolist(), test_loss[s, :, bi].tolist()))
            g = np.array([lookup[x] for x in grid.tolist()], np.float64)
            g = np.where(np.isfinite(g), g, np.inf)
            j = int(np.argmin(g))
            Ls = g[j]
            lstar_b.append(Ls)
            gbest_b.append(grid[j])
            ex = {}
            for name, v in found[s].items():
                L = lookup.get(float(v), math.nan) if np.isfinite(v) and v > 0 else math.nan
                e = (L - Ls) / (L0[s] - Ls) if np.isfinite(L) and L0[s] >= L else 1.0
                ex[name] = e
            ex_b.append(ex)
        res["excess"].append(ex_b)
        res["Lstar"].append(lstar_b)
        res["grid_best"].append(gbest_b)
    log(
        f"  {prob.name}: suggestions {t_sugg:.0f} s, ground truth {t_train:.0f} s "
        f"({seeds} seeds x {n} rates x {budgets[-1]} steps)"
    )
    return res


def geo(v):
    v = np.asarray([x for x in v if np.isfinite(x) and x > 0], np.float64)
    return f"{np.exp(np.mean(np.log(v))):.2g}" if v.size else "-"


def fmt(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.3f}"


def budget_table(probs, results, bi: int, mult: int):
    plain, val = rule_names(mult)
    cols = [p.name for p in probs]
    rows, summary = [], {}
    groups = (
        ("without validation", plain),
        ("with validation", val),
        ("diagnostic", diagnostic_names(mult)),
    )
    for group, names in groups:
        stats = []
        for name in names:
            cells = []
            for p in probs:
                ex_seeds = [e.get(name, math.nan) for e in results[p.name]["excess"][bi]]
                if not p.torch and "torch" in name:
                    cells.append(math.nan)
                else:
                    cells.append(float(np.mean(ex_seeds)))
            arr = np.array(cells)
            ok = np.isfinite(arr)
            mx = float(arr[ok].max()) if ok.any() else math.nan
            mn = float(arr[ok].mean()) if ok.any() else math.nan
            stats.append((name, cells, mx, mn, ok.all(), int(np.sum(arr[ok] <= 0.05))))
        complete = [s for s in stats if s[4]]
        win = (None,)
        if group != "diagnostic":
            win = min(complete, key=lambda s: (s[2], s[3]))
            summary[group] = (win, min(complete, key=lambda s: (s[3], s[2])), stats)
        for name, cells, mx, mn, full, good in stats:
            mark = "**" if name == win[0] else ""
            rows.append(
                [
                    f"{mark}{name}{mark}",
                    *map(fmt, cells),
                    fmt(mx) + ("" if full else "*"),
                    fmt(mn),
                    f"{good}/{int(np.sum(np.isfinite(cells)))}",
                ]
            )
    header = ["rule", *cols, "max", "mean", "<= 0.05"]
    return table(rows, header), summary


def targets(probs, summary, log) -> None:
    """The issue's targets for every rule: <= 0.05 everywhere; with validation, no worse
    than the better torch-lr-finder variant + 0.01 where there is one."""
    stats = summary["without validation"][2] + summary["with validation"][2]
    by_name = {s[0]: s[1] for s in stats}
    t_plain = np.array(by_name["torch-lr-finder"], float)
    t_val = np.array(by_name["val: torch-lr-finder (val_loader)"], float)
    better_torch = np.fmin(t_plain, t_val)
    has_torch = np.array([p.torch for p in probs])
    all_005 = [s[0] for s in stats if s[4] and s[2] <= 0.05]
    log(f"rules with excess <= 0.05 on every problem: {', '.join(all_005) or 'none'}")
    ok = []
    for name, cells, *_ in summary["with validation"][2]:
        c = np.array(cells, float)
        if "torch" not in name and np.all(c[has_torch] <= better_torch[has_torch] + 0.01):
            ok.append(name)
    log(
        "validation-scored rules within 0.01 of the better torch-lr-finder variant on every "
        f"problem with a torch twin: {', '.join(ok) or 'none'}"
    )


def rate_table(probs, results, mult: int):
    """Geometric-mean suggested rate per rule and problem, with the grid's best."""
    plain, val = rule_names(mult)
    bi = 0 if mult == 3 else 1
    rows = [["grid best (3T)", *(geo(results[p.name]["grid_best"][0]) for p in probs)]]
    rows.append(["grid best (10T)", *(geo(results[p.name]["grid_best"][1]) for p in probs)])
    del bi
    for name in plain + val + diagnostic_names(mult):
        cells = []
        for p in probs:
            v = [r.get(name, math.nan) for r in results[p.name]["rates"]]
            cells.append(geo(v) if (p.torch or "torch" not in name) else "n/a")
        rows.append([name, *cells])
    return table(rows, ["rule", *[p.name for p in probs]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--grid", type=int, default=32, help="rates in the dense grid")
    ap.add_argument(
        "--extra-seeds",
        type=int,
        default=2,
        help="other initialisations for the multi-seed candidates",
    )
    add_problem_args(ap)
    ap.add_argument("--test-steps", type=int, default=None, help="override T (development)")
    args = ap.parse_args()
    log = Report()

    import torch

    torch.set_num_threads(1)  # a tiny model: threads only fight over the cores
    log(
        f"{machine_info()}, torch {torch.__version__}; platform {platform.platform()}, "
        f"os.cpu_count() = {os.cpu_count()}"
    )
    with contextlib.suppress(OSError):
        log(f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    probs = selected_problems(args.problems)
    if args.test_steps:
        for p in probs:
            p.test_steps = args.test_steps
    log(
        f"\nrange tests: T steps (100; 50 for the CNN and the transformer), parallel "
        f"K = {K} rates over each problem's range, the ramp and torch-lr-finder T steps over "
        f"the same range; ground truth: {args.grid} (CNN, transformer: 24) log-spaced "
        f"rates over that range plus "
        f"every suggested rate, constant rate, test loss after 3T and 10T steps; "
        f"{args.seeds} seeds; multi-seed candidates use {args.extra_seeds} more "
        f"initialisations; diag: rows score the parallel test on the test split instead of "
        f"the validation split (not a rule a user has: how much of a validation rule's "
        f"excess is the validation split's noise)\n"
    )
    t0 = time.perf_counter()
    results = {}
    for p in probs:
        log(f"- **{p.name}**: {p.about}; rates {p.min_lr:g} .. {p.max_lr:g}; T = {p.test_steps}")
    log("")
    for p in probs:
        results[p.name] = run_problem(p, args.seeds, args.grid, args.extra_seeds, log)
    log(f"  total {time.perf_counter() - t0:.0f} s\n")
    rows = []
    for p in probs:
        r = results[p.name]
        rows.append(
            [
                p.name,
                p.optimizer,
                f"{np.mean(r['L0']):.3f}",
                f"{np.mean(r['Lstar'][0]):.3f}",
                geo(r["grid_best"][0]),
                f"{np.mean(r['Lstar'][1]):.3f}",
                geo(r["grid_best"][1]),
            ]
        )
    log(
        table(
            rows,
            [
                "problem",
                "optimizer",
                "L0 (test)",
                "L* 3T",
                "best rate 3T",
                "L* 10T",
                "best rate 10T",
            ],
        )
    )
    summaries = {}
    for bi, mult in enumerate((3, 10)):
        tab, summary = budget_table(probs, results, bi, mult)
        summaries[mult] = summary
        log(f"\n### Budget {mult}T steps: mean excess over {args.seeds} seeds\n")
        log(tab)
    for mult in (3, 10):
        log(f"\n**Budget {mult}T.**")
        for group, (win, by_mean, _) in summaries[mult].items():
            log(
                f"winner {group} (lowest max, then mean): {win[0]} (max {win[2]:.3f}, "
                f"mean {win[3]:.3f}); lowest mean: {by_mean[0]} (max {by_mean[2]:.3f}, "
                f"mean {by_mean[3]:.3f})"
            )
        targets(probs, summaries[mult], log)
    log("\n### Suggested rates (geometric mean over seeds)\n")
    log(rate_table(probs, results, 3))
    log.write(args.out)


if __name__ == "__main__":
    main()
