"""Numbers the report states, computed from run results (lists of result dicts)."""

import math
from collections import Counter, defaultdict
from statistics import mean, stdev

import torch

from .experiments import CLASSIFIERS, LOGISTIC, TWO_LAYER, best_setting, choose

MODEL_NAMES = {hidden: name for name, hidden in CLASSIFIERS.items()}
SHORT = {"logistic regression": "logistic", "784-30-10 ReLU": "784-30-10"}  # for narrow table cells


def model_name(result: dict) -> str:
    hidden = tuple(result["config"]["hidden"])
    return MODEL_NAMES.get(hidden, result["architecture"])


def by_model(results: list[dict]) -> dict[str, list[dict]]:
    """Results grouped by model name, in first-seen order."""
    out: dict[str, list[dict]] = {}
    for r in results:
        out.setdefault(model_name(r), []).append(r)
    return out


def families(results: list[dict], key: str) -> dict[str, list[dict]]:
    """The series of a sweep over `key`: one per model, or a single one when `key` is the hidden size."""
    return {"784-h-10 ReLU": results} if key == "hidden" else by_model(results)


def by(results: list[dict], *keys: str) -> dict[tuple, list[dict]]:
    """Results grouped by config values (`hidden` as a tuple), in first-seen order."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in results:
        groups[tuple(_key(r["config"][k]) for k in keys)].append(r)
    return dict(groups)


def _key(value):
    return tuple(value) if isinstance(value, list) else value


def spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return mean(values), (stdev(values) if len(values) > 1 else 0.0)


def final(results: list[dict], split: str, metric: str) -> list[float]:
    """A final metric of every run that did not diverge."""
    return [r["final"][split][metric] for r in results if not r["diverged"] and r["final"].get(split)]


def pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f}%"


def pm(values: list[float], scale: float = 100, digits: int = 1) -> str:
    """'mean ± std' of `values` times `scale` (percent by default)."""
    m, s = spread(values)
    return f"{scale * m:.{digits}f} ± {scale * s:.{digits}f}"


def signed(x: float, scale: float = 100, digits: int = 2) -> str:
    """`x` times `scale` with its sign (a difference, in percentage points by default); a value that
    rounds to zero is written without one, so no '-0.00'."""
    text = f"{scale * x:+.{digits}f}"
    return text[1:] if float(text) == 0 else text


def chosen(sweep: list[dict]) -> dict[str, tuple[float, int]]:
    """The (learning rate, epochs) picked per classifier, by model name."""
    return {MODEL_NAMES[h]: v for h, v in choose(sweep).items()}


def mean_curves(results: list[dict], key: str) -> tuple[list[float], list[float]]:
    """Per-epoch mean and standard deviation of a history series over runs (seeds)."""
    series = [r["history"][key] for r in results if not r["diverged"]]
    n = min(map(len, series))
    columns = list(zip(*(s[:n] for s in series)))
    return [mean(c) for c in columns], [stdev(c) if len(c) > 1 else 0.0 for c in columns]


def initial_loss(results: list[dict]) -> list[float]:
    """The training-set loss before any training, per run."""
    return [r["history"]["train_loss"][0] for r in results]


def sweep_points(sweep: list[dict]) -> dict[str, dict[int, list[tuple[float, float | None, float | None]]]]:
    """Per model and epoch budget: (lr, final validation loss, final validation accuracy), None where diverged."""
    points: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for r in sweep:
        ok = not r["diverged"]
        point = (r["config"]["lr"], *((r["final"]["valid"]["loss"], r["final"]["valid"]["acc"]) if ok else (None, None)))
        points[model_name(r)][r["config"]["epochs"]].append(point)
    return {name: dict(budgets) for name, budgets in points.items()}


# --- the MSE-regression analysis ---------------------------------------------------------------


def best_mse_runs(results: list[dict]) -> dict[str, list[dict]]:
    """Per objective, the runs (all seeds) at the learning rate `best_setting` picks: the classifiers' rule."""
    best: dict[str, list[dict]] = {}
    for (obj,), runs in by(results, "objective").items():
        setting = best_setting(runs, ("lr",))
        if setting is not None:
            best[obj] = [r for r in runs if r["config"]["lr"] == setting[0]]
    return best


def regression_outputs(run: dict, labels: torch.Tensor) -> dict[int, list[float]]:
    """The single-number model's raw validation outputs, grouped by the true digit."""
    out: dict[int, list[float]] = defaultdict(list)
    for y, value in zip(labels.tolist(), run["valid_output"]):
        out[y].append(value)
    return dict(sorted(out.items()))


def error_distance(run: dict, labels: torch.Tensor) -> dict[str, float]:
    """Among wrong predictions: the share off by one digit, and the mean |predicted - true|."""
    preds = torch.tensor(run["valid_pred"])
    wrong = preds != labels
    dist = (preds[wrong] - labels[wrong]).abs().double()
    return {"off_by_one": (dist == 1).double().mean().item(), "mean_distance": dist.mean().item()}


def second_choice_right(run: dict, labels: torch.Tensor) -> float:
    """Among a classifier's wrong predictions, the share whose second-ranked class is the true one."""
    preds, second = torch.tensor(run["valid_pred"]), torch.tensor(run["valid_second"])
    wrong = preds != labels
    return (second[wrong] == labels[wrong]).double().mean().item()


def shrinkage(run: dict, labels: torch.Tensor) -> dict[str, float]:
    """Least-squares slope of output on true digit (1 = no hedging), and the mean outputs for 0 and 9."""
    out = torch.tensor(run["valid_output"], dtype=torch.float64)
    y = labels.double()
    slope = ((y - y.mean()) * (out - out.mean())).sum() / ((y - y.mean()) ** 2).sum()
    return {"slope": slope.item(), "mean_for_0": out[y == 0].mean().item(), "mean_for_9": out[y == 9].mean().item()}


def in_between(run: dict, labels: torch.Tensor, pairs=((4, 9), (3, 8), (1, 7))) -> list[dict]:
    """Validation images of the pairs that the single-number model predicts half-way between.

    For a pair (a, b): the true a's and b's whose output lies within 1 of the midpoint (a 4 or a 9
    predicted near 6.5), closest first. Landing there is not by itself evidence of hedging between
    the pair: see `midpoint_rates` and `lean`.
    """
    found = []
    for a, b in pairs:
        mid = (a + b) / 2
        for i, (y, v) in enumerate(zip(labels.tolist(), run["valid_output"])):
            if y in (a, b) and abs(v - mid) < 1:
                found.append({"index": i, "true": y, "output": v, "pair": (a, b), "gap": abs(v - mid)})
    return sorted(found, key=lambda f: f["gap"])


def pair_loss_ratio(a: int, b: int, c: int) -> float:
    """How many times more squared error predicting `b` costs than predicting `c` for a true `a`."""
    return (b - a) ** 2 / (c - a) ** 2


# --- statistics: what a difference over seeds, or over images, supports ----------------------------


def t_quantile(df: int, q: float = 0.975) -> float:
    """The q-quantile of Student's t distribution with `df` degrees of freedom."""
    from scipy.stats import t  # imported here: only the report's comparisons need it

    return float(t.ppf(q, df))


LEVEL = 0.95  # of every interval in the report


def interval(values: list[float], level: float = LEVEL) -> dict:
    """Mean of `values` with its two-sided t-interval (n - 1 degrees of freedom); the verdict is
    "supported" when the interval excludes 0, else "within noise"."""
    n = len(values)
    m, s = spread(values)
    half = t_quantile(n - 1, (1 + level) / 2) * s / math.sqrt(n) if n > 1 else math.inf
    lo, hi = m - half, m + half
    return {"mean": m, "lo": lo, "hi": hi, "n": n, "positive": sum(v > 0 for v in values),
            "verdict": "supported" if lo > 0 or hi < 0 else "within noise"}


def by_seed(runs: list[dict]) -> dict[int, dict]:
    return {r["config"]["seed"]: r for r in runs if not r["diverged"]}


def paired(runs_a: list[dict], runs_b: list[dict], split: str = "valid", metric: str = "acc") -> dict:
    """`interval` of the per-seed differences a - b of a final metric, over the seeds both have."""
    a, b = by_seed(runs_a), by_seed(runs_b)
    seeds = sorted(a.keys() & b.keys())
    return interval([a[s]["final"][split][metric] - b[s]["final"][split][metric] for s in seeds])


def mcnemar(pred_a: list[int], pred_b: list[int], labels: torch.Tensor) -> dict:
    """McNemar's exact test of two classifiers on the same images.

    `a_only`: images a gets right and b wrong; `b_only`: the reverse. Under "equally accurate" each
    discordant image is a fair coin, so p is the two-sided binomial tail of min(a_only, b_only).
    """
    right_a = torch.tensor(pred_a) == labels
    right_b = torch.tensor(pred_b) == labels
    a_only, b_only = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    n, k = a_only + b_only, min(a_only, b_only)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0
    return {"a_only": a_only, "b_only": b_only, "p": p}


def mcnemar_by_seed(runs_a: list[dict], runs_b: list[dict], labels: torch.Tensor, split: str = "test") -> list[dict]:
    """`mcnemar` on the held-out predictions of each seed both settings have."""
    a, b = by_seed(runs_a), by_seed(runs_b)
    return [mcnemar(a[s][f"{split}_pred"], b[s][f"{split}_pred"], labels) for s in sorted(a.keys() & b.keys())]


def binomial_se(p: float, n: int) -> float:
    """Standard error of an accuracy p measured on n images: the image-sampling error a seed spread omits."""
    return math.sqrt(p * (1 - p) / n)


# --- the sweep: settings, their mean over seeds, and the plateau around the best ------------------


def settings(sweep: list[dict], model: str) -> dict[tuple[float, int], dict]:
    """Per (lr, epochs) of `model`: mean validation accuracy and loss over seeds (None where a seed diverged)."""
    out = {}
    for (lr, epochs), runs in by([r for r in sweep if model_name(r) == model], "lr", "epochs").items():
        ok = not any(r["diverged"] for r in runs)
        out[(lr, epochs)] = {
            "acc": mean(final(runs, "valid", "acc")) if ok else None,
            "loss": mean(final(runs, "valid", "loss")) if ok else None,
            "seeds": len(runs),
        }
    return out


def plateau(sweep: list[dict], model: str, n_valid: int) -> dict:
    """The settings whose mean validation accuracy is within one binomial standard error of the best's.

    One standard error of an accuracy on `n_valid` images is what a different draw of validation
    images alone would move it by: settings closer than that are not told apart by this split.
    """
    table = settings(sweep, model)
    best = max((v["acc"] for v in table.values() if v["acc"] is not None))
    width = binomial_se(best, n_valid)
    inside = sorted(k for k, v in table.items() if v["acc"] is not None and v["acc"] >= best - width)
    return {"best": best, "width": width, "settings": inside}


# --- the trained weights ---------------------------------------------------------------------------


def layers(run: dict) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """A run's recorded weights, per linear layer: W as (n_out, n_in) and the bias (or None)."""
    return [
        (torch.tensor(layer["weight"]), None if layer["bias"] is None else torch.tensor(layer["bias"]))
        for layer in run["weights"]
    ]


def forward(params: list[tuple[torch.Tensor, torch.Tensor | None]], x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The network's outputs on `x` from recorded weights, and every hidden layer's ReLU activations."""
    hidden = []
    for i, (w, b) in enumerate(params):
        if i:
            x = x.clamp_min(0)
            hidden.append(x)
        x = x @ w.T + (b if b is not None else 0)
    return x, hidden


def probabilities(run: dict, x: torch.Tensor) -> torch.Tensor:
    """Softmax of a classifier's outputs on `x`, recomputed from its recorded weights."""
    out, _ = forward(layers(run), x)
    return out.softmax(dim=1)


def dead_hidden_units(run: dict, x: torch.Tensor) -> torch.Tensor:
    """Boolean per unit of the first hidden layer: True where it outputs 0 for every row of `x`."""
    _, hidden = forward(layers(run), x)
    return (hidden[0] > 0).sum(0) == 0


REGIONS = [["top left", "top", "top right"], ["left", "centre", "right"], ["bottom left", "bottom", "bottom right"]]
INK_BOX = (4, 24)  # MNIST centres each digit's 20 x 20 box inside the 28 x 28 image


def region_masses(image: torch.Tensor) -> torch.Tensor:
    """Sum of a 28 x 28 map over a 3 x 3 grid of the digit's 20 x 20 box."""
    lo, hi = INK_BOX
    box = image.reshape(28, 28)[lo:hi, lo:hi]
    cuts = [r.tolist() for r in torch.arange(hi - lo).tensor_split(3)]
    return torch.tensor([[box[rows][:, cols].sum().item() for cols in cuts] for rows in cuts])


def template_reading(w: torch.Tensor, class_means: torch.Tensor) -> list[dict]:
    """For each class's weight template (rows of `w`, 784 each): where it rewards and punishes ink
    most (the 3 x 3 cell of the digit box holding the most positive and the most negative weight),
    and which other class's mean image it scores lowest."""
    out = []
    for k, template in enumerate(w):
        pos, neg = region_masses(template.clamp_min(0)), region_masses((-template).clamp_min(0))
        scores = class_means @ template
        scores[k] = math.inf
        out.append({
            "digit": k,
            "rewards": REGIONS[int(pos.argmax()) // 3][int(pos.argmax()) % 3],
            "punishes": REGIONS[int(neg.argmax()) // 3][int(neg.argmax()) % 3],
            "lowest": int(scores.argmin()),
        })
    return out


def class_means(split) -> torch.Tensor:
    """The mean image of each digit (10 x 784)."""
    return torch.stack([split.x[split.y == d].mean(0) for d in range(10)])


# --- the classifiers' mistakes ---------------------------------------------------------------------


def top_losses(run: dict, split, k: int = 16) -> list[dict]:
    """The `k` images with the highest cross-entropy loss: true digit, prediction and its probability."""
    p = probabilities(run, split.x)
    loss = -p[torch.arange(len(split.y)), split.y].log()
    order = loss.argsort(descending=True)[:k]
    pred = p.argmax(1)
    return [{"index": int(i), "true": int(split.y[i]), "pred": int(pred[i]), "prob": float(p[i, pred[i]]),
             "loss": float(loss[i])} for i in order]


def mean_confusion(runs: list[dict], split: str = "test") -> torch.Tensor:
    """Confusion counts (row = true, column = predicted) averaged over runs."""
    return torch.tensor([r["confusion"][split] for r in runs if not r["diverged"]], dtype=torch.float64).mean(0)


def per_digit_accuracy(runs: list[dict], split: str = "test") -> list[tuple[float, float]]:
    """Per digit: mean and standard deviation over runs of the share of that digit classified right."""
    accs = [[row[d] / sum(row) for d, row in enumerate(r["confusion"][split])] for r in runs if not r["diverged"]]
    return [spread(list(col)) for col in zip(*accs)]


def error_pairs(runs: list[dict], split: str = "test") -> list[dict]:
    """Unordered digit pairs by their share of all errors (both directions, summed over runs)."""
    conf = mean_confusion(runs, split)
    errors = conf.sum() - conf.trace()
    pairs = [{"pair": (a, b), "count": float(conf[a, b] + conf[b, a]), "share": float((conf[a, b] + conf[b, a]) / errors)}
             for a in range(10) for b in range(a + 1, 10)]
    return sorted(pairs, key=lambda p: -p["count"])


# --- dead units ----------------------------------------------------------------------------------


def dead_counts(runs: list[dict]) -> list[int]:
    """Per run that did not diverge: how many first-layer hidden units are dead at the end."""
    return [round(r["dead_units"][0] * r["config"]["hidden"][0]) for r in runs if not r["diverged"]]


def dead_trace(runs: list[dict]) -> tuple[list[int], list[float]]:
    """The steps every run's trace shares and the mean share of dead first-layer units there."""
    traces = [dict(zip(r["dead_trace"]["step"], (s[0] for s in r["dead_trace"]["share"]))) for r in runs]
    steps = sorted(set.intersection(*(set(t) for t in traces)))
    return steps, [mean(t[s] for t in traces) for s in steps]


def first_step_reaching(steps: list[int], shares: list[float], level: float) -> int | None:
    """The first traced step at which the dead share is at least `level` (None if never)."""
    return next((s for s, v in zip(steps, shares) if v >= level), None)


# --- the single-number regression: what "hedging" survives --------------------------------------


def fitted_line(run: dict, labels: torch.Tensor) -> tuple[float, float]:
    """Intercept and slope of the least-squares line of output on true digit."""
    out, y = torch.tensor(run["valid_output"], dtype=torch.float64), labels.double()
    slope = ((y - y.mean()) * (out - out.mean())).sum() / ((y - y.mean()) ** 2).sum()
    return (out.mean() - slope * y.mean()).item(), slope.item()


def residuals(run: dict, labels: torch.Tensor) -> torch.Tensor:
    """Each output minus the fitted line at its true digit: what is left after the shrinkage every
    unsure squared-error predictor shows."""
    a, b = fitted_line(run, labels)
    return torch.tensor(run["valid_output"], dtype=torch.float64) - (a + b * labels.double())


def digit_offsets(run: dict, labels: torch.Tensor) -> list[float]:
    """Per true digit, the mean residual from the fitted line."""
    r = residuals(run, labels)
    return [r[labels == d].mean().item() for d in range(10)]


def look_alikes(conf: torch.Tensor) -> list[int]:
    """Per digit, the digit a classifier most often mistakes it for (from its confusion matrix)."""
    off = conf.clone().double()
    off.fill_diagonal_(-1)
    return off.argmax(1).tolist()


MIRROR_BAND = (1.5, 3.5)  # distances from the fitted line: beyond rounding noise, short of the next digit but two


def mirror(run: dict, labels: torch.Tensor, partner: list[int], near: float = MIRROR_BAND[0],
           far: float = MIRROR_BAND[1]) -> list[dict]:
    """Per digit: how many of its images land `near` to `far` from the fitted line towards its
    look-alike `partner[d]`, against the same distance away from it."""
    r = residuals(run, labels)
    out = []
    for d in range(10):
        side = 1 if partner[d] > d else -1
        mine = r[labels == d] * side
        out.append({"digit": d, "partner": partner[d], "toward": int(((mine >= near) & (mine <= far)).sum()),
                    "away": int(((mine <= -near) & (mine >= -far)).sum())})
    return out


def midpoint_rates(run: dict, labels: torch.Tensor, width: float = 1.0) -> dict[tuple[int, int], float]:
    """For every pair a < b: the share of its a's and b's whose output lies within `width` of (a + b) / 2."""
    out = torch.tensor(run["valid_output"])
    rates = {}
    for a in range(10):
        for b in range(a + 1, 10):
            mine = (labels == a) | (labels == b)
            rates[(a, b)] = ((out[mine] - (a + b) / 2).abs() < width).double().mean().item()
    return rates


def same_distance_baseline(rates: dict[tuple[int, int], float], pair: tuple[int, int], exclude) -> float:
    """The mean midpoint rate of the pairs as far apart as `pair`, leaving out the pairs in `exclude`."""
    gap = pair[1] - pair[0]
    others = [v for (a, b), v in rates.items() if b - a == gap and (a, b) not in exclude]
    return mean(others)


UNSURE, SURE = 0.1, 0.01  # the classifier's runner-up probability: unsure from, sure below


def lean(run: dict, labels: torch.Tensor, probs: torch.Tensor, unsure: float = UNSURE, sure: float = SURE) -> dict:
    """Does the regression lean towards the digit an independent classifier sees in the same image?

    For each image, the classifier's runner-up (its most probable wrong digit) and that digit's
    probability; the regression *leans* when its output lies on the runner-up's side of the median
    output for the image's true digit (the median removes the shrinkage and any offset of the digit
    as a whole). Counted for the images the classifier is unsure of (runner-up at least `unsure`)
    and, as the baseline, those it is sure of (runner-up below `sure`), with the median shift
    towards the runner-up; `spread` is the median distance of any output from its digit's median.
    """
    p = probs.clone()
    p[torch.arange(len(labels)), labels] = -1
    prob, runner = p.max(1)
    out = torch.tensor(run["valid_output"], dtype=torch.float64)
    medians = torch.stack([out[labels == d].median() if (labels == d).any() else out.new_tensor(0.0) for d in range(10)])
    toward = torch.sign(out - medians[labels]) == torch.sign((runner - labels).double())
    shift = (out - medians[labels]) * torch.sign((runner - labels).double())  # towards the runner-up, in digits
    out = {"spread": (out - medians[labels]).abs().median().item()}
    for name, mask in (("unsure", prob >= unsure), ("sure", prob < sure)):
        n, k = int(mask.sum()), int((toward & mask).sum())
        tail = sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n if n else 1.0  # one-sided: more than half
        out[name] = {"n": n, "lean": k / n if n else math.nan, "p": tail,
                     "shift": shift[mask].median().item() if n else math.nan}
    return out


def onehot_sums(run: dict, x: torch.Tensor) -> tuple[float, float]:
    """Mean and standard deviation over images of the one-hot MSE model's ten outputs summed: 1 if
    they estimate class probabilities, as the squared-error optimum for one-hot targets does."""
    out, _ = forward(layers(run), x)
    return spread(out.sum(1).tolist())


# --- why biases matter little: inputs in a cone around the mean image ------------------------------


def cone(x: torch.Tensor) -> dict:
    """How tightly images cluster around the mean image's direction u.

    `cos_*`: the cosine between each image and the mean image; `cv`: the coefficient of variation of
    x . u. When x . u is nearly the same c for every image, a weight component beta * u adds
    beta * c to every input's pre-activation: it acts as a bias.
    """
    u = x.mean(0)
    u = u / u.norm()
    cos = (x @ u) / x.norm(dim=1)
    proj = x @ u
    return {"cos_min": cos.min().item(), "cos_p01": cos.quantile(0.01).item(), "cos_median": cos.median().item(),
            "cv": (proj.std() / proj.mean()).item(), "u": u, "c": proj.mean().item()}


def fold_first_bias(run: dict, train_x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """The run's weights with the first layer's bias b moved into the weights along the mean-image
    direction u: W + (b / c) u^T, no bias (c = the mean of x . u over the training images)."""
    (w, b), *rest = layers(run)
    c = cone(train_x)
    return [(w + torch.outer(b / c["c"], c["u"]), None), *rest]


def accuracy(params, split) -> float:
    out, _ = forward(params, split.x)
    return (out.argmax(1) == split.y).double().mean().item()


# --- the report's comparisons ---------------------------------------------------------------------


def at_chosen_rate(runs: list[dict]) -> list[dict]:
    """The hidden-size runs at the rate chosen for 784-30-10 (the most common rate: the rate check
    adds only a few narrow widths at other rates)."""
    rates = Counter(r["config"]["lr"] for r in runs)
    lr = rates.most_common(1)[0][0]
    return [r for r in runs if r["config"]["lr"] == lr]


def best_decay(runs: list[dict]) -> float:
    """The weight decay of the highest mean validation accuracy (the tuning rule, over the decays)."""
    return best_setting(runs, ("weight_decay",))[0]


def comparisons(baseline: list[dict], decay: list[dict], biases: list[dict], test_labels: torch.Tensor | None = None) -> list[dict]:
    """The report's paired comparisons: per-seed differences in final accuracy with their 95%
    t-intervals on the validation and held-out test splits, and (given the test labels) McNemar's
    test per seed on the held-out predictions.

    Two-layer against logistic regression; per model, the best weight decay (chosen on validation,
    so its validation difference is optimistic, the held-out one is not) against none; per model,
    biases against none. The settings of a pair share each seed's initialisation generator and
    batch order.
    """
    base = by(baseline, "hidden")
    pairs = [("784-30-10 − logistic", base[(TWO_LAYER,)], base[(LOGISTIC,)])]
    for name, runs in by_model(decay).items():
        groups = by(runs, "weight_decay")
        pairs.append((f"best decay − none, {SHORT[name]}", groups[(best_decay(runs),)], groups[(0.0,)]))
    for name, runs in by_model(biases).items():
        groups = by(runs, "bias")
        pairs.append((f"bias − none, {SHORT[name]}", groups[(True,)], groups[(False,)]))
    out = []
    for label, a, b in pairs:
        c = {"label": label, "a": a, "b": b, "valid": paired(a, b, "valid"), "test": paired(a, b, "test")}
        if test_labels is not None:
            c["mcnemar"] = mcnemar_by_seed(a, b, test_labels)
        out.append(c)
    return out


def ambiguous(reg: dict, ce: dict, split, k: int = 12) -> list[dict]:
    """The `k` images of `split` the classifier `ce` is most torn on between the true digit and one
    other (the largest smaller probability of the two), with both probabilities and the regression
    `reg`'s output for the same image."""
    p = probabilities(ce, split.x)
    rows = torch.arange(len(split.y))
    true_p = p[rows, split.y].clone()
    p[rows, split.y] = -1
    other_p, other = p.max(1)
    order = torch.minimum(true_p, other_p).argsort(descending=True)[:k]
    return [{"index": int(i), "true": int(split.y[i]), "true_prob": float(true_p[i]), "runner": int(other[i]),
             "prob": float(other_p[i]), "output": reg["valid_output"][i]} for i in order]


# --- what the hidden units look like ----------------------------------------------------------------

NOISE_BELOW = 0.3  # neighbour correlation: independent initial weights give about 0, trained maps 0.5 and more
STROKE_FROM = 0.35  # orientation coherence of a smoothed map: one dominant stroke direction


def ink_mask(x: torch.Tensor, share: float = 0.01) -> torch.Tensor:
    """28 x 28 booleans: the pixels with ink in at least `share` of the images (elsewhere weights never train)."""
    return ((x > 0).double().mean(0) >= share).reshape(28, 28)


def neighbour_correlation(m: torch.Tensor, ink: torch.Tensor) -> float:
    """Correlation of each inked pixel's weight with its right-hand neighbour's: the map's smoothness."""
    both = ink[:, :-1] & ink[:, 1:]
    pairs = torch.stack([m[:, :-1][both], m[:, 1:][both]]).double()
    return torch.corrcoef(pairs)[0, 1].item()


def box_smooth(m: torch.Tensor) -> torch.Tensor:
    """The mean over each pixel's 3 x 3 neighbourhood (zeros beyond the border)."""
    padded = torch.zeros(30, 30, dtype=m.dtype)
    padded[1:-1, 1:-1] = m
    return sum(padded[i : i + 28, j : j + 28] for i in range(3) for j in range(3)) / 9


def coherence(m: torch.Tensor, ink: torch.Tensor) -> float:
    """How much the gradients of a (smoothed) weight map share one direction, 0 to 1, from the
    eigenvalues of its structure tensor over the inked pixels: near 1 for parallel bars or one edge,
    lower for spots, rings and curves."""
    m = box_smooth(m).double()
    gy, gx = m[1:, :-1] - m[:-1, :-1], m[:-1, 1:] - m[:-1, :-1]
    keep = ink[:-1, :-1] & ink[1:, :-1] & ink[:-1, 1:]
    gx, gy = gx[keep], gy[keep]
    tensor = torch.stack([torch.stack([(gx * gx).sum(), (gx * gy).sum()]), torch.stack([(gx * gy).sum(), (gy * gy).sum()])])
    low, high = torch.linalg.eigvalsh(tensor).tolist()
    return (high - low) / (high + low)


def unit_kinds(run: dict, train_x: torch.Tensor) -> list[str]:
    """Each first-layer hidden unit's kind, by a stated rule: `dead` (outputs 0 for every training
    image), `noise` (neighbour correlation below NOISE_BELOW: still looks like its random
    initialisation), `stroke` (orientation coherence at least STROKE_FROM), else `blob` (structured,
    without one dominant direction)."""
    (w, _), *_ = layers(run)
    ink = ink_mask(train_x)
    dead = dead_hidden_units(run, train_x)
    kinds = []
    for j, row in enumerate(w):
        m = row.reshape(28, 28)
        if dead[j]:
            kinds.append("dead")
        elif neighbour_correlation(m, ink) < NOISE_BELOW:
            kinds.append("noise")
        else:
            kinds.append("stroke" if coherence(m, ink) >= STROKE_FROM else "blob")
    return kinds
