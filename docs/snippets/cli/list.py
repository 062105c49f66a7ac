from lrjax.cli import main

main(["list"])
