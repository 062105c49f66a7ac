"""The PyTorch twins of ``benchmarks/suggestion_quality.py``'s CNN and transformer.

torch-lr-finder runs on these twins, so they must be the JAX models in torch:
the same initial weights, the same forward pass (eval mode), the same loss and
gradients in training mode (the CNN's BatchNorm on batch statistics; dropout
off, its masks cannot match), the same BatchNorm running statistics after a
step, and the suite's optimizers stepping the same as optax's.
"""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
nnx = pytest.importorskip("flax.nnx")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("LRJAX_BENCH_TORCH_DEVICE", "cpu")  # float32 without TF32

import jax  # noqa: E402
import optax  # noqa: E402
import suggestion_quality as sq  # noqa: E402
from _torch_ref import TWINS, _torch_optimizer  # noqa: E402

ATOL = 2e-5  # float32, the same operations in another order


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models: with a busy machine, torch's thread pool makes each step ~50x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


#: The training runs compared, ``(optimizer, rate, steps)``: plain SGD, and the problem's
#: own optimizer (None: Nesterov momentum for the CNN, AdamW for the transformer).
RUNS = {"sgd": ("sgd", 0.5, 2), "suite": (None, 0.03, 4)}
STEPS = max(steps for *_, steps in RUNS.values())
FINDER_STEPS = 20  # torch-lr-finder's suggestion skips 10 + 5 points


@pytest.fixture(scope="module", params=["cnn", "transformer"])
def problem(request):
    return sq.PROBLEMS[request.param]()


@pytest.fixture(scope="module")
def twin_and_ref(problem):
    """The twin, and what the JAX model computes: eval-mode logits and loss on the
    validation batch, and every run of :data:`RUNS` (dropout off: its masks cannot
    match). Compiling is most of this test's time: one gradient function and one
    evaluation per problem, the optimizers' updates apart."""
    model = (nnx.jit if problem.nnx else jax.jit)(problem.init, static_argnums=0)(0)  # fast
    batches = problem.batches(0, FINDER_STEPS)  # the runs use the first STEPS
    twin = TWINS[problem.twin](model, batches, problem.val, problem.task, **problem.twin_args)
    if problem.nnx:
        model.dropout.deterministic = True
    params, rest, step_loss, eval_loss = sq.functional(problem, model)
    grad = jax.jit(jax.value_and_grad(step_loss, has_aux=True))
    if problem.nnx:
        evaluator = nnx.clone(model)
        evaluator.eval()
        graphdef = nnx.split(evaluator, nnx.Param, ...)[0]

        def forward(p, r, x):
            return problem.forward(nnx.merge(graphdef, p, r, copy=True), x)

    else:

        def forward(p, r, x):
            return problem.forward(p, x)

    val_inputs = twin.val[0].cpu().numpy()  # transformer: the windows less their last token

    @jax.jit
    def evaluate(p, r):  # eval mode, on the validation batch: the loss and the logits
        return eval_loss(p, r, problem.val), forward(p, r, val_inputs)

    loss, logits = evaluate(params, rest)
    ref = {"logits": np.asarray(logits), "val_loss": float(loss)}
    for name, (opt_name, lr, steps) in RUNS.items():
        opt = sq.OPTIMIZERS[opt_name or problem.optimizer](lr)

        @jax.jit
        def update(g, s, p, opt=opt):
            u, s = opt.update(g, s, p)
            return optax.apply_updates(p, u), s

        p, r, s, losses = params, rest, jax.jit(opt.init)(params), []
        for t in range(steps):
            (loss, r), g = grad(p, r, jax.tree.map(lambda a, t=t: a[t], batches))
            p, s = update(g, s, p)
            losses.append(float(loss))
        ref[name] = losses, float(evaluate(p, r)[0]), r
    return twin, ref


def test_forward_matches_in_eval_mode(twin_and_ref):
    """The same logits and loss on the validation batch (eval mode: no dropout, the
    CNN's BatchNorm on its running statistics)."""
    twin, ref = twin_and_ref
    tm = twin.make_model().eval()
    vx, vy = twin.val
    with torch.no_grad():
        logits = tm(vx)
        loss = twin.criterion(logits, vy).item()
    assert logits.shape == ref["logits"].shape
    np.testing.assert_allclose(logits.cpu().numpy(), ref["logits"], rtol=0, atol=ATOL)
    assert abs(loss - ref["val_loss"]) < ATOL, (loss, ref["val_loss"])


@pytest.mark.parametrize("run", list(RUNS))
def test_training_steps_match(problem, twin_and_ref, run):
    """A few SGD steps, or steps of the problem's own optimizer, on the same batches:
    the same training losses (each read before its step: the first at the shared
    start, the next after one step), the same eval-mode validation loss after the last step, and
    for the CNN the same BatchNorm running statistics (flax's momentum 0.99)."""
    twin, ref = twin_and_ref
    opt_name, lr, steps = RUNS[run]
    tm = twin.make_model().train()
    if hasattr(tm, "dropout"):
        tm.dropout.p = 0.0
    opt = _torch_optimizer(opt_name or problem.optimizer, tm.parameters(), lr)
    xs, ys = twin.train
    losses = []
    for t in range(steps):
        opt.zero_grad()
        loss = twin.criterion(tm(xs[t]), ys[t])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        after = twin.criterion(tm.eval()(twin.val[0]), twin.val[1]).item()
    ref_losses, ref_after, ref_state = ref[run]
    assert abs(ref_losses[-1] - ref_losses[0]) > 0.01  # the steps moved the loss ...
    np.testing.assert_allclose(losses, ref_losses, rtol=0, atol=ATOL)  # ... the same
    assert abs(after - ref_after) < ATOL, (after, ref_after)
    if problem.nnx:
        for k in ("bn1", "bn2"):
            bn = getattr(tm, k)
            for t_name, j_name in (("running_mean", "mean"), ("running_var", "var")):
                np.testing.assert_allclose(
                    getattr(bn, t_name).cpu().numpy(),
                    np.asarray(ref_state[k][j_name][...]),
                    rtol=0,
                    atol=1e-6,
                )


def test_lr_finder_runs_on_the_twin(problem, twin_and_ref):
    """torch-lr-finder's range test runs on the twin, with and without ``val_loader``."""
    pytest.importorskip("torch_lr_finder")
    pytest.importorskip("matplotlib")
    from _torch_ref import lr_finder_suggestions

    twin, _ = twin_and_ref
    plain, with_val = lr_finder_suggestions(
        twin, problem.min_lr, problem.max_lr, FINDER_STEPS, problem.optimizer
    )
    for lr in (plain, with_val):  # None: the run stopped (diverged) too early for one
        assert lr is None or problem.min_lr <= lr <= problem.max_lr
