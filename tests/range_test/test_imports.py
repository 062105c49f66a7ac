"""``import lrjax`` stays light: no matplotlib, rich, scikit-learn or flax."""

from __future__ import annotations

import subprocess
import sys


def test_import_lrjax_does_not_import_optional_dependencies():
    code = (
        "import sys, lrjax, lrjax.cli\n"
        "r = lrjax.range_test\n"
        "heavy = ('matplotlib', 'rich', 'sklearn', 'flax')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
