"""Recompilations when a schedule's hyperparameters change, lrjax vs Optax.

A jitted Adam training step is run with 100 different schedules of the same
structure (new ``init_value``, ``steps``/``total_steps``, ``pct_start``...). An
lrjax schedule is a pytree argument of the step, so the step compiles once; an
Optax schedule is a closure, so each new value means a new optimizer and a new
compilation. Counts compilations by tracing (a counter in the traced function)
and reports the total wall time of the 100 changes for each, measured in one run.

    python benchmarks/recompiles.py [--changes 100]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import machine_info, table

import lrjax


def problem():
    params = {"w": jnp.ones((32, 32)) * 0.1, "b": jnp.zeros(32)}
    x = jnp.linspace(-1, 1, 64 * 32).reshape(64, 32)

    def loss_fn(p):
        return jnp.mean(jnp.tanh(x @ p["w"] + p["b"]) ** 2)

    return params, loss_fn


def lrjax_runner(params, loss_fn):
    traces = [0]

    @jax.jit
    def train(schedule, p):
        traces[0] += 1
        opt = optax.adam(schedule)
        s = opt.init(p)
        for _ in range(3):
            g = jax.grad(loss_fn)(p)
            u, s = opt.update(g, s, p)
            p = optax.apply_updates(p, u)
        return p

    return train, traces


def optax_runner(params, loss_fn):
    traces = [0]

    def make(schedule):
        opt = optax.adam(schedule)

        @jax.jit
        def train(p):
            traces[0] += 1
            s = opt.init(p)
            for _ in range(3):
                g = jax.grad(loss_fn)(p)
                u, s = opt.update(g, s, p)
                p = optax.apply_updates(p, u)
            return p

        return train

    return make, traces


def configs(n, rng):
    init = rng.uniform(1e-4, 1e-2, n)
    steps = rng.integers(100, 10_000, n)
    pct = rng.uniform(0.1, 0.5, n)
    return [
        (
            "cosine",
            lrjax.cosine(init_value=float(a), steps=int(t)),
            optax.cosine_decay_schedule(float(a), int(t)),
        )
        for a, t in zip(init, steps)
    ] + [
        (
            "one_cycle",
            lrjax.one_cycle(
                max_value=float(a),
                total_steps=int(t),
                pct_start=float(p),
                final_div_factor=1e4,
                convention="torch",
            ),
            optax.cosine_onecycle_schedule(int(t), float(a), pct_start=float(p)),
        )
        for a, t, p in zip(init, steps, pct)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--changes", type=int, default=100)
    args = ap.parse_args()
    print(machine_info())
    params, loss_fn = problem()
    rng = np.random.default_rng(0)
    rows = []
    for family in ("cosine", "one_cycle"):
        cfgs = [c for c in configs(args.changes, rng) if c[0] == family]
        train, lr_traces = lrjax_runner(params, loss_fn)
        t0 = time.perf_counter()
        for _, ours, _ in cfgs:
            jax.block_until_ready(train(ours, params))
        t_lrjax = time.perf_counter() - t0
        make, ox_traces = optax_runner(params, loss_fn)
        t0 = time.perf_counter()
        for _, _, theirs in cfgs:
            jax.block_until_ready(make(theirs)(params))
        t_optax = time.perf_counter() - t0
        rows.append(
            [
                family,
                len(cfgs),
                lr_traces[0] - 1,
                ox_traces[0] - 1,
                f"{t_lrjax:.2f}",
                f"{t_optax:.2f}",
                f"{t_optax / t_lrjax:.1f}x",
            ]
        )
    print(
        table(
            rows,
            [
                "schedule",
                "changes",
                "lrjax recompiles",
                "optax recompiles",
                "lrjax s",
                "optax s",
                "optax/lrjax time",
            ],
        )
    )


if __name__ == "__main__":
    main()
