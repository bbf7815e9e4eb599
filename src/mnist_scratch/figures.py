"""One function per figure, shared by the report and `python -m mnist_scratch figure NAME`.

Each function takes `get(experiment_name) -> results` and returns a matplotlib Figure drawn in a
consistent style with the Okabe-Ito colour-blind-safe palette.
"""

from pathlib import Path
from typing import Callable

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import LogNorm
from matplotlib.ticker import MaxNLocator

from . import analysis as A
from .data import load_split
from .experiments import CLASSIFIERS, results

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
STYLE = {
    "axes.prop_cycle": plt.cycler(color=OKABE_ITO),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "font.size": 10,
    "legend.frameon": False,
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "figure.constrained_layout.use": True,
}
MODEL_COLOURS = dict(zip(CLASSIFIERS, OKABE_ITO))
Getter = Callable[[str], list[dict]]


def sample_digits(get: Getter):
    """Ten training images of each digit, one row per digit."""
    train = load_split("train")
    fig, axes = plt.subplots(10, 10, figsize=(5.5, 5.5))
    for digit in range(10):
        idx = (train.y == digit).nonzero().squeeze(1)[:10]
        for ax, i in zip(axes[digit], idx.tolist()):
            ax.imshow(train.x[i].reshape(28, 28), cmap="gray_r")
            ax.set_axis_off()
    fig.suptitle("Training images, ten of each digit")
    return fig


def loss_curves(get: Getter):
    """Training and validation loss per epoch of both baseline classifiers: mean over seeds, ±1 std band."""
    groups = A.by(get("baseline"), "hidden")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, (name, hidden) in zip(axes, CLASSIFIERS.items()):
        runs = groups[(hidden,)]
        for key, style, label in (("train_loss", "--", "training"), ("valid_loss", "-", "validation")):
            m, s = map(np.array, A.mean_curves(runs, key))
            epochs = np.arange(len(m))
            ax.plot(epochs, m, style, color=MODEL_COLOURS[name], label=f"{label} loss")
            ax.fill_between(epochs, m - s, m + s, color=MODEL_COLOURS[name], alpha=0.2, linewidth=0)
        ax.set_yscale("log")
        ax.set_title(f"{name} ({len(runs)} seeds)")
        ax.set_xlabel("epoch (0 = before training)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    axes[0].set_ylabel("cross-entropy loss (log scale)")
    return fig


def lr_sweep(get: Getter):
    """Final validation loss and accuracy against the learning rate, a line per epoch budget; ★ = chosen."""
    sweep = get("lr-sweep")
    chosen = A.chosen(sweep)
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.5), sharex=True)
    for (ax_loss, ax_acc), (name, budgets) in zip(axes, A.sweep_points(sweep).items()):
        for colour, (epochs, pts) in zip(OKABE_ITO[1:], sorted(budgets.items())):
            ok = [(lr, loss, acc) for lr, loss, acc in pts if loss is not None]
            lrs, losses, accs = zip(*ok)
            ax_loss.plot(lrs, losses, "o-", color=colour, markersize=4, label=f"{epochs} epochs")
            ax_acc.plot(lrs, [100 * a for a in accs], "o-", color=colour, markersize=4)
            for lr in (lr for lr, loss, _ in pts if loss is None):
                ax_loss.axvline(lr, color=colour, linestyle=":")
        lr, epochs = chosen[name]
        pick = next(p for p in budgets[epochs] if p[0] == lr)
        ax_loss.plot(lr, pick[1], "*", color="black", markersize=13)
        ax_acc.plot(lr, 100 * pick[2], "*", color="black", markersize=13, label=f"chosen: lr {lr:g}, {epochs} epochs")
        ax_loss.set(xscale="log", yscale="log", ylabel="validation loss", title=name)
        ax_acc.set(xscale="log", ylabel="validation accuracy (%)", title=name)
        ax_acc.set_ylim(max(0, min(ax_acc.get_ylim()[0], 100 * pick[2] - 8)), 100)
        ax_acc.legend(loc="lower left")
    axes[0][0].legend(loc="upper left", fontsize=8)
    for ax in axes[1]:
        ax.set_xlabel("peak learning rate (decays linearly to 0)")
    return fig


def weight_decay(get: Getter):
    """Training and validation accuracy against weight decay (mean ± std over seeds)."""
    return _accuracy_against(get("weight-decay"), "weight_decay", "weight decay (L2 coefficient)", symlog=True)


def hidden_size(get: Getter):
    """Training and validation accuracy of 784-h-10 against h (mean ± std over seeds)."""
    return _accuracy_against(get("hidden-size"), "hidden", "hidden units h", log=True)


def _accuracy_against(runs: list[dict], key: str, xlabel: str, log=False, symlog=False):
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for name, model_runs in A.families(runs, key).items():
        groups = A.by(model_runs, key)
        xs = [k[0][0] if key == "hidden" else k[0] for k in groups]
        for split, style in (("train", "--"), ("valid", "-")):
            stats = [A.spread(A.final(g, split, "acc")) for g in groups.values()]
            m, s = (100 * np.array(v) for v in zip(*stats))
            colour = MODEL_COLOURS.get(name, OKABE_ITO[2])
            ax.errorbar(xs, m, yerr=s, fmt="o" + style, color=colour, capsize=3,
                        label=f"{name}, {'training' if split == 'train' else 'validation'}")
            if split == "valid":  # every seed, so a bimodal spread shows as what it is
                for x, g in zip(xs, groups.values()):
                    accs = A.final(g, "valid", "acc")
                    ax.plot([x] * len(accs), [100 * a for a in accs], ".", color=colour, alpha=0.4)
    if log:
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
    if symlog:
        ax.set_xscale("symlog", linthresh=1e-4)
    ax.set(xlabel=xlabel, ylabel="accuracy (%)")
    ax.legend(fontsize=8)
    return fig


def mse_predictions(get: Getter):
    """The single-number model's raw outputs for each true digit (validation set)."""
    run = A.best_mse_runs(get("mse-regression"))["mse-digit"][0]
    outputs = A.regression_outputs(run, load_split("valid").y)
    fig, ax = plt.subplots(figsize=(8, 4))
    parts = ax.violinplot(list(outputs.values()), positions=list(outputs), widths=0.85, showmedians=True,
                          showextrema=False)
    for body in parts["bodies"]:
        body.set_facecolor(OKABE_ITO[0])
        body.set_alpha(0.5)
    ax.plot([-0.5, 9.5], [-0.5, 9.5], ":", color="black", label="perfect prediction")
    for edge in np.arange(0.5, 9, 1):
        ax.axhline(edge, color="grey", linewidth=0.5, alpha=0.5)
    ax.set(xlabel="true digit", ylabel="predicted value (before rounding)", xticks=range(10))
    ax.legend(loc="upper left")
    return fig


def mse_confusion(get: Getter):
    """Confusion matrices (validation) of the single-number MSE model and the cross-entropy model."""
    best = A.best_mse_runs(get("mse-regression"))
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    for ax, (obj, title) in zip(axes, (("mse-digit", "MSE, one number"), ("cross-entropy", "cross-entropy"))):
        conf = np.array(best[obj][0]["confusion"]["valid"])
        im = ax.imshow(conf + 1, cmap="Blues", norm=LogNorm(1, conf.max() + 1))
        for (i, j), v in np.ndenumerate(conf):
            if v:
                ax.text(j, i, v, ha="center", va="center", fontsize=6.5, color="white" if v > 150 else "black")
        ax.set(title=title, xlabel="predicted digit", ylabel="true digit", xticks=range(10), yticks=range(10))
        ax.grid(False)
    fig.colorbar(im, ax=axes, shrink=0.8, label="count + 1 (log scale)")
    return fig


def mse_examples(get: Getter):
    """Validation digits from confusable pairs that the MSE model predicts half-way between."""
    run = A.best_mse_runs(get("mse-regression"))["mse-digit"][0]
    valid = load_split("valid")
    found = [f for pair in ((4, 9), (3, 8), (1, 7)) for f in A.in_between(run, valid.y, (pair,))[:3]]
    fig, axes = plt.subplots(1, max(len(found), 1), figsize=(1.3 * max(len(found), 1), 1.9), squeeze=False)
    for ax, f in zip(axes[0], found):
        ax.imshow(valid.x[f["index"]].reshape(28, 28), cmap="gray_r")
        ax.set_title(f"true {f['true']}\npredicted {f['output']:.2f}", fontsize=8)
        ax.set_axis_off()
    for ax in axes[0][len(found):]:
        ax.set_axis_off()
    return fig


FIGURES = {
    "sample-digits": sample_digits,
    "loss-curves": loss_curves,
    "lr-sweep": lr_sweep,
    "weight-decay": weight_decay,
    "hidden-size": hidden_size,
    "mse-predictions": mse_predictions,
    "mse-confusion": mse_confusion,
    "mse-examples": mse_examples,
}


def figure_names() -> list[str]:
    return list(FIGURES)


def draw(name: str, *, tiny: bool = False, jobs=None, data_path=None):
    """Figure `name`, computing the results it needs if they are not cached."""
    def get(experiment: str) -> list[dict]:
        return results(experiment, tiny=tiny, jobs=jobs, data_path=data_path)

    with plt.rc_context(STYLE):
        fig = FIGURES[name](get)
        interactive = plt.isinteractive()  # Jupyter's inline backend, if first used here, turns this on
    plt.interactive(interactive)  # and leaving rc_context would turn it off, hiding every later figure
    return fig


def save(name: str, out: str | Path = "figures", **kw) -> list[Path]:
    """Write figure `name` as PNG and SVG into `out`; returns the paths."""
    fig = draw(name, **kw)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.{ext}" for ext in ("png", "svg")]
    with plt.rc_context(STYLE):
        for path in paths:
            fig.savefig(path)
    plt.close(fig)
    return paths
