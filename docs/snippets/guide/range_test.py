import math

import optax

import lrjax
from lrjax import data

loss_fn, params, batches = data.make_demo(num_steps=100)

# 32 constant rates from 1e-5 to 10, each trained for 100 steps, side by side.
result = lrjax.range_test(
    loss_fn,
    params,
    batches,
    optimizer=optax.adam,
    min_lr=1e-5,
    max_lr=10.0,
    num_lrs=32,
    num_steps=100,
    progress=False,
)
print(result)
print("best rate (lowest loss after 100 steps):", f"{result.best_lr:.3g}")
for method, lr in result.suggestions().items():  # None: no answer ("budget" needs val_batches)
    print(f"suggest({method!r}):".ljust(20), "none" if lr is None else f"{lr:.3g}")
# fastai's valley, on per-rate scores, lands two orders of magnitude below the best
assert round(math.log10(result.best_lr / result.suggest("valley"))) == 2
result.plot()

# The classic single run (lrjax.lr_find): one copy, the rate ramped from 1e-5 to 10
# over 100 steps.
ramp = lrjax.lr_find(
    loss_fn,
    params,
    batches,
    optimizer=optax.adam,
    min_lr=1e-5,
    max_lr=10.0,
    num_steps=100,
    progress=False,
)
print(ramp)
for method, lr in ramp.suggestions().items():
    print(f"ramp suggest({method!r}):".ljust(25), "none" if lr is None else f"{lr:.3g}")
ramp.plot()
