import jax
import jax.numpy as jnp
import optax
import torch

import lrjax
from lrjax import data

X, y = data.load_digits()
dataset = torch.utils.data.TensorDataset(torch.from_numpy(X[:1500]), torch.from_numpy(y[:1500]))
loader = torch.utils.data.DataLoader(dataset, batch_size=32, shuffle=True, drop_last=True)
val_loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.from_numpy(X[1500:]), torch.from_numpy(y[1500:])),
    batch_size=32,
    drop_last=True,  # every batch of one shape
)


def loss_fn(params, batch):
    x, y = batch  # traced JAX arrays here: lrjax converted the tensors on the host
    logits = jax.nn.relu(x @ params["w1"]) @ params["w2"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


k1, k2 = jax.random.split(jax.random.key(0))
params = {"w1": jax.random.normal(k1, (64, 32)) / 8.0, "w2": jnp.zeros((32, 10))}
torch.manual_seed(0)  # the loader's shuffling
result = lrjax.range_test(
    loss_fn,
    params,
    loader,  # the first num_steps batches are read, in blocks
    min_lr=1e-3,
    max_lr=1.0,
    num_lrs=4,
    num_steps=20,
    val_batches=val_loader,
    progress=False,
)
print("val losses:", result.val_losses.shape)
