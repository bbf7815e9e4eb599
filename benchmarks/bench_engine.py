"""Seconds per training epoch: our engine vs torch.nn + autograd + torch.optim vs a fastai Learner,
and our engine training runs in groups, against the epoch's matrix products alone.

    python benchmarks/bench_engine.py [--repeats 15] [--group-size 24]

All three train the same networks (784-10 and 784-30-10, cross-entropy, SGD lr 0.1, batch size 16)
from the same initial weights on the same batches of the subset training set (5,000 images, 313
steps), on one thread. A first, untimed epoch warms each contestant up and checks that all three
compute the same loss at every step; then each repetition draws one batch order and times one
epoch of every contestant, in an order that rotates from repetition to repetition. The table
shows medians, and the GEMM floor: the time the epoch's matrix products alone would take at this
machine's single-thread matrix-multiplication rate, measured on a large product first.

Two more columns, timed in the same rotation: **grouped**, the seconds per run of an epoch of
`--group-size` runs trained as one stack (the step loop of `mnist_scratch.group.train_group`; run
0 is ours, whose every loss it must reproduce bit for bit in the warm-up, the others have seeds of
their own, so batches of their own), and **products**, one run's epoch of matrix products alone,
as `Linear` computes them at the epoch's batch sizes: the floor for a step at batch size 16.

The medians and ratios are also written to `benchmarks/engine.json` (plain JSON, written
atomically), which the report reads for the speed it quotes.
"""

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

import torch

warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)  # from fastai's import
import torch.nn.functional as F
from fastai.callback.core import Callback
from fastai.callback.progress import ProgressCallback
from fastai.data.core import DataLoaders, TfmdDL
from fastai.learner import Learner
from fastai.optimizer import SGD as FastaiSGD
from torch import nn

from mnist_scratch import data
from mnist_scratch.group import MAX_GROUP
from mnist_scratch.modules import CrossEntropy, mlp
from mnist_scratch.sgd import SGD
from mnist_scratch.stacked import StackedSGD, stack
from mnist_scratch.store import atomic_write
from mnist_scratch.train import batches, generators

BATCH_SIZE = 16
LR = 0.1
MODELS = {"784-10": [784, 10], "784-30-10": [784, 30, 10]}
RECORD = Path(__file__).with_name("engine.json")


def torch_copy(model) -> nn.Sequential:
    """Our network as torch.nn layers with the same weights (nn's weight is our weight.T)."""
    layers = []
    for layer in model.layers:
        if not layer.parameters():
            layers.append(nn.ReLU())
            continue
        n_in, n_out = layer.weight.data.shape
        lin = nn.Linear(n_in, n_out)
        with torch.no_grad():
            lin.weight.copy_(layer.weight.data.T)
            lin.bias.copy_(layer.bias.data)
        layers.append(lin)
    return nn.Sequential(*layers)


def rows(t, idx):
    """A batch: the rows `idx` of `t`, gathered as `mnist_scratch.train.train` gathers them."""
    return t.index_select(0, idx)


class Ours:
    """The loop of mnist_scratch.train.train: manual forward/backward, our SGD, autograd off."""

    name = "ours"

    def __init__(self, model, x, y):
        self.model, self.x, self.y = model, x, y
        self.loss_fn, self.opt = CrossEntropy(), SGD(model.parameters(), LR)

    def epoch(self, idxs) -> tuple[float, list[float]]:
        model, loss_fn, opt, x, y, losses = self.model, self.loss_fn, self.opt, self.x, self.y, []
        start = time.perf_counter()
        with torch.inference_mode():
            for idx in idxs:
                loss = loss_fn(model(rows(x, idx)), rows(y, idx)).item()
                if not math.isfinite(loss):
                    raise RuntimeError("diverged")
                losses.append(loss)
                model.backward(loss_fn.backward())
                opt.step()
        return time.perf_counter() - start, losses


class Reference:
    """The textbook PyTorch loop: nn layers, F.cross_entropy, autograd, torch.optim.SGD (batches gathered as ours)."""

    name = "torch.nn"

    def __init__(self, model, x, y):
        self.model, self.x, self.y = model, x, y
        self.opt = torch.optim.SGD(model.parameters(), lr=LR)

    def epoch(self, idxs) -> tuple[float, list[float]]:
        model, opt, x, y, losses = self.model, self.opt, self.x, self.y, []
        start = time.perf_counter()
        for idx in idxs:
            loss = F.cross_entropy(model(rows(x, idx)), rows(y, idx))
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss = loss.item()
            if not math.isfinite(loss):
                raise RuntimeError("diverged")
            losses.append(loss)
        return time.perf_counter() - start, losses


class TrainTimer(Callback):
    """Times the training phase of each epoch (not validation); optionally records every loss."""

    order = -100  # before_train runs before, after_train after, the default callbacks' own

    def __init__(self):
        self.seconds, self.losses, self.record = None, [], False

    def before_train(self):
        self.losses, self.start = [], time.perf_counter()

    def after_batch(self):
        if self.record and self.training:
            self.losses.append(self.learn.loss.item())

    def after_train(self):
        self.seconds = time.perf_counter() - self.start


class Fastai:
    """A fastai Learner with its default callbacks (progress bar and logging off), fastai's SGD."""

    name = "fastai"

    def __init__(self, model, x, y):
        self.order: list[int] = []
        train_dl = TfmdDL(list(zip(x, y)), bs=BATCH_SIZE, shuffle=True, drop_last=False, num_workers=0,
                          shuffle_fn=lambda idxs: self.order)  # our batches, in our order
        valid_dl = TfmdDL(list(zip(x[:BATCH_SIZE], y[:BATCH_SIZE])), bs=BATCH_SIZE, num_workers=0)
        self.timer = TrainTimer()
        self.learn = Learner(DataLoaders(train_dl, valid_dl, device="cpu"), model, loss_func=F.cross_entropy,
                             opt_func=FastaiSGD, lr=LR, cbs=self.timer)
        if any(isinstance(cb, ProgressCallback) for cb in self.learn.cbs):
            self.learn.remove_cb(ProgressCallback)

    def epoch(self, idxs) -> tuple[float, list[float]]:
        self.order = torch.cat(idxs).tolist()
        with self.learn.no_logging():
            self.learn.fit(1, lr=LR)
        return self.timer.seconds, self.timer.losses


class Grouped:
    """The step loop of mnist_scratch.group.train_group: `size` runs stacked, seeds 0, 1, ...; seconds per run."""

    name = "grouped"

    def __init__(self, sizes, x, y, size):
        inits, self.orders = zip(*(generators(seed) for seed in range(size)))
        self.model = stack([mlp(sizes, generator=init) for init in inits])
        self.loss_fn, self.opt = CrossEntropy(), StackedSGD(self.model.parameters(), [0.0] * size)
        self.x, self.y, self.size = x, y, size

    def epoch(self, idxs) -> tuple[float, list[float]]:
        """`idxs` are run 0's batches (ours'); the other runs draw theirs, as each does in a group."""
        n, batch = len(self.y), len(idxs[0])
        orders = torch.stack([torch.cat(idxs)] + [torch.randperm(n, generator=g) for g in self.orders[1:]])
        model, loss_fn, opt, x, y, first = self.model, self.loss_fn, self.opt, self.x, self.y, []
        start = time.perf_counter()
        with torch.inference_mode():
            for begin in range(0, n, batch):
                idx = orders[:, begin : begin + batch]
                size = idx.shape
                idx = idx.reshape(-1)
                losses = loss_fn(model(rows(x, idx).view(*size, -1)), rows(y, idx).view(size)).tolist()
                if not all(map(math.isfinite, losses)):
                    raise RuntimeError("diverged")
                first.append(losses[0])
                model.backward(loss_fn.backward())
                opt.step([LR] * self.size)
        return (time.perf_counter() - start) / self.size, first


class Products:
    """One run's matrix products alone, as `Linear` computes them: forward `addmm`, weight gradient
    `x.T @ g`, input gradient `g @ W.T` for every layer but the first, at each batch's size."""

    name = "products"

    def __init__(self, sizes, x, y):
        gen = torch.Generator().manual_seed(0)
        self.layers = [(torch.rand(n_in, n_out, generator=gen), torch.rand(n_out, generator=gen))
                       for n_in, n_out in zip(sizes, sizes[1:])]
        self.acts = {b: [torch.rand(b, n, generator=gen) for n in sizes] for b in (BATCH_SIZE, len(y) % BATCH_SIZE) if b}

    def epoch(self, idxs) -> tuple[float, list[float]]:
        start = time.perf_counter()
        with torch.inference_mode():
            for idx in idxs:
                acts = self.acts[len(idx)]
                for i, (w, b) in enumerate(self.layers):
                    torch.addmm(b, acts[i], w)
                for i, (w, _) in enumerate(self.layers):
                    acts[i].T @ acts[i + 1]
                    if i:
                        acts[i + 1] @ w.T
        return time.perf_counter() - start, []


CONTESTANTS = (Ours, Reference, Fastai)
GOAL = 2.0  # ours at least this many times faster than torch.nn
GROUPED_GOAL = 1.5  # a grouped run's epoch within this factor of its products alone


def gemm_rate(n: int = 1024, repeats: int = 7) -> float:
    """Single-thread float32 matrix-multiplication rate, in FLOP/s: the best of `repeats` n x n products."""
    a, b = torch.rand(n, n), torch.rand(n, n)
    a @ b
    best = min(_seconds(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best


def _seconds(f) -> float:
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def epoch_flops(sizes: list[int], idxs) -> int:
    """Floating-point operations of one epoch's matrix products: per layer and batch of b rows, the
    forward product and the weight gradient, 2 * b * n_in * n_out each, and the input gradient for
    every layer but the first (whose input is data)."""
    products = sum((2 if i == 0 else 3) * n_in * n_out for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])))
    return 2 * products * sum(len(idx) for idx in idxs)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return f"{platform.machine()}, {torch.get_num_threads()} of {os.cpu_count()} cores used, {cpu}, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed epochs per contestant and model")
    parser.add_argument("--group-size", type=int, default=MAX_GROUP, help="runs in the grouped contestant's stack")
    args = parser.parse_args()

    torch.set_num_threads(1)
    train = data.load("subset").train
    x, y = train.x, train.y
    n = len(y)
    rate = gemm_rate()
    print(f"{machine()}\n{n} training images, batch size {BATCH_SIZE}: {math.ceil(n / BATCH_SIZE)} steps per epoch")
    print(f"single-thread GEMM rate: {rate / 1e9:.0f} GFLOP/s (float32, 1024 x 1024 by 1024 x 1024)")

    runs = {}
    for label, sizes in MODELS.items():
        init_gen, order_gen = generators(0)
        ours = mlp(sizes, generator=init_gen)
        contestants = [Ours(ours, x, y), Reference(torch_copy(ours), x, y), Fastai(torch_copy(ours), x, y),
                       Grouped(sizes, x, y, args.group_size), Products(sizes, x, y)]
        idxs = batches(n, BATCH_SIZE, order_gen)
        contestants[2].timer.record = True  # warm-up epoch: all three must take the same steps
        warm = {c.name: c.epoch(idxs)[1] for c in contestants}
        contestants[2].timer.record = False
        for name in ("ours", "fastai"):
            diff = max(abs(a - b) for a, b in zip(warm[name], warm["torch.nn"], strict=True))
            assert diff <= 1e-5, f"{label}: {name} and torch.nn losses differ by {diff:.2e}"
        assert warm["grouped"] == warm["ours"], f"{label}: run 0 of the group is not ours, bit for bit"
        print(f"{label}: warm-up epoch, the three losses agree at all {len(idxs)} steps (max diff "
              f"{max(abs(a - b) for a, b in zip(warm['ours'], warm['torch.nn'])):.1e} ours vs torch.nn); "
              f"run 0 of the group of {args.group_size} takes ours' steps bit for bit")
        runs[label] = (contestants, order_gen, {c.name: [] for c in contestants})

    for rep in range(args.repeats):  # interleaved: every repetition times every contestant once
        for label, (contestants, order_gen, times) in runs.items():
            idxs = batches(n, BATCH_SIZE, order_gen)
            shift = rep % len(contestants)
            for c in contestants[shift:] + contestants[:shift]:
                times[c.name].append(c.epoch(idxs)[0])

    load = os.getloadavg()
    print(f"\nmedian seconds per epoch over {args.repeats} interleaved epochs (min-max in brackets); "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min)\n")
    header = (f"{'model':<10} {'ours':>18} {'torch.nn':>18} {'fastai':>18} {'GEMM floor':>11} {'torch.nn/ours':>14} "
              f"{'fastai/ours':>12} {'ours/floor':>11}")
    print(header + "\n" + "-" * len(header))
    speedups, medians, grouped = {}, {}, {}
    idxs = batches(n, BATCH_SIZE, torch.Generator())  # the same batch sizes as every timed epoch
    for label, (_, _, times) in runs.items():
        med = {k: statistics.median(v) for k, v in times.items()}
        floor = epoch_flops(MODELS[label], idxs) / rate
        speedups[label] = med["torch.nn"] / med["ours"]
        grouped[label] = med["grouped"] / med["products"]
        medians[label] = med
        cells = [f"{med[k]:.3f} [{min(v):.3f}-{max(v):.3f}]" for k, v in times.items()]
        print(f"{label:<10} {cells[0]:>18} {cells[1]:>18} {cells[2]:>18} {floor:>11.4f} "
              f"{speedups[label]:>13.2f}x {med['fastai'] / med['ours']:>11.2f}x {med['ours'] / floor:>10.1f}x")
    header = (f"{'model':<10} {'ours':>18} {f'grouped ({args.group_size})':>18} {'products':>18} "
              f"{'ours/grouped':>13} {'ours/products':>14} {'grouped/products':>17}")
    print("\nper run, grouped: an epoch's seconds divided by the runs in the stack\n\n" + header + "\n" + "-" * len(header))
    for label, (_, _, times) in runs.items():
        med = medians[label]
        cells = [f"{med[k]:.3f} [{min(times[k]):.3f}-{max(times[k]):.3f}]" for k in ("ours", "grouped", "products")]
        print(f"{label:<10} {cells[0]:>18} {cells[1]:>18} {cells[2]:>18} {med['ours'] / med['grouped']:>12.2f}x "
              f"{med['ours'] / med['products']:>13.2f}x {grouped[label]:>16.2f}x")
    verdicts = ", ".join(f"{k} {'met' if v >= GOAL else 'NOT met'}" for k, v in speedups.items())
    print(f"\ngoal, ours at least {GOAL:g}x faster than torch.nn (torch.nn/ours >= {GOAL:g}): {verdicts}")
    verdicts = ", ".join(f"{k} {'met' if v <= GROUPED_GOAL else 'NOT met'}" for k, v in grouped.items())
    print(f"goal, a grouped run's epoch within {GROUPED_GOAL:g}x of its products alone "
          f"(grouped/products <= {GROUPED_GOAL:g}): {verdicts}")
    record = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "machine": machine(), "repeats": args.repeats, "load_average": list(load),
              "median_seconds": medians, "speedup_vs_torch_nn": speedups,
              "group_size": args.group_size, "grouped_vs_products": grouped}
    atomic_write(RECORD, lambda f: f.write((json.dumps(record, indent=1) + "\n").encode()))
    print(f"written to {RECORD}")


if __name__ == "__main__":
    main()
