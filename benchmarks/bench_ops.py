"""Microseconds per operation of a batch-16 training step, for the choices the engine made.

    python benchmarks/bench_ops.py

1. The two ways to store a Linear weight. `(n_in, n_out)` is ours: forward `addmm(b, x, W)`, weight
   gradient `x.T @ g`, input gradient `g @ W.T`. `(n_out, n_in)` is torch.nn.Linear's: forward
   `addmm(b, x, W.T)`, weight gradient `g.T @ x`, input gradient `g @ W`.
2. Gathering a batch from the 5,000 x 784 training images: `x[idx]` or `x.index_select(0, idx)`.
3. The ReLU's backward for a 16 x 30 layer: `grad * (input > 0)` or `grad * sign(output)`.

One thread, float32, under `torch.inference_mode()`; each figure is the best of 400 rounds of 30
calls, which on a shared machine is the closest to an idle one.
"""

import time

import torch

BATCH = 16
LAYERS = [(784, 10), (784, 30), (30, 10)]


def best_us(f, calls: int = 30, rounds: int = 400) -> float:
    for _ in range(calls):
        f()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            f()
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e6


def layouts(gen: torch.Generator) -> None:
    print(f"{'layer':10} {'weight':14} {'forward':>8} {'dL/dW':>8} {'dL/dX':>8} {'step':>8}   (µs)")
    for n_in, n_out in LAYERS:
        x, g = torch.rand(BATCH, n_in, generator=gen), torch.rand(BATCH, n_out, generator=gen)
        b, w = torch.rand(n_out, generator=gen), torch.rand(n_in, n_out, generator=gen)
        wt = w.T.contiguous()
        products = {
            "(n_in, n_out)": (lambda: torch.addmm(b, x, w), lambda: x.T @ g, lambda: g @ w.T),
            "(n_out, n_in)": (lambda: torch.addmm(b, x, wt.T), lambda: g.T @ x, lambda: g @ wt),
        }
        for layout, fs in products.items():
            times = [best_us(f) for f in fs]
            first = n_in == 784  # the first layer's input is data: no input gradient
            step = times[0] + times[1] + (0 if first else times[2])
            print(f"{f'{n_in}-{n_out}':10} {layout:14} {times[0]:8.1f} {times[1]:8.1f} {times[2]:8.1f} {step:8.1f}")


def others(gen: torch.Generator) -> None:
    images, labels = torch.rand(5000, 784, generator=gen), torch.randint(0, 10, (5000,), generator=gen)
    idx = torch.randperm(5000, generator=gen)[:BATCH]
    pre, grad = torch.randn(BATCH, 30, generator=gen), torch.rand(BATCH, 30, generator=gen)
    out = pre.clamp_min(0.0)
    pairs = {
        "batch of images": (lambda: images[idx], lambda: images.index_select(0, idx), "x[idx]", "index_select"),
        "batch of labels": (lambda: labels[idx], lambda: labels.index_select(0, idx), "y[idx]", "index_select"),
        "ReLU backward": (lambda: grad * (pre > 0), lambda: grad * out.sign(), "* (input > 0)", "* sign(output)"),
    }
    print(f"\n{'operation':16} {'before':>22} {'now':>22}   (µs)")
    for what, (before, now, before_name, now_name) in pairs.items():
        print(f"{what:16} {before_name:>14} {best_us(before):7.1f} {now_name:>14} {best_us(now):7.1f}")


def main() -> None:
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        layouts(gen)
        others(gen)


if __name__ == "__main__":
    main()
