import optax

import lrjax
from lrjax import data

loss_fn, params, batches = data.make_demo(num_steps=100)  # digits MLP, 100 minibatches
result = lrjax.range_test(
    loss_fn, params, batches, optimizer=optax.adam,
    min_lr=1e-5, max_lr=10.0, num_lrs=32, num_steps=100, progress=False,
)  # fmt: skip
print(result)
print(f"best rate {result.best_lr:.3g}, valley suggestion {result.suggest('valley'):.3g}")
result.plot()
