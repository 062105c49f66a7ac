"""``lrjax.tune`` against a brute-force Python reference of the same rules.

The reference trains every member one step at a time in NumPy (float32,
SGD with momentum on linear regression, with the range test's divergence
rule) and applies the PBT and halving rules in plain Python, using the same
random numbers (:func:`lrjax._search.round_draws`, replayed from
the key). It shares no code with the engine beyond those draws.
"""

from __future__ import annotations

import copy
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from oracles import count_compiles

import lrjax
from lrjax import _search

P, R, L = 8, 3, 10
T = R * L
SPACE = {
    "learning_rate": ("log", 1e-3, 2.0),
    "momentum": [0.0, 0.5, 0.9],
    "damping": (0.5, 1.0),
}


def make_sgd(learning_rate, momentum, damping):
    return optax.chain(optax.sgd(learning_rate, momentum=momentum), optax.scale(damping))


def linreg_data(steps=T, seed=0):
    kx, kn = jax.random.split(jax.random.PRNGKey(seed))
    X = np.asarray(jax.random.normal(kx, (steps, 8, 3)))
    noise = 0.1 * np.asarray(jax.random.normal(kn, (steps, 8)))
    Y = (X @ np.array([1.0, -2.0, 0.5]) + noise).astype(np.float32)
    return X.astype(np.float32), Y


def linreg_loss(w, batch):
    x, y = batch
    return jnp.mean((x @ w - y) ** 2)


# ------------------------------------------------------------ the reference


def ref_sample(u, dim):
    if isinstance(dim, list):
        return min(math.floor(u * len(dim)), len(dim) - 1)
    if dim[0] == "log":
        lo, hi = dim[1:]
        return float(np.clip(math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))), lo, hi))
    lo, hi = dim
    return float(np.clip(lo + u * (hi - lo), lo, hi))


def ref_perturb(gene, resample, coin, sample, dim):
    if resample < _search.RESAMPLE_PROBABILITY:
        return ref_sample(sample, dim)
    if isinstance(dim, list):
        return int(np.clip(gene + (1 if coin >= 0.5 else -1), 0, len(dim) - 1))
    lo, hi = dim[-2:]
    return float(np.clip(gene * (1.25 if coin >= 0.5 else 0.8), lo, hi))


def ref_value(gene, dim):
    return dim[gene] if isinstance(dim, list) else gene


class Member:
    """One copy trained step by step, with the range test's divergence rule."""

    def __init__(self):
        self.w = np.zeros(3, np.float32)
        self.m = np.zeros(3, np.float32)
        self.ema = np.float32(0)
        self.best = np.float32(np.inf)
        self.stopped = False

    def step(self, t, x, y, lr, mu, damping, factor=4.0, scale=1.0):
        """One step; returns the raw loss (NaN once stopped, as the engine reports).

        ``scale`` multiplies the update (the cooldown probe's annealing).
        """
        if self.stopped:
            return np.nan
        r = x @ self.w - y
        loss = np.float32(np.mean(r * r))
        grad = (np.float32(2) * (x.T @ r) / np.float32(len(y))).astype(np.float32)
        beta = np.float32(0.98)
        ema = beta * self.ema + (1 - beta) * loss
        smooth = ema / (1 - beta ** np.float32(t + 1))
        best = min(self.best, smooth)
        if not np.isfinite(loss) or not np.isfinite(smooth) or smooth > factor * best:
            self.stopped = True  # frozen with the parameters it had before this step
            return loss
        self.ema, self.best = ema, best
        self.m = (grad + np.float32(mu) * self.m).astype(np.float32)
        update = np.float32(damping) * (np.float32(lr) * self.m)
        self.w = (self.w - np.float32(scale) * update).astype(np.float32)
        return loss


def probe_score(member, r, X, Y, lr, mu, damping, K):
    """The cooldown probe: a copy trains K more steps (the schedule's next steps,
    the round's last K batches) with its update scaled by ``(K - j) / (K + 1)``."""
    probe = copy.deepcopy(member)
    start = (r + 1) * L
    losses = [
        probe.step(start + j, X[start - K + j], Y[start - K + j], lr, mu, damping,
                   scale=np.float32(K - j) / np.float32(K + 1))
        for j in range(K)
    ]  # fmt: skip
    return np.inf if probe.stopped else float(np.mean(losses[-max(1, K // 10) :]))


def ref_rate_test(X, Y):
    """The rate test as documented: ``min(P, 16)`` copies at log-spaced rates over
    ``learning_rate``'s range, momentum and damping at their centres, ``T // 8``
    steps; the narrowed ``(low, high)`` and the copies' scores."""
    K, S = min(P, 16), max(1, T // 8)
    lo, hi = (np.float32(v) for v in SPACE["learning_rate"][1:])
    rates = np.geomspace(float(lo), float(hi), K).astype(np.float32)
    mu, damping = SPACE["momentum"][1], np.float32(0.75)  # the middle option; (0.5 + 1) / 2
    scores = []
    for lr in rates:
        m = Member()
        losses = [m.step(t, X[t], Y[t], lr, mu, damping) for t in range(S)]
        scores.append(np.inf if m.stopped else float(np.mean(losses[-max(1, S // 10) :])))
    low, high = ref_narrow(rates, scores, float(lo), float(hi), S, T)
    return (np.float32(low), np.float32(high)), scores


def ref_narrow(rates, scores, lo, hi, test_steps, num_steps):
    """The documented narrowing rule, one rate at a time (rates ascending; a
    diverged copy scores inf)."""
    K = len(rates)
    finite = [k for k in range(K) if np.isfinite(scores[k])]
    if not finite:
        return lo, hi
    best = min(finite, key=lambda k: scores[k])
    half = scores[best] + 0.5 * (scores[0] - scores[best])  # half the best's progress lost
    failed = [k for k in range(best + 1, K) if np.isinf(scores[k]) or not scores[k] <= half]
    high = hi
    if failed:
        last_good = max(k for k in range(failed[0]) if scores[k] <= half or k <= best)
        high = math.sqrt(float(rates[failed[0]]) * float(rates[last_good]))
    low = max(lo, float(rates[best]) * min(1, test_steps / num_steps) / 3)
    return low, min(hi, high)


@pytest.mark.parametrize("seed", range(6))
def test_narrow_equals_the_rule_written_out(seed):
    """``_search.narrow`` on random rate tests (U-shaped, noisy, some diverged)."""
    rng = np.random.default_rng(seed)
    for _ in range(50):
        K = int(rng.integers(2, 17))
        rates = np.geomspace(1e-6, 10.0, K)
        centre = rng.uniform(0, K)
        scores = 0.1 + 0.3 * (np.arange(K) - centre) ** 2 / K + rng.uniform(0, 0.5, K)
        scores[0] = 2.3 + rng.uniform(0, 0.1)  # the lowest rate: the starting loss
        cut = int(rng.integers(1, K + 2))  # diverged from here on (none when > K)
        scores[cut:] = np.inf
        scores[rng.uniform(size=K) < 0.1] = np.inf  # and a stray divergence
        diverged = ~np.isfinite(scores)
        S, T = int(rng.integers(1, 50)), int(rng.integers(50, 500))
        got = _search.narrow(rates, scores, diverged, 1e-6, 10.0, S, T)
        want = ref_narrow(rates, scores, 1e-6, 10.0, S, T)
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=f"{scores}")
        assert 1e-6 <= got[0] < got[1] <= 10.0


def rounds_of(method: str) -> int:
    """The rounds the tests run a method over: ``R``, or the method's fixed number."""
    return _search.METHODS[method].fixed_rounds or R


def reference(method, X, Y, key, cooldown=0, rate_test=True):
    """The search, one member and one step at a time (``cooldown``: probe steps;
    ``rate_test``: narrow ``learning_rate`` first).

    Returns per round ``(values, scores, parents, active)``, and the final members.
    """
    R, L = rounds_of(method), T // rounds_of(method)
    dims = list(SPACE.values())
    if rate_test:
        dims[0] = ("log", *ref_rate_test(X, Y)[0])
    names = list(SPACE)
    _, search_key = _search.split_key(jax.random.key_data(key))
    draws = lambda i: jax.tree.map(np.asarray, _search.round_draws(search_key, i, P, len(dims)))
    d0 = draws(0)
    # a Latin hypercube: member i's draw in stratum rank(coin[i]) of each dimension
    rank = np.argsort(np.argsort(d0.coin, axis=0, kind="stable"), axis=0, kind="stable")
    u0 = (rank.astype(np.float32) + d0.sample) / np.float32(P)
    genes = [[ref_sample(float(u0[i, d]), dim) for d, dim in enumerate(dims)] for i in range(P)]
    members = [Member() for _ in range(P)]
    active = [True] * P
    parents = list(range(P))
    history = []
    w = max(1, L // 10)
    for r in range(R):
        values = [[ref_value(g, dim) for g, dim in zip(genes[i], dims)] for i in range(P)]
        scores = []
        for i in range(P):
            if not active[i]:
                scores.append(np.nan)
                continue
            lr, mu, damping = values[i]
            losses = [
                members[i].step(t, X[t], Y[t], lr, mu, damping) for t in range(r * L, (r + 1) * L)
            ]
            if members[i].stopped:
                scores.append(np.inf)
            elif cooldown and r < R - 1:
                scores.append(probe_score(members[i], r, X, Y, lr, mu, damping, cooldown))
            else:
                scores.append(float(np.mean(losses[-w:])))
        history.append(
            (
                {n: [values[i][d] for i in range(P)] for d, n in enumerate(names)},
                scores,
                parents,
                list(active),
            )
        )
        if r == R - 1:
            break
        rank_key = lambda i: (np.inf if np.isnan(scores[i]) else scores[i], i)
        if method == "random":  # one round: nothing changes between rounds
            raise AssertionError("random search has one round")
        if method == "pbt":
            order = sorted(range(P), key=rank_key)
            q = P // 4
            top, bottom = order[:q], order[P - q :]
            d = draws(r + 1)
            parents = list(range(P))
            for i in bottom:  # top and bottom are disjoint: copying in place is safe
                p = top[min(math.floor(float(d.partner[i]) * q), q - 1)]
                parents[i] = p
                members[i] = copy.deepcopy(members[p])
                genes[i] = [
                    ref_perturb(genes[p][k], d.resample[i, k], d.coin[i, k], d.sample[i, k], dim)
                    for k, dim in enumerate(dims)
                ]
        else:
            keep = max(1, -(-P // 2 ** (r + 1)))
            ranked = sorted([i for i in range(P) if active[i]], key=rank_key)
            active = [i in ranked[:keep] for i in range(P)]
            parents = list(range(P))
    return history, members


REFERENCE_CASES = [
    ("pbt", 0, True), ("pbt", 4, True), ("halving", 0, True), ("halving", 4, True),
    ("pbt", 0, False), ("halving", 4, False), ("random", 0, True), ("random", 0, False),
]  # fmt: skip


@pytest.mark.parametrize(("method", "cooldown", "rate_test"), REFERENCE_CASES)
def test_equals_brute_force_reference(method, cooldown, rate_test):
    assert {m for m, _, _ in REFERENCE_CASES} == set(_search.METHODS)  # every registered method
    R = rounds_of(method)
    X, Y = linreg_data()
    # a key whose draws take every branch checked below, without a near tie for the best
    key = jax.random.PRNGKey(4)
    res = lrjax.tune(
        linreg_loss, jnp.zeros(3), (X, Y), make_sgd, SPACE, population=P, num_steps=T,
        rounds=R, method=method, key=key, cooldown_steps=cooldown,
        rate=None if rate_test else False,
    )  # fmt: skip
    history, members = reference(method, X, Y, key, cooldown, rate_test)
    search = _search.search_steps(_search.METHODS[method], P, R, T, cooldown if R > 1 else 0)
    if rate_test:
        (low, high), scores = ref_rate_test(X, Y)
        assert res.rate == "learning_rate"
        # the narrowed range: float32 on both sides, from scores within ulps
        np.testing.assert_allclose(res.rate_range, (low, high), rtol=1e-6)
        np.testing.assert_allclose(res.rate_test.scores, scores, rtol=2e-5)
        assert 1e-3 < low < high < 2.0  # both ends narrowed
        # 8 copies x the default T // 8 steps: the result counts per copy, as the argument
        assert res.rate_test_steps == T // 8 and res.rate_test_total_steps == 8 * (T // 8)
        assert res.steps == search + res.rate_test_total_steps
    else:
        assert (res.rate, res.rate_range, res.rate_test) == (None, None, None)
        assert res.steps == search
    h = res.history
    for r, (values, scores, parents, active) in enumerate(history):
        where = f"{method}, round {r}"
        for name in SPACE:
            # Values: float32 in the program, float64 here, from the same draws.
            np.testing.assert_allclose(h.values[name][r], values[name], rtol=1e-6, err_msg=where)
        np.testing.assert_array_equal(h.parents[r], parents, err_msg=where)
        np.testing.assert_array_equal(h.active[r], active, err_msg=where)
        # Scores: both float32 with the same operations, but XLA fuses and
        # reorders the matmul and mean reductions (and the momentum update)
        # differently from NumPy: a few ulps per step, compounding over 30 steps.
        np.testing.assert_allclose(h.scores[r], scores, rtol=2e-5, atol=1e-7, err_msg=where)
    final = np.array([s if a else np.nan for s, a in zip(history[-1][1], history[-1][3])])
    best = int(np.nanargmin(np.where(np.isnan(final), np.inf, final)))
    assert res.best_index == best
    np.testing.assert_allclose(res.params, members[best].w, rtol=1e-4, atol=1e-6)
    assert res.best == {n: pytest.approx(history[-1][0][n][best], rel=1e-6) for n in SPACE}
    # The run exercised what it claims to: divergence (in the rate test when
    # there is one: it keeps the search below it), and (PBT) copies,
    # resampling and both perturbation directions.
    assert np.isinf(res.rate_test.scores if rate_test else h.scores).any()
    if method == "pbt":
        assert (h.parents[1:] != np.arange(P)).sum() == 2 * (P // 4)
        if not rate_test:  # diverged: replaced
            assert np.isinf(h.scores[0][h.parents[1] != np.arange(P)]).any()
        _, sk = _search.split_key(jax.random.key_data(key))
        d = [_search.round_draws(sk, i, P, len(SPACE)) for i in (1, 2)]
        moved = [np.asarray(x.resample)[h.parents[i + 1] != np.arange(P)] for i, x in enumerate(d)]
        coins = [np.asarray(x.coin)[h.parents[i + 1] != np.arange(P)] for i, x in enumerate(d)]
        assert (np.concatenate(moved) < 0.25).any() and (np.concatenate(moved) >= 0.25).any()
        assert (np.concatenate(coins) < 0.5).any() and (np.concatenate(coins) >= 0.5).any()
    elif method == "halving":
        assert h.active.sum(axis=1).tolist() == [8, 4, 2]
        assert np.isnan(h.scores[2][~h.active[2]]).all()
    else:  # random search: every member trained the whole run, in one round
        assert h.active.tolist() == [[True] * P] and h.scores.shape == (1, P)


@pytest.mark.parametrize("cooldown", [0, 3])
def test_members_computed_per_round(cooldown):
    """Halving computes only the members still training (8, 4, 2 per round here);
    PBT all of them; the cooldown probe adds its steps for every round but the last.
    Counted by a host callback in the loss, which runs once per member and step."""
    X, Y = linreg_data()
    shapes = []

    def counted_loss(w, batch):
        jax.debug.callback(lambda w: shapes.append(np.shape(w)), w)
        return linreg_loss(w, batch)

    expected = {"pbt": [P] * R, "halving": [8, 4, 2]}
    for method, widths in expected.items():
        shapes.clear()
        lrjax.tune(
            counted_loss, jnp.zeros(3), (X, Y), make_sgd, SPACE, population=P, num_steps=T,
            rounds=R, method=method, cooldown_steps=cooldown, progress=False,
        )  # fmt: skip
        assert set(shapes) == {(3,)}  # one call per member, not per batch of members
        rate_test = min(P, 16) * (T // 8)  # the rate test's copies x steps
        assert len(shapes) == L * sum(widths) + cooldown * sum(widths[:-1]) + rate_test, method
    assert _search.round_widths(_search.HALVING, P, R) == tuple(expected["halving"])


@pytest.mark.parametrize(("population", "seed"), [(8, 0), (16, 1)])
def test_exploit_equals_the_rules_replayed_from_the_draws(population, seed):
    """One PBT change (:func:`lrjax._search._pbt.exploit`) against the documented rules in plain
    Python: the bottom quartile (``NaN`` ranked last) takes top-quartile member
    ``floor(partner * q)``'s whole carry and its genes, perturbed (resampled
    below 0.25; else x0.8 / x1.25 clipped to the bounds, a choice one option
    down / up clipped to the ends); the others are unchanged. Parents sit near
    the bounds so every branch, clipping at both ends included, is taken."""
    P, q = population, population // 4
    space = {"a": (0.5, 1.0), "b": ("log", 1e-3, 2.0), "c": [0.0, 0.5, 0.9, 0.99]}
    dims, names = list(space.values()), list(space)
    kinds = ("uniform", "log", "choice")
    bounds = {
        "a": jnp.asarray([0.5, 1.0], jnp.float32),
        "b": jnp.asarray([1e-3, 2.0], jnp.float32),
        "c": jnp.asarray(space["c"], jnp.float32),
    }
    rng = np.random.default_rng(seed)
    taken = {"lo": 0, "hi": 0, "first": 0, "last": 0, "resampled": 0, "moved": 0}
    for i in range(1, 13):
        genes = {
            "a": rng.choice([0.51, 0.55, 0.75, 0.85, 0.99], P).astype(np.float32),
            "b": rng.choice([1.1e-3, 0.05, 1.9], P).astype(np.float32),
            "c": rng.integers(0, 4, P).astype(np.int32),
        }
        score = rng.permutation(P).astype(np.float32)
        score[rng.integers(0, P)] = np.nan
        carry = {"w": np.arange(P * 3, dtype=np.float32).reshape(1, P, 3), "n": np.arange(P)[None]}
        search_key = np.array([seed, 5], np.uint32)
        d = _search.round_draws(search_key, i, P, len(dims))
        # the change after round i - 1 draws round i's numbers
        now = _search.Between(
            carry, {n: jnp.asarray(g) for n, g in genes.items()}, jnp.ones(P, bool),
            jnp.asarray(score), i - 1, bounds, search_key, tuple(names), kinds, P, 8,
        )  # fmt: skip
        out_carry, out_genes, _, parent = _search.PBT.change(now)
        d = jax.tree.map(np.asarray, d)
        order = sorted(range(P), key=lambda m: (np.inf if np.isnan(score[m]) else score[m], m))
        top, bottom = order[:q], order[P - q :]
        ref_parent = list(range(P))
        for m in bottom:
            ref_parent[m] = top[min(math.floor(float(d.partner[m]) * q), q - 1)]
        np.testing.assert_array_equal(parent, ref_parent)
        np.testing.assert_array_equal(out_carry["w"], carry["w"][:, ref_parent])
        np.testing.assert_array_equal(out_carry["n"], carry["n"][:, ref_parent])
        for k, (name, dim) in enumerate(zip(names, dims)):
            ref = list(genes[name])
            for m in bottom:
                g = genes[name][ref_parent[m]]
                ref[m] = ref_perturb(g, d.resample[m, k], d.coin[m, k], d.sample[m, k], dim)
                if d.resample[m, k] < _search.RESAMPLE_PROBABILITY:
                    taken["resampled"] += 1
                    continue
                taken["moved"] += 1
                if isinstance(dim, list):
                    taken["first"] += g == 0 and d.coin[m, k] < 0.5
                    taken["last"] += g == len(dim) - 1 and d.coin[m, k] >= 0.5
                else:
                    taken["lo"] += g * 0.8 < dim[-2]
                    taken["hi"] += g * 1.25 > dim[-1]
            # float32 genes times a float32 factor here, float64 in the reference
            np.testing.assert_allclose(out_genes[name], ref, rtol=1e-6, err_msg=f"{i} {name}")
    assert all(n > 0 for n in taken.values()), taken


# ---------------------------------------------------------------- compiles


def _count_compiles(fn, name="search_whole"):
    return count_compiles(fn, name)


@pytest.mark.parametrize("method", sorted(_search.METHODS))
def test_other_ranges_and_key_compile_nothing(method):
    X, Y = linreg_data()
    kw = dict(population=P, num_steps=T, rounds=rounds_of(method), method=method)
    runs = []
    run = lambda space, key: runs.append(
        lrjax.tune(linreg_loss, jnp.zeros(3), (X, Y), make_sgd, space, key=key, **kw)
    )
    first = _count_compiles(lambda: run(SPACE, jax.random.PRNGKey(0)))
    other = {"learning_rate": ("log", 1e-2, 0.5), "momentum": [0.1, 0.2, 0.3], "damping": (0, 2)}
    # nothing at all compiles again: the rate test's program and the search's
    again = _count_compiles(lambda: run(other, jax.random.PRNGKey(7)), name="")
    assert first <= 1 and again == 0  # the first may hit an earlier test's cache
    assert runs[1].rate_test is not None
    assert not np.allclose(
        runs[0].history.values["learning_rate"], runs[1].history.values["learning_rate"]
    )
    assert set(np.unique(runs[1].history.values["momentum"])) <= {0.1, 0.2, 0.3}
    # another number of options is another shape: the counter is live
    fewer = {**other, "momentum": [0.1, 0.2]}
    assert _count_compiles(lambda: run(fewer, jax.random.PRNGKey(7))) == 1


def test_streamed_halving_compiles_one_program_per_width():
    """Widths 4, 2, 1, 1 over 4 rounds: three round programs, and none on a second call."""
    X, Y = linreg_data()
    listed = [(X[t], Y[t]) for t in range(T)]
    assert _search.round_widths(_search.HALVING, 4, 4) == (4, 2, 1, 1)
    space = {"learning_rate": ("log", 1e-3, 0.5)}

    def run(key):
        lrjax.tune(
            linreg_loss, jnp.zeros(3), listed, make_sgd_lr, space, population=4,
            num_steps=28, rounds=4, method="halving", key=jax.random.PRNGKey(key),
        )  # fmt: skip

    assert _count_compiles(lambda: run(0), "search_round") == 3
    assert _count_compiles(lambda: run(1), "search_round") == 0


def make_sgd_lr(learning_rate):
    return optax.sgd(learning_rate)


@pytest.mark.parametrize("method", sorted(_search.METHODS))
@pytest.mark.parametrize("source", ["streamed", "callable"])
def test_streamed_and_callable_batches_equal_stacked(source, method):
    """Same numbers whatever the data source, the cooldown probe's batches included."""
    X, Y = linreg_data()
    kw = dict(population=4, num_steps=T, rounds=rounds_of(method), key=jax.random.PRNGKey(1),
              method=method)  # fmt: skip
    stacked = lrjax.tune(linreg_loss, jnp.zeros(3), (X, Y), make_sgd, SPACE, **kw)
    Xj, Yj = jnp.asarray(X), jnp.asarray(Y)
    batches = [(X[t], Y[t]) for t in range(T)] if source == "streamed" else lambda t: (Xj[t], Yj[t])
    listed = lrjax.tune(linreg_loss, jnp.zeros(3), batches, make_sgd, SPACE, **kw)
    if method != "random":  # one round: no probe
        assert stacked.score_label.endswith("but the last, after a 2-step cooldown probe")
    # the rate test read the stream's first batches; the search read them again
    assert stacked.rate_test is not None and listed.rate_range == stacked.rate_range
    np.testing.assert_allclose(listed.rate_test.losses, stacked.rate_test.losses, rtol=1e-6)
    np.testing.assert_array_equal(listed.history.parents, stacked.history.parents)
    np.testing.assert_allclose(listed.history.scores, stacked.history.scores, rtol=1e-6)
    np.testing.assert_allclose(listed.losses, stacked.losses, rtol=1e-6)


# ------------------------------------------------------------ Flax models


class Net(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.l1 = nnx.Linear(4, 16, rngs=rngs)
        self.bn = nnx.BatchNorm(16, rngs=rngs)
        self.do = nnx.Dropout(0.3, rngs=rngs)
        self.l2 = nnx.Linear(16, 1, rngs=rngs)

    def __call__(self, x):
        return self.l2(self.do(nnx.relu(self.bn(self.l1(x)))))[:, 0]


def nnx_loss(model, batch):
    x, y = batch
    return jnp.mean((model(x) - y) ** 2)


def test_nnx_dropout_batchnorm_validation_and_a_schedule():
    steps = 16
    x = jax.random.normal(jax.random.PRNGKey(0), (steps + 2, 16, 4))
    y = jnp.sin(x.sum(-1))
    batches, val = (x[:steps], y[:steps]), (x[steps:], y[steps:])
    model = Net(nnx.Rngs(0))
    before = jax.tree.map(np.asarray, nnx.state(model, nnx.Param))
    make = lambda max_value, pct_start: optax.adam(
        lrjax.one_cycle(max_value, steps, pct_start=pct_start)
    )
    space = {"max_value": ("log", 1e-3, 0.3), "pct_start": (0.2, 0.5)}
    run = lambda key: lrjax.tune(
        nnx_loss, model, batches, make, space, population=4, num_steps=steps, rounds=2,
        val_batches=val, key=key,
    )  # fmt: skip
    a, b, c = run(jax.random.PRNGKey(1)), run(jax.random.PRNGKey(1)), run(jax.random.PRNGKey(2))
    np.testing.assert_array_equal(a.history.scores, b.history.scores)
    np.testing.assert_array_equal(a.losses, b.losses)
    assert not np.allclose(a.history.values["max_value"], c.history.values["max_value"])
    assert np.isfinite(a.best_score) and a.score_label.startswith("validation")
    # the user's model is untouched; the best member's state was trained
    after = nnx.state(model, nnx.Param)
    for u, v in zip(jax.tree.leaves(before), jax.tree.leaves(after)):
        np.testing.assert_array_equal(u, np.asarray(v))
    assert jax.tree.structure(a.params) == jax.tree.structure(nnx.state(model, nnx.Param))
    assert not np.allclose(a.params["l1"]["kernel"][...], before["l1"]["kernel"][...])
    mean = a.state["bn"]["mean"][...]
    assert np.abs(np.asarray(mean)).max() > 0  # BatchNorm statistics were carried
    # the best member's parameters and state give its validation score
    graphdef, _, _ = nnx.split(model, nnx.Param, ...)
    best = nnx.merge(graphdef, a.params, a.state)
    best.eval()
    score = np.mean([float(nnx_loss(best, (val[0][i], val[1][i]))) for i in range(2)])
    assert score == pytest.approx(a.best_score, rel=1e-5)


class DropNet(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.l1 = nnx.Linear(4, 8, rngs=rngs)
        self.do = nnx.Dropout(0.5, rngs=rngs)
        self.l2 = nnx.Linear(8, 1, rngs=rngs)

    def __call__(self, x):
        return self.l2(self.do(nnx.relu(self.l1(x))))[:, 0]


@pytest.mark.parametrize("method", ["pbt", "halving"])
def test_nnx_dropout_streams_are_reseeded_every_round(method):
    """Member ``i`` draws round ``r``'s Dropout masks from ``fold_in(member_i, r)``
    (``member_i = fold_in(member_key, i)``; RNG key leaf ``j`` of the state from
    ``fold_in(round_key, j)``), also after copying a parent's state: a hand-written
    NNX loop with those keys, replaying the result's parents and values, gives
    every member's losses in every round."""
    P, rounds, L = 4, 3, 4
    x = jax.random.normal(jax.random.PRNGKey(0), (rounds * L, 16, 4))
    y = jnp.sin(x.sum(-1))
    model = DropNet(nnx.Rngs(0))
    key = jax.random.PRNGKey(5)
    res = lrjax.tune(
        nnx_loss, model, (x, y), make_sgd_lr, {"learning_rate": ("log", 1e-3, 0.1)},
        population=P, num_steps=rounds * L, rounds=rounds, method=method, key=key,
    )  # fmt: skip
    h = res.history
    if method == "pbt":
        assert (h.parents[1:] != np.arange(P)).any()  # a state was copied
    member_key, _ = _search.split_key(jax.random.key_data(key))
    member_key = jax.random.wrap_key_data(jnp.asarray(member_key))
    graphdef, params0, rest0 = nnx.split(model, nnx.Param, ...)

    s_def = jax.tree.structure(rest0)

    def loss_of(p, rest, batch):  # ``rest``: the state's leaves
        m = nnx.merge(graphdef, p, jax.tree.unflatten(s_def, rest), copy=True)
        loss = nnx_loss(m, batch)
        return loss, jax.tree.leaves(nnx.split(m, nnx.Param, ...)[2])

    grad = jax.jit(jax.value_and_grad(loss_of, has_aux=True))
    slots = [(params0, jax.tree.leaves(rest0))] * P
    for r in range(rounds):
        slots = [slots[int(h.parents[r, i])] for i in range(P)]
        for i in range(P):
            if not h.active[r, i]:
                continue
            params, rest = slots[i]
            round_key = jax.random.fold_in(jax.random.fold_in(member_key, i), r)
            rest = [
                jax.random.fold_in(round_key, j)
                if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key) else leaf
                for j, leaf in enumerate(rest)
            ]  # fmt: skip
            lr = float(h.values["learning_rate"][r, i])
            losses = []
            for t in range(r * L, (r + 1) * L):
                (loss, rest), g = grad(params, rest, (x[t], y[t]))
                params = jax.tree.map(lambda p, d: p - lr * d, params, g)
                losses.append(float(loss))
            slots[i] = (params, rest)
            # float32 both ways; XLA CPU fuses the vmapped members differently
            np.testing.assert_allclose(
                res.losses[i, r * L : (r + 1) * L], losses, rtol=1e-5, err_msg=f"{r}, {i}"
            )


# --------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"space": {}}, ValueError, "space must be a non-empty dict"),
        ({"space": {"learning_rate": (0.1, 0.1)}}, ValueError, "'learning_rate'.*low must be <"),
        ({"space": {"learning_rate": ("log", 0.0, 1.0)}}, ValueError, "log range needs low > 0"),
        ({"space": {"learning_rate": []}}, ValueError, "non-empty list of numbers"),
        ({"space": {"learning_rate": ("lin", 0.1, 1.0)}}, ValueError, "only named range is 'log'"),
        ({"space": {"learning_rate": 0.1}}, ValueError, r"must be \(low, high\)"),
        ({"population": 3, "method": "pbt"}, ValueError, "population must be >= 4"),
        ({"population": 1}, ValueError, "population must be >= 2"),
        ({"population": 1, "method": "halving"}, ValueError, "population must be >= 2"),
        ({"rounds": 7}, ValueError, "num_steps=30 must be a multiple of rounds=7"),
        ({"rounds": 31}, ValueError, "num_steps=30 must be a multiple of rounds=31"),
        ({"rounds": 0}, ValueError, "rounds must be >= 1"),
        ({"method": "asha"}, ValueError, r"method must be one of \['halving', 'pbt', 'random'\]"),
        ({"num_steps": 45}, ValueError, "num_steps=45 is larger than the number of batches"),
        ({"cooldown_steps": 11}, ValueError, "cooldown_steps=11 must be at most a round's 10"),
        ({"cooldown_steps": -1}, ValueError, "cooldown_steps must be >= 0, got -1"),
        ({"cooldown_steps": 2.5}, TypeError, "cooldown_steps must be an int >= 0, got 2.5"),
        ({"rate": "lr"}, ValueError, r"rate='lr' is not a dimension of space \(its names"),
        ({"rate": "m", "space": {"learning_rate": (0.1, 1.0), "m": [0.1]}}, ValueError,
         "rate='m' must name a range with low > 0.*a choice"),
        ({"rate": "learning_rate", "space": {"learning_rate": (-1.0, 1.0)}}, ValueError,
         "rate='learning_rate' must name a range with low > 0.*a range from -1"),
        ({"rate": 1}, TypeError, "rate must be a dimension name of space, None or False, got 1"),
        ({"rate_test_steps": 31}, ValueError, "rate_test_steps=31 must be at most num_steps=30"),
        ({"rate_test_steps": 0}, ValueError, "rate_test_steps must be >= 1, got 0"),
        ({"rate": False, "rate_test_steps": 5}, ValueError,
         "rate_test_steps=5 needs a rate dimension to test: name it with rate="),
    ],
)  # fmt: skip
def test_bad_inputs_get_one_clear_error(change, error, match):
    X, Y = linreg_data()
    kw = dict(space={"learning_rate": ("log", 1e-3, 1.0)}, population=4, num_steps=T, rounds=3)
    kw.update(change)
    space = kw.pop("space")
    with pytest.raises(error, match=match):
        lrjax.tune(
            linreg_loss,
            jnp.zeros(3),
            (X, Y),
            lambda learning_rate: optax.sgd(learning_rate),
            space,
            **kw,
        )


def test_defaults_are_halving_40_over_5_rounds_and_pbt_16_over_8():
    """Per-method defaults of about the same cost (the benchmark compares them)."""
    X, Y = linreg_data(steps=40)
    run = lambda **kw: lrjax.tune(
        linreg_loss, jnp.zeros(3), (X, Y), make_sgd, SPACE, num_steps=40, progress=False, **kw
    )
    halving, pbt = run(), run(method="pbt")
    assert (halving.method, halving.population, halving.rounds) == ("halving", 40, 5)
    assert (pbt.method, pbt.population, pbt.rounds) == ("pbt", 16, 8)
    assert halving.history.active.sum(axis=1).tolist() == [40, 20, 10, 5, 3]
    test = 16 * (40 // 8)  # both: 16 rates x an eighth of the run
    assert halving.steps == 8 * (40 + 20 + 10 + 5 + 3) + 2 * (40 + 20 + 10 + 5) + test
    assert pbt.steps == 5 * 16 * 8 + 1 * 16 * 7 + test


def test_all_diverged_and_a_single_round():
    X, Y = linreg_data()
    kw = dict(population=4, num_steps=T, rounds=R)
    hopeless = {"learning_rate": ("log", 1e3, 1e4), "momentum": [0.9], "damping": (0.9, 1.0)}
    res = lrjax.tune(linreg_loss, jnp.zeros(3), (X, Y), make_sgd, hopeless, **kw)
    assert res.best is None and res.best_index is None and res.params is None
    assert res.best_score == np.inf and res.diverged.all() and np.isinf(res.scores).all()
    one = lrjax.tune(linreg_loss, jnp.zeros(3), (X, Y), make_sgd, SPACE, **{**kw, "rounds": 1})
    assert one.history.scores.shape == (1, 4) and (one.history.parents == np.arange(4)).all()
    assert one.best_score == np.min(one.scores)


def test_aux_result_to_dict_and_plot():
    X, Y = linreg_data()

    def loss_with_aux(w, batch):
        loss = linreg_loss(w, batch)
        return loss, {"twice": 2 * loss}

    res = lrjax.tune(
        loss_with_aux, jnp.zeros(3), (X, Y), make_sgd, SPACE, population=4, num_steps=T,
        rounds=R, method="halving", has_aux=True,
    )  # fmt: skip
    assert res.aux["twice"].shape == (4, T)
    np.testing.assert_allclose(res.aux["twice"], 2 * res.losses, rtol=1e-6)  # NaN where idle too
    assert np.isnan(res.losses[~res.history.active.repeat(L, axis=0).T]).all()
    import json

    d = json.loads(json.dumps(res.to_dict()))
    assert d["best"] == res.best and len(d["history"]["parents"]) == R
    assert res.losses.shape == (4, T)
    fig = res.plot()
    assert len(fig.axes) == 1 + len(SPACE)


# ------------------------------------------------------------------ quality


def test_beats_the_median_random_search_of_equal_compute():
    """PBT's best beats the median best of random searches with the same steps."""
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (130, 32, 4))
    y = jnp.sin(2 * x[..., 0]) + x[..., 1] * x[..., 2]
    batches, val = (x[:120], y[:120]), (x[120:], y[120:])
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    params = {"w1": jax.random.normal(k1, (4, 32)) * 0.5, "w2": jax.random.normal(k2, (32,)) * 0.2}

    def loss_fn(p, b):
        return jnp.mean((jnp.tanh(b[0] @ p["w1"]) @ p["w2"] - b[1]) ** 2)

    make = lambda learning_rate: optax.sgd(learning_rate, momentum=0.9)
    lo, hi = 1e-4, 3.0
    res = lrjax.tune(
        loss_fn, params, batches, make, {"learning_rate": ("log", lo, hi)}, population=8,
        num_steps=120, rounds=6, val_batches=val, method="pbt",
    )  # fmt: skip
    bests = []
    rng = np.random.default_rng(0)
    for _ in range(7):
        lrs = np.exp(rng.uniform(np.log(lo), np.log(hi), 8))
        s = lrjax.sweep(loss_fn, params, batches, make, {"learning_rate": lrs}, val_batches=val)
        bests.append(np.min(s.scores))
    assert res.best_score <= np.median(bests), (res.best_score, bests)
