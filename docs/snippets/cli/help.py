import contextlib

from lrjax.cli import main

for command in ("find", "transfer", "plot"):
    with contextlib.suppress(SystemExit):  # argparse exits after printing help
        main([command, "--help"])
    print()
