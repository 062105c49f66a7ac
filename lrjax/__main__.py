"""``python -m lrjax`` runs the ``lrjax`` command."""

import sys

from lrjax.cli import main

sys.exit(main())
