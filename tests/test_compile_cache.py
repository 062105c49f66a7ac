"""The persistent compilation cache: ``lrjax.enable_compilation_cache`` and the command's.

``tests/conftest.py`` sets ``LRJAX_NO_CACHE=1`` for the suite; these tests
remove it where the cache itself is under test, and always point
``XDG_CACHE_HOME`` at a temporary folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import lrjax
from lrjax import _compile_cache
from lrjax.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.fixture
def tiny_npz(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    path = tmp_path / "tiny.npz"
    np.savez(path, X=X, y=(X[:, 0] > 0).astype(np.int64))
    return path


def test_default_dir_follows_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _compile_cache.default_cache_dir() == tmp_path / "xdg" / "lrjax" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _compile_cache.default_cache_dir() == tmp_path / "home" / ".cache" / "lrjax" / "jax"


@pytest.mark.parametrize(
    ("value", "disabled"),
    [("1", True), ("yes", True), ("TRUE", True), ("", False), ("0", False), ("no", False)],
)
def test_env_var(value, disabled):
    assert _compile_cache.cache_disabled_by_env({"LRJAX_NO_CACHE": value}) is disabled


def test_enable_writes_programs_to_the_folder_and_disable_stops(tmp_path):
    folder = tmp_path / "c"
    try:
        assert lrjax.enable_compilation_cache(folder) == str(folder)
        assert jax.config.jax_compilation_cache_dir == str(folder)
        jax.jit(lambda x: x * 5.5 - 2)(np.float32(1)).block_until_ready()
        written = _files(folder)
        assert written, "nothing was cached"
    finally:
        lrjax.disable_compilation_cache()
    assert jax.config.jax_compilation_cache_dir is None
    jax.jit(lambda x: x * 6.5 + 3)(np.float32(1)).block_until_ready()
    assert _files(folder) == written


def test_bad_min_compile_time_names_the_parameter(tmp_path):
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="min_compile_time_secs"):
            lrjax.enable_compilation_cache(tmp_path, min_compile_time_secs=bad)
    assert jax.config.jax_compilation_cache_dir is None  # nothing was changed


def test_find_in_process_caches_in_xdg_dir_and_restores_jax_config(
    tmp_path, tiny_npz, monkeypatch, capsys
):
    monkeypatch.delenv("LRJAX_NO_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    before = {name: getattr(jax.config, name) for name in _compile_cache._OPTIONS}
    argv = ["find", "--data", str(tiny_npz), "--steps", "3", "--num-lrs", "2",
            "--out", str(tmp_path / "a.png"), "--no-progress"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert _files(tmp_path / "xdg" / "lrjax" / "jax")
    after = {name: getattr(jax.config, name) for name in _compile_cache._OPTIONS}
    assert after == before  # the caller's settings, restored
    assert after["jax_compilation_cache_dir"] is None


@pytest.mark.parametrize("how", ["--no-cache", "LRJAX_NO_CACHE=1"])
def test_find_without_cache_writes_nothing(how, tmp_path, tiny_npz, monkeypatch, capsys):
    monkeypatch.delenv("LRJAX_NO_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    argv = ["find", "--data", str(tiny_npz), "--steps", "3", "--num-lrs", "3",
            "--out", str(tmp_path / "a.png"), "--no-progress"]  # fmt: skip
    if how == "--no-cache":
        argv.append("--no-cache")
    else:
        monkeypatch.setenv("LRJAX_NO_CACHE", "1")
    assert main(argv) == 0, capsys.readouterr().err
    assert not (tmp_path / "xdg").exists()


def test_a_second_lrjax_find_reads_the_cache(tmp_path, tiny_npz):
    """Two processes: the second loads every program from the cache the first wrote."""
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "xdg"), PYTHONPATH=str(ROOT))
    env.pop("LRJAX_NO_CACHE", None)
    cmd = [sys.executable, "-m", "lrjax", "find", "--data", str(tiny_npz), "--steps", "4",
           "--num-lrs", "2", "--out", str(tmp_path / "a.png"), "--no-progress",
           "--timings"]  # fmt: skip
    counts = []
    for _ in range(2):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        m = re.search(
            r"\((\d+) programs compiled or loaded, (\d+) from the persistent", proc.stderr
        )
        assert m, proc.stderr
        assert "; strategy scan" in proc.stderr  # the MLP's step: the vectorized scan
        counts.append((int(m.group(1)), int(m.group(2))))
    (programs1, hits1), (programs2, hits2) = counts
    assert hits1 == 0 and programs1 >= 1
    assert hits2 == programs2 == programs1
