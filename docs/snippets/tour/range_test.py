import optax

import lrjax
from lrjax import data

X, y = data.load_digits()  # 1,797 digits: train on 1,500, score on the rest
loss_fn, params, batches = data.make_demo(num_steps=100, data=(X[:1500], y[:1500]))
result = lrjax.range_test(
    loss_fn, params, batches, optimizer=optax.adam,
    min_lr=1e-5, max_lr=10.0, num_lrs=32, num_steps=100,
    val_batches=[(X[1500:], y[1500:])], progress=False,
)  # fmt: skip
print(result)
print(f"best_lr = {result.best_lr:.3g} (lowest validation loss after 100 steps)")
print(f"suggest() = {result.suggest():.3g} (best_lr / 3: for a run 3x as long)")
print(f"suggest_for(2_000) = {result.suggest_for(2_000):.3g}")
result.plot()
