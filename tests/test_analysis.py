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


def test_signed_difference_has_no_negative_zero():
    assert A.signed(0.0064) == "+0.64"
    assert A.signed(-0.0001) == "-0.01"
    assert A.signed(-0.00004) == "0.00"  # rounds to zero: no '-0.00'
    assert A.signed(0.00004) == "0.00"
    assert A.signed(-0.5, scale=1, digits=1) == "-0.5"


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


def test_error_distance_of_known_predictions_by_digit_and_by_shuffled_value():
    labels = torch.tensor([0, 1, 4, 9, 9, 5])
    r = {"valid_pred": [0, 2, 4, 8, 4, 5], "valid_output": [0.0, 1.0, 4.0, 9.0, 9.0, 5.0]}
    dist = A.error_distance(r, labels)  # wrong: 1->2 (1), 9->8 (1), 9->4 (5)
    assert dist["off_by_one"] == pytest.approx(2 / 3) and dist["mean_distance"] == pytest.approx(7 / 3)
    values = [9, 0, 1, 2, 3, 4, 5, 6, 7, 8]  # digit d -> value d - 1, and 0 -> 9
    shuffled = A.error_distance(r, labels, values)  # values: 0->1 (1), 8->7 (1), 8->3 (5)
    assert shuffled == dist
    swapped = A.error_distance({"valid_pred": [9]}, torch.tensor([0]), values)  # 0 -> 9 is values 9 -> 8
    assert swapped == {"off_by_one": 1.0, "mean_distance": 1.0}


def test_even_errors_are_the_number_line_baseline():
    even = A.even_errors()  # 18 of the 90 ordered pairs of different digits are neighbours
    assert even["off_by_one"] == pytest.approx(0.2) and even["mean_distance"] == pytest.approx(330 / 90)


def test_fitted_line_slope():
    labels = torch.tensor([0, 1, 4, 9, 9, 5])
    assert A.fitted_line({"valid_output": labels.tolist()}, labels) == pytest.approx((0.0, 1.0))
    hedged = {"valid_output": [4.5 + 0.5 * (y - 4.5) for y in labels.tolist()]}
    assert A.fitted_line(hedged, labels) == pytest.approx((2.25, 0.5))


def test_best_mse_runs_picks_lowest_mean_validation_loss_and_skips_divergence():
    runs = [run(objective="mse-digit", lr=0.01, valid_loss=2.0), run(objective="mse-digit", lr=0.03, valid_loss=1.5),
            {**run(objective="mse-digit", lr=0.1), "diverged": True, "final": None}]
    best = A.best_mse_runs(runs)
    assert best["mse-digit"][0]["config"]["lr"] == 0.03


def test_markdown_table_shape_and_column_widths():
    text = tables.markdown(["a", "b"], [[1, 2], [3, 4]])
    lines = text.splitlines()
    assert lines[0] == "| a | b |" and len(lines) == 4
    left, right = lines[1].strip("| ").split(" | ")
    assert left.startswith(":") and right.endswith(":") and not right.startswith(":")
    wide = tables.markdown(["model", "acc"], [["784-30-10", "93.94 ± 0.33 percent of them"]]).splitlines()[1]
    short, long = (len(cell) for cell in wide.strip("| ").split(" | "))
    assert long > 2 * short  # dashes in proportion to the longest cell: pandoc sizes wide tables by them
    bold = tables.markdown(["interval", "x"], [["**+2.77, +3.64**", "5 of 5"]]).splitlines()[1]
    assert [len(cell) for cell in bold.strip("| ").split(" | ")] == [len("+2.77, +3.64") + 4, len("5 of 5") + 4]  # bold markers do not count


def test_second_choice_right_counts_only_wrong_predictions():
    labels = torch.tensor([3, 5, 8, 1])
    r = {"valid_pred": [3, 6, 9, 7], "valid_second": [0, 5, 2, 1]}  # wrong: 5 (2nd right), 8 (no), 1 (2nd right)
    assert A.second_choice_right(r, labels) == pytest.approx(2 / 3)


# --- statistics ------------------------------------------------------------------------------------


def bernoulli(p, n, seed):
    return (torch.rand(n, generator=torch.Generator().manual_seed(seed)) < p).double()


def test_bootstrap_counts_image_sampling():
    """Seeds that agree on every image: the interval is the binomial one of the images alone."""
    images = bernoulli(0.9, 4000, 0)
    a = images.repeat(5, 1)
    ci = A.mean_interval(a)
    se = math.sqrt(images.mean() * (1 - images.mean()) / 4000)
    assert ci["mean"] == pytest.approx(images.mean().item())
    assert (ci["hi"] - ci["lo"]) / 2 == pytest.approx(1.96 * se, rel=0.15)
    assert ci["seeds"] == 5 and ci["images"] == 4000


def test_bootstrap_counts_training_randomness():
    """Images that every seed scores alike: the interval is the seeds' alone (drawing 5 seeds again)."""
    levels = torch.tensor([0.90, 0.92, 0.94, 0.96, 0.98], dtype=torch.float64)
    a = levels.unsqueeze(1).repeat(1, 300)
    ci = A.mean_interval(a)
    assert ci["mean"] == pytest.approx(0.94)
    assert 0.90 < ci["lo"] < 0.93 and 0.95 < ci["hi"] < 0.98  # the mean of 5 seeds drawn from these


def test_bootstrap_is_deterministic_and_exact_for_constants():
    a = torch.stack([bernoulli(0.8, 500, s) for s in range(3)])
    assert A.mean_interval(a) == A.mean_interval(a.clone())
    flat = A.mean_interval(torch.full((3, 50), 0.25))
    assert flat["lo"] == pytest.approx(0.25) and flat["hi"] == pytest.approx(0.25)


def test_paired_difference_cancels_what_two_settings_share():
    """b is a with 1% of the images flipped from wrong to right, on every seed: paired, the difference
    is exactly known and the interval is narrow; the same accuracies unpaired would not be."""
    a = torch.stack([bernoulli(0.9, 5000, s) for s in range(5)])
    b = a.clone()
    b[:, :50] = 1.0
    a[:, :50] = 0.0
    d = A.difference(b, a)
    assert d["mean"] == pytest.approx(0.01) and d["verdict"] == "supported"
    assert d["hi"] - d["lo"] < 0.01
    unpaired = A.group_difference(torch.cat([b, a], 1), torch.arange(10_000) < 5000, torch.arange(10_000) >= 5000)
    assert unpaired["mean"] == pytest.approx(0.01) and unpaired["hi"] - unpaired["lo"] > 2 * (d["hi"] - d["lo"])
    same = A.difference(a, a)
    assert same["mean"] == 0 and same["verdict"] == "within noise"


def test_group_difference_of_per_seed_groups():
    values = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 1.0]])
    in_a = torch.tensor([[True, True, False, False], [True, False, False, False]])
    d = A.group_difference(values, in_a, ~in_a)  # a: 3 cells, all 1; b: 5 cells, one 1
    assert d["mean"] == pytest.approx(1 - 1 / 5)


def test_compare_pairs_by_seed_and_skips_divergence():
    labels = torch.tensor([0, 1, 2, 3])
    a = [{**run(seed=s), "valid_pred": [0, 1, 2, 3]} for s in (0, 1, 2)]
    b = [{**run(seed=1), "valid_pred": [0, 1, 9, 9]}, {**run(seed=0), "valid_pred": [0, 1, 2, 9]},
         {**run(seed=2), "diverged": True, "final": None}]
    d = A.compare(a, b, "valid", labels)
    assert d["seeds"] == 2 and d["mean"] == pytest.approx(1 - (0.5 + 0.75) / 2)
    assert A.accuracy_interval(a, "valid", labels)["mean"] == 1.0


def sweep_run(lr, epochs, seed, acc, loss=0.3, hidden=(30,), diverged=False):
    r = run(hidden, seed, acc, loss, lr=lr, epochs=epochs)
    return {**r, "diverged": diverged, "final": None if diverged else r["final"]}


def test_plateau_holds_the_settings_the_interval_cannot_tell_from_the_best():
    labels = torch.zeros(2000, dtype=torch.long)

    def setting(lr, first, wrong):  # three seeds wrong on `wrong` images from image `first` on
        preds = [0] * first + [1] * wrong + [0] * (2000 - first - wrong)
        return [{**sweep_run(lr, 10, s, 1 - wrong / 2000), "valid_pred": preds} for s in range(3)]

    sweep = setting(0.1, 0, 100) + setting(0.3, 50, 96) + setting(1.0, 0, 300)
    top = A.plateau(sweep, "784-30-10 ReLU", labels)
    assert top["best_setting"] == (0.3, 10) and top["best"] == pytest.approx(0.952)
    assert top["settings"] == [(0.1, 10), (0.3, 10)]  # 50 against 46 images: within noise; 1.0 is far worse


def test_choose_averages_over_seeds_instead_of_trusting_seed_0():
    from mnist_scratch.experiments import choose

    sweep = [sweep_run(0.1, 10, 0, 0.95), sweep_run(0.1, 10, 1, 0.85), sweep_run(0.1, 10, 2, 0.85),  # lucky seed 0
             sweep_run(0.3, 10, 0, 0.92), sweep_run(0.3, 10, 1, 0.92), sweep_run(0.3, 10, 2, 0.92)]
    assert choose(sweep) == {(30,): (0.3, 10)}
    # a setting where one seed diverged is skipped however good the others are
    sweep += [sweep_run(1.0, 10, 0, 0.99), sweep_run(1.0, 10, 1, 0.99), sweep_run(1.0, 10, 2, 0.1, diverged=True)]
    assert choose(sweep) == {(30,): (0.3, 10)}


def test_best_setting_breaks_exact_ties_by_loss_then_by_the_cheaper_setting():
    from mnist_scratch.experiments import best_setting

    runs = [sweep_run(0.3, 20, 0, 0.9, 0.30), sweep_run(0.1, 20, 0, 0.9, 0.30), sweep_run(0.1, 40, 0, 0.9, 0.30)]
    assert best_setting(runs, ("lr", "epochs")) == (0.1, 20)
    assert best_setting(runs[::-1], ("lr", "epochs")) == (0.1, 20)
    assert best_setting([sweep_run(1.0, 5, 0, 0.5, diverged=True)], ("lr",)) is None


def trained_like(hidden=(3,), bias=True, seed=0):
    """A result holding the weights of a freshly built model, recorded as `train` records them."""
    from mnist_scratch.modules import mlp
    from mnist_scratch.train import layer_weights

    model = mlp([784, *hidden, 10], bias, generator=torch.Generator().manual_seed(seed))
    return model, {"weights": layer_weights(model), "config": {"hidden": list(hidden), "seed": seed}, "diverged": False}


@pytest.mark.parametrize("hidden,bias", [((), True), ((3,), True), ((3,), False), ((5, 4), True)])
def test_recorded_weights_reproduce_the_model(hidden, bias):
    model, r = trained_like(hidden, bias)
    x = torch.rand(7, 784, generator=torch.Generator().manual_seed(1))
    out, acts = A.forward(A.layers(r), x)
    assert torch.allclose(out, model(x), atol=1e-5)
    assert len(acts) == len(hidden)
    assert A.layers(r)[0][0].shape == (hidden[0] if hidden else 10, 784)  # (n_out, n_in), nn.Linear's layout
    assert torch.allclose(A.probabilities(r, x).sum(1), torch.ones(7, dtype=torch.float32), atol=1e-6)


def test_dead_units_are_those_never_active():
    _, r = trained_like((3,))
    w = torch.tensor(r["weights"][0]["weight"])
    w[1] = -1.0  # non-negative pixels: unit 1 is never positive
    r["weights"][0]["weight"], r["weights"][0]["bias"] = w.tolist(), [0.5, -0.1, 0.5]
    x = torch.rand(50, 784, generator=torch.Generator().manual_seed(2))
    assert A.dead_hidden_units(r, x).tolist() == [False, True, False]


def cell_map(cells: dict[tuple[int, int], float]) -> torch.Tensor:
    """A 28 x 28 map with the given value over whole cells of the 3 x 3 grid of the digit box."""
    m = torch.zeros(28, 28)
    cuts = torch.arange(4, 24).tensor_split(3)
    for (i, j), v in cells.items():
        m[cuts[i][0] : cuts[i][-1] + 1, cuts[j][0] : cuts[j][-1] + 1] = v
    return m.reshape(-1)


def test_template_reading_finds_rewarded_and_punished_cells_and_the_lowest_scoring_digit():
    w = torch.stack([cell_map({(0, 0): 1.0, (1, 1): -2.0})] + [cell_map({(2, 2): 1.0})] * 9)
    means = torch.stack([cell_map({(0, 0): 1.0})] + [cell_map({(1, 1): 1.0 + d / 10}) for d in range(1, 10)])
    first = A.template_reading(w, means)[0]
    assert (first["rewards"], first["punishes"]) == ("top left", "centre")
    assert first["lowest"] == 9  # the most ink in the punished centre; digit 0 itself is left out


def test_class_means():
    split = type("S", (), {"x": torch.tensor([[1.0] * 784, [3.0] * 784] * 10).reshape(20, 784),
                           "y": torch.arange(10).repeat_interleave(2)})()
    assert torch.allclose(A.class_means(split), torch.full((10, 784), 2.0))


def test_unit_kinds_tell_strokes_blobs_noise_and_dead_apart():
    gen = torch.Generator().manual_seed(0)
    rows, cols = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    bars = torch.sin(rows / 2)  # horizontal bars: one orientation
    blob = torch.exp(-((rows - 14) ** 2 + (cols - 14) ** 2) / 20)  # a round spot: every orientation
    noise = torch.rand(28, 28, generator=gen) - 0.5
    units = [bars, blob, noise, -torch.ones(28, 28)]
    r = {"weights": [{"weight": torch.stack([u.reshape(-1) for u in units]).tolist(), "bias": [0.0, 0.0, 0.0, -1.0]},
                     {"weight": torch.zeros(10, 4).tolist(), "bias": [0.0] * 10}], "diverged": False}
    x = torch.rand(100, 784, generator=gen) * (torch.rand(100, 784, generator=gen) > 0.5)
    assert A.unit_kinds(r, x) == ["stroke", "blob", "noise", "dead"]


# --- mistakes --------------------------------------------------------------------------------------


def test_top_losses_are_the_most_confident_mistakes():
    r = {"weights": [{"weight": torch.eye(10, 784).tolist(), "bias": [0.0] * 10}]}
    x = torch.zeros(4, 784)
    x[0, 3], x[1, 5], x[2, 2], x[3, 1] = 9.0, 1.0, 5.0, 9.0  # confident 3, unsure 5, sure 2, sure 1
    split = type("S", (), {"x": x, "y": torch.tensor([3, 4, 7, 1])})()
    worst = A.top_losses(r, split, 2)
    assert [w["index"] for w in worst] == [2, 1] and worst[0]["pred"] == 2 and worst[0]["prob"] > 0.9


def confusion_run(matrix, seed=0):
    return {"confusion": {"test": matrix}, "diverged": False, "config": {"seed": seed}}


def test_per_digit_accuracy_and_error_pairs_from_confusion_matrices():
    eye = [[10 if i == j else 0 for j in range(10)] for i in range(10)]
    a = [row[:] for row in eye]
    a[4][4], a[4][9], a[9][9], a[9][4], a[3][3], a[3][8] = 6, 4, 8, 2, 9, 1
    acc = A.per_digit_accuracy([confusion_run(a), confusion_run(eye)])
    assert acc[4][0] == pytest.approx(0.8) and acc[0] == (1.0, 0.0)
    pairs = A.error_pairs([confusion_run(a)])
    assert pairs[0]["pair"] == (4, 9) and pairs[0]["count"] == 6 and pairs[0]["share"] == pytest.approx(6 / 7)
    assert pairs[1]["pair"] == (3, 8)


# --- the regression's hedging ---------------------------------------------------------------------


def test_onehot_sums():
    r = {"weights": [{"weight": torch.zeros(10, 784).tolist(), "bias": [0.1] * 10}]}
    assert A.onehot_sums(r, torch.rand(5, 784)) == pytest.approx((1.0, 0.0))


# --- biases: the cone ---------------------------------------------------------------------------------


def test_cone_of_identical_images_is_a_line():
    x = torch.rand(1, 784).repeat(5, 1)
    c = A.cone(x)
    assert c["cos_min"] == pytest.approx(1.0) and c["cv"] == pytest.approx(0.0, abs=1e-6)


def test_folding_a_bias_into_the_mean_direction_is_exact_when_every_projection_is_equal():
    gen = torch.Generator().manual_seed(0)
    m = torch.rand(784, generator=gen) + 0.5
    d = torch.randn(784, generator=gen)
    d -= (d @ m) / (m @ m) * m  # orthogonal to m: x . u is the same for every image
    x = torch.stack([m + 0.3 * d, m - 0.3 * d, m + 0.1 * d, m - 0.1 * d])
    _, r = trained_like(())
    folded = A.fold_first_bias(r, x)
    assert folded[0][1] is None
    assert torch.allclose(A.forward(folded, x)[0], A.forward(A.layers(r), x)[0], atol=1e-4)


# --- dead-unit traces and the hidden-size series ------------------------------------------------


def test_dead_trace_averages_shared_steps():
    a = {"dead_trace": {"step": [0, 1, 2, 4], "share": [[0.0], [0.5], [1.0], [1.0]]}}
    b = {"dead_trace": {"step": [0, 1, 2, 3], "share": [[0.0], [0.0], [0.5], [1.0]]}}
    steps, shares = A.dead_trace([a, b])
    assert steps == [0, 1, 2] and shares == [0.0, 0.25, 0.75]
    assert A.first_step_reaching(steps, shares, 0.5) == 2 and A.first_step_reaching(steps, shares, 1.0) is None


def test_markdown_escapes_pipes_inside_cells():
    line = tables.markdown(["max |ours − autograd|"], [["1e-16"]]).splitlines()[0]
    assert line == "| max \\|ours − autograd\\| |"


# --- baselines, calibration, early stopping, ablation -------------------------------------------------


def test_nearest_mean_labels_each_image_by_the_closest_class_mean():
    train = type("S", (), {"x": torch.cat([torch.full((2, 784), d / 10) for d in range(10)]),
                           "y": torch.arange(10).repeat_interleave(2)})()
    split = type("S", (), {"x": torch.stack([torch.full((784,), 0.31), torch.full((784,), 0.88)])})()
    assert A.nearest_mean(train, split).tolist() == [3, 9]


def test_calibration_bins_confidence_against_accuracy():
    probs = torch.zeros(4, 10)
    probs[0, 1], probs[1, 2], probs[2, 3], probs[3, 4] = 0.95, 0.95, 0.55, 0.55
    probs[0, 0], probs[1, 0], probs[2, 0], probs[3, 0] = 0.05, 0.05, 0.45, 0.45
    labels = torch.tensor([1, 0, 3, 0])  # right, wrong at 0.95; right, wrong at 0.55
    c = A.calibration(probs, labels)
    top, middle = c["bins"][9], c["bins"][5]
    assert (top["n"], top["accuracy"], top["confidence"]) == (2, 0.5, pytest.approx(0.95))
    assert (middle["n"], middle["accuracy"]) == (2, 0.5)
    assert c["ece"] == pytest.approx(0.5 * 0.45 + 0.5 * 0.05)
    assert c["confidence"] == pytest.approx(0.75) and c["accuracy"] == 0.5
    assert c["confident_errors"] == 0.5  # one of the two errors at 0.95
    over = A.overconfidence(probs, labels)
    assert over.mean().item() == pytest.approx(c["confidence"] - c["accuracy"])


def test_seen_by_subset_matches_images_by_digit_folder_and_file():
    full = ("/data/testing/3/10.png", "/data/testing/3/11.png", "/data/testing/4/10.png")
    subset = ("/elsewhere/mnist_png/testing/3/10.png", "/elsewhere/mnist_png/testing/4/99.png")
    assert A.seen_by_subset(full, subset).tolist() == [True, False, False]


def test_ablation_of_an_unused_unit_changes_nothing():
    _, r = trained_like((3,))
    w2 = torch.tensor(r["weights"][1]["weight"])
    w2[:, 1] = 0.0  # unit 1 feeds nothing
    r["weights"][1]["weight"] = w2.tolist()
    gen = torch.Generator().manual_seed(3)
    split = type("S", (), {"x": torch.rand(40, 784, generator=gen), "y": torch.randint(10, (40,), generator=gen)})()
    out = A.ablation(r, split)
    assert out["loss"][1] == 0 and out["acc"][1] == 0
    params = A.layers(r)
    params[1][0][:, 0] = 0.0  # switching unit 0 off by hand gives the change ablation reports for it
    logits, _ = A.forward(params, split.x)
    base, _ = A.forward(A.layers(r), split.x)
    def loss(z):
        return -z.double().log_softmax(1)[torch.arange(40), split.y].mean()
    assert out["loss"][0].item() == pytest.approx((loss(logits) - loss(base)).item(), abs=1e-6)


def test_lean_marks_outputs_on_the_runner_up_side_of_their_digits_median():
    labels = torch.tensor([4] * 5 + [0, 9])
    probs = torch.zeros(7, 10)
    cases = [(9, 0.4), (9, 0.3), (1, 0.3), (9, 0.001), (None, 0.0)]  # runner-up and its probability, for the 4s
    for i, (runner, p) in enumerate(cases):
        probs[i, 4] = 1 - p
        if runner is not None:
            probs[i, runner] = p
    probs[5, 0], probs[6, 9] = 1.0, 1.0
    out = [4.8, 4.9, 4.7, 3.0, 4.5, 0.0, 9.0]  # the 4s' median is 4.7: up, up, level, down, down
    le = A.lean({"valid_output": out}, labels, probs)
    assert le["unsure"].tolist() == [True, True, True, False, False, False, False]
    assert le["toward"][:3].tolist() == [True, True, False]  # towards 9 is up, towards 1 down (level: no)
    assert le["shift"][:3].tolist() == pytest.approx([0.1, 0.2, 0.0])
    assert le["sure"][3] and le["toward"][3].item() is False  # runner-up 9 at 0.001, output below the median


def test_at_own_rate_tunes_each_width():
    runs = [run((h,), s, valid_acc=acc, lr=lr) for h, lr, acc in ((8, 0.1, 0.9), (8, 0.3, 0.8), (64, 0.1, 0.9),
                                                               (64, 0.3, 0.95)) for s in (0, 1)]
    own = A.at_own_rate(runs)
    assert {h: {r["config"]["lr"] for r in g} for h, g in own.items()} == {8: {0.1}, 64: {0.3}}
    assert len(A.at_rate(runs, 0.1)) == 4


def test_stop_epoch_is_the_lowest_validation_loss_after_training_starts():
    from mnist_scratch.experiments import stop_epoch

    assert stop_epoch({"history": {"valid_loss": [0.1, 0.5, 0.3, 0.3, 0.4]}}) == 2  # epoch 0 never counts; first of a tie
    assert stop_epoch({"history": {"valid_loss": [2.3, 0.5]}}) == 1


def test_share_and_slope_intervals():
    hits = torch.tensor([[True, False, True, False], [True, True, False, False]])
    among = torch.tensor([[True, True, True, False], [True, True, True, True]])
    d = A.share_interval(hits, among, minus=0.5)  # 4 hits among 7 cells
    assert d["mean"] == pytest.approx(4 / 7 - 0.5)
    x = torch.arange(10.0).repeat(3, 1)
    line = A.slope_interval(x, 0.5 * x + 2, minus=1.0)
    assert line["mean"] == pytest.approx(-0.5) and line["hi"] == pytest.approx(-0.5) and line["verdict"] == "supported"


def test_comparisons_count_image_sampling_where_seeds_agree():
    """Seeds that agree on every image leave nothing for a seeds-only interval; the interval here
    must still be as wide as the images make it."""
    labels = {"valid": torch.zeros(400, dtype=torch.long), "test": torch.zeros(400, dtype=torch.long)}
    good = [1] * 20 + [0] * 380  # wrong on 20 images
    bad = [0] * 20 + [1] * 20 + [0] * 360  # wrong on 20 others: the same accuracy

    def runs(hidden, preds, **extra):
        return [{**run(hidden, s, **extra), "valid_pred": preds, "test_pred": preds} for s in range(3)]

    better = [0] * 21 + [1] * 19 + [0] * 360  # wrong on 19 others
    baseline = runs((30,), good) + runs((), bad)
    decay = runs((30,), good, weight_decay=0.0, valid_acc=0.95) + runs((30,), better, weight_decay=0.01, valid_acc=0.96)
    biases = runs((30,), good, bias=True) + runs((30,), bad, bias=False)
    cs = A.comparisons(baseline, decay, biases, labels)
    assert [abs(c["test"]["mean"]) for c in cs] == [0, 0.0025, 0]
    for c in cs:  # 20 images against 20 others out of 400: a 95% interval about 0.06 wide
        assert c["test"]["hi"] - c["test"]["lo"] > 0.04 and c["test"]["verdict"] == "within noise", c["label"]
