from lrjax.cli import main

# The same as running:  lrjax find --steps 50 --num-lrs 16 --no-progress
main(["find", "--steps", "50", "--num-lrs", "16", "--no-progress"])
