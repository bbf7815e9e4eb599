"""Microseconds per matrix product of a batch-16 step, for the two ways to store a Linear weight.

    python benchmarks/bench_layout.py

`(n_in, n_out)` is ours: forward `addmm(b, x, W)`, weight gradient `x.T @ g`, input gradient
`g @ W.T`. `(n_out, n_in)` is torch.nn.Linear's: forward `addmm(b, x, W.T)`, weight gradient
`g.T @ x`, input gradient `g @ W`. One thread, float32; each figure is the best of 400 rounds of 30
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


def main() -> None:
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    print(f"{'layer':10} {'layout':12} {'forward':>8} {'dL/dW':>8} {'dL/dX':>8} {'step':>8}   (µs)")
    with torch.inference_mode():
        for n_in, n_out in LAYERS:
            x, g = torch.rand(BATCH, n_in, generator=gen), torch.rand(BATCH, n_out, generator=gen)
            b, w = torch.rand(n_out, generator=gen), torch.rand(n_in, n_out, generator=gen)
            wt = w.T.contiguous()
            layouts = {
                "(n_in, n_out)": (lambda: torch.addmm(b, x, w), lambda: x.T @ g, lambda: g @ w.T),
                "(n_out, n_in)": (lambda: torch.addmm(b, x, wt.T), lambda: g.T @ x, lambda: g @ wt),
            }
            for layout, products in layouts.items():
                times = [best_us(f) for f in products]
                first = n_in == 784  # the first layer's input is data: no input gradient
                step = times[0] + times[1] + (0 if first else times[2])
                print(f"{f'{n_in}-{n_out}':10} {layout:12} {times[0]:8.1f} {times[1]:8.1f} {times[2]:8.1f} {step:8.1f}")


if __name__ == "__main__":
    main()
