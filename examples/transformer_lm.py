"""Range test over the peak rate of a small Transformer language model, then train it.

A byte-level, pre-LayerNorm Transformer (Flax NNX, with dropout) learns to
predict the next byte of Python source: the standard library's own files,
which ship with every Python install. The optimizer is AdamW with linear
warmup and cosine decay, and the range test sweeps that schedule's *peak*:
each copy runs the whole warmup + cosine schedule over the test's steps with
its own peak, so the test answers the question the real run asks. The loss
function also returns the next-byte accuracy (``has_aux=True``), kept for
every copy and step in ``result.aux``. The best peak then drives a longer run.

Run:  python examples/transformer_lm.py [--fast]   (or LRJAX_EXAMPLE_FAST=1)
Needs: pip install -e ".[demo]" flax
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import lrjax

# A fixed handful of standard-library modules, read in name order: the same
# text on every run (the files differ a little between Python versions).
SOURCES = ("argparse.py", "calendar.py", "dataclasses.py", "functools.py", "textwrap.py")


def load_text() -> tuple[np.ndarray, np.ndarray]:
    """The bytes of ``SOURCES``: the first 90% to train on, the rest to validate."""
    stdlib = Path(os.__file__).parent
    text = b"".join((stdlib / name).read_bytes() for name in sorted(SOURCES))
    tokens = np.frombuffer(text, np.uint8).astype(np.int32)
    cut = int(0.9 * len(tokens))
    return tokens[:cut], tokens[cut:]


def windows(tokens: np.ndarray, n: int, batch: int, seq: int, seed: int) -> np.ndarray:
    """``[n, batch, seq + 1]`` random windows (inputs and next-byte targets)."""
    starts = np.random.default_rng(seed).integers(0, len(tokens) - seq - 1, (n, batch))
    return tokens[starts[..., None] + np.arange(seq + 1)]


class Block(nnx.Module):
    """Pre-LN: ``x + attn(ln(x))``, then ``x + mlp(ln(x))`` (GPT-2 style)."""

    def __init__(self, d: int, heads: int, dropout: float, *, rngs: nnx.Rngs):
        self.ln1 = nnx.LayerNorm(d, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(
            heads, d, dropout_rate=dropout, deterministic=False, decode=False, rngs=rngs
        )
        self.ln2 = nnx.LayerNorm(d, rngs=rngs)
        self.up = nnx.Linear(d, 4 * d, rngs=rngs)
        self.down = nnx.Linear(4 * d, d, rngs=rngs)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        x = x + self.dropout(self.attn(self.ln1(x), mask=mask))
        return x + self.dropout(self.down(nnx.gelu(self.up(self.ln2(x)))))


class ByteLM(nnx.Module):
    def __init__(self, d: int, heads: int, layers: int, seq: int, dropout: float, *, rngs):
        self.embed = nnx.Embed(256, d, rngs=rngs)
        self.pos = nnx.Embed(seq, d, rngs=rngs)
        self.blocks = nnx.List([Block(d, heads, dropout, rngs=rngs) for _ in range(layers)])
        self.ln = nnx.LayerNorm(d, rngs=rngs)
        self.head = nnx.Linear(d, 256, rngs=rngs)

    def __call__(self, tokens: jax.Array) -> jax.Array:  # [B, T] -> [B, T, 256]
        x = self.embed(tokens) + self.pos(jnp.arange(tokens.shape[-1]))
        mask = nnx.make_causal_mask(tokens)  # each byte sees only the ones before it
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.ln(x))


def loss_fn(model: ByteLM, batch: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Next-byte cross-entropy (nats per byte), and the next-byte accuracy as aux."""
    logits = model(batch[:, :-1])
    targets = batch[:, 1:]
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()
    return loss, jnp.mean(jnp.argmax(logits, -1) == targets)


def adamw(peak: float, steps: int) -> optax.GradientTransformation:
    """AdamW, 10% linear warmup to ``peak``, cosine to zero at ``steps``."""
    warm = max(1, steps // 10)
    schedule = lrjax.warmup(lrjax.cosine(peak, steps=steps - warm), steps=warm)
    return optax.adamw(schedule, b2=0.95, weight_decay=0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="a quick run (well under a minute)")
    fast = ap.parse_args().fast or os.environ.get("LRJAX_EXAMPLE_FAST") == "1"
    if fast:
        d, heads, layers, seq, batch = 32, 2, 1, 32, 16
        num_lrs, test_steps, train_steps = 8, 40, 300
    else:
        d, heads, layers, seq, batch = 64, 4, 2, 64, 32
        num_lrs, test_steps, train_steps = 12, 150, 1500

    train, val = load_text()
    print(f"{len(train)} training bytes, {len(val)} validation bytes from {', '.join(SOURCES)}")
    model = ByteLM(d, heads, layers, seq, dropout=0.1, rngs=nnx.Rngs(0))
    val_batches = windows(val, 8, batch, seq, seed=1)

    # 1. The range test over the peak: every copy runs warmup + cosine over test_steps.
    result = lrjax.range_test(
        loss_fn,
        model,
        windows(train, test_steps, batch, seq, seed=2),
        optimizer=lambda peak: adamw(peak, test_steps),
        min_lr=1e-4,
        max_lr=1.0,
        num_lrs=num_lrs,
        num_steps=test_steps,
        val_batches=val_batches,
        has_aux=True,
        progress=False,
    )
    window = max(1, test_steps // 10)
    train_loss = result.losses[0, :, -window:].mean(-1)  # NaN once diverged
    train_acc = result.aux[0, :, -window:].mean(-1)  # aux: [seeds, K, steps]
    print(f"range test: {num_lrs} peaks x {test_steps} steps of AdamW, warmup + cosine")
    print(f"{'peak':>9}  {'train loss':>10}  {'train acc':>9}  {'val loss':>8}  status")
    rows = zip(result.lrs, train_loss, train_acc, result.val_losses[0], result.status)
    for lr, tl, ta, vl, status in rows:
        print(f"{lr:9.3g}  {tl:10.4f}  {ta:9.3f}  {vl:8.4f}  {status}")
    # Each copy ran the whole schedule with its own peak: take the peak that
    # scored best on the held-out text (suggest() would also scale it for a
    # longer run, as for constant rates).
    peak = result.best_lr
    print(f"suggested rate: {peak:.4g}")

    # 2. The real run: the same optimizer and schedule, stretched to train_steps.
    optimizer = nnx.Optimizer(model, adamw(peak, train_steps), wrt=nnx.Param)

    @nnx.jit
    def step(model: ByteLM, optimizer: nnx.Optimizer, batch: jax.Array) -> jax.Array:
        (loss, _), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model, batch)
        optimizer.update(model, grads)
        return loss

    @nnx.jit
    def eval_step(model: ByteLM, batch: jax.Array) -> tuple[jax.Array, jax.Array]:
        return loss_fn(model, batch)

    def evaluate(model: ByteLM) -> tuple[float, float]:
        model.eval()  # no dropout
        out = np.array([eval_step(model, b) for b in val_batches])
        model.train()
        return tuple(out.mean(0))

    init_loss, _ = evaluate(model)
    batches = windows(train, train_steps, batch, seq, seed=3)
    losses = [float(step(model, optimizer, b)) for b in batches]
    val_loss, val_acc = evaluate(model)
    print(f"\n{train_steps} steps, warmup + cosine peaking at {peak:.4g}:")
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    print(f"train loss: first 10 steps {first:.4f}, last 10 {last:.4f}")
    print(f"initial validation loss: {init_loss:.4f}")
    print(f"final validation loss: {val_loss:.4f} (accuracy {val_acc:.3f})")
    print(f"uniform guess over 256 bytes: {np.log(256):.4f}")


if __name__ == "__main__":
    main()
