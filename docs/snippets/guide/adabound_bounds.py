# AdaBound (Luo et al. 2019) clips Adam's per-parameter step size lr / sqrt(v)
# into [lower(t), upper(t)]; both bounds close in on final_lr as t grows.
final_lr, gamma = 0.1, 1e-3
print("     step     lower     upper")
for t in (1, 10, 100, 1_000, 10_000, 100_000):
    lower = final_lr * (1 - 1 / (gamma * t + 1))
    upper = final_lr * (1 + 1 / (gamma * t))
    print(f"{t:9d} {lower:9.4f} {upper:9.4f}")
