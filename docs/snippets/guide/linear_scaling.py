import optax

import lrjax
from lrjax import data

# Three epochs of plain SGD at each batch size: which constant rate trains best?
best = {}
for batch_size in (4, 8, 16, 64, 128):
    num_steps = 3 * 1797 // batch_size
    loss_fn, params, batches = data.make_demo(num_steps=num_steps, batch_size=batch_size)
    result = lrjax.range_test(
        loss_fn,
        params,
        batches,
        optimizer=optax.sgd,
        min_lr=1e-3,
        max_lr=10.0,
        num_lrs=21,
        num_steps=num_steps,
        progress=False,
    )
    best[batch_size] = result.best_lr
    print(f"batch {batch_size:3d}: {num_steps:4d} steps, best constant rate {result.best_lr:.2g}")

assert best[16] > 2 * best[4]  # small batches: the best rate grows with the batch
assert best[128] < 16 * best[16]  # large ones: much slower than in proportion
