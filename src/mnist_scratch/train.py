"""One training run: its configuration, the minibatch loop, evaluation, and the history it records."""

import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

from .data import Split, Splits
from .errors import UserError
from .memory import gb as _gb
from .memory import usable_memory
from .modules import Linear, Loss, ReLU, Sequential, mlp
from .objectives import OBJECTIVES, Objective, objective
from .progress import tqdm
from .sgd import SGD
from .stacked import select, stack

N_PIXELS = 784
EVAL_CHUNK = 10_000  # rows evaluated at once: bounds memory on full MNIST
TRACE_CHUNK = 1_000  # rows at once when dead units are counted (see `dead_units_of_runs`)
KEEP_WEIGHTS_UP_TO = 25_000  # parameters: the final weights of models up to 784-30-10 are recorded
SCHEDULES = ("linear", "constant")


def learning_rate(schedule: str, lr: float, step: int, total_steps: int) -> float:
    """The learning rate at `step` (0-based) of `total_steps`.

    `constant`: `lr` throughout. `linear`: falls in a straight line from `lr` at the first step
    towards 0 at the end of the run, so early steps travel and late steps settle instead of
    bouncing around the minimum with minibatch noise.
    """
    return lr if schedule == "constant" else lr * (1 - step / total_steps)


FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_TINY = 1.401298464324817e-45  # the smallest positive float32: anything below rounds to 0
MAX_EPOCHS = 1_000
MAX_SEED = 2**63 - 1
TRAIN_IMAGES = {"subset": 5_000, "full": 60_000}
EVAL_IMAGES = {"subset": 5_000, "full": 10_000}  # the largest split evaluated besides training
ALL_IMAGES = {"subset": 15_000, "full": 70_000}  # every split of the dataset, in memory


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's numbers. `hidden=()` is logistic regression.

    Checked on construction: a value that cannot give a run (a learning rate float32 cannot hold,
    a batch larger than the training set, a network larger than the memory it may use, ...) is a
    one-line `UserError` before any work starts.
    """

    hidden: tuple[int, ...] = (30,)
    objective: str = "cross-entropy"
    lr: float = 0.1
    schedule: str = "linear"  # see `learning_rate`
    epochs: int = 10
    batch_size: int = 16
    weight_decay: float = 0.0
    bias: bool = True
    seed: int = 0
    dataset: str = "subset"
    max_train: int | None = None  # train on a fixed random sample of N images (quick checks in CI)
    stop_after: int | None = None  # early stopping: end after this epoch, the schedule still spanning `epochs`

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(self.hidden))
        for name in ("lr", "weight_decay"):  # 1 and 1.0 are one config, with one cache key
            if isinstance(getattr(self, name), int):
                object.__setattr__(self, name, float(getattr(self, name)))
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise UserError(f"learning rate must be a positive number, got {self.lr!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise UserError(f"weight decay must be zero or positive, got {self.weight_decay!r}")
        for name, value in (("learning rate", self.lr), ("weight decay", self.weight_decay)):
            if value > FLOAT32_MAX:
                raise UserError(f"{name} {value:g} is too large: training computes in float32, whose largest number is 3.4e+38")
        if self.lr < FLOAT32_TINY:
            raise UserError(f"learning rate {self.lr:g} rounds to 0 in float32 (smallest positive: 1.4e-45)")
        if any(not isinstance(h, int) or h < 1 for h in self.hidden):
            raise UserError(f"hidden sizes must be positive whole numbers, got {list(self.hidden)}")
        for name, low, high in (("epochs", 1, MAX_EPOCHS), ("batch_size", 1, None), ("seed", 0, MAX_SEED)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low or (high is not None and value > high):
                bounds = f"from {low:,} to {high:,}" if high is not None else f"of at least {low:,}"
                raise UserError(f"{name.replace('_', ' ')} must be a whole number {bounds}, got {value!r}")
        if self.max_train is not None and self.max_train < 1:
            raise UserError(f"max_train must be at least 1, got {self.max_train}")
        if self.stop_after == self.epochs:  # stopping after the last epoch is no early stop: one config
            object.__setattr__(self, "stop_after", None)
        if self.stop_after is not None and not (isinstance(self.stop_after, int) and 1 <= self.stop_after < self.epochs):
            raise UserError(f"stop_after must be a whole number from 1 to epochs ({self.epochs}), got {self.stop_after!r}")
        if self.objective not in OBJECTIVES:
            objective(self.objective)  # raises the message listing the valid names
        if self.schedule not in SCHEDULES:
            raise UserError(f"unknown schedule {self.schedule!r}; choose from {', '.join(SCHEDULES)}")
        if self.dataset not in ("subset", "full"):
            raise UserError(f"unknown dataset {self.dataset!r}; choose subset or full")
        if self.batch_size > self.n_train:
            raise UserError(f"batch size {self.batch_size:,} is larger than the {self.n_train:,} training images "
                            f"(at most {self.n_train:,}: one batch per epoch)")
        usable = usable_memory()  # RAM, `ulimit -v`, the control group's limit: the least
        if usable is not None and self.memory_needed() > usable[0]:
            raise UserError(f"a {self.architecture} network needs about {_gb(self.memory_needed())} of memory "
                            f"to train, more than {usable[1]}")

    @property
    def n_train(self) -> int:
        """The number of training images."""
        return min(self.max_train or math.inf, TRAIN_IMAGES[self.dataset])

    def memory_needed(self) -> int:
        """Rough peak bytes of a run: the images; weights, gradients and update (3 copies); and, for
        the most rows passed at once (the whole training set, when dead units are counted), every
        layer's output and its gradient, in float32."""
        sizes = [N_PIXELS, *self.hidden, OBJECTIVES[self.objective].n_out]
        weights = sum((n_in + self.bias) * n_out for n_in, n_out in zip(sizes, sizes[1:]))
        rows = max(self.n_train, min(EVAL_CHUNK, EVAL_IMAGES[self.dataset]))
        per_row = N_PIXELS + 3 * sum(self.hidden) + 2 * sizes[-1]
        return 4 * (ALL_IMAGES[self.dataset] * N_PIXELS + 3 * weights + rows * per_row)

    @property
    def architecture(self) -> str:
        return "-".join(map(str, (N_PIXELS, *self.hidden, OBJECTIVES[self.objective].n_out)))

    def as_dict(self) -> dict:
        return {**asdict(self), "hidden": list(self.hidden)}


@contextmanager
def one_thread():
    """Train on one thread: results then do not depend on the core count, and runs parallelise."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def generators(seed: int) -> tuple[torch.Generator, torch.Generator]:
    """Separate seeded streams for initialisation and batch order, so the model size leaves the order alone."""
    return torch.Generator().manual_seed(2 * seed), torch.Generator().manual_seed(2 * seed + 1)


def batches(n: int, batch_size: int, generator: torch.Generator) -> list[Tensor]:
    """One epoch's shuffled index batches; the last may be short."""
    return list(torch.randperm(n, generator=generator).split(batch_size))


@dataclass
class Evaluation:
    loss: float
    acc: float
    outputs: Tensor = field(repr=False)
    preds: Tensor = field(repr=False)


def evaluate(model: Sequential, loss_fn: Loss, obj: Objective, split: Split) -> Evaluation:
    """Mean loss and accuracy of `model` on a whole split.

    Computed as `evaluate_runs` computes it for a group of runs (`stacked.py`), here a group of one:
    so a run's evaluation is the same whether it trained alone or in a group.
    """
    return evaluate_runs(stack([model]), loss_fn, obj, split)[0]


def evaluate_runs(model: Sequential, loss_fn: Loss, obj: Objective, split: Split) -> list[Evaluation]:
    """`evaluate` for every run of a stacked model: the split passes through it once, in chunks."""
    outputs = torch.cat([model(x) for x in split.x.split(EVAL_CHUNK)], dim=1)  # (runs, rows, outputs)
    targets = obj.targets(split.y, outputs.dtype)
    losses = loss_fn(outputs, targets.expand(len(outputs), *targets.shape)).tolist()  # a mean per run
    return [_scored(out, loss, obj, split.y) for out, loss in zip(outputs, losses)]


def _scored(outputs: Tensor, loss: float, obj: Objective, y: Tensor) -> Evaluation:
    preds = obj.predict(outputs)
    return Evaluation(loss, (preds == y).double().mean().item(), outputs, preds)


def dead_units(model: Sequential, x: Tensor) -> list[float]:
    """Per ReLU layer, the share of units that output 0 for every row of `x`: they pass no gradient.
    Counted as `dead_units_of_runs` counts it for a group, here a group of one."""
    return dead_units_of_runs(stack([model]), x)[0]


def dead_units_of_runs(model: Sequential, x: Tensor) -> list[list[float]]:
    """`dead_units` for every run of a stacked model: per run, per ReLU layer.

    A unit is alive once one row makes it output more than 0. The rows go through in chunks of
    `TRACE_CHUNK`, and a run whose units have all been seen alive stops there: usually after the
    first chunk, so only the runs with dead units (which need every row to be sure) cost a pass over
    the whole split.
    """
    n_runs = len(model.layers[0].weight.data)
    relus = [i for i, layer in enumerate(model.layers) if isinstance(layer, ReLU)]
    if not relus:
        return [[] for _ in range(n_runs)]
    # per ReLU layer, (runs, units): seen alive yet? (The layer before a ReLU is a Linear: (runs, in, units).)
    alive = [torch.zeros(n_runs, model.layers[i - 1].weight.data.shape[2], dtype=torch.bool) for i in relus]
    looking = torch.arange(n_runs)  # the runs with a unit not yet seen alive
    runs = model
    for rows in x.split(TRACE_CHUNK):
        for i, layer in enumerate(runs.layers[: relus[-1] + 1]):
            rows = layer(rows)
            if i in relus:
                alive[relus.index(i)][looking] |= (rows > 0).any(dim=1)
        done = torch.stack([a[looking].all(dim=1) for a in alive]).all(dim=0)
        if done.all():
            break
        if done.any():
            looking = looking[~done]
            runs = select(model, looking)
    return torch.stack([(~a).double().mean(dim=1) for a in alive], dim=1).tolist()


def layer_weights(model: Sequential) -> list[dict]:
    """Each `Linear` layer's final weight as (n_out, n_in) rows, nn.Linear's layout (row j holds unit j's
    input weights), and its bias (None without one). The one place that knows how `Linear` stores its weight."""
    return [
        {"weight": layer.weight.data.T.tolist(), "bias": None if layer.bias is None else layer.bias.data.tolist()}
        for layer in model.layers
        if isinstance(layer, Linear)
    ]


def n_parameters(model: Sequential) -> int:
    return sum(p.data.numel() for p in model.parameters())


def is_checkpoint(step: int, epoch_steps: int, last_step: int) -> bool:
    """Where the dead-unit trace looks: before training (step 0), after steps 1, 2, 4, 8, ..., after the
    first epoch (`epoch_steps`) and at the end (`last_step`). Log-spaced, as the report's figure
    draws it (a log-scale step axis): a look can take a pass over the whole training split."""
    return step & (step - 1) == 0 or step in (epoch_steps, last_step)


def training_split(cfg: RunConfig, splits: Splits) -> Split:
    """The images a run trains on: the training split, or with `max_train` a fixed random sample of it."""
    train_split = splits.train
    if cfg.max_train is not None:  # the splits are ordered by digit: sample, the same for every run
        keep = torch.randperm(len(train_split), generator=torch.Generator().manual_seed(0))[: cfg.max_train]
        train_split = Split(train_split.x[keep], train_split.y[keep], tuple(train_split.paths[i] for i in keep))
    return train_split


def confusion(y: Tensor, preds: Tensor) -> list[list[int]]:
    """10 x 10 counts: row = true digit, column = predicted digit."""
    return torch.bincount(y * 10 + preds, minlength=100).reshape(10, 10).tolist()


def train(cfg: RunConfig, splits: Splits, progress: bool = False) -> dict:
    """Train a fresh model as `cfg` says and return its result: plain data, ready for JSON.

    The history holds, at index 0, the losses and accuracy before any training; then per epoch the
    mean training loss over its steps, the validation loss and the validation accuracy; and every
    step's training loss. A network with ReLUs also records `dead_trace`: the share of dead hidden
    units (see `dead_units`) before training, after steps 1, 2, 4, 8, ..., after the first epoch and
    at the end (`is_checkpoint`). A run whose training or validation loss becomes NaN or infinite
    stops at once and is marked `diverged`; its final metrics are then None. The held-out split
    (`splits.test`) is evaluated once, at the end: it never stops or steers training.

    This is one run's loop, the one to read; `group.train_group` trains several runs of one
    architecture at once, each to exactly the numbers this loop gives it.
    """
    start = time.perf_counter()
    obj = objective(cfg.objective)
    train_split = training_split(cfg, splits)
    with torch.inference_mode(), one_thread():
        init_gen, order_gen = generators(cfg.seed)
        model = mlp([N_PIXELS, *cfg.hidden, obj.n_out], cfg.bias, generator=init_gen)
        loss_fn = obj.loss()
        opt = SGD(model.parameters(), cfg.lr, cfg.weight_decay)
        targets = obj.targets(train_split.y, train_split.x.dtype)

        before_t = evaluate(model, loss_fn, obj, train_split)
        before_v = evaluate(model, loss_fn, obj, splits.valid)
        hist = {"train_loss": [before_t.loss], "valid_loss": [before_v.loss], "valid_acc": [before_v.acc]}
        step_loss: list[float] = []
        has_relu = any(isinstance(layer, ReLU) for layer in model.layers)
        trace = {"step": [], "share": []}

        def look(step: int) -> None:  # the dead-unit trace
            if has_relu:
                trace["step"].append(step)
                trace["share"].append(dead_units(model, train_split.x))

        look(0)
        epoch_steps = math.ceil(len(train_split) / cfg.batch_size)
        total_steps = cfg.epochs * epoch_steps  # the schedule's span
        last_step = (cfg.stop_after or cfg.epochs) * epoch_steps  # where training ends
        diverged_at = None
        epochs = tqdm(range(1, (cfg.stop_after or cfg.epochs) + 1), desc=cfg.architecture, disable=not progress, leave=False)
        for epoch in epochs:
            losses = []
            for idx in batches(len(train_split), cfg.batch_size, order_gen):
                opt.lr = learning_rate(cfg.schedule, cfg.lr, len(step_loss), total_steps)
                # index_select: the rows x[idx] gives, at a third of advanced indexing's cost per step
                loss = loss_fn(model(train_split.x.index_select(0, idx)), targets.index_select(0, idx)).item()
                if not math.isfinite(loss):
                    diverged_at = {"epoch": epoch, "step": len(step_loss)}
                    break
                losses.append(loss)
                step_loss.append(loss)
                model.backward(loss_fn.backward())
                opt.step()
                if is_checkpoint(len(step_loss), epoch_steps, last_step):
                    look(len(step_loss))
            if diverged_at is not None:
                break
            valid = evaluate(model, loss_fn, obj, splits.valid)
            if not math.isfinite(valid.loss):
                diverged_at = {"epoch": epoch, "step": len(step_loss)}
                break
            hist["train_loss"].append(sum(losses) / len(losses))
            hist["valid_loss"].append(valid.loss)
            hist["valid_acc"].append(valid.acc)
            epochs.set_postfix(valid_loss=f"{valid.loss:.3f}", valid_acc=f"{valid.acc:.3f}")

        result = run_result(cfg, diverged_at, {**hist, "step_loss": step_loss}, trace if has_relu else None)
        if diverged_at is None:
            evals = {name: valid if name == "valid" else evaluate(model, loss_fn, obj, split)  # valid: the last epoch's
                     for name, split in final_splits(train_split, splits)}
            result.update(final_result(model, obj, evals, splits, dead_units(model, train_split.x)))
    result["seconds"] = time.perf_counter() - start
    return result


def finite_or_none(loss: float) -> float | None:
    """A loss as stored: None where it is infinite or NaN (JSON has no inf)."""
    return loss if math.isfinite(loss) else None


def run_result(cfg: RunConfig, diverged_at: dict | None, history: dict, trace: dict | None) -> dict:
    """A run's result before its final evaluation (`final_result`, which a diverged run does not get)."""
    result = {
        "config": cfg.as_dict(),
        "architecture": cfg.architecture,
        "diverged": diverged_at is not None,
        "diverged_at": diverged_at,
        "history": history,
        "final": None,
    }
    if trace is not None:
        result["dead_trace"] = trace
    return result


def final_splits(train_split: Split, splits: Splits) -> list[tuple[str, Split]]:
    """The splits a finished run is evaluated on, by name."""
    named = (("train", train_split), ("valid", splits.valid), ("test", splits.test))
    return [(name, split) for name, split in named if split is not None]


def final_result(model: Sequential, obj: Objective, evals: dict[str, Evaluation], splits: Splits, dead: list[float]) -> dict:
    """Final losses and accuracies on every split (`evals`, by `final_splits`), confusion matrices,
    validation predictions, the dead units (`dead`) and, for the smaller models, the weights."""
    final, conf = {}, {}
    for name, ev in evals.items():
        final[name] = {"loss": finite_or_none(ev.loss), "acc": ev.acc}
        if name != "train":
            conf[name] = confusion(getattr(splits, name).y, ev.preds)
    valid = evals["valid"]
    out = {"final": final, "confusion": conf, "valid_pred": valid.preds.tolist(), "dead_units": dead}
    if "test" in evals:  # per image, for paired tests between settings on the held-out images
        out["test_pred"] = evals["test"].preds.tolist()
    if n_parameters(model) <= KEEP_WEIGHTS_UP_TO:  # the wide networks' weights are never read
        out["weights"] = layer_weights(model)
    if obj.n_out == 1:  # the regression's raw outputs, for the failure analysis
        out["valid_output"] = valid.outputs.squeeze(1).tolist()
    else:  # the runner-up class: how often a wrong first choice has the right second one
        out["valid_second"] = valid.outputs.topk(2, dim=1).indices[:, 1].tolist()
    return out
