"""``python -m lrjax`` runs the ``lrjax`` command."""

from lrjax._cli import run

run()
