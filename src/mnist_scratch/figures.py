"""One function per figure, shared by the report and `python -m mnist_scratch figure NAME`.

Each function takes `get(experiment_name) -> results` and returns a matplotlib Figure drawn in a
consistent style with the Okabe-Ito colour-blind-safe palette.

Figures are drawn for the column they live in. The HTML shows a figure at its natural size (1 pt =
4/3 CSS px) but never wider than the text column, which on a 390 px phone is about 358 px wide; the
PDF shows it at its natural size. So a figure is at most `COLUMN` inches wide and no text in it is
smaller than `SMALLEST` points: its smallest text is then at least SMALLEST * 358 / (72 * COLUMN)
= 8.3 CSS px on a phone and 13.3 px on a desktop. Panels that would not fit side by side at that
size are stacked. `draw` holds every figure to this (see `for_the_column`), new ones included.
Images (digits, weight maps, heat maps) are embedded with their own pixels (`image.interpolation:
none`), which the SVG scales up without blur, instead of resampled copies several times larger.
"""

import io
from pathlib import Path
from typing import Callable

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.text import Text
from matplotlib.ticker import LogFormatter, LogFormatterSciNotation, MaxNLocator

from . import analysis as A
from .data import load_split
from .experiments import CLASSIFIERS, results
from .store import atomic_write
from .svg import compact

COLUMN = 5.5  # inches: the widest a figure is drawn
SMALLEST = 10  # points: the smallest text in a figure
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
STYLE = {
    "axes.prop_cycle": plt.cycler(color=OKABE_ITO),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "font.size": SMALLEST,
    "axes.titlesize": SMALLEST + 1,
    "legend.fontsize": SMALLEST,
    "legend.frameon": False,
    "image.interpolation": "none",  # an image's own pixels, not a resampled copy
    "figure.figsize": (COLUMN, 0.6 * COLUMN),
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.03,  # constrained layout leaves its own margin
    "figure.constrained_layout.use": True,
}
MODEL_COLOURS = dict(zip(CLASSIFIERS, OKABE_ITO))
Getter = Callable[[str], list[dict]]


class PlainLog(LogFormatter):
    """Log-axis labels as plain numbers (0.001, 0.3, 10), on the ticks matplotlib would label;
    its default writes powers of ten with superscripts set at 70% size, too small on a phone."""

    def __call__(self, x, pos=None):
        return f"{x:g}" if super().__call__(x, pos) else ""


def for_the_column(fig) -> None:
    """Hold `fig` to the column: at most COLUMN inches wide (scaled down, aspect kept, if wider),
    log axes in plain numbers, no text below SMALLEST points. A guard on every figure `draw`
    makes: the figure functions below keep to it already."""
    width, height = fig.get_size_inches()
    if width > COLUMN:
        fig.set_size_inches(COLUMN, height * COLUMN / width)
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if isinstance(axis.get_major_formatter(), LogFormatterSciNotation):
                base = axis.get_transform().base
                axis.set_major_formatter(PlainLog(base))
                axis.set_minor_formatter(PlainLog(base, labelOnlyBase=False))
    fig.draw_without_rendering()  # lays out the figure and makes its tick labels, found below
    for text in fig.findobj(Text):
        if text.get_fontsize() < SMALLEST:
            text.set_fontsize(SMALLEST)


def sample_digits(get: Getter):
    """Ten training images of each digit, one row per digit: one image of 10 x 10 digits with a
    white gap between them (one embedded image, not a hundred)."""
    train = load_split("train")
    gap = 3
    size = 10 * 28 + 9 * gap
    grid = np.zeros((size, size))  # 0 is white in gray_r
    for digit in range(10):
        idx = (train.y == digit).nonzero().squeeze(1)[:10]
        for k, i in enumerate(idx.tolist()):
            top, left = digit * (28 + gap), k * (28 + gap)
            grid[top:top + 28, left:left + 28] = train.x[i].reshape(28, 28).numpy()
    fig, ax = plt.subplots(figsize=(5, 5.3))
    ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1)
    ax.set_axis_off()
    fig.suptitle("Training images, ten of each digit")
    return fig


def loss_curves(get: Getter):
    """Per epoch, both baseline classifiers: training and validation loss (top) and validation
    accuracy (bottom), mean over seeds with a ±1 std band."""
    groups = A.by(get("baseline"), "hidden")
    fig, axes = plt.subplots(2, 2, figsize=(COLUMN, 5), sharex="col", sharey="row", height_ratios=(3, 2))
    for col, (name, hidden) in enumerate(CLASSIFIERS.items()):
        runs = groups[(hidden,)]
        ax, ax_acc = axes[0][col], axes[1][col]
        for key, style, label in (("train_loss", "--", "training"), ("valid_loss", "-", "validation")):
            m, s = map(np.array, A.mean_curves(runs, key))
            epochs = np.arange(len(m))
            ax.plot(epochs, m, style, color=MODEL_COLOURS[name], label=label)
            ax.fill_between(epochs, m - s, m + s, color=MODEL_COLOURS[name], alpha=0.2, linewidth=0)
        m, s = (100 * np.array(v) for v in A.mean_curves(runs, "valid_acc"))
        epochs = np.arange(1, len(m))
        ax_acc.plot(epochs, m[1:], "-o", color=MODEL_COLOURS[name], markersize=3, label="validation accuracy")
        ax_acc.fill_between(epochs, m[1:] - s[1:], m[1:] + s[1:], color=MODEL_COLOURS[name], alpha=0.2, linewidth=0)
        ax.set_yscale("log")
        ax.set_title(f"{name}\n({len(runs)} seeds)")
        ax.legend(title="loss")
        ax_acc.set_xlabel("epoch\n(0 = before training)")
        ax_acc.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0][0].set_ylabel("cross-entropy loss\n(log scale)")
    axes[1][0].set_ylabel("validation\naccuracy (%)")
    return fig


def lr_sweep(get: Getter):
    """Per classifier: final validation loss against the peak learning rate (a line per epoch budget),
    and the mean validation accuracy of every setting; outlined: the plateau, black: the choice.
    The two loss panels side by side, each model's accuracy grid below them at full width."""
    sweep = get("lr-sweep")
    chosen = A.chosen(sweep)
    labels = load_split("valid").y
    fig, axes = plt.subplot_mosaic([["loss0", "loss1"], ["acc0", "acc0"], ["acc1", "acc1"]], figsize=(COLUMN, 8),
                                   height_ratios=(3, 2, 2))
    for k, name in enumerate(CLASSIFIERS):
        ax_loss, ax_acc = axes[f"loss{k}"], axes[f"acc{k}"]
        table = A.settings(sweep, name)
        lrs = sorted({lr for lr, _ in table})
        budgets = sorted({e for _, e in table})
        for colour, epochs in zip(OKABE_ITO[1:], budgets):
            pts = [(lr, table[(lr, epochs)]["loss"]) for lr in lrs if table[(lr, epochs)]["loss"] is not None]
            ax_loss.plot(*zip(*pts), "o-", color=colour, markersize=4, label=f"{epochs} epochs")
        ax_loss.set(xscale="log", yscale="log", title=name, xlabel="peak learning rate")
        grid = np.array([[np.nan if table[(lr, e)]["acc"] is None else 100 * table[(lr, e)]["acc"] for lr in lrs]
                         for e in budgets])
        im = ax_acc.imshow(grid, cmap="viridis", vmin=max(np.nanmax(grid) - 12, np.nanmin(grid)), vmax=np.nanmax(grid),
                           aspect="auto")
        top = A.plateau(sweep, name, labels)
        for i, e in enumerate(budgets):
            for j, lr in enumerate(lrs):
                v = grid[i, j]
                text = "div." if np.isnan(v) else f"{v:.1f}"
                light = not np.isnan(v) and v < np.nanmax(grid) - 6
                ax_acc.text(j, i, text, ha="center", va="center", color="white" if light else "black")
                if (lr, e) in top["settings"]:
                    ax_acc.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="white", linewidth=1.5))
                if (lr, e) == chosen[name]:
                    ax_acc.add_patch(plt.Rectangle((j - 0.47, i - 0.47), 0.94, 0.94, fill=False, edgecolor="black", linewidth=2.5))
        ax_acc.set_xticks(range(len(lrs)), [f"{lr:g}" for lr in lrs])
        ax_acc.set_yticks(range(len(budgets)), budgets)
        ax_acc.set(ylabel="epochs", title=f"{name}: mean validation accuracy (%)")
        ax_acc.grid(False)
        fig.colorbar(im, ax=ax_acc, pad=0.02)
    axes["loss0"].set_ylabel("validation loss\n(mean over seeds)")
    axes["acc1"].set_xlabel("peak learning rate (decays linearly to 0)")
    fig.legend(*axes["loss0"].get_legend_handles_labels(), loc="outside upper center", ncol=4)
    return fig


def dead_units(get: Getter):
    """Share of the 784-30-10 network's hidden units that are dead, against the training step, per
    peak learning rate (the sweep's 20-epoch runs, mean over seeds)."""
    sweep = [r for r in get("lr-sweep") if tuple(r["config"]["hidden"]) and r["config"]["epochs"] == 20]
    fig, ax = plt.subplots(figsize=(COLUMN, 4))
    groups = A.by(sweep, "lr")
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(groups)))
    for colour, ((lr,), runs) in zip(colours, sorted(groups.items())):
        steps, shares = A.dead_trace(runs)
        ax.plot(steps[1:], [100 * v for v in shares[1:]], "-", color=colour, marker=".", markersize=3, label=f"{lr:g}")
    ax.set(xscale="log", xlabel="training step (log scale)", ylabel="dead hidden units (%)", ylim=(-3, 103))
    fig.legend(title="peak learning rate", loc="outside upper center", ncol=(len(groups) + 1) // 2)
    return fig


def weight_decay(get: Getter):
    """Training (dashed) and validation (solid) accuracy against weight decay (mean ± std over seeds);
    the horizontal lines are the same models without decay."""
    runs = get("weight-decay")
    fig, ax = plt.subplots(figsize=(COLUMN, 4.4))
    for name, model_runs in A.by_model(runs).items():
        groups = A.by(model_runs, "weight_decay")
        colour = MODEL_COLOURS[name]
        for split, style, word in (("train", "--", "training"), ("valid", "-", "validation")):
            base = 100 * np.array(A.spread(A.final(groups[(0.0,)], split, "acc")))
            ax.axhline(base[0], color=colour, linestyle=style, linewidth=0.8, alpha=0.6)
            xs = [k[0] for k in groups if k[0] > 0]
            stats = np.array([A.spread(A.final(groups[(x,)], split, "acc")) for x in xs]) * 100
            ax.errorbar(xs, stats[:, 0], yerr=stats[:, 1], fmt="o" + style, color=colour, capsize=3, markersize=4,
                        label=f"{name}, {word}")
    ax.set(xscale="log", xlabel="weight decay (L2 coefficient)\nhorizontal lines: no decay", ylabel="accuracy (%)")
    fig.legend(loc="outside upper center", ncol=2)
    return fig


def hidden_size(get: Getter):
    """784-h-10 against h, each width at its own tuned rate: every seed's validation accuracy (dots),
    the mean over seeds (line); below, the same zoomed in, with held-out test accuracy."""
    own = A.at_own_rate(get("hidden-size"))
    groups = {((h,),): g for h, g in own.items()}
    xs = list(own)
    fig, (ax, zoom) = plt.subplots(2, 1, figsize=(COLUMN, 6.4), sharex=True)
    for axis in (ax, zoom):
        for split, style, colour, word in (("train", "--", OKABE_ITO[1], "training"), ("valid", "-", OKABE_ITO[2], "validation"),
                                           ("test", ":", OKABE_ITO[0], "held-out test")):
            if axis is ax and split == "test":
                continue
            means = [100 * np.mean(A.final(g, split, "acc")) for g in groups.values()]
            axis.plot(xs, means, "o" + style, color=colour, markersize=4, label=f"{word} (mean)")
        for x, g in zip(xs, groups.values()):
            accs = [100 * a for a in A.final(g, "valid", "acc")]
            axis.plot([x] * len(accs), accs, ".", color=OKABE_ITO[2], alpha=0.5)
        axis.set_xscale("log", base=2)
        axis.set_xticks(xs, [str(x) for x in xs])
        axis.set(ylabel="accuracy (%)")
    zoom.set(xlabel="hidden units h")
    ax.set(title="all widths (dots: seeds)")
    low = min(100 * np.mean(A.final(g, "valid", "acc")) for k, g in groups.items() if k[0][0] >= 16)
    zoom.set(ylim=(np.floor(low) - 1, 100.5), title=f"zoom: {np.floor(low) - 1:g}-100%")
    zoom.legend(loc="lower right")
    return fig


def templates(get: Getter):
    """Logistic regression's ten weight templates (seed 0): red rewards ink, blue punishes it."""
    run = A.by(get("baseline"), "hidden", "seed")[((), 0)][0]
    (w, _), = A.layers(run)
    limit = w.abs().max().item()
    fig, axes = plt.subplots(2, 5, figsize=(COLUMN, 3))
    for k, ax in enumerate(axes.flat):
        im = ax.imshow(w[k].reshape(28, 28), cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(str(k))
        ax.set_axis_off()
    fig.colorbar(im, ax=axes, shrink=0.8, label="weight")
    return fig


def hidden_units(get: Getter):
    """The 784-30-10 network's 30 hidden units' input weights (seed 0), each on its own symmetric
    scale (red positive, blue negative), titled with the unit's computed kind."""
    run = A.by(get("baseline"), "hidden", "seed")[((30,), 0)][0]
    train = load_split("train")
    (w, _), *_ = A.layers(run)
    kinds = A.unit_kinds(run, train.x)
    fig, axes = plt.subplots(6, 5, figsize=(COLUMN, 8))
    for j, ax in enumerate(axes.flat):
        limit = w[j].abs().max().item()
        ax.imshow(w[j].reshape(28, 28), cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(f"{j}: {kinds[j]}", fontsize=SMALLEST, color="black" if kinds[j] != "dead" else OKABE_ITO[3])
        ax.set_axis_off()
    return fig


def top_losses(get: Getter):
    """The 16 validation images the 784-30-10 network (seed 0) gets most confidently wrong."""
    run = A.by(get("baseline"), "hidden", "seed")[((30,), 0)][0]
    valid = load_split("valid")
    worst = A.top_losses(run, valid, 16)
    fig, axes = plt.subplots(2, 8, figsize=(COLUMN, 2.5))
    for ax, t in zip(axes.flat, worst):
        ax.imshow(valid.x[t["index"]].reshape(28, 28), cmap="gray_r")
        ax.set_title(f"{t['true']} → {t['pred']}\n{t['prob']:.3f}", fontsize=SMALLEST)
        ax.set_axis_off()
    return fig


def test_confusion(get: Getter):
    """Errors of both classifiers on the held-out test split: confusion counts off the diagonal, mean over seeds."""
    groups = A.by(get("baseline"), "hidden")
    fig, axes = plt.subplots(1, 2, figsize=(COLUMN, 3.6))
    mats = {name: A.mean_confusion(groups[(h,)], "test").numpy() for name, h in CLASSIFIERS.items()}
    top = max(m[~np.eye(10, dtype=bool)].max() for m in mats.values())
    for ax, (name, conf) in zip(axes, mats.items()):
        off = np.where(np.eye(10, dtype=bool), np.nan, conf)
        im = ax.imshow(off, cmap="Oranges", vmin=0, vmax=top)
        for (i, j), v in np.ndenumerate(conf):
            if i != j and v >= 0.5:
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", color="white" if v > top / 2 else "black")
        ax.set(title=f"{name}\n({len(groups[(CLASSIFIERS[name],)])} seeds)", xlabel="predicted digit",
               xticks=range(10), yticks=range(10))
        ax.grid(False)
    axes[0].set_ylabel("true digit")
    fig.colorbar(im, ax=axes, location="bottom", shrink=0.7, label="wrong predictions (mean over seeds)")
    return fig


def paired(get: Getter):
    """Paired differences in accuracy with their 95% intervals over seeds and images, on the held-out
    test and the validation splits."""
    labels = {split: load_split(split).y for split in ("test", "valid")}
    comparisons = A.comparisons(get("baseline"), get("weight-decay"), get("bias"), labels)
    fig, ax = plt.subplots(figsize=(COLUMN, 0.55 * len(comparisons) + 1.4))
    for i, c in enumerate(comparisons):
        for dy, split, colour, marker in ((-0.12, "test", OKABE_ITO[1], "s"), (0.12, "valid", OKABE_ITO[0], "o")):
            d = c[split]
            ax.errorbar(100 * d["mean"], i + dy, xerr=[[100 * (d["mean"] - d["lo"])], [100 * (d["hi"] - d["mean"])]],
                        fmt=marker, color=colour, capsize=3, markersize=5,
                        label={"valid": "validation", "test": "held-out test"}[split] if i == 0 else None)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(comparisons)), [c["label"] for c in comparisons])
    ax.invert_yaxis()
    ax.set(xlabel="difference in accuracy (percentage points),\nwith its 95% interval over seeds and images")
    fig.legend(loc="outside upper center", ncol=2)
    return fig


def calibration(get: Getter):
    """Reliability diagram over every validation image (five seeds pooled): accuracy against confidence
    per bin for logistic regression, the two-layer network, and the network with its best weight
    decay; below, the share of images in each bin."""
    valid = load_split("valid")
    base = A.by(get("baseline"), "hidden")
    decay = A.by_model(get("weight-decay"))["784-30-10 ReLU"]
    best = A.best_decay(decay)
    models = {"logistic regression": base[(CLASSIFIERS["logistic regression"],)],
              "784-30-10 ReLU": base[(CLASSIFIERS["784-30-10 ReLU"],)],
              f"784-30-10, weight decay {best:g}": A.by(decay, "weight_decay")[(best,)]}
    fig, (ax, share) = plt.subplots(2, 1, figsize=(COLUMN, 6), sharex=True, height_ratios=(3, 1.3))
    ax.plot([0, 1], [0, 1], ":", color="black", label="perfectly calibrated")
    width = 0.1 / (len(models) + 1)
    for k, (colour, (label, runs)) in enumerate(zip((OKABE_ITO[0], OKABE_ITO[1], OKABE_ITO[2]), models.items())):
        c = A.calibration(A.seed_probabilities(runs, valid.x), valid.y)
        bins = [b for b in c["bins"] if b["n"]]
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", color=colour, markersize=4,
                label=f"{label} (ECE {c['ece']:.3f})")
        total = sum(b["n"] for b in c["bins"])
        share.bar([b["lo"] + (k + 1) * width for b in c["bins"]], [100 * b["n"] / total for b in c["bins"]],
                  width=width, color=colour)
    ax.set(ylabel="accuracy in the bin", xlim=(0, 1.02), ylim=(0, 1.02))
    ax.legend(loc="upper left")
    share.set(xlabel="confidence: the probability of the predicted digit (bins of 0.1)", ylabel="images (%)",
              yscale="log")
    return fig


def unit_ablation(get: Getter):
    """Every hidden unit of the 784-30-10 network (five seeds) switched off in turn: how much the
    validation loss rises, by the unit's kind."""
    runs = A.by(get("baseline"), "hidden")[(CLASSIFIERS["784-30-10 ReLU"],)]
    train, valid = load_split("train"), load_split("valid")
    kinds = ("stroke", "blob", "noise", "dead")
    rises = {k: [] for k in kinds}
    for run in runs:
        for kind, rise in zip(A.unit_kinds(run, train.x), A.ablation(run, valid)["loss"].tolist()):
            rises[kind].append(rise)
    fig, ax = plt.subplots(figsize=(COLUMN, 3.8))
    jitter = np.random.default_rng(0)
    for i, (colour, kind) in enumerate(zip(OKABE_ITO, kinds)):
        ys = rises[kind]
        ax.plot(i + jitter.uniform(-0.2, 0.2, len(ys)), ys, "o", color=colour, alpha=0.7, markersize=4)
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(kinds)), [f"{k} ({len(rises[k])})" for k in kinds])
    ax.set(xlabel="kind of unit (number of units, five seeds)", ylabel="rise in validation loss when switched off")
    return fig


def mse_predictions(get: Getter):
    """The single-number model's raw outputs for each true digit (validation set, seed 0)."""
    run = A.best_mse_runs(get("mse-regression"))["mse-digit"][0]
    labels = load_split("valid").y
    outputs = A.regression_outputs(run, labels)
    fig, ax = plt.subplots(figsize=(COLUMN, 4.4))
    parts = ax.violinplot(list(outputs.values()), positions=list(outputs), widths=0.85, showmeans=True,
                          showextrema=False)
    for body in parts["bodies"]:
        body.set_facecolor(OKABE_ITO[0])
        body.set_alpha(0.5)
    parts["cmeans"].set_color("black")
    a, b = A.fitted_line(run, labels)
    ax.plot([-0.5, 9.5], [-0.5, 9.5], ":", color="black", label="perfect prediction")
    ax.plot([-0.5, 9.5], [a - 0.5 * b, a + 9.5 * b], "--", color=OKABE_ITO[3], label=f"least-squares line (slope {b:.2f})")
    for edge in np.arange(0.5, 9, 1):
        ax.axhline(edge, color="grey", linewidth=0.5, alpha=0.5)
    ax.set(xlabel="true digit", ylabel="predicted value (before rounding)", xticks=range(10))
    ax.legend(loc="upper left")
    return fig


def mse_confusion(get: Getter):
    """Confusion matrices (validation) of the single-number MSE model and the cross-entropy model,
    one above the other (their three-digit counts need the column's width)."""
    best = A.best_mse_runs(get("mse-regression"))
    fig, axes = plt.subplots(2, 1, figsize=(4.6, 9))
    for ax, (obj, title) in zip(axes, (("mse-digit", "MSE, one number"), ("cross-entropy", "cross-entropy"))):
        conf = np.array(best[obj][0]["confusion"]["valid"])
        im = ax.imshow(conf + 1, cmap="Blues", norm=LogNorm(1, conf.max() + 1))
        for (i, j), v in np.ndenumerate(conf):
            if v:
                ax.text(j, i, v, ha="center", va="center", color="white" if v > 150 else "black")
        ax.set(title=title, xlabel="predicted digit", ylabel="true digit", xticks=range(10), yticks=range(10))
        ax.grid(False)
    fig.colorbar(im, ax=axes, shrink=0.6, label="count + 1 (log scale)")
    return fig


def mse_examples(get: Getter):
    """The validation images the cross-entropy classifier is most torn on between the true digit and
    one other, with both probabilities, and where the single-number regression puts them (seed 0)."""
    best = A.best_mse_runs(get("mse-regression"))
    reg, ce = best["mse-digit"][0], best["cross-entropy"][0]
    valid = load_split("valid")
    shown = A.ambiguous(reg, ce, valid, 12)
    fig, axes = plt.subplots(4, 3, figsize=(COLUMN, 7.6))
    for ax, f in zip(axes.flat, shown):
        ax.imshow(valid.x[f["index"]].reshape(28, 28), cmap="gray_r")
        ax.set_title(f"{f['true']} ({f['true_prob']:.0%}) or {f['runner']} ({f['prob']:.0%})\nregression: {f['output']:.1f}",
                     fontsize=SMALLEST)
        ax.set_axis_off()
    return fig


FIGURES = {
    "sample-digits": sample_digits,
    "lr-sweep": lr_sweep,
    "dead-units": dead_units,
    "loss-curves": loss_curves,
    "templates": templates,
    "hidden-units": hidden_units,
    "top-losses": top_losses,
    "test-confusion": test_confusion,
    "paired": paired,
    "calibration": calibration,
    "unit-ablation": unit_ablation,
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
        for_the_column(fig)
        interactive = plt.isinteractive()  # Jupyter's inline backend, if first used here, turns this on
    plt.interactive(interactive)  # and leaving rc_context would turn it off, hiding every later figure
    return fig


def svg(fig) -> str:
    """`fig` as the report embeds it: SVG at the style's settings, made compact (`svg.compact`)."""
    buf = io.StringIO()
    with plt.rc_context(STYLE):
        fig.savefig(buf, format="svg")
    return compact(buf.getvalue())


def png(fig) -> bytes:
    """`fig` as PNG at the style's settings."""
    buf = io.BytesIO()
    with plt.rc_context(STYLE):
        fig.savefig(buf, format="png")
    return buf.getvalue()


def save(name: str, out: str | Path = "figures", **kw) -> list[Path]:
    """Write figure `name` as PNG and SVG into `out`, each atomically (a failed write, a full disk,
    leaves the previous file as it was); returns the paths."""
    fig = draw(name, **kw)
    out = Path(out)
    paths = [out / f"{name}.{ext}" for ext in ("png", "svg")]
    try:
        atomic_write(paths[0], lambda f: f.write(png(fig)))
        atomic_write(paths[1], lambda f: f.write(svg(fig).encode()))
    finally:
        plt.close(fig)
    return paths
