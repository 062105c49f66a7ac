"""Per-rate diagnosis: the documented rules, checked against a plain-loop rendering."""

from __future__ import annotations

import numpy as np
import pytest

from lrjax import RangeTestResult, Thresholds
from lrjax._results import diagnose_curves, diagnose_ramp

DEFAULT = Thresholds()


def ref_label(curve, diverged, th=DEFAULT):
    """The module doc's rules for one curve, one statement at a time."""
    if diverged:
        return "diverged"
    T = len(curve)
    w = max(1, T // 10)
    m = [sum(curve[i : i + w]) / w for i in range(T - w + 1)]
    h = min(curve[0], m[0])
    scale = max(abs(h), np.finfo(np.float64).tiny)
    half = curve[T // 2 :]
    steps = [abs(half[i + 1] - half[i]) for i in range(len(half) - 1)]
    jitter = sum(steps) / len(steps) if steps else 0.0
    if (
        max(m) - h > th.spike * scale
        or m[-1] - min(m) > th.rise * scale
        or jitter > th.jitter * scale
    ):
        return "unstable"
    if h - m[-1] < th.slow * scale:
        return "slow"
    return "good"


def archetypes(T=50):
    t = np.arange(T, dtype=np.float64)
    return {
        "good": 2.3 * np.exp(-t / 10) + 0.1,
        "slow": 2.3 - 0.002 * t,
        "unstable_rise": np.concatenate([2.3 - 0.08 * t[: T // 2], 0.3 + 0.1 * t[: T - T // 2]]),
        "unstable_spike": 2.3 + 3.0 * np.exp(-((t - 10) ** 2) / 8),
        "unstable_oscillating": 1.3 + 1.0 * (-1.0) ** t,
    }


def test_archetypes_get_their_labels():
    curves = archetypes()
    names = list(curves)
    labels = diagnose_curves(np.stack([curves[n] for n in names]), np.zeros(len(names), bool))
    assert [lab for lab in labels] == [n.split("_")[0] for n in names]
    labels = diagnose_curves(np.stack([curves[n] for n in names]), np.ones(len(names), bool))
    assert set(labels) == {"diverged"}


def test_matches_plain_loop_reference_on_random_curves():
    rng = np.random.default_rng(0)
    for _ in range(60):
        K, T = int(rng.integers(1, 6)), int(rng.integers(1, 60))
        base = rng.uniform(0.5, 3.0, (K, 1))
        drift = rng.normal(0, 0.03, (K, 1)) * np.arange(T)
        noise = rng.normal(0, rng.uniform(0, 0.5), (K, T))
        curves = base + drift + noise
        diverged = rng.random(K) < 0.2
        curves[diverged, T // 2 :] = np.nan
        th = Thresholds(*rng.uniform(0.02, 0.4, 4))
        got = diagnose_curves(curves, diverged, th)
        want = [ref_label(list(curves[k]), diverged[k], th) for k in range(K)]
        assert list(got) == want


def ref_ramp(s, stop, th=DEFAULT):
    T = len(s)
    end = T if stop < 0 else stop
    out = []
    run_min = np.inf
    scale = max(abs(s[0]), np.finfo(np.float64).tiny) if end > 0 else 1.0
    for i in range(T):
        if i >= end:
            out.append("diverged")
            continue
        run_min = min(run_min, s[i])
        if s[i] - run_min > th.rise * scale:
            out.append("unstable")
        elif s[0] - s[i] < th.slow * scale:
            out.append("slow")
        else:
            out.append("good")
    return out


@pytest.mark.parametrize("stop", [-1, 0, 7, 29])
def test_ramp_labels_match_reference(stop):
    x = np.linspace(0, 1, 30)
    s = 2.3 - 2.0 / (1 + np.exp(-(x - 0.5) / 0.08)) + np.exp(6 * (x - 1))
    assert list(diagnose_ramp(s, stop)) == ref_ramp(list(s), stop)
    if stop == -1:
        labels = list(diagnose_ramp(s, stop))
        assert labels[0] == "slow" and "good" in labels and labels[-1] == "unstable"


def test_result_diagnose_with_custom_thresholds():
    curves = archetypes()
    losses = np.stack([curves["slow"], curves["good"]])[None].astype(np.float32)
    r = RangeTestResult.from_parallel(
        [1e-3, 1e-2], losses, losses, -np.ones((1, 2), int), diverge_factor=4.0
    )
    assert list(r.status) == ["slow", "good"]
    assert list(r.diagnose(slow=0.01)) == ["good", "good"]
    with pytest.raises(TypeError):
        r.diagnose(bogus=1.0)
