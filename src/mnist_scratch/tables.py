"""The report's tables, as Markdown (renders the same in HTML and Typst/PDF).

Headers are short and cells hold no settings, so that every table fits the PDF page without a
wrapped model name or a two-line header: the units, the settings and what each ± covers go in the
caption.
"""

from . import analysis as A
from .experiments import CLASSIFIERS

LECUN_LINEAR_ERROR = 0.120  # LeCun et al. 1998, MNIST table: linear classifier (1-layer NN), 12.0% test error
NIELSEN_784_30_10 = 0.9542  # Nielsen 2015, ch. 1: 784-30-10 sigmoid network, squared error, 95.42%
SOFTMAX_REGRESSION = 0.92  # the TensorFlow MNIST tutorial (2015): softmax regression, "about 92%"


def markdown(header: list[str], rows: list[list], align: str | None = None) -> str:
    """A pipe table; `align` has one of l, r, c per column (default: first left, rest right).

    A `|` inside a cell is escaped, so it cannot split the cell. A wide table's column widths follow
    the dashes of its rule line (pandoc's rule for pipe tables), so each column gets dashes in
    proportion to its longest cell as printed (bold markers do not count; the bold header counts
    wider): no column is squeezed until its numbers or its header wrap.
    """
    align = align or "l" + "r" * (len(header) - 1)
    cells = [[str(c).replace("|", "\\|") for c in line] for line in (header, *rows)]
    widths = [max(len(cells[0][i]) + 6, *(len(line[i].replace("**", "")) + 4 for line in cells[1:]))  # as printed;
              for i in range(len(header))]  # the header is set in bold, so wider
    rule = [{"l": ":" + "-" * (w - 1), "r": "-" * (w - 1) + ":", "c": ":" + "-" * (w - 2) + ":"}[a]
            for a, w in zip(align, widths)]
    lines = [cells[0], rule, *cells[1:]]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def pm(values: list[float], scale: float = 100, digits: int = 2) -> str:
    return A.pm(values, scale=scale, digits=digits)


def accuracy(baseline: list[dict]) -> str:
    """Final accuracy and loss per classifier and split, mean ± std over seeds, with the chosen setting."""
    rows = []
    for name, hidden in CLASSIFIERS.items():
        runs = A.by(baseline, "hidden")[(hidden,)]
        cfg = runs[0]["config"]
        rows.append(
            [A.SHORT[name], f"{cfg['lr']:g}", cfg["epochs"]]
            + [pm(A.final(runs, s, "acc")) for s in ("train", "valid", "test")]
            + [pm(A.final(runs, s, "loss"), scale=1, digits=3) for s in ("train", "valid")]
        )
    header = ["model", "lr", "epochs", "train acc.", "valid acc.", "test acc.", "train loss", "valid loss"]
    return markdown(header, rows)


def by_setting(runs: list[dict], key: str, label: str, fmt=str) -> str:
    """Accuracy on every split and validation loss per model and value of `key`, mean ± std over seeds
    (no model column for the hidden size, whose series is a single family)."""
    rows = []
    for name, model_runs in A.families(runs, key).items():
        for (value,), group in A.by(model_runs, key).items():
            rows.append(([] if key == "hidden" else [A.SHORT.get(name, name)]) + [fmt(value)]
                        + [pm(A.final(group, s, "acc")) for s in ("train", "valid", "test")]
                        + [pm(A.final(group, "valid", "loss"), scale=1, digits=3)])
    header = ([] if key == "hidden" else ["model"]) + [label, "train acc.", "valid acc.", "test acc.", "valid loss"]
    return markdown(header, rows, "l" * (len(header) - 5) + "rrrrr")


def paired(comparisons: list[dict]) -> str:
    """Each comparison's mean paired difference with its 95% interval (bold where it excludes 0), on
    validation and held-out test, and how many seeds' McNemar tests find the held-out difference."""
    def mean(d):
        return A.signed(d["mean"])

    def ci(d):
        text = f"{A.signed(d['lo'])}, {A.signed(d['hi'])}"
        return f"**{text}**" if d["verdict"] == "supported" else text

    rows = [[c["label"], mean(c["valid"]), ci(c["valid"]), mean(c["test"]), ci(c["test"]),
             f"{sum(m['p'] < 0.05 for m in c['mcnemar'])} of {len(c['mcnemar'])}"] for c in comparisons]
    return markdown(["a − b", "valid Δ", "95% interval", "test Δ", "95% interval", "McNemar"], rows)


def per_digit(baseline: list[dict]) -> str:
    """Held-out test accuracy per digit, mean over seeds."""
    rows = []
    for name, hidden in CLASSIFIERS.items():
        runs = A.by(baseline, "hidden")[(hidden,)]
        rows.append([A.SHORT[name]] + [f"{100 * m:.1f}" for m, _ in A.per_digit_accuracy(runs, "test")])
    return markdown(["model", *map(str, range(10))], rows)


def templates(readings: list[dict]) -> str:
    rows = [[r["digit"], r["rewards"], r["punishes"], r["lowest"]] for r in readings]
    return markdown(["template", "rewards ink at", "punishes ink at", "scores lowest"], rows, "cllc")


def full_mnist(full: list[dict]) -> str:
    """Full MNIST at the setting chosen on its validation split: accuracy per split, mean ± std over seeds."""
    rows = []
    for name, runs in A.by_model(full).items():
        cfg = runs[0]["config"]
        rows.append([A.SHORT[name], f"{cfg['lr']:g}", cfg["epochs"]]
                    + [pm(A.final(runs, s, "acc")) for s in ("train", "valid", "test")])
    return markdown(["model", "lr", "epochs", "train acc.", "valid acc.", "test acc."], rows)


MSE_LABELS = {"mse-digit": "MSE, digit", "mse-digit-std": "MSE, standardised digit",
              "mse-onehot": "MSE, one-hot", "cross-entropy": "cross-entropy"}


def mse_comparison(mse: list[dict], robustness: list[dict]) -> str:
    """Every objective at its chosen learning rate, and the regression's robustness checks."""
    rows = []
    for obj, runs in A.best_mse_runs(mse).items():
        rows.append([MSE_LABELS[obj], runs[0]["architecture"], runs[0]["config"]["epochs"], f"{runs[0]['config']['lr']:g}"]
                    + [pm(A.final(runs, s, "acc")) for s in ("valid", "test")])
    for (hidden, epochs), runs in A.by(robustness, "hidden", "epochs").items():
        rows.append([MSE_LABELS["mse-digit"], runs[0]["architecture"], epochs, f"{runs[0]['config']['lr']:g}"]
                    + [pm(A.final(runs, s, "acc")) for s in ("valid", "test")])
    return markdown(["objective", "network", "epochs", "lr", "valid acc.", "test acc."], rows)


def gradient_checks(rows: list[dict]) -> str:
    return markdown(["gradient", "max |ours − autograd|"], [[r["check"], f"{r['max_abs_diff']:.1e}"] for r in rows])


