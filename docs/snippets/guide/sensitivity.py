import matplotlib.pyplot as plt
import numpy as np
import optax

import lrjax
from lrjax import data

loss_fn, params, batches = data.make_demo(num_steps=150)
optimizers = {
    "sgd": optax.sgd,
    "sgd + momentum 0.9": lambda lr: optax.sgd(lr, momentum=0.9),
    "adam": optax.adam,
}
fig, ax = plt.subplots(figsize=(6.5, 3.5), layout="constrained")
print(f"{'optimizer':20s} {'best rate':>9s} {'loss':>6s}   loss at rate/3.2   loss at rate*3.2")
for name, optimizer in optimizers.items():
    result = lrjax.range_test(
        loss_fn,
        None,
        batches,
        optimizer=optimizer,
        min_lr=1e-4,
        max_lr=10.0,
        num_lrs=21,  # 4 per decade: two neighbours apart is 3.2x
        num_steps=150,
        seeds=3,
        init_fn=lambda k: data.init_mlp(k),
        progress=False,
    )
    i = int(np.argmin(result.scores))
    best, lower, higher = result.scores[i], result.scores[i - 2], result.scores[i + 2]

    def versus_best(loss):
        return f"{loss:6.3f} ({loss / best:4.1f}x)" if np.isfinite(loss) else "diverged".ljust(14)

    assert not higher / best < lower / best  # too high costs more than too low
    row = f"{versus_best(lower)}     {versus_best(higher)}"
    print(f"{name:20s} {result.lrs[i]:9.2g} {best:6.3f}   {row}")
    finite = np.isfinite(result.scores)
    ax.errorbar(
        result.lrs[finite],
        result.scores[finite],
        yerr=result.score_std[finite],
        fmt="o-",
        ms=3,
        capsize=2,
        label=name,
    )
ax.set(xscale="log", yscale="log", xlabel="learning rate", ylabel="loss after 150 steps (3 seeds)")
ax.legend()
