"""Numbers the report states, computed from run results (lists of result dicts)."""

from collections import defaultdict
from statistics import mean, stdev

import torch

from .experiments import CLASSIFIERS, choose

MODEL_NAMES = {hidden: name for name, hidden in CLASSIFIERS.items()}


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
    """Per objective, the runs (all seeds) at its learning rate of lowest mean final validation loss."""
    best: dict[str, list[dict]] = {}
    for (obj, _lr), runs in by(results, "objective", "lr").items():
        if any(r["diverged"] for r in runs):
            continue
        score = mean(final(runs, "valid", "loss"))
        if obj not in best or score < mean(final(best[obj], "valid", "loss")):
            best[obj] = runs
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
    """Validation images of look-alike pairs that the single-number model predicts half-way between.

    For a pair (a, b): the true a's and b's whose output lies within 1 of the midpoint (a 4 or a 9
    predicted near 6.5), closest first. The model hedges between two shapes and lands on a third digit.
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

