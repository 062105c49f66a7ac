"""The data users bring: loaders of every library, NumPy's default dtypes, epochs.

Every case trains on batches as a library hands them out and compares with the
same batches stacked by hand into one NumPy array (converted as ``jnp.asarray``
converts: int64 -> int32, float64 -> float32 with x64 off; uint8 kept) and, for
a loader shorter than the run, repeated epoch after epoch. Both runs compute
the same per-step program on the same numbers, so they agree exactly.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is first imported

N_CLASSES, SIDE, BATCH = 4, 6, 8
RNG = np.random.default_rng(0)
#: torchvision-style images: uint8 NHWC, labels int64 (``torch.from_numpy(y).long()``).
IMAGES = RNG.integers(0, 256, size=(92, SIDE, SIDE, 1), dtype=np.uint8)
LABELS = (IMAGES.reshape(92, -1)[:, :4].argmax(1) % N_CLASSES).astype(np.int64)
N_BATCHES = len(IMAGES) // BATCH  # 11 full batches: a run of 30 steps reads 3 passes
RUN = dict(min_lr=1e-3, max_lr=3.0, num_lrs=4, num_steps=30, progress=False)


def image_loss(w, batch):
    """Softmax regression on uint8 images scaled in the model, as tutorials do."""
    x, y = batch
    x = x.reshape(x.shape[0], -1).astype(jnp.float32) / 255.0
    return optax.softmax_cross_entropy_with_integer_labels(x @ w, y).mean()


W0 = jnp.zeros((SIDE * SIDE, N_CLASSES))


def stacked(batches, num_steps):
    """``batches`` (a list of ``(x, y)`` NumPy batches) cycled to ``num_steps`` and
    stacked, in the dtypes JAX computes in."""
    xs, ys = zip(*(batches[t % len(batches)] for t in range(num_steps)))
    x, y = np.stack(xs), np.stack(ys)
    return x.astype(jax.dtypes.canonicalize_dtype(x.dtype)), y.astype(np.int32)


def epochs_of_images(num_steps):
    by_batch = [
        (IMAGES[i * BATCH : (i + 1) * BATCH], LABELS[i * BATCH : (i + 1) * BATCH])
        for i in range(N_BATCHES)
    ]
    return stacked(by_batch, num_steps)


def assert_same_run(got, want):
    np.testing.assert_array_equal(got.losses, want.losses)
    np.testing.assert_array_equal(got.stop_step, want.stop_step)


@pytest.fixture(scope="module")
def reference():
    """The range test on the images stacked by hand, cycled over 3 epochs."""
    return lrjax.range_test(image_loss, W0, epochs_of_images(30), optax.sgd, **RUN)


# ------------------------------------------------------------------ loaders


def test_torch_dataloader_uint8_images_int64_labels_over_epochs(reference):
    torch = pytest.importorskip("torch")
    dataset = torch.utils.data.TensorDataset(
        torch.from_numpy(IMAGES), torch.from_numpy(LABELS).long()
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, drop_last=True)
    assert len(loader) < RUN["num_steps"]  # shorter than the run: read again, epoch by epoch
    res = lrjax.range_test(image_loss, W0, loader, optax.sgd, **RUN)
    assert_same_run(res, reference)
    assert res.data_passes == 3 and reference.data_passes == 1
    assert res.to_dict()["data_passes"] == 3


def test_torch_dataloader_shuffled_epochs_equal_the_loader_read_by_hand():
    """Each epoch of a shuffled DataLoader is drawn anew, as in a training loop."""
    torch = pytest.importorskip("torch")
    dataset = torch.utils.data.TensorDataset(
        torch.from_numpy(IMAGES), torch.from_numpy(LABELS).long()
    )

    def loader():
        g = torch.Generator().manual_seed(7)
        return torch.utils.data.DataLoader(
            dataset, batch_size=BATCH, shuffle=True, drop_last=True, generator=g
        )

    # the same generator object is advanced epoch after epoch in both runs
    hand_loader = loader()
    by_hand = [(x.numpy(), y.numpy()) for _ in range(3) for x, y in hand_loader]
    want = lrjax.range_test(image_loss, W0, stacked(by_hand, 30), optax.sgd, **RUN)
    res = lrjax.range_test(image_loss, W0, loader(), optax.sgd, **RUN)
    assert_same_run(res, want)
    first_epoch = [y for _, y in by_hand[:N_BATCHES]]
    second_epoch = [y for _, y in by_hand[N_BATCHES : 2 * N_BATCHES]]
    assert not all(np.array_equal(a, b) for a, b in zip(first_epoch, second_epoch))


FEATURES = np.random.default_rng(1).normal(size=(2, 12, BATCH, 5)).astype(np.float32)
TARGETS = FEATURES.sum(-1) / 3
FEATURE_RUN = dict(min_lr=1e-3, max_lr=1.0, num_lrs=3, num_steps=12, progress=False)


def feature_loss(w, b):
    return jnp.mean((b[0].astype(jnp.float32) @ w - b[1].astype(jnp.float32)) ** 2)


def test_torch_tensors_that_require_grad():
    """A model's outputs or cached features arrive with ``requires_grad=True``."""
    torch = pytest.importorskip("torch")
    x, y = FEATURES[0], TARGETS[0]
    grads = [
        (torch.tensor(x[t], requires_grad=True), torch.tensor(y[t], requires_grad=True))
        for t in range(12)
    ]
    want = lrjax.range_test(feature_loss, jnp.zeros(5), (x, y), optax.sgd, **FEATURE_RUN)
    got = lrjax.range_test(feature_loss, jnp.zeros(5), grads, optax.sgd, **FEATURE_RUN)
    assert_same_run(got, want)


def test_torch_bfloat16_tensors_that_require_grad():
    """bfloat16 has no NumPy dtype: converted through DLPack (detached first)."""
    torch = pytest.importorskip("torch")
    x, y = FEATURES[1], TARGETS[1]
    bf16 = [
        (torch.tensor(x[t]).bfloat16().requires_grad_(), torch.tensor(y[t]).bfloat16())
        for t in range(12)
    ]
    as_numpy = tuple(np.asarray(jnp.asarray(a, jnp.bfloat16)) for a in (x, y))
    want = lrjax.range_test(feature_loss, jnp.zeros(5), as_numpy, optax.sgd, **FEATURE_RUN)
    got = lrjax.range_test(feature_loss, jnp.zeros(5), bf16, optax.sgd, **FEATURE_RUN)
    assert_same_run(got, want)
    assert str(np.asarray(jnp.asarray(as_numpy[0])).dtype) == "bfloat16"


def test_tf_data_int64_labels_over_epochs(reference):
    tf = pytest.importorskip("tensorflow")
    ds = tf.data.Dataset.from_tensor_slices((IMAGES, LABELS)).batch(BATCH, drop_remainder=True)
    assert ds.element_spec[1].dtype == tf.int64
    res = lrjax.range_test(image_loss, W0, ds, optax.sgd, **RUN)
    assert_same_run(res, reference)
    assert res.data_passes == 3


def test_hugging_face_dataset_in_numpy_format(reference):
    """``datasets`` in NumPy format yields dicts of int64 arrays (the images too);
    ``Dataset.iter`` is a generator, read once."""
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"image": IMAGES, "label": LABELS}).with_format("numpy")
    loss = lambda w, b: image_loss(w, (b["image"], b["label"]))
    batches = ds.iter(batch_size=BATCH, drop_last_batch=True)
    first = next(ds.iter(batch_size=BATCH))
    assert first["label"].dtype == np.int64 and first["image"].dtype == np.int64
    res = lrjax.range_test(loss, W0, batches, optax.sgd, **{**RUN, "num_steps": N_BATCHES})
    x, y = epochs_of_images(N_BATCHES)
    want = lrjax.range_test(image_loss, W0, (x, y), optax.sgd, **{**RUN, "num_steps": N_BATCHES})
    assert_same_run(res, want)
    with pytest.raises(ValueError, match="read only once") as info:
        lrjax.range_test(loss, W0, ds.iter(batch_size=BATCH, drop_last_batch=True), **RUN)
    assert "\n" not in str(info.value)


def test_grain_loaders_over_epochs(reference):
    grain = pytest.importorskip("grain")
    records = [(IMAGES[i], LABELS[i]) for i in range(len(IMAGES))]
    dataset = grain.MapDataset.source(records).batch(BATCH, drop_remainder=True)
    res = lrjax.range_test(image_loss, W0, dataset, optax.sgd, **RUN)
    assert_same_run(res, reference)
    assert res.data_passes == 3

    sampler = grain.samplers.IndexSampler(
        len(records), shard_options=grain.sharding.NoSharding(), shuffle=False, num_epochs=1
    )
    loader = grain.DataLoader(
        data_source=records,
        sampler=sampler,
        operations=[grain.transforms.Batch(BATCH, drop_remainder=True)],
    )
    assert_same_run(lrjax.range_test(image_loss, W0, loader, optax.sgd, **RUN), reference)


def test_numpy_float64_and_int64_batches_in_a_list():
    """NumPy's defaults, the plainest input there is."""
    rng = np.random.default_rng(2)
    batches = [(rng.normal(size=(16, 36)), rng.integers(0, N_CLASSES, 16)) for _ in range(10)]
    assert batches[0][0].dtype == np.float64 and batches[0][1].dtype == np.int64
    loss = lambda w, b: optax.softmax_cross_entropy_with_integer_labels(b[0] @ w, b[1]).mean()
    run = {**RUN, "num_steps": 25}
    res = lrjax.range_test(loss, W0, batches, optax.sgd, **run)
    want = lrjax.range_test(loss, W0, stacked(batches, 25), optax.sgd, **run)
    assert_same_run(res, want)
    assert res.data_passes == 3
    stacked_float64 = tuple(np.stack(c) for c in zip(*batches))  # stacked, as NumPy made them
    run = {**RUN, "num_steps": 10}
    assert_same_run(
        lrjax.range_test(loss, W0, stacked_float64, optax.sgd, **run),
        lrjax.range_test(loss, W0, batches, optax.sgd, **run),
    )


def test_float64_and_float32_batches_mixed_train_as_their_float32_stack():
    """A batch built with NumPy's default dtype among float32 ones (a padding
    batch from ``np.zeros``, a cached one) is the same batch to JAX."""
    rng = np.random.default_rng(3)
    batches = [(rng.normal(size=(16, 36)), rng.integers(0, N_CLASSES, 16)) for _ in range(8)]
    mixed = [(x.astype(np.float32) if t % 2 else x, y) for t, (x, y) in enumerate(batches)]
    loss = lambda w, b: optax.softmax_cross_entropy_with_integer_labels(b[0] @ w, b[1]).mean()
    run = {**RUN, "num_steps": 8}
    want = lrjax.range_test(loss, W0, stacked(batches, 8), optax.sgd, **run)
    assert_same_run(lrjax.range_test(loss, W0, mixed, optax.sgd, **run), want)


def test_memmap_arrays(tmp_path, reference):
    x, y = epochs_of_images(30)
    mx = np.memmap(tmp_path / "x.u8", np.uint8, "w+", shape=x.shape)
    mx[:] = x
    my = np.memmap(tmp_path / "y.i64", np.int64, "w+", shape=y.shape)
    my[:] = y
    assert_same_run(lrjax.range_test(image_loss, W0, (mx, my), optax.sgd, **RUN), reference)
    listed = [(mx[t], my[t]) for t in range(N_BATCHES)]
    assert_same_run(lrjax.range_test(image_loss, W0, listed, optax.sgd, **RUN), reference)


# ------------------------------------------------------------------- epochs


def test_every_front_reads_a_short_loader_epoch_after_epoch():
    """lr_find, sweep and tune cycle a re-iterable as range_test does."""
    torch = pytest.importorskip("torch")
    dataset = torch.utils.data.TensorDataset(
        torch.from_numpy(IMAGES), torch.from_numpy(LABELS).long()
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, drop_last=True)
    x, y = epochs_of_images(40)

    ramp = lrjax.lr_find(image_loss, W0, loader, optax.sgd, num_steps=40, progress=False)
    want = lrjax.lr_find(image_loss, W0, (x, y), optax.sgd, num_steps=40, progress=False)
    np.testing.assert_array_equal(ramp.losses, want.losses)
    assert ramp.data_passes == 4

    make = lambda lr: optax.sgd(lr)
    grid = {"lr": [0.01, 0.1, 1.0]}
    got = lrjax.sweep(image_loss, W0, loader, make, grid, num_steps=40, progress=False)
    want = lrjax.sweep(image_loss, W0, (x, y), make, grid, num_steps=40, progress=False)
    assert_same_run(got, want)
    assert got.data_passes == 4

    space = {"lr": ("log", 1e-3, 3.0)}
    kw = dict(population=4, num_steps=40, rounds=2, progress=False)
    got = lrjax.tune(image_loss, W0, loader, make, space, **kw)
    want = lrjax.tune(image_loss, W0, (x, y), make, space, **kw)
    np.testing.assert_array_equal(got.losses, want.losses)
    assert got.best == want.best and got.data_passes == 4


def test_validation_loader_is_read_once_whole(reference):
    """Evaluation data are read whole, one pass, however long the run."""
    torch = pytest.importorskip("torch")
    dataset = torch.utils.data.TensorDataset(
        torch.from_numpy(IMAGES[:40]), torch.from_numpy(LABELS[:40]).long()
    )
    val_loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH)
    val = (IMAGES[:40].reshape(5, BATCH, SIDE, SIDE, 1), LABELS[:40].reshape(5, BATCH))
    x, y = epochs_of_images(30)
    got = lrjax.range_test(image_loss, W0, (x, y), optax.sgd, val_batches=val_loader, **RUN)
    want = lrjax.range_test(image_loss, W0, (x, y), optax.sgd, val_batches=val, **RUN)
    np.testing.assert_array_equal(got.val_losses, want.val_losses)


def test_a_one_shot_iterator_that_ends_says_a_re_iterable_would_cycle():
    batches = [(IMAGES[:BATCH], LABELS[:BATCH])] * 5
    for one_shot in (iter(batches), (b for b in batches)):
        with pytest.raises(ValueError, match="ran out after 5 batches") as info:
            lrjax.range_test(image_loss, W0, one_shot, optax.sgd, **RUN)
        message = str(info.value)
        assert "re-iterable" in message and "num_steps=30" in message and "\n" not in message


def test_a_re_iterable_that_is_empty_the_second_time_is_refused():
    class OnceThenEmpty:
        def __init__(self):
            self.reads = 0

        def __iter__(self):
            self.reads += 1
            return iter([(IMAGES[:BATCH], LABELS[:BATCH])] * (5 if self.reads == 1 else 0))

    with pytest.raises(ValueError, match="yielded no batch when read again for pass 2"):
        lrjax.range_test(image_loss, W0, OnceThenEmpty(), optax.sgd, **RUN)


def test_errors_name_the_step_the_leaf_and_both_sides():
    """A last partial batch of a later epoch: the step, the pass and both shapes."""
    batches = [(IMAGES[i * BATCH : (i + 1) * BATCH], LABELS[i * BATCH : (i + 1) * BATCH])
               for i in range(N_BATCHES)]  # fmt: skip
    batches.append((IMAGES[-4:], LABELS[-4:]))  # drop_last=False
    with pytest.raises(ValueError) as info:
        lrjax.range_test(image_loss, W0, batches, optax.sgd, **RUN)
    message = str(info.value)
    assert message.startswith("batches at step 11: leaf [0] has uint8[4, 6, 6, 1], the first ")
    assert "had uint8[8, 6, 6, 1]" in message and "drop_last=True" in message
    assert "\n" not in message and len(message) < 300
    mixed = [(IMAGES[:BATCH], LABELS[:BATCH]), (IMAGES[:BATCH].astype(np.float64), LABELS[:BATCH])]
    with pytest.raises(ValueError, match=r"step 1: leaf \[0\] has float32\[8, 6, 6, 1\], the firs"):
        lrjax.range_test(image_loss, W0, mixed, optax.sgd, **{**RUN, "num_steps": 2})
