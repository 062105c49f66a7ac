"""Shared pytest configuration."""

import os

# Keras must pick its backend before it is first imported (oracle tests use it).
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("MPLBACKEND", "Agg")
# `lrjax find`/`plot` run in-process must not fill the user's compilation cache
# (~/.cache/lrjax/jax); tests/test_compile_cache.py turns it on where it is tested.
os.environ.setdefault("LRJAX_NO_CACHE", "1")

from hypothesis import HealthCheck, settings

# Property tests compile JAX functions: no per-example deadline, modest example counts.
settings.register_profile(
    "lrjax",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "lrjax"))
