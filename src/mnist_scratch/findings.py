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
from statistics import mean

import torch

from . import analysis as A
from .data import FULL_VALID_FROM, PER_DIGIT, load_split
from .experiments import EXPERIMENTS, LOGISTIC, MSE_LRS, SWEEP_SEEDS, TWO_LAYER, results
from .modules import mlp
from .objectives import DIGIT_MEAN, DIGIT_STD
from .tables import LECUN_LINEAR_ERROR, NIELSEN_784_30_10, SOFTMAX_REGRESSION
from .train import N_PIXELS, generators

KEYS = {"lr": LOGISTIC, "mlp": TWO_LAYER}
CONFIDENT = 0.9  # a mistake made with at least this probability is a confident one
MEMORISED = 0.99  # training accuracy from which a network has fit its training set
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
    F.update(_data(splits))
    F.update(_baseline(R["baseline"], splits))
    F.update(_comparisons(R, splits["test"].y))
    F.update(_sweep(R["lr-sweep"], len(splits["valid"])))
    F.update(_learned(R["baseline"], splits))
    F.update(_mistakes(R["baseline"], splits["valid"]))
    F.update(_weight_decay(R["weight-decay"]))
    F.update(_hidden(R["hidden-size"]))
    F.update(_bias(R["bias"], splits))
    F.update(_full(R["full-sweep"], R["full-mnist"], R["baseline"]))
    F.update(_mse(R["mse-regression"], R["mse-robustness"], splits))
    return F


def _data(splits) -> dict[str, str]:
    F = {f"n_{k}": f"{len(v):,}" for k, v in splits.items()}
    F["per_digit"] = str(PER_DIGIT)
    sizes = {name: len(load_split(f"full-{name}").y) for name in ("train", "valid", "test")}
    F.update({f"n_full_{k}": f"{v:,}" for k, v in sizes.items()})
    F["n_full_all_train"] = f"{sizes['train'] + sizes['valid']:,}"
    F["full_valid_from"] = f"{FULL_VALID_FROM:,}"
    F["full_data_ratio"] = f"{sizes['train'] / len(splits['train']):g}"
    F["lecun_acc"], F["nielsen_acc"] = A.pct(1 - LECUN_LINEAR_ERROR), A.pct(NIELSEN_784_30_10, 2)
    F["softmax_acc"] = A.pct(SOFTMAX_REGRESSION, 0)
    layers = [N_PIXELS, *TWO_LAYER, 10]
    F["mlp_params"] = f"{sum(a * b + b for a, b in zip(layers, layers[1:])):,}"
    F["mlp_bias_params"] = str(sum(layers[1:]))
    F["speedup_lr"], F["speedup_mlp"], F["speedup_date"] = engine_speedup()
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


def _baseline(baseline: list[dict], splits) -> dict[str, str]:
    F = {}
    base = A.by(baseline, "hidden")
    for key, hidden in KEYS.items():
        runs = base[(hidden,)]
        cfg = runs[0]["config"]
        F[f"{key}_lr"], F[f"{key}_epochs"], F[f"{key}_seeds"] = f"{cfg['lr']:g}", str(cfg["epochs"]), str(len(runs))
        for split in ("train", "valid", "test"):
            F[f"{key}_{split}_acc"] = A.pm(A.final(runs, split, "acc"), digits=2)
            F[f"{key}_{split}_loss"] = _fmt(mean(A.final(runs, split, "loss")))
        F[f"{key}_init_loss"] = _fmt(mean(A.initial_loss(runs)))
        F[f"{key}_init_logit_std"] = _fmt(initial_logit_std(hidden, splits["train"].x), 2)
        valid_acc = mean(A.final(runs, "valid", "acc"))
        F[f"{key}_valid_se"] = f"{100 * A.binomial_se(valid_acc, len(splits['valid'])):.2f}"
        F[f"{key}_valid_seed_sd"] = f"{100 * A.spread(A.final(runs, 'valid', 'acc'))[1]:.2f}"
        se, sd = A.binomial_se(valid_acc, len(splits["valid"])), A.spread(A.final(runs, "valid", "acc"))[1]
        F[f"{key}_se_vs_sd"] = "about the same as" if abs(se - sd) < 0.1 * se else ("more than" if se > sd else "less than")
        F[f"{key}_train_gap"] = f"{100 * (mean(A.final(runs, 'train', 'acc')) - valid_acc):.1f}"
    F["ln10"] = _fmt(math.log(10), 4)
    lr_runs, mlp_runs = base[(LOGISTIC,)], base[(TWO_LAYER,)]
    lr_loss, mlp_loss = (mean(A.final(r, "valid", "loss")) for r in (lr_runs, mlp_runs))
    lr_err, mlp_err = (1 - mean(A.final(r, "test", "acc")) for r in (lr_runs, mlp_runs))
    F["loss_reduction"] = A.pct(1 - mlp_loss / lr_loss, 0)
    F["error_reduction"] = A.pct(1 - mlp_err / lr_err, 0)
    F["lr_test_err"], F["mlp_test_err"] = A.pct(lr_err), A.pct(mlp_err)
    dead = A.dead_counts(mlp_runs)
    F["mlp_dead_counts"] = ", ".join(map(str, dead))
    F["mlp_dead_seeds"] = f"{sum(d > 0 for d in dead)} of {len(dead)}"
    # the validation loss at the chosen setting: its lowest epoch against its last
    curve, _ = A.mean_curves(mlp_runs, "valid_loss")
    low = min(range(1, len(curve)), key=curve.__getitem__)
    F["mlp_loss_min_epoch"], F["mlp_loss_min"] = str(low), _fmt(curve[low])
    F["mlp_loss_rise"] = _fmt(curve[-1] - curve[low])
    acc_curve, _ = A.mean_curves(mlp_runs, "valid_acc")
    F["mlp_acc_at_min"], F["mlp_acc_last"] = A.pct(acc_curve[low], 2), A.pct(acc_curve[-1], 2)
    F["mlp_acc_after_min"] = "still rises" if acc_curve[-1] > acc_curve[low] else "does not rise"
    return F


def _comparisons(R, test_labels) -> dict[str, str]:
    F = {}
    cs = A.comparisons(R["baseline"], R["weight-decay"], R["bias"], test_labels)
    # the order `A.comparisons` builds: depth, then decay per model, then biases per model
    order = ["depth"] + [f"wd_{k}" for k in _model_keys(R["weight-decay"])] + [f"bias_{k}" for k in _model_keys(R["bias"])]
    for key, c in zip(order, cs):
        for split in ("valid", "test"):
            d = c[split]
            F[f"cmp_{key}_{split}"] = _pp(d["mean"])
            F[f"cmp_{key}_{split}_ci"] = f"[{_pp(d['lo'])}, {_pp(d['hi'])}]"
            F[f"cmp_{key}_{split}_verdict"] = d["verdict"]
            F[f"cmp_{key}_{split}_pos"] = f"{d['positive']} of {d['n']}"
        ps = [m["p"] for m in c["mcnemar"]]
        F[f"cmp_{key}_mcnemar"] = f"{sum(p < 0.05 for p in ps)} of {len(ps)}"
        F[f"cmp_{key}_mcnemar_p"] = f"{min(ps):.2g}–{max(ps):.2g}"
        F[f"cmp_{key}_n"] = str(c["valid"]["n"])
    F["t_crit"] = f"{A.t_quantile(cs[0]['valid']['n'] - 1):.2f}"
    F["ci"] = A.pct(A.LEVEL, 0)
    return F


def _model_keys(runs: list[dict]) -> list[str]:
    return ["lr" if name == "logistic regression" else "mlp" for name in A.by_model(runs)]


def _sweep(sweep: list[dict], n_valid: int) -> dict[str, str]:
    """How wide the sweep is, the plateau around each choice, and what its ends do."""
    F = {}
    F["sweep_seeds"] = str(SWEEP_SEEDS)
    for key, name in (("lr", "logistic regression"), ("mlp", "784-30-10 ReLU")):
        table = A.settings(sweep, name)
        top = A.plateau(sweep, name, n_valid)
        F[f"plateau_{key}_n"] = str(len(top["settings"]))
        F[f"plateau_{key}_width"] = f"{100 * top['width']:.2f}"
        F[f"plateau_{key}_best"] = A.pct(top["best"], 2)
        F[f"plateau_{key}_list"] = "; ".join(f"{lr:g}/{e}" for lr, e in top["settings"])
        lrs = sorted({lr for lr, _ in table})
        longest = max(e for _, e in table)
        F[f"sweep_{key}_slow_acc"] = A.pct(table[(lrs[0], longest)]["acc"])
        fast = table[(lrs[-1], longest)]["acc"]
        F[f"sweep_{key}_fast_acc"] = A.pct(fast) if fast is not None else "diverged"
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
    F["next_dead_range"] = f"{100 * min(dead):.0f}–{100 * max(dead):.0f}%"
    F["next_acc_range"] = f"{100 * min(accs):.0f}–{100 * max(accs):.0f}%"
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
    F["tpl_0_lowest"], F["tpl_1_lowest"] = str(readings[0]["lowest"]), str(readings[1]["lowest"])
    counts = []
    for seed in sorted({s for (h, s) in base if h == TWO_LAYER}):
        counts.append(Counter(A.unit_kinds(base[(TWO_LAYER, seed)][0], splits["train"].x)))
    first = counts[0]
    for kind in ("stroke", "blob", "noise", "dead"):
        F[f"units_{kind}"] = str(first[kind])
        F[f"units_{kind}_mean"] = f"{mean(c[kind] for c in counts):.1f}"
        F[f"units_{kind}_range"] = f"{min(c[kind] for c in counts)}–{max(c[kind] for c in counts)}"
    F["units_seeds"] = str(len(counts))
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
    F["top_sure_level"] = f"{CONFIDENT:g}"
    F["top_sure"] = str(sum(t["prob"] >= CONFIDENT for t in worst))
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


def _weight_decay(runs: list[dict]) -> dict[str, str]:
    F = {}
    for key, (name, model_runs) in zip(_model_keys(runs), A.by_model(runs).items()):
        groups = A.by(model_runs, "weight_decay")
        best = A.best_decay(model_runs)
        strongest = max(groups)[0]
        F[f"wd_{key}_best"] = f"{best:g}"
        for label, wd in (("best", best), ("zero", 0.0), ("strong", strongest)):
            g = groups[(wd,)]
            F[f"wd_{key}_{label}_acc"] = A.pct(mean(A.final(g, "valid", "acc")), 2)
            F[f"wd_{key}_{label}_test"] = A.pct(mean(A.final(g, "test", "acc")), 2)
            F[f"wd_{key}_{label}_loss"] = _fmt(mean(A.final(g, "valid", "loss")))
            F[f"wd_{key}_{label}_gap"] = f"{100 * (mean(A.final(g, 'train', 'acc')) - mean(A.final(g, 'valid', 'acc'))):.1f}"
        F[f"wd_{key}_strong"] = f"{strongest:g}"
    return F


def _hidden(all_runs: list[dict]) -> dict[str, str]:
    F = {}
    runs = A.at_chosen_rate(all_runs)
    groups = A.by(runs, "hidden")
    acc = {k[0][0]: mean(A.final(g, "valid", "acc")) for k, g in groups.items()}
    test = {k[0][0]: mean(A.final(g, "test", "acc")) for k, g in groups.items()}
    smallest, largest = min(acc), max(acc)
    F["h_lr"] = f"{runs[0]['config']['lr']:g}"
    F["h_smallest"], F["h_largest"] = str(smallest), str(largest)
    F["h_smallest_acc"] = A.pm(A.final(groups[((smallest,),)], "valid", "acc"), digits=1)
    small = sorted(groups[((smallest,),)], key=lambda r: r["config"]["seed"])
    F["h_smallest_seeds"] = " / ".join(f"{100 * r['final']['valid']['acc']:.1f}" for r in small)
    F["h_smallest_dead"] = " / ".join(str(d) for d in A.dead_counts(small))
    F["h_30_acc"], F["h_largest_acc"] = A.pct(acc[30]), A.pct(acc[largest])
    F["h_30_test"], F["h_largest_test"] = A.pct(test[30]), A.pct(test[largest])
    F["h_gain"] = f"{100 * (test[largest] - test[30]):.1f}"
    F["h_ratio"] = f"{largest / 30:.0f}"
    fits = [h for h, g in ((k[0][0], g) for k, g in groups.items()) if mean(A.final(g, "train", "acc")) >= MEMORISED]
    F["h_memorise"] = str(min(fits)) if fits else "none"
    F["memorise_level"] = A.pct(MEMORISED, 0)
    # the rate check: the narrowest width at its own best rate
    for (h,), g in A.by([r for r in all_runs if r["config"]["hidden"][0] == smallest], "hidden").items():
        lr = A.best_setting(g, ("lr",))[0]
        at = [r for r in g if r["config"]["lr"] == lr]
        F["h_smallest_best_lr"] = f"{lr:g}"
        F["h_smallest_best_acc"] = A.pm(A.final(at, "valid", "acc"), digits=1)
        F["h_smallest_best_seeds"] = " / ".join(f"{100 * r['final']['valid']['acc']:.1f}"
                                                for r in sorted(at, key=lambda r: r["config"]["seed"]))
    return F


def _bias(runs: list[dict], splits) -> dict[str, str]:
    F = {}
    for key, (name, model_runs) in zip(_model_keys(runs), A.by_model(runs).items()):
        groups = A.by(model_runs, "bias")
        for b, label in ((True, "with"), (False, "without")):
            F[f"bias_{key}_{label}"] = A.pm(A.final(groups[(b,)], "valid", "acc"), digits=2)
        # the cone argument, checked: fold the first layer's bias into the mean-image direction
        folded = [A.accuracy(A.fold_first_bias(r, splits["train"].x), splits["valid"]) for r in groups[(True,)]]
        kept = [r["final"]["valid"]["acc"] for r in groups[(True,)]]
        F[f"fold_{key}_change"] = _pp(mean(f - k for f, k in zip(folded, kept)))
        F[f"fold_{key}_worst"] = _pp(min(f - k for f, k in zip(folded, kept)))
    c = A.cone(splits["train"].x)
    F["cone_cos_min"], F["cone_cos_p01"], F["cone_cos_median"] = (_fmt(c[k], 2) for k in ("cos_min", "cos_p01", "cos_median"))
    F["cone_angle_max"] = f"{math.degrees(math.acos(c['cos_min'])):.0f}"
    F["cone_cv"] = A.pct(c["cv"], 0)
    return F


def _full(sweep: list[dict], full: list[dict], baseline: list[dict]) -> dict[str, str]:
    F = {}
    n_valid = len(load_split("full-valid").y)
    for key, (name, runs) in zip(_model_keys(full), A.by_model(full).items()):
        cfg = runs[0]["config"]
        F[f"full_{key}_lr"], F[f"full_{key}_epochs"], F[f"full_{key}_seeds"] = f"{cfg['lr']:g}", str(cfg["epochs"]), str(len(runs))
        F[f"full_{key}_valid"] = A.pm(A.final(runs, "valid", "acc"), digits=2)
        F[f"full_{key}_test"] = A.pm(A.final(runs, "test", "acc"), digits=2)
        F[f"full_{key}_gap"] = f"{100 * (mean(A.final(runs, 'train', 'acc')) - mean(A.final(runs, 'test', 'acc'))):.1f}"
        top = A.plateau(sweep, name, n_valid)
        F[f"full_{key}_plateau_n"] = str(len(top["settings"]))
        F[f"full_{key}_plateau_list"] = "; ".join(f"{lr:g}/{e}" for lr, e in top["settings"])
        F[f"full_{key}_plateau_width"] = f"{100 * top['width']:.2f}"
    F["full_sweep_runs"] = str(len(sweep))
    epochs = sorted({r["config"]["epochs"] for r in sweep})
    F["full_sweep_epochs"] = ", ".join(map(str, epochs))
    for key, (name, runs) in zip(_model_keys(sweep), A.by_model(sweep).items()):
        F[f"full_{key}_grid"] = ", ".join(f"{lr:g}" for lr in sorted({r["config"]["lr"] for r in runs}))
        longest = A.chosen(sweep)[name][1] == max(epochs)
        F[f"full_{key}_edge"] = ("the longest in the grid" if longest else "inside the grid")
    lr_acc = mean(A.final([r for r in full if not r["config"]["hidden"]], "test", "acc"))
    F["full_lr_vs_lecun"] = "above" if lr_acc > 1 - LECUN_LINEAR_ERROR else "below"
    F["full_lr_vs_softmax"] = "close to" if abs(lr_acc - SOFTMAX_REGRESSION) < 0.01 else ("above" if lr_acc > SOFTMAX_REGRESSION else "below")
    mlp_acc = mean(A.final([r for r in full if r["config"]["hidden"]], "test", "acc"))
    F["full_mlp_vs_nielsen"] = "above" if mlp_acc > NIELSEN_784_30_10 else "below"
    return F


def _mse(runs: list[dict], robust: list[dict], splits) -> dict[str, str]:
    F = {}
    labels, valid = splits["valid"].y, splits["valid"]
    best = A.best_mse_runs(runs)
    for obj, r in best.items():
        key = obj.replace("-", "_")
        F[f"{key}_acc"] = A.pm(A.final(r, "valid", "acc"), digits=1)
        F[f"{key}_test"] = A.pm(A.final(r, "test", "acc"), digits=1)
        F[f"{key}_lr"] = f"{r[0]['config']['lr']:g}"
        F[f"{key}_init_loss"] = _fmt(mean(A.initial_loss(r)), 2)
    edge = [obj for obj, lrs in MSE_LRS.items() if best[obj][0]["config"]["lr"] in (min(lrs), max(lrs))]
    F["mse_grid_note"] = ("every objective's chosen rate lies inside its grid" if not edge else
                          f"the chosen rate of {', '.join(edge)} lies at the end of its grid")
    F["mse_expected_init"] = _fmt(mean(d * d for d in range(10)), 1)  # E[y^2] with the output near 0
    F["mse_std_expected_init"] = _fmt(mean(((d - DIGIT_MEAN) / DIGIT_STD) ** 2 for d in range(10)), 1)
    for (hidden, epochs), r in A.by(robust, "hidden", "epochs").items():
        key = "wider" if hidden != TWO_LAYER else "longer"
        F[f"mse_{key}_acc"] = A.pm(A.final(r, "valid", "acc"), digits=1)
        F[f"mse_{key}_test"] = A.pm(A.final(r, "test", "acc"), digits=1)
        F[f"mse_{key}_epochs"], F[f"mse_{key}_h"] = str(epochs), str(hidden[0])

    variants = [best["mse-digit-std"], *A.by(robust, "hidden", "epochs").values()]
    ce_acc = mean(A.final(best["cross-entropy"], "valid", "acc"))
    F["mse_gap_min"] = f"{100 * (ce_acc - max(mean(A.final(v, 'valid', 'acc')) for v in variants)):.0f}"
    reg, ce, onehot = best["mse-digit"][0], best["cross-entropy"][0], best["mse-onehot"][0]
    for key, run in (("mse", reg), ("ce", ce)):
        dist = A.error_distance(run, labels)
        F[f"{key}_off_by_one"] = A.pct(dist["off_by_one"], 0)
        F[f"{key}_err_distance"] = _fmt(dist["mean_distance"], 2)
    F["ce_second_right"] = A.pct(A.second_choice_right(ce, labels), 0)
    a, b = A.fitted_line(reg, labels)
    F["mse_slope"], F["mse_intercept"] = _fmt(b, 2), _fmt(a, 2)
    F["mse_ratio_17_12"] = f"{A.pair_loss_ratio(1, 7, 2):g}"

    # what survives of "hedging between look-alikes"
    probs = A.probabilities(ce, valid.x)
    partner = A.look_alikes(torch.tensor(ce["confusion"]["valid"]))
    F["partners"] = ", ".join(f"{d}→{p}" for d, p in enumerate(partner))
    offsets = A.digit_offsets(reg, labels)
    agree = [d for d in range(10) if math.copysign(1, offsets[d]) == math.copysign(1, partner[d] - d)]
    F["offset_agree"] = f"{len(agree)} of 10"
    F["offset_4"], F["offset_9"] = _fmt(offsets[4], 2), _fmt(offsets[9], 2)
    mir = A.mirror(reg, labels, partner)
    toward, away = sum(m["toward"] for m in mir), sum(m["away"] for m in mir)
    F["mirror_toward"], F["mirror_away"] = str(toward), str(away)
    F["mirror_band"] = "–".join(f"{v:g}" for v in A.MIRROR_BAND)
    F["mirror_digits"] = f"{sum(m['toward'] > m['away'] for m in mir)} of 10"
    m4 = mir[4]
    F["mirror_4_toward"], F["mirror_4_away"], F["mirror_4_partner"] = str(m4["toward"]), str(m4["away"]), str(m4["partner"])
    rates = A.midpoint_rates(reg, labels)
    pairs = [(4, 9), (3, 8), (1, 7)]
    lines = []
    above = 0
    for pair in pairs:
        base = A.same_distance_baseline(rates, pair, pairs)
        above += rates[pair] > base
        lines.append(f"{pair[0]}/{pair[1]} {100 * rates[pair]:.0f}% against {100 * base:.0f}%")
    F["midpoint_lines"] = "; ".join(lines)
    F["midpoint_above"] = f"{above} of {len(pairs)}"
    close = [(4, 7), (5, 8), (3, 6)]
    F["midpoint_close"] = ", ".join(f"{a}/{b} {100 * rates[(a, b)]:.0f}%" for a, b in close)
    le = A.lean(reg, labels, probs)
    F["lean_level"] = A.pct(A.UNSURE, 0)
    F["lean_unsure_n"], F["lean_sure_n"] = f"{le['unsure']['n']:,}", f"{le['sure']['n']:,}"
    F["lean_unsure"], F["lean_sure"] = A.pct(le["unsure"]["lean"], 0), A.pct(le["sure"]["lean"], 0)
    F["lean_p"] = f"{le['unsure']['p']:.1g}"
    F["lean_shift"], F["lean_spread"] = _fmt(le["unsure"]["shift"], 2), _fmt(le["spread"], 2)
    F["lean_size"] = "large where it applies" if le["unsure"]["shift"] > le["spread"] else "modest"
    F["lean_unsure_share"] = A.pct(le["unsure"]["n"] / len(labels), 0)
    F["lean_verdict"] = "supported" if le["unsure"]["p"] < 0.01 and le["unsure"]["lean"] > le["sure"]["lean"] else "not supported"
    # the in-between images: does the classifier find them ambiguous between the pair?
    between = A.in_between(reg, labels)
    share = [probs[f["index"], f["pair"][1] if f["true"] == f["pair"][0] else f["pair"][0]].item() for f in between]
    F["mse_in_between"] = str(len(between))
    F["between_partner_prob"] = A.pct(mean(share), 0)
    F["between_partner_10"] = A.pct(mean(s >= A.UNSURE for s in share), 0)
    m, s = A.onehot_sums(onehot, valid.x)
    F["onehot_sum"], F["onehot_sum_sd"] = _fmt(m, 2), _fmt(s, 2)
    return F


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
