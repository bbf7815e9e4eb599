"""Numbers the report states, computed from run results (lists of result dicts)."""

import math
from collections import defaultdict
from functools import cache
from pathlib import Path
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


def error_distance(run: dict, labels: torch.Tensor, values=range(10)) -> dict[str, float]:
    """Among wrong predictions: the share off by one and the mean |predicted - true|, measured between
    the digits' `values` (the digits themselves by default; a shuffled control's targets otherwise)."""
    preds = torch.tensor(run["valid_pred"])
    wrong = preds != labels
    value = torch.tensor(list(values))
    dist = (value[preds[wrong]] - value[labels[wrong]]).abs().double()
    return {"off_by_one": (dist == 1).double().mean().item(), "mean_distance": dist.mean().item()}


def even_errors() -> dict[str, float]:
    """`error_distance` of errors spread evenly over the nine other digits: the baseline that says
    whether a model's errors follow the number line at all."""
    dist = torch.tensor([abs(a - b) for a in range(10) for b in range(10) if a != b], dtype=torch.float64)
    return {"off_by_one": (dist == 1).double().mean().item(), "mean_distance": dist.mean().item()}


def second_choice_right(run: dict, labels: torch.Tensor) -> float:
    """Among a classifier's wrong predictions, the share whose second-ranked class is the true one."""
    preds, second = torch.tensor(run["valid_pred"]), torch.tensor(run["valid_second"])
    wrong = preds != labels
    return (second[wrong] == labels[wrong]).double().mean().item()


def pair_loss_ratio(a: int, b: int, c: int) -> float:
    """How many times more squared error predicting `b` costs than predicting `c` for a true `a`."""
    return (b - a) ** 2 / (c - a) ** 2


# --- statistics: one interval, counting the seeds and the images together ---------------------------

LEVEL = 0.95  # of every interval in the report
REPLICATES = 2000  # bootstrap draws per interval
CHUNK = 250  # draws computed at once (bounds memory on 10,000 images)


def bootstrap(statistic, *matrices: torch.Tensor, strata: torch.Tensor | None = None, level: float = LEVEL,
              replicates: int = REPLICATES, seed: int = 0) -> dict:
    """A statistic of per-image values over seeds, with a percentile interval that counts both sources
    of chance: the training run (the seed) and the images the values were measured on.

    Each matrix is S x N, a value per seed (row; the same seeds in the same order in every matrix)
    and image (column; the same images). One replicate draws S seeds and N images with replacement
    (the images within each stratum, when `strata` gives each image's), weights every cell by how
    often its seed and its image were drawn, and sums each matrix so; `statistic(*sums)` turns those
    sums into the replicate's value. Two settings measured on the same images with the same seeds
    are paired: they get the same draws. The point estimate is `statistic` of the plain sums. The
    draws come from generators seeded with `seed`, so an interval is the same on every run (and
    every interval over the same number of images uses the same draws of them).
    """
    ms = [torch.as_tensor(m, dtype=torch.float64) for m in matrices]
    ms = [m.unsqueeze(0) if m.dim() == 1 else m for m in ms]
    n_seeds, n_images = ms[0].shape
    if any(m.shape != (n_seeds, n_images) for m in ms):
        raise ValueError(f"matrices of different shapes: {[tuple(m.shape) for m in ms]}")
    seed_gen = torch.Generator().manual_seed(seed)
    image_chunks = _image_draws(n_images, replicates, seed) if strata is None else _strata_draws(strata, replicates, seed)
    draws = []
    for v in image_chunks:
        w = _counts(seed_gen, len(v), n_seeds)
        v = v.double()
        draws.append(statistic(*(((v @ m.T) * w).sum(1) for m in ms)))
    draws = torch.cat(draws)
    lo, hi = torch.quantile(draws, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)).tolist()
    estimate = float(statistic(*(m.sum().reshape(1) for m in ms)))
    return {"mean": estimate, "lo": lo, "hi": hi, "seeds": n_seeds, "images": n_images,
            "verdict": "supported" if lo > 0 or hi < 0 else "within noise"}


def _counts(gen: torch.Generator, rows: int, n: int) -> torch.Tensor:
    """rows x n (uint8): how often each of n items was drawn, in each of `rows` draws of n with replacement."""
    picks = torch.randint(n, (rows, n), generator=gen) + n * torch.arange(rows).unsqueeze(1)
    return torch.bincount(picks.flatten(), minlength=rows * n).reshape(rows, n).to(torch.uint8)


@cache
def _image_draws(n: int, replicates: int, seed: int) -> tuple[torch.Tensor, ...]:
    """The draws of n images for `replicates` replicates, in chunks: made once per process and shared
    by every interval over n images (drawing them is most of an interval's cost)."""
    gen = torch.Generator().manual_seed(seed + 1)
    return tuple(_counts(gen, min(CHUNK, replicates - start), n) for start in range(0, replicates, CHUNK))


def _strata_draws(strata: torch.Tensor, replicates: int, seed: int) -> list[torch.Tensor]:
    """Like `_image_draws`, the images drawn within each stratum (as many of each as it holds)."""
    gen = torch.Generator().manual_seed(seed + 1)
    groups = [(strata == k).nonzero().squeeze(1) for k in strata.unique()]
    chunks = []
    for start in range(0, replicates, CHUNK):
        v = torch.zeros(min(CHUNK, replicates - start), len(strata), dtype=torch.uint8)
        for members in groups:
            v[:, members] = _counts(gen, len(v), len(members))
        chunks.append(v)
    return chunks


def mean_interval(a: torch.Tensor, **kw) -> dict:
    """The mean of an S x N matrix (an accuracy, from 0/1 values) with its interval."""
    a = torch.as_tensor(a, dtype=torch.float64)
    cells = a.numel()  # every draw weighs S x N cells in all
    return bootstrap(lambda total: total / cells, a, **kw)


def difference(a: torch.Tensor, b: torch.Tensor, **kw) -> dict:
    """Mean of a minus mean of b, paired: the same seeds (rows) and the same images (columns)."""
    a = torch.as_tensor(a, dtype=torch.float64)
    return mean_interval(a - torch.as_tensor(b, dtype=torch.float64), **kw)


def group_difference(values: torch.Tensor, in_a: torch.Tensor, in_b: torch.Tensor, **kw) -> dict:
    """Mean of `values` (S x N) over the cells in group a minus over those in group b (boolean masks,
    S x N, or N when the groups are sets of images: the images are then drawn within each group)."""
    values = torch.as_tensor(values, dtype=torch.float64)
    if torch.as_tensor(in_a).dim() == 1:
        kw.setdefault("strata", torch.as_tensor(in_a).long() + 2 * torch.as_tensor(in_b).long())
    in_a, in_b = (torch.as_tensor(m, dtype=torch.float64).expand_as(values) for m in (in_a, in_b))
    return bootstrap(lambda sa, na, sb, nb: sa / na - sb / nb, values * in_a, in_a, values * in_b, in_b, **kw)


def share_interval(hits: torch.Tensor, among: torch.Tensor, minus: float = 0.0, **kw) -> dict:
    """The share of the cells in `among` that are `hits` (both boolean S x N), less `minus` (a
    baseline share), with its interval."""
    hits, among = (torch.as_tensor(m, dtype=torch.float64) for m in (hits, among))
    return bootstrap(lambda h, n: h / n - minus, hits * among, among, **kw)


def slope_interval(x: torch.Tensor, y: torch.Tensor, minus: float = 0.0, **kw) -> dict:
    """The least-squares slope of y on x (both S x N), less `minus`, with its interval."""
    x, y = (torch.as_tensor(m, dtype=torch.float64) for m in (x, y))

    def slope(sx, sy, sxx, sxy, n):
        return (sxy / n - sx * sy / n**2) / (sxx / n - (sx / n) ** 2) - minus

    return bootstrap(slope, x, y, x * x, x * y, torch.ones_like(x), **kw)


def by_seed(runs: list[dict]) -> dict[int, dict]:
    return {r["config"]["seed"]: r for r in runs if not r["diverged"]}


def correct(runs: list[dict], split: str, labels: torch.Tensor, seeds: list[int] | None = None) -> torch.Tensor:
    """S x N: 1 where a seed's run labels an image of `split` ("valid" or "test") right, one row per
    seed in `seeds` (default: every seed that did not diverge, in order)."""
    runs = by_seed(runs)
    seeds = sorted(runs) if seeds is None else seeds
    return torch.stack([(torch.tensor(runs[s][f"{split}_pred"]) == labels).double() for s in seeds])


def shared_seeds(*groups: list[dict]) -> list[int]:
    """The seeds every group has a run of that did not diverge, in order."""
    return sorted(set.intersection(*(set(by_seed(g)) for g in groups)))


def accuracy_interval(runs: list[dict], split: str, labels: torch.Tensor) -> dict:
    """A setting's accuracy on `split` with its interval over seeds and images."""
    return mean_interval(correct(runs, split, labels))


def compare(runs_a: list[dict], runs_b: list[dict], split: str, labels: torch.Tensor) -> dict:
    """Accuracy of a minus b on `split`, paired by seed and image, with its interval."""
    seeds = shared_seeds(runs_a, runs_b)
    return difference(correct(runs_a, split, labels, seeds), correct(runs_b, split, labels, seeds))


def image_losses(runs: list[dict], split, seeds: list[int] | None = None) -> torch.Tensor:
    """S x N: each seed's cross-entropy loss on every image of `split` (a Split), from recorded weights."""
    runs = by_seed(runs)
    seeds = sorted(runs) if seeds is None else seeds
    rows = torch.arange(len(split.y))
    return torch.stack([-probabilities(runs[s], split.x)[rows, split.y].double().log() for s in seeds])


def compare_loss(runs_a: list[dict], runs_b: list[dict], split) -> dict:
    """Mean cross-entropy loss of a minus b on `split` (a Split), paired by seed and image."""
    seeds = shared_seeds(runs_a, runs_b)
    return difference(image_losses(runs_a, split, seeds), image_losses(runs_b, split, seeds))


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


def plateau(sweep: list[dict], model: str, labels: torch.Tensor) -> dict:
    """The settings of `model` the validation split cannot tell from the best: those whose paired
    difference in accuracy from the best setting (the highest mean) has an interval that includes 0.
    `labels` are the validation split's."""
    groups = by([r for r in sweep if model_name(r) == model], "lr", "epochs")
    ok = {k: g for k, g in groups.items() if not any(r["diverged"] for r in g)}
    best = max(ok, key=lambda k: mean(final(ok[k], "valid", "acc")))
    inside = sorted(k for k, g in ok.items() if k == best or compare(ok[best], g, "valid", labels)["lo"] <= 0)
    return {"best": mean(final(ok[best], "valid", "acc")), "best_setting": best, "settings": inside}


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


# --- the single-number regression: does it lean towards a look-alike? ------------------------------


def fitted_line(run: dict, labels: torch.Tensor) -> tuple[float, float]:
    """Intercept and slope of the least-squares line of output on true digit."""
    out, y = torch.tensor(run["valid_output"], dtype=torch.float64), labels.double()
    slope = ((y - y.mean()) * (out - out.mean())).sum() / ((y - y.mean()) ** 2).sum()
    return (out.mean() - slope * y.mean()).item(), slope.item()


UNSURE, SURE = 0.1, 0.01  # the classifier's runner-up probability: unsure from, sure below


def lean(run: dict, labels: torch.Tensor, probs: torch.Tensor, unsure: float = UNSURE, sure: float = SURE) -> dict:
    """Per image: does the regression lean towards the digit an independent classifier sees in it?

    For each image, the classifier's runner-up (its most probable wrong digit, from `probs`); the
    regression *leans* when its output lies on the runner-up's side of the median output for the
    image's true digit (the median removes the shrinkage and any offset of the digit as a whole).
    Returns N-vectors: `toward` (it leans), `unsure` (the runner-up has at least `unsure`), `sure`
    (below `sure`: the baseline), `shift` (the output's distance from its digit's median, towards the
    runner-up, in digits), and `spread`, the median distance of any output from its digit's median.
    """
    p = probs.clone()
    p[torch.arange(len(labels)), labels] = -1
    prob, runner = p.max(1)
    out = torch.tensor(run["valid_output"], dtype=torch.float64)
    medians = torch.stack([out[labels == d].median() if (labels == d).any() else out.new_tensor(0.0) for d in range(10)])
    side = torch.sign((runner - labels).double())
    return {"toward": torch.sign(out - medians[labels]) == side, "unsure": prob >= unsure, "sure": prob < sure,
            "shift": (out - medians[labels]) * side, "spread": (out - medians[labels]).abs().median().item()}


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


def at_rate(runs: list[dict], lr: float) -> list[dict]:
    """The runs trained at peak learning rate `lr`."""
    return [r for r in runs if r["config"]["lr"] == lr]


def at_own_rate(runs: list[dict]) -> dict[int, list[dict]]:
    """Per hidden size, the runs at the rate `best_setting` picks for that size (the tuning rule)."""
    return {h[0]: at_rate(g, best_setting(g, ("lr",))[0]) for (h,), g in by(runs, "hidden").items()}


def best_decay(runs: list[dict]) -> float:
    """The weight decay of the highest mean validation accuracy (the tuning rule, over the decays)."""
    return best_setting(runs, ("weight_decay",))[0]


def comparisons(baseline: list[dict], decay: list[dict], biases: list[dict], labels: dict[str, torch.Tensor]) -> list[dict]:
    """The report's paired comparisons: the difference in accuracy a - b on the validation and the
    held-out test split (`labels` holds each split's labels), each with its interval over seeds and
    images, the two settings paired by seed and image.

    Two-layer against logistic regression; per model, the best weight decay (chosen on validation,
    so its validation difference is optimistic, the held-out one is not) against none; per model,
    biases against none. The settings of a pair share each seed's initialisation generator and
    batch order, and every image.
    """
    base = by(baseline, "hidden")
    pairs = [("784-30-10 − logistic", base[(TWO_LAYER,)], base[(LOGISTIC,)])]
    for name, runs in by_model(decay).items():
        groups = by(runs, "weight_decay")
        pairs.append((f"best decay − none, {SHORT[name]}", groups[(best_decay(runs),)], groups[(0.0,)]))
    for name, runs in by_model(biases).items():
        groups = by(runs, "bias")
        pairs.append((f"bias − none, {SHORT[name]}", groups[(True,)], groups[(False,)]))
    return [{"label": label, "a": a, "b": b, **{split: compare(a, b, split, y) for split, y in labels.items()}}
            for label, a, b in pairs]


# --- baselines, calibration, early stopping -------------------------------------------------------


def nearest_mean(train, split) -> torch.Tensor:
    """The "pixel similarity" baseline of fastai's book (ch. 4) for ten digits: each image of `split`
    gets the digit whose mean training image is nearest (Euclidean distance). No training, no seed."""
    return torch.cdist(split.x, class_means(train)).argmin(1)


CONFIDENT = 0.9  # a prediction made with at least this probability is a confident one


def calibration(probs: torch.Tensor, labels: torch.Tensor, bins: int = 10) -> dict:
    """How far a classifier's confidence (its top probability) can be taken at its word.

    `probs` is N x 10, or S x N x 10 for several seeds on the same N images (`labels` is N long),
    pooled. Per equal-width bin of
    confidence: the images in it, their mean confidence and their accuracy. `ece`, the expected
    calibration error: the bins' |accuracy - confidence| weighted by their share of the images.
    `confidence` and `accuracy`: the means over all images. `confident_errors`: the share of the
    wrong predictions made with confidence at least CONFIDENT.
    """
    if probs.dim() == 3:
        labels = labels.repeat(probs.shape[0])
    probs = probs.reshape(-1, probs.shape[-1]).double()
    conf, pred = probs.max(1)
    right = (pred == labels).double()
    which = (conf * bins).long().clamp(max=bins - 1)
    table = []
    for k in range(bins):
        inside = which == k
        n = int(inside.sum())
        table.append({"lo": k / bins, "hi": (k + 1) / bins, "n": n,
                      "confidence": conf[inside].mean().item() if n else math.nan,
                      "accuracy": right[inside].mean().item() if n else math.nan})
    ece = sum(b["n"] * abs(b["accuracy"] - b["confidence"]) for b in table if b["n"]) / len(labels)
    wrong = right == 0
    return {"bins": table, "ece": ece, "confidence": conf.mean().item(), "accuracy": right.mean().item(),
            "confident_errors": (conf[wrong] >= CONFIDENT).double().mean().item() if wrong.any() else math.nan}


def seed_probabilities(runs: list[dict], x: torch.Tensor, seeds: list[int] | None = None) -> torch.Tensor:
    """S x N x 10: each seed's softmax probabilities on `x`, from its recorded weights."""
    runs = by_seed(runs)
    return torch.stack([probabilities(runs[s], x) for s in (sorted(runs) if seeds is None else seeds)])


def overconfidence(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per image (S x N): the top probability minus 1 if it is right, else minus 0. Its mean is the
    mean confidence minus the accuracy: above 0, the classifier claims more than it achieves."""
    conf, pred = probs.double().max(-1)
    return conf - (pred == labels).double()


# --- full MNIST: which testing images the subset had already used -----------------------------------


def seen_by_subset(full_test_paths: tuple[str, ...], subset_paths: tuple[str, ...]) -> torch.Tensor:
    """Per image of full MNIST's test split: True where the subset used it (as a validation image)."""
    used = {Path(p).parts[-2:] for p in subset_paths}
    return torch.tensor([Path(p).parts[-2:] in used for p in full_test_paths])


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


def ablation(run: dict, split) -> dict[str, torch.Tensor]:
    """Each first-layer hidden unit switched off in turn (its output set to 0 for every image of
    `split`), from the recorded weights: per unit, the change in the mean cross-entropy loss and in
    the accuracy. A unit the network does not use changes neither."""
    (w1, b1), (w2, b2) = layers(run)
    h = (split.x @ w1.T + (b1 if b1 is not None else 0)).clamp_min(0).double()  # N x H
    w2 = w2.double()
    out = h @ w2.T + (b2.double() if b2 is not None else 0)  # N x 10
    rows = torch.arange(len(split.y))

    def loss_acc(logits):  # (..., N, 10) -> loss and accuracy over the N images
        logp = logits.log_softmax(-1)
        return -logp[..., rows, split.y].mean(-1), (logits.argmax(-1) == split.y).double().mean(-1)

    base_loss, base_acc = loss_acc(out)
    off = out.unsqueeze(0) - h.T.unsqueeze(2) * w2.T.unsqueeze(1)  # H x N x 10: unit j's share removed
    loss, acc = loss_acc(off)
    return {"loss": loss - base_loss, "acc": acc - base_acc}
