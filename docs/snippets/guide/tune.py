import numpy as np
import optax

import lrjax
from lrjax import data

X, y = data.load_digits()
rng = np.random.default_rng(0)
order = rng.permutation(len(X))
train, held_out = order[:1400], order[1400:1784]
loss_fn, params, batches = data.make_demo(num_steps=240, data=(X[train], y[train]))
val = (X[held_out].reshape(3, 128, 64), y[held_out].reshape(3, 128))
steps = 240


def make_optimizer(lr, pct_start, weight_decay):
    schedule = lrjax.one_cycle(lr, steps, pct_start=pct_start)
    return optax.adamw(schedule, weight_decay=weight_decay)


space = {  # a wide rate range, as when the rate is not known: the rate test narrows it
    "lr": ("log", 1e-5, 10.0),
    "pct_start": (0.1, 0.5),
    "weight_decay": ("log", 1e-5, 1e-1),
}
result = lrjax.tune(  # successive halving, 40 members over 5 rounds, by default
    loss_fn, params, batches, make_optimizer, space,
    num_steps=steps, val_batches=val, progress=False,
)  # fmt: skip
print("best:", {k: float(f"{v:.3g}") for k, v in result.best.items()})
low, high = result.rate_range
copies, each = len(result.rate_test.scores), result.rate_test_steps
print(f"rate test: lr narrowed to [{low:.2e}, {high:.2e}] by {copies} rates x {each} steps")
n = round(result.steps / steps)  # random search with the same training steps
print(f"tune, 40 members:           validation loss {result.best_score:.3f} ({result.steps} steps)")


def random_search(n, seed):
    """n settings drawn from the same space, each trained for all 240 steps."""
    r = np.random.default_rng(seed)
    log_uniform = lambda lo, hi: np.exp(r.uniform(np.log(lo), np.log(hi), n))
    grid = {
        "lr": log_uniform(1e-5, 10.0),
        "pct_start": r.uniform(0.1, 0.5, n),
        "weight_decay": log_uniform(1e-5, 1e-1),
    }
    res = lrjax.sweep(
        loss_fn, params, batches, make_optimizer, grid, combine="zip",
        val_batches=val, progress=False,
    )  # fmt: skip
    return float(np.min(res.scores))


same = [random_search(n, seed) for seed in range(5)]
print(f"random search, {n} settings: validation loss {np.median(same):.3f} (median of 5 searches)")
four_times = random_search(4 * n, 5)
print(f"random search, {4 * n} settings: validation loss {four_times:.3f}")
result.plot()
