"""A persistent XLA compilation cache: compiled programs kept on disk between runs.

JAX compiles every jitted program again in each new process. With a cache
folder set, XLA executables are written there and read back by the next
process that compiles the same program, so a second run skips compilation.
The ``lrjax`` command turns this on by default (see ``lrjax find --help``);
library users opt in with one line, :func:`enable_compilation_cache`.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

#: Set to ``1`` (or ``true``/``yes``) to keep the ``lrjax`` command from caching.
ENV_NO_CACHE = "LRJAX_NO_CACHE"

#: The JAX options :func:`enable_compilation_cache` sets.
_OPTIONS = (
    "jax_enable_compilation_cache",
    "jax_compilation_cache_dir",
    "jax_persistent_cache_min_compile_time_secs",
    "jax_persistent_cache_min_entry_size_bytes",
)


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/lrjax/jax``, or ``~/.cache/lrjax/jax`` when it is unset.

    Example:
      >>> default_cache_dir({"XDG_CACHE_HOME": "/tmp/c"}).as_posix()
      '/tmp/c/lrjax/jax'
    """
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lrjax" / "jax"


def cache_disabled_by_env(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``LRJAX_NO_CACHE`` asks the ``lrjax`` command not to cache.

    Any value but empty, ``0``, ``false`` or ``no`` disables the cache.

    Example:
      >>> cache_disabled_by_env({"LRJAX_NO_CACHE": "1"}), cache_disabled_by_env({})
      (True, False)
    """
    env = os.environ if environ is None else environ
    return env.get(ENV_NO_CACHE, "").strip().lower() not in ("", "0", "false", "no")


def enable_compilation_cache(
    path: str | os.PathLike[str] | None = None, *, min_compile_time_secs: float = 0.0
) -> str:
    """Keeps JAX's compiled programs on disk, so later processes skip compiling them.

    One line at the top of a script makes its second run start faster: every
    jitted program (the range test's kernel, a train step, ...) is read back
    from ``path`` instead of compiled again. It sets JAX's own options
    (``jax_compilation_cache_dir``, ``jax_persistent_cache_min_compile_time_secs``
    and ``jax_persistent_cache_min_entry_size_bytes``, the last two lowered so
    that small programs are cached too) and takes effect for the next
    compilation, also when another folder was in use before.

    Args:
      path: the cache folder, created if missing (default:
        ``$XDG_CACHE_HOME/lrjax/jax`` or ``~/.cache/lrjax/jax``, the folder the
        ``lrjax`` command uses).
      min_compile_time_secs: cache only programs that took at least this long
        to compile (JAX's default is 1 s; 0 caches every program).

    Returns:
      The cache folder, as an absolute path.

    Raises:
      ValueError: ``min_compile_time_secs`` is negative or not finite.
      OSError: the folder cannot be created.

    Example:
      >>> import os, tempfile
      >>> import jax, lrjax
      >>> folder = lrjax.enable_compilation_cache(tempfile.mkdtemp())
      >>> float(jax.jit(lambda x: 3 * x + 1)(2.0))  # compiled, then written to folder
      7.0
      >>> len(os.listdir(folder)) > 0
      True
      >>> lrjax.disable_compilation_cache()
    """
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    seconds = float(min_compile_time_secs)
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(
            f"min_compile_time_secs must be a finite number >= 0, got {min_compile_time_secs!r}"
        )
    folder = Path(default_cache_dir() if path is None else path).expanduser().absolute()
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", seconds)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # no size floor
    compilation_cache.reset_cache()  # the next compilation opens the folder set here
    return str(folder)


def disable_compilation_cache() -> None:
    """Stops reading and writing the cache folder set by :func:`enable_compilation_cache`.

    Programs already compiled in this process stay compiled (in memory); the
    files on disk are left alone.

    Example:
      >>> import lrjax
      >>> lrjax.disable_compilation_cache()
    """
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    jax.config.update("jax_compilation_cache_dir", None)
    compilation_cache.reset_cache()


@contextlib.contextmanager
def compilation_cache(path: str | os.PathLike[str] | None = None) -> Iterator[str]:
    """:func:`enable_compilation_cache` inside the ``with`` block only.

    JAX's options are restored on exit, so a caller of ``lrjax.cli.main`` (a
    notebook, a test) keeps its own settings. Yields the cache folder.

    Example:
      >>> import tempfile
      >>> import jax
      >>> before = jax.config.jax_compilation_cache_dir
      >>> with compilation_cache(tempfile.mkdtemp()) as folder:
      ...     jax.config.jax_compilation_cache_dir == folder
      True
      >>> jax.config.jax_compilation_cache_dir == before
      True
    """
    import jax
    from jax.experimental.compilation_cache import compilation_cache as jax_cache

    before = {name: getattr(jax.config, name) for name in _OPTIONS}
    try:
        yield enable_compilation_cache(path)
    finally:
        for name, value in before.items():
            jax.config.update(name, value)
        jax_cache.reset_cache()
