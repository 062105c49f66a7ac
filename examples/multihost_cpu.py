"""A range test and a sweep over several processes, on one CPU machine.

The multi-host recipe of ``docs/multihost.md`` made runnable without a
cluster: every process calls ``jax.distributed.initialize()`` (here on
``127.0.0.1``, with CPU collectives over gloo), builds one
``jax.sharding.Mesh`` over ``jax.devices()`` (the devices of *all*
processes), and makes the same ``lrjax.range_test`` and ``lrjax.sweep`` call.
The copies (one per learning rate, or per grid setting) are split over the
devices of every process, and every process gets the full result.

Each process pretends to be a host with ``--devices-per-process`` CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count``). The model is a plain
function: a small MLP on a fixed synthetic classification problem, the same
in every process (seeded NumPy), so the script needs nothing beyond lrjax.

Run one process per terminal (the same command with ``--process-id 0`` and
``1``, the same ``--port``)::

    python examples/multihost_cpu.py --process-id 0 --num-processes 2 --port 12355
    python examples/multihost_cpu.py --process-id 1 --num-processes 2 --port 12355

or let the script start them and check they printed the same numbers::

    python examples/multihost_cpu.py --launch 2

``--num-processes 1 --devices-per-process 4`` runs the same computation in one
process on four devices (no ``jax.distributed``): the numbers equal the
two-process run's (``tests/test_multiprocess.py`` checks it). On a real
cluster drop ``--devices-per-process`` and the gloo line (GPUs and TPUs bring
their own collectives), and call ``jax.distributed.initialize()`` with no
arguments where the cluster (SLURM, Cloud TPU, Kubernetes) describes itself.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys

#: Printed before the one-line JSON summary of the results.
RESULT_TAG = "RESULT "


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_problem(seed: int = 0, num_steps: int = 40, batch_size: int = 64):
    """``(loss_fn, params, batches)``: a 16-32-4 MLP on synthetic data.

    Every process must build identical inputs: everything here is seeded.
    ``loss_fn(params, batch)`` is a plain function of a dict of arrays, so it
    extends to any model ``lrjax.range_test`` accepts.
    """
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(seed)
    n_in, n_hidden, n_out = 16, 32, 4
    centers = rng.normal(size=(n_out, n_in)).astype(np.float32)
    labels = rng.integers(0, n_out, size=(num_steps, batch_size))
    noise = rng.normal(size=(num_steps, batch_size, n_in)).astype(np.float32)
    xs = centers[labels] + noise
    params = {
        "w1": (rng.normal(size=(n_in, n_hidden)) / np.sqrt(n_in)).astype(np.float32),
        "b1": np.zeros(n_hidden, np.float32),
        "w2": (rng.normal(size=(n_hidden, n_out)) / np.sqrt(n_hidden)).astype(np.float32),
        "b2": np.zeros(n_out, np.float32),
    }

    def loss_fn(params, batch):
        x, y = batch
        h = jnp.tanh(x @ params["w1"] + params["b1"])
        logits = h @ params["w2"] + params["b2"]
        logp = logits - jnp.log(jnp.sum(jnp.exp(logits), axis=-1, keepdims=True))
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=-1))

    return loss_fn, params, (xs, labels.astype(np.int32))


def make_stateful_problem(seed: int = 1, num_steps: int = 40, batch_size: int = 64):
    """``(loss_fn, params, state, batches, val_batches)``: the MLP with model state.

    The state is a running mean of the inputs that centres them (as BatchNorm's
    running statistics do), updated at every training step and carried per
    copy; evaluation centres with the state reached by training.
    """
    import numpy as np

    base_loss, params, (xs, ys) = make_problem(seed, num_steps + 4, batch_size)
    xs = xs + 3.0  # an offset the running mean learns to remove

    def loss_fn(params, state, batch):
        x, y = batch
        new_state = 0.9 * state + 0.1 * x.mean(axis=0)
        return base_loss(params, (x - new_state, y)), new_state

    def eval_fn(params, state, batch):
        x, y = batch
        return base_loss(params, (x - state, y))

    state = np.zeros(xs.shape[-1], np.float32)
    train = (xs[:num_steps], ys[:num_steps])
    val = (xs[num_steps:], ys[num_steps:])
    return loss_fn, eval_fn, params, state, train, val


def run(process_id: int, num_processes: int, port: int, devices_per_process: int) -> dict:
    """Initializes JAX for this process, runs the range test and the sweep."""
    # XLA reads its flags when the CPU backend starts: set them before importing jax.
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = (
        f"{flags} --xla_force_host_platform_device_count={devices_per_process}".strip()
    )
    import jax

    if num_processes > 1:
        # CPU devices of different processes talk over gloo (GPUs: NCCL, built in).
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=f"127.0.0.1:{port}",
            num_processes=num_processes,
            process_id=process_id,
            initialization_timeout=120,
        )
    import numpy as np
    import optax
    from jax.sharding import Mesh

    import lrjax

    # One mesh over every device of every process, the same in each process.
    mesh = Mesh(np.array(jax.devices()), ("copies",))
    loss_fn, params, batches = make_problem()

    # The same call in every process: 8 rates, split 2 per device over 4 devices.
    result = lrjax.range_test(
        loss_fn, params, batches, optimizer=optax.adam,
        min_lr=1e-4, max_lr=10.0, num_lrs=8, num_steps=40, mesh=mesh, progress=False,
    )  # fmt: skip
    # A sweep takes the same mesh (and so does lrjax.tune).
    sweep = lrjax.sweep(
        loss_fn, params, batches,
        lambda peak, pct: optax.adam(lrjax.one_cycle(peak, 40, pct_start=pct)),
        grid={"peak": [0.01, 0.03, 0.1, 0.3], "pct": [0.2, 0.4]},
        mesh=mesh, progress=False,
    )  # fmt: skip
    # A model with state, scored on held-out batches (evaluated every 10 steps).
    loss2, eval2, params2, state2, train2, val2 = make_stateful_problem()
    stateful = lrjax.range_test(
        loss2, params2, train2, optimizer=optax.adam, min_lr=1e-4, max_lr=10.0, num_lrs=8,
        num_steps=40, mesh=mesh, progress=False, state=state2, eval_fn=eval2,
        val_batches=val2, eval_every=10,
    )  # fmt: skip
    stateful_sweep = lrjax.sweep(
        loss2, params2, train2, lambda learning_rate: optax.adam(learning_rate),
        grid={"learning_rate": [1e-3, 1e-2, 1e-1, 1.0]}, mesh=mesh, progress=False,
        state=state2, eval_fn=eval2, val_batches=val2,
    )  # fmt: skip
    return {
        "val_losses": [None if not np.isfinite(x) else float(x) for x in stateful.val_losses[0]],
        "val_curves": np.nan_to_num(stateful.val_curves[0], nan=-1.0).round(7).tolist(),
        "stateful_best_lr": float(stateful.best_lr),
        "stateful_sweep_scores": [float(x) for x in stateful_sweep.scores],
        "process": jax.process_index(),
        "processes": jax.process_count(),
        "devices": jax.device_count(),
        "lrs": [float(x) for x in result.lrs],
        "scores": [float(x) for x in result.scores],
        "best_lr": float(result.best_lr),
        "sweep_scores": [float(x) for x in np.ravel(sweep.scores)],
        "sweep_best": {k: float(v) for k, v in sweep.best.items()},
    }


def report(summary: dict) -> str:
    """The human-readable lines, then the JSON line (identical in every process)."""
    lines = [
        f"process {summary['process']} of {summary['processes']}, "
        f"{summary['devices']} devices in the mesh",
        "rate        score",
    ]
    lines += [f"{lr:<10.3g}  {s:.6f}" for lr, s in zip(summary["lrs"], summary["scores"])]
    best = summary["sweep_best"]
    lines.append(f"best rate {summary['best_lr']:.3g}")
    lines.append(f"sweep best: peak={best['peak']:.3g}, pct={best['pct']:.2g}")
    shared = {k: v for k, v in summary.items() if k != "process"}
    lines.append(RESULT_TAG + json.dumps(shared, sort_keys=True))
    return "\n".join(lines)


def parse_result(stdout: str) -> dict:
    """The JSON summary a process printed (the line after :data:`RESULT_TAG`)."""
    for line in stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    raise ValueError(f"no {RESULT_TAG.strip()} line in the output:\n{stdout}")


def launch(num_processes: int, devices_per_process: int, timeout: float) -> list[str]:
    """Starts ``num_processes`` copies of this script and returns their outputs.

    Raises:
      RuntimeError: a process failed or timed out (its output is in the message).
    """
    port = free_port()
    cmd = [sys.executable, os.path.abspath(__file__)]
    procs = [
        subprocess.Popen(
            [
                *cmd,
                f"--process-id={i}",
                f"--num-processes={num_processes}",
                f"--port={port}",
                f"--devices-per-process={devices_per_process}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(num_processes)
    ]
    outputs, failed = [], []
    try:
        for i, p in enumerate(procs):
            try:
                out, err = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                failed.append(f"process {i} timed out after {timeout:.0f} s:\n{out}\n{err}")
                continue
            if p.returncode != 0:
                failed.append(f"process {i} exited with {p.returncode}:\n{out}\n{err}")
            outputs.append(out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    if failed:
        raise RuntimeError("\n".join(failed))
    return outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--process-id", type=int, default=0, help="this process (default: 0)")
    parser.add_argument(
        "--num-processes", type=int, default=1, help="processes in the job (default: 1)"
    )
    parser.add_argument(
        "--port", type=int, default=12355, help="coordinator port on 127.0.0.1 (default: 12355)"
    )
    parser.add_argument(
        "--devices-per-process", type=int, default=2, help="CPU devices each (default: 2)"
    )
    parser.add_argument(
        "--launch", type=int, metavar="N", help="start N processes of this script and compare"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds per launched process (default: 300)"
    )
    args = parser.parse_args(argv)
    if args.launch is not None:
        if args.launch < 1:
            parser.error(f"--launch must be >= 1, got {args.launch}")
        outputs = launch(args.launch, args.devices_per_process, args.timeout)
        results = [parse_result(out) for out in outputs]
        # gloo logs its connections to stdout: show only this script's lines.
        print("\n".join(ln for ln in outputs[0].splitlines() if not ln.startswith("[Gloo]")))
        if any(r != results[0] for r in results[1:]):
            print("the processes disagree:\n" + "\n".join(outputs), file=sys.stderr)
            return 1
        print(f"all {args.launch} processes printed the same result")
        return 0
    if args.devices_per_process < 1:
        parser.error(f"--devices-per-process must be >= 1, got {args.devices_per_process}")
    if not 0 <= args.process_id < args.num_processes:
        parser.error(f"--process-id must be in [0, {args.num_processes}), got {args.process_id}")
    print(report(run(args.process_id, args.num_processes, args.port, args.devices_per_process)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
