"""The report's statistics on hand-made results, where the right answer is known."""

import math

import pytest
import torch

from mnist_scratch import analysis as A
from mnist_scratch import tables


def run(hidden=(30,), seed=0, valid_acc=0.9, valid_loss=0.3, **extra):
    cfg = {"hidden": list(hidden), "seed": seed, "lr": 0.1, "epochs": 3, "objective": "cross-entropy",
           "weight_decay": 0.0, "bias": True}
    final = {s: {"acc": valid_acc, "loss": valid_loss} for s in ("train", "valid", "test")}
    return {"config": {**cfg, **extra}, "architecture": "784-" + "-".join(map(str, [*hidden, 10])),
            "diverged": False, "final": final,
            "history": {"train_loss": [2.3, 1.0, 0.5, 0.4], "valid_loss": [2.3, 1.1, 0.6, 0.5]}}


def test_spread_and_formatting():
    assert A.spread([0.9]) == (0.9, 0.0)
    m, s = A.spread([0.90, 0.92])
    assert m == pytest.approx(0.91) and s == pytest.approx(math.sqrt(2) * 0.01)
    assert A.pm([0.90, 0.92]) == "91.0 ± 1.4"
    assert A.pct(0.12345, 2) == "12.35%"


def test_final_skips_diverged_runs():
    bad = {**run(valid_acc=0.1), "diverged": True, "final": None}
    assert A.final([run(valid_acc=0.8), bad], "valid", "acc") == [0.8]


def test_grouping_by_model_and_setting():
    runs = [run((), 0), run((30,), 0), run((), 1), run((30,), 1, weight_decay=0.01)]
    assert list(A.by_model(runs)) == ["logistic regression", "784-30-10 ReLU"]
    groups = A.by(runs, "hidden", "weight_decay")
    assert [len(g) for g in groups.values()] == [2, 1, 1]
    assert list(A.families(runs, "hidden")) == ["784-h-10 ReLU"]


def test_mean_curves_average_seeds_epoch_by_epoch():
    a, b = run(seed=0), run(seed=1)
    b["history"]["valid_loss"] = [2.3, 0.9, 0.4, 0.3]
    mean, std = A.mean_curves([a, b], "valid_loss")
    assert mean == pytest.approx([2.3, 1.0, 0.5, 0.4])
    assert std[0] == 0 and std[1] == pytest.approx(math.sqrt(0.02))


def test_error_distance_and_shrinkage_of_known_predictions():
    labels = torch.tensor([0, 1, 4, 9, 9, 5])
    r = {"valid_pred": [0, 2, 4, 8, 4, 5], "valid_output": [0.0, 1.0, 4.0, 9.0, 9.0, 5.0]}
    dist = A.error_distance(r, labels)  # wrong: 1->2 (1), 9->8 (1), 9->4 (5)
    assert dist["off_by_one"] == pytest.approx(2 / 3) and dist["mean_distance"] == pytest.approx(7 / 3)
    perfect = A.shrinkage(r, labels)
    assert perfect["slope"] == pytest.approx(1.0) and perfect["mean_for_9"] == 9.0
    hedged = A.shrinkage({"valid_output": [4.5 + 0.5 * (y - 4.5) for y in labels.tolist()]}, labels)
    assert hedged["slope"] == pytest.approx(0.5)


def test_in_between_finds_hedged_look_alikes_closest_first():
    labels = torch.tensor([4, 9, 4, 3, 7, 2])
    r = {"valid_output": [6.4, 6.9, 4.1, 5.5, 4.2, 5.5]}
    found = A.in_between(r, labels)
    assert [f["index"] for f in found] == [3, 0, 4, 1]  # gaps 0.0 (3/8), 0.1 (4/9), 0.2 (1/7), 0.4 (4/9)
    assert [f["index"] for f in A.in_between(r, labels, ((4, 9),))] == [0, 1]


def test_best_mse_runs_picks_lowest_mean_validation_loss_and_skips_divergence():
    runs = [run(objective="mse-digit", lr=0.01, valid_loss=2.0), run(objective="mse-digit", lr=0.03, valid_loss=1.5),
            {**run(objective="mse-digit", lr=0.1), "diverged": True, "final": None}]
    best = A.best_mse_runs(runs)
    assert best["mse-digit"][0]["config"]["lr"] == 0.03


def test_markdown_table_shape():
    text = tables.markdown(["a", "b"], [[1, 2], [3, 4]])
    lines = text.splitlines()
    assert lines[0] == "| a | b |" and lines[1] == "| :--- | ---: |" and len(lines) == 4


def test_second_choice_right_counts_only_wrong_predictions():
    labels = torch.tensor([3, 5, 8, 1])
    r = {"valid_pred": [3, 6, 9, 7], "valid_second": [0, 5, 2, 1]}  # wrong: 5 (2nd right), 8 (no), 1 (2nd right)
    assert A.second_choice_right(r, labels) == pytest.approx(2 / 3)
