import jax
import optax
from flax import linen as nn

import lrjax
from lrjax import data


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.Dense(64)(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        x = nn.Dropout(0.2, deterministic=not train)(nn.relu(x))
        return nn.Dense(10)(x)


def loss_fn(apply, batch):
    x, y = batch
    logits = apply(x, train=apply.training)  # True while training, False in evaluation
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


X, y = data.load_digits()
train = (X[:320].reshape(10, 32, 64), y[:320].reshape(10, 32))
val = (X[1500:1564].reshape(2, 32, 64), y[1500:1564].reshape(2, 32))

module = MLP()
variables = module.init(jax.random.key(0), X[:1], train=False)

result = lrjax.range_test(
    loss_fn,
    (module, variables),  # batch_stats carried per copy, a "dropout" stream per step
    train,
    min_lr=1e-3,
    max_lr=1.0,
    num_lrs=4,
    num_steps=10,
    val_batches=val,  # evaluated with apply.training False: running averages, no Dropout
    return_params=True,
    progress=False,
)
print("carried per copy:", list(result.best_state()))  # ['batch_stats']
print("val losses:", result.val_losses.shape)
