import contextlib

from lrjax.cli import main

for command in ("find", "plot"):
    with contextlib.suppress(SystemExit):  # argparse exits after printing help
        main([command, "--help"])
    print()
