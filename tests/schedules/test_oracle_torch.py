"""Oracle tests: lrjax schedules against the real ``torch.optim.lr_scheduler``.

Each test draws at least 20 random valid configurations from a seeded
``numpy.random.default_rng``, steps a torch scheduler (on a one-parameter
optimizer) through every step of a range that covers several decays, restarts
or cycles, and compares with lrjax evaluated on the whole ``jnp.arange(n)`` at
once: ``|lrjax - torch| <= 1e-5 * |torch| + atol`` at every step (``atol`` is
explained in ``tests/oracles.py``). Torch computes in Python floats (float64).
"""

from __future__ import annotations

import bisect

import numpy as np
import pytest
import torch
from oracles import check, f32, log_uniform, lrjax_values, report, uniform

import lrjax


def run_torch(make_scheduler, n: int, *, optimizer: str = "sgd", lr: float = 0.1):
    """Steps a torch scheduler ``n - 1`` times; returns the lr (and momentum) per step.

    Entry ``t`` is what the optimizer uses for its ``t``-th update (step 0 is the
    value right after construction). The scheduler is advanced with
    ``scheduler.step()`` only, never with an epoch argument.
    """
    param = torch.nn.Parameter(torch.zeros(1))
    if optimizer == "sgd":
        opt = torch.optim.SGD([param], lr=lr, momentum=0.9)
    else:
        opt = torch.optim.Adam([param], lr=lr)
    sched = make_scheduler(opt)
    lrs, moms = [], []
    group = opt.param_groups[0]
    for t in range(n):
        lrs.append(float(group["lr"]))
        moms.append(float(group["momentum"] if optimizer == "sgd" else group["betas"][0]))
        if t < n - 1:
            opt.step()  # no gradient: a no-op, but keeps torch's step-order check quiet
            sched.step()
    return np.array(lrs), np.array(moms)


def test_step_decay_vs_StepLR():
    rng = np.random.default_rng(101)
    n, configs, worst = 300, 24, 0.0
    for k in range(configs):
        init = log_uniform(rng, 1e-4, 1.0)
        step_size = 1 if k == 0 else int(rng.integers(1, 100))
        # Keep gamma ** (n / step_size) >= 1e-4 so the whole range is meaningful.
        gamma = uniform(rng, max(0.05, 1e-4 ** (step_size / n)), 0.99)
        ref, _ = run_torch(
            lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=step_size, gamma=gamma),
            n,
            lr=init,
        )
        got = lrjax_values(lrjax.step_decay(init, step_size, gamma), n)
        worst = max(worst, check(got, ref, scale=init, context=f"{init=} {step_size=} {gamma=}"))
    report("step_decay", "torch StepLR", configs, n, worst)


def test_multistep_vs_MultiStepLR():
    rng = np.random.default_rng(102)
    n, configs, worst = 300, 24, 0.0
    for k in range(configs):
        init = log_uniform(rng, 1e-4, 1.0)
        count = int(rng.integers(1, 8))
        # Every third config has a milestone at step 0 (decayed from the start).
        low = 0 if k % 3 == 0 else 1
        milestones = sorted(int(m) for m in rng.choice(np.arange(low, n), count, replace=False))
        if low == 0 and 0 not in milestones:
            milestones = [0, *milestones[1:]]
        gamma = uniform(rng, 0.1, 0.9)
        ref, _ = run_torch(
            lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=milestones, gamma=gamma),
            n,
            lr=init,
        )
        got = lrjax_values(lrjax.multistep(init, milestones, gamma), n)
        worst = max(worst, check(got, ref, scale=init, context=f"{init=} {milestones=} {gamma=}"))
        # The new value applies at the milestone itself.
        for m in milestones:
            if m > 0:
                assert ref[m] < ref[m - 1] and got[m] < got[m - 1]
    report("multistep", "torch MultiStepLR", configs, n, worst)


def test_piecewise_constant_new_vs_torch():
    """``at_boundary="new"``: MultiStepLR for geometric values, LambdaLR otherwise."""
    rng = np.random.default_rng(103)
    n, configs, worst = 300, 20, 0.0
    for _ in range(configs):
        count = int(rng.integers(1, 7))
        boundaries = sorted(int(b) for b in rng.choice(np.arange(1, n), count, replace=False))
        init = log_uniform(rng, 1e-4, 1.0)
        gamma = uniform(rng, 0.1, 0.9)
        values = [init * gamma**i for i in range(count + 1)]
        ref, _ = run_torch(
            lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=boundaries, gamma=gamma),
            n,
            lr=init,
        )
        got = lrjax_values(lrjax.piecewise_constant(boundaries, values), n)
        worst = max(worst, check(got, ref, scale=init, context=f"{boundaries=} {values=}"))

        # Arbitrary (also increasing) values through LambdaLR: torch multiplies the
        # base rate by the factor of the interval that holds the step.
        values = [log_uniform(rng, 1e-4, 1.0) for _ in range(count + 1)]
        factors = [v / values[0] for v in values]
        ref, _ = run_torch(
            lambda o: torch.optim.lr_scheduler.LambdaLR(
                o, lambda t: factors[bisect.bisect_right(boundaries, t)]
            ),
            n,
            lr=values[0],
        )
        got = lrjax_values(lrjax.piecewise_constant(boundaries, values), n)
        worst = max(worst, check(got, ref, scale=max(values), context=f"{boundaries=} {values=}"))
    report("piecewise_constant (new)", "torch MultiStepLR / LambdaLR", 2 * configs, n, worst)


def test_exponential_vs_ExponentialLR():
    rng = np.random.default_rng(104)
    n, configs, worst = 300, 24, 0.0
    for _ in range(configs):
        init = log_uniform(rng, 1e-4, 1.0)
        gamma = uniform(rng, 0.96, 0.9999)
        ref, _ = run_torch(
            lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=gamma), n, lr=init
        )
        got = lrjax_values(lrjax.exponential(init, decay_rate=gamma), n)
        worst = max(worst, check(got, ref, scale=init, context=f"{init=} {gamma=}"))
    report("exponential (decay_steps=1)", "torch ExponentialLR", configs, n, worst)


def test_polynomial_vs_PolynomialLR():
    rng = np.random.default_rng(105)
    n, configs, worst = 300, 24, 0.0
    for _ in range(configs):
        init = log_uniform(rng, 1e-4, 1.0)
        total = int(rng.integers(1, 250))
        power = uniform(rng, 0.3, 3.0)
        ref, _ = run_torch(
            lambda o: torch.optim.lr_scheduler.PolynomialLR(o, total_iters=total, power=power),
            n,
            lr=init,
        )
        got = lrjax_values(lrjax.polynomial(init, 0.0, total, power=power), n)
        worst = max(worst, check(got, ref, scale=init, context=f"{init=} {total=} {power=}"))
    report("polynomial (end_value=0)", "torch PolynomialLR", configs, n, worst)


@pytest.mark.parametrize("period_mult", [1, 2, 3])
def test_cosine_restarts_vs_CosineAnnealingWarmRestarts(period_mult):
    rng = np.random.default_rng(106 + period_mult)
    n, configs, worst = 400, 20, 0.0
    # Largest first period that still leaves >= 3 restarts inside n steps.
    hi = {1: 60, 2: 28, 3: 13}[period_mult]
    for k in range(configs):
        init = log_uniform(rng, 1e-4, 1.0)
        period = 1 if k == 0 else int(rng.integers(1, hi + 1))
        eta_min = 0.0 if k % 2 else f32(init * rng.uniform(0.0, 0.5))
        ref, _ = run_torch(
            lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
                o, T_0=period, T_mult=period_mult, eta_min=eta_min
            ),
            n,
            lr=init,
        )
        sched = lrjax.cosine_restarts(init, period, period_mult=period_mult, end_value=eta_min)
        got = lrjax_values(sched, n)
        ctx = f"{init=} {period=} {period_mult=} {eta_min=}"
        worst = max(worst, check(got, ref, scale=init, context=ctx))
        # Restart steps carry the full initial value again.
        start, length = 0, period
        while start < n:
            np.testing.assert_allclose(got[start], init, rtol=1e-6, err_msg=ctx)
            start, length = start + length, length * period_mult
    report(f"cosine_restarts (period_mult={period_mult})", "torch CAWR", configs, n, worst)


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_vs_CyclicLR(mode):
    rng = np.random.default_rng({"triangular": 110, "triangular2": 111, "exp_range": 112}[mode])
    n, configs, worst = 400, 20, 0.0
    for k in range(configs):
        base = 0.0 if k % 5 == 0 else log_uniform(rng, 1e-5, 1e-2)
        peak = f32((base or 1e-3) * rng.uniform(2.0, 100.0))
        up = int(rng.integers(1, 60))
        down = None if k % 2 else int(rng.integers(1, 60))
        gamma = uniform(rng, 0.99, 0.99999) if mode == "exp_range" else 1.0
        ref, _ = run_torch(
            lambda o: torch.optim.lr_scheduler.CyclicLR(
                o,
                base_lr=base,
                max_lr=peak,
                step_size_up=up,
                step_size_down=down,
                mode=mode,
                gamma=gamma,
                cycle_momentum=False,
            ),
            n,
            lr=base,
        )
        sched = lrjax.cyclic(base, peak, up, step_size_down=down, mode=mode, gamma=gamma)
        got = lrjax_values(sched, n)
        ctx = f"{base=} {peak=} {up=} {down=} {mode=} {gamma=}"
        worst = max(worst, check(got, ref, scale=peak, context=ctx))
    report(f"cyclic ({mode})", "torch CyclicLR", configs, n, worst)


def _one_cycle_config(rng: np.random.Generator, three_phase: bool):
    """Random valid arguments shared by lrjax (torch convention) and OneCycleLR.

    torch divides by each phase's length, so every phase must last more than one
    step: ``pct_start * total_steps > 2`` (and ``< total_steps / 2 - 1`` with three
    phases).
    """
    total = int(rng.integers(20, 300))
    hi_pct = 0.45 if three_phase else 0.9
    while True:
        pct = uniform(rng, 0.02, hi_pct)
        if pct * total > 2 and (not three_phase or pct * total < total / 2 - 1):
            break
    return {
        "max_value": log_uniform(rng, 1e-4, 1.0),
        "total_steps": total,
        "pct_start": pct,
        "div_factor": uniform(rng, 2.0, 100.0),
        "final_div_factor": log_uniform(rng, 1.0, 1e5),
        "base_momentum": uniform(rng, 0.7, 0.9),
        "max_momentum": uniform(rng, 0.9, 0.99),
    }


def _torch_one_cycle(c, anneal, three_phase):
    return lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o,
        max_lr=c["max_value"],
        total_steps=c["total_steps"],
        pct_start=c["pct_start"],
        anneal_strategy=anneal,
        base_momentum=c["base_momentum"],
        max_momentum=c["max_momentum"],
        div_factor=c["div_factor"],
        final_div_factor=c["final_div_factor"],
        three_phase=three_phase,
    )


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("anneal", ["cos", "linear"])
def test_one_cycle_and_momentum_vs_OneCycleLR(anneal, three_phase):
    """``one_cycle`` and ``one_cycle_momentum`` with ``convention="torch"``.

    Momentum is read back from an SGD param group's ``momentum`` (even configs)
    or an Adam param group's ``betas[0]`` (odd configs). Compared on every step
    torch defines, ``0 .. total_steps - 1``.
    """
    rng = np.random.default_rng(120 + 2 * (anneal == "cos") + three_phase)
    configs, worst_lr, worst_mom, n_max = 20, 0.0, 0.0, 300
    for k in range(configs):
        c = _one_cycle_config(rng, three_phase)
        n = c["total_steps"]
        opt = "sgd" if k % 2 == 0 else "adam"
        ref_lr, ref_mom = run_torch(_torch_one_cycle(c, anneal, three_phase), n, optimizer=opt)
        common = {"three_phase": three_phase, "anneal": anneal, "convention": "torch"}
        lr = lrjax.one_cycle(
            c["max_value"],
            n,
            pct_start=c["pct_start"],
            div_factor=c["div_factor"],
            final_div_factor=c["final_div_factor"],
            **common,
        )
        mom = lrjax.one_cycle_momentum(
            n,
            base_momentum=c["base_momentum"],
            max_momentum=c["max_momentum"],
            pct_start=c["pct_start"],
            **common,
        )
        ctx = f"{c} {anneal=} {three_phase=} optimizer={opt}"
        # A fixed-length arange keeps one compilation per structure.
        got_lr = lrjax_values(lr, n_max)[:n]
        got_mom = lrjax_values(mom, n_max)[:n]
        worst_lr = max(worst_lr, check(got_lr, ref_lr, scale=c["max_value"], context=ctx))
        worst_mom = max(worst_mom, check(got_mom, ref_mom, scale=c["max_momentum"], context=ctx))
    tag = f"anneal={anneal}, three_phase={three_phase}"
    report(f"one_cycle torch ({tag})", "torch OneCycleLR", configs, n_max, worst_lr)
    report(
        f"one_cycle_momentum torch ({tag})", "torch OneCycleLR momentum", configs, n_max, worst_mom
    )


@pytest.mark.parametrize("anneal", ["cos", "linear"])
def test_one_cycle_past_the_end_holds_where_torch_stops(anneal):
    """Documented difference: lrjax holds the final value from ``total_steps - 1``.

    torch defines ``OneCycleLR`` on steps ``0 .. total_steps - 1``; one step more
    extrapolates the last phase past its end, and any further step raises.
    """
    c = _one_cycle_config(np.random.default_rng(130), three_phase=False)
    total = c["total_steps"]
    ref, _ = run_torch(_torch_one_cycle(c, anneal, False), total + 1)
    s = lrjax.one_cycle(
        c["max_value"],
        total,
        pct_start=c["pct_start"],
        div_factor=c["div_factor"],
        final_div_factor=c["final_div_factor"],
        anneal=anneal,
        convention="torch",
    )
    final = c["max_value"] / (c["div_factor"] * c["final_div_factor"])
    np.testing.assert_allclose(ref[total - 1], final, rtol=1e-12)
    assert abs(ref[total] - final) > 1e-9 * final  # torch extrapolates one step
    after = np.asarray(s(np.array([total - 1, total, total + 1, 10 * total])), np.float64)
    np.testing.assert_allclose(after, final, rtol=1e-5)
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1, momentum=0.9)
    sched = _torch_one_cycle(c, anneal, False)(opt)
    with pytest.raises(ValueError, match="Tried to step"):
        for _ in range(total + 1):
            opt.step()
            sched.step()
