"""Every number the report's prose states, computed from the cached results and formatted for print.

`findings()` returns a flat dict of strings, so the report's inline expressions stay simple look-ups
(`{python} F["lr_valid_acc"]`) and a test can check that none of them is NaN. Where the data decide
a word ("supported", "within noise", "more", "fewer"), the word is computed here too.
"""

import json
import math
import platform
import subprocess
from collections import Counter
from importlib import metadata
from pathlib import Path
from statistics import mean, median

import torch

from . import analysis as A
from .data import FULL_VALID_FROM, PER_DIGIT, load_split
from .experiments import EXPERIMENTS, LOGISTIC, MSE_LRS, SWEEP_SEEDS, TWO_LAYER, results, stop_epoch
from .modules import mlp
from .objectives import DIGIT_MEAN, DIGIT_STD, SHUFFLED
from .tables import LECUN_LINEAR_ERROR, NIELSEN_784_30_10, SOFTMAX_REGRESSION
from .train import N_PIXELS, generators

KEYS = {"lr": LOGISTIC, "mlp": TWO_LAYER}
MEMORISED = 0.99  # training accuracy from which a network has fit its training set
UNUSED_BELOW = 0.001  # a hidden unit whose removal moves the validation loss less than this is not used
ENGINE_RECORD = Path(__file__).resolve().parents[2] / "benchmarks" / "engine.json"  # by bench_engine.py


def load_all(**kw) -> dict[str, list[dict]]:
    """Every experiment's results, computing whatever is missing."""
    return {name: results(name, **kw) for name in EXPERIMENTS}


def _fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}"


def _pp(x: float, digits: int = 2) -> str:
    """A difference of two accuracies in percentage points, signed."""
    return A.signed(x, digits=digits)


def findings(R: dict[str, list[dict]]) -> dict[str, str]:
    F: dict[str, str] = {}
    splits = {name: load_split(name) for name in ("train", "valid", "test")}
    labels = {name: splits[name].y for name in ("valid", "test")}
    F.update(_data(splits))
    F.update(_baseline(R["baseline"], splits, labels))
    F.update(_comparisons(R, labels))
    F.update(_losses(R, splits))
    F.update(_baselines(R["baseline"], splits, labels))
    F.update(_early(R["early-stopping"], R["baseline"], splits, labels))
    F.update(_calibration(R["baseline"], R["weight-decay"], splits))
    F.update(_sweep(R["lr-sweep"], labels["valid"]))
    F.update(_learned(R["baseline"], splits))
    F.update(_mistakes(R["baseline"], splits["valid"]))
    F.update(_weight_decay(R["weight-decay"], labels))
    F.update(_hidden(R["hidden-size"], R["baseline"], labels))
    F.update(_bias(R["bias"], splits))
    F.update(_full(R["full-sweep"], R["full-mnist"], splits["valid"]))
    F.update(_mse(R["mse-regression"], R["mse-robustness"], splits, labels))
    return F


def _fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}"


def _pp(x: float, digits: int = 2) -> str:
    """A difference of two accuracies in percentage points, signed."""
    return A.signed(x, digits=digits)


def _acc(d: dict, digits: int = 1) -> str:
    """The mean of an interval, as a percentage without the sign: '93.9'."""
    return f"{100 * d['mean']:.{digits}f}"


def _ci(d: dict, digits: int = 1, signed: bool = False) -> str:
    """An interval in percent (or percentage points, signed): '[93.3, 94.5]'."""
    if signed:
        return f"[{A.signed(d['lo'], digits=digits)}, {A.signed(d['hi'], digits=digits)}]"
    return f"[{100 * d['lo']:.{digits}f}, {100 * d['hi']:.{digits}f}]"


def _loss_ci(d: dict) -> str:
    """An interval of a difference in loss: '[-0.052, +0.003]'."""
    return f"[{A.signed(d['lo'], scale=1, digits=3)}, {A.signed(d['hi'], scale=1, digits=3)}]"


def _put(F: dict, key: str, d: dict, digits: int = 2) -> None:
    """A difference in accuracy: its value, interval and verdict under `key`, `key_ci`, `key_verdict`."""
    F[key], F[f"{key}_ci"], F[f"{key}_verdict"] = _pp(d["mean"], digits), _ci(d, digits, signed=True), d["verdict"]


def _put_loss(F: dict, key: str, d: dict) -> None:
    F[key], F[f"{key}_ci"], F[f"{key}_verdict"] = A.signed(d["mean"], scale=1, digits=3), _loss_ci(d), d["verdict"]


def _data(splits) -> dict[str, str]:
    F = {f"n_{k}": f"{len(v):,}" for k, v in splits.items()}
    F["per_digit"] = str(PER_DIGIT)
    sizes = {name: len(load_split(f"full-{name}").y) for name in ("train", "valid", "test")}
    F.update({f"n_full_{k}": f"{v:,}" for k, v in sizes.items()})
    F["full_valid_from"] = f"{FULL_VALID_FROM:,}"
    F["full_data_ratio"] = f"{sizes['train'] / len(splits['train']):g}"
    F["lecun_acc"], F["nielsen_acc"] = A.pct(1 - LECUN_LINEAR_ERROR), A.pct(NIELSEN_784_30_10, 2)
    F["softmax_acc"] = A.pct(SOFTMAX_REGRESSION, 0)
    layers = [N_PIXELS, *TWO_LAYER, 10]
    F["mlp_params"] = f"{sum(a * b + b for a, b in zip(layers, layers[1:])):,}"
    F["mlp_bias_params"] = str(sum(layers[1:]))
    F["speedup_lr"], F["speedup_mlp"], F["speedup_date"] = engine_speedup()
    test_counts = torch.bincount(splits["test"].y, minlength=10)
    F["test_digit_min"], F["test_digit_max"] = str(int(test_counts.min())), str(int(test_counts.max()))
    return F


def engine_speedup(record: Path = ENGINE_RECORD) -> tuple[str, str, str]:
    """torch.nn's time per epoch over ours (784-10, 784-30-10) and the date, from the engine
    benchmark's last run; "?" for each when it never ran or its record is unreadable."""
    try:
        run = json.loads(record.read_text())
        speed = run["speedup_vs_torch_nn"]
        return f"{float(speed['784-10']):.2f}", f"{float(speed['784-30-10']):.2f}", str(run["date"])[:10]
    except (OSError, ValueError, KeyError, TypeError):
        return "?", "?", "?"


def initial_logit_std(hidden: tuple[int, ...], x: torch.Tensor, seed: int = 0) -> float:
    """Standard deviation of a freshly initialised classifier's logits on `x` (as `train` builds it)."""
    with torch.inference_mode():
        model = mlp([N_PIXELS, *hidden, 10], generator=generators(seed)[0])
        return model(x).std().item()


def _baseline(baseline: list[dict], splits, labels) -> dict[str, str]:
    F = {}
    base = A.by(baseline, "hidden")
    for key, hidden in KEYS.items():
        runs = base[(hidden,)]
        cfg = runs[0]["config"]
        F[f"{key}_lr"], F[f"{key}_epochs"], F[f"{key}_seeds"] = f"{cfg['lr']:g}", str(cfg["epochs"]), str(len(runs))
        for split in ("valid", "test"):
            d = A.accuracy_interval(runs, split, labels[split])
            F[f"{key}_{split}_acc"], F[f"{key}_{split}_ci"] = _acc(d), _ci(d)
        F[f"{key}_train_acc"] = A.pct(mean(A.final(runs, "train", "acc")))
        for split in ("train", "valid", "test"):
            F[f"{key}_{split}_loss"] = _fmt(mean(A.final(runs, split, "loss")))
        F[f"{key}_init_loss"] = _fmt(mean(A.initial_loss(runs)))
        F[f"{key}_init_logit_std"] = _fmt(initial_logit_std(hidden, splits["train"].x), 2)
        F[f"{key}_train_gap"] = f"{100 * (mean(A.final(runs, 'train', 'acc')) - mean(A.final(runs, 'valid', 'acc'))):.1f}"
    F["ln10"] = _fmt(math.log(10), 2)
    accs = [round(100 * mean(A.final(base[(h,)], "test", "acc")), 1) for h in (LOGISTIC, TWO_LAYER)]
    F["depth_points"] = f"{accs[1] - accs[0]:.1f}"  # the difference of the two rounded accuracies as printed
    F["chance"] = A.pct(0.1, 0)
    lr_err, mlp_err = (1 - mean(A.final(base[(h,)], "test", "acc")) for h in (LOGISTIC, TWO_LAYER))
    F["error_reduction"] = A.pct(1 - mlp_err / lr_err, 0)
    dead = A.dead_counts(base[(TWO_LAYER,)])
    F["mlp_dead_counts"] = ", ".join(map(str, dead))
    F["mlp_dead_seeds"] = f"{sum(d > 0 for d in dead)} of {len(dead)}"
    # the validation loss at the chosen setting: its lowest epoch (on the mean curve) against its last
    curve, _ = A.mean_curves(base[(TWO_LAYER,)], "valid_loss")
    low = min(range(1, len(curve)), key=curve.__getitem__)
    F["mlp_loss_min_epoch"], F["mlp_loss_min"], F["mlp_loss_last"] = str(low), _fmt(curve[low]), _fmt(curve[-1])
    acc_curve, _ = A.mean_curves(base[(TWO_LAYER,)], "valid_acc")
    F["mlp_acc_at_min"], F["mlp_acc_last"] = A.pct(acc_curve[low]), A.pct(acc_curve[-1])
    F["mlp_acc_after_min"] = "still rises" if acc_curve[-1] > acc_curve[low] else "does not rise"
    return F


COMPARISON_KEYS = ["depth", "wd_lr", "wd_mlp", "bias_lr", "bias_mlp"]  # the order `A.comparisons` builds


def _comparisons(R, labels) -> dict[str, str]:
    F = {}
    cs = A.comparisons(R["baseline"], R["weight-decay"], R["bias"], labels)
    names = ["depth"] + [f"wd_{k}" for k in _model_keys(R["weight-decay"])] + [f"bias_{k}" for k in _model_keys(R["bias"])]
    if names != COMPARISON_KEYS:
        raise ValueError(f"comparisons in an unexpected order: {names}")
    for key, c in zip(names, cs):
        for split in ("valid", "test"):
            _put(F, f"cmp_{key}_{split}", c[split])
    lr_decay, mlp_decay = cs[1]["test"], cs[2]["test"]
    F["wd_lr_answer"] = ("it changes nothing measurable" if lr_decay["verdict"] == "within noise" else
                         f"it changes held-out accuracy by {_pp(lr_decay['mean'])} points, interval {_ci(lr_decay, 2, True)}")
    F["wd_mlp_answer"] = "A little" if mlp_decay["verdict"] == "supported" and mlp_decay["mean"] > 0 else "Not measurably"
    just = 0 < mlp_decay["lo"] < 0.001 or -0.001 < mlp_decay["hi"] < 0  # the interval clears 0 by less than 0.1 point
    F["wd_mlp_graded"] = mlp_decay["verdict"] + (", just" if just else "")
    verdicts = {F[f"cmp_bias_{k}_{split}_verdict"] for k in ("lr", "mlp") for split in ("valid", "test")}
    F["bias_verdicts"] = f"all four {verdicts.pop()}" if len(verdicts) == 1 else "not all alike: see the intervals"
    test_verdicts = {F[f"cmp_bias_{k}_test_verdict"] for k in ("lr", "mlp")}
    F["bias_test_verdicts"] = f"both {test_verdicts.pop()}" if len(test_verdicts) == 1 else "see the intervals"
    F["ci"] = A.pct(A.LEVEL, 0)
    F["replicates"] = f"{A.REPLICATES:,}"
    F["n_settings"] = str(len(A.settings(R["lr-sweep"], "784-30-10 ReLU")))
    return F


def _model_keys(runs: list[dict]) -> list[str]:
    return ["lr" if name == "logistic regression" else "mlp" for name in A.by_model(runs)]


def _losses(R, splits) -> dict[str, str]:
    """Is the two-layer network's loss substantially lower? At the chosen settings, at the best of the
    sweep, with weight decay and stopped early."""
    F = {}
    base = A.by(R["baseline"], "hidden")
    _put_loss(F, "loss_depth_test", A.compare_loss(base[(TWO_LAYER,)], base[(LOGISTIC,)], splits["test"]))
    for key, name in (("lr", "logistic regression"), ("mlp", "784-30-10 ReLU")):
        table = A.settings(R["lr-sweep"], name)
        (lr, epochs), best = min(((k, v["loss"]) for k, v in table.items() if v["loss"] is not None), key=lambda kv: kv[1])
        F[f"sweep_{key}_best_loss"], F[f"sweep_{key}_best_loss_at"] = _fmt(best), f"rate {lr:g}, {epochs} epochs"
    decay = A.by_model(R["weight-decay"])["784-30-10 ReLU"]
    best = A.by(decay, "weight_decay")[(A.best_decay(decay),)]
    _put_loss(F, "loss_decay_vs_lr_test", A.compare_loss(best, base[(LOGISTIC,)], splits["test"]))
    _put_loss(F, "loss_decay_vs_none_test", A.compare_loss(best, A.by(decay, "weight_decay")[(0.0,)], splits["test"]))
    F["loss_decay_test"] = _fmt(mean(A.final(best, "test", "loss")))
    stopped = A.by(R["early-stopping"], "hidden")[(TWO_LAYER,)]
    _put_loss(F, "loss_stopped_vs_lr_test", A.compare_loss(stopped, base[(LOGISTIC,)], splits["test"]))
    F["loss_stopped_test"] = _fmt(mean(A.final(stopped, "test", "loss")))
    return F


def _baselines(baseline: list[dict], splits, labels) -> dict[str, str]:
    """Chance and the nearest-class-mean ("pixel similarity") classifier, against the trained models."""
    F = {}
    for split in ("valid", "test"):
        right = (A.nearest_mean(splits["train"], splits[split]) == labels[split]).double()
        d = A.mean_interval(right)
        F[f"ncm_{split}_acc"], F[f"ncm_{split}_ci"] = _acc(d), _ci(d)
        if split == "test":
            runs = A.by(baseline, "hidden")[(LOGISTIC,)]
            lr = A.correct(runs, "test", labels["test"])
            _put(F, "lr_vs_ncm_test", A.difference(lr, right.expand_as(lr)), digits=1)
    F["chance_acc"] = "10"
    return F


def baseline_rows(baseline: list[dict], splits) -> list[tuple[str, dict, dict]]:
    """The baselines table's rows: guessing (exactly one in ten), the nearest class mean (no seed:
    its interval counts the images only) and both models, each with held-out and validation accuracy."""
    guess = {"mean": 0.1, "lo": 0.1, "hi": 0.1}
    rows = [("guessing", guess, guess)]
    nearest = {split: (A.nearest_mean(splits["train"], splits[split]) == splits[split].y).double() for split in ("test", "valid")}
    rows.append(("nearest class mean", A.mean_interval(nearest["test"]), A.mean_interval(nearest["valid"])))
    base = A.by(baseline, "hidden")
    for name, hidden in (("logistic regression", LOGISTIC), ("784-30-10 ReLU", TWO_LAYER)):
        runs = base[(hidden,)]
        rows.append((name, *(A.accuracy_interval(runs, split, splits[split].y) for split in ("test", "valid"))))
    return rows


def _early(stopped: list[dict], baseline: list[dict], splits, labels) -> dict[str, str]:
    """Early stopping: each seed's run kept at the epoch of its lowest validation loss."""
    F = {}
    base, early = A.by(baseline, "hidden"), A.by(stopped, "hidden")
    for key, hidden in KEYS.items():
        full, cut = base[(hidden,)], early[(hidden,)]
        epochs = [stop_epoch(r) for r in sorted(full, key=lambda r: r["config"]["seed"])]
        F[f"stop_{key}_epochs"] = ", ".join(map(str, epochs))
        F[f"stop_{key}_range"] = f"{min(epochs)}–{max(epochs)}" if min(epochs) < max(epochs) else str(epochs[0])
        F[f"stop_{key}_all_end"] = "yes" if all(e == full[0]["config"]["epochs"] for e in epochs) else "no"
        F[f"stop_{key}_acc"] = A.pct(mean(A.final(cut, "test", "acc")))
        F[f"stop_{key}_loss"] = _fmt(mean(A.final(cut, "test", "loss")))
        acc, loss = A.compare(cut, full, "test", labels["test"]), A.compare_loss(cut, full, splits["test"])
        _put(F, f"stop_{key}_vs_full", acc)
        _put_loss(F, f"stop_{key}_loss_vs_full", loss)
        lower = "a lower" if loss["hi"] < 0 else "no clearly lower"
        F[f"stop_{key}_tradeoff"] = (f"stopping early buys {lower} loss at a cost in accuracy" if acc["hi"] < 0 else
                                     f"stopping early buys {lower} loss and costs no accuracy we can measure"
                                     if acc["lo"] <= 0 else f"stopping early gives {lower} loss and more accuracy")
    return F


def early_stopping_rows(stopped: list[dict], baseline: list[dict]) -> list[dict]:
    """The early-stopping table's rows: per model, the stopping epochs and the held-out numbers."""
    base, early = A.by(baseline, "hidden"), A.by(stopped, "hidden")
    rows = []
    for name, hidden in (("logistic", LOGISTIC), ("784-30-10", TWO_LAYER)):
        full, cut = base[(hidden,)], early[(hidden,)]
        epochs = [stop_epoch(r) for r in sorted(full, key=lambda r: r["config"]["seed"])]
        rows.append({"model": name, "epochs": f"{', '.join(map(str, epochs))} of {full[0]['config']['epochs']}",
                     "acc_full": A.pct(mean(A.final(full, "test", "acc"))), "acc_stopped": A.pct(mean(A.final(cut, "test", "acc"))),
                     "loss_full": _fmt(mean(A.final(full, "test", "loss"))), "loss_stopped": _fmt(mean(A.final(cut, "test", "loss")))})
    return rows


def calibration_rows(baseline: list[dict], decay: list[dict], valid) -> list[tuple[str, dict]]:
    """The calibration of both classifiers and of the network with its best weight decay, over every
    validation image of every seed."""
    base = A.by(baseline, "hidden")
    mlp_decay = A.by_model(decay)["784-30-10 ReLU"]
    best = A.best_decay(mlp_decay)
    models = [("logistic", base[(LOGISTIC,)]), ("784-30-10", base[(TWO_LAYER,)]),
              (f"784-30-10, decay {best:g}", A.by(mlp_decay, "weight_decay")[(best,)])]
    return [(name, A.calibration(A.seed_probabilities(runs, valid.x), valid.y)) for name, runs in models]


def _calibration(baseline: list[dict], decay: list[dict], splits) -> dict[str, str]:
    F = {}
    valid = splits["valid"]
    for key, (_, c) in zip(("lr", "mlp", "mlp_wd"), calibration_rows(baseline, decay, valid)):
        F[f"cal_{key}_conf"], F[f"cal_{key}_acc"] = A.pct(c["confidence"]), A.pct(c["accuracy"])
        F[f"cal_{key}_ece"] = _fmt(c["ece"])
        F[f"cal_{key}_confident"] = A.pct(c["confident_errors"], 0)
        F[f"cal_{key}_side"] = "over-confident" if c["confidence"] > c["accuracy"] else "under-confident"
    F["confident_level"] = f"{A.CONFIDENT:g}"
    mlp_decay = A.by_model(decay)["784-30-10 ReLU"]
    groups = A.by(mlp_decay, "weight_decay")
    best = groups[(A.best_decay(mlp_decay),)]
    seeds = A.shared_seeds(best, groups[(0.0,)])
    over = [A.overconfidence(A.seed_probabilities(g, valid.x, seeds), valid.y) for g in (best, groups[(0.0,)])]
    _put(F, "cal_decay_overconfidence", A.difference(*over), digits=1)
    _put(F, "cal_mlp_overconfidence", A.mean_interval(over[1]), digits=1)
    return F


def _sweep(sweep: list[dict], valid_labels) -> dict[str, str]:
    """How wide the sweep is, the plateau around each choice, and what its ends do."""
    F = {}
    F["sweep_seeds"] = str(SWEEP_SEEDS)
    for key, name in (("lr", "logistic regression"), ("mlp", "784-30-10 ReLU")):
        table = A.settings(sweep, name)
        top = A.plateau(sweep, name, valid_labels)
        F[f"plateau_{key}_n"] = str(len(top["settings"]))
        F[f"plateau_{key}_best"] = A.pct(top["best"], 2)
        F[f"plateau_{key}_list"] = "; ".join(f"{lr:g}/{e}" for lr, e in top["settings"])
        lrs = sorted({lr for lr, _ in table})
        longest = max(e for _, e in table)
        F[f"sweep_{key}_slow_acc"] = A.pct(table[(lrs[0], longest)]["acc"])
        fast = table[(lrs[-1], longest)]["acc"]
        F[f"sweep_{key}_fast_acc"] = A.pct(fast) if fast is not None else "diverged"
        F[f"sweep_{key}_diverged"] = str(sum(v["acc"] is None for v in table.values()))
    F["sweep_lrs"] = ", ".join(f"{lr:g}" for lr in lrs)
    F["sweep_epochs"] = ", ".join(str(e) for e in sorted({e for _, e in table}))
    F["sweep_runs"] = str(len(sweep))
    F["sweep_longest"] = str(longest)

    # the two-layer network at large rates: dead units, measured over training
    mlp_runs = [r for r in sweep if tuple(r["config"]["hidden"]) == TWO_LAYER]
    by_lr = A.by(mlp_runs, "lr")
    top_lr, next_lr = sorted(by_lr)[-1][0], sorted(by_lr)[-2][0]
    F["fast_lr"], F["next_lr"] = f"{top_lr:g}", f"{next_lr:g}"
    top_runs = by_lr[(top_lr,)]
    all_dead = [r for r in top_runs if not r["diverged"] and r["dead_units"][0] == 1.0]
    F["fast_all_dead"] = f"{len(all_dead)} of {len(top_runs)}"
    F["fast_loss_gap"] = f"{max(abs(r['final']['valid']['loss'] - math.log(10)) for r in all_dead):.4f}"
    steps, shares = A.dead_trace([r for r in top_runs if r["config"]["epochs"] == 20])
    F["fast_dead_step4"] = A.pct(shares[steps.index(4)], 0)
    F["fast_half_dead_step"] = str(A.first_step_reaching(steps, shares, 0.5))
    F["fast_all_dead_step"] = str(A.first_step_reaching(steps, shares, 1.0))
    nxt = [r for r in by_lr[(next_lr,)] if not r["diverged"]]
    dead = [r["dead_units"][0] for r in nxt]
    accs = [r["final"]["valid"]["acc"] for r in nxt]
    losses = [r["final"]["valid"]["loss"] for r in nxt]
    F["next_dead_range"] = f"{100 * min(dead):.0f}–{100 * max(dead):.0f}%"
    F["next_acc_range"] = f"{100 * min(accs):.0f}–{100 * max(accs):.0f}%"
    F["next_loss_range"] = f"{min(losses):.2f}–{max(losses):.2f}"
    steps, shares = A.dead_trace([r for r in nxt if r["config"]["epochs"] == 20])
    epoch_steps = steps[-1] // 20
    F["next_dead_epoch1"] = A.pct(shares[steps.index(epoch_steps)], 0)
    F["next_dead_end"] = A.pct(shares[-1], 0)
    # the two-layer network at its chosen rate: longer training, higher loss, flat accuracy
    best_lr = A.chosen(sweep)["784-30-10 ReLU"][0]
    mlp_table = A.settings(sweep, "784-30-10 ReLU")
    shortest = min(e for _, e in mlp_table)
    F["rate_lr"] = f"{best_lr:g}"
    F["rate_short"], F["rate_long"] = str(shortest), str(longest)
    F["rate_loss_short"], F["rate_loss_long"] = (_fmt(mlp_table[(best_lr, e)]["loss"]) for e in (shortest, longest))
    F["rate_acc_short"], F["rate_acc_long"] = (A.pct(mlp_table[(best_lr, e)]["acc"], 2) for e in (shortest, longest))
    return F


def _learned(baseline: list[dict], splits) -> dict[str, str]:
    F = {}
    base = A.by(baseline, "hidden", "seed")
    (w, _), = A.layers(base[((), 0)][0])
    readings = A.template_reading(w, A.class_means(splits["train"]))
    F["tpl_centre_punishers"] = ", ".join(str(r["digit"]) for r in readings if r["punishes"] == "centre") or "none"
    lowest = Counter((r["digit"], r["lowest"]) for r in readings)
    mutual = sorted({tuple(sorted(p)) for p in lowest if (p[1], p[0]) in lowest})
    F["tpl_mutual"] = ", ".join(f"{a} and {b}" for a, b in mutual) or "none"
    counts, effects = [], []
    for seed in sorted({s for (h, s) in base if h == TWO_LAYER}):
        run = base[(TWO_LAYER, seed)][0]
        kinds = A.unit_kinds(run, splits["train"].x)
        counts.append(Counter(kinds))
        effects += zip(kinds, A.ablation(run, splits["valid"])["loss"].tolist())
    first = counts[0]
    for kind in ("stroke", "blob", "noise", "dead"):
        F[f"units_{kind}"] = str(first[kind])
        F[f"units_{kind}_range"] = f"{min(c[kind] for c in counts)}–{max(c[kind] for c in counts)}"
        rises = [e for k, e in effects if k == kind]
        F[f"units_{kind}_total"] = str(len(rises))
        F[f"units_{kind}_unused"] = str(sum(abs(e) < UNUSED_BELOW for e in rises))
        F[f"units_{kind}_max_rise"] = _fmt(max(rises), 4) if rises else "none"
    F["units_seeds"] = str(len(counts))
    F["units_total"] = str(len(effects))
    F["unused_below"] = f"{UNUSED_BELOW:g}"
    F["units_top_rise"] = _fmt(max(e for _, e in effects), 2)
    F["noise_below"], F["stroke_from"] = f"{A.NOISE_BELOW:g}", f"{A.STROKE_FROM:g}"
    seed0 = base[(TWO_LAYER, 0)][0]
    (w, _), *_ = A.layers(seed0)
    ink = A.ink_mask(splits["train"].x)
    trained = [A.neighbour_correlation(row.reshape(28, 28), ink) for row, kind in
               zip(w, A.unit_kinds(seed0, splits["train"].x)) if kind in ("stroke", "blob")]
    F["units_min_corr"] = _fmt(min(trained), 2)
    return F


def _mistakes(baseline: list[dict], valid) -> dict[str, str]:
    F = {}
    base = A.by(baseline, "hidden")
    worst = A.top_losses(A.by(baseline, "hidden", "seed")[(TWO_LAYER, 0)][0], valid, 16)
    F["top_sure"] = str(sum(t["prob"] >= A.CONFIDENT for t in worst))
    F["top_min_prob"] = f"{min(t['prob'] for t in worst):.2f}"
    for key, hidden in KEYS.items():
        pairs = A.error_pairs(base[(hidden,)], "test")
        top3 = pairs[:3]
        F[f"pairs_{key}"] = ", ".join(f"{a}/{b} ({100 * p['share']:.0f}%)" for (a, b), p in ((p["pair"], p) for p in top3))
        F[f"pairs_{key}_share3"] = A.pct(sum(p["share"] for p in top3), 0)
        digits = A.per_digit_accuracy(base[(hidden,)], "test")
        worst_digit = min(range(10), key=lambda d: digits[d][0])
        best_digit = max(range(10), key=lambda d: digits[d][0])
        F[f"digit_{key}_worst"], F[f"digit_{key}_worst_acc"] = str(worst_digit), A.pct(digits[worst_digit][0])
        F[f"digit_{key}_best"], F[f"digit_{key}_best_acc"] = str(best_digit), A.pct(digits[best_digit][0])
    return F


def _weight_decay(runs: list[dict], labels) -> dict[str, str]:
    F = {}
    for key, (name, model_runs) in zip(_model_keys(runs), A.by_model(runs).items()):
        groups = A.by(model_runs, "weight_decay")
        best = A.best_decay(model_runs)
        strongest = max(groups)[0]
        F[f"wd_{key}_best"] = f"{best:g}"
        for label, wd in (("best", best), ("zero", 0.0), ("strong", strongest)):
            g = groups[(wd,)]
            F[f"wd_{key}_{label}_acc"] = A.pct(mean(A.final(g, "valid", "acc")))
            F[f"wd_{key}_{label}_test"] = A.pct(mean(A.final(g, "test", "acc")))
            F[f"wd_{key}_{label}_loss"] = _fmt(mean(A.final(g, "valid", "loss")))
            F[f"wd_{key}_{label}_gap"] = f"{100 * (mean(A.final(g, 'train', 'acc')) - mean(A.final(g, 'valid', 'acc'))):.1f}"
        F[f"wd_{key}_strong"] = f"{strongest:g}"
        lowest = min(groups, key=lambda k: mean(A.final(groups[k], "valid", "loss")))[0]
        F[f"wd_{key}_lowest_loss_at"] = f"{lowest:g}"
        F[f"wd_{key}_lowest_loss"] = _fmt(mean(A.final(groups[(lowest,)], "valid", "loss")))
    return F


def _hidden(all_runs: list[dict], baseline: list[dict], labels) -> dict[str, str]:
    """Hidden size, each width at its own tuned rate, and what the rate tuned for 30 units gave instead."""
    F = {}
    own = A.at_own_rate(all_runs)
    widths = sorted(own)
    base_lr = A.by(baseline, "hidden")[(TWO_LAYER,)][0]["config"]["lr"]
    F["h_base_lr"] = f"{base_lr:g}"
    F["h_smallest"], F["h_largest"] = str(widths[0]), str(widths[-1])
    F["h_grid"] = ", ".join(map(str, widths))
    F["h_rates"] = ", ".join(f"{r['config']['lr']:g}" for r in (own[h][0] for h in widths))
    F["h_retuned"] = ", ".join(str(h) for h in widths if own[h][0]["config"]["lr"] != base_lr) or "none"
    for h in widths:
        d = A.accuracy_interval(own[h], "test", labels["test"])
        F[f"h_{h}_test"], F[f"h_{h}_ci"] = _acc(d), _ci(d)
        F[f"h_{h}_lr"] = f"{own[h][0]['config']['lr']:g}"
        F[f"h_{h}_train"] = A.pct(mean(A.final(own[h], "train", "acc")))
    _put(F, "h_gain", A.compare(own[widths[-1]], own[30], "test", labels["test"]), digits=1)
    _put(F, "h_gain_64", A.compare(own[widths[-1]], own[64], "test", labels["test"]), digits=1)
    fits = [h for h in widths if mean(A.final(own[h], "train", "acc")) >= MEMORISED]
    F["h_memorise"] = str(min(fits)) if fits else "none"
    F["memorise_level"] = A.pct(MEMORISED, 0)
    # the narrow widths at the rate tuned for 30 units, against their own
    by_width = A.by(all_runs, "hidden")
    for h in widths[:2]:
        at_base = A.at_rate(by_width[((h,),)], base_lr)
        F[f"h_{h}_at_base"] = A.pm(A.final(at_base, "valid", "acc"), digits=1)
        F[f"h_{h}_own_valid"] = A.pm(A.final(own[h], "valid", "acc"), digits=1)
        F[f"h_{h}_at_base_seeds"] = " / ".join(f"{100 * r['final']['valid']['acc']:.1f}"
                                               for r in sorted(at_base, key=lambda r: r["config"]["seed"]))
        F[f"h_{h}_at_base_dead"] = " / ".join(map(str, A.dead_counts(sorted(at_base, key=lambda r: r["config"]["seed"]))))
        _put(F, f"h_{h}_own_vs_base", A.compare(own[h], at_base, "valid", labels["valid"]), digits=1)
    return F


def _bias(runs: list[dict], splits) -> dict[str, str]:
    F = {}
    for key, (name, model_runs) in zip(_model_keys(runs), A.by_model(runs).items()):
        groups = A.by(model_runs, "bias")
        # the cone argument, checked: fold the first layer's bias into the mean-image direction
        folded = [A.accuracy(A.fold_first_bias(r, splits["train"].x), splits["valid"]) for r in groups[(True,)]]
        kept = [r["final"]["valid"]["acc"] for r in groups[(True,)]]
        F[f"fold_{key}_change"] = _pp(mean(f - k for f, k in zip(folded, kept)))
        F[f"fold_{key}_worst"] = _pp(min(f - k for f, k in zip(folded, kept)))
    c = A.cone(splits["train"].x)
    F["cone_cos_min"], F["cone_cos_median"] = (_fmt(c[k], 2) for k in ("cos_min", "cos_median"))
    F["cone_angle_max"] = f"{math.degrees(math.acos(c['cos_min'])):.0f}"
    F["cone_cv"] = A.pct(c["cv"], 0)
    return F


def _full(sweep: list[dict], full: list[dict], subset_valid) -> dict[str, str]:
    F = {}
    test = load_split("full-test")
    seen = A.seen_by_subset(test.paths, subset_valid.paths)
    F["full_seen"], F["full_unseen"] = f"{int(seen.sum()):,}", f"{int((~seen).sum()):,}"
    valid_labels = load_split("full-valid").y
    for key, (name, runs) in zip(_model_keys(full), A.by_model(full).items()):
        cfg = runs[0]["config"]
        F[f"full_{key}_lr"], F[f"full_{key}_epochs"] = f"{cfg['lr']:g}", str(cfg["epochs"])
        right = A.correct(runs, "test", test.y)
        d = A.mean_interval(right)
        F[f"full_{key}_test"], F[f"full_{key}_ci"] = _acc(d, 2), _ci(d, 2)
        F[f"full_{key}_unseen"] = _acc(A.mean_interval(right[:, ~seen]), 2)
        F[f"full_{key}_seen"] = _acc(A.mean_interval(right[:, seen]), 2)
        _put(F, f"full_{key}_seen_gap", A.group_difference(right, seen, ~seen))
        F[f"full_{key}_gap"] = f"{100 * (mean(A.final(runs, 'train', 'acc')) - mean(A.final(runs, 'test', 'acc'))):.1f}"
        top = A.plateau(sweep, name, valid_labels)
        F[f"full_{key}_plateau_n"] = str(len(top["settings"]))
        F[f"full_{key}_plateau_list"] = "; ".join(f"{lr:g}/{e}" for lr, e in top["settings"])
    F["full_sweep_runs"] = str(len(sweep))
    epochs = sorted({r["config"]["epochs"] for r in sweep})
    F["full_sweep_epochs"] = ", ".join(map(str, epochs))
    for key, (name, runs) in zip(_model_keys(sweep), A.by_model(sweep).items()):
        grid = sorted({r["config"]["lr"] for r in runs})
        F[f"full_{key}_grid"] = ", ".join(f"{lr:g}" for lr in grid)
        lr, e = A.chosen(sweep)[name]
        F[f"full_{key}_rate_edge"] = ("the largest rate in its grid" if lr == grid[-1] else
                                      "the smallest rate in its grid" if lr == grid[0] else "inside its grid")
        F[f"full_{key}_epoch_edge"] = "the longest in the grid" if e == max(epochs) else "inside the grid"
    lr_acc = mean(A.final([r for r in full if not r["config"]["hidden"]], "test", "acc"))
    F["full_lr_vs_lecun"] = "above" if lr_acc > 1 - LECUN_LINEAR_ERROR else "below"
    F["full_lr_vs_softmax"] = "close to" if abs(lr_acc - SOFTMAX_REGRESSION) < 0.01 else ("above" if lr_acc > SOFTMAX_REGRESSION else "below")
    mlp_acc = mean(A.final([r for r in full if r["config"]["hidden"]], "test", "acc"))
    F["full_mlp_vs_nielsen"] = "above" if mlp_acc > NIELSEN_784_30_10 else "below"
    return F


def _mse(runs: list[dict], robust: list[dict], splits, labels) -> dict[str, str]:
    F = {}
    valid = splits["valid"]
    best = A.best_mse_runs(runs)
    for obj, r in best.items():
        key = obj.replace("-", "_")
        d = A.accuracy_interval(r, "test", labels["test"])
        F[f"{key}_test"], F[f"{key}_ci"] = _acc(d), _ci(d)
        F[f"{key}_valid"] = A.pct(mean(A.final(r, "valid", "acc")))
        F[f"{key}_lr"] = f"{r[0]['config']['lr']:g}"
        F[f"{key}_init_loss"] = _fmt(mean(A.initial_loss(r)), 2)
    edge = [obj for obj, lrs in MSE_LRS.items() if best[obj][0]["config"]["lr"] in (min(lrs), max(lrs))]
    F["mse_grid_note"] = ("every objective's chosen rate lies inside its grid" if not edge else
                          f"the chosen rate of {', '.join(edge)} lies at the end of its grid")
    F["mse_expected_init"] = _fmt(mean(d * d for d in range(10)), 1)  # E[y^2] with the output near 0
    F["mse_std_expected_init"] = _fmt(mean(((d - DIGIT_MEAN) / DIGIT_STD) ** 2 for d in range(10)), 1)
    for (hidden, epochs), r in A.by(robust, "hidden", "epochs").items():
        key = "wider" if hidden != TWO_LAYER else "longer"
        F[f"mse_{key}_test"] = _acc(A.accuracy_interval(r, "test", labels["test"]))
        F[f"mse_{key}_epochs"], F[f"mse_{key}_h"] = str(epochs), str(hidden[0])
    variants = [best["mse-digit-std"], *A.by(robust, "hidden", "epochs").values()]
    closest = max(variants, key=lambda v: mean(A.final(v, "test", "acc")))
    _put(F, "mse_gap_min", A.compare(best["cross-entropy"], closest, "test", labels["test"]), digits=0)
    _put(F, "mse_ce_vs_digit", A.compare(best["cross-entropy"], best["mse-digit"], "test", labels["test"]), digits=1)
    _put(F, "mse_ce_vs_onehot", A.compare(best["cross-entropy"], best["mse-onehot"], "test", labels["test"]), digits=1)
    shuffle = A.compare(best["mse-shuffled"], best["mse-digit"], "test", labels["test"])
    _put(F, "mse_shuffled_vs_digit", shuffle, digits=1)
    F["shuffled_order"] = ("the natural order of the digits is no help" if shuffle["hi"] >= 0 else
                           "the natural order helps a little, but not enough")

    # where the errors fall: along the number line, whatever digits sit on it
    y = labels["valid"]
    dists = {"mse": [A.error_distance(r, y) for r in best["mse-digit"]],
             "ce": [A.error_distance(r, y) for r in best["cross-entropy"]],
             "shuffled_digit": [A.error_distance(r, y) for r in best["mse-shuffled"]],
             "shuffled_value": [A.error_distance(r, y, SHUFFLED) for r in best["mse-shuffled"]]}
    for key, ds in dists.items():
        F[f"{key}_off_by_one"] = A.pct(mean(d["off_by_one"] for d in ds), 0)
        F[f"{key}_err_distance"] = _fmt(mean(d["mean_distance"] for d in ds), 2)
    even = A.even_errors()
    F["even_off_by_one"], F["even_err_distance"] = A.pct(even["off_by_one"], 0), _fmt(even["mean_distance"], 2)
    F["shuffled_map"] = ", ".join(f"{d}→{v}" for d, v in enumerate(SHUFFLED))
    F["shuffled_4"] = str(SHUFFLED[4])
    F["ce_second_right"] = A.pct(mean(A.second_choice_right(r, y) for r in best["cross-entropy"]), 0)
    reg, ce = A.by_seed(best["mse-digit"]), A.by_seed(best["cross-entropy"])
    F["mse_slope"] = _fmt(mean(A.fitted_line(reg[s], y)[1] for s in reg), 2)
    # each claim's grade, from its interval over seeds and images
    off = {name: _off_by_one(best[obj], y, values) for name, obj, values in
           (("mse", "mse-digit", range(10)), ("ce", "cross-entropy", range(10)), ("shuffled_value", "mse-shuffled", SHUFFLED))}
    for name, (hits, wrong) in off.items():
        _put(F, f"{name}_off_vs_even", A.share_interval(hits, wrong, even["off_by_one"]), digits=0)
    F["ce_even_word"] = "close to" if F["ce_off_vs_even_verdict"] == "within noise" else "unlike"
    seconds = A.by_seed(best["cross-entropy"])
    preds = torch.stack([torch.tensor(seconds[s]["valid_pred"]) for s in sorted(seconds)])
    second = torch.stack([torch.tensor(seconds[s]["valid_second"]) for s in sorted(seconds)])
    _put(F, "second_vs_chance", A.share_interval(second == y, preds != y, 1 / 9), digits=0)
    F["second_chance"] = A.pct(1 / 9, 0)
    outputs = torch.stack([torch.tensor(reg[s]["valid_output"], dtype=torch.float64) for s in sorted(reg)])
    shrink = A.slope_interval(y.double().expand_as(outputs), outputs, 1.0)
    F["mse_slope_ci"] = f"[{shrink['lo'] + 1:.2f}, {shrink['hi'] + 1:.2f}]"
    F["mse_slope_verdict"] = shrink["verdict"]
    F["mse_ratio_17_12"] = f"{A.pair_loss_ratio(1, 7, 2):g}"

    # does the regression lean towards the digit the classifier sees? per image, all seeds
    seeds = A.shared_seeds(best["mse-digit"], best["cross-entropy"])
    leans = [A.lean(reg[s], y, A.probabilities(ce[s], valid.x)) for s in seeds]
    toward, unsure, sure = (torch.stack([le[k] for le in leans]).double() for k in ("toward", "unsure", "sure"))
    per_seed = [(le["toward"][le["unsure"]].double().mean().item(), le["toward"][le["sure"]].double().mean().item())
                for le in leans]
    F["lean_level"], F["lean_sure_level"] = A.pct(A.UNSURE, 0), A.pct(A.SURE, 0)
    F["lean_unsure_range"] = f"{100 * min(u for u, _ in per_seed):.0f}–{100 * max(u for u, _ in per_seed):.0f}%"
    F["lean_sure_range"] = f"{100 * min(s for _, s in per_seed):.0f}–{100 * max(s for _, s in per_seed):.0f}%"
    F["lean_unsure_share"] = A.pct(unsure.mean().item(), 0)
    _put(F, "lean_diff", A.group_difference(toward, unsure.bool(), sure.bool()), digits=0)
    shift = torch.cat([le["shift"][le["unsure"]] for le in leans])
    F["lean_shift"] = _fmt(shift.median().item(), 2)
    F["lean_spread"] = _fmt(median(le["spread"] for le in leans), 2)

    # why squared error on one-hot targets trails cross-entropy: where its training loss goes
    x, t = splits["train"].x, splits["train"].y
    shares, train_accs = [], []
    for r in best["mse-onehot"]:
        out, _ = A.forward(A.layers(r), x)
        loss = ((out.double() - torch.eye(10, dtype=torch.float64)[t]) ** 2).mean(1)
        right = out.argmax(1) == t
        shares.append((loss[right].sum() / loss.sum()).item())
        train_accs.append(right.double().mean().item())
    F["onehot_right_share"] = A.pct(mean(shares), 0)
    F["onehot_train_acc"] = A.pct(mean(train_accs))
    F["ce_train_acc"] = A.pct(mean(A.final(best["cross-entropy"], "train", "acc")))
    m, s = A.onehot_sums(best["mse-onehot"][0], valid.x)
    F["onehot_sum"], F["onehot_sum_sd"] = _fmt(m, 2), _fmt(s, 2)
    return F


def _off_by_one(runs: list[dict], labels: torch.Tensor, values) -> tuple[torch.Tensor, torch.Tensor]:
    """S x N booleans over the seeds' validation images: the errors one value apart (in `values`,
    the digits' values as trained), and the errors."""
    value = torch.tensor(list(values))
    preds = torch.stack([torch.tensor(r["valid_pred"]) for r in sorted(runs, key=lambda r: r["config"]["seed"])])
    wrong = preds != labels
    return wrong & ((value[preds] - value[labels]).abs() == 1), wrong


def environment() -> dict[str, str]:
    """What rendered this report: versions, the commit, and the key of the engine code in the result cache."""
    from . import results

    root = Path(__file__).resolve().parents[2]
    env = {"Python": platform.python_version()}
    for package in ("torch", "fastai", "numpy", "matplotlib"):
        try:
            env[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            env[package] = "not installed"
    env["Quarto"] = _quarto_version()
    env["git commit"] = _git(root)
    env["engine code key"] = results.code_version()[:12]
    return env


def _quarto_version() -> str:
    """The version of the Quarto rendering this document (Quarto sets QUARTO_SHARE_PATH), else of `quarto` on PATH."""
    import os
    import shutil

    share = os.environ.get("QUARTO_SHARE_PATH")
    if share and (Path(share) / "version").is_file():
        return (Path(share) / "version").read_text().strip()
    quarto = shutil.which("quarto")
    if quarto:
        try:
            done = subprocess.run([quarto, "--version"], capture_output=True, text=True, timeout=60)
            return done.stdout.strip() + " (on PATH; not rendering)"
        except (OSError, subprocess.SubprocessError):
            pass
    return "not rendering under Quarto"


def _git(root: Path) -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, timeout=30)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
                               text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    if head.returncode:
        return "unknown (not a git checkout)"
    return head.stdout.strip() + (" with uncommitted changes" if dirty.stdout.strip() else "")
