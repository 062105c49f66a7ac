from lrjax.cli import main

# The same as running:  lrjax transfer --widths 16,32,64 --target 512 --num-lrs 8 --no-progress
main(["transfer", "--widths", "16,32,64", "--target", "512", "--num-lrs", "8", "--no-progress"])
