import jax.numpy as jnp
import optax

import lrjax

# 1000 steps of linear warmup, then a cosine decay over 9000 steps.
schedule = lrjax.warmup(lrjax.cosine(init_value=3e-3, steps=9_000), steps=1_000)
print(schedule)
print(schedule(0), schedule(500), schedule(1_000), schedule(10_000))
print(schedule(jnp.arange(0, 10_001, 2_500)))  # steps of any shape, elementwise

# A schedule is an optax.Schedule: pass it wherever Optax takes a learning rate.
optimizer = optax.adamw(learning_rate=schedule, weight_decay=1e-4)
