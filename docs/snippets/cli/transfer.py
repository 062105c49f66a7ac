from lrjax.cli import main

# The same as running:
#   lrjax transfer --widths 16,32,64,128 --target 1024 --steps 100 --num-lrs 12 --no-progress
main(["transfer", "--widths", "16,32,64,128", "--target", "1024", "--steps", "100",
      "--num-lrs", "12", "--no-progress"])  # fmt: skip
