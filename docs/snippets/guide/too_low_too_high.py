import matplotlib.pyplot as plt
import optax

import lrjax
from lrjax import data

# The digits MLP (64-64-10), 200 minibatches of 128, plain SGD at seven constant rates.
loss_fn, params, batches = data.make_demo(num_steps=200)
result = lrjax.range_test(
    loss_fn,
    params,
    batches,
    optimizer=optax.sgd,
    min_lr=0.01,
    max_lr=10.0,
    num_lrs=7,
    num_steps=200,
    progress=False,
)

print("    rate  step 0  step 10  step 50  step 199  status")
for lr, curve, status in zip(result.lrs, result.losses[0], result.status):
    print(f"{lr:8.3g}" + "".join(f"{curve[t]:8.3f}" for t in (0, 10, 50, 199)) + f"  {status}")

assert result.status[0] == "slow" and result.status[-1] == "diverged"

fig, ax = plt.subplots(figsize=(6.5, 3.5), layout="constrained")
for lr, curve in zip(result.lrs, result.losses[0]):
    ax.plot(curve, label=f"lr = {lr:.2g}")
ax.set(xlabel="step", ylabel="training loss", ylim=(0, 3))
ax.legend(loc="upper right", ncols=2)
