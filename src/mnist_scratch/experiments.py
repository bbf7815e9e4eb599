"""The named experiments: each a declarative list of runs, built from the chosen hyperparameters.

`results(name)` returns an experiment's run results, computing whatever is not cached. `tiny=True`
gives the same experiments shrunk (one epoch on 500 images, one seed, the ends of each grid): the
end-to-end check CI can afford. Every experiment uses the same seeds (`SEEDS`, or the first
`SWEEP_SEEDS` of them), so a configuration that appears in two experiments is one set of runs.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from statistics import mean
from typing import Callable, Iterable

from . import results as result_cache
from . import runner
from .errors import UserError
from .store import cache_root
from .train import RunConfig

LOGISTIC, TWO_LAYER = (), (30,)
CLASSIFIERS = {"logistic regression": LOGISTIC, "784-30-10 ReLU": TWO_LAYER}
SWEEP_LRS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
SWEEP_EPOCHS = (5, 10, 20, 40)
SEEDS = (0, 1, 2, 3, 4)  # every experiment's seeds: one configuration, one set of runs, the same numbers
SWEEP_SEEDS = 3  # the sweeps average the first three
WEIGHT_DECAYS = (0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
HIDDEN_SIZES = (4, 8, 16, 30, 64, 128, 256, 512)
MSE_LRS = {
    "mse-digit": (0.001, 0.003, 0.01, 0.03),
    "mse-shuffled": (0.001, 0.003, 0.01, 0.03),
    "mse-digit-std": (0.01, 0.03, 0.1, 0.3),
    "mse-onehot": (0.1, 0.3, 1.0, 3.0),
}
MSE_LONGER, MSE_WIDER = 3, (128,)  # the regression's robustness checks: 3x the epochs, a 128-unit layer
FULL_EPOCHS = (5, 10, 20)


@dataclass(frozen=True)
class Context:
    """What an experiment's run list may depend on: the scale, and other experiments' results."""

    tiny: bool
    results: Callable[[str], list[dict]]  # summaries (no number arrays): config and final metrics
    full_results: Callable[[str], list[dict]] | None = None  # with their arrays (histories, predictions)
    chosen: dict = field(default_factory=dict, compare=False)  # `choose` per sweep, computed once

    def seeds(self, n: int = len(SEEDS)) -> tuple[int, ...]:
        return SEEDS[:1] if self.tiny else SEEDS[:n]

    def grid(self, values: tuple) -> tuple:
        return (values[0], values[-1]) if self.tiny else values

    def cfg(self, **kw) -> RunConfig:
        if self.tiny:
            kw.update(epochs=1, max_train=500 if kw.get("dataset", "subset") == "subset" else 2_000)
        return RunConfig(**kw)


def best_setting(runs: Iterable[dict], keys: tuple[str, ...]) -> tuple | None:
    """The values of `keys` whose runs (all seeds) have the highest mean final validation accuracy.

    The lower mean validation loss breaks ties, then the smaller values (a cheaper run). A setting
    where any seed diverged is skipped. None when every setting diverged (or there are no runs).
    Only the validation split is read: the held-out test split plays no part in any choice.
    """
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in runs:
        groups[tuple(r["config"][k] for k in keys)].append(r)
    scored = [
        ((mean(r["final"]["valid"]["acc"] for r in g), -mean(r["final"]["valid"]["loss"] for r in g)), setting)
        for setting, g in groups.items()
        if not any(r["diverged"] for r in g)
    ]
    if not scored:
        return None
    return max(scored, key=lambda s: (s[0], tuple(-v for v in s[1])))[1]


def choose(sweep: list[dict]) -> dict[tuple[int, ...], tuple[float, int]]:
    """The rule behind every later run: per model, the (learning rate, epochs) of the best mean validation accuracy.

    Every (learning rate, epochs) setting of the sweep is a full run of its own (with its own
    learning-rate decay) for each of the sweep's seeds; `best_setting` picks the one with the highest
    mean final validation accuracy over those seeds. Averaging over seeds keeps a lucky seed from
    choosing among settings that are within noise of each other (the optimum is a plateau).
    """
    by_model: dict[tuple[int, ...], list[dict]] = defaultdict(list)
    for r in sweep:
        by_model[tuple(r["config"]["hidden"])].append(r)
    picked = {hidden: best_setting(runs, ("lr", "epochs")) for hidden, runs in by_model.items()}
    return {hidden: setting for hidden, setting in picked.items() if setting is not None}


def stop_epoch(result: dict) -> int:
    """Early stopping's rule: the epoch (1 or later) of the run's lowest validation loss, the first if tied."""
    losses = result["history"]["valid_loss"]
    return min(range(1, len(losses)), key=losses.__getitem__)


def _chosen(ctx: Context, hidden: tuple[int, ...], sweep: str = "lr-sweep") -> dict:
    """Keyword arguments for a run at the hyperparameters `choose` picks for `hidden` (or for 784-30-10)."""
    if sweep not in ctx.chosen:
        ctx.chosen[sweep] = choose(ctx.results(sweep))
    picked = ctx.chosen[sweep]
    lr, epochs = picked.get(hidden, picked[TWO_LAYER])
    return {"lr": lr, "epochs": epochs}


def neighbours(lr: float) -> tuple[float, ...]:
    """`lr` and the sweep's rates either side of it."""
    i = SWEEP_LRS.index(lr) if lr in SWEEP_LRS else min(range(len(SWEEP_LRS)), key=lambda j: abs(SWEEP_LRS[j] - lr))
    return SWEEP_LRS[max(i - 1, 0) : i + 2]


def lr_sweep(ctx):
    """Both classifiers over log-spaced learning rates, 0.001 (too slow) to 3 (unstable), for 5 to 40 epochs, three seeds."""
    return [
        ctx.cfg(hidden=h, lr=lr, epochs=e, seed=s)
        for h in CLASSIFIERS.values()
        for lr in ctx.grid(SWEEP_LRS)
        for e in ctx.grid(SWEEP_EPOCHS)
        for s in ctx.seeds(SWEEP_SEEDS)
    ]


def baseline(ctx):
    """Both classifiers at the learning rate and epochs `choose` picks from `lr-sweep`, five seeds each."""
    return [ctx.cfg(hidden=h, seed=s, **_chosen(ctx, h)) for h in CLASSIFIERS.values() for s in ctx.seeds()]


def weight_decay(ctx):
    """Both classifiers over L2 weight decay from 0 to strong enough to hurt, five seeds each."""
    return [
        ctx.cfg(hidden=h, weight_decay=wd, seed=s, **_chosen(ctx, h))
        for h in CLASSIFIERS.values()
        for wd in ctx.grid(WEIGHT_DECAYS)
        for s in ctx.seeds()
    ]


def hidden_size(ctx):
    """784-h-10 for h from 4 to 512 at the 2-layer model's chosen epochs, five seeds each, at its chosen
    rate and the sweep's rates either side: the analysis tunes the rate per width by the same rule
    (best mean validation accuracy), so a narrow or wide network is not judged at a rate tuned for h = 30.
    """
    chosen = _chosen(ctx, TWO_LAYER)
    return [
        ctx.cfg(hidden=(h,), lr=lr, epochs=chosen["epochs"], seed=s)
        for h in ctx.grid(HIDDEN_SIZES)
        for lr in neighbours(chosen["lr"])
        for s in ctx.seeds()
    ]


def bias(ctx):
    """Both classifiers with and without biases, five seeds each."""
    return [
        ctx.cfg(hidden=h, bias=b, seed=s, **_chosen(ctx, h))
        for h in CLASSIFIERS.values()
        for b in (True, False)
        for s in ctx.seeds()
    ]


def early_stopping(ctx):
    """Both baseline classifiers stopped early: each seed's run ends after the epoch of its lowest
    validation loss (`stop_epoch`; the learning rate falls as in the full run), so that the held-out
    split can say what early stopping gives. Where the loss is lowest at the end, the run is the baseline's."""
    return [ctx.cfg(**{**r["config"], "stop_after": stop_epoch(r)}) for r in ctx.full_results("baseline")]


def mse_regression(ctx):
    """784-30-1 predicting the digit with MSE (raw and standardised targets, and the digits' values
    shuffled), the one-hot MSE control (784-30-10), and cross-entropy.

    All train for the 2-layer model's chosen number of epochs (five seeds). Each MSE objective runs
    over its own learning-rate grid, and the analysis takes, per objective, the rate `best_setting`
    picks: the same rule as for the classifiers. The cross-entropy runs are the 784-30-10 baseline's.
    """
    epochs = _chosen(ctx, TWO_LAYER)["epochs"]
    mse = [
        ctx.cfg(hidden=TWO_LAYER, objective=obj, lr=lr, epochs=epochs, seed=s)
        for obj, lrs in MSE_LRS.items()
        for lr in ctx.grid(lrs)
        for s in ctx.seeds()
    ]
    return mse + [ctx.cfg(hidden=TWO_LAYER, seed=s, **_chosen(ctx, TWO_LAYER)) for s in ctx.seeds()]


def mse_robustness(ctx):
    """The single-number regression given more room: three times the epochs, and a 128-unit hidden
    layer, each at its chosen learning rate, five seeds each. If the failure were under-training or
    too small a network, these would close the gap to the classifiers."""
    runs = [r for r in ctx.results("mse-regression") if r["config"]["objective"] == "mse-digit"]
    (lr,) = best_setting(runs, ("lr",)) or (min(MSE_LRS["mse-digit"]),)  # every rate diverged: the gentlest
    epochs = runs[0]["config"]["epochs"]
    return [
        ctx.cfg(hidden=h, objective="mse-digit", lr=lr, epochs=e, seed=s)
        for h, e in ((TWO_LAYER, epochs * MSE_LONGER), (MSE_WIDER, epochs))
        for s in ctx.seeds()
    ]


def full_sweep(ctx):
    """Both classifiers on full MNIST's 50,000 training images, tuned on its 10,000 validation images.

    The same rule as on the subset (`choose`: best mean validation accuracy over three seeds), over a
    narrower grid: the rates either side of each model's subset choice, for 5, 10 or 20 epochs (one
    epoch here is ten of the subset's, so even 5 epochs take 2.5x the subset choice's steps). The
    subset sweep already maps where the rate is too small or unstable; this grid keeps the cold build
    within minutes. The testing images play no part.
    """
    return [
        ctx.cfg(hidden=h, lr=lr, epochs=e, seed=s, dataset="full")
        for h in CLASSIFIERS.values()
        for lr in ctx.grid(neighbours(_chosen(ctx, h)["lr"]))
        for e in ctx.grid(FULL_EPOCHS)
        for s in ctx.seeds(SWEEP_SEEDS)
    ]


def full_mnist(ctx):
    """Both classifiers on full MNIST at the setting `full-sweep` chose on its validation split, five
    seeds each: the 10,000 testing images are evaluated once, here."""
    return [
        ctx.cfg(hidden=h, seed=s, dataset="full", **_chosen(ctx, h, "full-sweep"))
        for h in CLASSIFIERS.values()
        for s in ctx.seeds()
    ]


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
        Experiment("early-stopping", early_stopping, ("baseline",)),
        Experiment("weight-decay", weight_decay, ("lr-sweep",)),
        Experiment("hidden-size", hidden_size, ("lr-sweep",)),
        Experiment("bias", bias, ("lr-sweep",)),
        Experiment("mse-regression", mse_regression, ("lr-sweep",)),
        Experiment("mse-robustness", mse_robustness, ("mse-regression",)),
        Experiment("full-sweep", full_sweep, ("lr-sweep",)),
        Experiment("full-mnist", full_mnist, ("full-sweep",)),
    )
}


def experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise UserError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def configs(name: str, *, tiny: bool = False, cached_only: bool = False, **run_kw) -> list[RunConfig] | None:
    """The runs of experiment `name`; with `cached_only`, None when a prerequisite is not cached yet."""

    @cache  # each run list consults its prerequisites once, not once per run
    def prerequisite(dep: str, summary: bool = True) -> list[dict]:
        if cached_only:
            found = [result_cache.load(cfg, summary=summary) for cfg in configs(dep, tiny=tiny, cached_only=True) or []]
            if not found or any(r is None for r in found):
                raise _NotCached
            return found
        return results(dep, tiny=tiny, summary=summary, **run_kw)

    try:
        context = Context(tiny, prerequisite, lambda dep: prerequisite(dep, summary=False))
        return list(dict.fromkeys(experiment(name).runs(context)))
    except _NotCached:
        return None


class _NotCached(Exception):
    pass


_read: dict[tuple, list[dict]] = {}  # results already read in this process, per experiment and cache
_summaries: dict[tuple, list[dict]] = {}  # the same without their number arrays


def results(name: str, *, tiny: bool = False, force: bool = False, jobs=None, data_path=None,
            summary: bool = False) -> list[dict]:
    """The results of every run of `name` (computing missing ones first), each with its config.

    An experiment's results are read from the cache once per process (its prerequisites are asked
    for by every experiment that depends on them); `force` recomputes and reads them again. With
    `summary`, each without its number arrays (see `results.load`): all that choosing a setting
    reads, so an experiment's run list does not decode its prerequisites' per-step losses and weights.
    """
    key = (name, tiny, str(cache_root()), data_path)
    if not force and key in _read:
        return _read[key]
    if summary and not force and key in _summaries:
        return _summaries[key]
    cfgs = configs(name, tiny=tiny, jobs=jobs, data_path=data_path)
    found = runner.run(cfgs, force=force, jobs=jobs, data_path=data_path, desc=name, summary=summary)
    (_summaries if summary else _read)[key] = found
    return found


def build(names: list[str], *, tiny: bool = False, force: bool = False, jobs=None, data_path=None) -> None:
    """Compute every run of `names` and their prerequisites, in stages: each stage is the experiments
    whose prerequisites earlier stages computed, run in one parallel batch. `force` recomputes the
    runs of `names` only: their prerequisites are computed only where missing."""
    wanted: list[str] = []

    def want(name: str) -> None:
        for dep in experiment(name).needs:
            want(dep)
        if name not in wanted:
            wanted.append(name)

    for name in names:
        want(name)
    done: set[str] = set()
    while len(done) < len(wanted):
        stage = [n for n in wanted if n not in done and set(experiment(n).needs) <= done]
        runs = {n: configs(n, tiny=tiny, jobs=jobs, data_path=data_path) for n in stage}
        cfgs = [cfg for n in stage for cfg in runs[n]]
        forced = {cfg for n in stage if force and n in names for cfg in runs[n]}
        if cfgs:
            runner.run(cfgs, force=forced, jobs=jobs, data_path=data_path, desc=", ".join(stage))
        done |= set(stage)
