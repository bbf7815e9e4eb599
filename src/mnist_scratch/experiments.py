"""The named experiments: each a declarative list of runs, built from the chosen hyperparameters.

`results(name)` returns an experiment's run results, computing whatever is not cached. `tiny=True`
gives the same experiments shrunk (one epoch on 500 images, one seed, the ends of each grid): the
end-to-end check CI can afford.
"""

from dataclasses import dataclass
from functools import cache
from typing import Callable

from . import results as result_cache
from . import runner
from .errors import UserError
from .train import RunConfig

LOGISTIC, TWO_LAYER = (), (30,)
CLASSIFIERS = {"logistic regression": LOGISTIC, "784-30-10 ReLU": TWO_LAYER}
SWEEP_LRS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
SWEEP_EPOCHS = (5, 10, 20, 40)
SEEDS = (0, 1, 2, 3, 4)
WEIGHT_DECAYS = (0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
HIDDEN_SIZES = (4, 8, 16, 30, 64, 128, 256, 512)
MSE_LRS = {"mse-digit": (0.001, 0.003, 0.01, 0.03), "mse-onehot": (0.03, 0.1, 0.3, 1.0)}
FULL_EPOCHS = 20


@dataclass(frozen=True)
class Context:
    """What an experiment's run list may depend on: the scale, and other experiments' results."""

    tiny: bool
    results: Callable[[str], list[dict]]

    def seeds(self, n: int = len(SEEDS)) -> tuple[int, ...]:
        return SEEDS[:1] if self.tiny else SEEDS[:n]

    def grid(self, values: tuple) -> tuple:
        return (values[0], values[-1]) if self.tiny else values

    def cfg(self, **kw) -> RunConfig:
        if self.tiny:
            kw.update(epochs=1, max_train=500 if kw.get("dataset", "subset") == "subset" else 2_000)
        return RunConfig(**kw)


def choose(sweep: list[dict]) -> dict[tuple[int, ...], tuple[float, int]]:
    """The rule behind every later run: per model, the (learning rate, epochs) of the best validation accuracy.

    Over the sweep's runs of a model that did not diverge (seed 0, each a full run with its own
    learning-rate decay), take the one with the highest final validation accuracy, the lower
    validation loss breaking ties. Only the validation split is used: the held-out test split
    plays no part in any choice.
    """
    best: dict[tuple[int, ...], tuple] = {}
    for r in sweep:
        if r["diverged"]:
            continue
        hidden = tuple(r["config"]["hidden"])
        score = (r["final"]["valid"]["acc"], -r["final"]["valid"]["loss"])
        if hidden not in best or score > best[hidden][0]:
            best[hidden] = (score, r["config"]["lr"], r["config"]["epochs"])
    return {hidden: (lr, epochs) for hidden, (_, lr, epochs) in best.items()}


def _chosen(ctx: Context, hidden: tuple[int, ...]) -> dict:
    """Keyword arguments for a run at the hyperparameters `choose` picks for `hidden` (or for 784-30-10)."""
    picked = choose(ctx.results("lr-sweep"))
    lr, epochs = picked.get(hidden, picked[TWO_LAYER])
    return {"lr": lr, "epochs": epochs}


def lr_sweep(ctx):
    """Both classifiers over log-spaced learning rates, 0.001 (too slow) to 3 (unstable), for 5 to 40 epochs, seed 0."""
    return [
        ctx.cfg(hidden=h, lr=lr, epochs=e)
        for h in CLASSIFIERS.values()
        for lr in ctx.grid(SWEEP_LRS)
        for e in ctx.grid(SWEEP_EPOCHS)
    ]


def baseline(ctx):
    """Both classifiers at the learning rate and epochs `choose` picks from `lr-sweep`, five seeds each."""
    return [ctx.cfg(hidden=h, seed=s, **_chosen(ctx, h)) for h in CLASSIFIERS.values() for s in ctx.seeds()]


def weight_decay(ctx):
    """Both classifiers over L2 weight decay from 0 to strong enough to hurt, three seeds each."""
    return [
        ctx.cfg(hidden=h, weight_decay=wd, seed=s, **_chosen(ctx, h))
        for h in CLASSIFIERS.values()
        for wd in ctx.grid(WEIGHT_DECAYS)
        for s in ctx.seeds(3)
    ]


def hidden_size(ctx):
    """784-h-10 for h from 4 to 512 at the 2-layer model's chosen hyperparameters, three seeds each."""
    return [ctx.cfg(hidden=(h,), seed=s, **_chosen(ctx, TWO_LAYER)) for h in ctx.grid(HIDDEN_SIZES) for s in ctx.seeds(3)]


def bias(ctx):
    """Both classifiers with and without biases, three seeds each."""
    return [
        ctx.cfg(hidden=h, bias=b, seed=s, **_chosen(ctx, h))
        for h in CLASSIFIERS.values()
        for b in (True, False)
        for s in ctx.seeds(3)
    ]


def mse_regression(ctx):
    """784-30-1 predicting the digit with MSE, the one-hot MSE control (784-30-10), and cross-entropy.

    All train for the 2-layer model's chosen number of epochs (three seeds). Each MSE objective runs
    over its own learning-rate grid; the analysis uses, per objective, the learning rate with the
    lowest mean final validation loss. The cross-entropy runs are the 784-30-10 baseline's.
    """
    epochs = _chosen(ctx, TWO_LAYER)["epochs"]
    mse = [
        ctx.cfg(hidden=TWO_LAYER, objective=obj, lr=lr, epochs=epochs, seed=s)
        for obj, lrs in MSE_LRS.items()
        for lr in ctx.grid(lrs)
        for s in ctx.seeds(3)
    ]
    return mse + [ctx.cfg(hidden=TWO_LAYER, seed=s, **_chosen(ctx, TWO_LAYER)) for s in ctx.seeds(3)]


def full_mnist(ctx):
    """Both classifiers on all 60,000 training images, tested on all 10,000, at their chosen learning
    rates for 20 epochs (one epoch here is twelve of the subset's), seed 0."""
    return [ctx.cfg(hidden=h, lr=_chosen(ctx, h)["lr"], epochs=FULL_EPOCHS, dataset="full") for h in CLASSIFIERS.values()]


@dataclass(frozen=True)
class Experiment:
    name: str
    runs: Callable[[Context], list[RunConfig]]
    needs: tuple[str, ...] = ()

    @property
    def doc(self) -> str:
        return " ".join(self.runs.__doc__.split())


EXPERIMENTS = {
    e.name: e
    for e in (
        Experiment("lr-sweep", lr_sweep),
        Experiment("baseline", baseline, ("lr-sweep",)),
        Experiment("weight-decay", weight_decay, ("lr-sweep",)),
        Experiment("hidden-size", hidden_size, ("lr-sweep",)),
        Experiment("bias", bias, ("lr-sweep",)),
        Experiment("mse-regression", mse_regression, ("lr-sweep",)),
        Experiment("full-mnist", full_mnist, ("lr-sweep",)),
    )
}


def experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise UserError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def configs(name: str, *, tiny: bool = False, cached_only: bool = False, **run_kw) -> list[RunConfig] | None:
    """The runs of experiment `name`; with `cached_only`, None when a prerequisite is not cached yet."""

    @cache  # each run list consults its prerequisites once, not once per run
    def prerequisite(dep: str) -> list[dict]:
        if cached_only:
            found = [result_cache.load(cfg) for cfg in configs(dep, tiny=tiny, cached_only=True) or []]
            if not found or any(r is None for r in found):
                raise _NotCached
            return found
        return results(dep, tiny=tiny, **run_kw)

    try:
        return list(dict.fromkeys(experiment(name).runs(Context(tiny, prerequisite))))
    except _NotCached:
        return None


class _NotCached(Exception):
    pass


def results(name: str, *, tiny: bool = False, force: bool = False, jobs=None, data_path=None) -> list[dict]:
    """The results of every run of `name` (computing missing ones first), each with its config."""
    cfgs = configs(name, tiny=tiny, jobs=jobs, data_path=data_path)
    return runner.run(cfgs, force=force, jobs=jobs, data_path=data_path, desc=name)


def build(names: list[str], *, tiny: bool = False, force: bool = False, jobs=None, data_path=None) -> None:
    """Compute every run of `names`: prerequisites first, then all the rest in one parallel batch."""
    wanted = list(dict.fromkeys(dep for n in names for dep in (*experiment(n).needs, n)))
    first = [n for n in wanted if not experiment(n).needs]
    for group in (first, [n for n in wanted if n not in first]):
        cfgs = [cfg for n in group for cfg in configs(n, tiny=tiny, jobs=jobs, data_path=data_path)]
        if cfgs:
            runner.run(cfgs, force=force, jobs=jobs, data_path=data_path, desc=", ".join(group))

