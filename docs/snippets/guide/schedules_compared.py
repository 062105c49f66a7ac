import jax
import matplotlib.pyplot as plt
import numpy as np
import optax

import lrjax
from lrjax import data

STEPS, PEAK = 300, 0.5
X, y = data.load_digits()
order = np.random.default_rng(0).permutation(len(X))
test, train = order[:400], order[400:]  # hold out 400 digits
batches = data.make_batches(X[train], y[train], num_steps=STEPS, batch_size=64)
params0 = data.init_mlp(jax.random.key(0))


@jax.jit  # a schedule is a pytree: one compilation per schedule *kind*
def train(schedule):
    optimizer = optax.sgd(schedule, momentum=0.9)

    def step(carry, batch):
        params, state = carry
        loss, grads = jax.value_and_grad(data.mlp_loss)(params, batch)
        updates, state = optimizer.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), loss

    (params, _), losses = jax.lax.scan(step, (params0, optimizer.init(params0)), batches)
    return params, losses


schedules = {
    "constant": lrjax.constant(PEAK),
    "step decay": lrjax.multistep(PEAK, milestones=[150, 225], gamma=0.1),
    "cosine": lrjax.cosine(PEAK, steps=STEPS),
    "cyclic (triangular2)": lrjax.cyclic(PEAK / 10, PEAK, step_size_up=50, mode="triangular2"),
    "one-cycle": lrjax.one_cycle(PEAK, total_steps=STEPS),
    "wsd": lrjax.wsd(PEAK, total_steps=STEPS, warmup_steps=20, decay_fraction=0.2),
}
fig, ax = plt.subplots(figsize=(6.5, 3.5), layout="constrained")
final, test_losses = {}, {}
print(f"{'schedule':22s} {'last-20 train loss':>18s} {'test loss':>9s} {'test acc':>8s}")
for name, schedule in schedules.items():
    params, losses = train(schedule)
    logits = data.mlp_apply(params, X[test])
    test_loss = optax.softmax_cross_entropy_with_integer_labels(logits, y[test]).mean()
    acc = np.mean(np.argmax(logits, -1) == y[test])
    final[name] = np.mean(losses[-20:])
    test_losses[name] = float(test_loss)
    print(f"{name:22s} {final[name]:18.4f} {test_loss:9.4f} {acc:8.3f}")
    ax.plot(np.convolve(losses, np.ones(20) / 20, mode="valid"), label=name)
ax.set(xlabel="step", ylabel="training loss (20-step mean)", yscale="log")
ax.legend()

# Every schedule that lowers the rate at the end finishes several times below the
# constant rate, and with a lower test loss.
others = [name for name in schedules if name != "constant"]
assert all(final[name] < final["constant"] / 3 for name in others)
assert all(test_losses[name] < test_losses["constant"] for name in others)
