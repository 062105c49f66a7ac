"""Shared pytest configuration."""

import os

# Keras must pick its backend before it is first imported (oracle tests use it).
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("MPLBACKEND", "Agg")
# `lrjax find`/`plot` run in-process must not fill the user's compilation cache
# (~/.cache/lrjax/jax); tests/test_compile_cache.py turns it on where it is tested.
os.environ.setdefault("LRJAX_NO_CACHE", "1")

from hypothesis import HealthCheck, Phase, settings

# Property tests compile JAX functions: no per-example deadline, modest example counts.
# derandomize: every run draws the same examples (a failure in CI reproduces
# locally, and the suite's time does not vary); tests that must cover every
# schedule structure are parametrized over the structures, not sampled.
# HYPOTHESIS_PROFILE=lrjax-explore draws fresh examples, 10x as many, for a local hunt.
settings.register_profile(
    "lrjax",
    deadline=None,
    max_examples=40,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# tests/mutation/run.py: the same examples, but a failure is reported as found,
# not shrunk (shrinking a planted bug's counterexamples only costs time).
settings.register_profile(
    "lrjax-mutation",
    deadline=None,
    max_examples=40,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "lrjax-explore",
    deadline=None,
    max_examples=400,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "lrjax"))
