"""``python -m lrjax`` runs the ``lrjax`` command."""

from lrjax.cli import run

run()
