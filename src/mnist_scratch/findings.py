"""Every number the report's prose states, computed from the cached results and formatted for print.

`findings()` returns a flat dict of strings, so the report's inline expressions stay simple look-ups
(`{python} F["lr_valid_acc"]`) and a test can check that none of them is NaN.
"""

import math

import torch

from . import analysis as A
from .data import PER_DIGIT, load_split
from .experiments import EXPERIMENTS, LOGISTIC, TWO_LAYER, results
from .modules import mlp
from .tables import LECUN_LINEAR_ERROR, NIELSEN_784_30_10
from .train import N_PIXELS, generators


def load_all(**kw) -> dict[str, list[dict]]:
    """Every experiment's results, computing whatever is missing."""
    return {name: results(name, **kw) for name in EXPERIMENTS}


def _fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def findings(R: dict[str, list[dict]]) -> dict[str, str]:
    F: dict[str, str] = {}
    splits = {name: load_split(name) for name in ("train", "valid", "test")}
    F.update({f"n_{k}": f"{len(v):,}" for k, v in splits.items()})
    F["per_digit"] = str(PER_DIGIT)
    n_full = len(load_split("full-train").y)
    F["n_full_train"], F["n_full_test"] = f"{n_full:,}", f"{len(load_split('full-test').y):,}"
    F["full_data_ratio"] = f"{n_full / len(splits['train']):g}"
    F["lecun_acc"], F["nielsen_acc"] = A.pct(1 - LECUN_LINEAR_ERROR), A.pct(NIELSEN_784_30_10, 2)
    sizes = [N_PIXELS, *TWO_LAYER, 10]
    F["mlp_params"] = f"{sum(a * b + b for a, b in zip(sizes, sizes[1:])):,}"
    F["mlp_bias_params"] = str(sum(sizes[1:]))

    base = A.by(R["baseline"], "hidden")
    lr_runs, mlp_runs = base[(LOGISTIC,)], base[(TWO_LAYER,)]
    for key, runs in (("lr", lr_runs), ("mlp", mlp_runs)):
        cfg = runs[0]["config"]
        F[f"{key}_lr"], F[f"{key}_epochs"], F[f"{key}_seeds"] = f"{cfg['lr']:g}", str(cfg["epochs"]), str(len(runs))
        for split in ("train", "valid", "test"):
            F[f"{key}_{split}_acc"] = A.pm(A.final(runs, split, "acc"))
            F[f"{key}_{split}_loss"] = _fmt(_mean(A.final(runs, split, "loss")))
        F[f"{key}_init_loss"] = _fmt(_mean(A.initial_loss(runs)))
    F["ln10"] = _fmt(math.log(10), 4)
    for key, hidden in (("lr", LOGISTIC), ("mlp", TWO_LAYER)):
        F[f"{key}_init_logit_std"] = _fmt(initial_logit_std(hidden, splits["train"].x), 2)

    lr_loss, mlp_loss = (_mean(A.final(r, "valid", "loss")) for r in (lr_runs, mlp_runs))
    lr_err, mlp_err = (1 - _mean(A.final(r, "test", "acc")) for r in (lr_runs, mlp_runs))
    F["loss_reduction"] = A.pct(1 - mlp_loss / lr_loss, 0)
    F["error_reduction"] = A.pct(1 - mlp_err / lr_err, 0)
    F["lr_test_err"], F["mlp_test_err"] = A.pct(lr_err), A.pct(mlp_err)
    F["train_gap_lr"] = A.pct(_mean(A.final(lr_runs, "train", "acc")) - _mean(A.final(lr_runs, "valid", "acc")))
    F["train_gap_mlp"] = A.pct(_mean(A.final(mlp_runs, "train", "acc")) - _mean(A.final(mlp_runs, "valid", "acc")))

    F.update(_sweep(R["lr-sweep"]))
    F.update(_weight_decay(R["weight-decay"]))
    F.update(_hidden(R["hidden-size"]))
    F.update(_bias(R["bias"]))
    F.update(_full(R["full-mnist"]))
    F.update(_mse(R["mse-regression"], splits["valid"].y))
    return F


def initial_logit_std(hidden: tuple[int, ...], x: torch.Tensor, seed: int = 0) -> float:
    """Standard deviation of a freshly initialised classifier's logits on `x` (as `train` builds it)."""
    with torch.inference_mode():
        model = mlp([N_PIXELS, *hidden, 10], generator=generators(seed)[0])
        return model(x).std().item()


def _sweep(sweep: list[dict]) -> dict[str, str]:
    """How wide the sweep is, and what its ends do: the slowest rate's accuracy, the first failing rate."""
    F = {}
    for key, (name, budgets) in zip(("lr", "mlp"), A.sweep_points(sweep).items()):
        points = budgets[max(budgets)]  # the longest budget: the fairest chance for small rates
        bad = [lr for lr, loss, _ in points if loss is None or loss > math.log(10) - 0.3]  # near chance
        F[f"sweep_{key}_slow_acc"] = A.pct(points[0][2])
        F[f"sweep_{key}_fail_lr"] = f"{min(bad):g}" if bad else "none"
        F[f"sweep_{key}_fast_acc"] = A.pct(points[-1][2]) if points[-1][2] is not None else "diverged"
    failed = [r for r in sweep if A.model_name(r) == "784-30-10 ReLU" and not r["diverged"]
              and f"{r['config']['lr']:g}" == F["sweep_mlp_fail_lr"]]
    F["sweep_mlp_dead"] = A.pct(_mean([r["dead_units"][0] for r in failed]), 0) if failed else "n/a"
    runs = A.sweep_points(sweep)
    some = next(iter(runs.values()))
    F["sweep_lrs"] = ", ".join(f"{lr:g}" for lr, *_ in some[max(some)])
    F["sweep_epochs"] = ", ".join(map(str, sorted(some)))
    F["sweep_runs"] = str(len(sweep))
    return F


def _best_by(runs: list[dict], key: str) -> tuple:
    """The setting of `key` with the highest mean validation accuracy, and that accuracy."""
    groups = A.by(runs, key)
    value = max(groups, key=lambda k: _mean(A.final(groups[k], "valid", "acc")))
    return value[0], _mean(A.final(groups[value], "valid", "acc"))


def _weight_decay(runs: list[dict]) -> dict[str, str]:
    F = {}
    for key, (name, model_runs) in zip(("lr", "mlp"), A.by_model(runs).items()):
        groups = A.by(model_runs, "weight_decay")
        best, best_acc = _best_by(model_runs, "weight_decay")
        strongest = max(groups)
        F[f"wd_{key}_best"] = f"{best:g}"
        F[f"wd_{key}_best_acc"] = A.pct(best_acc, 2)
        F[f"wd_{key}_zero_acc"] = A.pct(_mean(A.final(groups[(0.0,)], "valid", "acc")), 2)
        F[f"wd_{key}_strong"] = f"{strongest[0]:g}"
        F[f"wd_{key}_strong_acc"] = A.pct(_mean(A.final(groups[strongest], "valid", "acc")), 2)
        F[f"wd_{key}_zero_gap"] = A.pct(_gap(groups[(0.0,)]))
        F[f"wd_{key}_zero_loss"] = _fmt(_mean(A.final(groups[(0.0,)], "valid", "loss")))
        F[f"wd_{key}_best_loss"] = _fmt(_mean(A.final(groups[(best,)], "valid", "loss")))
        F[f"wd_{key}_best_gap"] = A.pct(_gap(groups[(best,)]))
    return F


def _gap(runs: list[dict]) -> float:
    """Mean training minus validation accuracy: how much the model fits the training set only."""
    return _mean(A.final(runs, "train", "acc")) - _mean(A.final(runs, "valid", "acc"))


def _hidden(runs: list[dict]) -> dict[str, str]:
    groups = A.by(runs, "hidden")
    acc = {k[0][0]: _mean(A.final(g, "valid", "acc")) for k, g in groups.items()}
    best, smallest, largest = max(acc, key=acc.get), min(acc), max(acc)
    worst = min(groups[((smallest,),)], key=lambda r: r["final"]["valid"]["acc"])
    fits = [k[0][0] for k, g in groups.items() if _mean(A.final(g, "train", "acc")) >= 0.99]
    return {
        "h_memorise": str(min(fits)) if fits else "none",
        "h_smallest_worst_acc": A.pct(worst["final"]["valid"]["acc"], 0),
        "h_smallest_worst_dead": str(round(worst["dead_units"][0] * smallest)),
        "h_best": str(best), "h_best_acc": A.pct(acc[best]),
        "h_smallest": str(smallest), "h_smallest_acc": A.pct(acc[smallest]),
        "h_largest": str(largest), "h_largest_acc": A.pct(acc[largest]),
        "h_30_acc": A.pct(acc[30]) if 30 in acc else "n/a",
    }


def _bias(runs: list[dict]) -> dict[str, str]:
    F = {}
    for key, (name, model_runs) in zip(("lr", "mlp"), A.by_model(runs).items()):
        groups = A.by(model_runs, "bias")
        for b, label in ((True, "with"), (False, "without")):
            F[f"bias_{key}_{label}"] = A.pm(A.final(groups[(b,)], "valid", "acc"), digits=2)
        diff = _mean(A.final(groups[(True,)], "valid", "acc")) - _mean(A.final(groups[(False,)], "valid", "acc"))
        F[f"bias_{key}_diff"] = f"{100 * diff:+.2f}"
    return F


def _full(runs: list[dict]) -> dict[str, str]:
    F = {}
    for r in runs:
        key = "lr" if A.model_name(r) == "logistic regression" else "mlp"
        F[f"full_{key}_test"] = A.pct(r["final"]["valid"]["acc"], 2)
        F[f"full_{key}_gap"] = A.pct(r["final"]["train"]["acc"] - r["final"]["valid"]["acc"])
    return F


def _mse(runs: list[dict], labels: torch.Tensor) -> dict[str, str]:
    best = A.best_mse_runs(runs)
    F = {f"{obj.replace('-', '_')}_acc": A.pm(A.final(r, "valid", "acc")) for obj, r in best.items()}
    F.update({f"{obj.replace('-', '_')}_lr": f"{r[0]['config']['lr']:g}" for obj, r in best.items()})
    reg, ce = best["mse-digit"][0], best["cross-entropy"][0]
    for key, run in (("mse", reg), ("ce", ce)):
        dist = A.error_distance(run, labels)
        F[f"{key}_off_by_one"] = A.pct(dist["off_by_one"], 0)
        F[f"{key}_err_distance"] = _fmt(dist["mean_distance"], 2)
    F["ce_second_right"] = A.pct(A.second_choice_right(ce, labels), 0)
    s = A.shrinkage(reg, labels)
    F["mse_slope"] = _fmt(s["slope"], 2)
    F["mse_mean_0"], F["mse_mean_9"] = _fmt(s["mean_for_0"], 2), _fmt(s["mean_for_9"], 2)
    F["mse_in_between"] = str(len(A.in_between(reg, labels)))
    out = torch.tensor(reg["valid_output"])
    for a, b in ((4, 9),):
        pair = (labels == a) | (labels == b)
        mid = ((out[pair] - (a + b) / 2).abs() < 1).double().mean()
        F["mse_49_middle"] = A.pct(mid.item(), 0)
        wrong = pair & (torch.tensor(reg["valid_pred"]) != labels)
        F["mse_49_wrong"] = A.pct(wrong.sum().item() / pair.sum().item(), 0)
    F["mse_ratio_17_12"] = f"{A.pair_loss_ratio(1, 7, 2):g}"
    return F
