"""The ``lrjax`` command as a module: ``lrjax.cli.main(["find"])`` runs it from Python.

The command itself lives in the private ``lrjax._cli`` package; this module is
its public face (``main``, ``run``, ``build_parser``, ``parse_spec``).
"""

from lrjax._cli import build_parser, main, parse_spec, run

__all__ = ["build_parser", "main", "parse_spec", "run"]
