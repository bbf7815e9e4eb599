"""The report's tables, as Markdown (renders the same in HTML and Typst/PDF)."""

from . import analysis as A
from .experiments import CLASSIFIERS, FULL_EPOCHS

LECUN_LINEAR_ERROR = 0.120  # LeCun et al.'s MNIST table: linear classifier (1-layer NN), 12.0% test error
NIELSEN_784_30_10 = 0.9542  # Nielsen, Neural Networks and Deep Learning ch. 1: 784-30-10 sigmoid net, 95.42%


def markdown(header: list[str], rows: list[list], align: str | None = None) -> str:
    """A pipe table; `align` has one of l, r, c per column (default: first left, rest right)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = [header, [rule[a] for a in align], *rows]
    return "\n".join("| " + " | ".join(str(c) for c in line) + " |" for line in lines)


def accuracy(baseline: list[dict]) -> str:
    """Final accuracy and loss per classifier and split: mean ± std over seeds."""
    rows = []
    for name, hidden in CLASSIFIERS.items():
        runs = A.by(baseline, "hidden")[(hidden,)]
        cfg = runs[0]["config"]
        rows.append(
            [f"{name} (lr {cfg['lr']:g}, {cfg['epochs']} epochs)"]
            + [A.pm(A.final(runs, s, "acc")) for s in ("train", "valid", "test")]
            + [A.pm(A.final(runs, s, "loss"), scale=1, digits=3) for s in ("train", "valid")]
        )
    header = ["model", "train acc. %", "validation acc. %", "held-out test acc. %", "train loss", "validation loss"]
    return markdown(header, rows)


def by_setting(runs: list[dict], key: str, label: str, fmt=str) -> str:
    """Accuracy (train, validation) and validation loss per model and value of `key`, over seeds."""
    rows = []
    for name, model_runs in A.families(runs, key).items():
        for (value,), group in A.by(model_runs, key).items():
            rows.append(
                [name, fmt(value), A.pm(A.final(group, "train", "acc")), A.pm(A.final(group, "valid", "acc")),
                 A.pm(A.final(group, "valid", "loss"), scale=1, digits=3), len(group)]
            )
    return markdown(["model", label, "train acc. %", "validation acc. %", "validation loss", "seeds"], rows)


def full_mnist(full: list[dict]) -> str:
    """Test accuracy on all of MNIST beside the published anchors."""
    anchors = {"logistic regression": ("LeCun et al.: linear classifier", 1 - LECUN_LINEAR_ERROR),
               "784-30-10 ReLU": ("Nielsen: 784-30-10 sigmoid, MSE", NIELSEN_784_30_10)}
    rows = []
    for r in full:
        name = A.model_name(r)
        ref, ref_acc = anchors[name]
        rows.append([name, A.pct(r["final"]["train"]["acc"], 2), A.pct(r["final"]["valid"]["acc"], 2),
                     ref, A.pct(ref_acc, 2)])
    header = ["model", "train acc.", f"test acc. ({FULL_EPOCHS} epochs)", "published anchor", "anchor acc."]
    return markdown(header, rows)


def mse_comparison(mse: list[dict]) -> str:
    """The three objectives at their best learning rate: accuracy on validation and held-out test."""
    labels = {"mse-digit": "MSE, one output (the digit's value)", "mse-onehot": "MSE, ten outputs (one-hot)",
              "cross-entropy": "cross-entropy, ten outputs"}
    rows = []
    for obj, runs in A.best_mse_runs(mse).items():
        rows.append([labels[obj], runs[0]["architecture"], f"{runs[0]['config']['lr']:g}",
                     A.pm(A.final(runs, "valid", "acc")), A.pm(A.final(runs, "test", "acc")), len(runs)])
    header = ["objective", "network", "lr", "validation acc. %", "held-out test acc. %", "seeds"]
    return markdown(header, rows)


def gradient_checks(rows: list[dict]) -> str:
    return markdown(["gradient", "max |ours − autograd|"], [[r["check"], f"{r['max_abs_diff']:.1e}"] for r in rows])
