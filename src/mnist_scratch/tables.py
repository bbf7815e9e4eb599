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


def interval(d: dict, digits: int = 1) -> str:
    """An accuracy (or share) with its interval, in percent: '93.6 [93.1, 94.1]' (the value alone
    when it is exact)."""
    if d["lo"] == d["hi"] == d["mean"]:
        return f"{100 * d['mean']:.{digits}f}"
    return f"{100 * d['mean']:.{digits}f} [{100 * d['lo']:.{digits}f}, {100 * d['hi']:.{digits}f}]"


def mean_pct(runs: list[dict], split: str, metric: str = "acc", digits: int = 1) -> str:
    values = A.final(runs, split, metric)
    return f"{100 * sum(values) / len(values):.{digits}f}"


def mean_loss(runs: list[dict], split: str) -> str:
    values = A.final(runs, split, "loss")
    return f"{sum(values) / len(values):.3f}"


def accuracy(baseline: list[dict], test_labels) -> str:
    """Per classifier at its chosen setting: held-out accuracy with its interval, then the validation
    and training accuracy and the losses, means over seeds."""
    rows = []
    for name, hidden in CLASSIFIERS.items():
        runs = A.by(baseline, "hidden")[(hidden,)]
        cfg = runs[0]["config"]
        rows.append([A.SHORT[name], f"{cfg['lr']:g}", cfg["epochs"], interval(A.accuracy_interval(runs, "test", test_labels)),
                     mean_pct(runs, "valid"), mean_pct(runs, "train"), mean_loss(runs, "test"), mean_loss(runs, "valid")])
    header = ["model", "lr", "epochs", "held-out acc.", "valid acc.", "train acc.", "held-out loss", "valid loss"]
    return markdown(header, rows)


def by_setting(runs: list[dict], key: str, label: str, test_labels, fmt=str) -> str:
    """Per model and value of `key`: held-out accuracy with its interval, validation and training
    accuracy and validation loss, means over seeds (no model column for a hidden-size series)."""
    rows = []
    for name, model_runs in A.families(runs, key).items():
        for (value,), group in A.by(model_runs, key).items():
            rows.append(([] if key == "hidden" else [A.SHORT.get(name, name)]) + [fmt(value)]
                        + [interval(A.accuracy_interval(group, "test", test_labels)), mean_pct(group, "valid"),
                           mean_pct(group, "train"), mean_loss(group, "valid")])
    header = ([] if key == "hidden" else ["model"]) + [label, "held-out acc.", "valid acc.", "train acc.", "valid loss"]
    return markdown(header, rows, "l" * (len(header) - 4) + "rrrr")


def hidden_sizes(own: dict[int, list[dict]], test_labels) -> str:
    """Per hidden size at its own tuned rate: the rate, held-out accuracy with its interval, validation
    and training accuracy and validation loss, means over seeds."""
    rows = [[h, f"{g[0]['config']['lr']:g}", interval(A.accuracy_interval(g, "test", test_labels)), mean_pct(g, "valid"),
             mean_pct(g, "train"), mean_loss(g, "valid")] for h, g in own.items()]
    return markdown(["h", "lr", "held-out acc.", "valid acc.", "train acc.", "valid loss"], rows, "rrrrrr")


def paired(comparisons: list[dict]) -> str:
    """Each comparison's difference a - b with its interval (bold where it excludes 0), on the held-out
    test and the validation split, in percentage points."""
    def ci(d):
        text = f"{A.signed(d['lo'])}, {A.signed(d['hi'])}"
        return f"**{text}**" if d["verdict"] == "supported" else text

    rows = [[c["label"], A.signed(c["test"]["mean"]), ci(c["test"]), A.signed(c["valid"]["mean"]), ci(c["valid"])]
            for c in comparisons]
    return markdown(["a − b", "held-out Δ", "95% interval", "valid Δ", "95% interval"], rows)


def per_digit(baseline: list[dict], test_labels) -> str:
    """Held-out test accuracy per digit, mean over seeds, and how many held-out images each digit has."""
    rows = [["images"] + [int((test_labels == d).sum()) for d in range(10)]]
    for name, hidden in CLASSIFIERS.items():
        runs = A.by(baseline, "hidden")[(hidden,)]
        rows.append([A.SHORT[name]] + [f"{100 * m:.1f}" for m, _ in A.per_digit_accuracy(runs, "test")])
    return markdown(["", *map(str, range(10))], rows)


def baselines(rows: list[tuple[str, dict, dict]]) -> str:
    """Each method with its validation and held-out accuracy, each with its interval."""
    return markdown(["method", "held-out acc.", "valid acc."], [[name, interval(t), interval(v)] for name, t, v in rows])


def calibration(rows: list[tuple[str, dict]]) -> str:
    """Per model: accuracy, mean confidence, expected calibration error and the share of errors made
    with confidence at least 0.9, over every validation image of every seed."""
    return markdown(["model", "accuracy", "mean confidence", "ECE", "errors at p ≥ 0.9"],
                    [[name, f"{100 * c['accuracy']:.1f}", f"{100 * c['confidence']:.1f}", f"{c['ece']:.3f}",
                      f"{100 * c['confident_errors']:.0f}%"] for name, c in rows])


def early_stopping(rows: list[dict]) -> str:
    """Per model: the epochs the runs stopped after, and the held-out accuracy and loss at the end of
    the full run against after stopping early."""
    return markdown(["model", "stopped after", "held-out acc., full", "stopped", "held-out loss, full", "stopped"],
                    [[r["model"], r["epochs"], r["acc_full"], r["acc_stopped"], r["loss_full"], r["loss_stopped"]]
                     for r in rows])


def templates(readings: list[dict]) -> str:
    rows = [[r["digit"], r["rewards"], r["punishes"], r["lowest"]] for r in readings]
    return markdown(["template", "rewards ink at", "punishes ink at", "scores lowest"], rows, "cllc")


def full_mnist(full: list[dict], test_labels, seen) -> str:
    """Full MNIST at the setting chosen on its validation split: test accuracy with its interval, on
    all 10,000 testing images and on the two halves (`seen`: the subset's validation images), then
    validation and training accuracy, means over seeds."""
    rows = []
    for name, runs in A.by_model(full).items():
        cfg = runs[0]["config"]
        right = A.correct(runs, "test", test_labels)
        rows.append([A.SHORT[name], f"{cfg['lr']:g}", cfg["epochs"], interval(A.mean_interval(right), 2),
                     interval(A.mean_interval(right[:, ~seen]), 2), interval(A.mean_interval(right[:, seen]), 2),
                     mean_pct(runs, "valid", digits=2), mean_pct(runs, "train", digits=2)])
    return markdown(["model", "lr", "epochs", "test acc.", "unseen half", "seen half", "valid acc.", "train acc."], rows)


MSE_LABELS = {"mse-digit": "MSE, digit", "mse-digit-std": "MSE, standardised digit",
              "mse-shuffled": "MSE, shuffled digits", "mse-onehot": "MSE, one-hot", "cross-entropy": "cross-entropy"}


def mse_comparison(mse: list[dict], robustness: list[dict], test_labels) -> str:
    """Every objective at its chosen learning rate, and the regression's robustness checks: held-out
    accuracy with its interval and validation accuracy, mean over seeds."""
    rows = []
    best = A.best_mse_runs(mse)
    for obj in MSE_LABELS:
        runs = best[obj]
        rows.append([MSE_LABELS[obj], runs[0]["architecture"], runs[0]["config"]["epochs"], f"{runs[0]['config']['lr']:g}",
                     interval(A.accuracy_interval(runs, "test", test_labels)), mean_pct(runs, "valid")])
    for (hidden, epochs), runs in A.by(robustness, "hidden", "epochs").items():
        rows.append([MSE_LABELS["mse-digit"], runs[0]["architecture"], epochs, f"{runs[0]['config']['lr']:g}",
                     interval(A.accuracy_interval(runs, "test", test_labels)), mean_pct(runs, "valid")])
    return markdown(["objective", "network", "epochs", "lr", "held-out acc.", "valid acc."], rows)


def gradient_checks(rows: list[dict]) -> str:
    return markdown(["gradient", "max |ours − autograd|"], [[r["check"], f"{r['max_abs_diff']:.1e}"] for r in rows])


