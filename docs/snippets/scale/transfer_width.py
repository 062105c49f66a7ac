import warnings

import jax
import optax

import lrjax
from lrjax import data

X, y = data.load_digits()
X_train, y_train, X_val, y_val = X[:1500], y[:1500], X[1500:], y[1500:]
batches = data.make_batches(X_train, y_train, num_steps=100, batch_size=128)


def mlp(width: int, key: jax.Array):
    """The digits MLP with one hidden layer of `width` units, drawn from `key`."""
    return data.init_mlp(key, (64, width, 10))


# 12 rates x 2 seeds at each of four small widths, side by side; the rate at 1024.
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    result = lrjax.transfer(
        data.mlp_loss,
        mlp,  # width, key -> model: each seed its own initialisation
        batches,
        optax.adam,
        sizes=[16, 32, 64, 128],
        target=1024,
        num_steps=100,
        min_lr=1e-4,
        max_lr=3.0,
        num_lrs=12,
        seeds=2,
        val_batches=[(X_val, y_val)],  # each run scored on held-out data
        progress=False,
    )
print(result)
for width, rate, (lo, hi) in zip(result.sizes, result.optima, result.optima_intervals):
    print(f"width {width:>4g}: best rate {rate:.3g} (80% interval {lo:.3g} .. {hi:.3g})")
print(f"rule: {result.rule}; rate at width 1024: {result.rate:.3g}")
print(f"each rule's prediction: {', '.join(f'{k} {v:.3g}' for k, v in result.predictions.items())}")
print(f"{len(caught)} warning(s)")
result.plot()
