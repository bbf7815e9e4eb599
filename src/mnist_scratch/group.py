"""Runs trained together: several configurations of one architecture as one stacked model (`stacked.py`).

Runs that share their training images, batch size, number of epochs, architecture and objective
take steps of the same shape at the same moments: `train_group` trains them as one model, each run
with its own seed (initial weights and batch order), learning rate, schedule and weight decay. Each
run's result is bit-for-bit the one `train.train` returns for it alone, whichever runs share its
group and wherever it sits in it (`tests/test_group.py`), except `seconds`: a grouped run is given
its share of the group's time. The runner groups what it computes with `groups`.

Runs of one seed start from the same weights and draw the same batches: the stack holds them side
by side, they are evaluated once before training, and their first layer multiplies each common
batch once (`stacked.StackedLinear`). Evaluations and the dead-unit trace pass a split through the
stacked model once: its first layer multiplies the rows by every run's weights side by side
(`stacked.matmul`); a lone run is evaluated by the same code, as a group of one (`train.evaluate`).
"""

import math
import time
from collections.abc import Sequence

import torch

from .data import Split, Splits
from .modules import ReLU, mlp
from .objectives import objective
from .stacked import StackedSGD, keep, select, stack, unstack
from .train import (N_PIXELS, Evaluation, RunConfig, dead_units_of_runs, evaluate_runs, final_result,
                    final_splits, generators, is_checkpoint, learning_rate, one_thread, run_result, train, training_split)

MAX_GROUP = 24  # runs per group: past about 25 a stack gains little per run, and fewer groups balance worse over workers
WIDEST = 128  # hidden units: wider networks train alone (a stack of 784-512-10 measured slower than its runs one by one)


def group_key(cfg: RunConfig) -> tuple | None:
    """What runs must share to train as one stack; None for a run that trains alone."""
    if max(cfg.hidden, default=0) > WIDEST:
        return None
    return (cfg.dataset, cfg.max_train, cfg.batch_size, cfg.epochs, cfg.stop_after, cfg.hidden, cfg.objective, cfg.bias)


def groups(cfgs: Sequence[RunConfig], at_least: int = 1, largest: int = MAX_GROUP) -> list[tuple[RunConfig, ...]]:
    """`cfgs` as groups that can train together, in order of first appearance: at most `largest`
    runs each, split evenly, and at least `at_least` groups when there are that many runs (one per
    worker: the group with the most runs is halved until there are). Within a group the runs are
    in order of seed, and a class of runs is split between seeds where it can: runs of one seed
    share their batches, which a group trains faster (see `stacked.StackedLinear`)."""
    classes: dict = {}
    for cfg in cfgs:
        key = group_key(cfg)
        classes.setdefault(("alone", cfg) if key is None else key, []).append(cfg)
    found = []
    for members in classes.values():
        members = sorted(members, key=lambda cfg: cfg.seed)
        size = math.ceil(len(members) / math.ceil(len(members) / largest))
        found += [members[i : i + size] for i in range(0, len(members), size)]
    while len(found) < at_least and max(map(len, found), default=0) > 1:
        biggest = max(found, key=len)
        found[found.index(biggest)] = biggest[: len(biggest) // 2]
        found.append(biggest[len(biggest) // 2 :])
    return [tuple(members) for members in found]


class _Run:
    """What one run of a group records, as `train` records it."""

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.init, self.order = generators(cfg.seed)  # initial weights, batch order
        self.hist: dict[str, list[float]] = {}
        self.losses: list[float] = []  # this epoch's
        self.step_loss: list[float] = []
        self.trace: dict[str, list] = {"step": [], "share": []}
        self.diverged_at: dict | None = None
        self.last: Evaluation | None = None  # the last epoch's validation
        self.final: dict | None = None


def train_group(cfgs: Sequence[RunConfig], splits: Splits, progress: bool = False) -> list[dict]:
    """Train `cfgs`, runs of one group (equal `group_key`), as one stacked model; their results in order.

    The loop is `train.train`'s, for every run of the stack at once; a run that diverges leaves the
    stack after the step that diverged (its slice is dropped; the others go on as before). A single
    run is trained by `train` itself (with its epochs' progress bar if `progress`).
    """
    if len(cfgs) == 1:
        return [train(cfgs[0], splits, progress)]
    keys = {group_key(cfg) for cfg in cfgs}
    if len(keys) > 1 or None in keys:
        raise ValueError(f"these runs cannot train as one group: {sorted(map(str, keys))}")
    start = time.perf_counter()
    first = cfgs[0]
    obj = objective(first.objective)
    train_split = training_split(first, splits)
    with torch.inference_mode(), one_thread():
        runs = [_Run(cfg) for cfg in cfgs]
        # the stack holds the runs of one seed side by side: they share every batch (see `StackedLinear`)
        live = sorted(runs, key=lambda run: run.cfg.seed)  # the runs still training, in the order of the stack
        model = stack([mlp([N_PIXELS, *run.cfg.hidden, obj.n_out], run.cfg.bias, generator=run.init) for run in live],
                      same_input=[run.cfg.seed for run in live])
        loss_fn = obj.loss()
        opt = StackedSGD(model.parameters(), [run.cfg.weight_decay for run in live])
        targets = obj.targets(train_split.y, train_split.x.dtype)
        has_relu = any(isinstance(layer, ReLU) for layer in model.layers)

        def evaluations(split: Split) -> list[Evaluation]:
            return evaluate_runs(model, loss_fn, obj, split)

        def look(step: int) -> None:  # the dead-unit trace
            if has_relu:
                for run, share in zip(live, dead_units_of_runs(model, train_split.x)):
                    run.trace["step"].append(step)
                    run.trace["share"].append(share)

        def drop(gone: list[_Run]) -> torch.Tensor:  # the stack's positions of the runs that stay
            nonlocal live
            index = torch.tensor([i for i, run in enumerate(live) if run not in gone], dtype=torch.long)
            keep(model, index)
            opt.keep(index)
            live = [live[i] for i in index.tolist()]
            return index

        # Before training, runs of one seed have the same weights: each seed's first run is evaluated for all.
        firsts = {}
        for i, run in enumerate(live):
            firsts.setdefault(run.cfg.seed, i)
        starts = select(model, torch.tensor(list(firsts.values())))
        before = zip(evaluate_runs(starts, loss_fn, obj, train_split), evaluate_runs(starts, loss_fn, obj, splits.valid),
                     dead_units_of_runs(starts, train_split.x))
        for seed, (t, v, dead) in zip(firsts, before):
            for run in runs:
                if run.cfg.seed == seed:
                    run.hist = {"train_loss": [t.loss], "valid_loss": [v.loss], "valid_acc": [v.acc]}
                    if has_relu:
                        run.trace = {"step": [0], "share": [list(dead)]}
        n, batch_size = len(train_split), first.batch_size
        epoch_steps = math.ceil(n / batch_size)
        total_steps = first.epochs * epoch_steps  # the schedule's span
        last_step = (first.stop_after or first.epochs) * epoch_steps  # where training ends
        step = 0
        for epoch in range(1, (first.stop_after or first.epochs) + 1):
            orders = torch.stack([torch.randperm(n, generator=run.order) for run in live])  # each run's batches
            for run in live:
                run.losses = []
            for begin in range(0, n, batch_size):
                idx = orders[:, begin : begin + batch_size]
                size = idx.shape
                idx = idx.reshape(-1)
                x = train_split.x.index_select(0, idx).view(*size, -1)
                y = targets.index_select(0, idx).view(*size, *targets.shape[1:])
                lrs = [learning_rate(run.cfg.schedule, run.cfg.lr, step, total_steps) for run in live]
                losses = loss_fn(model(x), y).tolist()
                model.backward(loss_fn.backward())
                opt.step(lrs)
                diverged = []
                for run, loss in zip(live, losses):
                    if math.isfinite(loss):
                        run.losses.append(loss)
                        run.step_loss.append(loss)
                    else:  # as `train`: stopped before this step, which its slice took in vain
                        run.diverged_at = {"epoch": epoch, "step": step}
                        diverged.append(run)
                step += 1
                if diverged:
                    orders = orders[drop(diverged)]
                    if not live:
                        break
                if is_checkpoint(step, epoch_steps, last_step):
                    look(step)
            if not live:
                break
            diverged = []
            for run, valid in zip(live, evaluations(splits.valid)):
                if not math.isfinite(valid.loss):
                    run.diverged_at = {"epoch": epoch, "step": step}
                    diverged.append(run)
                    continue
                run.hist["train_loss"].append(sum(run.losses) / len(run.losses))
                run.hist["valid_loss"].append(valid.loss)
                run.hist["valid_acc"].append(valid.acc)
                run.last = valid
            if diverged:
                drop(diverged)

        if live:  # the last epoch evaluated the final model on the validation split already
            on_test = evaluations(splits.test) if splits.test is not None else [None] * len(live)
            for s, (run, on_train, held) in enumerate(zip(live, evaluations(train_split), on_test)):
                final = {"train": on_train, "valid": run.last, "test": held}
                evals = {name: final[name] for name, _ in final_splits(train_split, splits)}
                dead = run.trace["share"][-1] if has_relu else []  # looked at after the last step
                run.final = final_result(unstack(model, s), obj, evals, splits, dead)
        results = []
        for run in runs:
            result = run_result(run.cfg, run.diverged_at, {**run.hist, "step_loss": run.step_loss},
                                run.trace if has_relu else None)
            if run.final is not None:
                result.update(run.final)
            results.append(result)
    seconds = (time.perf_counter() - start) / len(cfgs)  # each run's share
    for result in results:
        result["seconds"] = seconds
    return results
