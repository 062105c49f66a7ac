# Gradient descent on L(w) = curvature / 2 * w**2, whose gradient is curvature * w.
# Each step multiplies w by (1 - lr * curvature).
curvature = 4.0
for lr in (0.05, 0.2, 0.25, 0.4, 0.55):
    w, path = 1.0, []
    for _ in range(6):
        w = w - lr * curvature * w
        path.append(w)
    print(
        f"lr={lr:<4}  factor {1 - lr * curvature:+.1f}  w: " + " ".join(f"{x:+8.3f}" for x in path)
    )
