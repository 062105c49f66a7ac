"""Cost of an lrjax schedule inside a jitted Adam training loop, vs the Optax equivalent.

Both loops are the same ``lax.scan`` of Adam steps on a small MLP; only the
schedule object differs. Prints the median time per step for each and the ratio
lrjax / optax, measured interleaved in one run (target <= 1.05).

    python benchmarks/schedule_overhead.py [--steps 2000] [--repeats 7]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import optax
from _common import interleaved, machine_info, table

import lrjax


def make_problem(key, width=256, batch=128, dim=64):
    k1, k2, k3 = jax.random.split(key, 3)
    params = {
        "w1": jax.random.normal(k1, (dim, width)) / jnp.sqrt(dim),
        "w2": jax.random.normal(k2, (width, 1)) / jnp.sqrt(width),
    }
    x = jax.random.normal(k3, (batch, dim))
    y = jnp.sin(x.sum(axis=1, keepdims=True))

    def loss_fn(p):
        return jnp.mean((jnp.tanh(x @ p["w1"]) @ p["w2"] - y) ** 2)

    return params, loss_fn


def make_run(schedule, params, loss_fn, steps):
    opt = optax.adam(schedule)

    @jax.jit
    def run(p):
        def step(carry, _):
            p, s = carry
            loss, g = jax.value_and_grad(loss_fn)(p)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), loss

        (p, _), losses = jax.lax.scan(step, (p, opt.init(p)), None, length=steps)
        return losses[-1]

    return lambda: run(params)


def pairs(steps):
    total = steps
    return {
        "cosine": (
            lrjax.cosine(init_value=1e-3, steps=total, end_value=1e-5),
            optax.cosine_decay_schedule(1e-3, total, alpha=1e-2),
        ),
        "warmup+cosine": (
            lrjax.warmup(lrjax.cosine(init_value=1e-3, steps=total - 100), steps=100),
            optax.warmup_cosine_decay_schedule(0.0, 1e-3, 100, total, 0.0),
        ),
        "one_cycle": (
            lrjax.one_cycle(
                max_value=1e-3,
                total_steps=total,
                pct_start=0.3,
                final_div_factor=1e4,
                convention="torch",
            ),
            optax.cosine_onecycle_schedule(total, 1e-3, pct_start=0.3),
        ),
        "piecewise": (
            lrjax.piecewise_constant([total // 2, 3 * total // 4], [1e-3, 1e-4, 1e-5]),
            optax.piecewise_constant_schedule(1e-3, {total // 2: 0.1, 3 * total // 4: 0.1}),
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    params, loss_fn = make_problem(jax.random.PRNGKey(0))
    print(machine_info())
    print(
        f"Adam on a 64-256-1 MLP, batch 128, {args.steps} steps per run, "
        f"median of {args.repeats} interleaved repeats\n"
    )
    rows = []
    for name, (ours, theirs) in pairs(args.steps).items():
        t = interleaved(
            {
                "lrjax": make_run(ours, params, loss_fn, args.steps),
                "optax": make_run(theirs, params, loss_fn, args.steps),
            },
            repeats=args.repeats,
        )
        us = lambda s: f"{1e6 * s / args.steps:.2f}"
        rows.append([name, us(t["lrjax"]), us(t["optax"]), f"{t['lrjax'] / t['optax']:.3f}"])
    print(table(rows, ["schedule", "lrjax us/step", "optax us/step", "ratio lrjax/optax"]))


if __name__ == "__main__":
    main()
