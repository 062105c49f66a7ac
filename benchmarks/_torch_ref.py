"""The digits MLP in PyTorch, for the benchmarks that compare against torch.

The torch model is built from the JAX parameters of :mod:`lrjax.data` (the
same initial weights) and trained on the same minibatches, in the same order,
with a plain Python step loop, or swept with torch-lr-finder's ``LRFinder``.
Torch runs on the GPU when one is there (as a torch user would run it there),
else on the CPU; ``LRJAX_BENCH_TORCH_DEVICE=cpu`` forces the CPU.
"""

from __future__ import annotations

import contextlib
import io
import os

import numpy as np
import torch
from torch import nn

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


def lr_finder_sweep(params, tbatches, min_lr: float, max_lr: float, num_steps: int):
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
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "adamw":  # optax.adamw(lr, weight_decay=0.01): the same decoupled decay
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    raise ValueError(f"unknown optimizer {name!r}")


def lr_finder_suggestions(
    params,
    batches,
    val,
    min_lr: float,
    max_lr: float,
    num_steps: int,
    optimizer: str = "adam",
    task: str = "ce",
) -> tuple[float | None, float | None]:
    """torch-lr-finder's suggestion without and with its ``val_loader``.

    The torch MLP starts from the JAX ``params`` and sees the same ``batches``
    (``([T, B, d], [T, B])``) in the same order; ``val = (X, y)`` is one
    validation batch (torch-lr-finder then scores every step on it in eval
    mode). ``optimizer`` is ``"sgd"``, ``"momentum"`` (0.9), ``"adam"`` or
    ``"adamw"`` (weight decay 0.01); ``task`` ``"ce"`` (integer labels) or
    ``"mse"`` (one output, float targets). Returns the two suggestions
    (``None`` where the run stopped too early for one).
    """
    from torch.utils.data import DataLoader, TensorDataset
    from torch_lr_finder import LRFinder

    def tensors(x, y):
        x = torch.from_numpy(np.asarray(x, np.float32)).to(DEVICE)
        y = np.asarray(y)
        y = y.astype(np.int64) if task == "ce" else y.astype(np.float32)
        return x, torch.from_numpy(y).to(DEVICE)

    if task == "ce":
        criterion = nn.CrossEntropyLoss()
    else:

        def criterion(out, y):
            return ((out[:, 0] - y) ** 2).mean()

    xs, ys = tensors(*batches)
    train = DataLoader(TensorDataset(xs, ys), batch_size=None, shuffle=False)
    vx, vy = tensors(*val)
    val_loader = DataLoader(TensorDataset(vx, vy), batch_size=len(vx), shuffle=False)
    out = []
    for loader in (None, val_loader):
        model = torch_mlp(params)
        opt = _torch_optimizer(optimizer, model.parameters(), min_lr)
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            finder = LRFinder(model, opt, criterion, device=DEVICE)
            finder.range_test(
                train, val_loader=loader, start_lr=min_lr, end_lr=max_lr, num_iter=num_steps
            )
        out.append(_finder_suggestion(finder))
    return out[0], out[1]
