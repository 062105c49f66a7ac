"""PyTorch twins of the benchmark models, for the benchmarks that compare against torch.

The digits MLP of :mod:`lrjax.data`, and ``suggestion_quality``'s NNX CNN and
character transformer: each torch model is built from the JAX initial
parameters (the same weights) and computes the same forward pass; it is
trained on the same minibatches, in the same order, with a plain Python step
loop, or swept with torch-lr-finder's ``LRFinder``.
Torch runs on the GPU when one is there (as a torch user would run it there),
else on the CPU; ``LRJAX_BENCH_TORCH_DEVICE=cpu`` forces the CPU.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 (the usual name)

#: Where the torch references run.
DEVICE = torch.device(
    os.environ.get("LRJAX_BENCH_TORCH_DEVICE", "cuda" if torch.cuda.is_available() else "cpu")
)


def torch_mlp(params) -> nn.Sequential:
    """A ReLU MLP equal to ``lrjax.data.mlp_apply`` with the JAX ``params``."""
    layers: list[nn.Module] = []
    for i, layer in enumerate(params):
        w = np.asarray(layer["w"])
        lin = nn.Linear(w.shape[0], w.shape[1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T.copy()))
            lin.bias.copy_(torch.from_numpy(np.asarray(layer["b"]).copy()))
        layers.append(lin)
        if i < len(params) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).to(DEVICE)


def torch_batches(batches) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The ``([T, B, d], [T, B])`` NumPy batches as a list of torch tensors."""
    xb, yb = batches
    return [
        (
            torch.from_numpy(np.asarray(x)).to(DEVICE),
            torch.from_numpy(np.asarray(y).astype(np.int64)).to(DEVICE),
        )
        for x, y in zip(xb, yb)
    ]


def train_loop(params, tbatches, lr: float, num_steps: int) -> list[float]:
    """``num_steps`` Adam steps at rate ``lr``, a Python loop; returns the losses."""
    model = torch_mlp(params)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for t in range(num_steps):
        x, y = tbatches[t]
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def lr_finder_ramp(params, tbatches, min_lr: float, max_lr: float, num_steps: int):
    """One torch-lr-finder ``range_test`` (exp ramp, its defaults otherwise).

    Returns ``(lrs, smoothed losses, suggestion)``; the suggestion is
    torch-lr-finder's own (the steepest gradient of the curve after
    ``skip_start=10``, ``skip_end=5``, read from ``LRFinder.plot``), or
    ``None`` when the run stopped too early for one. Its prints and progress
    bar are silenced.
    """
    from torch.utils.data import DataLoader, TensorDataset
    from torch_lr_finder import LRFinder

    xs = torch.stack([x for x, _ in tbatches])
    ys = torch.stack([y for _, y in tbatches])
    loader = DataLoader(TensorDataset(xs, ys), batch_size=None, shuffle=False)
    model = torch_mlp(params)
    opt = torch.optim.Adam(model.parameters(), lr=min_lr)
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        finder = LRFinder(model, opt, nn.CrossEntropyLoss(), device=DEVICE)
        finder.range_test(loader, start_lr=min_lr, end_lr=max_lr, num_iter=num_steps)
    lrs, losses = finder.history["lr"], finder.history["loss"]
    return np.asarray(lrs), np.asarray(losses), _finder_suggestion(finder)


def _finder_suggestion(finder) -> float | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            _, lr = finder.plot(ax=ax, suggest_lr=True)
    except RuntimeError:  # too few points (it stopped early)
        lr = None
    finally:
        plt.close(fig)
    return None if lr is None else float(lr)


def _torch_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """The torch twin of the suite's optax optimizers (same hyperparameters)."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "nesterov":  # optax.sgd(lr, momentum=0.9, nesterov=True)
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "adamw":  # optax.adamw(lr, weight_decay=0.01): the same decoupled decay
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    raise ValueError(f"unknown optimizer {name!r}")


class Twin(NamedTuple):
    """A suite problem in PyTorch, ready for torch-lr-finder.

    ``make_model()`` builds a fresh torch model with the problem's initial JAX
    weights; ``criterion(outputs, labels)`` is the training loss; ``train`` is
    ``(inputs [T, B, ...], labels [T, B, ...])``, the range test's batches in
    order; ``val`` is ``(inputs [N, ...], labels [N, ...])``, one validation
    batch. All tensors are on :data:`DEVICE`.
    """

    make_model: Callable[[], nn.Module]
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]


def _tensor(a, dtype) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a).astype(dtype)).to(DEVICE)


def mlp_twin(params, batches, val, task: str = "ce") -> Twin:
    """The ``lrjax.data`` MLP: ``batches = ([T, B, d], [T, B])``, ``val = (X, y)``.

    ``task`` ``"ce"`` (integer labels) or ``"mse"`` (one output, float targets).
    """
    ydt = np.int64 if task == "ce" else np.float32

    if task == "ce":
        criterion = nn.CrossEntropyLoss()
    else:

        def criterion(out, y):
            return ((out[:, 0] - y) ** 2).mean()

    return Twin(
        lambda: torch_mlp(params),
        criterion,
        (_tensor(batches[0], np.float32), _tensor(batches[1], ydt)),
        (_tensor(val[0], np.float32), _tensor(val[1], ydt)),
    )


# --------------------------------------------------------------------- the digits CNN


def torch_patches(x: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """``suggestion_quality.patches`` in torch: ``[B, H, W, C] -> [B, H', W', 9 C]``."""
    H, W = x.shape[1:3]
    xp = F.pad(x, (0, 0, 1, 1, 1, 1))  # (C, W, H) from the last: zero-pad H and W by 1
    cols = [xp[:, i : i + H : stride, j : j + W : stride] for i in range(3) for j in range(3)]
    return torch.cat(cols, -1)


class FlaxBatchNorm(nn.Module):
    """``flax.nnx.BatchNorm`` (defaults) over the last axis, in torch.

    Training mode normalises with the batch's mean and biased variance (flax's
    ``use_fast_variance``: ``E[x^2] - E[x]^2``, clipped at 0) and moves the
    running statistics by ``momentum * running + (1 - momentum) * batch`` with
    flax's ``momentum = 0.99`` (torch's convention would say ``momentum=0.01``);
    eval mode uses the running statistics. ``torch.nn.BatchNorm2d(momentum=0.01,
    eps=1e-5)`` is the same except that it feeds the *unbiased* batch variance
    into the running variance (a factor ``n / (n - 1)``), hence this module.
    """

    def __init__(self, scale, bias, mean, var, momentum: float = 0.99, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.from_numpy(np.array(scale, np.float32)))
        self.bias = nn.Parameter(torch.from_numpy(np.array(bias, np.float32)))
        self.register_buffer("running_mean", torch.from_numpy(np.array(mean, np.float32)))
        self.register_buffer("running_var", torch.from_numpy(np.array(var, np.float32)))
        self.momentum, self.eps = momentum, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            dims = tuple(range(x.ndim - 1))
            mean = x.mean(dims)
            var = torch.clamp((x * x).mean(dims) - mean * mean, min=0.0)
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(m).add_((1 - m) * mean)
                self.running_var.mul_(m).add_((1 - m) * var)
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) * (torch.rsqrt(var + self.eps) * self.weight) + self.bias


def _np(v) -> np.ndarray:
    return np.array(v[...], np.float32)  # a copy: torch must not share JAX's buffer


def _linear(p) -> nn.Linear:
    """A torch ``nn.Linear`` equal to an ``nnx.Linear`` with state ``p`` (kernel ``[in, out]``)."""
    w = _np(p["kernel"])
    lin = nn.Linear(*w.shape)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(w.T.copy()))
        lin.bias.copy_(torch.from_numpy(_np(p["bias"])))
    return lin


class TorchCNN(nn.Module):
    """``suggestion_quality.cnn``'s NNX CNN in torch (NHWC, convolutions as patches + Linear)."""

    def __init__(self, model):
        from flax import nnx

        super().__init__()
        p, st = nnx.state(model, nnx.Param), nnx.state(model, nnx.BatchStat)
        self.conv1, self.conv2, self.head = (_linear(p[k]) for k in ("conv1", "conv2", "head"))
        self.bn1, self.bn2 = (
            FlaxBatchNorm(
                _np(p[k]["scale"]),
                _np(p[k]["bias"]),
                _np(st[k]["mean"]),
                _np(st[k]["var"]),
                getattr(model, k).momentum,
                getattr(model, k).epsilon,
            )
            for k in ("bn1", "bn2")
        )
        self.dropout = nn.Dropout(model.dropout.rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(torch_patches(x))))
        x = F.relu(self.bn2(self.conv2(torch_patches(x, 2))))
        return self.head(self.dropout(x.reshape(x.shape[0], -1)))


def torch_cnn(model) -> TorchCNN:
    """A torch twin of the NNX CNN ``model``: its ``nnx.Param`` weights and BatchNorm statistics."""
    return TorchCNN(model).to(DEVICE)


def cnn_twin(model, batches, val, task: str = "ce") -> Twin:
    """The digits CNN: ``batches = ([T, B, 8, 8, 1], [T, B])``, ``val = (X, y)``."""
    assert task == "ce", task
    base = torch_cnn(model)  # now: the NNX model is mutable, the twin keeps these weights
    return Twin(
        lambda: copy.deepcopy(base),
        nn.CrossEntropyLoss(),
        (_tensor(batches[0], np.float32), _tensor(batches[1], np.int64)),
        (_tensor(val[0], np.float32), _tensor(val[1], np.int64)),
    )


# ------------------------------------------------------------ the char transformer


def _ln(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``norm(x, g)`` of the suite's transformer: LayerNorm, no bias, eps 1e-5."""
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return g * (x - mean) * torch.rsqrt(var + 1e-5)


class TorchTransformer(nn.Module):
    """``suggestion_quality.transformer``'s model in torch, from its params dict.

    Token and position embeddings, one pre-LN block (causal multi-head
    attention, a GELU MLP with the tanh approximation, as ``jax.nn.gelu``'s
    default), a final norm and the tied output embedding: ``[B, L]`` int
    tokens -> ``[B, L, V]`` logits.
    """

    def __init__(self, params, heads: int):
        super().__init__()
        self.heads = heads
        self.p = nn.ParameterDict(
            {k: nn.Parameter(torch.from_numpy(_np(v))) for k, v in params.items()}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p
        h = p["emb"][x] + p["pos"][: x.shape[1]]
        B, L, d = h.shape
        q, k, v = torch.split(_ln(h, p["g1"]) @ p["qkv"], d, -1)
        sh = lambda t: t.reshape(B, L, self.heads, d // self.heads).transpose(1, 2)
        q, k, v = sh(q), sh(k), sh(v)
        att = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
        causal = torch.tril(torch.ones(L, L, dtype=torch.bool, device=x.device))
        att = torch.where(causal, att, torch.full_like(att, -1e9))
        o = (torch.softmax(att, -1) @ v).transpose(1, 2).reshape(B, L, d)
        h = h + o @ p["out"]
        h = h + F.gelu(_ln(h, p["g2"]) @ p["w1"] + p["b1"], approximate="tanh") @ p["w2"]
        return _ln(h, p["gf"]) @ p["emb"].T


def torch_transformer(params, heads: int = 2) -> TorchTransformer:
    """A torch twin of the transformer with the JAX ``params`` dict."""
    return TorchTransformer(params, heads).to(DEVICE)


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy: ``[B, L, V]`` logits, ``[B, L]`` targets."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def transformer_twin(params, batches, val, task: str = "lm", heads: int = 2) -> Twin:
    """The char transformer: ``batches = (x [T, B, ctx + 1],)``, ``val = (x [N, ctx + 1],)``.

    torch-lr-finder wants ``(inputs, labels)``: ``x[..., :-1]`` and ``x[..., 1:]``.
    """
    assert task == "lm", task
    (xb,), (xv,) = batches, val
    xb, xv = _tensor(xb, np.int64), _tensor(xv, np.int64)
    return Twin(
        lambda: torch_transformer(params, heads),
        lm_loss,
        (xb[..., :-1].contiguous(), xb[..., 1:].contiguous()),
        (xv[..., :-1].contiguous(), xv[..., 1:].contiguous()),
    )


#: The twin builders by name (``Problem.twin``):
#: ``(params | nnx model, batches, val, task, **Problem.twin_args) -> Twin``.
TWINS: dict[str, Callable[..., Twin]] = {
    "mlp": mlp_twin,
    "cnn": cnn_twin,
    "transformer": transformer_twin,
}


# ----------------------------------------------------------------- torch-lr-finder


def lr_finder_suggestions(
    twin: Twin,
    min_lr: float,
    max_lr: float,
    num_steps: int,
    optimizer: str = "adam",
    seed: int = 0,
) -> tuple[float | None, float | None]:
    """torch-lr-finder's suggestion without and with its ``val_loader``.

    Each run starts from a fresh ``twin.make_model()`` (the JAX initial
    weights) and sees ``twin.train``'s batches in order; with the
    ``val_loader``, torch-lr-finder scores every step on ``twin.val`` (one
    batch) in eval mode. ``optimizer`` is one of :func:`_torch_optimizer`'s
    names. Each run reseeds torch's global RNG with ``seed`` first (dropout
    masks: reproducible, though not JAX's). Returns the two suggestions
    (``None`` where the run stopped too early for one).
    """
    from torch.utils.data import DataLoader, TensorDataset
    from torch_lr_finder import LRFinder

    train = DataLoader(TensorDataset(*twin.train), batch_size=None, shuffle=False)
    vx, vy = twin.val
    val_loader = DataLoader(TensorDataset(vx, vy), batch_size=len(vx), shuffle=False)
    out = []
    for loader in (None, val_loader):
        torch.manual_seed(seed)
        model = twin.make_model()
        opt = _torch_optimizer(optimizer, model.parameters(), min_lr)
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            finder = LRFinder(model, opt, twin.criterion, device=DEVICE)
            finder.range_test(
                train, val_loader=loader, start_lr=min_lr, end_lr=max_lr, num_iter=num_steps
            )
        out.append(_finder_suggestion(finder))
    return out[0], out[1]
